//! On-device adaptation (issue 16): a 196-32-10 ReLU network pretrained on the host on digits
//! 0–7 only ([`pretrain`]), exported with its lower layer frozen into flash
//! ([`adapt_base`](crate::adapt_base), written by `staticgrad export --format rust --freeze 1`),
//! learns digits 8 and 9 on the device from a stream of examples of all ten digits, training
//! only its top layer ([`adapt`]). RAM is the top layer, one row of scratch and the tape of one
//! example: the 196×32 layer is read from flash and gets no gradient, and each example is
//! converted from its flash table straight into the tape's input
//! ([`Trainer::step_with`], [`Trainer::predict_with`]).

use crate::data::{self, PIXELS, TEST_IMAGES, TEST_LABELS, TEST_N, TRAIN_IMAGES, TRAIN_LABELS, TRAIN_N};
use crate::mnist::{self, epoch_order};
use crate::{EpochReport, Hooks, Outcome};
use rand_xoshiro::Xoshiro128PlusPlus;
use rand_xoshiro::rand_core::SeedableRng;
use staticgrad::model::{Model, Plan, Targets::Labels};
use staticgrad::optim::Optimizer;
use staticgrad::train::Trainer;
use staticgrad::{Error, Memory, Result};

/// Digits the base model is pretrained on: `0..BASE_CLASSES`.
pub const BASE_CLASSES: u8 = 8;

/// Host pretraining: the full 196-32-10 model ([`mnist::SPEC`]), SGD at batch 1 over the
/// training images of digits 0–7 only.
pub const PRETRAIN_OPT: Optimizer = Optimizer::sgd();
/// Pretraining epochs, first learning rate, its decay per epoch, and the seed.
pub const PRETRAIN: (u32, f32, f32, u64) = (4, 0.05, 0.6, 16);

/// Pretrains the base model on the host: every parameter of [`mnist::SPEC`] into `out`
/// (`memory` holds `SPEC.plan(1, &PRETRAIN_OPT)`). Deterministic: the committed
/// [`adapt_base`](crate::adapt_base) is its export (a test regenerates it).
pub fn pretrain(memory: Memory, out: &mut [f32]) -> Result<()> {
    let (epochs, mut lr, decay, seed) = PRETRAIN;
    let mut trainer = Trainer::new(&mnist::SPEC, &PRETRAIN_OPT, 1, memory)?;
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed);
    trainer.init(&mut rng)?;
    let mut x = [0.0f32; PIXELS];
    for _ in 0..epochs {
        let (mult, shift) = epoch_order(&mut rng);
        for s in 0..TRAIN_N {
            let i = (s as u32 * mult + shift) as usize % TRAIN_N;
            let label = TRAIN_LABELS[i];
            if label < BASE_CLASSES {
                data::to_f32(TRAIN_IMAGES, i, &mut x);
                trainer.step(&x, Labels(&[label as u32]), lr, &mut rng)?;
            }
        }
        lr *= decay;
    }
    if out.len() != trainer.params().len() {
        return Err(Error::Shape {
            op: "pretrained values",
            expected: staticgrad::Shape::row(trainer.params().len()),
            found: staticgrad::Shape::row(out.len()),
        });
    }
    out.copy_from_slice(trainer.params().values());
    Ok(())
}

/// The model on the device: the exported one, its first dense layer frozen.
pub const MODEL: Model<'static> = crate::adapt_base::MODEL;
/// The update rule of the adaptation.
pub const OPT: Optimizer = Optimizer::sgd();
/// Batch 1, fused update: RAM is the top layer, one row of scratch and one example's tape.
pub const PLAN: Plan = MODEL.plan_fused(1, &OPT);

/// The adaptation's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdaptConfig {
    /// Name printed by the firmware and used by the host test.
    pub name: &'static str,
    /// Learning rate of the first pass, and its factor per pass.
    pub lr: f32,
    /// Factor applied to the learning rate after each pass.
    pub lr_decay: f32,
    /// Passes over the stream (the training images of all ten digits).
    pub epochs: u32,
    /// Seed of the stream's order.
    pub seed: u64,
    /// The measured window: steps `measure.0 .. measure.0 + measure.1`.
    pub measure: (u32, u32),
    /// The bar: held-out accuracy on all ten digits at least this many per thousand, and digits
    /// 0–7 losing at most `max_drop_permille` against the base.
    pub min_accuracy_permille: u32,
    /// See `min_accuracy_permille`.
    pub max_drop_permille: u32,
    /// RAM budget (static + stack), bytes: what the firmware checks at run time.
    pub ram_budget: usize,
}

