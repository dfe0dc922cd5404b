//! `MlpSpec` end to end: the book's three 4-3-3-3 networks (golden loss, every gradient, batch-norm
//! running statistics, and one SGD + L2 step through `Trainer`), and the planner's numbers
//! against what a training step really uses, for several specs (MLPs, layer lists, CNNs) and
//! every update rule.

use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;
use serde_json::Value;
use staticgrad::model::{Activation, Layer, Loss, MlpSpec, Model, StepPath, Targets};
use staticgrad::optim::{self, Optimizer, WeightDecay, weight_decay_loss};
use staticgrad::train::Trainer;
use staticgrad::{BatchNormConfig, Conv2dConfig, Dropout, Error, ParamId, Params, Plan, Region};
use staticgrad_tests::{HostMemory, HostStorage, array, array_f32, assert_close, golden};

const WIDTHS: [usize; 4] = [4, 3, 3, 3];

fn net_spec(name: &str) -> (Model<'static>, f32) {
    let base = MlpSpec::new(&WIDTHS).with_loss(Loss::SoftmaxCrossEntropyBook);
    match name {
        "MultiLayerNet_relu_wd0.1" => (base.model(), 0.1),
        "MultiLayerNet_sigmoid_wd0" => (base.with_activation(Activation::Sigmoid).model(), 0.0),
        "MultiLayerNetExtend_relu_bn_wd0.1" => (base.with_batch_norm(BatchNormConfig::BOOK).model(), 0.1),
        _ => unreachable!(),
    }
}

/// (golden name, handle) of every trainable tensor of the 4-3-3-3 spec.
fn named(spec: &Model) -> Vec<(String, ParamId)> {
    let mut v = Vec::new();
    for l in 0..3 {
        v.push((format!("W{}", l + 1), spec.weight(l).expect("layer of the spec")));
        v.push((format!("b{}", l + 1), spec.bias(l).expect("layer of the spec")));
        if let Some(bn) = spec.batch_norm_layer(l) {
            v.push((format!("gamma{}", l + 1), bn.gamma));
            v.push((format!("beta{}", l + 1), bn.beta));
        }
    }
    v
}

fn load(spec: &Model, params: &mut Params, net: &Value) {
    spec.alloc(params).unwrap();
    set_values(spec, params, net);
}

/// The golden network's values into `params`, laid out by `spec`.
fn set_values(spec: &Model, params: &mut Params, net: &Value) {
    for (name, id) in named(spec) {
        let (d, s) = array_f32(&net["params"][&name]);
        assert_eq!(params.entry(id).unwrap().shape, s, "{name}");
        params.value_mut(id).unwrap().copy_from_slice(&d);
    }
}

fn check_network(name: &str) {
    let all = golden("layer_grads.json");
    let n = &all["networks"];
    let net = &n[name];
    let x = array_f32(&n["inputs"]["x"]).0;
    let t: Vec<u32> =
        n["inputs"]["t_index"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    let (spec, lambda) = net_spec(name);
    let want_loss = net["loss"].as_f64().unwrap();
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);

    // (a) The book's gradient(): data loss + 0.5·λ·ΣW², grads + λ·W on weights.
    let mut s =
        HostStorage::new(spec.tape_floats(4), spec.tape_nodes(), spec.param_len(), spec.param_tensors());
    let (mut tape, mut params) = s.split();
    load(&spec, &mut params, net);
    let data = spec.gradient(&mut tape, &mut params, &x, Targets::Labels(&t), &mut rng).unwrap();
    let loss = (data + weight_decay_loss(&params, lambda)) as f64;
    eprintln!(
        "{name}: loss {loss} (golden {want_loss}, rel err {:.1e})",
        (loss - want_loss).abs() / want_loss
    );
    assert!((loss - want_loss).abs() <= 1e-6 * want_loss, "{name}: loss {loss} vs {want_loss}");
    let mut worst = 0.0f64;
    for (pname, id) in named(&spec) {
        let mut g = params.grad(id).unwrap().to_vec();
        if pname.starts_with('W') {
            for (g, w) in g.iter_mut().zip(params.value(id).unwrap()) {
                *g += lambda * w;
            }
        }
        let want = array(&net["grads"][&pname]).0;
        assert_close(&format!("{name} d{pname}"), &g, &want, 1e-5, 1e-6);
        worst = worst.max(g.iter().zip(&want).map(|(&a, &b)| (a as f64 - b).abs()).fold(0.0, f64::max));
    }
    eprintln!("{name}: worst gradient abs error {worst:.2e}");
    if let Some(bn_golden) = net.get("bn_running_after_one_gradient_call") {
        for l in 0..2 {
            let bn = spec.batch_norm_layer(l).unwrap();
            let g = &bn_golden[format!("BatchNorm{}", l + 1)];
            assert_close(
                "running mean",
                params.value(bn.running_mean).unwrap(),
                &array(&g["running_mean"]).0,
                1e-5,
                1e-7,
            );
            assert_close(
                "running var",
                params.value(bn.running_var).unwrap(),
                &array(&g["running_var"]).0,
                1e-5,
                1e-7,
            );
        }
    }

    // (b) The same through Trainer: SGD with lr 1 and coupled L2, so each trainable tensor moves
    // by exactly its book gradient and the reported loss includes the penalty.
    let opt = Optimizer::sgd().with_weight_decay(WeightDecay::L2(lambda));
    let mut memory = HostMemory::new(&spec.plan(4, &opt));
    let mut trainer = Trainer::new(&spec, &opt, 4, memory.memory()).unwrap();
    set_values(&spec, trainer.params_mut(), net);
    let before = trainer.params().values().to_vec();
    let loss = trainer.step(&x, Targets::Labels(&t), 1.0, &mut rng).unwrap() as f64;
    assert!((loss - want_loss).abs() <= 1e-6 * want_loss, "{name}: trainer loss {loss} vs {want_loss}");
    assert_eq!(trainer.tape().nodes_used(), 0, "the step resets the tape");
    let params = trainer.params();
    for (pname, id) in named(&spec) {
        let r = params.entry(id).unwrap().range();
        let moved: Vec<f32> = before[r.clone()].iter().zip(&params.values()[r]).map(|(b, a)| b - a).collect();
        assert_close(&format!("{name} step {pname}"), &moved, &array(&net["grads"][&pname]).0, 1e-5, 1e-6);
    }
}

