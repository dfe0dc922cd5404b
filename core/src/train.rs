//! The one step path: a [`Trainer`] owns a model's parameters, tape and optimizer state, made
//! from one [`Memory`], and runs every training step of this repository — the runner's loop, the
//! experiments, the bench and the firmwares. Each step is forward (train mode), loss, backward,
//! weight decay, update and reset; which way the gradient is computed is the model's
//! [`StepPath`], chosen in one place ([`Model::step_path`]). Evaluation runs on the same tape.
//! Nothing here allocates.
//!
//! The pieces stay public for a loop of one's own: [`Tape`], [`Params`], [`Model::forward`] and
//! [`Model::loss`], [`Optimizer::step`].
//!
//! Weight decay is the optimizer's ([`Optimizer::weight_decay`]): with
//! [`WeightDecay::L2`](crate::optim::WeightDecay::L2) the update uses `g + λ·W` and the reported
//! loss includes `0.5·λ·ΣW²`, as the book's networks do; with `Decoupled` the update shrinks the
//! weights and the loss is the data loss.
//!
//! ```
//! use rand_core::SeedableRng;
//! use rand_xoshiro::Xoshiro128PlusPlus;
//! use staticgrad::model::{Layer, Model, Plan, Targets};
//! use staticgrad::optim::Optimizer;
//! use staticgrad::train::Trainer;
//!
//! const SPEC: Model = Model::new(2, &[Layer::dense(8), Layer::tanh(), Layer::dense(2)]);
//! const BATCH: usize = 4;
//! const OPT: Optimizer = Optimizer::adam();
//! const PLAN: Plan = SPEC.plan(BATCH, &OPT); // every buffer sized at compile time
//!
//! let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
//! let memory = staticgrad::memory!(PLAN); // six zeroed arrays, as long as this `let`
//! let mut trainer = Trainer::new(&SPEC, &OPT, BATCH, memory)?;
//! trainer.init(&mut rng)?;
//! let x = [0., 0., 0., 1., 1., 0., 1., 1.];
//! let xor = [0, 1, 1, 0];
//! for _ in 0..300 {
//!     trainer.step(&x, Targets::Labels(&xor), 0.05, &mut rng)?;
//! }
//! assert_eq!(trainer.correct(&x, &xor, BATCH)?, 4);
//! assert_eq!(trainer.steps(), 300);
//! # Ok::<(), staticgrad::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::memory::Memory;
use crate::model::{Example, Fill, Model, Plan, StepPath, Targets, direct};
use crate::optim::{Optimizer, Rule};
#[cfg(feature = "parallel")]
use crate::parallel::Parallel;
use crate::params::Params;
use crate::shape::Shape;
use crate::tape::Tape;
use core::mem;
use rand_core::Rng;

/// A model, its optimizer, and the parameters, tape and optimizer state laid out in one
/// [`Memory`]: call [`step`](Self::step) per batch.
///
/// The model and the optimizer's options are validated once, by [`new`](Self::new), and cannot
/// change afterwards, so a step checks only what it is given (learning rate, data, targets):
/// on a 13-parameter network the per-step checks would otherwise cost more than the arithmetic.
///
/// With the `parallel` feature its tape can share the work with a caller's thread pool
/// ([`with_parallel`](Self::with_parallel)); every driver gives the same bits.
#[derive(Debug)]
pub struct Trainer<'s, 'm> {
    /// By reference: for a `const` model that is the address of a constant, which code out of
    /// line (allocation, initialisation, evaluation) folds as well as the step does.
    model: &'s Model<'s>,
    /// By reference, as the model.
    optimizer: &'s Optimizer,
    /// The fused update ([`Trainer::fused`]): no gradient buffer.
    fused: bool,
    params: Params<'m>,
    tape: Tape<'m>,
    state: &'m mut [f32],
}

impl<'s, 'm> Trainer<'s, 'm> {
    /// A trainer for batches of up to `batch` rows over `memory`, which must hold
    /// [`Model::try_plan`]`(batch, &optimizer)`: validates the model and the optimizer, checks
    /// the memory ([`Memory::check`]), lays out the parameters ([`Model::alloc`]: zero weights,
    /// call [`init`](Self::init) or [`load`](Self::load) next) and zeroes the optimizer state
    /// (step 0).
    // with a `const` model and optimizer, every check folds away
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn new(
        model: &'s Model<'s>,
        optimizer: &'s Optimizer,
        batch: usize,
        memory: Memory<'m>,
    ) -> Result<Self> {
        Trainer::validate(model, optimizer, batch)?;
        let plan = model.try_plan(batch, optimizer)?;
        Trainer::make(model, optimizer, memory, false, &plan)
    }

