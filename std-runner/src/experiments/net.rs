//! The training harness the MNIST experiments share: a [`Model`] with its buffers (sized by
//! the core's planner), the core's [`Trainer`] step, book-style evaluation, and the book's
//! behaviour on divergence.
//!
//! When a step meets a non-finite loss or gradient, the core refuses the update. The book's numpy
//! code instead carries on with NaN weights, and numpy's `argmax` then predicts class 0 for every
//! row, so a diverged network scores the share of class 0 (0.097 on the first 1,000 images).
//! [`Net::step`] reproduces that: it marks the net diverged and sets its weights to NaN, and
//! [`Trainer::correct`] (which picks the first NaN, as numpy does) then reports exactly the book's
//! number. Nothing panics.

use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;
use staticgrad::Error;
use staticgrad::model::{Model, Targets};
use staticgrad::optim::Optimizer;
use staticgrad::train::Trainer;
use staticgrad::{Node, ParamEntry, Plan};

use super::Result;
use crate::budget;
use crate::data::Dataset;
use crate::memory::OwnedMemory;
use crate::threads::Pool;

/// Rows evaluated per tape pass.
pub const EVAL_CHUNK: usize = 500;

/// One network's model, update rule and owned buffers (sized by the planner).
#[derive(Debug)]
pub struct NetStorage<'a> {
    model: Model<'a>,
    opt: Optimizer,
    memory: OwnedMemory,
    batch: usize,
}

/// Bytes [`NetStorage::new`] allocates for `spec`, `opt` and `batch`, plus the batch buffers a
/// training loop gathers into (`batch` rows of `f32` features, labels and indices); `None` when
/// a size overflows (the core's planner saturates at `usize::MAX`).
pub fn storage_bytes(spec: &Model, opt: &Optimizer, batch: usize) -> Option<u64> {
    let sat = |v: usize| (v != usize::MAX).then_some(v);
    let eval =
        sat(spec.eval_tape_floats(EVAL_CHUNK))?.checked_add(sat(spec.loss_tape_floats(EVAL_CHUNK))?)?;
    let loss = sat(spec.eval_tape_floats(batch))?.checked_add(sat(spec.loss_tape_floats(batch))?)?;
    let floats = sat(spec.tape_floats(batch))?.max(eval).max(loss);
    let nodes = spec.tape_nodes().max(spec.eval_tape_nodes() + spec.loss_tape_nodes());
    let params = sat(spec.param_len())?;
    budget::sum(&[
        budget::of::<f32>(params)?.checked_mul(2),
        budget::of::<ParamEntry>(spec.param_tensors()),
        budget::of::<f32>(sat(spec.state_len(opt))?),
        budget::of::<f32>(floats),
        budget::of::<Node>(nodes),
        batch.checked_mul(spec.inputs()).and_then(budget::of::<f32>),
        budget::of::<u32>(batch),
        budget::of::<usize>(batch),
        // The evaluation conversion buffer of byte-stored images.
        EVAL_CHUNK.checked_mul(spec.inputs()).and_then(budget::of::<f32>),
    ])
}

impl<'a> NetStorage<'a> {
    /// Buffers for training `spec` with `opt` on batches of `batch` rows and evaluating
    /// [`EVAL_CHUNK`] rows at a time.
    pub fn new(spec: &Model<'a>, opt: &Optimizer, batch: usize) -> Self {
        let eval = spec.eval_tape_floats(EVAL_CHUNK) + spec.loss_tape_floats(EVAL_CHUNK);
        let loss = spec.eval_tape_floats(batch) + spec.loss_tape_floats(batch);
        let plan = spec.plan(batch, opt);
        let plan = Plan {
            tape_floats: plan.tape_floats.max(eval).max(loss),
            tape_nodes: plan.tape_nodes.max(spec.eval_tape_nodes() + spec.loss_tape_nodes()),
            ..plan
        };
        NetStorage { model: *spec, opt: *opt, memory: OwnedMemory::new(&plan), batch }
    }
}

/// A network being trained.
#[derive(Debug)]
pub struct Net<'a> {
    /// The model.
    pub spec: Model<'a>,
    /// Its products share the rayon pool it runs in (see [`Pool::current`]).
    trainer: Trainer<'a, 'a>,
    /// Generator of dropout masks.
    rng: Xoshiro128PlusPlus,
    /// Set by the first non-finite step; the weights are NaN from then on.
    pub diverged: Option<usize>,
    steps: usize,
}

impl<'a> Net<'a> {
    /// A network of `st`'s model and rule over its buffers, weights drawn from `init_seed`,
    /// dropout masks from `mask_seed`.
    pub fn new(st: &'a mut NetStorage<'a>, init_seed: u64, mask_seed: u64) -> Result<Self> {
        let NetStorage { model, opt, memory, batch } = st;
        let spec = *model;
        let mut trainer = Trainer::new(model, opt, *batch, memory.memory())?.with_parallel(Pool::current());
        trainer.init(&mut Xoshiro128PlusPlus::seed_from_u64(init_seed))?;
        Ok(Net { spec, trainer, rng: Xoshiro128PlusPlus::seed_from_u64(mask_seed), diverged: None, steps: 0 })
    }

    /// One training step on `x`/`y` with learning rate `lr`; returns the loss before the update
    /// (with the L2 term if the optimizer's decay is coupled), NaN once diverged.
    pub fn step(&mut self, x: &[f32], y: &[u32], lr: f32) -> Result<f32> {
        self.steps += 1;
        if self.diverged.is_some() {
            return Ok(f32::NAN);
        }
        match self.trainer.step(x, Targets::Labels(y), lr, &mut self.rng) {
            Ok(l) if l.is_finite() => Ok(l),
            Ok(_) | Err(Error::NonFinite { .. }) => {
                self.diverged = Some(self.steps);
                self.trainer.params_mut().values_mut().fill(f32::NAN);
                Ok(f32::NAN)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Eval-mode loss on `x`/`y` (the book's `network.loss` after the update), with the L2 term
    /// when the optimizer's decay is coupled.
    pub fn eval_loss(&mut self, x: &[f32], y: &[u32]) -> Result<f32> {
        if self.diverged.is_some() {
            return Ok(f32::NAN);
        }
        let mut total = 0.0f64;
        let rows = y.len();
        let i = self.spec.inputs();
        for (xs, ys) in x.chunks(EVAL_CHUNK * i).zip(y.chunks(EVAL_CHUNK)) {
            let l = self.trainer.eval_loss(xs, Targets::Labels(ys))?;
            total += l as f64 * ys.len() as f64;
        }
        Ok((total / rows.max(1) as f64) as f32 + self.trainer.optimizer().decay_loss(self.trainer.params()))
    }

    /// The parameters (weights, biases, statistics): NaN once diverged.
    pub fn params(&self) -> &staticgrad::Params<'a> {
        self.trainer.params()
    }

    /// Accuracy on `data` in eval mode (running statistics, no dropout), [`EVAL_CHUNK`] rows at
    /// a time.
    pub fn accuracy(&mut self, data: &Dataset) -> Result<f64> {
        if data.is_empty() {
            return Ok(0.0);
        }
        let hits = data.correct(&mut self.trainer, EVAL_CHUNK)?;
        Ok(hits as f64 / data.len() as f64)
    }
}
