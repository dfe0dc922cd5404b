//! Op values and gradients against the book's goldens (tests/golden/layer_grads.json):
//! Affine, ReLU, Sigmoid, SoftmaxWithLoss and the two whole networks without batch-norm.
//! The goldens are float64; the core computes in f32, so comparisons carry an f32 tolerance
//! except where the inputs are dyadic and every operation is exact.

use serde_json::Value;
use staticgrad::ops::softmax_cross_entropy::BOOK_EPS;
use staticgrad::{ParamId, ParamKind, Params, Tape, Var};
use staticgrad_tests::{HostStorage, array, array_f32, assert_close, golden};

const RTOL: f64 = 1e-6;

fn layers() -> Value {
    golden("layer_grads.json")
}

fn alloc_with(params: &mut Params, v: &Value, kind: ParamKind) -> ParamId {
    let (d, s) = array_f32(v);
    let id = params.alloc(s, kind).unwrap();
    params.value_mut(id).unwrap().copy_from_slice(&d);
    id
}

/// Runs `f` on input `x` (registered as a parameter so it gets a gradient), then backward of
/// Σ(y ⊙ dout), whose gradient with respect to y is exactly `dout`. Returns (y, dx).
fn through(
    x: &Value,
    dout: &Value,
    f: impl Fn(&mut Tape, Var) -> staticgrad::Result<Var>,
) -> (Vec<f32>, Vec<f32>) {
    let mut s = HostStorage::new(4096, 32, 1024, 8);
    let (mut tape, mut params) = s.split();
    let p = alloc_with(&mut params, x, ParamKind::Weight);
    let xv = tape.param(&params, p).unwrap();
    let y = f(&mut tape, xv).unwrap();
    let (dd, ds) = array_f32(dout);
    let d = tape.input(&dd, ds).unwrap();
    let prod = tape.mul(y, d).unwrap();
    let l = tape.sum(prod).unwrap();
    tape.backward(l, &mut params).unwrap();
    (tape.value(y).unwrap().to_vec(), params.grad(p).unwrap().to_vec())
}

#[test]
fn affine() {
    let g = &layers()["Affine"];
    let mut s = HostStorage::new(4096, 32, 1024, 8);
    let (mut tape, mut params) = s.split();
    let w = alloc_with(&mut params, &g["inputs"]["W"], ParamKind::Weight);
    let b = alloc_with(&mut params, &g["inputs"]["b"], ParamKind::Bias);
    let x = alloc_with(&mut params, &g["inputs"]["x"], ParamKind::Weight);
    let xv = tape.param(&params, x).unwrap();
    let y = tape.affine(xv, &params, w, b).unwrap();
    let (dd, ds) = array_f32(&g["inputs"]["dout"]);
    let d = tape.input(&dd, ds).unwrap();
    let prod = tape.mul(y, d).unwrap();
    let l = tape.sum(prod).unwrap();
    tape.backward(l, &mut params).unwrap();
    // Dyadic inputs: every product and sum is exact, so these are equalities.
    assert_close("forward", tape.value(y).unwrap(), &array(&g["forward_out"]).0, 0.0, 0.0);
    assert_close("dx", params.grad(x).unwrap(), &array(&g["dx"]).0, 0.0, 0.0);
    assert_close("dW", params.grad(w).unwrap(), &array(&g["dW"]).0, 0.0, 0.0);
    assert_close("db", params.grad(b).unwrap(), &array(&g["db"]).0, 0.0, 0.0);
}

#[test]
fn relu() {
    let g = &layers()["ReLU"];
    let (y, dx) = through(&g["inputs"]["x"], &g["inputs"]["dout"], |t, v| t.relu(v));
    assert_close("forward", &y, &array(&g["forward_out"]).0, 0.0, 0.0);
    assert_close("dx", &dx, &array(&g["dx"]).0, 0.0, 0.0);
}

#[test]
fn sigmoid() {
    let g = &layers()["Sigmoid"];
    let (y, dx) = through(&g["inputs"]["x"], &g["inputs"]["dout"], |t, v| t.sigmoid(v));
    assert_close("forward", &y, &array(&g["forward_out"]).0, RTOL, 1e-7);
    assert_close("dx", &dx, &array(&g["dx"]).0, RTOL, 1e-7);
}

fn labels(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|l| l.as_u64().unwrap() as u32).collect()
}

