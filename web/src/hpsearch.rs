//! Panel 4: one trial of the random search of learning rate × weight decay, as `staticgrad
//! experiment hpsearch` runs it (`std-runner/src/experiments/hpsearch.rs`, `data_from` and
//! `run_trial`; the loop of `overfit::train_curves` over `experiments::net::Net`): the first
//! `samples` bundled images shuffled once, the last share held out for validation; trial `i`'s
//! draws from its own generator; a 784-(100 × hidden)-10 ReLU net, He init, the book's
//! cross-entropy, SGD with coupled L2; batches with replacement; train and validation accuracy
//! after iterations 0, k, 2k, … A diverged trial's weights become NaN, as the book's numpy
//! carries on (it then predicts class 0).

use rand_xoshiro::Xoshiro128PlusPlus;
use staticgrad::model::Targets;
use staticgrad::rand_core::{Rng, SeedableRng};
use staticgrad::sampling::{below, shuffle};
use staticgrad::{
    Activation, Error, Init, Loss, Memory, MlpSpec, Node, Optimizer, ParamEntry, Trainer, WeightDecay,
};

use crate::mnist::{FEATURES, hits, images, normalize};

/// Rows evaluated per tape pass (the runner's `net::EVAL_CHUNK`).
const EVAL_CHUNK: usize = 500;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The generator of trial `i` of `stage` (0 broad, 1 narrow).
fn trial_rng(seed: u64, stage: u64, i: u64) -> Xoshiro128PlusPlus {
    Xoshiro128PlusPlus::seed_from_u64(mix(mix(seed ^ 0x6A09_E667_F3BC_C908) ^ mix(stage.wrapping_add(1)) ^ i))
}

