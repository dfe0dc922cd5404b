//! Panel 3: training an MLP on the bundled MNIST images, step for step as `staticgrad train`
//! runs it (`std-runner/src/train.rs`): the same model and optimizer settings, the initial
//! weights from `stream(seed, INIT, 0)`, each epoch's order from the core's
//! [`staticgrad::sampling`] (`stream(seed, ORDER, epoch)`), each step's dropout masks from
//! `stream(seed, DROPOUT, step)`, the learning rate from the core's [`Schedule`], and the
//! accuracies of each epoch in evaluation mode, in chunks of the batch rows.
//!
//! The data split is the runner's `--limit train+test --test test --val 0`: the first `train`
//! images train, the next `test` are held out.

use std::sync::Mutex;

use staticgrad::model::Targets;
use staticgrad::sampling::{purpose, shuffle, steps_per_epoch, stream, with_replacement};
use staticgrad::schedule::Schedule;
use staticgrad::weights::MAX_WIDTHS;
use staticgrad::{
    Activation, BatchNormConfig, Dropout, Error, Init, Memory, MlpSpec, Node, Optimizer, ParamEntry, Trainer,
    WeightDecay,
};

/// Features per image (28 × 28).
pub const FEATURES: usize = 784;

/// The images (`n × 784` bytes) and labels (`n` bytes) the page loaded.
static DATA: Mutex<(Vec<u8>, Vec<u8>)> = Mutex::new((Vec::new(), Vec::new()));

// The page's callbacks: a step's loss, an epoch's records.
#[link(wasm_import_module = "env")]
unsafe extern "C" {
    safe fn sg_on_step(step: u32, loss: f32, lr: f32);
    safe fn sg_on_epoch(epoch: u32, step: u32, train_loss: f32, train_acc: f32, test_acc: f32);
}

/// Takes `n` images from the input buffer: `n × 784` pixel bytes, then `n` label bytes (the IDX
/// files' payloads). The output is empty.
#[unsafe(no_mangle)]
pub extern "C" fn sg_mnist_load(n: u32) -> i32 {
    let input = crate::input();
    let n = n as usize;
    let r = if input.len() != n * (FEATURES + 1) {
        Err(Error::InvalidArgument { what: "MNIST input bytes (n × 785)", value: input.len() as f32 })
    } else if let Some(&l) = input[n * FEATURES..].iter().find(|&&l| l > 9) {
        Err(Error::InvalidArgument { what: "MNIST label", value: l as f32 })
    } else {
        let mut d = DATA.lock().unwrap_or_else(|e| e.into_inner());
        *d = (input[..n * FEATURES].to_vec(), input[n * FEATURES..].to_vec());
        Ok(Vec::new())
    };
    crate::finish::<u8, 1>(r, |b| [b])
}

