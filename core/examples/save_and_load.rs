//! Save and load: train a small model with a `Trainer`, write its weights in the core's file
//! format (`weights::encode`: header, model description, `f32`s, CRC-32), read them back into a
//! fresh trainer (`weights::parse`, which checks magic, version, lengths and checksum) and get
//! the same predictions, bit for bit. Then a checkpoint (values plus optimizer state): a trainer
//! that loads it continues exactly as the original does.
//!
//! ```sh
//! cargo run -p staticgrad --example save_and_load
//! ```
//!
//! The file is the `model.bin` that `staticgrad train` writes and `staticgrad eval`/`export` read.

use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;
use staticgrad::weights::{self, ModelDesc};
use staticgrad::{Activation, MlpSpec, Model, Optimizer, Plan, Targets, Trainer};

const WIDTHS: [usize; 3] = [2, 8, 2];
const MODEL: Model = MlpSpec::new(&WIDTHS).with_activation(Activation::Tanh).model();
const BATCH: usize = 4;
const OPT: Optimizer = Optimizer::adam();
const PLAN: Plan = MODEL.plan(BATCH, &OPT);

const X: [f32; 8] = [0., 0., 0., 1., 1., 0., 1., 1.];
const XOR: [u32; 4] = [0, 1, 1, 0];

// The trainer's methods are `#[inline(always)]` (a firmware's step folds its `const` model); small
// helpers called from several places keep one copy of each in this program.

/// `n` training steps on the XOR batch.
#[inline(never)]
fn train(trainer: &mut Trainer, n: usize, rng: &mut Xoshiro128PlusPlus) -> Result<(), staticgrad::Error> {
    for _ in 0..n {
        trainer.step(&X, Targets::Labels(&XOR), 0.05, rng)?;
    }
    Ok(())
}

/// The predicted class of each XOR input.
#[inline(never)]
fn predict(trainer: &mut Trainer) -> Result<[u32; 4], staticgrad::Error> {
    let mut class = [0u32; 4];
    trainer.predict(&X, &mut class)?;
    Ok(class)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(1);
    let memory = staticgrad::memory!(PLAN); // zeroed arrays of the plan's sizes, as long as this `let`
    let mut trainer = Trainer::new(&MODEL, &OPT, BATCH, memory)?;
    trainer.init(&mut rng)?;
    train(&mut trainer, 300, &mut rng)?;
    let before = predict(&mut trainer)?;
    println!("trained: {} of 4 correct, predictions {before:?}", trainer.correct(&X, &XOR, BATCH)?);

    // --- the weights file --------------------------------------------------------------------
    // Widths as u32, activation code 2 (`weights::ACTIVATIONS[2]` is "tanh"), no flags, dropout 0.
    let widths: Vec<u32> = WIDTHS.iter().map(|&w| w as u32).collect();
    let desc = ModelDesc::new(&widths, 2, 0, 0.0)?;
    let values = trainer.params().values();
    let mut bytes = vec![0u8; weights::encoded_len(widths.len(), values.len(), 0)];
    let n = weights::encode(&desc, values, &[], &mut bytes)?;
    let path = std::env::temp_dir().join(format!("staticgrad-example-{}.bin", std::process::id()));
    std::fs::write(&path, &bytes[..n])?;
    println!("wrote {} ({n} bytes: {} parameters of {desc})", path.display(), values.len());

    let read = std::fs::read(&path)?;
    std::fs::remove_file(&path)?;
    let view = weights::parse(&read)?; // magic, version, lengths and CRC-32 checked
    view.expect(&desc)?; // the same model, or an error naming what differs
    let memory = staticgrad::memory!(PLAN);
    let mut fresh = Trainer::new(&MODEL, &OPT, BATCH, memory)?;
    view.read_params(fresh.params_mut().values_mut())?;
    let after = predict(&mut fresh)?;
    println!("loaded: predictions {after:?}");
    assert_eq!(before, after);
    assert_eq!(trainer.params().values(), fresh.params().values(), "the same bits");

    // --- a checkpoint: values and optimizer state ---------------------------------------------
    // `fresh` holds the weights but a zero optimizer state; a checkpoint carries both.
    fresh.load(trainer.params().values(), trainer.state())?;
    let mut rng_resumed = rng.clone();
    train(&mut trainer, 50, &mut rng)?;
    train(&mut fresh, 50, &mut rng_resumed)?;
    assert_eq!(trainer.params().values(), fresh.params().values());
    println!("resumed from the checkpoint: 50 more steps, the same bits as the original trainer");
    Ok(())
}
