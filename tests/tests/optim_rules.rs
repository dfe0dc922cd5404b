//! Update rules beyond the book's paths: Adam (bias-corrected) and AdamW against a hand-checked
//! 3-step example, the fused per-tensor path against `step`, weight decay (coupled and decoupled)
//! and clipping through the optimizer, each written so it fails if the feature did nothing.

use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro128PlusPlus;
use staticgrad::optim::{self, Clip, DecayScope, HEADER_LEN, NAMES, Optimizer, WeightDecay};
use staticgrad::schedule::Schedule;
use staticgrad::{Error, ParamId, ParamKind, Params, Shape, weight_decay_loss};
use staticgrad_tests::{HostStorage, array, golden};

/// Three scalars as a 1×3 Weight, the given gradient sequence, lr 0.1.
fn three_steps(opt: Optimizer) -> [[f32; 3]; 3] {
    let mut s = HostStorage::new(0, 0, 3, 1);
    let (_, mut params) = s.split();
    let w = params.alloc(Shape::row(3), ParamKind::Weight).unwrap();
    params.value_mut(w).unwrap().copy_from_slice(&[0.5, -1.0, 2.0]);
    let grads = [[1.0, -2.0, 0.0], [0.5, 0.5, 1e-3], [-0.25, 1.0, 1e-3]];
    let mut state = [0.0f32; HEADER_LEN + 6];
    let mut out = [[0.0; 3]; 3];
    for (o, g) in out.iter_mut().zip(grads) {
        params.grad_mut(w).unwrap().copy_from_slice(&g);
        opt.step(&mut params, &mut state, 0.1).unwrap();
        o.copy_from_slice(params.value(w).unwrap());
    }
    out
}

/// f32 against float64 hand values: 1e-5 relative (measured worst ≈ 1.1e-6). f32 arithmetic and
/// f32 hyperparameters (1 − 0.999f32 is 1.3e-5 away from 0.001 relatively) account for that; a
/// wrong formula (no bias correction, ε inside the root, decay after the step) misses by far more.
fn assert_rows_close(got: [[f32; 3]; 3], want: [[f64; 3]; 3]) {
    for (t, (g, w)) in got.iter().zip(&want).enumerate() {
        for k in 0..3 {
            let err = (g[k] as f64 - w[k]).abs() / w[k].abs();
            assert!(err < 1e-5, "step {} element {k}: got {}, want {} (rel {err:.2e})", t + 1, g[k], w[k]);
        }
    }
}

/// Adam as published (Kingma & Ba, Algorithm 1; PyTorch `Adam`): lr 0.1, β = (0.9, 0.999), ε = 1e-8.
///
/// Step 1, element 0 (g = 1): m = 0.1, v = 0.001, m̂ = 0.1/0.1 = 1, v̂ = 0.001/0.001 = 1,
/// p = 0.5 − 0.1·1/(1 + 1e-8) = 0.400000001. Element 1 (g = −2): m̂ = −2, √v̂ = 2, p = −0.9000000005.
/// Element 2 (g = 0): m = v = 0, step 0/(0 + ε) = 0, p stays 2.
/// Step 2, element 0 (g = 0.5): m = 0.09 + 0.05 = 0.14, v = 0.000999 + 0.00025 = 0.001249,
/// m̂ = 0.14/0.19 = 0.736842…, v̂ = 0.001249/0.001999 = 0.624812…, √v̂ = 0.790451…,
/// p = 0.400000001 − 0.1·0.932178… = 0.306782038.
/// The remaining values come from the same formulas in Python float64:
/// `m=b1*m+(1-b1)*g; v=b2*v+(1-b2)*g*g; p-=lr*(m/(1-b1**t))/(sqrt(v/(1-b2**t))+eps)`.
/// [`three_steps`] from `start` with the gradients `grads` (state sized for the rule).
fn three_steps_from(opt: Optimizer, start: [f32; 3], grads: [[f32; 3]; 3]) -> [[f32; 3]; 3] {
    let mut s = HostStorage::new(0, 0, 3, 1);
    let (_, mut params) = s.split();
    let w = params.alloc(Shape::row(3), ParamKind::Weight).unwrap();
    params.value_mut(w).unwrap().copy_from_slice(&start);
    let mut state = vec![0.0f32; opt.state_len(3)];
    let mut out = [[0.0; 3]; 3];
    for (o, g) in out.iter_mut().zip(grads) {
        params.grad_mut(w).unwrap().copy_from_slice(&g);
        opt.step(&mut params, &mut state, 0.1).unwrap();
        o.copy_from_slice(params.value(w).unwrap());
    }
    out
}