/// The loaded images and labels (empty before `sg_mnist_load`).
pub fn images() -> (Vec<u8>, Vec<u8>) {
    DATA.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Pixel byte to `f32` in `[0, 1]`, as the runner (`data::normalize_byte`).
pub fn normalize(b: u8) -> f32 {
    b as f32 / 255.0
}

/// Images `idx` of `images` as floats into `x`, their labels into `y`.
fn gather(images: &[u8], labels: &[u8], idx: &[usize], x: &mut Vec<f32>, y: &mut Vec<u32>) {
    x.clear();
    y.clear();
    for &i in idx {
        x.extend(images[i * FEATURES..(i + 1) * FEATURES].iter().map(|&b| normalize(b)));
        y.push(labels[i] as u32);
    }
}

/// Images of `images` the model classifies correctly, `chunk` rows at a time, as the runner's
/// `Dataset::correct` for byte-stored data (shared with [`crate::hpsearch`]).
pub fn hits(t: &mut Trainer, images: &[u8], labels: &[u8], chunk: usize) -> staticgrad::Result<usize> {
    let n = labels.len();
    if n == 0 {
        return Ok(0);
    }
    let chunk = chunk.min(n);
    let (mut buf, mut hits) = (Vec::with_capacity(chunk * FEATURES), 0);
    let y: Vec<u32> = labels.iter().map(|&l| l as u32).collect();
    for start in (0..n).step_by(chunk) {
        let end = (start + chunk).min(n);
        buf.clear();
        buf.extend(images[start * FEATURES..end * FEATURES].iter().map(|&b| normalize(b)));
        hits += t.correct(&buf, &y[start..end], chunk)?;
    }
    Ok(hits)
}

/// The share of `labels` the model gets right (0 for none), as the runner's `accuracy`.
fn accuracy(t: &mut Trainer, images: &[u8], labels: &[u8], chunk: usize) -> staticgrad::Result<f32> {
    let n = labels.len();
    Ok(if n == 0 { 0.0 } else { hits(t, images, labels, chunk)? as f32 / n as f32 })
}

/// A run's settings, as the page's controls (and `staticgrad train`'s flags) name them.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Update rule: an index into `["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"]`.
    pub optimizer: u32,
    /// Learning rate (`--lr`); 0 takes the rule's default.
    pub lr: f32,
    /// 0 He, 1 Xavier, 2 a normal of std `init_std` (`--init`).
    pub init: u32,
    /// Standard deviation for `init = 2`.
    pub init_std: f32,
    /// 0 ReLU, 1 sigmoid, 2 tanh (`--activation`).
    pub activation: u32,
    /// Hidden layers of `width` units (`--layers 784,width×hidden,10`).
    pub hidden: u32,
    /// Units per hidden layer.
    pub width: u32,
    /// Batch norm after each hidden affine (`--batchnorm`).
    pub batchnorm: bool,
    /// Inverted dropout ratio (`--dropout`).
    pub dropout: f32,
    /// Coupled L2 weight decay λ (`--weight-decay`).
    pub weight_decay: f32,
    /// Training images (the first ones).
    pub train: u32,
    /// Held-out images (after the training ones).
    pub test: u32,
    /// `--batch`.
    pub batch: u32,
    /// `--epochs`.
    pub epochs: u32,
    /// Stop after this many steps (`--max-steps`; 0 = run every epoch).
    pub max_steps: u32,
    /// `--seed`.
    pub seed: u32,
    /// 0 constant, 1 cosine to 0 over all steps (`--schedule`).
    pub cosine: bool,
    /// Batches with replacement (`--sampling replace`) instead of a shuffle per epoch.
    pub replace: bool,
}

const RULES: [&str; 6] = ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"];

fn bad(what: &'static str, value: f32) -> Error {
    Error::InvalidArgument { what, value }
}

