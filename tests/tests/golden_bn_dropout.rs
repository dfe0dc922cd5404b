//! Batch normalisation and dropout against the book's goldens (`golden/layer_grads.json`,
//! float64 reference; we compute in f32, so comparisons use an f32 tolerance).

use staticgrad::{BatchNorm, BatchNormConfig, Dropout, Mode, ParamKind, Shape};
use staticgrad_tests::{HostStorage, array_f32, golden};

fn arr(v: &serde_json::Value) -> Vec<f32> {
    array_f32(v).0
}

/// Checks `|got − want| ≤ atol + rtol·|want|` element-wise; prints and returns the worst absolute error.
fn close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) -> f32 {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = 0.0f32;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs();
        assert!(err <= atol + rtol * w.abs(), "{what}[{i}]: got {g}, want {w} (err {err:e})");
        worst = worst.max(err);
    }
    eprintln!("{what}: worst abs error {worst:.2e}");
    worst
}

#[test]
fn batch_normalization_two_steps() {
    let g = golden("layer_grads.json");
    let b = &g["BatchNormalization"];
    let inp = &b["inputs"];
    let (x1, x2, dout) = (arr(&inp["x_step1"]), arr(&inp["x_step2"]), arr(&inp["dout_step1"]));
    let mut s = HostStorage::new(4096, 64, 256, 16);
    let (mut tape, mut params) = s.split();
    let shape = Shape::new(4, 3);
    // x as a parameter, so backward reports dx.
    let xid = params.alloc(shape, ParamKind::Weight).unwrap();
    params.value_mut(xid).unwrap().copy_from_slice(&x1);
    let bn = BatchNorm::alloc(&mut params, 3, BatchNormConfig::BOOK).unwrap();
    params.value_mut(bn.gamma).unwrap().copy_from_slice(&arr(&inp["gamma"]));
    params.value_mut(bn.beta).unwrap().copy_from_slice(&arr(&inp["beta"]));
    let (atol, rtol) = (1e-5, 1e-5);

    // Step 1: train forward, then backward with dout (loss = Σ y ⊙ dout, so dL/dy = dout).
    let xp = tape.param(&params, xid).unwrap();
    let y = tape.batch_norm(xp, &mut params, &bn, Mode::Train).unwrap();
    close("step1 train out", tape.value(y).unwrap(), &arr(&b["step1_train_forward_out"]), atol, rtol);
    let d = tape.input(&dout, shape).unwrap();
    let p = tape.mul(y, d).unwrap();
    let l = tape.sum(p).unwrap();
    params.zero_grad();
    tape.backward(l, &mut params).unwrap();
    close("step1 dx", params.grad(xid).unwrap(), &arr(&b["step1_dx"]), atol, rtol);
    close("step1 dgamma", params.grad(bn.gamma).unwrap(), &arr(&b["step1_dgamma"]), atol, rtol);
    close("step1 dbeta", params.grad(bn.beta).unwrap(), &arr(&b["step1_dbeta"]), atol, rtol);
    close(
        "running mean 1",
        params.value(bn.running_mean).unwrap(),
        &arr(&b["running_mean_after_step1"]),
        atol,
        rtol,
    );
    close(
        "running var 1",
        params.value(bn.running_var).unwrap(),
        &arr(&b["running_var_after_step1"]),
        atol,
        rtol,
    );
    tape.reset();

    // Eval after step 1 (running variance only 0.1·var: large outputs, the book's behaviour).
    let x = tape.input(&x1, shape).unwrap();
    let y = tape.batch_norm(x, &mut params, &bn, Mode::Eval).unwrap();
    close("eval after 1", tape.value(y).unwrap(), &arr(&b["test_forward_x_step1_after_step1"]), atol, rtol);
    tape.reset();

    // Step 2: a train forward on new data moves the running statistics again.
    let x = tape.input(&x2, shape).unwrap();
    tape.batch_norm(x, &mut params, &bn, Mode::Train).unwrap();
    tape.reset();
    close(
        "running mean 2",
        params.value(bn.running_mean).unwrap(),
        &arr(&b["running_mean_after_step2"]),
        atol,
        rtol,
    );
    close(
        "running var 2",
        params.value(bn.running_var).unwrap(),
        &arr(&b["running_var_after_step2"]),
        atol,
        rtol,
    );
    let x = tape.input(&x1, shape).unwrap();
    let y = tape.batch_norm(x, &mut params, &bn, Mode::Eval).unwrap();
    close("eval after 2", tape.value(y).unwrap(), &arr(&b["test_forward_x_step1_after_step2"]), atol, rtol);
}

#[test]
fn dropout_book_goldens() {
    let g = golden("layer_grads.json");
    let d = &g["Dropout"];
    let x = arr(&d["inputs"]["x"]);
    let shape = Shape::new(2, 3);
    let mut s = HostStorage::new(4096, 64, 256, 16);
    let (mut tape, mut params) = s.split();
    let mut rng = <rand_xoshiro::Xoshiro128PlusPlus as rand_core::SeedableRng>::seed_from_u64(0);
    for ratio in ["0.5", "0.2", "0.15"] {
        let r: f32 = ratio.parse().unwrap();
        let xv = tape.input(&x, shape).unwrap();
        let y = tape.dropout(xv, Dropout::book(r), Mode::Eval, &mut rng).unwrap();
        let want = arr(&d[format!("test_out_ratio_{ratio}")]);
        close(&format!("dropout eval {ratio}"), tape.value(y).unwrap(), &want, 0.0, 1e-7);
        let scale = d[format!("test_scale_ratio_{ratio}")].as_f64().unwrap() as f32;
        assert_eq!(Dropout::book(r).eval_scale(), scale);
    }
    tape.reset();

    // Train mode driven by the golden's uniform draws; the gradient must be dout·mask.
    let t = &d["train_ratio_0.2_given_uniform_u"];
    let a = params.alloc(shape, ParamKind::Weight).unwrap();
    params.value_mut(a).unwrap().copy_from_slice(&x);
    let xv = tape.param(&params, a).unwrap();
    let y = tape.dropout_with_uniform(xv, Dropout::book(0.2), &arr(&t["u"])).unwrap();
    let out = tape.value(y).unwrap().to_vec();
    let want = arr(&t["out"]);
    assert_eq!(out, want);
    for (o, w) in out.iter().zip(&want) {
        assert_eq!(o.is_sign_negative(), w.is_sign_negative(), "sign of zero: {out:?} vs {want:?}");
    }
    let dout = tape.input(&arr(&t["dout"]), shape).unwrap();
    let p = tape.mul(y, dout).unwrap();
    let l = tape.sum(p).unwrap();
    tape.backward(l, &mut params).unwrap();
    assert_eq!(params.grad(a).unwrap(), arr(&t["dx"]).as_slice());
    let mask: Vec<bool> = t["mask"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|b| b.as_bool().unwrap()))
        .collect();
    for (i, &m) in mask.iter().enumerate() {
        assert_eq!(out[i] != 0.0 || x[i] == 0.0, m || x[i] == 0.0);
    }
}
