//! All cores, the same bits: training with 1, 2 and 7 worker threads gives identical weights,
//! optimizer state and losses, for every workload shape (a tiny net, book-like and
//! twolayer-like MLPs, batch norm and dropout, a CNN) at odd sizes.
//!
//! The driver here runs the chunks of each split on scoped threads, `threads` at a time, in an
//! order that differs from the sequential one; it counts the splits, so a test also proves that
//! the products were in fact shared (a threshold change that stopped all splitting would fail).

use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;
use staticgrad::parallel::{Parallel, Sequential};
use staticgrad::{Activation, BatchNormConfig, Dropout, Layer, MlpSpec, Model, Optimizer, Targets, Trainer};
use staticgrad_tests::HostMemory;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs the chunks on `threads` scoped threads: thread `t` takes chunks `t, t + threads, …`,
/// last chunk first, so neither the order nor the thread of a chunk is the sequential one.
struct Scoped<'a> {
    threads: usize,
    splits: &'a AtomicUsize,
}

impl Parallel for Scoped<'_> {
    fn threads(&self) -> usize {
        self.threads
    }

    fn for_each_chunk(&self, data: &mut [f32], chunk: usize, f: &(dyn Fn(usize, &mut [f32]) + Sync)) {
        self.splits.fetch_add(1, Ordering::Relaxed);
        let mut chunks: Vec<(usize, &mut [f32])> = data.chunks_mut(chunk.max(1)).enumerate().collect();
        chunks.reverse();
        let mut per: Vec<Vec<(usize, &mut [f32])>> = (0..self.threads).map(|_| Vec::new()).collect();
        for (n, c) in chunks.into_iter().enumerate() {
            per[n % self.threads].push(c);
        }
        std::thread::scope(|s| {
            for mine in per {
                s.spawn(move || {
                    for (i, c) in mine {
                        f(i, c);
                    }
                });
            }
        });
    }
}

/// What a run leaves: every loss's bits, the parameter values and the optimizer state.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    losses: Vec<u32>,
    values: Vec<u32>,
    state: Vec<u32>,
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// `steps` steps of `model` with `opt` at `batch` rows on `driver` (none: a plain trainer), from
/// seed-0 weights and data.
fn train(
    model: &Model,
    opt: &Optimizer,
    batch: usize,
    steps: usize,
    driver: Option<&dyn Parallel>,
) -> Outcome {
    let plan = model.plan(batch, opt);
    let mut memory = HostMemory::new(&plan);
    let mut trainer = Trainer::new(model, opt, batch, memory.memory()).unwrap();
    if let Some(d) = driver {
        trainer = trainer.with_parallel(d);
    }
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
    trainer.init(&mut rng).unwrap();
    let (features, classes) = (model.inputs(), model.outputs());
    let mut losses = Vec::new();
    for s in 0..steps {
        let x: Vec<f32> =
            (0..batch * features).map(|i| ((i * 7 + s * 13) % 23) as f32 / 23.0 - 0.3).collect();
        let y: Vec<u32> = (0..batch).map(|i| ((i * 5 + s) % classes) as u32).collect();
        let loss = trainer.step(&x, Targets::Labels(&y), 0.05, &mut rng).unwrap();
        losses.push(loss.to_bits());
    }
    Outcome { losses, values: bits(trainer.params().values()), state: bits(trainer.state()) }
}

/// Trains `model` on one thread and on 2 and 7 and compares everything bit for bit; returns the
/// number of splits the 2-thread run made.
fn same_bits(name: &str, model: &Model, opt: &Optimizer, batch: usize) -> usize {
    let one = train(model, opt, batch, 4, None);
    assert!(one.losses.iter().all(|&l| f32::from_bits(l).is_finite()), "{name}: {:?}", one.losses);
    let mut splits_of_two = 0;
    for threads in [1, 2, 7] {
        let splits = AtomicUsize::new(0);
        let got = train(model, opt, batch, 4, Some(&Scoped { threads, splits: &splits }));
        assert_eq!(train(model, opt, batch, 4, Some(&Sequential)), one, "{name}: Sequential");
        assert_eq!(got, one, "{name}: {threads} threads");
        let splits = splits.into_inner();
        if threads == 1 {
            assert_eq!(splits, 0, "{name}: one thread never splits");
        }
        if threads == 2 {
            splits_of_two = splits;
        }
    }
    splits_of_two
}