#[test]
fn network_relu_weight_decay() {
    check_network("MultiLayerNet_relu_wd0.1");
}

#[test]
fn network_sigmoid() {
    check_network("MultiLayerNet_sigmoid_wd0");
}

#[test]
fn network_relu_batch_norm_weight_decay() {
    check_network("MultiLayerNetExtend_relu_bn_wd0.1");
}

// ----- planner = usage -----------------------------------------------------------------------

const W_A: [usize; 3] = [6, 5, 3];
const W_B: [usize; 4] = [7, 6, 5, 4];

/// PyTorch's Linear → ReLU → Linear → Sigmoid → Linear, and a list with batch norm after the
/// activation, book dropout and a trailing activation.
const TORCH: [Layer; 5] =
    [Layer::dense(5), Layer::relu(), Layer::dense(4), Layer::sigmoid(), Layer::dense(3)];
const MIXED: [Layer; 8] = [
    Layer::dense(6),
    Layer::tanh(),
    Layer::batch_norm(BatchNormConfig::STANDARD),
    Layer::dense(5),
    Layer::relu(),
    Layer::dropout(Dropout::book(0.5)),
    Layer::dense(3),
    Layer::sigmoid(),
];

/// Image models: padding, stride, a rectangular kernel, every pooling, flatten explicit and
/// implicit, two convolutions, and a network whose logits are a global average pool.
const CNN_A: [Layer; 4] =
    [Layer::conv2d(3, 3, 1, 1), Layer::relu(), Layer::max_pool2d(2, 2), Layer::dense(4)];
const CNN_B: [Layer; 8] = [
    Layer::conv2d_with(2, Conv2dConfig::new(3, 2, 2, 1)),
    Layer::tanh(),
    Layer::avg_pool2d(2, 1),
    Layer::flatten(),
    Layer::dense(5),
    Layer::relu(),
    Layer::dropout(Dropout::inverted(0.3)),
    Layer::dense(3),
];
const CNN_C: [Layer; 6] = [
    Layer::conv2d(3, 3, 1, 0),
    Layer::relu(),
    Layer::conv2d(4, 3, 2, 1),
    Layer::sigmoid(),
    Layer::global_avg_pool2d(),
    Layer::dense(3),
];
const CNN_D: [Layer; 3] = [Layer::conv2d(3, 3, 1, 1), Layer::max_pool2d(3, 2), Layer::global_avg_pool2d()];

