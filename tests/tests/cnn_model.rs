//! CNNs as `Model` layer lists: the book's reduced SimpleConvNet of
//! tests/golden/conv_layers.json built as a list and fed the golden parameters through the
//! model's handles (loss, every gradient, three SGD steps, and the same bits as the network
//! built by hand on the tape); the fused and overwriting paths against the recorded one; the
//! fused row scratch exactly as planned; what `validate` refuses; conv initialisation.

use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;
use serde_json::Value;
use staticgrad::model::{Layer, LayerKind, Loss, Model, StepPath, Targets};
use staticgrad::ops::softmax_cross_entropy::BOOK_EPS;
use staticgrad::optim::{self, Optimizer};
use staticgrad::train::Trainer;
use staticgrad::{
    BatchNormConfig, Conv2dConfig, Error, ImageShape, Init, Mode, ParamEntry, ParamId, Params, Plan,
    Pool2dConfig, Region, Shape,
};
use staticgrad_tests::{HostMemory, HostStorage, golden};

/// The reduced SimpleConvNet of the golden: conv 4×3×3 → ReLU → max-pool 2×2 → dense 8 → ReLU →
/// dense 5, the book's cross-entropy, on 1×10×10 images.
const SIMPLE: [Layer; 6] = [
    Layer::conv2d(4, 3, 1, 0),
    Layer::relu(),
    Layer::max_pool2d(2, 2),
    Layer::dense(8),
    Layer::relu(),
    Layer::dense(5),
];

fn simple() -> Model<'static> {
    Model::image(1, 10, 10, &SIMPLE).with_loss(Loss::SoftmaxCrossEntropyBook)
}

fn f32s(v: &Value) -> Vec<f32> {
    v["data"].as_array().expect("data").iter().map(|x| x.as_f64().expect("f64") as f32).collect()
}

fn f64s(v: &Value) -> Vec<f64> {
    v["data"].as_array().expect("data").iter().map(|x| x.as_f64().expect("f64")).collect()
}

/// `‖got − want‖∞ / ‖want‖∞` (as tests/tests/golden_conv.rs).
fn normwise(got: &[f32], want: &Value) -> f64 {
    let want = f64s(want);
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0.0f64, |m, w| m.max(w.abs()));
    got.iter().zip(&want).map(|(&g, w)| (f64::from(g) - w).abs()).fold(0.0, f64::max) / scale
}

const NAMES: [&str; 6] = ["W1", "b1", "W2", "b2", "W3", "b3"];

/// The model's handles in the golden's order.
fn handles(m: &Model) -> [ParamId; 6] {
    [
        m.conv_weight(0).unwrap(),
        m.conv_bias(0).unwrap(),
        m.weight(0).unwrap(),
        m.bias(0).unwrap(),
        m.weight(1).unwrap(),
        m.bias(1).unwrap(),
    ]
}