    /// [`new`](Self::new) for the **fused update** ([`Tape::backward_fused`]): each tensor is
    /// updated as soon as its gradient is complete, so `memory.grads` is only one row of scratch
    /// ([`Model::try_plan_fused`]). Same bits as the other paths for every rule; global-norm
    /// clipping is refused ([`Error::Unsupported`]) at the first step, and a non-finite gradient
    /// is not scanned for (the loss is checked).
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn fused(
        model: &'s Model<'s>,
        optimizer: &'s Optimizer,
        batch: usize,
        memory: Memory<'m>,
    ) -> Result<Self> {
        Trainer::validate(model, optimizer, batch)?;
        let plan = model.try_plan_fused(batch, optimizer)?;
        Trainer::make(model, optimizer, memory, true, &plan)
    }

    /// [`new`](Self::new) with the plan given rather than computed: `plan` must be
    /// [`Model::plan`]`(batch, &optimizer)` — the `const` a firmware sizes its `static`s with —
    /// so that no planner code is compiled into the firmware. The plan's parameter, table and
    /// state counts are compared with the model's ([`Error::InvalidArgument`] naming the count
    /// if one differs); its tape counts are trusted: a tape too small for the batch makes the
    /// step return [`Error::Capacity`] instead (every op checks its bounds).
    ///
    /// ```
    /// use staticgrad::model::{Layer, Model, Plan};
    /// use staticgrad::optim::Optimizer;
    /// use staticgrad::train::Trainer;
    /// const NET: Model = Model::new(2, &[Layer::dense(3), Layer::sigmoid(), Layer::dense(1)]);
    /// const OPT: Optimizer = Optimizer::sgd();
    /// const PLAN: Plan = NET.plan(4, &OPT);
    /// let memory = staticgrad::memory!(PLAN);
    /// let trainer = Trainer::planned(&NET, &OPT, 4, memory, &PLAN)?;
    /// assert_eq!(trainer.params().len(), PLAN.param_floats);
    /// const WRONG: Plan = Plan { state_floats: PLAN.state_floats + 1, ..PLAN };
    /// assert!(Trainer::planned(&NET, &OPT, 4, staticgrad::memory!(WRONG), &WRONG).is_err());
    /// # Ok::<(), staticgrad::Error>(())
    /// ```
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn planned(
        model: &'s Model<'s>,
        optimizer: &'s Optimizer,
        batch: usize,
        memory: Memory<'m>,
        plan: &Plan,
    ) -> Result<Self> {
        Trainer::validate(model, optimizer, batch)?;
        Trainer::make(model, optimizer, memory, false, plan)
    }

    /// [`fused`](Self::fused) with the plan given rather than computed, as
    /// [`planned`](Self::planned): `plan` must be [`Model::plan_fused`]`(batch, &optimizer)`.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn fused_planned(
        model: &'s Model<'s>,
        optimizer: &'s Optimizer,
        batch: usize,
        memory: Memory<'m>,
        plan: &Plan,
    ) -> Result<Self> {
        Trainer::validate(model, optimizer, batch)?;
        Trainer::make(model, optimizer, memory, true, plan)
    }

    /// The checks every constructor makes before it plans or lays out anything.
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn validate(model: &Model, optimizer: &Optimizer, batch: usize) -> Result<()> {
        model.validate()?;
        optimizer.validate()?;
        if batch == 0 {
            return Err(Error::InvalidArgument { what: "trainer batch rows", value: 0.0 });
        }
        if model.frozen_layers() > 0 && model.param_len() == 0 {
            return Err(Error::InvalidArgument {
                what: "trainer of a model without a trainable layer",
                value: 0.0,
            });
        }
        Ok(())
    }

    /// Checks `memory` against `plan`, lays out the parameters and zeroes the state.
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn make(
        model: &'s Model<'s>,
        optimizer: &'s Optimizer,
        memory: Memory<'m>,
        fused: bool,
        plan: &Plan,
    ) -> Result<Self> {
        memory.check(plan)?;
        let Memory { values, grads, table, state, floats, nodes, frozen } = memory;
        let params =
            if fused { Params::fused(values, grads, table) } else { Params::new(values, grads, table) };
        let mut params = params.with_frozen(frozen);
        model.alloc(&mut params)?;
        if params.frozen_len() != frozen.len() {
            // Values for another model: refused rather than read in part.
            return Err(Error::Shape {
                op: "frozen values",
                expected: Shape::row(params.frozen_len()),
                found: Shape::row(frozen.len()),
            });
        }
        // A plan handed in (`planned`) is held to the model's counts where they are cheap to know.
        for (what, planned, actual) in [
            ("plan parameter floats", plan.param_floats, params.len()),
            ("plan parameter tensors", plan.param_tensors, params.tensor_count()),
            ("plan optimizer state", plan.state_floats, optimizer.state_len(params.len())),
        ] {
            if planned != actual {
                return Err(Error::InvalidArgument { what, value: planned as f32 });
            }
        }
        // Exactly the plan's state, so that `state()` is what a checkpoint saves.
        // (`check` made it at least that long; the `min` lets the compiler see it.)
        let len = plan.state_floats.min(state.len());
        let state = &mut state[..len];
        state.fill(0.0);
        Ok(Trainer { model, optimizer, fused, params, tape: Tape::new(floats, nodes), state })
    }
}