/// Trains with `s`, calling the page back after every step and every epoch; the output is the
/// loss of every step (little-endian `f32`).
pub fn train(s: &Settings) -> staticgrad::Result<Vec<f32>> {
    let (images, labels) = images();
    let (n_train, n_test) = (s.train as usize, s.test as usize);
    if n_train == 0 || n_train + n_test > labels.len() {
        return Err(bad(
            "training + test images (more than loaded, or no training image)",
            (n_train + n_test) as f32,
        ));
    }
    if s.hidden as usize + 2 > MAX_WIDTHS || s.width == 0 || s.width > 4096 {
        return Err(bad("hidden layers or width", s.hidden.max(s.width) as f32));
    }
    if s.batch == 0 || s.epochs == 0 {
        return Err(bad("batch and epochs (at least 1)", 0.0));
    }
    let name = RULES.get(s.optimizer as usize).ok_or(bad("optimizer (0..6)", s.optimizer as f32))?;
    let mut opt = Optimizer::by_name(name).ok_or(bad("optimizer", s.optimizer as f32))?;
    if s.weight_decay > 0.0 {
        opt = opt.with_weight_decay(WeightDecay::L2(s.weight_decay));
    }
    opt.validate()?;
    let lr = if s.lr > 0.0 { s.lr } else { opt.default_lr() };
    let init = match s.init {
        0 => Init::HeNormal,
        1 => Init::XavierBook,
        _ => Init::Normal { std: s.init_std },
    };
    let activation = match s.activation {
        0 => Activation::Relu,
        1 => Activation::Sigmoid,
        _ => Activation::Tanh,
    };
    let mut widths = vec![FEATURES];
    widths.extend((0..s.hidden).map(|_| s.width as usize));
    widths.push(10);
    let mut spec = MlpSpec::new(&widths).with_activation(activation).with_init(init);
    if s.batchnorm {
        spec = spec.with_batch_norm(BatchNormConfig::STANDARD);
    }
    if s.dropout > 0.0 {
        spec = spec.with_dropout(Dropout::inverted(s.dropout));
    }
    let model = spec.model();
    model.validate()?;

    let (train_img, train_lbl) = (&images[..n_train * FEATURES], &labels[..n_train]);
    let test_img = &images[n_train * FEATURES..(n_train + n_test) * FEATURES];
    let test_lbl = &labels[n_train..n_train + n_test];
    let batch = (s.batch as usize).min(n_train).max(1);
    let eval = (s.batch as usize).min(n_train.max(n_test)).max(1);
    let spe = steps_per_epoch(n_train, batch);
    let total = spe
        .checked_mul(s.epochs as usize)
        .filter(|&t| t <= u32::MAX as usize)
        .ok_or(bad("epochs × steps per epoch", s.epochs as f32))?;
    let stop = if s.max_steps > 0 { total.min(s.max_steps as usize) } else { total };
    let sched = if s.cosine { Schedule::cosine(lr, total as u32, 0.0) } else { Schedule::constant(lr) };

    // The runner's plan: the training step's, with the tape large enough for evaluation chunks.
    let mut plan = model.try_plan(batch, &opt)?;
    plan.tape_floats = plan.tape_floats.max(model.eval_tape_floats(eval));
    plan.tape_nodes = plan.tape_nodes.max(model.eval_tape_nodes());
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
    let mut trainer = Trainer::new(&model, &opt, batch, memory)?;
    trainer.init(&mut stream(s.seed as u64, purpose::INIT, 0))?;

    let (mut xb, mut yb) = (Vec::with_capacity(batch * FEATURES), Vec::with_capacity(batch));
    let mut order = vec![0usize; if s.replace { spe * batch } else { n_train }];
    let mut losses = Vec::with_capacity(stop);
    let mut epoch_loss = 0.0f64;
    for step in 0..stop {
        let (epoch, pos) = (step / spe, step % spe);
        if pos == 0 {
            let mut rng = stream(s.seed as u64, purpose::ORDER, epoch as u64);
            if s.replace {
                with_replacement(&mut rng, n_train, &mut order)?;
            } else {
                shuffle(&mut rng, &mut order)?;
            }
        }
        gather(train_img, train_lbl, &order[pos * batch..(pos + 1) * batch], &mut xb, &mut yb);
        let lr = sched.lr(step as u32);
        let loss = trainer.step(
            &xb,
            Targets::Labels(&yb),
            lr,
            &mut stream(s.seed as u64, purpose::DROPOUT, step as u64),
        )?;
        losses.push(loss);
        epoch_loss += loss as f64;
        sg_on_step(step as u32 + 1, loss, lr);
        if (step + 1) % spe == 0 {
            let train_acc = accuracy(&mut trainer, train_img, train_lbl, eval)?;
            let test_acc = accuracy(&mut trainer, test_img, test_lbl, eval)?;
            sg_on_epoch(
                epoch as u32 + 1,
                step as u32 + 1,
                (epoch_loss / spe as f64) as f32,
                train_acc,
                test_acc,
            );
            epoch_loss = 0.0;
        }
    }
    Ok(losses)
}

/// Trains (see [`Settings`] for the arguments, in order); the output is every step's loss
/// (little-endian `f32`). The page is called back through its imports `sg_on_step` and
/// `sg_on_epoch` as training goes.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn sg_train(
    optimizer: u32,
    lr: f32,
    init: u32,
    init_std: f32,
    activation: u32,
    hidden: u32,
    width: u32,
    batchnorm: u32,
    dropout: f32,
    weight_decay: f32,
    train_n: u32,
    test_n: u32,
    batch: u32,
    epochs: u32,
    max_steps: u32,
    seed: u32,
    cosine: u32,
    replace: u32,
) -> i32 {
    let s = Settings {
        optimizer,
        lr,
        init,
        init_std,
        activation,
        hidden,
        width,
        batchnorm: batchnorm != 0,
        dropout,
        weight_decay,
        train: train_n,
        test: test_n,
        batch,
        epochs,
        max_steps,
        seed,
        cosine: cosine != 0,
        replace: replace != 0,
    };
    crate::finish(train(&s), f32::to_le_bytes)
}