#[test]
fn simple_convnet_as_a_model_matches_the_golden() {
    let g = golden("conv_layers.json");
    let net = &g["SimpleConvNet"];
    let m = simple();
    m.validate().unwrap();
    assert_eq!((m.inputs(), m.outputs(), m.conv_layers(), m.dense_layers()), (100, 5, 1, 2));
    let x = f32s(&net["inputs"]["x"]);
    let t: Vec<u32> =
        net["inputs"]["t_index"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    let mut s = HostStorage::new(m.tape_floats(3), m.tape_nodes(), m.param_len(), m.param_tensors());
    let (mut tape, mut params) = s.split();
    m.alloc(&mut params).unwrap();
    let ids = handles(&m);
    for (i, id) in ids.iter().enumerate() {
        let v = f32s(&net["params"][NAMES[i]]);
        assert_eq!(params.entry(*id).unwrap().shape.len(), v.len(), "{}", NAMES[i]);
        params.value_mut(*id).unwrap().copy_from_slice(&v);
    }
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
    let loss = m.gradient(&mut tape, &mut params, &x, Targets::Labels(&t), &mut rng).unwrap();
    let want = net["loss"].as_f64().unwrap();
    assert!((f64::from(loss) - want).abs() <= 1e-6 * want, "loss {loss} vs {want}");
    assert_eq!(tape.floats_used(), m.tape_floats(3));
    for (i, id) in ids.iter().enumerate() {
        let e = normwise(params.grad(*id).unwrap(), &net["grads"][NAMES[i]]);
        eprintln!("SimpleConvNet as a Model, d{}: normwise rel error {e:.2e}", NAMES[i]);
        assert!(e <= 1e-5, "d{}: {e:.2e}", NAMES[i]);
    }

    // The same bits as the network recorded by hand on the tape (golden_conv.rs).
    let model_grads = params.grads().to_vec();
    let mut s2 = HostStorage::new(1 << 14, 16, m.param_len(), m.param_tensors());
    let (mut tape2, mut p2) = s2.split();
    m.alloc(&mut p2).unwrap();
    p2.values_mut().copy_from_slice(params.values());
    let xv = tape2.input(&x, Shape::new(3, 100)).unwrap();
    let h =
        tape2.conv2d(xv, &p2, ids[0], ids[1], ImageShape::new(1, 10, 10), Conv2dConfig::valid(3)).unwrap();
    let h = tape2.relu(h).unwrap();
    let h = tape2.max_pool2d(h, ImageShape::new(4, 8, 8), Pool2dConfig::square(2)).unwrap();
    let h = tape2.affine(h, &p2, ids[2], ids[3]).unwrap();
    let h = tape2.relu(h).unwrap();
    let h = tape2.affine(h, &p2, ids[4], ids[5]).unwrap();
    let l = tape2.softmax_cross_entropy_eps(h, &t, BOOK_EPS).unwrap();
    assert_eq!(tape2.scalar(l).unwrap().to_bits(), loss.to_bits());
    p2.zero_grad();
    tape2.backward(l, &mut p2).unwrap();
    assert!(p2.grads().iter().zip(&model_grads).all(|(a, b)| a.to_bits() == b.to_bits()));

    // Three SGD steps (lr 0.1, the same batch) through the trainer, from the golden parameters.
    let sgd = &net["sgd_lr0.1_same_batch"];
    let opt = Optimizer::sgd();
    let mut memory = HostMemory::new(&m.plan(3, &opt));
    let mut trainer = Trainer::new(&m, &opt, 3, memory.memory()).unwrap();
    trainer.load(params.values(), &[0.0; optim::HEADER_LEN]).unwrap();
    for step in 0..3 {
        trainer.step(&x, Targets::Labels(&t), 0.1, &mut rng).unwrap();
        let after = trainer.eval_loss(&x, Targets::Labels(&t)).unwrap();
        let want = sgd["loss_after_step"][step].as_f64().unwrap();
        assert!((f64::from(after) - want).abs() <= 1e-6 * want, "after step {}: {after} vs {want}", step + 1);
    }
    let params = trainer.params();
    for (i, id) in ids.iter().enumerate() {
        let e = normwise(params.value(*id).unwrap(), &sgd["params_after_3_steps"][NAMES[i]]);
        assert!(e <= 1e-5, "{} after 3 steps: {e:.2e}", NAMES[i]);
    }
}

const SMALL: [Layer; 6] = [
    Layer::conv2d(3, 3, 1, 1),
    Layer::relu(),
    Layer::max_pool2d(2, 2),
    Layer::conv2d_with(5, Conv2dConfig::new(2, 3, 1, 1)),
    Layer::relu(),
    Layer::dense(4),
];

/// Trains `m` two steps from the same start, by `fused` or not, and returns the values.
fn two_steps(m: Model, opt: Optimizer, batch: usize, fused: bool) -> Vec<f32> {
    let plan = if fused { m.plan_fused(batch, &opt) } else { m.plan(batch, &opt) };
    let mut memory = HostMemory::new(&plan);
    let mut trainer = if fused {
        Trainer::fused(&m, &opt, batch, memory.memory()).unwrap()
    } else {
        Trainer::new(&m, &opt, batch, memory.memory()).unwrap()
    };
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(9);
    trainer.init(&mut rng).unwrap();
    let x: Vec<f32> = (0..batch * m.inputs()).map(|i| ((i * 5) % 13) as f32 / 6.0 - 1.0).collect();
    let t: Vec<u32> = (0..batch as u32).map(|i| i % 4).collect();
    for _ in 0..2 {
        trainer.step(&x, Targets::Labels(&t), 0.05, &mut rng).unwrap();
    }
    trainer.params().values().to_vec()
}

#[test]
fn fused_overwrite_and_recorded_paths_give_the_same_bits() {
    let m = Model::image(2, 6, 6, &SMALL);
    // 3·2·9+3 + 5·3·6+5 + 5·4·4·4+4 = 57 + 95 + 324 = 476 parameters: below the overwrite
    // threshold; with many filters above it.
    const WIDE: [Layer; 4] =
        [Layer::conv2d(40, 3, 1, 1), Layer::relu(), Layer::max_pool2d(2, 2), Layer::dense(4)];
    let wide = Model::image(2, 6, 6, &WIDE);
    assert_eq!(m.step_path(1, false), StepPath::Recorded);
    assert_eq!(wide.step_path(1, false), StepPath::Overwrite);
    for model in [m, wide] {
        for opt in [Optimizer::sgd(), Optimizer::adam(), Optimizer::momentum()] {
            for batch in [1, 3] {
                let a = two_steps(model, opt, batch, false);
                let b = two_steps(model, opt, batch, true);
                assert!(
                    a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{} batch {batch}: fused and unfused differ",
                    opt.name()
                );
            }
        }
    }
    // Overwrite = recorded, bit for bit, through the model's gradient.
    let mut s =
        HostStorage::new(wide.tape_floats(2), wide.tape_nodes(), wide.param_len(), wide.param_tensors());
    let (mut tape, mut params) = s.split();
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(2);
    wide.alloc(&mut params).unwrap();
    wide.init(&mut params, &mut rng).unwrap();
    let x: Vec<f32> = (0..2 * wide.inputs()).map(|i| ((i * 3) % 7) as f32 / 3.0 - 1.0).collect();
    params.grads_mut().fill(7.0); // overwritten, not added to
    wide.gradient(&mut tape, &mut params, &x, Targets::Labels(&[1, 3]), &mut rng).unwrap();
    let overwrite = params.grads().to_vec();
    tape.reset();
    let xv = tape.input(&x, Shape::new(2, wide.inputs())).unwrap();
    let y = wide.forward(&mut tape, &mut params, xv, Mode::Train, &mut rng).unwrap();
    let l = wide.loss(&mut tape, y, Targets::Labels(&[1, 3])).unwrap();
    params.zero_grad();
    tape.backward(l, &mut params).unwrap();
    assert!(params.grads().iter().zip(&overwrite).all(|(a, b)| a.to_bits() == b.to_bits()));
}

#[test]
fn fused_row_scratch_is_exactly_the_widest_row() {
    let m = Model::image(2, 6, 6, &SMALL);
    // Rows: conv 1 filter 2·3·3 = 18, conv 2 filter 3·2·3 = 18, dense 4 units.
    assert_eq!(m.fused_grad_floats(), 18);
    const BIAS_WIDEST: [Layer; 2] = [Layer::conv2d(30, 1, 1, 0), Layer::global_avg_pool2d()];
    assert_eq!(Model::image(1, 3, 3, &BIAS_WIDEST).fused_grad_floats(), 30);
    for (model, batch) in [(m, 1), (m, 2), (Model::image(1, 3, 3, &BIAS_WIDEST), 2)] {
        for (scratch, ok) in [(model.fused_grad_floats(), true), (model.fused_grad_floats() - 1, false)] {
            let opt = Optimizer::adam();
            let mut memory = HostMemory::new(&Plan { grad_floats: scratch, ..model.plan_fused(batch, &opt) });
            let mut rng = Xoshiro128PlusPlus::seed_from_u64(1);
            let x = vec![0.5; batch * model.inputs()];
            let t: Vec<u32> = vec![0; batch];
            // A row scratch too short is refused when the memory is checked against the plan.
            let r = Trainer::fused(&model, &opt, batch, memory.memory()).and_then(|mut trainer| {
                trainer.init(&mut rng)?;
                trainer.step(&x, Targets::Labels(&t), 0.01, &mut rng)
            });
            match (ok, r) {
                (true, Ok(_)) => {}
                (false, Err(Error::Capacity { region: Region::ParamGrads, .. })) => {}
                (ok, r) => panic!("scratch {scratch} (enough: {ok}): {r:?}"),
            }
        }
    }
}

#[test]
fn image_layers_that_do_not_fit_are_refused() {
    let bn = Layer::batch_norm(BatchNormConfig::BOOK);
    let img = |layers: &[Layer]| layers.to_vec();
    let cases: [(&str, Vec<Layer>); 9] = [
        ("pool first", img(&[Layer::max_pool2d(2, 2), Layer::dense(2)])),
        ("conv after dense", img(&[Layer::dense(16), Layer::conv2d(2, 3, 1, 0)])),
        ("pool after flatten", img(&[Layer::conv2d(2, 1, 1, 0), Layer::flatten(), Layer::max_pool2d(2, 2)])),
        ("kernel larger than the padded image", img(&[Layer::conv2d(2, 7, 1, 1), Layer::dense(2)])),
        ("zero stride", img(&[Layer::conv2d(2, 3, 0, 0), Layer::dense(2)])),
        ("zero filters", img(&[Layer::conv2d(0, 3, 1, 0), Layer::dense(2)])),
        ("pool window larger than the image", img(&[Layer::conv2d(2, 3, 1, 0), Layer::max_pool2d(3, 1)])),
        ("batch norm on an image", img(&[Layer::conv2d(2, 3, 1, 0), bn, Layer::dense(2)])),
        (
            "batch norm after conv, flatten",
            img(&[Layer::conv2d(2, 3, 1, 0), Layer::flatten(), bn, Layer::dense(2)]),
        ),
    ];
    let flat_conv = [Layer::conv2d(2, 3, 1, 0), Layer::dense(2)];
    let models = cases
        .iter()
        .map(|(what, layers)| (*what, Model::image(1, 4, 4, layers)))
        .chain([("conv on flat input", Model::new(16, &flat_conv))]);
    for (what, m) in models {
        let r = m.validate();
        assert!(matches!(r, Err(Error::InvalidArgument { .. } | Error::Shape { .. })), "{what}: {r:?}");
        let mut s = HostStorage::new(64, 8, 1024, 8);
        let (_, mut params) = s.split();
        assert!(m.alloc(&mut params).is_err(), "{what}");
        assert_eq!(params.tensor_count(), 0, "{what}");
    }
    // Dense after an image flattens it: the same model with and without an explicit flatten.
    const A: [Layer; 3] = [Layer::conv2d(2, 3, 1, 0), Layer::flatten(), Layer::dense(3)];
    const B: [Layer; 2] = [Layer::conv2d(2, 3, 1, 0), Layer::dense(3)];
    let (a, b) = (Model::image(1, 5, 5, &A), Model::image(1, 5, 5, &B));
    assert_eq!(a.plan(4, &Optimizer::adam()), b.plan(4, &Optimizer::adam()));
    assert_eq!(a.layer(1).unwrap().kind(), LayerKind::Flatten);
}

#[test]
fn conv_weights_draw_with_fan_in_c_kh_kw() {
    // The book's SimpleConvNet: std 0.01 for every weight (Init::Normal ignores the fan), He
    // with fan-in C·kh·kw for a conv weight: 3·5·5 = 75.
    const NET: [Layer; 2] = [Layer::conv2d(64, 5, 1, 0), Layer::dense(2)];
    for (init, std) in [(Init::Normal { std: 0.01 }, 0.01f64), (Init::HeNormal, (2.0f64 / 75.0).sqrt())] {
        let m = Model::image(3, 6, 6, &NET).with_init(init);
        let mut values = vec![0.0; m.param_len()];
        let mut grads = vec![0.0; m.param_len()];
        let mut table = vec![ParamEntry::EMPTY; m.param_tensors()];
        let mut params = Params::new(&mut values, &mut grads, &mut table);
        m.alloc(&mut params).unwrap();
        m.init(&mut params, &mut Xoshiro128PlusPlus::seed_from_u64(4)).unwrap();
        let w = params.value(m.conv_weight(0).unwrap()).unwrap();
        assert_eq!(w.len(), 64 * 75);
        let sd = (w.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / w.len() as f64).sqrt();
        assert!((sd / std - 1.0).abs() < 0.05, "{init:?}: sample std {sd} vs {std}");
        assert!(params.value(m.conv_bias(0).unwrap()).unwrap().iter().all(|&b| b == 0.0));
    }
}
