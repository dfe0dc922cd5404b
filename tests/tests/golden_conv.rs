//! Convolution and pooling against the book's chapter-7 goldens (tests/golden/conv_layers.json,
//! see tests/golden/CONV.md): the `Convolution` cases a–e and the `Pooling` cases p1–p4 (ties
//! included) forward and backward, and the reduced SimpleConvNet's gradient and three SGD steps.
//!
//! The conv and pool inputs are dyadic, so every product and sum is exact in f32 in any order:
//! those are compared with `==`. The SimpleConvNet entry is float64 from random weights: compared
//! normwise within 1e-5 relative (CONV.md: an f32 computation lands within 1.8e-7).

use serde_json::Value;
use staticgrad::ops::softmax_cross_entropy::BOOK_EPS;
use staticgrad::{Conv2dConfig, ImageShape, ParamId, ParamKind, Params, Pool2dConfig, Shape, Tape, Var};
use staticgrad_tests::{HostStorage, golden};

fn conv_golden() -> Value {
    golden("conv_layers.json")
}

/// A golden array of any rank: its row-major data and its dims.
fn flat(v: &Value) -> (Vec<f64>, Vec<usize>) {
    let dims =
        v["shape"].as_array().expect("shape").iter().map(|d| d.as_u64().expect("dim") as usize).collect();
    let data = v["data"].as_array().expect("data").iter().map(|x| x.as_f64().expect("f64")).collect();
    (data, dims)
}

fn f32s(v: &Value) -> Vec<f32> {
    flat(v).0.into_iter().map(|x| x as f32).collect()
}

/// `v` as a parameter of `shape` (the golden's data must have that many elements).
fn alloc(params: &mut Params, v: &Value, shape: Shape, kind: ParamKind) -> ParamId {
    let d = f32s(v);
    assert_eq!(d.len(), shape.len());
    let id = params.alloc(shape, kind).unwrap();
    params.value_mut(id).unwrap().copy_from_slice(&d);
    id
}

fn usize_of(v: &Value) -> usize {
    v.as_u64().expect("integer") as usize
}

/// Exact equality with the float64 golden (every value is exact in f32 here).
fn assert_exact(what: &str, got: &[f32], want: &Value) {
    let (want, _) = flat(want);
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
        assert!(f64::from(g) == w, "{what}[{i}]: got {g}, want {w}");
    }
}

/// Σ(y ⊙ dout): its gradient with respect to `y` is exactly `dout`.
fn dot_with(tape: &mut Tape, y: Var, dout: &Value) -> Var {
    let d = tape.input(&f32s(dout), tape.shape(y).unwrap()).unwrap();
    let p = tape.mul(y, d).unwrap();
    tape.sum(p).unwrap()
}

#[test]
fn convolution_cases() {
    let g = conv_golden();
    let cases = g["Convolution"].as_object().unwrap();
    assert_eq!(cases.len(), 5);
    for (name, c) in cases {
        let p = &c["params"];
        let [n, ch, h, w, f, kh, kw, stride, pad] =
            ["N", "C", "H", "W", "FN", "FH", "FW", "stride", "pad"].map(|k| usize_of(&p[k]));
        let (image, config) = (ImageShape::new(ch, h, w), Conv2dConfig::new(kh, kw, stride, pad));
        assert_eq!(
            config.output(image, f).unwrap(),
            ImageShape::new(f, usize_of(&p["out_h"]), usize_of(&p["out_w"]))
        );
        // Input as a parameter (its gradient is checked), and as data (the first layer's path,
        // which skips dx): the same forward and parameter gradients.
        for x_is_param in [true, false] {
            let mut s = HostStorage::new(1 << 14, 8, 1 << 12, 4);
            let (mut tape, mut params) = s.split();
            let wid = alloc(&mut params, &c["inputs"]["W"], Shape::new(f, ch * kh * kw), ParamKind::Weight);
            let bid = alloc(&mut params, &c["inputs"]["b"], Shape::row(f), ParamKind::Bias);
            let xs = Shape::new(n, ch * h * w);
            let xid = alloc(&mut params, &c["inputs"]["x"], xs, ParamKind::Weight);
            let x = if x_is_param {
                tape.param(&params, xid).unwrap()
            } else {
                tape.input(&f32s(&c["inputs"]["x"]), xs).unwrap()
            };
            let y = tape.conv2d(x, &params, wid, bid, image, config).unwrap();
            let l = dot_with(&mut tape, y, &c["inputs"]["dout"]);
            params.zero_grad();
            tape.backward(l, &mut params).unwrap();
            assert_exact(&format!("{name} forward"), tape.value(y).unwrap(), &c["forward_out"]);
            assert_exact(&format!("{name} dW"), params.grad(wid).unwrap(), &c["dW"]);
            assert_exact(&format!("{name} db"), params.grad(bid).unwrap(), &c["db"]);
            if x_is_param {
                assert_exact(&format!("{name} dx"), params.grad(xid).unwrap(), &c["dx"]);
            } else {
                assert!(params.grad(xid).unwrap().iter().all(|&v| v == 0.0), "{name}: dx of data");
            }
        }
    }
}