fn specs() -> Vec<(&'static str, Model<'static>)> {
    let lists = [
        ("torch-style list", Model::new(6, &TORCH)),
        ("mixed list mse", Model::new(7, &MIXED).with_loss(Loss::Mse)),
        ("cnn conv pad 1, max pool", Model::image(2, 6, 6, &CNN_A)),
        ("cnn strided rect conv, avg pool, dropout", Model::image(1, 7, 7, &CNN_B)),
        ("cnn two convs, global pool", Model::image(1, 8, 8, &CNN_C)),
        ("cnn global pool logits mse", Model::image(2, 5, 5, &CNN_D).with_loss(Loss::Mse)),
    ];
    let mlps = vec![
        ("relu", MlpSpec::new(&W_A)),
        (
            "sigmoid+bn",
            MlpSpec::new(&W_A).with_activation(Activation::Sigmoid).with_batch_norm(BatchNormConfig::BOOK),
        ),
        ("relu+dropout", MlpSpec::new(&W_B).with_dropout(Dropout::inverted(0.3))),
        (
            "tanh+book dropout",
            MlpSpec::new(&W_B).with_activation(Activation::Tanh).with_dropout(Dropout::book(0.5)),
        ),
        (
            "relu+bn+dropout",
            MlpSpec::new(&W_B)
                .with_batch_norm(BatchNormConfig::STANDARD)
                .with_dropout(Dropout::inverted(0.2)),
        ),
        (
            "sigmoid+bn mse",
            MlpSpec::new(&W_A)
                .with_activation(Activation::Sigmoid)
                .with_batch_norm(BatchNormConfig::BOOK)
                .with_loss(Loss::Mse),
        ),
    ];
    mlps.into_iter().map(|(n, s)| (n, s.model())).chain(lists).collect()
}

fn optimizers() -> Vec<Optimizer> {
    optim::NAMES.iter().map(|n| Optimizer::by_name(n).unwrap()).collect()
}

/// Sizes: [tape floats, tape nodes, param floats, param tensors, state floats].
fn run_step(spec: &Model, opt: Optimizer, batch: usize, sizes: [usize; 5]) -> Result<(), Error> {
    let [floats, nodes, pf, pt, sf] = sizes;
    let mut s = HostStorage::new(floats, nodes, pf, pt);
    let (mut tape, mut params) = s.split();
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(5);
    spec.alloc(&mut params)?;
    spec.init(&mut params, &mut rng)?;
    let x: Vec<f32> = (0..batch * spec.inputs()).map(|i| ((i * 7) % 11) as f32 / 5.0 - 1.0).collect();
    let labels: Vec<u32> = (0..batch).map(|i| (i % spec.outputs()) as u32).collect();
    let values: Vec<f32> = (0..batch * spec.outputs()).map(|i| (i % 3) as f32 * 0.5).collect();
    let targets = if spec.loss == Loss::Mse { Targets::Values(&values) } else { Targets::Labels(&labels) };
    // First the book's gradient() alone, to see the tape exactly full...
    // (The direct path of tiny plain nets uses the tape as scratch and leaves it reset; it
    // refuses one float or node less all the same, tests/tests/prop_planner.rs.)
    spec.gradient(&mut tape, &mut params, &x, targets, &mut rng)?;
    if spec.step_path(batch, false) != StepPath::Direct {
        assert_eq!(tape.floats_used(), spec.tape_floats(batch));
        assert_eq!(tape.nodes_used(), spec.tape_nodes());
    }
    // ...then two full steps and an evaluation, through a trainer over the same sizes.
    let plan = Plan {
        param_floats: pf,
        param_tensors: pt,
        grad_floats: pf,
        state_floats: sf,
        tape_floats: floats,
        tape_nodes: nodes,
    };
    let mut memory = HostMemory::new(&plan);
    let mut trainer = Trainer::new(spec, &opt, batch, memory.memory())?;
    trainer.init(&mut rng)?;
    for _ in 0..2 {
        let loss = trainer.step(&x, targets, 0.01, &mut rng)?;
        assert!(loss.is_finite());
    }
    if let Targets::Labels(l) = targets {
        trainer.correct(&x, l, batch)?;
    }
    Ok(())
}

#[test]
fn planner_equals_usage_for_every_spec_and_rule() {
    let mut cases = 0;
    for (name, spec) in specs() {
        for opt in optimizers() {
            for batch in [1, 5] {
                let exact = [
                    spec.tape_floats(batch),
                    spec.tape_nodes(),
                    spec.param_len(),
                    spec.param_tensors(),
                    spec.state_len(&opt),
                ];
                run_step(&spec, opt, batch, exact)
                    .unwrap_or_else(|e| panic!("{name} {} batch {batch}: {e}", opt.name()));
                let regions = [
                    Region::TapeFloats,
                    Region::TapeNodes,
                    Region::ParamFloats,
                    Region::ParamTensors,
                    Region::OptimizerState,
                ];
                for (k, region) in regions.into_iter().enumerate() {
                    if exact[k] == 0 {
                        continue; // SGD has no state: nothing to take away
                    }
                    let mut less = exact;
                    less[k] -= 1;
                    match run_step(&spec, opt, batch, less) {
                        Err(Error::Capacity { region: r, needed, .. }) => {
                            assert_eq!(r, region, "{name} {} batch {batch}", opt.name());
                            assert_eq!(needed, exact[k], "{name} {} batch {batch} {region:?}", opt.name());
                        }
                        other => {
                            panic!("{name} {} batch {batch}, one {region:?} less: {other:?}", opt.name())
                        }
                    }
                }
                cases += 1;
            }
        }
    }
    eprintln!("planner = usage in {cases} spec × rule × batch cases");
}

