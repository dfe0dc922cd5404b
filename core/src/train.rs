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
    /// A trainer over caller state of at least [`Model::state_len`] floats (zeroed here).
    #[inline(always)]
    pub fn new(spec: Model<'s>, optimizer: Optimizer, state: &'b mut [f32]) -> Result<Self> {
        spec.validate()?;
        optimizer.validate()?;
        let needed = spec.state_len(&optimizer);
        if state.len() < needed {
            return Err(Error::Capacity { region: Region::OptimizerState, needed, available: state.len() });
        }
        state.fill(0.0);
        Ok(Trainer { spec, optimizer, state })
    }

    /// The model.
    pub fn spec(&self) -> &Model<'s> {
        &self.spec
    }

    /// The update rule, with its weight decay, clipping and step counter (for checkpoints:
    /// [`Optimizer::steps`]).
    pub fn optimizer(&self) -> &Optimizer {
        &self.optimizer
    }

    /// The optimizer state (for checkpoints).
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
        let (spec, mut opt) = (self.spec, self.optimizer);
        // Every path starts from a reset tape (`record`, or the direct path's scratch).
        let rows = spec.rows(x)?;
        match spec.step_path(rows, fused) {
            StepPath::Fused => {
                let logits = spec.record(tape, params, x, rows, rng)?;
                let loss = spec.loss_at(tape, logits, targets)?;
                let data_loss = tape.scalar_at(loss)?;
                let total = data_loss + opt.decay_loss(params);
                let stepped =
                    tape.backward_fused_ops(loss, params, &mut opt, self.state, lr, spec.ops(rows), true);
                self.optimizer.take_progress(&opt);
                stepped.map(|()| total)
            }
            path => {
                let data_loss = spec.gradient_on(path, tape, params, x, rows, targets, rng)?;
                let loss = data_loss + opt.decay_loss(params);
                let stepped = opt.step_valid(params, self.state, lr);
                self.optimizer.take_progress(&opt);
                stepped.map(|()| loss)
            }
        }
    }
}