/// AMSGrad against PyTorch's documented algorithm (`Adam(amsgrad=True)`: `v_max = max(v_max, v)`,
/// `v̂ = v_max/(1 − β₂ᵗ)`, `p −= lr·m̂/(√v̂ + ε)`), β = (0.9, 0.999), ε = 1e-8, lr 0.1, evaluated
/// in float64 by a separate Python loop of those lines. Elements 0 and 2 see a zero gradient
/// after step 1, so `v` falls below `v_max`: plain Adam gives 0.33299417… and 1.83299417… at
/// step 2 (checked below too), AMSGrad 0.33302768… and 1.83302768….
#[test]
fn adam_amsgrad_matches_pytorchs_formula_three_steps() {
    let grads = [[1.0, -2.0, 0.5], [0.0, 0.1, 0.0], [0.0, -0.1, 0.0]];
    let want = [
        [0.4000000009999999, -0.9000000005, 1.9000000019999999],
        [0.33302768782586617, -0.8367957563638443, 1.8330276897727609],
        [0.28128378717036895, -0.7848103292767011, 1.7812837900130463],
    ];
    let opt = Optimizer::adam_amsgrad();
    assert_eq!((opt.name(), opt.floats_per_param()), ("adam-amsgrad", 3));
    assert_rows_close(three_steps_from(opt, [0.5, -1.0, 2.0], grads), want);
    let plain = [
        [0.4000000009999999, -0.9000000005, 1.9000000019999999],
        [0.3329941765341885, -0.8367957563638443, 1.832994178482031],
        [0.281198480183237, -0.7848103292767011, 1.7811984830286562],
    ];
    assert_rows_close(three_steps_from(Optimizer::adam_bias_corrected(), [0.5, -1.0, 2.0], grads), plain);
}

/// RMSProp with momentum against PyTorch's documented algorithm (`RMSprop(alpha=0.99, eps=1e-7,
/// momentum=0.9)`: `v = αv + (1−α)g²`, `buf = μ·buf + g/(√v + ε)`, `p −= lr·buf`; centred:
/// `ṽ = v − ḡ²` with `ḡ = αḡ + (1−α)g`), lr 0.1, float64 by a separate Python loop.
#[test]
fn rmsprop_momentum_matches_pytorchs_formula_three_steps() {
    let grads = [[1.0, -2.0, 0.0], [0.5, 0.5, 1e-3], [-0.25, 1.0, 1e-3]];
    let start = [5.0, -10.0, 20.0];
    let want = [
        [4.000000999999, -9.00000049999975, 20.0],
        [2.650989048156607, -8.343685920649026, 19.000999000999002],
        [1.6569822932915577, -8.192891451066, 17.39351905348321],
    ];
    let opt = Optimizer::rmsprop_momentum(0.9);
    assert_eq!((opt.name(), opt.floats_per_param()), ("rmsprop-momentum", 2));
    assert_rows_close(three_steps_from(opt, start, grads), want);
    let centred = [
        [3.994963194840783, -8.99496268979104, 20.0],
        [2.637342858739717, -8.334750493609114, 18.995971271580455],
        [1.6368801548824774, -8.180540301685939, 17.37681614352262],
    ];
    let opt = Optimizer::rmsprop_momentum(0.9).centered(true);
    assert_eq!((opt.name(), opt.floats_per_param()), ("rmsprop-centered-momentum", 3));
    assert_rows_close(three_steps_from(opt, start, grads), centred);
    assert!(Optimizer::rmsprop_momentum(1.0).validate().is_err());
}

#[test]
fn adam_bias_corrected_matches_hand_checked_three_steps() {
    let want = [
        [0.400000001, -0.9000000005, 2.0],
        [0.3067820382981611, -0.8530531837013348, 1.9255873697336898],
        [0.25041590149632964, -0.8483098382649118, 1.8397421652790464],
    ];
    assert_rows_close(three_steps(Optimizer::adam_bias_corrected()), want);
}

/// AdamW (Loshchilov & Hutter; PyTorch `AdamW`), λ = 0.1: before each Adam step
/// `p ← p·(1 − lr·λ) = 0.99·p`, independent of the gradient.
/// Step 1: element 0: 0.5·0.99 − 0.1 ≈ 0.395000001; element 2 (g = 0): 2·0.99 = 1.98 exactly the
/// decay alone. Later values from the Python loop above with `p *= 1 - lr*wd` first.
#[test]
fn adamw_matches_hand_checked_three_steps() {
    let want = [
        [0.395000001, -0.8900000004999999, 1.98],
        [0.29783203828816107, -0.8341531836963347, 1.8857873697336898],
        [0.238487581103448, -0.8210683064229484, 1.7810842915817096],
    ];
    assert_rows_close(three_steps(Optimizer::adamw(0.1)), want);
}

