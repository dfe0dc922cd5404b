//! The common training step in one call: forward (train mode), loss, backward, weight decay,
//! update, reset — so a firmware's loop is a few lines. Evaluation is
//! [`Model::predict`] / [`Model::correct`]. Which way the gradient is computed is the
//! model's [`StepPath`], chosen in one place ([`Model::step_path`]). Nothing here allocates.
//!
//! Weight decay is the optimizer's ([`Optimizer::weight_decay`]): with
//! [`WeightDecay::L2`](crate::optim::WeightDecay::L2) the update uses `g + λ·W` and the reported
//! loss includes `0.5·λ·ΣW²`, as the book's networks do; with `Decoupled` the update shrinks the
//! weights and the loss is the data loss.
//!
//! ```
//! use rand_core::SeedableRng;
//! use rand_xoshiro::Xoshiro128PlusPlus;
//! use staticgrad::model::{Layer, Model, Targets};
//! use staticgrad::optim::Optimizer;
//! use staticgrad::train::Trainer;
//! use staticgrad::{Node, ParamEntry, Params, Tape};
//!
//! const SPEC: Model = Model::new(2, &[Layer::dense(8), Layer::tanh(), Layer::dense(2)]);
//! const BATCH: usize = 4;
//! const OPT: Optimizer = Optimizer::adam();
//! // Every buffer sized by the planner, at compile time.
//! let (mut values, mut grads) = ([0.0; SPEC.param_len()], [0.0; SPEC.param_len()]);
//! let mut table = [ParamEntry::EMPTY; SPEC.param_tensors()];
//! let mut state = [0.0; SPEC.state_len(&OPT)];
//! let mut floats = [0.0; SPEC.tape_floats(BATCH)];
//! let mut nodes = [Node::EMPTY; SPEC.tape_nodes()];
//!
//! let mut params = Params::new(&mut values, &mut grads, &mut table);
//! let mut tape = Tape::new(&mut floats, &mut nodes);
//! let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
//! SPEC.alloc(&mut params)?;
//! SPEC.init(&mut params, &mut rng)?;
//! let mut trainer = Trainer::new(SPEC, OPT, &mut state)?;
//!
//! let x = [0., 0., 0., 1., 1., 0., 1., 1.];
//! let xor = [0, 1, 1, 0];
//! for _ in 0..300 {
//!     trainer.step(&mut tape, &mut params, &x, Targets::Labels(&xor), 0.05, &mut rng)?;
//! }
//! assert_eq!(SPEC.correct(&mut tape, &params, &x, &xor, BATCH)?, 4);
//! # Ok::<(), staticgrad::Error>(())
//! ```

use crate::error::{Error, Region, Result};
use crate::model::{Model, StepPath, Targets};
use crate::optim::Optimizer;
use crate::params::Params;
use crate::tape::Tape;
use rand_core::Rng;

/// A model, its optimizer and the optimizer's state buffer: call [`step`](Self::step) per batch.
///
/// The model and the optimizer's options are validated once, by [`new`](Self::new), and cannot
/// change afterwards, so a step checks only what it is given (learning rate, data, targets,
/// parameters and tape storage): on a 13-parameter network the per-step checks would otherwise
/// cost more than the arithmetic.
#[derive(Debug)]
pub struct Trainer<'s, 'b> {
    spec: Model<'s>,
    optimizer: Optimizer,
    state: &'b mut [f32],
}

impl<'s, 'b> Trainer<'s, 'b> {
    /// A trainer starting from scratch over caller state of at least [`Model::state_len`]
    /// floats (zeroed here: step 0).
    #[inline(always)]
    pub fn new(spec: Model<'s>, optimizer: Optimizer, state: &'b mut [f32]) -> Result<Self> {
        Trainer::check(&spec, &optimizer, state)?;
        state.fill(0.0);
        Ok(Trainer { spec, optimizer, state })
    }

    /// A trainer continuing from `state` as saved after an earlier run's steps (with the
    /// parameter values saved at the same time: together they are a checkpoint, see
    /// [`optim::state`](crate::optim::state)). The state is checked (length, step counter) and
    /// kept as it is, so the next step continues bit for bit.
    #[inline(always)]
    pub fn resume(spec: Model<'s>, optimizer: Optimizer, state: &'b mut [f32]) -> Result<Self> {
        Trainer::check(&spec, &optimizer, state)?;
        crate::optim::steps(state)?;
        Ok(Trainer { spec, optimizer, state })
    }