#[test]
fn eval_planner_equals_usage() {
    for (name, spec) in specs() {
        for batch in [1, 3] {
            let x: Vec<f32> = (0..batch * spec.inputs()).map(|i| (i % 5) as f32 * 0.25).collect();
            let mut s = HostStorage::new(
                spec.eval_tape_floats(batch),
                spec.eval_tape_nodes(),
                spec.param_len(),
                spec.param_tensors(),
            );
            let (mut tape, mut params) = s.split();
            spec.alloc(&mut params).unwrap();
            let logits = spec.logits(&mut tape, &params, &x).unwrap();
            assert_eq!(tape.shape(logits).unwrap().rows, batch);
            assert_eq!(tape.floats_used(), spec.eval_tape_floats(batch), "{name}");
            assert_eq!(tape.nodes_used(), spec.eval_tape_nodes(), "{name}");
            // eval_loss: forward plus loss, exactly.
            let (f, n) = (
                spec.eval_tape_floats(batch) + spec.loss_tape_floats(batch),
                spec.eval_tape_nodes() + spec.loss_tape_nodes(),
            );
            let labels: Vec<u32> = (0..batch as u32).map(|i| i % spec.outputs() as u32).collect();
            let values = vec![0.25f32; batch * spec.outputs()];
            let t = if spec.loss == Loss::Mse { Targets::Values(&values) } else { Targets::Labels(&labels) };
            for (floats, nodes, ok) in [(f, n, true), (f - 1, n, false), (f, n - 1, false)] {
                let mut s = HostStorage::new(floats, nodes, spec.param_len(), spec.param_tensors());
                let (mut tape, mut params) = s.split();
                spec.alloc(&mut params).unwrap();
                let r = spec.eval_loss(&mut tape, &params, &x, t);
                assert_eq!(r.is_ok(), ok, "{name} eval_loss with {floats} floats, {nodes} nodes: {r:?}");
            }
        }
    }
}

// ----- the bytes table --------------------------------------------------------------------------

/// Sizes of the two table records on a 32-bit Cortex-M (thumbv7em), checked by building the
/// core for that target with `const` assertions on `size_of` (they are not observable from a
/// host test): a `Node` is 32 bytes and a `ParamEntry` 16 there.
const THUMB_NODE: usize = 32;
const THUMB_ENTRY: usize = 16;

#[test]
fn bytes_to_train_table() {
    let cases: [(&[usize], usize); 5] =
        [(&[2, 3, 1], 4), (&[4, 10, 3], 1), (&[196, 32, 10], 1), (&[196, 32, 10], 8), (&[784, 100, 10], 32)];
    println!(
        "| net | batch | rule | parameters | gradients | optimizer state | tape (floats + nodes) | total x86-64 | total Cortex-M |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (widths, batch) in cases {
        let spec = MlpSpec::new(widths).model();
        for opt in [Optimizer::sgd(), Optimizer::adam()] {
            let p = spec.plan(batch, &opt);
            let net: Vec<String> = widths.iter().map(|w| w.to_string()).collect();
            let thumb = 4 * (p.param_floats + p.grad_floats + p.state_floats + p.tape_floats)
                + THUMB_ENTRY * p.param_tensors
                + THUMB_NODE * p.tape_nodes;
            println!(
                "| {} | {batch} | {} | {} | {} | {} | {} ({} + {}) | {} | {} |",
                net.join("-"),
                opt.name(),
                p.param_bytes(),
                p.grad_bytes(),
                p.state_bytes(),
                p.tape_bytes(),
                p.tape_floats * 4,
                p.tape_nodes * size_of::<staticgrad::Node>(),
                p.total_bytes(),
                thumb
            );
            assert_eq!(p.grad_floats, p.param_floats);
            assert_eq!(p.state_floats, optim::HEADER_LEN + opt.floats_per_param() * p.param_floats);
            assert_eq!(p.total_bytes(), p.param_bytes() + p.grad_bytes() + p.state_bytes() + p.tape_bytes());
        }
    }
    // 2-3-1 by hand: 2·3+3 + 3·1+1 = 13 parameters. Tape values: input 4·2, affine 4·3,
    // ReLU 4·3, affine 4·1, loss 1 + its 4·1 scratch; gradients for all but the input and scratch.
    let spec = MlpSpec::new(&[2, 3, 1]).model();
    assert_eq!(spec.param_len(), 13);
    assert_eq!(spec.tape_floats(4), (8 + 12 + 12 + 4 + 1 + 4) + (12 + 12 + 4 + 1));
    assert_eq!(spec.tape_nodes(), 5);
}