#[test]
fn adam_forms_differ_only_where_eps_matters() {
    // Large gradients: the book's folded form and the bias-corrected one agree to ~1e-6.
    let book = three_steps(Optimizer::adam().with_eps(1e-8));
    let common = three_steps(Optimizer::adam_bias_corrected());
    for (a, b) in book.iter().zip(&common) {
        assert!((a[0] - b[0]).abs() < 1e-6 && (a[1] - b[1]).abs() < 1e-6);
    }
    // Gradients near ε: the book adds ε to the uncorrected √v (smaller by √(1 − β₂ᵗ) ≈ 0.03 at
    // t = 1), so ε weighs ~30× more there and the book's first step is visibly shorter.
    let first = |opt: Optimizer| {
        let mut s = HostStorage::new(0, 0, 1, 1);
        let (_, mut params) = s.split();
        let w = params.alloc(Shape::row(1), ParamKind::Weight).unwrap();
        params.grad_mut(w).unwrap()[0] = 1e-7;
        opt.step(&mut params, &mut [0.0; HEADER_LEN + 2], 1.0).unwrap();
        -params.value(w).unwrap()[0]
    };
    let (b, c) = (first(Optimizer::adam()), first(Optimizer::adam_bias_corrected().with_eps(1e-7)));
    assert!(b < 0.1 && c > 0.4, "book {b}, bias-corrected {c}");
}

/// A small model with every kind: weight, bias, running mean (not trainable), γ.
fn model(s: &mut HostStorage) -> (Params<'_>, [ParamId; 4]) {
    let (_, mut p) = s.split();
    let ids = [
        p.alloc(Shape::new(3, 2), ParamKind::Weight).unwrap(),
        p.alloc(Shape::row(2), ParamKind::Bias).unwrap(),
        p.alloc(Shape::row(2), ParamKind::RunningMean).unwrap(),
        p.alloc(Shape::row(2), ParamKind::Gamma).unwrap(),
    ];
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(7);
    for v in p.values_mut() {
        *v = (rng.next_u32() >> 8) as f32 / (1 << 23) as f32 - 1.0;
    }
    (p, ids)
}

fn fill_grads(p: &mut Params, step: u64) {
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(100 + step);
    for g in p.grads_mut() {
        *g = ((rng.next_u32() >> 8) as f32 / (1 << 23) as f32 - 1.0) * 3.0;
    }
}

fn variants() -> Vec<Optimizer> {
    let mut out = Vec::new();
    for name in NAMES {
        let o = Optimizer::by_name(name).unwrap();
        out.push(o);
        out.push(o.with_weight_decay(WeightDecay::L2(0.05)));
        out.push(
            o.with_weight_decay(WeightDecay::Decoupled(0.05)).with_decay_scope(DecayScope::AllTrainable),
        );
        out.push(o.with_clip(Clip::Value(0.5)));
    }
    out
}

#[test]
fn fused_per_tensor_updates_equal_step_bit_for_bit() {
    for opt in variants() {
        let (mut sa, mut sb) = (HostStorage::new(0, 0, 12, 4), HostStorage::new(0, 0, 12, 4));
        let (mut pa, _) = model(&mut sa);
        let (mut pb, _) = model(&mut sb);
        let n = opt.state_len(pa.len());
        let (mut state_a, mut state_b) = (vec![0.0f32; n], vec![0.0f32; n]);
        let (oa, ob) = (opt, opt);
        let k = opt.floats_per_param();
        for step in 0..5 {
            let lr = 0.05 + 0.01 * step as f32;
            fill_grads(&mut pa, step);
            fill_grads(&mut pb, step);
            oa.step(&mut pa, &mut state_a, lr).unwrap();
            // The fused mode: begin once, then each tensor with its documented state slice.
            ob.begin_step(&mut state_b).unwrap();
            let (values, grads, table) = pb.split_mut();
            for &e in table {
                let r = e.range();
                assert_eq!(ob.state_range(&e), HEADER_LEN + k * r.start..HEADER_LEN + k * r.end);
                ob.update_tensor(e, &mut values[r.clone()], &mut grads[r], &mut state_b, lr).unwrap();
            }
        }
        let bits = |p: &Params| p.values().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&pa), bits(&pb), "{opt:?}");
        assert_eq!(state_a, state_b, "{opt:?}");
        assert_eq!(optim::steps(&state_a), Ok(5));
        // Running statistics were never touched.
        let mut fs = HostStorage::new(0, 0, 12, 4);
        let (fresh, ids) = model(&mut fs);
        assert_eq!(pa.value(ids[2]).unwrap(), fresh.value(ids[2]).unwrap());
    }
}