fn uniform(rng: &mut impl Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * ((rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
}

/// The search's settings (the runner's `Search`, the book's data).
#[derive(Clone, Copy, Debug)]
pub struct Search {
    /// `--seed`.
    pub seed: u64,
    /// `--samples`: images from the start of the bundled set.
    pub samples: usize,
    /// `--val-frac`.
    pub val_frac: f64,
    /// `--epochs`: evaluations.
    pub epochs: usize,
    /// `--batch`.
    pub batch: usize,
    /// `--hidden`: layers of 100.
    pub hidden: usize,
    /// log10 range of the learning rate.
    pub lr_exp: [f64; 2],
    /// log10 range of the weight decay.
    pub wd_exp: [f64; 2],
}

/// Byte-stored images with their labels.
struct Set {
    x: Vec<u8>,
    y: Vec<u8>,
}

/// Accuracy in eval mode, [`EVAL_CHUNK`] rows at a time (the runner's `Net::accuracy`).
fn accuracy(t: &mut Trainer, d: &Set) -> staticgrad::Result<f64> {
    if d.y.is_empty() {
        return Ok(0.0);
    }
    Ok(hits(t, &d.x, &d.y, EVAL_CHUNK)? as f64 / d.y.len() as f64)
}

/// Trial `i` of stage `stage`: `[lr, wd, final validation accuracy, final training accuracy,
/// validation accuracy per evaluation…, training accuracy per evaluation…]`.
pub fn trial(s: &Search, stage: u64, i: u64) -> staticgrad::Result<Vec<f64>> {
    let bad = |what, value: f32| Error::InvalidArgument { what, value };
    let (images, labels) = images();
    if s.samples == 0 || s.samples > labels.len() || s.epochs == 0 || s.batch == 0 || s.hidden > 14 {
        return Err(bad("samples, epochs, batch or hidden layers", s.samples as f32));
    }
    // The data: the first `samples` images shuffled once, validation first.
    let mut order = vec![0usize; s.samples];
    shuffle(&mut Xoshiro128PlusPlus::seed_from_u64(mix(s.seed ^ 0x5EED)), &mut order)?;
    let nval = (s.samples as f64 * s.val_frac) as usize;
    if nval == 0 || nval >= s.samples {
        return Err(bad("validation share (leaves an empty split)", s.val_frac as f32));
    }
    let pick = |idx: &[usize]| Set {
        x: idx.iter().flat_map(|&k| images[k * FEATURES..(k + 1) * FEATURES].iter().copied()).collect(),
        y: idx.iter().map(|&k| labels[k]).collect(),
    };
    let (train, val) = (pick(&order[nval..]), pick(&order[..nval]));

    // The draws: weight decay first, then the learning rate, as the book.
    let mut rng = trial_rng(s.seed, stage, i);
    let wd = 10f64.powf(uniform(&mut rng, s.wd_exp[0], s.wd_exp[1])) as f32;
    let lr = 10f64.powf(uniform(&mut rng, s.lr_exp[0], s.lr_exp[1])) as f32;
    let classes = train.y.iter().chain(&val.y).map(|&l| l as usize + 1).max().unwrap_or(2);
    let n_train = train.y.len();
    let mut widths = vec![FEATURES];
    widths.extend((0..s.hidden).map(|_| 100));
    widths.push(classes.max(2));
    let spec = MlpSpec::new(&widths)
        .with_activation(Activation::Relu)
        .with_init(Init::HeNormal)
        .with_loss(Loss::SoftmaxCrossEntropyBook);
    let opt = Optimizer::sgd().with_weight_decay(WeightDecay::L2(wd));
    let seed = rng.next_u64();

    // The runner's `NetStorage`: the training plan, the tape also holding evaluation passes.
    let model = spec.model();
    let batch = s.batch;
    let mut plan = model.try_plan(batch, &opt)?;
    let eval = model.eval_tape_floats(EVAL_CHUNK) + model.loss_tape_floats(EVAL_CHUNK);
    let loss = model.eval_tape_floats(batch) + model.loss_tape_floats(batch);
    plan.tape_floats = plan.tape_floats.max(eval).max(loss);
    plan.tape_nodes = plan.tape_nodes.max(model.eval_tape_nodes() + model.loss_tape_nodes());
    let (mut values, mut grads, mut state) =
        (vec![0.0; plan.param_floats], vec![0.0; plan.grad_floats], vec![0.0; plan.state_floats]);
    let (mut table, mut floats, mut nodes) = (
        vec![ParamEntry::EMPTY; plan.param_tensors],
        vec![0.0; plan.tape_floats],
        vec![Node::EMPTY; plan.tape_nodes],
    );
    let memory = Memory {
        values: &mut values,
        grads: &mut grads,
        table: &mut table,
        state: &mut state,
        floats: &mut floats,
        nodes: &mut nodes,
        frozen: &[],
    };
    let mut t = Trainer::new(&model, &opt, batch, memory)?;
    t.init(&mut Xoshiro128PlusPlus::seed_from_u64(seed.wrapping_add(1)))?;
    let mut masks = Xoshiro128PlusPlus::seed_from_u64(seed.wrapping_add(2));
    let mut draw = Xoshiro128PlusPlus::seed_from_u64(seed);

    // The loop of `train_curves`.
    let per_epoch = (n_train / batch).max(1);
    let (mut x, mut y) = (Vec::with_capacity(batch * FEATURES), Vec::with_capacity(batch));
    let (mut train_acc, mut val_acc) = (Vec::new(), Vec::new());
    let mut diverged = false;
    let mut it = 0usize;
    while train_acc.len() < s.epochs {
        x.clear();
        y.clear();
        for _ in 0..batch {
            let k = below(&mut draw, n_train)?;
            x.extend(train.x[k * FEATURES..(k + 1) * FEATURES].iter().map(|&b| normalize(b)));
            y.push(train.y[k] as u32);
        }
        if !diverged {
            match t.step(&x, Targets::Labels(&y), lr, &mut masks) {
                Ok(l) if l.is_finite() => {}
                Ok(_) | Err(Error::NonFinite { .. }) => {
                    diverged = true;
                    t.params_mut().values_mut().fill(f32::NAN);
                }
                Err(e) => return Err(e),
            }
        }
        if it.is_multiple_of(per_epoch) {
            train_acc.push(accuracy(&mut t, &train)?);
            val_acc.push(accuracy(&mut t, &val)?);
        }
        it += 1;
    }
    let mut out = vec![lr as f64, wd as f64, val_acc[val_acc.len() - 1], train_acc[train_acc.len() - 1]];
    out.extend(&val_acc);
    out.extend(&train_acc);
    Ok(out)
}

/// Trial `i` of stage `stage` (0 broad, 1 narrow) of the search with these settings; the output is
/// [`trial`]'s values as little-endian `f64`. Needs the images of `sg_mnist_load`.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn sg_hp_trial(
    seed: u32,
    stage: u32,
    i: u32,
    samples: u32,
    val_frac: f64,
    epochs: u32,
    batch: u32,
    hidden: u32,
    lr_lo: f64,
    lr_hi: f64,
    wd_lo: f64,
    wd_hi: f64,
) -> i32 {
    let s = Search {
        seed: seed as u64,
        samples: samples as usize,
        val_frac,
        epochs: epochs as usize,
        batch: batch as usize,
        hidden: hidden as usize,
        lr_exp: [lr_lo, lr_hi],
        wd_exp: [wd_lo, wd_hi],
    };
    crate::finish(trial(&s, stage as u64, i as u64), f64::to_le_bytes)
}
