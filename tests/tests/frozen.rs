//! Frozen layers (issue 16): a model's lowest layers read their weights from a read-only slice
//! (flash on a device), get no gradient, no optimizer state and no RAM, and a training step runs
//! them forward-only. The planner is exact for such layouts; the trainable part trains as a
//! model of its own would on the frozen part's output, bit for bit; the frozen values never
//! change and no gradient is ever computed for them; inference needs no parameter RAM.

use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;
use staticgrad::gradcheck::{GradcheckConfig, gradcheck};
use staticgrad::{
    Activation, BatchNormConfig, Dropout, Error, Layer, Mode, Model, Node, Optimizer, ParamEntry, Params,
    Plan, Region, Tape, Targets, Trainer,
};
use staticgrad_tests::HostMemory;

const BN: BatchNormConfig = BatchNormConfig::BOOK;

/// 6 → 16 (frozen, batch norm frozen) → 8 (frozen) → 4 trained.
const LAYERS: [Layer; 7] = [
    Layer::dense(16).frozen(),
    Layer::batch_norm(BN).frozen(),
    Layer::relu(),
    Layer::dense(8).frozen(),
    Layer::tanh(),
    Layer::dense(4),
    Layer::sigmoid(),
];
const NET: Model = Model::new(6, &LAYERS).with_init(staticgrad::Init::GlorotNormal);
/// The frozen base alone (same layout, nothing frozen) and the trainable head alone.
const BASE: Model =
    Model::new(6, &[Layer::dense(16), Layer::batch_norm(BN), Layer::relu(), Layer::dense(8), Layer::tanh()]);
const HEAD_LAYERS: [Layer; 4] =
    [Layer::dense(4), Layer::sigmoid(), Layer::dropout(Dropout::inverted(0.25)), Layer::dense(3)];
const NET2_LAYERS: [Layer; 9] = [
    Layer::dense(16).frozen(),
    Layer::batch_norm(BN).frozen(),
    Layer::relu(),
    Layer::dense(8).frozen(),
    Layer::tanh(),
    Layer::dense(4),
    Layer::sigmoid(),
    Layer::dropout(Dropout::inverted(0.25)),
    Layer::dense(3),
];
/// With a trained head of two dense layers and dropout.
const NET2: Model = Model::new(6, &NET2_LAYERS);
const HEAD2: Model = Model::new(8, &HEAD_LAYERS);

fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect()
}