#[test]
fn every_rule_moves_downhill_on_a_quadratic() {
    // 200 steps on f(w) = Σ wᵢ²/2 from the model's random start: every rule must shrink f by 10×.
    for opt in variants() {
        let mut s = HostStorage::new(0, 0, 12, 4);
        let (mut p, _) = model(&mut s);
        let f = |p: &Params| p.values().iter().map(|v| v * v).sum::<f32>() / 2.0;
        let f0 = f(&p);
        let mut state = vec![0.0; opt.state_len(p.len())];
        let o = opt;
        let lr = if matches!(o.rule, optim::Rule::Adam { .. }) { 0.01 } else { 0.05 };
        for _ in 0..200 {
            let (v, g, _) = p.split_mut();
            g.copy_from_slice(v);
            p.grads_mut()[8..10].fill(0.0); // running mean: no gradient (and never updated)
            o.step(&mut p, &mut state, lr).unwrap();
        }
        let running: f32 = p.values()[8..10].iter().map(|v| v * v).sum::<f32>() / 2.0;
        assert!(f(&p) - running < (f0 - running) / 10.0, "{}: {f0} -> {}", o.name(), f(&p));
    }
}

#[test]
fn coupled_l2_matches_the_book_term() {
    // layer_grads.json WeightDecay: W, λ = 0.1, loss term 0.5·λ·ΣW², gradient term λ·W.
    let g = golden("layer_grads.json");
    let wd = &g["WeightDecay"];
    let (w0, shape) = array(&wd["inputs"]["W"]);
    let lambda = wd["inputs"]["lambda"].as_f64().unwrap() as f32;
    let (grad_term, _) = array(&wd["grad_term"]);
    let mut s = HostStorage::new(0, 0, 8, 2);
    let (_, mut p) = s.split();
    let w = p.alloc(shape, ParamKind::Weight).unwrap();
    let b = p.alloc(Shape::row(2), ParamKind::Bias).unwrap();
    for (v, &x) in p.value_mut(w).unwrap().iter_mut().zip(&w0) {
        *v = x as f32;
    }
    p.value_mut(b).unwrap().fill(3.0);
    assert_eq!(weight_decay_loss(&p, lambda) as f64, wd["loss_term"].as_f64().unwrap());
    // Zero data gradient, lr 1: the step is exactly −λ·W for the weight, nothing for the bias.
    let opt = Optimizer::sgd().with_weight_decay(WeightDecay::L2(lambda));
    assert_eq!(opt.decay_loss(&p) as f64, wd["loss_term"].as_f64().unwrap());
    opt.step(&mut p, &mut [0.0; HEADER_LEN], 1.0).unwrap();
    for ((&v, &x), &gt) in p.value(w).unwrap().iter().zip(&w0).zip(&grad_term) {
        assert!(((x - v as f64) - gt).abs() < 1e-7, "{x} - {v} vs {gt}");
    }
    assert_eq!(p.value(b).unwrap(), &[3.0, 3.0]);
}