impl<'s, 'm> Trainer<'s, 'm> {
    /// This trainer with its products' output rows shared among `par`'s workers (a thread
    /// pool of the caller's; the core starts none). Steps, evaluation and checkpoints give the
    /// same bits as without, for any number of workers: only outputs are split (see
    /// [`parallel`](crate::parallel)). Takes effect from the next call.
    ///
    /// ```
    /// use staticgrad::{MlpSpec, Optimizer, Trainer, memory, parallel::Sequential};
    /// const MODEL: staticgrad::Model = MlpSpec::new(&[2, 3, 1]).model();
    /// const OPT: Optimizer = Optimizer::sgd();
    /// const PLAN: staticgrad::Plan = MODEL.plan(4, &OPT);
    /// let memory = memory!(PLAN);
    /// let trainer = Trainer::new(&MODEL, &OPT, 4, memory)?.with_parallel(&Sequential);
    /// assert_eq!(trainer.steps(), 0);
    /// # Ok::<(), staticgrad::Error>(())
    /// ```
    #[cfg(feature = "parallel")]
    pub fn with_parallel(mut self, par: &'m dyn Parallel) -> Self {
        self.tape = self.tape.with_parallel(par);
        self
    }

    /// Draws the initial weights with the model's [`Init`](crate::Init), as [`Model::init`].
    // see `step_on`: only a field, never the trainer, is lent to code out of line
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn init(&mut self, rng: &mut impl Rng) -> Result<()> {
        self.lend(
            #[cfg_attr(not(debug_assertions), inline(always))]
            |model, _, params, _| model.init(params, rng),
        )
    }

    /// Resumes from a checkpoint: the parameter `values` and the optimizer `state` saved together
    /// after some steps ([`params`](Self::params)`().values()` and [`state`](Self::state)). Both
    /// must have this trainer's lengths ([`Error::Shape`]), be finite ([`Error::NonFinite`] with
    /// the first index) and the state's step counter valid; nothing is changed otherwise. The
    /// next step then continues bit for bit.
    pub fn load(&mut self, values: &[f32], state: &[f32]) -> Result<()> {
        for (what, given, len) in
            [("checkpoint values", values, self.params.len()), ("checkpoint state", state, self.state.len())]
        {
            if given.len() != len {
                return Err(Error::Shape {
                    op: what,
                    expected: Shape::row(len),
                    found: Shape::row(given.len()),
                });
            }
            if let Some(index) = given.iter().position(|v| !v.is_finite()) {
                return Err(Error::NonFinite { what, index });
            }
        }
        crate::optim::steps(state)?;
        self.params.values_mut().copy_from_slice(values);
        self.state.copy_from_slice(state);
        Ok(())
    }

