//! MNIST at 14×14 (196 inputs) with a 196-32-10 ReLU MLP and softmax cross-entropy, trained on
//! the bundled images kept in flash as `u8`, evaluated on held-out ones.
//!
//! One routine serves every variant ([`MnistConfig`]: batch size, update rule, fused update or a
//! gradient buffer); the consts below are the variants the firmware runs and the host test checks.

use crate::data::{self, PIXELS, TEST_IMAGES, TEST_LABELS, TEST_N, TRAIN_IMAGES, TRAIN_LABELS, TRAIN_N};
use crate::{EpochReport, Hooks, Outcome};
use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro128PlusPlus;
use staticgrad::model::{MlpSpec, Model, Plan, Targets::Labels};
use staticgrad::optim::Optimizer;
use staticgrad::train::Trainer;
use staticgrad::{Error, Memory, Region, Result};

/// Layer widths: 14×14 pixels, 32 hidden ReLU units, 10 classes.
pub const WIDTHS: [usize; 3] = [PIXELS, 32, 10];
/// The model: ReLU, He-normal weights, softmax cross-entropy.
pub const SPEC: Model<'static> = MlpSpec::new(&WIDTHS).model();
/// Inputs per example.
pub const INPUTS: usize = PIXELS;

/// One variant of the demo.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MnistConfig {
    /// Short name printed by the firmware and used by the host test.
    pub name: &'static str,
    /// The network: the MLP ([`SPEC`]) or the CNN ([`crate::cnn::SPEC`]).
    pub net: Net,
    /// Mini-batch size.
    pub batch: usize,
    /// Update rule.
    pub optimizer: Optimizer,
    /// Learning rate of the first epoch.
    pub lr: f32,
    /// Factor applied to the learning rate after each epoch (a step-decay schedule).
    pub lr_decay: f32,
    /// Fused update (no gradient buffer) or a gradient buffer.
    pub fused: bool,
    /// Passes over the training set.
    pub epochs: u32,
    /// Seed of initialisation and shuffling.
    pub seed: u64,
    /// The measured window: steps `measure.0 .. measure.0 + measure.1`.
    pub measure: (u32, u32),
    /// The bar: held-out accuracy at least this many per thousand.
    pub min_accuracy_permille: u32,
    /// RAM budget of the claim for this variant, in bytes: statics plus the measured stack.
    /// The firmware checks its plan against it at compile time and its real use at run time.
    pub ram_budget: usize,
}

/// The networks the MNIST demo trains: each takes the 196 pixels (the CNN as a `1 × 14 × 14`
/// image) to 10 logits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Net {
    /// [`SPEC`]: 196-32-10 ReLU.
    Mlp,
    /// [`crate::cnn::SPEC`]: conv 8×3×3, ReLU, max-pool 2×2, dense 10.
    Cnn,
}

impl MnistConfig {
    /// The model of [`net`](Self::net). An enum rather than a `&Model` field: with a `const`
    /// variant the match folds to the model's own constant, as a plain `&SPEC` does, whereas a
    /// reference read out of the config kept the model's bytes in some firmwares' flash.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub const fn model(&self) -> &'static Model<'static> {
        match self.net {
            Net::Mlp => &SPEC,
            Net::Cnn => &crate::cnn::SPEC,
        }
    }

    /// What a step of this variant needs: the planner's numbers for the batch, the rule and the
    /// mode (the firmware sizes its `static`s with it).
    pub const fn plan(&self) -> Plan {
        if self.fused {
            self.model().plan_fused(self.batch, &self.optimizer)
        } else {
            self.model().plan(self.batch, &self.optimizer)
        }
    }
}

impl MnistConfig {
    /// Bytes of all the statics this variant's firmware declares: the plan plus the batch's
    /// `f32` pixels and `u32` labels.
    pub const fn static_bytes(&self) -> usize {
        self.plan().total_bytes() + self.batch * (INPUTS + 1) * 4
    }
}

/// Batch 1, SGD, gradient buffer.
pub const SGD_B1: MnistConfig = MnistConfig {
    name: "mnist-sgd-b1",
    net: Net::Mlp,
    batch: 1,
    optimizer: Optimizer::sgd(),
    lr: 0.05,
    lr_decay: 0.5,
    fused: false,
    epochs: 3,
    seed: 1,
    measure: (500, 20),
    min_accuracy_permille: 850,
    ram_budget: 64 * 1024,
};
/// Batch 1, SGD, fused update: same bits as [`SGD_B1`].
pub const SGD_B1_FUSED: MnistConfig =
    MnistConfig { name: "mnist-sgd-b1-fused", fused: true, ram_budget: 36 * 1024, ..SGD_B1 };
/// Batch 8, SGD, gradient buffer.
pub const SGD_B8: MnistConfig = MnistConfig {
    name: "mnist-sgd-b8",
    batch: 8,
    lr: 0.3,
    lr_decay: 0.7,
    epochs: 4,
    measure: (60, 10),
    ram_budget: 96 * 1024,
    ..SGD_B1
};
/// Batch 8, SGD, fused update: same bits as [`SGD_B8`].
pub const SGD_B8_FUSED: MnistConfig =
    MnistConfig { name: "mnist-sgd-b8-fused", fused: true, ram_budget: 64 * 1024, ..SGD_B8 };