#[test]
fn decoupled_decay_shrinks_weights_independently_of_adam_scaling() {
    // Zero gradient: Adam itself does nothing, so all movement is the decay W·(1 − lr·λ)ᵗ.
    let mut s = HostStorage::new(0, 0, 4, 2);
    let (_, mut p) = s.split();
    let w = p.alloc(Shape::row(2), ParamKind::Weight).unwrap();
    let b = p.alloc(Shape::row(2), ParamKind::Bias).unwrap();
    p.value_mut(w).unwrap().copy_from_slice(&[1.0, -2.0]);
    p.value_mut(b).unwrap().copy_from_slice(&[1.0, -2.0]);
    let opt = Optimizer::adamw(0.5);
    let mut state = [0.0; HEADER_LEN + 8];
    for _ in 0..10 {
        opt.step(&mut p, &mut state, 0.1).unwrap();
    }
    let k = 0.95f32.powi(10);
    let v = p.value(w).unwrap();
    assert!((v[0] - k).abs() < 1e-6 && (v[1] + 2.0 * k).abs() < 1e-6, "{v:?}");
    assert_eq!(p.value(b).unwrap(), &[1.0, -2.0]);
    // With coupled L2 the same λ goes through Adam's normalisation instead: a step of ≈ lr
    // regardless of |W|, so the two decays are different things.
    let mut s2 = HostStorage::new(0, 0, 4, 2);
    let (_, mut p2) = s2.split();
    let w2 = p2.alloc(Shape::row(2), ParamKind::Weight).unwrap();
    p2.value_mut(w2).unwrap().copy_from_slice(&[1.0, -2.0]);
    let l2 = Optimizer::adam_bias_corrected().with_weight_decay(WeightDecay::L2(0.5));
    l2.step(&mut p2, &mut [0.0; HEADER_LEN + 8], 0.1).unwrap();
    let v2 = p2.value(w2).unwrap();
    assert!((v2[0] - 0.9).abs() < 1e-5 && (v2[1] + 1.9).abs() < 1e-5, "{v2:?}");
}

#[test]
fn clipping_through_the_optimizer() {
    let run = |clip: Clip| {
        let mut s = HostStorage::new(0, 0, 4, 2);
        let (_, mut p) = s.split();
        let w = p.alloc(Shape::row(2), ParamKind::Weight).unwrap();
        let r = p.alloc(Shape::row(2), ParamKind::RunningVar).unwrap();
        p.grad_mut(w).unwrap().copy_from_slice(&[3.0, -4.0]);
        p.grad_mut(r).unwrap().copy_from_slice(&[1e3, 1e3]); // not trainable: not in the norm
        let opt = Optimizer::sgd().with_clip(clip);
        opt.step(&mut p, &mut [0.0; HEADER_LEN], 1.0).unwrap();
        (p.value(w).unwrap().to_vec(), p.grad(w).unwrap().to_vec())
    };
    assert_eq!(run(Clip::None).0, [-3.0, 4.0]);
    let (v, g) = run(Clip::GlobalNorm(1.0));
    assert!((v[0] + 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6, "{v:?}");
    assert_eq!(v, g.iter().map(|g| -g).collect::<Vec<_>>()); // the grad buffer holds the clipped one
    assert_eq!(run(Clip::Value(1.0)).0, [-1.0, 1.0]);
    assert_eq!(run(Clip::GlobalNorm(10.0)).0, [-3.0, 4.0]); // under the limit: untouched
}

#[test]
fn non_finite_gradient_leaves_everything_unchanged() {
    for opt in variants() {
        let mut s = HostStorage::new(0, 0, 12, 4);
        let (mut p, ids) = model(&mut s);
        let before = p.values().to_vec();
        let mut state = vec![0.0; opt.state_len(p.len())];
        let o = opt;
        fill_grads(&mut p, 0);
        p.grad_mut(ids[3]).unwrap()[1] = f32::NAN; // γ, the last tensor
        let e = o.step(&mut p, &mut state, 0.1);
        assert_eq!(e, Err(Error::NonFinite { what: "gradient", index: 11 }), "{opt:?}");
        assert_eq!(p.values(), before.as_slice());
        assert!(state.iter().all(|&s| s == 0.0));
        assert_eq!(optim::steps(&state), Ok(0));
    }
}

#[test]
fn a_schedule_drives_the_step_size() {
    // Constant gradient 1, SGD: the distance travelled is the sum of the scheduled rates.
    let travel = |schedule: Schedule| {
        let mut s = HostStorage::new(0, 0, 1, 1);
        let (_, mut p) = s.split();
        let w = p.alloc(Shape::row(1), ParamKind::Weight).unwrap();
        let opt = Optimizer::sgd();
        for t in 0..10 {
            p.grad_mut(w).unwrap()[0] = 1.0;
            opt.step(&mut p, &mut [0.0; HEADER_LEN], schedule.lr(t)).unwrap();
        }
        -p.value(w).unwrap()[0]
    };
    assert!((travel(Schedule::constant(0.1)) - 1.0).abs() < 1e-6);
    assert!((travel(Schedule::step_decay(0.1, 5, 0.5)) - 0.75).abs() < 1e-6); // 5·0.1 + 5·0.05
    assert!((travel(Schedule::constant(0.1).with_warmup(4)) - 0.85).abs() < 1e-6); // 0.025+0.05+0.075+0.1+6·0.1
    assert!(travel(Schedule::cosine(0.1, 10, 0.0)) < 0.6); // the mean of a half cosine is lr/2
}