    /// The model.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn model(&self) -> &'s Model<'s> {
        self.model
    }

    /// The update rule, with its weight decay and clipping.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn optimizer(&self) -> &'s Optimizer {
        self.optimizer
    }

    /// The parameters (values, gradients unless fused, the table).
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn params(&self) -> &Params<'m> {
        &self.params
    }

    /// The parameters, to import weights (the layout stays the model's).
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn params_mut(&mut self) -> &mut Params<'m> {
        &mut self.params
    }

    /// The tape (between calls: reset, holding nothing).
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn tape(&self) -> &Tape<'m> {
        &self.tape
    }

    /// The optimizer state, step counter included: with the parameter values, a checkpoint.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn state(&self) -> &[f32] {
        self.state
    }

    /// Steps taken since step 0 (the counter in the state).
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn steps(&self) -> u32 {
        // `new` zeroes the state, `load` checks it and a step keeps the counter valid.
        crate::optim::steps(self.state).unwrap_or(0)
    }

    /// One step on the batch `x` (`rows × inputs`, at most the trainer's batch rows): forward in
    /// train mode (batch-norm running statistics move, dropout masks come from `rng`), loss,
    /// backward, the optimizer update with learning rate `lr`, and a reset of the tape. Returns
    /// the loss before the update, including the L2 term `0.5·λ·ΣW²` if the optimizer's decay is
    /// coupled L2.
    ///
    /// On an error before the update (shapes, capacity, a non-finite loss or gradient) the
    /// parameters are left as they were (batch-norm running statistics may already have moved).
    // with a `const` model, only its own path, ops and loss are compiled in
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn step(&mut self, x: &[f32], targets: Targets, lr: f32, rng: &mut impl Rng) -> Result<f32> {
        let (model, opt, fused) = (*self.model, self.optimizer, self.fused);
        let (mut tape, mut params) = self.take();
        let out =
            Trainer::step_on(model, opt, fused, &mut tape, &mut params, self.state, x, targets, lr, rng);
        self.tape = tape;
        self.params = params;
        out
    }

    /// [`step`](Self::step) on an example of `rows` rows that `fill` writes straight into the
    /// tape's input: the example is held once, where the step reads it, rather than in a buffer
    /// of the caller's and again on the tape (on a device it can be converted from a table in
    /// flash into place). `fill` gets the `rows × inputs` floats zeroed, so whatever it leaves
    /// unwritten is 0, never an earlier example; it runs once, unless an error comes first.
    /// `rows` must be at least 1 ([`Error::InvalidArgument`]) and within the tape
    /// ([`Error::Capacity`]); `targets` must have as many rows. Same bits as `step` on the
    /// same values, on every [`StepPath`].
    ///
    /// ```
    /// use rand_core::SeedableRng;
    /// use rand_xoshiro::Xoshiro128PlusPlus;
    /// use staticgrad::model::{Layer, Model, Plan, Targets};
    /// use staticgrad::optim::Optimizer;
    /// use staticgrad::train::Trainer;
    ///
    /// const SPEC: Model = Model::new(4, &[Layer::dense(8), Layer::relu(), Layer::dense(2)]);
    /// const OPT: Optimizer = Optimizer::sgd();
    /// const PLAN: Plan = SPEC.plan(1, &OPT);
    /// // Examples as bytes, as a firmware keeps them in flash; never a float buffer of their own.
    /// const IMAGES: [[u8; 4]; 2] = [[0, 255, 255, 0], [255, 0, 0, 255]];
    /// fn pixels(image: &[u8; 4]) -> impl FnOnce(&mut [f32]) + '_ {
    ///     move |x| x.iter_mut().zip(image).for_each(|(x, &p)| *x = p as f32 / 255.0)
    /// }
    ///
    /// let mut rng = Xoshiro128PlusPlus::seed_from_u64(1);
    /// let memory = staticgrad::memory!(PLAN);
    /// let mut trainer = Trainer::new(&SPEC, &OPT, 1, memory)?;
    /// trainer.init(&mut rng)?;
    /// for step in 0..200 {
    ///     let label = step % 2;
    ///     let targets = Targets::Labels(&[label as u32]);
    ///     trainer.step_with(1, pixels(&IMAGES[label]), targets, 0.1, &mut rng)?;
    /// }
    /// let mut predicted = [0u32];
    /// for (label, image) in IMAGES.iter().enumerate() {
    ///     trainer.predict_with(1, pixels(image), &mut predicted)?;
    ///     assert_eq!(predicted[0], label as u32);
    /// }
    /// assert!(trainer.step_with(0, |_| {}, Targets::Labels(&[]), 0.1, &mut rng).is_err());
    /// # Ok::<(), staticgrad::Error>(())
    /// ```
    // as `step`: a `const` model's walk folds
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn step_with(
        &mut self,
        rows: usize,
        fill: impl FnOnce(&mut [f32]),
        targets: Targets,
        lr: f32,
        rng: &mut impl Rng,
    ) -> Result<f32> {
        let (model, opt, fused) = (*self.model, self.optimizer, self.fused);
        let (mut tape, mut params) = self.take();
        let x = Fill { rows, fill };
        let out =
            Trainer::step_on(model, opt, fused, &mut tape, &mut params, self.state, x, targets, lr, rng);
        self.tape = tape;
        self.params = params;
        out
    }

    /// The tape and the parameters, moved out of `self` (see [`lend`](Self::lend)).
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn take(&mut self) -> (Tape<'m>, Params<'m>) {
        let tape = mem::replace(&mut self.tape, Tape::new(&mut [], &mut []));
        (tape, mem::replace(&mut self.params, Params::new(&mut [], &mut [], &mut [])))
    }

    /// Runs `f` on the model and on the tape, parameters and state moved out of `self` into
    /// locals, then moves them back. Code out of line gets pointers to those locals, never into
    /// `self`: the compiler then keeps the trainer's fields in registers and, for a `const`
    /// model and optimizer, knows them at every step, so it compiles only their path, layers,
    /// loss and ops (a pointer into `self` handed to a call would make it reload them).
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn lend<R>(
        &mut self,
        f: impl FnOnce(&'s Model<'s>, &mut Tape<'m>, &mut Params<'m>, &mut [f32]) -> R,
    ) -> R {
        let (mut tape, mut params) = self.take();
        let out = f(self.model, &mut tape, &mut params, self.state);
        self.tape = tape;
        self.params = params;
        out
    }

    /// A step on the model's [`StepPath`] for this batch.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[allow(clippy::too_many_arguments)] // the step's operands, passed through
    fn step_on(
        spec: Model,
        opt: &Optimizer,
        fused: bool,
        tape: &mut Tape<'_>,
        params: &mut Params,
        state: &mut [f32],
        x: impl Example,
        targets: Targets,
        lr: f32,
        rng: &mut impl Rng,
    ) -> Result<f32> {
        // SGD's update is one loop the compiler specialises through the constant address; the
        // other rules run faster on the shared loop, which a local copy keeps them on (the
        // rule is still a constant where the step inlines; docs/PERFORMANCE.md §3).
        let local = *opt;
        let opt = if let Rule::Sgd = opt.rule { opt } else { &local };
        // Every path starts from a reset tape (`record`, or the direct path's scratch) and
        // leaves it reset; the direct path records nothing, so only the others reset after.
        let rows = x.rows(&spec)?;
        let path = spec.step_path(rows, fused);
        let out = Trainer::step_path(spec, path, opt, tape, params, state, x, rows, targets, lr, rng);
        if path != StepPath::Direct {
            tape.reset();
        }
        out
    }

    /// [`step_on`](Self::step_on) once the path is chosen.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[allow(clippy::too_many_arguments)] // the step's operands, passed through
    fn step_path(
        spec: Model,
        path: StepPath,
        opt: &Optimizer,
        tape: &mut Tape<'_>,
        params: &mut Params,
        state: &mut [f32],
        x: impl Example,
        rows: usize,
        targets: Targets,
        lr: f32,
        rng: &mut impl Rng,
    ) -> Result<f32> {
        match path {
            StepPath::Fused => {
                let logits = spec.record(tape, params, x, rows, rng)?;
                let loss = spec.loss_at(tape, logits, targets)?;
                let data_loss = tape.scalar_at(loss)?;
                let total = data_loss + opt.decay_loss(params);
                tape.backward_fused_ops(loss, params, opt, state, lr, spec.ops(rows), true)?;
                Ok(total)
            }
            path => {
                let data_loss = spec.gradient_on(path, tape, params, x, rows, targets, rng)?;
                let loss = data_loss + opt.decay_loss(params);
                opt.step_valid(&tape.parallel(), params, state, lr)?;
                Ok(loss)
            }
        }
    }

    /// Eval-mode logits of `x` (gradients off: batch norm reads its running statistics, dropout
    /// draws nothing), `rows × outputs` written to `out` ([`Error::Shape`] if it is not that
    /// long), as [`Model::logits`]. A model whose [`StepPath`] at these rows is `Direct` is
    /// evaluated by the training step's own forward (same bits), which needs the tape of a
    /// training step of as many rows ([`Error::Capacity`] otherwise).
    // as `step`: a `const` model's walk folds
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn logits(&mut self, x: &[f32], out: &mut [f32]) -> Result<()> {
        self.lend(
            #[cfg_attr(not(debug_assertions), inline(always))]
            |model, tape, params, _| {
                // A tiny plain model evaluates by its training step's forward, not the ops.
                let rows = model.rows(x)?;
                if model.step_path(rows, false) == StepPath::Direct {
                    return direct::logits(model, tape, params, x, rows, out);
                }
                let read = model.logits(tape, params, x).and_then(|y| {
                    let (shape, values) = (tape.shape(y)?, tape.value(y)?);
                    if values.len() != out.len() {
                        return Err(Error::Shape {
                            op: "logits output",
                            expected: shape,
                            found: Shape::row(out.len()),
                        });
                    }
                    out.copy_from_slice(values);
                    Ok(())
                });
                tape.reset();
                read
            },
        )
    }

    /// Eval-mode loss of `x` against `targets`, as [`Model::eval_loss`].
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn eval_loss(&mut self, x: &[f32], targets: Targets) -> Result<f32> {
        self.lend(
            #[cfg_attr(not(debug_assertions), inline(always))]
            |model, tape, params, _| model.eval_loss(tape, params, x, targets),
        )
    }

    /// Predicted class of each row of `x` into `out`, as [`Model::predict`].
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn predict(&mut self, x: &[f32], out: &mut [u32]) -> Result<()> {
        self.lend(
            #[cfg_attr(not(debug_assertions), inline(always))]
            |model, tape, params, _| model.predict(tape, params, x, out),
        )
    }

    /// [`logits`](Self::logits) of an example of `rows` rows written in place by `fill`, as
    /// [`step_with`](Self::step_with): `fill` gets the tape's input zeroed, the example is held
    /// once. Same bits as `logits` on the same values.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn logits_with(&mut self, rows: usize, fill: impl FnOnce(&mut [f32]), out: &mut [f32]) -> Result<()> {
        self.lend(
            #[cfg_attr(not(debug_assertions), inline(always))]
            |model, tape, params, _| {
                let x = Fill { rows, fill };
                let rows = x.rows(model)?;
                if model.step_path(rows, false) == StepPath::Direct {
                    return direct::logits_with(model, tape, params, x, rows, out);
                }
                let read = model.logits_at(tape, params, x).and_then(|y| {
                    let (shape, values) = (tape.node_at(y)?.shape, tape.value_at(y)?);
                    if values.len() != out.len() {
                        return Err(Error::Shape {
                            op: "logits output",
                            expected: shape,
                            found: Shape::row(out.len()),
                        });
                    }
                    out.copy_from_slice(values);
                    Ok(())
                });
                tape.reset();
                read
            },
        )
    }

    /// [`predict`](Self::predict) of an example of `rows` rows written in place by `fill`, as
    /// [`step_with`](Self::step_with): `fill` gets the tape's input zeroed, the example is held
    /// once. Same classes as `predict` on the same values.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn predict_with(
        &mut self,
        rows: usize,
        fill: impl FnOnce(&mut [f32]),
        out: &mut [u32],
    ) -> Result<()> {
        self.lend(
            #[cfg_attr(not(debug_assertions), inline(always))]
            |model, tape, params, _| model.predict_with(tape, params, rows, fill, out),
        )
    }

    /// Rows of `x` whose predicted class equals the label, `chunk` rows at a time (the tape holds
    /// a chunk of the trainer's batch rows; more if the memory is larger), as [`Model::correct`].
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn correct(&mut self, x: &[f32], labels: &[u32], chunk: usize) -> Result<usize> {
        self.lend(
            #[cfg_attr(not(debug_assertions), inline(always))]
            |model, tape, params, _| model.correct(tape, params, x, labels, chunk),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Activation, MlpSpec, Plan};
    use crate::optim::{self, NAMES};
    use crate::testutil::random_values;
    use crate::{Node, ParamEntry, Region};
    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro128PlusPlus;
    use std::vec;
    use std::vec::Vec;

    const SPEC: Model = MlpSpec::new(&[3, 5, 2]).with_activation(Activation::Tanh).model();

    /// Heap buffers for `plan`.
    struct Owned {
        values: Vec<f32>,
        grads: Vec<f32>,
        table: Vec<ParamEntry>,
        state: Vec<f32>,
        floats: Vec<f32>,
        nodes: Vec<Node>,
    }

    impl Owned {
        fn new(plan: &Plan) -> Owned {
            Owned {
                values: vec![0.0; plan.param_floats],
                grads: vec![0.0; plan.grad_floats],
                table: vec![ParamEntry::EMPTY; plan.param_tensors],
                state: vec![f32::NAN; plan.state_floats], // a fresh start zeroes it
                floats: vec![0.0; plan.tape_floats],
                nodes: vec![Node::EMPTY; plan.tape_nodes],
            }
        }

        fn memory(&mut self) -> Memory<'_> {
            Memory {
                values: &mut self.values,
                grads: &mut self.grads,
                table: &mut self.table,
                state: &mut self.state,
                floats: &mut self.floats,
                nodes: &mut self.nodes,
                frozen: &[],
            }
        }
    }

    /// Trains steps `from..to` (batch 1 when fused, else 2) from the checkpoint `values` and
    /// `state` (or from `values` at step 0 if `from` is 0); a step's data and random stream
    /// depend on the step number only, as the runner's do.
    fn run(opt: Optimizer, fused: bool, values: &mut [f32], state: &mut Vec<f32>, from: u64, to: u64) {
        let rows = if fused { 1 } else { 2 };
        let plan = if fused { SPEC.plan_fused(rows, &opt) } else { SPEC.plan(rows, &opt) };
        let mut owned = Owned::new(&plan);
        let mut trainer = if fused {
            Trainer::fused(&SPEC, &opt, rows, owned.memory()).unwrap()
        } else {
            Trainer::new(&SPEC, &opt, rows, owned.memory()).unwrap()
        };
        if from == 0 {
            trainer.params_mut().values_mut().copy_from_slice(values);
        } else {
            trainer.load(values, state).unwrap();
        }
        assert_eq!(u64::from(trainer.steps()), from);
        for s in from..to {
            let x = random_values(3 * rows, 0.0, 1000 + s);
            let labels = [(s % 2) as u32, ((s / 2) % 2) as u32];
            let mut rng = Xoshiro128PlusPlus::seed_from_u64(s);
            trainer.step(&x, Targets::Labels(&labels[..rows]), 0.05, &mut rng).unwrap();
        }
        values.copy_from_slice(trainer.params().values());
        *state = trainer.state().to_vec();
    }

    #[test]
    fn resume_from_a_checkpoint_is_bit_identical() {
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        let (n, k) = (8, 3);
        let start = random_values(SPEC.param_len(), 0.0, 5);
        for &name in NAMES {
            let opt = Optimizer::by_name(name).unwrap();
            for fused in [false, true] {
                let (mut straight, mut s_straight) = (start.clone(), vec![]);
                run(opt, fused, &mut straight, &mut s_straight, 0, n);
                let (mut first, mut s_first) = (start.clone(), vec![]);
                run(opt, fused, &mut first, &mut s_first, 0, k);
                // The checkpoint is `first` and `s_first`, nothing else.
                run(opt, fused, &mut first, &mut s_first, k, n);
                assert_eq!(bits(&first), bits(&straight), "{name} fused {fused}");
                assert_eq!(bits(&s_first), bits(&s_straight), "{name} fused {fused}");
                assert_eq!(optim::steps(&s_first), Ok(n as u32));
            }
        }
    }

    /// A model per [`StepPath`] (with its batch rows and whether fused), and its targets.
    fn one_per_path() -> [(Model<'static>, usize, bool, StepPath); 5] {
        use crate::model::Loss;
        use crate::ops::dropout::Dropout;
        const DROPOUT: Model = MlpSpec::new(&[3, 5, 2]).with_dropout(Dropout::inverted(0.3)).model();
        const MSE: Model = MlpSpec::new(&[3, 4, 2]).with_loss(Loss::Mse).model();
        const WIDE: Model = MlpSpec::new(&[40, 30, 2]).model();
        [
            (SPEC, 2, false, StepPath::Direct),
            (MSE, 2, false, StepPath::Direct),
            (DROPOUT, 2, false, StepPath::Recorded),
            (WIDE, 1, false, StepPath::Overwrite),
            (SPEC, 2, true, StepPath::Fused),
        ]
    }

    #[test]
    fn an_example_written_in_place_trains_and_evaluates_to_the_same_bits() {
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for (spec, rows, fused, path) in one_per_path() {
            assert_eq!(spec.step_path(rows, fused), path);
            for &name in NAMES {
                let opt = Optimizer::by_name(name).unwrap();
                let plan = if fused { spec.plan_fused(rows, &opt) } else { spec.plan(rows, &opt) };
                let mut results = vec![];
                for in_place in [false, true] {
                    let mut owned = Owned::new(&plan);
                    let m = owned.memory();
                    let mut trainer = if fused {
                        Trainer::fused(&spec, &opt, rows, m).unwrap()
                    } else {
                        Trainer::new(&spec, &opt, rows, m).unwrap()
                    };
                    let mut rng = Xoshiro128PlusPlus::seed_from_u64(7);
                    trainer.init(&mut rng).unwrap();
                    let (mut losses, mut logits, mut classes) = (vec![], vec![], vec![]);
                    for s in 0..4u64 {
                        let x = random_values(spec.inputs() * rows, 0.0, 100 + s);
                        let labels = [(s % 2) as u32, ((s / 2) % 2) as u32];
                        let values = random_values(spec.outputs() * rows, 0.0, 200 + s);
                        let targets = if spec.loss == crate::model::Loss::Mse {
                            Targets::Values(&values)
                        } else {
                            Targets::Labels(&labels[..rows])
                        };
                        let mut out = vec![0.0; spec.outputs() * rows];
                        let mut predicted = vec![0u32; rows];
                        let loss = if in_place {
                            let mut seen_stale = false;
                            let fill = |slot: &mut [f32]| {
                                seen_stale = slot.iter().any(|&v| v != 0.0);
                                slot.copy_from_slice(&x);
                            };
                            let loss = trainer.step_with(rows, fill, targets, 0.05, &mut rng).unwrap();
                            assert!(!seen_stale, "{name} {path:?}: the input is zeroed for the fill");
                            trainer.logits_with(rows, |slot| slot.copy_from_slice(&x), &mut out).unwrap();
                            trainer
                                .predict_with(rows, |slot| slot.copy_from_slice(&x), &mut predicted)
                                .unwrap();
                            loss
                        } else {
                            let loss = trainer.step(&x, targets, 0.05, &mut rng).unwrap();
                            trainer.logits(&x, &mut out).unwrap();
                            trainer.predict(&x, &mut predicted).unwrap();
                            loss
                        };
                        losses.push(loss.to_bits());
                        logits.push(bits(&out));
                        classes.push(predicted);
                    }
                    let (values, state) = (bits(trainer.params().values()), bits(trainer.state()));
                    results.push((losses, logits, classes, values, state));
                }
                assert_eq!(results[0], results[1], "{name} {path:?}");
            }
        }
    }

    #[test]
    fn an_example_written_in_place_refuses_bad_rows_and_leaves_the_weights() {
        for (spec, rows, fused, path) in one_per_path() {
            let opt = Optimizer::sgd();
            let plan = if fused { spec.plan_fused(rows, &opt) } else { spec.plan(rows, &opt) };
            let mut owned = Owned::new(&plan);
            let mut trainer = if fused {
                Trainer::fused(&spec, &opt, rows, owned.memory()).unwrap()
            } else {
                Trainer::new(&spec, &opt, rows, owned.memory()).unwrap()
            };
            let mut rng = Xoshiro128PlusPlus::seed_from_u64(7);
            trainer.init(&mut rng).unwrap();
            let before = trainer.params().values().to_vec();
            let labels = [0u32; 64];
            let values = [0.5f32; 256];
            let targets = |r: usize| {
                if spec.loss == crate::model::Loss::Mse {
                    Targets::Values(&values[..r * spec.outputs()])
                } else {
                    Targets::Labels(&labels[..r])
                }
            };
            let mut calls = 0;
            let fill = |_: &mut [f32]| calls += 1;
            let e = trainer.step_with(0, fill, targets(0), 0.1, &mut rng).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument { what: "example rows", .. }), "{path:?} {e:?}");
            let huge = usize::MAX / 2;
            let e = trainer.step_with(huge, |_| calls += 1, targets(1), 0.1, &mut rng).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument { .. }), "{path:?} {e:?}");
            let e =
                trainer.step_with(rows + 40, |_| calls += 1, targets(rows + 40), 0.1, &mut rng).unwrap_err();
            assert!(matches!(e, Error::Capacity { .. }), "{path:?} {e:?}");
            let e = trainer.step_with(rows, |_| calls += 1, targets(rows + 1), 0.1, &mut rng).unwrap_err();
            assert!(matches!(e, Error::Shape { .. } | Error::InvalidArgument { .. }), "{path:?} {e:?}");
            let mut out = [0u32; 1];
            let e = trainer.predict_with(rows, |_| calls += 1, &mut out[..0]).unwrap_err();
            assert!(matches!(e, Error::Shape { .. }), "{path:?} {e:?}");
            let mut logits = [0.0f32; 1];
            assert!(trainer.logits_with(rows, |_| calls += 1, &mut logits).is_err(), "{path:?}");
            assert!(trainer.logits_with(0, |_| calls += 1, &mut logits).is_err(), "{path:?}");
            assert!(trainer.predict_with(0, |_| calls += 1, &mut out).is_err(), "{path:?}");
            assert_eq!(trainer.params().values(), &before[..], "{path:?}: nothing updated");
            assert!(calls <= 4, "{path:?}: a fill runs at most once per call, never for bad rows");
            // An unwritten example is zeros, on every path.
            let zeros = vec![0.0; spec.inputs() * rows];
            let mut a = vec![0.0; spec.outputs() * rows];
            let mut b = a.clone();
            trainer.logits(&zeros, &mut a).unwrap();
            trainer.logits_with(rows, |_| {}, &mut b).unwrap();
            assert_eq!(a, b, "{path:?}");
        }
    }

    #[test]
    fn a_given_plan_is_held_to_the_models_counts_and_trains_as_new() {
        let opt = Optimizer::adam();
        for fused in [false, true] {
            let plan = if fused { SPEC.plan_fused(2, &opt) } else { SPEC.plan(2, &opt) };
            fn make<'s, 'm>(
                opt: &'s Optimizer,
                owned: &'m mut Owned,
                plan: &Plan,
                fused: bool,
            ) -> Result<Trainer<'s, 'm>> {
                let m = owned.memory();
                if fused {
                    Trainer::fused_planned(&SPEC, opt, 2, m, plan)
                } else {
                    Trainer::planned(&SPEC, opt, 2, m, plan)
                }
            }
            for (what, wrong) in [
                ("plan parameter floats", Plan { param_floats: plan.param_floats - 1, ..plan }),
                ("plan parameter tensors", Plan { param_tensors: plan.param_tensors - 1, ..plan }),
                ("plan optimizer state", Plan { state_floats: plan.state_floats - 1, ..plan }),
            ] {
                let e = make(&opt, &mut Owned::new(&plan), &wrong, fused).unwrap_err();
                assert!(matches!(e, Error::InvalidArgument { what: w, .. } if w == what), "{e:?}");
            }
            let x = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
            let mut results = vec![];
            for planned in [false, true] {
                let mut owned = Owned::new(&plan);
                let mut trainer = match (planned, fused) {
                    (true, _) => make(&opt, &mut owned, &plan, fused).unwrap(),
                    (false, true) => Trainer::fused(&SPEC, &opt, 2, owned.memory()).unwrap(),
                    (false, false) => Trainer::new(&SPEC, &opt, 2, owned.memory()).unwrap(),
                };
                let mut rng = Xoshiro128PlusPlus::seed_from_u64(3);
                trainer.init(&mut rng).unwrap();
                let loss = trainer.step(&x, Targets::Labels(&[0, 1]), 0.1, &mut rng).unwrap();
                results.push((loss.to_bits(), trainer.params().values().to_vec(), trainer.state().to_vec()));
            }
            assert_eq!(results[0], results[1], "fused {fused}");
        }
    }

    #[test]
    fn new_checks_the_memory_and_load_checks_the_checkpoint() {
        let opt = Optimizer::adam();
        let plan = SPEC.plan(2, &opt);
        let mut owned = Owned::new(&plan);
        owned.state.pop();
        let e = Trainer::new(&SPEC, &opt, 2, owned.memory()).unwrap_err();
        let needed = plan.state_floats;
        assert_eq!(e, Error::Capacity { region: Region::OptimizerState, needed, available: needed - 1 });
        assert!(Trainer::new(&SPEC, &opt, 3, Owned::new(&plan).memory()).is_err(), "the tape of 2 rows");
        assert!(Trainer::new(&SPEC, &opt, 0, Owned::new(&plan).memory()).is_err());

        let mut owned = Owned::new(&plan);
        let mut trainer = Trainer::new(&SPEC, &opt, 2, owned.memory()).unwrap();
        assert_eq!(trainer.steps(), 0, "a fresh start zeroes whatever was there");
        let values = vec![0.5; SPEC.param_len()];
        let mut state = vec![0.0; plan.state_floats];
        assert!(matches!(trainer.load(&values[1..], &state), Err(Error::Shape { .. })));
        state[4] = f32::INFINITY;
        assert_eq!(
            trainer.load(&values, &state),
            Err(Error::NonFinite { what: "checkpoint state", index: 4 })
        );
        state[4] = 0.0;
        state[0] = -1.0; // not a step count
        assert!(matches!(trainer.load(&values, &state), Err(Error::InvalidArgument { .. })));
        assert!(trainer.params().values().iter().all(|&v| v == 0.0), "nothing loaded");
        state[0] = 0.0;
        trainer.load(&values, &state).unwrap();
        assert_eq!(trainer.params().values(), &values[..]);
    }
}