#[test]
fn pooling_cases() {
    let g = conv_golden();
    let cases = g["Pooling"].as_object().unwrap();
    assert_eq!(cases.len(), 4);
    for (name, c) in cases {
        let p = &c["params"];
        let [n, ch, h, w, ph, pw, stride, pad] =
            ["N", "C", "H", "W", "pool_h", "pool_w", "stride", "pad"].map(|k| usize_of(&p[k]));
        assert_eq!(pad, 0);
        let (image, config) = (ImageShape::new(ch, h, w), Pool2dConfig::new(ph, pw, stride));
        let (oh, ow) = (usize_of(&p["out_h"]), usize_of(&p["out_w"]));
        let mut s = HostStorage::new(1 << 14, 8, 1 << 12, 4);
        let (mut tape, mut params) = s.split();
        let xid = alloc(&mut params, &c["inputs"]["x"], Shape::new(n, ch * h * w), ParamKind::Weight);
        let x = tape.param(&params, xid).unwrap();
        let y = tape.max_pool2d(x, image, config).unwrap();
        let l = dot_with(&mut tape, y, &c["inputs"]["dout"]);
        params.zero_grad();
        tape.backward(l, &mut params).unwrap();
        assert_exact(&format!("{name} forward"), tape.value(y).unwrap(), &c["forward_out"]);
        assert_exact(&format!("{name} dx"), params.grad(xid).unwrap(), &c["dx"]);

        // The element each window picked: backward of one output at a time.
        let (argmax, _) = flat(&c["argmax_in_window"]);
        let outs = n * ch * oh * ow;
        assert_eq!(argmax.len(), outs);
        for (k, &want) in argmax.iter().enumerate() {
            tape.reset();
            let x = tape.param(&params, xid).unwrap();
            let y = tape.max_pool2d(x, image, config).unwrap();
            let mut onehot = vec![0.0; outs];
            onehot[k] = 1.0;
            let d = tape.input(&onehot, tape.shape(y).unwrap()).unwrap();
            let prod = tape.mul(y, d).unwrap();
            let l = tape.sum(prod).unwrap();
            params.zero_grad();
            tape.backward(l, &mut params).unwrap();
            let dx = params.grad(xid).unwrap();
            let picked = dx.iter().position(|&v| v == 1.0).expect("one input gets the gradient");
            assert_eq!(dx.iter().filter(|&&v| v != 0.0).count(), 1, "{name} output {k}");
            let (img, plane) = (picked / (h * w), picked % (h * w));
            assert_eq!(img, k / (oh * ow), "{name} output {k}: image and channel");
            let (i, j) = ((k % (oh * ow)) / ow, k % ow);
            let (r, col) = (plane / w - i * stride, plane % w - j * stride);
            assert_eq!(r * pw + col, want as usize, "{name} output {k}: index in the window");
        }
    }
}