#[test]
fn softmax_with_loss() {
    let g = &layers()["SoftmaxWithLoss"];
    for case in ["case_2x3", "case_3x10"] {
        let c = &g[case];
        let t = labels(&c["inputs"]["t_index"]);
        let mut s = HostStorage::new(4096, 32, 1024, 8);
        let (mut tape, mut params) = s.split();
        let x = alloc_with(&mut params, &c["inputs"]["x"], ParamKind::Weight);
        let xv = tape.param(&params, x).unwrap();
        let l = tape.softmax_cross_entropy_eps(xv, &t, BOOK_EPS).unwrap();
        let loss = tape.scalar(l).unwrap() as f64;
        let want = c["loss"].as_f64().unwrap();
        assert!((loss - want).abs() <= 1e-6 * want.abs(), "{case}: loss {loss} vs {want}");
        tape.backward(l, &mut params).unwrap();
        assert_close(case, params.grad(x).unwrap(), &array(&c["dx"]).0, RTOL, 1e-7);
    }
    // Saturated case: the book's +1e-7 caps a confident wrong answer at −ln(1e-7).
    let c = &g["case_saturated"];
    let (xd, xs) = array_f32(&c["inputs"]["x"]);
    let mut s = HostStorage::new(256, 8, 16, 2);
    let (mut tape, _) = s.split();
    let x = tape.input(&xd, xs).unwrap();
    for (label, key) in [(1, "loss_correct_label_1"), (0, "loss_wrong_label_0")] {
        let l = tape.softmax_cross_entropy_eps(x, &[label], BOOK_EPS).unwrap();
        let (got, want) = (tape.scalar(l).unwrap() as f64, c[key].as_f64().unwrap());
        // ln(1 + 1e-7) is below f32's resolution at 1.0: allow one ulp of 1.0 (1.19e-7).
        assert!((got - want).abs() <= (1e-6 * want.abs()).max(f32::EPSILON as f64), "{key}: {got} vs {want}");
    }
}

/// The 4-3-3-3 networks of the golden file (MultiLayerNet, batch 4), built directly on the tape.
fn network(name: &str, sigmoid: bool, lambda: f32) {
    let all = layers();
    let n = &all["networks"];
    let net = &n[name];
    let t = labels(&n["inputs"]["t_index"]);
    let mut s = HostStorage::new(4096, 64, 1024, 16);
    let (mut tape, mut params) = s.split();
    let layers: Vec<(usize, ParamId, ParamId)> = (1..=3)
        .map(|l| {
            let w = alloc_with(&mut params, &net["params"][format!("W{l}")], ParamKind::Weight);
            let b = alloc_with(&mut params, &net["params"][format!("b{l}")], ParamKind::Bias);
            (l, w, b)
        })
        .collect();
    let (xd, xs) = array_f32(&n["inputs"]["x"]);
    let mut h = tape.input(&xd, xs).unwrap();
    for &(l, w, b) in &layers {
        h = tape.affine(h, &params, w, b).unwrap();
        if l < 3 {
            h = if sigmoid { tape.sigmoid(h).unwrap() } else { tape.relu(h).unwrap() };
        }
    }
    let l = tape.softmax_cross_entropy_eps(h, &t, BOOK_EPS).unwrap();
    tape.backward(l, &mut params).unwrap();
    // The book's weight decay, written out: 0.5·λ·ΣW² on the loss, λ·W on each weight gradient.
    let mut penalty = 0.0f32;
    for &(_, w, _) in &layers {
        let wv = params.value(w).unwrap().to_vec();
        penalty += 0.5 * lambda * wv.iter().map(|v| v * v).sum::<f32>();
        for (g, v) in params.grad_mut(w).unwrap().iter_mut().zip(&wv) {
            *g += lambda * v;
        }
    }
    let loss = (tape.scalar(l).unwrap() + penalty) as f64;
    let want = net["loss"].as_f64().unwrap();
    assert!((loss - want).abs() <= 1e-6 * want, "{name}: loss {loss} vs {want}");
    for &(l, w, b) in &layers {
        let gw = array(&net["grads"][format!("W{l}")]).0;
        let gb = array(&net["grads"][format!("b{l}")]).0;
        assert_close(&format!("{name} dW{l}"), params.grad(w).unwrap(), &gw, 1e-5, 1e-6);
        assert_close(&format!("{name} db{l}"), params.grad(b).unwrap(), &gb, 1e-5, 1e-6);
    }
}

#[test]
fn network_relu_weight_decay() {
    network("MultiLayerNet_relu_wd0.1", false, 0.1);
}

#[test]
fn network_sigmoid() {
    network("MultiLayerNet_sigmoid_wd0", true, 0.0);
}
