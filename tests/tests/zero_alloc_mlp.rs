//! Proof that a `Trainer` step and an evaluation of an MLP with batch norm and dropout make no
//! heap allocation, nor one of a CNN layer list (counting global allocator, own test binary).

use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;
use staticgrad::model::{MlpSpec, Model, Targets};
use staticgrad::optim::{Optimizer, WeightDecay};
use staticgrad::train::Trainer;
use staticgrad::{BatchNormConfig, Dropout};
use staticgrad_tests::HostMemory;
use staticgrad_tests::counting::{CountingAlloc, count_allocations};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const WIDTHS: [usize; 4] = [20, 32, 16, 5];
const SPEC: Model =
    MlpSpec::new(&WIDTHS).with_batch_norm(BatchNormConfig::BOOK).with_dropout(Dropout::inverted(0.2)).model();
const BATCH: usize = 8;

#[test]
fn train_and_eval_steps_allocate_nothing() {
    let opt = Optimizer::adam().with_weight_decay(WeightDecay::L2(1e-3));
    // The caller's storage, sized by the planner, allocated before counting starts.
    let mut memory = HostMemory::new(&SPEC.plan(BATCH, &opt));
    let x: Vec<f32> = (0..BATCH * 20).map(|i| (i % 7) as f32 * 0.1).collect();
    let labels: Vec<u32> = (0..BATCH as u32).map(|i| i % 5).collect();
    let mut predicted = [0u32; BATCH];
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
    let mut trainer = Trainer::new(&SPEC, &opt, BATCH, memory.memory()).unwrap();
    trainer.init(&mut rng).unwrap();

    let ((first, last, hits), allocations, bytes) = count_allocations(|| {
        let first = trainer.step(&x, Targets::Labels(&labels), 1e-2, &mut rng).unwrap();
        let mut last = first;
        for _ in 0..50 {
            last = trainer.step(&x, Targets::Labels(&labels), 1e-2, &mut rng).unwrap();
        }
        trainer.predict(&x, &mut predicted).unwrap();
        let hits = trainer.correct(&x, &labels, BATCH).unwrap();
        (first, last, hits)
    });
    assert_eq!((allocations, bytes), (0, 0), "a train or eval step allocated");
    assert!(last < first, "training did not reduce the loss: {first} -> {last}");
    assert_eq!(hits, predicted.iter().zip(&labels).filter(|(p, l)| p == l).count());
}

/// A CNN as a `Model` layer list: convolution with padding, max pooling, a strided convolution,
/// average pooling, dense layers with dropout.
const CNN_LAYERS: [staticgrad::model::Layer; 9] = {
    use staticgrad::model::Layer;
    [
        Layer::conv2d(4, 3, 1, 1),
        Layer::relu(),
        Layer::max_pool2d(2, 2),
        Layer::conv2d(6, 3, 2, 1),
        Layer::tanh(),
        Layer::avg_pool2d(2, 1),
        Layer::dense(12),
        Layer::dropout(Dropout::inverted(0.2)),
        Layer::dense(5),
    ]
};
const CNN: Model = Model::image(2, 12, 12, &CNN_LAYERS);

#[test]
fn cnn_model_train_and_eval_steps_allocate_nothing() {
    let opt = Optimizer::adam();
    let mut memory = HostMemory::new(&CNN.plan(BATCH, &opt));
    let x: Vec<f32> = (0..BATCH * CNN.inputs()).map(|i| (i % 7) as f32 * 0.1).collect();
    let labels: Vec<u32> = (0..BATCH as u32).map(|i| i % 5).collect();
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
    let mut trainer = Trainer::new(&CNN, &opt, BATCH, memory.memory()).unwrap();
    trainer.init(&mut rng).unwrap();
    let ((first, last), allocations, bytes) = count_allocations(|| {
        let first = trainer.step(&x, Targets::Labels(&labels), 1e-2, &mut rng).unwrap();
        let mut last = first;
        for _ in 0..30 {
            last = trainer.step(&x, Targets::Labels(&labels), 1e-2, &mut rng).unwrap();
        }
        trainer.correct(&x, &labels, BATCH).unwrap();
        (first, last)
    });
    assert_eq!((allocations, bytes), (0, 0), "a CNN train or eval step allocated");
    assert!(last < first, "training did not reduce the loss: {first} -> {last}");
}

/// Frozen layers (read-only weights, a trainable head), fused and with a gradient buffer, and
/// inference from read-only weights.
#[test]
fn frozen_layers_and_read_only_inference_allocate_nothing() {
    use staticgrad::model::Layer;
    use staticgrad::{Node, ParamEntry, Params, Tape};
    const LAYERS: [Layer; 6] = [
        Layer::dense(32).frozen(),
        Layer::relu(),
        Layer::dense(16).frozen(),
        Layer::relu(),
        Layer::dense(8),
        Layer::dense(5),
    ];
    const NET: Model = Model::new(20, &LAYERS);
    let opt = Optimizer::momentum();
    let frozen: Vec<f32> = (0..NET.frozen_len()).map(|i| ((i % 13) as f32 - 6.0) * 0.02).collect();
    let x: Vec<f32> = (0..BATCH * 20).map(|i| (i % 7) as f32 * 0.1).collect();
    let labels: Vec<u32> = (0..BATCH as u32).map(|i| i % 5).collect();
    for fused in [false, true] {
        let plan = if fused { NET.plan_fused(BATCH, &opt) } else { NET.plan(BATCH, &opt) };
        let mut memory = HostMemory::new(&plan).with_frozen(frozen.clone());
        let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
        let mut trainer = if fused {
            Trainer::fused(&NET, &opt, BATCH, memory.memory()).unwrap()
        } else {
            Trainer::new(&NET, &opt, BATCH, memory.memory()).unwrap()
        };
        trainer.init(&mut rng).unwrap();
        let ((first, last), allocations, bytes) = count_allocations(|| {
            let first = trainer.step(&x, Targets::Labels(&labels), 0.05, &mut rng).unwrap();
            let mut last = first;
            for _ in 0..30 {
                last = trainer.step(&x, Targets::Labels(&labels), 0.05, &mut rng).unwrap();
            }
            trainer.correct(&x, &labels, BATCH).unwrap();
            (first, last)
        });
        assert_eq!((allocations, bytes), (0, 0), "a frozen-layer step allocated (fused {fused})");
        assert!(last < first, "the head did not learn: {first} -> {last}");
    }
    let plan = NET.plan_inference(BATCH);
    let weights: Vec<f32> =
        (0..NET.param_len() + NET.frozen_len()).map(|i| ((i % 5) as f32 - 2.0) * 0.1).collect();
    let (mut table, mut floats, mut nodes) = (
        vec![ParamEntry::EMPTY; plan.param_tensors],
        vec![0.0; plan.tape_floats],
        vec![Node::EMPTY; plan.tape_nodes],
    );
    let mut predicted = [0u32; BATCH];
    let (_, allocations, bytes) = count_allocations(|| {
        let mut params = Params::read_only(&weights, &mut table);
        NET.alloc_read_only(&mut params).unwrap();
        let mut tape = Tape::new(&mut floats, &mut nodes);
        NET.predict(&mut tape, &params, &x, &mut predicted).unwrap();
    });
    assert_eq!((allocations, bytes), (0, 0), "inference from read-only weights allocated");
}