    #[inline(always)]
    fn check(spec: &Model, optimizer: &Optimizer, state: &[f32]) -> Result<()> {
        spec.validate()?;
        optimizer.validate()?;
        let needed = spec.state_len(optimizer);
        if state.len() < needed {
            return Err(Error::Capacity { region: Region::OptimizerState, needed, available: state.len() });
        }
        Ok(())
    }

    /// The model.
    pub fn spec(&self) -> &Model<'s> {
        &self.spec
    }

    /// The update rule, with its weight decay and clipping.
    pub fn optimizer(&self) -> &Optimizer {
        &self.optimizer
    }

    /// The optimizer state, step counter included (with the parameter values, a checkpoint;
    /// [`optim::steps`](crate::optim::steps) reads the counter).
    pub fn state(&self) -> &[f32] {
        self.state
    }

    /// One step on the batch `x` (`rows × inputs`): resets the tape, forward in train mode
    /// (batch-norm running statistics move, dropout masks come from `rng`), loss, backward, the
    /// optimizer update with learning rate `lr`, and a final reset. Returns the loss before the
    /// update, including the L2 term `0.5·λ·ΣW²` if the optimizer's decay is coupled L2.
    ///
    /// On an error before the update (shapes, capacity, a non-finite loss or gradient) the
    /// parameters are left as they were (batch-norm running statistics may already have moved);
    /// the tape is reset either way.
    #[inline(always)] // with a `const` model, only its own path, ops and loss are compiled in
    pub fn step(
        &mut self,
        tape: &mut Tape,
        params: &mut Params,
        x: &[f32],
        targets: Targets,
        lr: f32,
        rng: &mut impl Rng,
    ) -> Result<f32> {
        let out = self.step_on(false, tape, params, x, targets, lr, rng);
        tape.reset();
        out
    }

    /// [`step`](Self::step) with the **fused update** ([`Tape::backward_fused`]): each tensor is
    /// updated as soon as its gradient is complete, so `params` needs no gradient buffer (make it
    /// with [`Params::fused`], sized by [`Model::plan_fused`]). Same bits as `step` for every
    /// rule; global-norm clipping is refused ([`Error::Unsupported`]), and a non-finite gradient
    /// is not scanned for (the loss is checked).
    #[inline(always)] // as `step`: with a `const` spec and optimizer only their own code is compiled in
    pub fn step_fused(
        &mut self,
        tape: &mut Tape,
        params: &mut Params,
        x: &[f32],
        targets: Targets,
        lr: f32,
        rng: &mut impl Rng,
    ) -> Result<f32> {
        let out = self.step_on(true, tape, params, x, targets, lr, rng);
        tape.reset();
        out
    }

    /// A step on the model's [`StepPath`] for this batch (`fused` as the caller asked).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)] // the step's operands, passed through
    fn step_on(
        &mut self,
        fused: bool,
        tape: &mut Tape,
        params: &mut Params,
        x: &[f32],
        targets: Targets,
        lr: f32,
        rng: &mut impl Rng,
    ) -> Result<f32> {
        // Both validated by `new`. Worked on as local copies, so that no pointer into `self`
        // escapes: with a `const` model the compiler then sees the path, the layers, the loss
        // and the ops, and leaves out the code of the others.
        let (spec, opt) = (self.spec, self.optimizer);
        // Every path starts from a reset tape (`record`, or the direct path's scratch).
        let rows = spec.rows(x)?;
        match spec.step_path(rows, fused) {
            StepPath::Fused => {
                let logits = spec.record(tape, params, x, rows, rng)?;
                let loss = spec.loss_at(tape, logits, targets)?;
                let data_loss = tape.scalar_at(loss)?;
                let total = data_loss + opt.decay_loss(params);
                tape.backward_fused_ops(loss, params, &opt, self.state, lr, spec.ops(rows), true)?;
                Ok(total)
            }
            path => {
                let data_loss = spec.gradient_on(path, tape, params, x, rows, targets, rng)?;
                let loss = data_loss + opt.decay_loss(params);
                opt.step_valid(params, self.state, lr)?;
                Ok(loss)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Activation, MlpSpec};
    use crate::optim::{self, NAMES};
    use crate::testutil::random_values;
    use crate::{Node, ParamEntry};
    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro128PlusPlus;
    use std::vec;
    use std::vec::Vec;

    const SPEC: Model = MlpSpec::new(&[3, 5, 2]).with_activation(Activation::Tanh).model();

    /// Trains steps `from..to` (batch 1 when fused, else 2) from `values` and `state`; a step's
    /// data and random stream depend on the step number only, as the runner's do.
    fn run(opt: Optimizer, fused: bool, values: &mut [f32], state: &mut [f32], from: u64, to: u64) {
        let n = SPEC.param_len();
        let (mut grads, mut table) = (vec![0.0; n], vec![ParamEntry::EMPTY; SPEC.param_tensors()]);
        let (mut scratch, mut v) = (vec![0.0; SPEC.fused_grad_floats()], vec![0.0; n]);
        let mut params = if fused {
            Params::fused(&mut v, &mut scratch, &mut table)
        } else {
            Params::new(&mut v, &mut grads, &mut table)
        };
        SPEC.alloc(&mut params).unwrap();
        params.values_mut().copy_from_slice(values);
        let (mut floats, mut nodes) = (vec![0.0; SPEC.tape_floats(2)], vec![Node::EMPTY; SPEC.tape_nodes()]);
        let mut tape = Tape::new(&mut floats, &mut nodes);
        let mut trainer = if from == 0 {
            Trainer::new(SPEC, opt, state).unwrap()
        } else {
            Trainer::resume(SPEC, opt, state).unwrap()
        };
        let rows = if fused { 1 } else { 2 };
        for s in from..to {
            let x = random_values(3 * rows, 0.0, 1000 + s);
            let labels = [(s % 2) as u32, ((s / 2) % 2) as u32];
            let mut rng = Xoshiro128PlusPlus::seed_from_u64(s);
            let t = Targets::Labels(&labels[..rows]);
            if fused {
                trainer.step_fused(&mut tape, &mut params, &x, t, 0.05, &mut rng).unwrap();
            } else {
                trainer.step(&mut tape, &mut params, &x, t, 0.05, &mut rng).unwrap();
            }
        }
        values.copy_from_slice(params.values());
    }

    #[test]
    fn resume_from_a_checkpoint_is_bit_identical() {
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        let (n, k) = (8, 3);
        let start = random_values(SPEC.param_len(), 0.0, 5);
        for &name in NAMES {
            let opt = Optimizer::by_name(name).unwrap();
            for fused in [false, true] {
                let len = SPEC.state_len(&opt);
                let (mut straight, mut s_straight) = (start.clone(), vec![0.0; len]);
                run(opt, fused, &mut straight, &mut s_straight, 0, n);
                let (mut first, mut s_first) = (start.clone(), vec![f32::NAN; len]); // `new` zeroes
                run(opt, fused, &mut first, &mut s_first, 0, k);
                // The checkpoint is `first` and `s_first`, nothing else.
                run(opt, fused, &mut first, &mut s_first, k, n);
                assert_eq!(bits(&first), bits(&straight), "{name} fused {fused}");
                assert_eq!(bits(&s_first), bits(&s_straight), "{name} fused {fused}");
                assert_eq!(optim::steps(&s_first), Ok(n as u32));
            }
        }
    }

    #[test]
    fn resume_checks_the_state() {
        let opt = Optimizer::adam();
        let mut short = vec![0.0; SPEC.state_len(&opt) - 1];
        assert!(matches!(Trainer::resume(SPEC, opt, &mut short), Err(Error::Capacity { .. })));
        let mut bad = vec![0.0; SPEC.state_len(&opt)];
        bad[0] = f32::NAN;
        assert!(matches!(Trainer::resume(SPEC, opt, &mut bad), Err(Error::InvalidArgument { .. })));
        assert!(Trainer::new(SPEC, opt, &mut bad).is_ok(), "a fresh start zeroes whatever was there");
    }
}