/// The demo's settings.
pub const ADAPT: AdaptConfig = AdaptConfig {
    name: "mnist-adapt",
    lr: 0.05,
    lr_decay: 0.5,
    epochs: 2,
    seed: 3,
    measure: (500, 20),
    min_accuracy_permille: 850,
    max_drop_permille: 30,
    // The goal; each example is written straight into the tape's input
    // (`Trainer::step_with`), not held in a buffer of its own as well.
    ram_budget: 4 * 1024,
};

/// Held-out results per digit: `(correct, total)` for 0–9.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PerDigit {
    /// Correct predictions per digit.
    pub correct: [u16; 10],
    /// Held-out examples per digit.
    pub total: [u16; 10],
}

impl PerDigit {
    /// Correct and total over digits `from..to`.
    pub fn sum(&self, from: usize, to: usize) -> (u32, u32) {
        let c = self.correct[from..to].iter().map(|&c| c as u32).sum();
        (c, self.total[from..to].iter().map(|&t| t as u32).sum())
    }
}

/// What the adaptation did: the outcome (checksum of the trained top layer), and the held-out
/// results per digit before and after.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adapted {
    /// Checksum, last pass, steps, verdict.
    pub outcome: Outcome,
    /// Per digit, before adaptation (the base model).
    pub before: PerDigit,
    /// Per digit, after.
    pub after: PerDigit,
}

#[cfg_attr(not(debug_assertions), inline(always))]
fn evaluate(trainer: &mut Trainer) -> Result<PerDigit> {
    let mut r = PerDigit::default();
    let mut predicted = [0u32; 1];
    for (i, &label) in TEST_LABELS.iter().enumerate().take(TEST_N) {
        // Converted from the flash table straight into the tape's input: held once.
        trainer.predict_with(1, data::fill(TEST_IMAGES, i), &mut predicted)?;
        let d = label as usize % 10;
        r.total[d] += 1;
        r.correct[d] += (predicted[0] == label as u32) as u16;
    }
    Ok(r)
}

/// Adapts the base on a stream of all ten digits, training the top layer only. `memory` holds
/// [`PLAN`] with `memory.frozen` the frozen layer's values (a firmware's flash
/// [`adapt_base::FROZEN`](crate::adapt_base::FROZEN)); `start` is the top layer's pretrained
/// values ([`adapt_base::TRAINABLE`](crate::adapt_base::TRAINABLE)).
// into a firmware's `main`, so that the `const` model and plan fold
#[cfg_attr(not(debug_assertions), inline(always))]
pub fn adapt(cfg: &AdaptConfig, memory: Memory, start: &[f32], hooks: &mut impl Hooks) -> Result<Adapted> {
    let mut trainer = Trainer::fused_planned(&MODEL, &OPT, 1, memory, &PLAN)?;
    let values = trainer.params_mut().values_mut();
    if values.len() != start.len() {
        let (expected, found) = (staticgrad::Shape::row(values.len()), staticgrad::Shape::row(start.len()));
        return Err(Error::Shape { op: "adaptation start values", expected, found });
    }
    values.copy_from_slice(start);
    let before = evaluate(&mut trainer)?;
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(cfg.seed);
    let (mut lr, mut step) = (cfg.lr, 0u32);
    let mut last = EpochReport { epoch: 0, mean_loss: 0.0, correct: 0, total: TEST_N as u32 };
    for epoch in 1..=cfg.epochs {
        let (mult, shift) = epoch_order(&mut rng);
        let mut sum = 0.0f32;
        for s in 0..TRAIN_N {
            if step == cfg.measure.0 {
                hooks.mark();
            }
            let i = (s as u32 * mult + shift) as usize % TRAIN_N;
            let label = [TRAIN_LABELS[i] as u32];
            let targets = Labels(&label);
            sum += trainer.step_with(1, data::fill(TRAIN_IMAGES, i), targets, lr, &mut rng)?;
            step += 1;
            if step == cfg.measure.0 + cfg.measure.1 {
                hooks.mark();
            }
        }
        lr *= cfg.lr_decay;
        let r = evaluate(&mut trainer)?;
        let (correct, total) = r.sum(0, 10);
        last = EpochReport { epoch, mean_loss: sum / TRAIN_N as f32, correct, total };
        hooks.epoch(&last);
    }
    let after = evaluate(&mut trainer)?;
    let ((b, _), (a, at)) = (before.sum(0, 8), after.sum(0, 8));
    // 0–7 may lose at most `max_drop_permille` (the same held-out images before and after).
    let kept = 1000 * a as u64 + cfg.max_drop_permille as u64 * at as u64 >= 1000 * b as u64;
    Ok(Adapted {
        outcome: Outcome {
            last,
            checksum: crate::fnv1a(trainer.params().values()),
            steps: step,
            passed: kept && last.correct * 1000 >= cfg.min_accuracy_permille * last.total,
        },
        before,
        after,
    })
}