#[test]
fn tiny_net() {
    // The direct path: nothing to share, and the same bits anyway.
    let model = MlpSpec::new(&[4, 16, 3]).model();
    same_bits("tiny 4-16-3 b8", &model, &Optimizer::sgd(), 8);
    same_bits("tiny 5-13-3 b7", &MlpSpec::new(&[5, 13, 3]).model(), &Optimizer::adam(), 7);
}

#[test]
fn book_like_mlps() {
    let model = MlpSpec::new(&[784, 100, 100, 10]).model();
    assert!(same_bits("784-100-100-10 b37", &model, &Optimizer::sgd(), 37) > 0);
    let odd = MlpSpec::new(&[1001, 29, 13, 11]).model();
    assert!(same_bits("1001-29-13-11 b7 adam", &odd, &Optimizer::adam(), 7) > 0);
    let odd = MlpSpec::new(&[1001, 13, 129, 11]).model();
    assert!(same_bits("1001-13-129-11 b13 momentum", &odd, &Optimizer::momentum(), 13) > 0);
    // A weight of 131,131 floats: plain SGD's update is shared too.
    let wide = MlpSpec::new(&[1001, 131, 10]).model();
    assert!(same_bits("1001-131-10 b9 sgd", &wide, &Optimizer::sgd(), 9) > 0);
}

#[test]
fn twolayer_like_mlps() {
    let model = MlpSpec::new(&[784, 50, 10]).with_activation(Activation::Sigmoid).model();
    assert!(same_bits("784-50-10 sigmoid b100", &model, &Optimizer::sgd(), 100) > 0);
    let odd = MlpSpec::new(&[785, 51, 9]).with_activation(Activation::Tanh).model();
    assert!(same_bits("785-51-9 tanh b99", &odd, &Optimizer::sgd(), 99) > 0);
}

#[test]
fn batch_norm_and_dropout() {
    const LAYERS: [Layer; 8] = [
        Layer::dense(129),
        Layer::batch_norm(BatchNormConfig::STANDARD),
        Layer::relu(),
        Layer::dropout(Dropout::inverted(0.3)),
        Layer::dense(13),
        Layer::batch_norm(BatchNormConfig::BOOK),
        Layer::sigmoid(),
        Layer::dense(10),
    ];
    let model = Model::new(1003, &LAYERS);
    assert!(same_bits("1003-129bn-13bn-10 dropout b37", &model, &Optimizer::adam(), 37) > 0);
}

#[test]
fn cnn() {
    // SimpleConvNet's shape at odd sizes: a 5×5 convolution of 13 filters on 29×27 images,
    // max pooling, two dense layers; batch 23. The convolution's images and filters, the
    // activations' elements and the pooling's planes are shared (each is over the threshold).
    const LAYERS: [Layer; 6] = [
        Layer::conv2d(13, 5, 1, 0),
        Layer::relu(),
        Layer::max_pool2d(2, 2),
        Layer::dense(37),
        Layer::relu(),
        Layer::dense(10),
    ];
    let model = Model::image(1, 29, 27, &LAYERS);
    assert!(same_bits("cnn 1x29x27 conv13x5x5 b23", &model, &Optimizer::sgd(), 23) > 0);
    // Padding and two channels: the loops' path (not im2col) in the forward.
    const PADDED: [Layer; 5] =
        [Layer::conv2d(7, 3, 1, 1), Layer::relu(), Layer::avg_pool2d(2, 2), Layer::dense(11), Layer::relu()];
    let padded = Model::image(2, 31, 30, &PADDED);
    assert!(same_bits("cnn 2x31x30 conv7x3x3 pad1 b21", &padded, &Optimizer::adam(), 21) > 0);
}