/// Frozen values with a positive running variance (batch norm's last tensor).
fn frozen_values() -> Vec<f32> {
    let mut v = values(NET.frozen_len(), 7);
    let var = 6 * 16 + 16 + 3 * 16; // W, b, γ, β, mean: then the running variance
    for x in &mut v[var..var + 16] {
        *x = x.abs() + 0.5;
    }
    v
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn the_planner_counts_what_training_needs() {
    assert_eq!(NET.frozen_layers(), 5);
    assert_eq!(NET.frozen_len(), 6 * 16 + 16 + 4 * 16 + 16 * 8 + 8);
    assert_eq!(NET.param_len(), 8 * 4 + 4);
    assert_eq!(NET.param_tensors(), 10); // frozen rows are in the table too
    let plan = NET.plan(3, &Optimizer::adam());
    assert_eq!(plan.state_floats, Optimizer::adam().state_len(36));
    assert_eq!(plan.grad_floats, 36);
    assert_eq!(NET.plan_fused(3, &Optimizer::sgd()).grad_floats, 4); // the head's widest row
    // The base costs its eval-mode values only (input, affine, batch-norm with its scratch,
    // relu, affine, tanh), no gradient; the head its training values and gradients.
    let base = 3 * 6 + 3 * 16 + (3 * 16 + 2 * 16 + 1) + 3 * 16 + 3 * 8 + 3 * 8;
    let head = 2 * (3 * 4) * 2 + (1 + 3 * 4) + 1;
    assert_eq!(plan.tape_floats, base + head);
    assert_eq!(plan.tape_nodes, 1 + 5 + 2 + 1);
    assert_eq!(NET2.frozen_layers(), 5);
    assert_eq!(BASE.frozen_layers(), 0);
}

/// Steps with exactly the plan succeed; one float (or node, or row) less in any region is
/// `Err(Capacity)`, for both the gradient buffer and the fused update.
#[test]
fn planner_is_exact_for_frozen_layouts() {
    for (net, batch) in [(NET, 3), (NET2, 2), (NET2, 1)] {
        for opt in [Optimizer::sgd(), Optimizer::adam()] {
            for fused in [false, true] {
                let plan = if fused { net.plan_fused(batch, &opt) } else { net.plan(batch, &opt) };
                let step = |plan: &Plan| -> Result<(), Error> {
                    let mut mem = HostMemory::new(plan).with_frozen(frozen_values_for(&net));
                    let mut t = if fused {
                        Trainer::fused_planned(&net, &opt, batch, mem.memory(), plan)?
                    } else {
                        Trainer::planned(&net, &opt, batch, mem.memory(), plan)?
                    };
                    let mut rng = Xoshiro128PlusPlus::seed_from_u64(1);
                    t.init(&mut rng)?;
                    let x = values(batch * 6, 3);
                    let labels: Vec<u32> = (0..batch as u32).map(|i| i % net.outputs() as u32).collect();
                    t.step(&x, Targets::Labels(&labels), 0.1, &mut rng)?;
                    t.step(&x, Targets::Labels(&labels), 0.1, &mut rng).map(|_| ())
                };
                step(&plan).unwrap();
                for (region, short) in [
                    (Region::TapeFloats, Plan { tape_floats: plan.tape_floats - 1, ..plan }),
                    (Region::TapeNodes, Plan { tape_nodes: plan.tape_nodes - 1, ..plan }),
                ] {
                    match step(&short) {
                        Err(Error::Capacity { region: r, .. }) if r == region => {}
                        other => panic!("{region:?} one less: {other:?} (fused {fused}, batch {batch})"),
                    }
                }
                // Memory one short in a parameter region is refused before anything runs.
                for short in [
                    Plan { param_floats: plan.param_floats - 1, ..plan },
                    Plan { grad_floats: plan.grad_floats - 1, ..plan },
                    Plan { param_tensors: plan.param_tensors - 1, ..plan },
                    Plan { state_floats: plan.state_floats - 1, ..plan },
                ] {
                    let mut mem = HostMemory::new(&short).with_frozen(frozen_values_for(&net));
                    let m = mem.memory();
                    let t = if fused {
                        Trainer::fused(&net, &opt, batch, m)
                    } else {
                        Trainer::new(&net, &opt, batch, m)
                    };
                    assert!(matches!(t, Err(Error::Capacity { .. })), "{short:?}: {:?}", t.err());
                }
            }
        }
    }
}

fn frozen_values_for(net: &Model) -> Vec<f32> {
    let mut v = values(net.frozen_len(), 7);
    let var = 6 * 16 + 16 + 3 * 16;
    for x in &mut v[var..var + 16] {
        *x = x.abs() + 0.5;
    }
    v
}

#[test]
fn the_frozen_values_must_fit_the_model() {
    let plan = NET.plan(1, &Optimizer::sgd());
    let opt = Optimizer::sgd();
    let mut short = frozen_values();
    short.pop();
    let mut mem = HostMemory::new(&plan).with_frozen(short);
    let e = Trainer::new(&NET, &opt, 1, mem.memory()).unwrap_err();
    assert!(matches!(e, Error::Capacity { region: Region::FrozenFloats, .. }), "{e:?}");
    let mut long = frozen_values();
    long.push(0.0);
    let mut mem = HostMemory::new(&plan).with_frozen(long);
    assert!(matches!(
        Trainer::new(&NET, &opt, 1, mem.memory()),
        Err(Error::Shape { op: "frozen values", .. })
    ));
}

#[test]
fn frozen_layers_are_the_lowest_and_a_trainer_needs_a_trainable_one() {
    const ABOVE: [Layer; 3] = [Layer::dense(3), Layer::relu(), Layer::dense(2).frozen()];
    let above = Model::new(4, &ABOVE);
    assert!(matches!(above.validate(), Err(Error::InvalidArgument { .. })));
    const BN_FIRST: [Layer; 3] = [Layer::dense(3).frozen(), Layer::batch_norm(BN), Layer::dense(2)];
    let bn_first = Model::new(4, &BN_FIRST);
    assert!(matches!(bn_first.validate(), Err(Error::InvalidArgument { .. })));
    const ALL: Model = Model::new(4, &[Layer::dense(3).frozen(), Layer::relu(), Layer::dense(2).frozen()]);
    assert!(ALL.validate().is_ok(), "an all-frozen model evaluates");
    assert_eq!((ALL.frozen_layers(), ALL.param_len()), (3, 0));
    let opt = Optimizer::sgd();
    let mut mem = HostMemory::new(&ALL.plan(1, &opt)).with_frozen(vec![0.0; ALL.frozen_len()]);
    assert!(matches!(Trainer::new(&ALL, &opt, 1, mem.memory()), Err(Error::InvalidArgument { .. })));
}

/// The model with frozen layers trains its head exactly as the head alone trains on the frozen
/// part's eval-mode output: same losses, same head weights, same optimizer state, bit for bit,
/// on every step path (recorded, overwrite, fused) — and the frozen values never change.
#[test]
fn the_head_trains_as_a_model_of_its_own_on_the_frozen_features() {
    for (net, base, head, batch) in
        [(NET, BASE, Model::new(8, &LAYERS[5..]), 3), (NET2, BASE, HEAD2, 2), (NET2, BASE, HEAD2, 1)]
    {
        for opt in [Optimizer::sgd(), Optimizer::adam(), Optimizer::momentum()] {
            for fused in [false, true] {
                let frozen = frozen_values_for(&net);
                let before = bits(&frozen);
                let plan = if fused { net.plan_fused(batch, &opt) } else { net.plan(batch, &opt) };
                let mut mem = HostMemory::new(&plan).with_frozen(frozen);
                let mut t = if fused {
                    Trainer::fused(&net, &opt, batch, mem.memory()).unwrap()
                } else {
                    Trainer::new(&net, &opt, batch, mem.memory()).unwrap()
                };
                let hplan = if fused { head.plan_fused(batch, &opt) } else { head.plan(batch, &opt) };
                let mut hmem = HostMemory::new(&hplan);
                let mut h = if fused {
                    Trainer::fused(&head, &opt, batch, hmem.memory()).unwrap()
                } else {
                    Trainer::new(&head, &opt, batch, hmem.memory()).unwrap()
                };
                let mut rng = Xoshiro128PlusPlus::seed_from_u64(5);
                t.init(&mut rng).unwrap();
                h.params_mut().values_mut().copy_from_slice(t.params().values());
                // The base alone, over the same frozen values in RAM.
                let bplan = base.plan_inference(batch);
                let mut bvalues = frozen_values_for(&net);
                let (mut bgrads, mut btable) =
                    (vec![0.0; bvalues.len()], vec![ParamEntry::EMPTY; bplan.param_tensors]);
                let mut bp = Params::new(&mut bvalues, &mut bgrads, &mut btable);
                base.alloc(&mut bp).unwrap();
                bp.values_mut().copy_from_slice(t.params().frozen_values());
                let (mut floats, mut nodes) =
                    (vec![0.0; bplan.tape_floats], vec![Node::EMPTY; bplan.tape_nodes]);
                let mut btape = Tape::new(&mut floats, &mut nodes);
                for s in 0..6u64 {
                    let x = values(batch * 6, 100 + s);
                    let labels: Vec<u32> =
                        (0..batch as u32).map(|i| (i + s as u32) % net.outputs() as u32).collect();
                    let y = base.logits(&mut btape, &bp, &x).unwrap();
                    let features = btape.value(y).unwrap().to_vec();
                    btape.reset();
                    let (mut r1, mut r2) =
                        (Xoshiro128PlusPlus::seed_from_u64(s), Xoshiro128PlusPlus::seed_from_u64(s));
                    let l1 = t.step(&x, Targets::Labels(&labels), 0.3, &mut r1).unwrap();
                    let l2 = h.step(&features, Targets::Labels(&labels), 0.3, &mut r2).unwrap();
                    assert_eq!(l1.to_bits(), l2.to_bits(), "loss, step {s}, {opt:?}, fused {fused}");
                }
                assert_eq!(bits(t.params().values()), bits(h.params().values()), "{opt:?} fused {fused}");
                assert_eq!(bits(t.state()), bits(h.state()));
                assert_eq!(bits(t.params().frozen_values()), before, "frozen values changed");
                // Evaluation through the frozen base too.
                let x = values(batch * 6, 999);
                let (mut a, mut b) = (vec![0.0; batch * net.outputs()], vec![0.0; batch * net.outputs()]);
                t.logits(&x, &mut a).unwrap();
                let y = base.logits(&mut btape, &bp, &x).unwrap();
                let features = btape.value(y).unwrap().to_vec();
                h.logits(&features, &mut b).unwrap();
                assert_eq!(bits(&a), bits(&b));
            }
        }
    }
}

/// No gradient is ever computed for a frozen tensor or the frozen base's values: there is no
/// storage for one (a parameter gradient of a frozen tensor is an error, the buffer is the
/// head's), and every node the base records has no gradient slot (counted on the tape after a
/// forward and backward, where a gradient would have had to live).
#[test]
fn frozen_gradients_are_never_computed() {
    let frozen = frozen_values();
    let plan = NET.plan(2, &Optimizer::sgd());
    let (mut v, mut g, mut table) = (
        vec![0.0; plan.param_floats],
        vec![0.0; plan.grad_floats],
        vec![ParamEntry::EMPTY; plan.param_tensors],
    );
    let frozen_copy = frozen.clone();
    let mut params = Params::new(&mut v, &mut g, &mut table).with_frozen(&frozen_copy);
    NET.alloc(&mut params).unwrap();
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(2);
    NET.init(&mut params, &mut rng).unwrap();
    assert_eq!(params.frozen_tensors(), 8);
    for id in params.ids().take(8) {
        assert!(params.is_frozen(id));
        assert!(params.grad(id).is_err(), "a frozen tensor has no gradient storage");
        assert!(params.value_mut(id).is_err(), "nor can it be written");
    }
    let (mut floats, mut nodes) = (vec![0.0; plan.tape_floats], vec![Node::EMPTY; plan.tape_nodes]);
    let mut tape = Tape::new(&mut floats, &mut nodes);
    let x = values(12, 4);
    let loss = NET.gradient(&mut tape, &mut params, &x, Targets::Labels(&[1, 3]), &mut rng).unwrap();
    assert!(loss.is_finite());
    let recorded = tape.nodes().to_vec();
    assert_eq!(recorded.len(), plan.tape_nodes);
    // Input and the five base layers (dense, batch norm, relu, dense, tanh): no gradient slot.
    for (i, node) in recorded.iter().enumerate().take(6) {
        assert_eq!(node.grad_offset(), None, "node {i} of the frozen base has a gradient");
    }
    assert!(matches!(recorded[2].op(), staticgrad::Op::BatchNormEval { .. }), "the base runs in eval mode");
    for node in &recorded[6..] {
        assert!(node.grad_offset().is_some());
    }
    assert_eq!(tape.floats_used(), plan.tape_floats);
    // The frozen slice (in a real firmware, flash) is untouched.
    assert_eq!(bits(&frozen_copy), bits(&frozen));
    assert!(params.grads().iter().all(|g| g.is_finite()) && params.grads().iter().any(|&g| g != 0.0));
}

/// Central differences against backward for every trainable element, with the base frozen.
#[test]
fn gradcheck_of_the_trainable_part() {
    for net in [NET, Model::new(6, &NET2_LAYERS[..6]).with_init(staticgrad::Init::GlorotNormal)] {
        let frozen = frozen_values_for(&net);
        let n = net.param_len();
        let (mut v, mut g, mut table) =
            (vec![0.0; n], vec![0.0; n], vec![ParamEntry::EMPTY; net.param_tensors()]);
        let mut params = Params::new(&mut v, &mut g, &mut table).with_frozen(&frozen);
        net.alloc(&mut params).unwrap();
        let mut rng = Xoshiro128PlusPlus::seed_from_u64(9);
        net.init(&mut params, &mut rng).unwrap();
        let (mut floats, mut nodes) = (vec![0.0; 4096], vec![Node::EMPTY; 64]);
        let mut tape = Tape::new(&mut floats, &mut nodes);
        let x = values(3 * 6, 11);
        let r = gradcheck(&mut tape, &mut params, GradcheckConfig::default(), |tape, p| {
            let xv = tape.input(&x, staticgrad::Shape::new(3, 6))?;
            let y =
                net.forward_no_update(tape, p, xv, Mode::Train, &mut Xoshiro128PlusPlus::seed_from_u64(0))?;
            net.loss(tape, y, Targets::Labels(&[0, 1, 3]))
        })
        .unwrap();
        assert_eq!(r.checked, n, "every trainable element, no frozen one");
        assert!(r.worst_rel_error < 2e-2, "{r:?}");
    }
}

/// Inference with every weight read-only: the same predictions and logits, bit for bit, as from
/// RAM; no parameter RAM; the planner's inference plan is exact.
#[test]
fn inference_from_read_only_weights() {
    const CLF: Model = Model::new(
        6,
        &[
            Layer::dense(16),
            Layer::batch_norm(BN),
            Layer::activation(Activation::Relu),
            Layer::dropout(Dropout::book(0.3)),
            Layer::dense(5),
        ],
    );
    let weights = {
        let mut w = values(CLF.param_len(), 21);
        let var = 6 * 16 + 16 + 3 * 16;
        for x in &mut w[var..var + 16] {
            *x = x.abs() + 0.5;
        }
        w
    };
    let x = values(4 * 6, 22);
    // From RAM.
    let (mut v, mut g, mut table) =
        (weights.clone(), vec![0.0; weights.len()], vec![ParamEntry::EMPTY; CLF.param_tensors()]);
    let mut ram = Params::new(&mut v, &mut g, &mut table);
    CLF.alloc(&mut ram).unwrap();
    ram.values_mut().copy_from_slice(&weights);
    let plan = CLF.plan_inference(4);
    let (mut floats, mut nodes) = (vec![0.0; plan.tape_floats], vec![Node::EMPTY; plan.tape_nodes]);
    let mut tape = Tape::new(&mut floats, &mut nodes);
    let y = CLF.logits(&mut tape, &ram, &x).unwrap();
    let want = tape.value(y).unwrap().to_vec();
    let mut classes = [0u32; 4];
    CLF.predict(&mut tape, &ram, &x, &mut classes).unwrap();
    // Read-only.
    let mut rtable = vec![ParamEntry::EMPTY; plan.param_tensors];
    let mut ro = Params::read_only(&weights, &mut rtable);
    CLF.alloc_read_only(&mut ro).unwrap();
    assert_eq!((ro.len(), ro.frozen_len(), ro.grads().len()), (0, weights.len(), 0));
    let y = CLF.logits(&mut tape, &ro, &x).unwrap();
    assert_eq!(bits(tape.value(y).unwrap()), bits(&want));
    assert_eq!(tape.floats_used(), plan.tape_floats);
    let mut got = [0u32; 4];
    CLF.predict(&mut tape, &ro, &x, &mut got).unwrap();
    assert_eq!(got, classes);
    let labels = [classes[0], 0, classes[2], 1];
    let want_hits = CLF.correct(&mut tape, &ram, &x, &labels, 4).unwrap();
    assert_eq!(CLF.correct(&mut tape, &ro, &x, &labels, 4).unwrap(), want_hits);
    // Exact: one float or node less is refused.
    let mut floats = vec![0.0; plan.tape_floats - 1];
    let mut nodes = vec![Node::EMPTY; plan.tape_nodes];
    let mut short = Tape::new(&mut floats, &mut nodes);
    assert!(matches!(
        CLF.logits(&mut short, &ro, &x),
        Err(Error::Capacity { region: Region::TapeFloats, .. })
    ));
    let mut floats = vec![0.0; plan.tape_floats];
    let mut nodes = vec![Node::EMPTY; plan.tape_nodes - 1];
    let mut short = Tape::new(&mut floats, &mut nodes);
    assert!(matches!(
        CLF.logits(&mut short, &ro, &x),
        Err(Error::Capacity { region: Region::TapeNodes, .. })
    ));
    // A table one row short, or weights one float short, are refused by the layout.
    let mut rtable = vec![ParamEntry::EMPTY; plan.param_tensors - 1];
    assert!(CLF.alloc_read_only(&mut Params::read_only(&weights, &mut rtable)).is_err());
    let mut rtable = vec![ParamEntry::EMPTY; plan.param_tensors];
    let e = CLF.alloc_read_only(&mut Params::read_only(&weights[1..], &mut rtable)).unwrap_err();
    assert!(matches!(e, Error::Capacity { region: Region::FrozenFloats, .. }));
}