/// Batch 1, Adam (the book's), gradient buffer.
pub const ADAM_B1: MnistConfig = MnistConfig {
    name: "mnist-adam-b1",
    optimizer: Optimizer::adam(),
    lr: 0.002,
    ram_budget: 128 * 1024,
    ..SGD_B1
};
/// Batch 1, Adam, fused update: same bits as [`ADAM_B1`].
pub const ADAM_B1_FUSED: MnistConfig =
    MnistConfig { name: "mnist-adam-b1-fused", fused: true, ram_budget: 100 * 1024, ..ADAM_B1 };
/// Every variant, in the order the firmware and the host test run them.
pub const ALL: [MnistConfig; 6] = [SGD_B1, SGD_B1_FUSED, SGD_B8, SGD_B8_FUSED, ADAM_B1, ADAM_B1_FUSED];

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// A shuffle with no storage: the epoch visits `(i·mult + shift) mod TRAIN_N`, a permutation
/// for `mult` coprime to `TRAIN_N`, both drawn from the seeded generator.
pub(crate) fn epoch_order(rng: &mut impl Rng) -> (u32, u32) {
    let n = TRAIN_N as u32;
    loop {
        let mult = 1 + rng.next_u32() % (n - 1);
        if gcd(mult, n) == 1 {
            return (mult, rng.next_u32() % n);
        }
    }
}

/// Held-out images classified correctly (one at a time, so the tape of batch 1 suffices).
// into `train`: the trainer is lent to no code out of line (see `Trainer`)
#[cfg_attr(not(debug_assertions), inline(always))]
fn evaluate(trainer: &mut Trainer, x: &mut [f32]) -> Result<u32> {
    let mut correct = 0;
    let mut predicted = [0u32; 1];
    for (i, &label) in TEST_LABELS.iter().enumerate().take(TEST_N) {
        data::to_f32(TEST_IMAGES, i, &mut x[..INPUTS]);
        trainer.predict(&x[..INPUTS], &mut predicted)?;
        correct += (predicted[0] == label as u32) as u32;
    }
    Ok(correct)
}

/// Trains one variant and evaluates it after each epoch. `memory` holds `plan`, which must be
/// [`cfg.plan()`](MnistConfig::plan) (a firmware passes its `const`, so that no planner code is
/// compiled in).
// into a firmware's `main`, so that its `const` variant folds (spec, rule, mode)
#[cfg_attr(not(debug_assertions), inline(always))]
pub fn train(
    cfg: &MnistConfig,
    plan: &Plan,
    memory: Memory,
    x: &mut [f32],
    labels: &mut [u32],
    hooks: &mut impl Hooks,
) -> Result<Outcome> {
    let b = cfg.batch;
    for (needed, available) in [(b * INPUTS, x.len()), (b, labels.len())] {
        if available < needed {
            return Err(Error::Capacity { region: Region::TapeFloats, needed, available });
        }
    }
    let mut trainer = if cfg.fused {
        Trainer::fused_planned(cfg.model(), &cfg.optimizer, b, memory, plan)?
    } else {
        Trainer::planned(cfg.model(), &cfg.optimizer, b, memory, plan)?
    };
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(cfg.seed);
    trainer.init(&mut rng)?;
    let (x, labels) = (&mut x[..b * INPUTS], &mut labels[..b]);
    let steps_per_epoch = (TRAIN_N / b) as u32;
    let mut step = 0u32;
    let mut last = EpochReport { epoch: 0, mean_loss: 0.0, correct: 0, total: TEST_N as u32 };
    let mut lr = cfg.lr;
    for epoch in 1..=cfg.epochs {
        let (mult, shift) = epoch_order(&mut rng);
        let mut sum = 0.0f32;
        for s in 0..steps_per_epoch {
            if step == cfg.measure.0 {
                hooks.mark();
            }
            for r in 0..b {
                let i = ((s as usize * b + r) as u32 * mult + shift) as usize % TRAIN_N;
                data::to_f32(TRAIN_IMAGES, i, &mut x[r * INPUTS..(r + 1) * INPUTS]);
                labels[r] = TRAIN_LABELS[i] as u32;
            }
            sum += trainer.step(x, Labels(labels), lr, &mut rng)?;
            step += 1;
            if step == cfg.measure.0 + cfg.measure.1 {
                hooks.mark();
            }
        }
        lr *= cfg.lr_decay;
        let correct = evaluate(&mut trainer, x)?;
        last = EpochReport { epoch, mean_loss: sum / steps_per_epoch as f32, correct, total: TEST_N as u32 };
        hooks.epoch(&last);
    }
    Ok(Outcome {
        last,
        checksum: crate::fnv1a(trainer.params().values()),
        steps: step,
        passed: last.correct * 1000 >= cfg.min_accuracy_permille * last.total,
    })
}