/// `‖got − want‖∞ / ‖want‖∞` (the measure CONV.md's self-check uses).
fn normwise(got: &[f32], want: &Value) -> f64 {
    let (want, _) = flat(want);
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0.0f64, |m, w| m.max(w.abs()));
    got.iter().zip(&want).map(|(&g, w)| (f64::from(g) - w).abs()).fold(0.0, f64::max) / scale
}

const NAMES: [&str; 6] = ["W1", "b1", "W2", "b2", "W3", "b3"];

/// The reduced SimpleConvNet: conv 4×3×3 → ReLU → max-pool 2×2 → affine 64→8 → ReLU →
/// affine 8→5 → softmax with the book's cross-entropy.
fn simple_convnet(tape: &mut Tape, params: &Params, ids: &[ParamId; 6], net: &Value) -> Var {
    let x = tape.input(&f32s(&net["inputs"]["x"]), Shape::new(3, 100)).unwrap();
    let h =
        tape.conv2d(x, params, ids[0], ids[1], ImageShape::new(1, 10, 10), Conv2dConfig::valid(3)).unwrap();
    let h = tape.relu(h).unwrap();
    let h = tape.max_pool2d(h, ImageShape::new(4, 8, 8), Pool2dConfig::square(2)).unwrap();
    let h = tape.affine(h, params, ids[2], ids[3]).unwrap();
    let h = tape.relu(h).unwrap();
    let h = tape.affine(h, params, ids[4], ids[5]).unwrap();
    let t: Vec<u32> =
        net["inputs"]["t_index"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    tape.softmax_cross_entropy_eps(h, &t, BOOK_EPS).unwrap()
}

#[test]
fn simple_convnet_gradient_and_three_sgd_steps() {
    let g = conv_golden();
    let net = &g["SimpleConvNet"];
    let mut s = HostStorage::new(1 << 14, 16, 1 << 12, 8);
    let (mut tape, mut params) = s.split();
    let shapes =
        [Shape::new(4, 9), Shape::row(4), Shape::new(64, 8), Shape::row(8), Shape::new(8, 5), Shape::row(5)];
    let ids: [ParamId; 6] = std::array::from_fn(|i| {
        let kind = if i % 2 == 0 { ParamKind::Weight } else { ParamKind::Bias };
        alloc(&mut params, &net["params"][NAMES[i]], shapes[i], kind)
    });
    let l = simple_convnet(&mut tape, &params, &ids, net);
    let loss = f64::from(tape.scalar(l).unwrap());
    let want = net["loss"].as_f64().unwrap();
    assert!((loss - want).abs() <= 1e-6 * want, "loss {loss} vs {want}");
    params.zero_grad();
    tape.backward(l, &mut params).unwrap();
    for (i, id) in ids.iter().enumerate() {
        let e = normwise(params.grad(*id).unwrap(), &net["grads"][NAMES[i]]);
        eprintln!("SimpleConvNet d{}: normwise rel error {e:.2e}", NAMES[i]);
        assert!(e <= 1e-5, "d{}: {e:.2e}", NAMES[i]);
    }

    // Three book-SGD steps on the same batch: gradient, update, loss.
    let sgd = &net["sgd_lr0.1_same_batch"];
    params.zero_grad();
    tape.reset();
    for step in 0..3 {
        let l = simple_convnet(&mut tape, &params, &ids, net);
        params.zero_grad();
        tape.backward(l, &mut params).unwrap();
        let (v, gr, _) = params.split_mut();
        for (v, g) in v.iter_mut().zip(gr.iter()) {
            *v -= 0.1 * g;
        }
        tape.reset();
        let l = simple_convnet(&mut tape, &params, &ids, net);
        let (got, want) =
            (f64::from(tape.scalar(l).unwrap()), sgd["loss_after_step"][step].as_f64().unwrap());
        assert!((got - want).abs() <= 1e-6 * want, "loss after step {}: {got} vs {want}", step + 1);
        tape.reset();
    }
    for (i, id) in ids.iter().enumerate() {
        let e = normwise(params.value(*id).unwrap(), &sgd["params_after_3_steps"][NAMES[i]]);
        assert!(e <= 1e-5, "{} after 3 steps: {e:.2e}", NAMES[i]);
    }
}
