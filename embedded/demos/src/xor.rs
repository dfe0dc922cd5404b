//! XOR with a 2-3-1 MLP (sigmoid hidden layer, linear output), mean-squared error over the 4
//! patterns (batch 4), plain SGD. Small enough for a Cortex-M0 with 16 KiB of RAM.

use crate::{EpochReport, Hooks, Outcome};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;
use staticgrad::init::Init;
use staticgrad::model::{Activation, Loss, MlpSpec, Model, Plan, Targets};
use staticgrad::optim::Optimizer;
use staticgrad::train::Trainer;
use staticgrad::{Memory, Result};

/// Layer widths.
pub const WIDTHS: [usize; 3] = [2, 3, 1];
/// The model.
pub const SPEC: Model<'static> = MlpSpec::new(&WIDTHS)
    .with_activation(Activation::Sigmoid)
    .with_loss(Loss::Mse)
    .with_init(Init::XavierBook)
    .model();
/// The update rule.
pub const OPTIMIZER: Optimizer = Optimizer::sgd();
/// Rows per step: all 4 patterns.
pub const BATCH: usize = 4;
/// What a step needs (the firmware sizes its `static`s with it).
pub const PLAN: Plan = SPEC.plan(BATCH, &OPTIMIZER);
/// Training steps.
pub const STEPS: u32 = 2000;
/// Steps between reports.
pub const REPORT_EVERY: u32 = 500;
/// Learning rate.
pub const LR: f32 = 0.5;
/// Initialisation seed.
pub const SEED: u64 = 7;
/// The measured window: steps `MEASURE.0 .. MEASURE.0 + MEASURE.1`.
pub const MEASURE: (u32, u32) = (1000, 100);
/// The bar: final loss below this, and all 4 patterns on the right side of 0.5.
pub const MAX_LOSS: f32 = 0.02;

const X: [f32; 8] = [0., 0., 0., 1., 1., 0., 1., 1.];
const T: [f32; 4] = [0., 1., 1., 0.];

/// Loss and number of patterns right (output on the target's side of 0.5), current weights.
// into `train`, where the trainer's model is the `const` one
#[cfg_attr(not(debug_assertions), inline(always))]
fn assess(trainer: &mut Trainer) -> Result<(f32, u32)> {
    let mut out = [0.0; 4];
    trainer.logits(&X, &mut out)?;
    let (mut loss, mut right) = (0.0f32, 0);
    for (&y, &t) in out.iter().zip(&T) {
        loss += (y - t) * (y - t);
        right += ((y > 0.5) == (t > 0.5)) as u32;
    }
    Ok((loss / 4.0, right))
}

/// Trains XOR; reports every [`REPORT_EVERY`] steps.
/// `memory` holds [`PLAN`].
pub fn train(memory: Memory, hooks: &mut impl Hooks) -> Result<Outcome> {
    // The `const` plan: no planner code in the firmware.
    let mut trainer = Trainer::planned(&SPEC, &OPTIMIZER, BATCH, memory, &PLAN)?;
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(SEED);
    trainer.init(&mut rng)?;
    let mut sum = 0.0f32;
    for step in 0..STEPS {
        if step == MEASURE.0 {
            hooks.mark();
        }
        sum += trainer.step(&X, Targets::Values(&T), LR, &mut rng)?;
        if step + 1 == MEASURE.0 + MEASURE.1 {
            hooks.mark();
        }
        if (step + 1) % REPORT_EVERY == 0 {
            let (_, correct) = assess(&mut trainer)?;
            let epoch = (step + 1) / REPORT_EVERY;
            hooks.epoch(&EpochReport { epoch, mean_loss: sum / REPORT_EVERY as f32, correct, total: 4 });
            sum = 0.0;
        }
    }
    let (loss, correct) = assess(&mut trainer)?;
    let last = EpochReport { epoch: STEPS / REPORT_EVERY, mean_loss: loss, correct, total: 4 };
    Ok(Outcome {
        last,
        checksum: crate::fnv1a(trainer.params().values()),
        steps: STEPS,
        passed: correct == 4 && loss < MAX_LOSS,
    })
}
