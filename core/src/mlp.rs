//! Multi-layer perceptrons from a `const` spec: parameter layout, initialisation, forward pass,
//! loss, and the memory planner that sizes every buffer before training starts.
//!
//! Layer order is the book's `MultiLayerNetExtend`: each hidden layer is
//! `Affine → [BatchNorm] → activation → [Dropout]`, the last layer is a lone `Affine` whose
//! output (the logits) goes to the loss.
//!
//! # Parameter layout
//! [`MlpSpec::alloc`] allocates, into an empty [`Params`], for each hidden layer `l`:
//! `W_l` (`in × out`, [`ParamKind::Weight`]), `b_l` (`1 × out`, [`ParamKind::Bias`]) and, with
//! batch norm, `γ_l`, `β_l`, running mean, running variance (`1 × out` each); then `W` and `b` of
//! the output layer. Every handle is a function of the layer index ([`MlpSpec::weight`],
//! [`MlpSpec::bias`], [`MlpSpec::batch_norm_layer`]), so a model needs no storage for handles.
//!
//! # Memory planner
//! All `const fn`: [`MlpSpec::param_len`], [`MlpSpec::param_tensors`], [`MlpSpec::state_len`],
//! [`MlpSpec::tape_floats`], [`MlpSpec::tape_nodes`] (and the eval-mode pair), or everything at
//! once as a [`Plan`] with byte counts. The numbers are exact: a training step with exactly that
//! storage succeeds and with one float (or node) less it returns [`Error::Capacity`]. A count that
//! does not fit in `usize` reads `usize::MAX`, never a wrapped number; [`MlpSpec::try_plan`] (and,
//! for the parameters, [`MlpSpec::validate`]) refuse it as [`Error::Overflow`], in a `const` too.
//! A firmware checks its static buffers at compile time:
//!
//! ```
//! use staticgrad::mlp::{Activation, MlpSpec};
//! use staticgrad::optim::Optimizer;
//! use staticgrad::{BatchNormConfig, Dropout};
//!
//! const SPEC: MlpSpec = MlpSpec::new(&[196, 32, 10])
//!     .with_activation(Activation::Relu)
//!     .with_batch_norm(BatchNormConfig::BOOK)
//!     .with_dropout(Dropout::inverted(0.2));
//! const BATCH: usize = 8;
//! const OPT: Optimizer = Optimizer::adam();
//! const PARAMS: usize = 7000;
//! const STATE: usize = 14000;
//! const FLOATS: usize = 12000;
//! const NODES: usize = 16;
//! const _: () = assert!(PARAMS >= SPEC.param_len());
//! const _: () = assert!(STATE >= SPEC.state_len(&OPT));
//! const _: () = assert!(FLOATS >= SPEC.tape_floats(BATCH));
//! const _: () = assert!(NODES >= SPEC.tape_nodes());
//! let plan = SPEC.plan(BATCH, &OPT);
//! assert_eq!(plan.param_floats, 196 * 32 + 32 + 4 * 32 + 32 * 10 + 10);
//! // Adam: the state's header (step counter, β₁ᵗ, β₂ᵗ), then two moments per parameter.
//! assert_eq!(plan.state_floats, staticgrad::optim::HEADER_LEN + 2 * plan.param_floats);
//! assert!(plan.total_bytes() < 150_000);
//! ```

use crate::error::{Error, Result};
use crate::init::Init;
use crate::kernels::Rows;
use crate::ops::batchnorm::{BatchNorm, BatchNormConfig};
use crate::ops::dropout::Dropout;
use crate::ops::softmax_cross_entropy::BOOK_EPS;
use crate::optim::Optimizer;
use crate::params::{ParamEntry, ParamId, ParamKind, Params};
use crate::shape::Shape;
use crate::tape::{Mode, Node, NodeIndex, Op, OpSet, Tape, Var};
use rand_core::Rng;

/// Hidden-layer activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Activation {
    /// `max(x, 0)` (the book's default).
    #[default]
    Relu,
    /// `1 / (1 + e^−x)`.
    Sigmoid,
    /// `tanh x`.
    Tanh,
}

/// The training loss applied to the logits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Loss {
    /// Softmax cross-entropy with class-index labels, exact `−log softmax` (default).
    #[default]
    SoftmaxCrossEntropy,
    /// The book's softmax cross-entropy `−ln(y_t + 1e-7)`.
    SoftmaxCrossEntropyBook,
    /// Mean squared error against target values of the logits' shape.
    Mse,
}

/// What a batch is compared with: class labels (cross-entropy) or target values (MSE).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Targets<'t> {
    /// One class index per row.
    Labels(&'t [u32]),
    /// One row of target values per row, `batch × outputs`, row-major.
    Values(&'t [f32]),
}

/// A multi-layer perceptron: widths (input, hidden…, output), activation, optional batch norm
/// and dropout, initialisation and loss. Build it with `const fn`s, so it can be a `const`.
///
/// ```
/// use rand_core::SeedableRng;
/// use rand_xoshiro::Xoshiro128PlusPlus;
/// use staticgrad::mlp::{MlpSpec, Targets};
/// use staticgrad::{Mode, Node, ParamEntry, Params, Tape, Shape};
/// const SPEC: MlpSpec = MlpSpec::new(&[2, 3, 2]);
/// let mut values = [0.0; SPEC.param_len()];
/// let mut grads = [0.0; SPEC.param_len()];
/// let mut table = [ParamEntry::EMPTY; SPEC.param_tensors()];
/// let mut params = Params::new(&mut values, &mut grads, &mut table);
/// let mut rng = Xoshiro128PlusPlus::seed_from_u64(1);
/// SPEC.alloc(&mut params)?;
/// SPEC.init(&mut params, &mut rng)?;
/// let mut floats = [0.0; SPEC.tape_floats(4)];
/// let mut nodes = [Node::EMPTY; SPEC.tape_nodes()];
/// let mut tape = Tape::new(&mut floats, &mut nodes);
/// let x = tape.input(&[0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0], Shape::new(4, 2))?;
/// let logits = SPEC.forward(&mut tape, &mut params, x, Mode::Train, &mut rng)?;
/// let loss = SPEC.loss(&mut tape, logits, Targets::Labels(&[1, 1, 0, 0]))?;
/// tape.backward(loss, &mut params)?;
/// assert_eq!(tape.floats_used(), SPEC.tape_floats(4));
/// # Ok::<(), staticgrad::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MlpSpec<'a> {
    /// Layer widths: input, hidden layers…, output (at least two entries).
    pub widths: &'a [usize],
    /// Activation after every hidden layer.
    pub activation: Activation,
    /// Batch norm after every hidden affine layer, if any.
    pub batch_norm: Option<BatchNormConfig>,
    /// Dropout after every hidden activation, if any.
    pub dropout: Option<Dropout>,
    /// Initialisation of the weights (biases start at 0, γ at 1, β at 0).
    pub init: Init,
    /// The training loss.
    pub loss: Loss,
}

/// Everything a training step needs, in floats, tensors and nodes, with byte counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Parameter values (including batch-norm running statistics).
    pub param_floats: usize,
    /// Rows of the parameter table.
    pub param_tensors: usize,
    /// Parameter gradients (same length as the values).
    pub grad_floats: usize,
    /// Optimizer state.
    pub state_floats: usize,
    /// Tape float arena (values and gradients of tape values, plus op scratch).
    pub tape_floats: usize,
    /// Tape op records.
    pub tape_nodes: usize,
}

const F32: usize = size_of::<f32>();

/// Byte counts of a [`Plan`]. Exact for a plan from [`MlpSpec::try_plan`] (which refuses one
/// whose bytes overflow); a plan built by hand, or by [`MlpSpec::plan`] for a spec that overflows,
/// saturates at `usize::MAX` — never wraps to a small number.
impl Plan {
    /// Parameter values and the parameter table.
    pub const fn param_bytes(&self) -> usize {
        sat(self.checked_param_bytes())
    }

    /// Parameter gradients.
    pub const fn grad_bytes(&self) -> usize {
        mul(self.grad_floats, F32)
    }

    /// Optimizer state.
    pub const fn state_bytes(&self) -> usize {
        mul(self.state_floats, F32)
    }

    /// Tape arena and op records.
    pub const fn tape_bytes(&self) -> usize {
        sat(self.checked_tape_bytes())
    }

    /// All of the above. (Table and node sizes are this target's `size_of`.)
    pub const fn total_bytes(&self) -> usize {
        sat(self.checked_total_bytes())
    }

    #[inline(always)]
    const fn checked_param_bytes(&self) -> Option<usize> {
        let table = checked_mul(self.param_tensors, size_of::<ParamEntry>());
        checked_add(checked_mul(self.param_floats, F32), table)
    }

    #[inline(always)]
    const fn checked_tape_bytes(&self) -> Option<usize> {
        let nodes = checked_mul(self.tape_nodes, size_of::<Node>());
        checked_add(checked_mul(self.tape_floats, F32), nodes)
    }

    /// [`total_bytes`](Self::total_bytes), `None` if it does not fit in `usize`.
    #[inline(always)]
    const fn checked_total_bytes(&self) -> Option<usize> {
        let grads = checked_mul(self.grad_floats, F32);
        let state = checked_mul(self.state_floats, F32);
        checked_add(
            checked_add(self.checked_param_bytes(), grads),
            checked_add(state, self.checked_tape_bytes()),
        )
    }
}

const fn sat(n: Option<usize>) -> usize {
    match n {
        Some(n) => n,
        None => usize::MAX,
    }
}

/// Stand-in generator for eval-mode passes, where dropout draws nothing.
pub(crate) struct NoDraws;

impl rand_core::TryRng for NoDraws {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> core::result::Result<u32, Self::Error> {
        Ok(0)
    }
    fn try_next_u64(&mut self) -> core::result::Result<u64, Self::Error> {
        Ok(0)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> core::result::Result<(), Self::Error> {
        dest.fill(0);
        Ok(())
    }
}

// The planner's arithmetic: saturating, so a count is exact or `usize::MAX`, never wrapped.
const fn add(a: usize, b: usize) -> usize {
    a.saturating_add(b)
}

const fn mul(a: usize, b: usize) -> usize {
    a.saturating_mul(b)
}

/// A count that fits in `usize`: not saturated (a buffer of `usize::MAX` elements cannot exist).
#[inline(always)]
const fn fits(n: usize) -> Option<usize> {
    if n == usize::MAX { None } else { Some(n) }
}

// Checked arithmetic for the byte counts.
const fn checked_add(a: Option<usize>, b: Option<usize>) -> Option<usize> {
    match (a, b) {
        (Some(a), Some(b)) => a.checked_add(b),
        _ => None,
    }
}

const fn checked_mul(a: usize, b: usize) -> Option<usize> {
    a.checked_mul(b)
}

const fn overflow(what: &'static str, batch: usize) -> Error {
    Error::Overflow { what, batch }
}

impl<'a> MlpSpec<'a> {
    /// ReLU, no batch norm, no dropout, He-normal weights, exact softmax cross-entropy.
    pub const fn new(widths: &'a [usize]) -> Self {
        MlpSpec {
            widths,
            activation: Activation::Relu,
            batch_norm: None,
            dropout: None,
            init: Init::HeNormal,
            loss: Loss::SoftmaxCrossEntropy,
        }
    }

    /// With this hidden activation.
    pub const fn with_activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    /// With batch norm after every hidden affine layer.
    pub const fn with_batch_norm(mut self, config: BatchNormConfig) -> Self {
        self.batch_norm = Some(config);
        self
    }

    /// With dropout after every hidden activation.
    pub const fn with_dropout(mut self, dropout: Dropout) -> Self {
        self.dropout = Some(dropout);
        self
    }

    /// With this weight initialisation.
    pub const fn with_init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }

    /// With this loss.
    pub const fn with_loss(mut self, loss: Loss) -> Self {
        self.loss = loss;
        self
    }

    // ----- layout -------------------------------------------------------------------------

    /// Number of affine layers (`widths.len() − 1`).
    pub const fn layers(&self) -> usize {
        self.widths.len().saturating_sub(1)
    }

    /// Input features (`widths[0]`, 0 for an empty spec).
    pub const fn inputs(&self) -> usize {
        match self.widths.first() {
            Some(&w) => w,
            None => 0,
        }
    }

    /// Output features (the last width).
    pub const fn outputs(&self) -> usize {
        match self.widths.last() {
            Some(&w) => w,
            None => 0,
        }
    }

    const fn tensors_per_hidden(&self) -> usize {
        if self.batch_norm.is_some() { 2 + BatchNorm::TENSORS } else { 2 }
    }

    /// The `k`-th tensor of layer `l`, or `None` if there is no layer `l` or its index does not
    /// fit a [`ParamId`] (a spec [`validate`](Self::validate) refuses).
    const fn param_id(&self, l: usize, k: usize) -> Option<ParamId> {
        if l >= self.layers() {
            return None;
        }
        // Saturating: an index past u16 (saturated or not) has no handle.
        let i = add(mul(l, self.tensors_per_hidden()), k);
        if i <= u16::MAX as usize { Some(ParamId(i as u16)) } else { None }
    }

    /// Handle of layer `l`'s weight (valid once [`alloc`](Self::alloc) has run); `None` if the
    /// spec has no layer `l` (`l ≥ layers()`).
    pub const fn weight(&self, l: usize) -> Option<ParamId> {
        self.param_id(l, 0)
    }

    /// Handle of layer `l`'s bias; `None` if the spec has no layer `l`.
    pub const fn bias(&self, l: usize) -> Option<ParamId> {
        self.param_id(l, 1)
    }

    /// Weight and bias of layer `l`, or [`Error::InvalidHandle`] naming the layer.
    #[inline(always)] // constant for a `const` spec inside a firmware's step
    fn weight_and_bias(&self, l: usize) -> Result<(ParamId, ParamId)> {
        match (self.weight(l), self.bias(l)) {
            (Some(w), Some(b)) => Ok((w, b)),
            _ => Err(no_layer(l)),
        }
    }

    /// Batch-norm handles of hidden layer `l`, if the spec has batch norm and `l` is hidden
    /// (`None` for the output layer and for any `l ≥ layers()`).
    pub const fn batch_norm_layer(&self, l: usize) -> Option<BatchNorm> {
        let Some(config) = self.batch_norm else { return None };
        if l >= self.layers().saturating_sub(1) {
            return None; // the output layer has none, and there is no layer `l`
        }
        match (self.param_id(l, 2), self.param_id(l, 3), self.param_id(l, 4), self.param_id(l, 5)) {
            (Some(gamma), Some(beta), Some(running_mean), Some(running_var)) => {
                Some(BatchNorm { gamma, beta, running_mean, running_var, config })
            }
            _ => None,
        }
    }

    // ----- planner ------------------------------------------------------------------------
    //
    // Counts are computed with saturating arithmetic, which on these sums and products of
    // non-negative numbers gives exactly `min(true count, usize::MAX)`: a count is exact, or
    // `usize::MAX` if it does not fit — never a wrapped number (and a `const` array of
    // `usize::MAX` floats fails to compile). `try_plan` and `validate` turn a count of
    // `usize::MAX` (or bytes past it) into `Err(Error::Overflow)`. (Saturating rather than
    // `Option` arithmetic: the same code a firmware's `const` spec folded before, so its
    // inlining and size do not move.)

    /// Parameter tensors [`alloc`](Self::alloc) creates (rows of the parameter table);
    /// `usize::MAX` if that does not fit (see [`try_plan`](Self::try_plan)).
    #[inline(always)] // folds to a constant for a `const` spec
    pub const fn param_tensors(&self) -> usize {
        let l = self.layers();
        if l == 0 { 0 } else { add(mul(l - 1, self.tensors_per_hidden()), 2) }
    }

    /// Parameter floats (values; the gradient buffer is as long), running statistics included;
    /// `usize::MAX` if that does not fit (a spec [`validate`](Self::validate) refuses).
    #[inline(always)] // folds to a constant for a `const` spec
    pub const fn param_len(&self) -> usize {
        let mut n = 0usize;
        let mut l = 0;
        while l < self.layers() {
            let (i, o) = (self.widths[l], self.widths[l + 1]);
            n = add(n, add(mul(i, o), o));
            if self.batch_norm.is_some() && l + 1 < self.layers() {
                n = add(n, BatchNorm::param_len(o));
            }
            l += 1;
        }
        n
    }

    /// Optimizer state floats for `optimizer` over this model's parameters (`usize::MAX` if
    /// that does not fit).
    #[inline(always)] // folds to a constant for a `const` spec and optimizer
    pub const fn state_len(&self, optimizer: &Optimizer) -> usize {
        optimizer.state_len(self.param_len())
    }

    /// Tape floats of one forward + loss + backward in [`Mode::Train`] with `batch` rows: the
    /// values of every op (and its scratch) plus a gradient for each value downstream of a
    /// parameter (the input batch and op scratch get none). `usize::MAX` if that does not fit
    /// (a batch [`try_plan`](Self::try_plan) refuses).
    #[inline(always)] // constant for a `const` spec inside a firmware's step
    pub const fn tape_floats(&self, batch: usize) -> usize {
        let (floats, _) = self.tape_use(batch, Mode::Train, true);
        floats
    }

    /// Tape nodes of one training forward + loss.
    #[inline(always)] // constant for a `const` spec inside a firmware's step
    pub const fn tape_nodes(&self) -> usize {
        let (_, nodes) = self.tape_use(1, Mode::Train, true);
        nodes
    }

    /// Tape floats of an evaluation forward pass over `batch` rows ([`logits`](Self::logits),
    /// [`predict`](Self::predict), [`correct`](Self::correct) with `chunk = batch`). Gradients are
    /// off there, so this is values only. Less than [`tape_floats`](Self::tape_floats), so exact
    /// whenever [`try_plan`](Self::try_plan) is `Ok` (else `usize::MAX` if it does not fit).
    pub const fn eval_tape_floats(&self, batch: usize) -> usize {
        let (floats, _) = self.tape_use(batch, Mode::Eval, false);
        floats
    }

    /// Tape nodes of an evaluation forward pass.
    pub const fn eval_tape_nodes(&self) -> usize {
        let (_, nodes) = self.tape_use(1, Mode::Eval, false);
        nodes
    }

    /// Tape floats of the loss in an evaluation pass: the `1 × 1` loss plus the cross-entropy's
    /// scratch, or the MSE target input plus the loss. [`eval_loss`](Self::eval_loss) needs
    /// [`eval_tape_floats`](Self::eval_tape_floats)` + loss_tape_floats` (both less than
    /// [`tape_floats`](Self::tape_floats); `usize::MAX` if it does not fit).
    pub const fn loss_tape_floats(&self, batch: usize) -> usize {
        add(1, mul(batch, self.outputs()))
    }

    /// Tape nodes of [`loss`](Self::loss): 1 for cross-entropy, 2 for MSE (target input + loss).
    pub const fn loss_tape_nodes(&self) -> usize {
        match self.loss {
            Loss::Mse => 2,
            _ => 1,
        }
    }

    /// (floats, nodes), mirroring [`forward`](Self::forward) and [`loss`](Self::loss) op by op.
    /// In train mode every value after the input needs a gradient (parameters are upstream);
    /// eval passes run with gradients off.
    #[inline(always)] // constant for a `const` spec inside a firmware's step
    const fn tape_use(&self, batch: usize, mode: Mode, with_loss: bool) -> (usize, usize) {
        let train = matches!(mode, Mode::Train);
        let mut v = mul(batch, self.inputs()); // the input: values only
        let mut g = 0usize;
        let mut nodes = 1usize;
        let mut l = 0;
        while l < self.layers() {
            let o = self.widths[l + 1];
            let act = mul(batch, o);
            v = add(v, act); // affine
            g = add(g, act);
            nodes = add(nodes, 1);
            if l + 1 < self.layers() {
                if self.batch_norm.is_some() {
                    v = add(v, add(act, BatchNorm::scratch_len(o)));
                    g = add(g, act);
                    nodes = add(nodes, 1);
                }
                v = add(v, act); // activation
                g = add(g, act);
                nodes = add(nodes, 1);
                if let Some(d) = self.dropout {
                    if train {
                        v = add(v, add(act, Dropout::scratch_len(act)));
                        g = add(g, act);
                        nodes = add(nodes, 1);
                    } else if d.eval_nodes() == 1 {
                        v = add(v, act); // the book form's scale by 1 − p
                        g = add(g, act);
                        nodes = add(nodes, 1);
                    }
                }
            }
            l += 1;
        }
        if with_loss {
            v = add(v, self.loss_tape_floats(batch));
            g = add(g, 1);
            nodes = add(nodes, self.loss_tape_nodes());
        }
        if !train {
            g = 0;
        }
        (add(v, g), nodes)
    }

    /// Gradient floats with the fused update ([`Params::fused`]'s row scratch): the widest
    /// parameter row, i.e. the largest width after the input.
    pub const fn fused_grad_floats(&self) -> usize {
        let mut w = 0;
        let mut l = 1;
        while l < self.widths.len() {
            if self.widths[l] > w {
                w = self.widths[l];
            }
            l += 1;
        }
        w
    }

    /// Everything a training step with the fused update
    /// ([`Trainer::step_fused`](crate::train::Trainer::step_fused)) needs: as [`plan`](Self::plan)
    /// but with [`fused_grad_floats`](Self::fused_grad_floats) instead of a gradient buffer.
    ///
    /// ```
    /// use staticgrad::mlp::MlpSpec;
    /// use staticgrad::optim::Optimizer;
    /// const SPEC: MlpSpec = MlpSpec::new(&[196, 32, 10]);
    /// const PLAN: staticgrad::mlp::Plan = SPEC.plan_fused(1, &Optimizer::sgd());
    /// const _: () = assert!(PLAN.grad_floats == 32 && SPEC.plan(1, &Optimizer::sgd()).grad_floats == 6634);
    /// ```
    pub const fn plan_fused(&self, batch: usize, optimizer: &Optimizer) -> Plan {
        Plan { grad_floats: self.fused_grad_floats(), ..self.plan(batch, optimizer) }
    }

    /// Everything a training step with `batch` rows and `optimizer` needs. A count that
    /// overflows `usize` reads `usize::MAX` (so a `const` array of it fails to compile); call
    /// [`try_plan`](Self::try_plan) for an `Err` instead.
    #[inline(always)] // folds to a constant for a `const` spec (validate calls it, via try_plan)
    pub const fn plan(&self, batch: usize, optimizer: &Optimizer) -> Plan {
        Plan {
            param_floats: self.param_len(),
            param_tensors: self.param_tensors(),
            grad_floats: self.param_len(),
            state_floats: self.state_len(optimizer),
            tape_floats: self.tape_floats(batch),
            tape_nodes: self.tape_nodes(),
        }
    }

    /// [`plan`](Self::plan), or [`Error::Overflow`] naming the first count (floats, tensors,
    /// nodes or bytes) that does not fit in `usize` — never a wrapped or saturated number. When
    /// it is `Ok`, every count of the spec at this batch is exact, the eval-mode ones
    /// ([`eval_tape_floats`](Self::eval_tape_floats), …) included, and so are the plan's
    /// byte counts. A `const fn`:
    ///
    /// ```
    /// use staticgrad::mlp::MlpSpec;
    /// use staticgrad::optim::Optimizer;
    /// use staticgrad::Error;
    /// const SPEC: MlpSpec = MlpSpec::new(&[196, 32, 10]);
    /// const _: () = assert!(SPEC.try_plan(8, &Optimizer::adam()).is_ok());
    /// let huge = MlpSpec::new(&[usize::MAX / 2, usize::MAX / 2, 10]);
    /// assert!(matches!(huge.try_plan(1, &Optimizer::sgd()), Err(Error::Overflow { .. })));
    /// assert!(matches!(SPEC.try_plan(usize::MAX, &Optimizer::sgd()), Err(Error::Overflow { .. })));
    /// ```
    #[inline(always)] // folds to a constant for a `const` spec (validate calls it)
    pub const fn try_plan(&self, batch: usize, optimizer: &Optimizer) -> Result<Plan> {
        let plan = self.plan(batch, optimizer);
        // Saturated counts are `usize::MAX`: refuse them, naming the first.
        if fits(plan.param_floats).is_none() {
            return Err(overflow("MLP parameter floats", batch));
        }
        if fits(plan.param_tensors).is_none() {
            return Err(overflow("MLP parameter tensors", batch));
        }
        if fits(plan.state_floats).is_none() {
            return Err(overflow("optimizer state floats", batch));
        }
        if fits(plan.tape_floats).is_none() || fits(plan.tape_nodes).is_none() {
            return Err(overflow("MLP tape floats", batch));
        }
        if plan.checked_total_bytes().is_none() {
            return Err(overflow("MLP memory plan bytes", batch));
        }
        Ok(plan)
    }

    /// [`plan_fused`](Self::plan_fused), checked as [`try_plan`](Self::try_plan).
    pub const fn try_plan_fused(&self, batch: usize, optimizer: &Optimizer) -> Result<Plan> {
        match self.try_plan(batch, optimizer) {
            // The fused gradient scratch is one row, never more than the gradient buffer.
            Ok(plan) => Ok(Plan { grad_floats: self.fused_grad_floats(), ..plan }),
            Err(e) => Err(e),
        }
    }

    // ----- building -----------------------------------------------------------------------

    /// Checks the spec: at least two widths, none zero, at most 65535 tensors, valid batch-norm
    /// and dropout settings, and parameters whose count and bytes (values, gradients, table) fit
    /// in `usize` ([`Error::Overflow`] otherwise; the tape of a batch and an optimizer's state
    /// are [`try_plan`](Self::try_plan)'s to check).
    /// A `const fn`, so a `const` spec can be checked at compile time:
    ///
    /// ```
    /// use staticgrad::mlp::MlpSpec;
    /// const SPEC: MlpSpec = MlpSpec::new(&[196, 32, 10]);
    /// const _: () = assert!(SPEC.validate().is_ok());
    /// const HUGE: MlpSpec = MlpSpec::new(&[usize::MAX / 2, usize::MAX / 2, 10]);
    /// const _: () = assert!(HUGE.validate().is_err());
    /// ```
    #[inline(always)] // a `const` spec's checks fold away (a firmware keeps none of them)
    pub const fn validate(&self) -> Result<()> {
        if self.widths.len() < 2 {
            return Err(Error::InvalidArgument { what: "MLP widths (need input and output)", value: 0.0 });
        }
        let mut l = 0;
        while l < self.widths.len() {
            if self.widths[l] == 0 {
                return Err(Error::InvalidArgument { what: "MLP width", value: 0.0 });
            }
            l += 1;
        }
        // The spec's own sizes: parameter values and gradients, and the table (what a batch
        // and an optimizer add is `try_plan`'s). Cheap enough to fold away for a `const` spec.
        let (params, tensors) = (self.param_len(), self.param_tensors());
        let table = checked_mul(tensors, size_of::<ParamEntry>());
        if fits(params).is_none() {
            return Err(overflow("MLP parameter floats", 0));
        }
        if checked_add(checked_mul(params, 2 * F32), table).is_none() {
            return Err(overflow("MLP parameter bytes (values and gradients)", 0));
        }
        if self.param_tensors() > u16::MAX as usize {
            return Err(Error::InvalidArgument { what: "MLP depth", value: self.layers() as f32 });
        }
        if let Some(c) = self.batch_norm {
            if let Err(e) = c.validate() {
                return Err(e);
            }
        }
        if let Some(d) = self.dropout {
            if let Err(e) = d.validate() {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Allocates every parameter tensor in the layout's order into `params`, which must be empty
    /// (handles are computed from the layer index). Weights and biases start at 0, γ at 1, β and
    /// the running mean at 0, the running variance at the batch-norm config's start value; call
    /// [`init`](Self::init) to draw the weights.
    pub fn alloc(&self, params: &mut Params) -> Result<()> {
        self.validate()?;
        if params.tensor_count() != 0 {
            return Err(Error::InvalidArgument {
                what: "MlpSpec::alloc needs an empty Params; tensors already allocated",
                value: params.tensor_count() as f32,
            });
        }
        for l in 0..self.layers() {
            let (i, o) = (self.widths[l], self.widths[l + 1]);
            params.alloc(Shape::new(i, o), ParamKind::Weight)?;
            params.alloc(Shape::row(o), ParamKind::Bias)?;
            if let (Some(config), true) = (self.batch_norm, l + 1 < self.layers()) {
                BatchNorm::alloc(params, o, config)?;
            }
        }
        Ok(())
    }

    /// Draws every weight with the spec's [`Init`] (layer by layer, in order, so a seed gives the
    /// same model everywhere), zeroes the biases and resets batch norm (γ = 1, β = 0, running
    /// statistics to their start values).
    pub fn init(&self, params: &mut Params, rng: &mut impl Rng) -> Result<()> {
        self.check_layout(params)?;
        for l in 0..self.layers() {
            let (w, b) = self.weight_and_bias(l)?;
            self.init.fill_param(params, w, rng)?;
            params.value_mut(b)?.fill(0.0);
            if let Some(bn) = self.batch_norm_layer(l) {
                bn.reset(params)?;
            }
        }
        Ok(())
    }

    /// Checks that `params` holds exactly this spec's layout.
    #[inline(always)] // constant for a `const` spec inside a firmware's step
    pub(crate) fn check_layout(&self, params: &Params) -> Result<()> {
        if params.tensor_count() != self.param_tensors() {
            return Err(Error::InvalidArgument {
                what: "parameter tensors do not match the MLP spec",
                value: params.tensor_count() as f32,
            });
        }
        for l in 0..self.layers() {
            let (i, o) = (self.widths[l], self.widths[l + 1]);
            let (w, b) = self.weight_and_bias(l)?;
            let (w, b) = (params.entry(w)?, params.entry(b)?);
            if w.shape != Shape::new(i, o) || w.kind != ParamKind::Weight {
                return Err(Error::Shape { op: "MLP weight", expected: Shape::new(i, o), found: w.shape });
            }
            if b.shape != Shape::row(o) || b.kind != ParamKind::Bias {
                return Err(Error::Shape { op: "MLP bias", expected: Shape::row(o), found: b.shape });
            }
        }
        Ok(())
    }

    // ----- running ------------------------------------------------------------------------

    /// The logits for `x` (`batch × inputs`). In [`Mode::Train`] batch norm uses batch statistics
    /// and then moves its running statistics in `params`, and dropout draws its masks from `rng`;
    /// in [`Mode::Eval`] nothing in `params` changes and `rng` is not used.
    pub fn forward(
        &self,
        tape: &mut Tape,
        params: &mut Params,
        x: Var,
        mode: Mode,
        rng: &mut impl Rng,
    ) -> Result<Var> {
        self.validate()?;
        let y = self.forward_valid(tape, params, tape.check(x)?, mode, rng, Rows::Any)?;
        Ok(tape.var(y))
    }

    /// [`forward`](Self::forward) of a spec already [validated](Self::validate), with the
    /// kernels' [`Rows`] hint for the batch of `x` (a node the core just recorded).
    #[inline(always)]
    pub(crate) fn forward_valid(
        &self,
        tape: &mut Tape,
        params: &mut Params,
        x: NodeIndex,
        mode: Mode,
        rng: &mut impl Rng,
        rows: Rows,
    ) -> Result<NodeIndex> {
        let start = tape.nodes_used();
        let y = self.layers_valid(tape, params, x, mode, rng, rows)?;
        if mode == Mode::Train && self.batch_norm.is_some() {
            let per = self.tensors_per_hidden();
            for (i, node) in tape.nodes().iter().enumerate().skip(start) {
                if let Op::BatchNorm { gamma, .. } = node.op() {
                    if let Some(bn) = self.batch_norm_layer(gamma.index() / per) {
                        bn.update_running_at(tape, NodeIndex(i as u32), params)?; // a recorded index
                    }
                }
            }
        }
        Ok(y)
    }

    /// [`forward`](Self::forward) without moving the running statistics (only `&Params`): for
    /// evaluation with shared parameters and for gradient checks of the whole network.
    #[inline(always)]
    pub fn forward_no_update(
        &self,
        tape: &mut Tape,
        params: &Params,
        x: Var,
        mode: Mode,
        rng: &mut impl Rng,
    ) -> Result<Var> {
        self.validate()?;
        let y = self.layers_valid(tape, params, tape.check(x)?, mode, rng, Rows::Any)?;
        Ok(tape.var(y))
    }

    /// The layers of [`forward_no_update`](Self::forward_no_update), spec already validated;
    /// `rows` is the kernels' hint for the batch of `x` (a node the core just recorded).
    #[inline(always)]
    fn layers_valid(
        &self,
        tape: &mut Tape,
        params: &Params,
        x: NodeIndex,
        mode: Mode,
        rng: &mut impl Rng,
        rows: Rows,
    ) -> Result<NodeIndex> {
        let mut h = x;
        for l in 0..self.layers() {
            let (w, b) = self.weight_and_bias(l)?;
            h = tape.affine_rows(h, params, w, b, rows)?;
            if l + 1 == self.layers() {
                break;
            }
            if let Some(bn) = self.batch_norm_layer(l) {
                h = tape.batch_norm_at(h, params, &bn, mode)?;
            }
            h = match self.activation {
                Activation::Relu => tape.relu_at(h)?,
                Activation::Sigmoid => tape.sigmoid_at(h)?,
                Activation::Tanh => tape.tanh_at(h)?,
            };
            if let Some(d) = self.dropout {
                h = tape.dropout_at(h, d, mode, rng)?;
            }
        }
        Ok(h)
    }

    /// The spec's loss of `logits` against `targets` (labels for cross-entropy, values for MSE).
    #[inline(always)]
    pub fn loss(&self, tape: &mut Tape, logits: Var, targets: Targets) -> Result<Var> {
        // Targets that do not fit the loss are refused before the handle, as `loss_at` does.
        let fits = matches!(
            (self.loss, targets),
            (Loss::SoftmaxCrossEntropy | Loss::SoftmaxCrossEntropyBook, Targets::Labels(_))
                | (Loss::Mse, Targets::Values(_))
        );
        let logits = if fits { tape.check(logits)? } else { NodeIndex(0) }; // unread: `loss_at` refuses
        let y = self.loss_at(tape, logits, targets)?;
        Ok(tape.var(y))
    }

    /// [`loss`](Self::loss) of node `logits` (a node the core just recorded).
    #[inline(always)]
    pub(crate) fn loss_at(&self, tape: &mut Tape, logits: NodeIndex, targets: Targets) -> Result<NodeIndex> {
        match (self.loss, targets) {
            (Loss::SoftmaxCrossEntropy, Targets::Labels(t)) => tape.softmax_ce(logits, t, None),
            (Loss::SoftmaxCrossEntropyBook, Targets::Labels(t)) => tape.softmax_ce(logits, t, Some(BOOK_EPS)),
            (Loss::Mse, Targets::Values(t)) => {
                let target = tape.input_at(t, tape.node_at(logits)?.shape)?;
                tape.mse_at(logits, target)
            }
            _ => Err(Error::InvalidArgument {
                what: "targets do not fit the loss (labels for cross-entropy, values for MSE)",
                value: 0.0,
            }),
        }
    }

    /// The op kinds a training graph of this spec records on a batch of `rows` rows (for a lean
    /// backward dispatch, and the kernels' [`Rows`] hint).
    #[inline(always)]
    pub(crate) const fn ops(&self, rows: usize) -> OpSet {
        let mut bits = match self.activation {
            Activation::Relu => OpSet::RELU,
            Activation::Sigmoid => OpSet::SIGMOID,
            Activation::Tanh => OpSet::TANH,
        };
        bits |= match self.loss {
            Loss::Mse => OpSet::MSE,
            _ => OpSet::SOFTMAX_CE,
        };
        if self.batch_norm.is_some() {
            bits |= OpSet::BATCH_NORM;
        }
        if self.dropout.is_some() {
            bits |= OpSet::DROPOUT | OpSet::GRAPH; // the book form's eval-mode scale
        }
        if rows != 1 {
            bits |= OpSet::MANY_ROWS;
        }
        OpSet(bits)
    }

    /// Rows in `x` (which must hold whole rows of `inputs()` features).
    #[inline(always)] // constant for a `const` spec inside a firmware's step
    pub(crate) fn rows(&self, x: &[f32]) -> Result<usize> {
        let i = self.inputs();
        if i == 0 || x.len() % i != 0 || x.is_empty() {
            return Err(Error::Shape {
                op: "MLP input",
                expected: Shape::new(1, i),
                found: Shape::row(x.len()),
            });
        }
        Ok(x.len() / i)
    }

    /// The book's `gradient()`: resets the tape (and switches gradients on), runs a train-mode forward on `x`, the loss,
    /// zeroes the gradients and runs backward. Returns the data loss (no weight-decay term); the
    /// gradients are in `params` and the graph stays on the tape until the next reset.
    pub fn gradient(
        &self,
        tape: &mut Tape,
        params: &mut Params,
        x: &[f32],
        targets: Targets,
        rng: &mut impl Rng,
    ) -> Result<f32> {
        self.gradient_checked(tape, params, x, targets, rng, true)
    }

    /// [`gradient`](Self::gradient); `validate = false` for a spec already
    /// [validated](Self::validate) (a [`Trainer`](crate::train::Trainer) does it once when it is
    /// made).
    #[inline(always)]
    pub(crate) fn gradient_checked(
        &self,
        tape: &mut Tape,
        params: &mut Params,
        x: &[f32],
        targets: Targets,
        rng: &mut impl Rng,
        validate: bool,
    ) -> Result<f32> {
        tape.reset();
        tape.set_grad_enabled(true);
        let rows = self.rows(x)?;
        let xv = tape.input_at(x, Shape::new(rows, self.inputs()))?;
        if validate {
            self.validate()?;
        }
        let logits = self.forward_valid(tape, params, xv, Mode::Train, rng, Rows::of(rows))?;
        let loss = self.loss_at(tape, logits, targets)?;
        // The spec's size, not `params.len()`: constant for a `const` spec, so a firmware keeps
        // one of the two backward passes (same bits either way).
        if params.len() >= 1024 {
            // = zero_grad + backward, bit for bit: the layers write their weight gradients (at
            // batch 1 an outer product, one pass) instead of a pass that zeroes the buffer and
            // adds to it. A tiny net is cheaper with the one `memset` of `zero_grad`. Only the
            // backward of this spec's ops either way.
            tape.backward_overwrite_ops(loss, params, self.ops(rows), true)?;
        } else {
            params.zero_grad();
            tape.backward_ops(loss, params, self.ops(rows), true)?;
        }
        tape.scalar_at(loss)
    }

    /// Eval-mode logits of `x` on a reset tape, recorded with gradients off (read them with
    /// [`Tape::value`]).
    pub fn logits(&self, tape: &mut Tape, params: &Params, x: &[f32]) -> Result<Var> {
        let y = self.logits_at(tape, params, x)?;
        Ok(tape.var(y))
    }

    /// [`logits`](Self::logits) as the node's index (for the core's own readers).
    fn logits_at(&self, tape: &mut Tape, params: &Params, x: &[f32]) -> Result<NodeIndex> {
        tape.reset();
        let rows = self.rows(x)?;
        let was = tape.grad_enabled();
        tape.set_grad_enabled(false);
        let out = tape.input_at(x, Shape::new(rows, self.inputs())).and_then(|xv| {
            self.validate()?;
            self.layers_valid(tape, params, xv, Mode::Eval, &mut NoDraws, Rows::of(rows))
        });
        tape.set_grad_enabled(was);
        out
    }

    /// Eval-mode loss of `x` against `targets` (as the book's `Trainer` logs it: after the
    /// update, with `train_flg=False`), without backward. Resets the tape before and after; needs
    /// [`eval_tape_floats`](Self::eval_tape_floats)` + `[`loss_tape_floats`](Self::loss_tape_floats).
    pub fn eval_loss(&self, tape: &mut Tape, params: &Params, x: &[f32], targets: Targets) -> Result<f32> {
        let was = tape.grad_enabled();
        let out = self.logits_at(tape, params, x).and_then(|y| {
            tape.set_grad_enabled(false);
            let l = self.loss_at(tape, y, targets)?;
            tape.scalar_at(l)
        });
        tape.set_grad_enabled(was);
        tape.reset();
        out
    }

    /// Predicted class (arg-max of the eval-mode logits; the first maximum, or the first NaN as
    /// numpy's `argmax` does) of each row of `x`, written to `out` (one per row). Resets the tape.
    pub fn predict(&self, tape: &mut Tape, params: &Params, x: &[f32], out: &mut [u32]) -> Result<()> {
        let logits = self.logits_at(tape, params, x)?;
        let shape = tape.node_at(logits)?.shape;
        if out.len() != shape.rows {
            tape.reset();
            return Err(Error::Shape {
                op: "predict output",
                expected: Shape::new(shape.rows, 1),
                found: Shape::new(out.len(), 1),
            });
        }
        for (o, row) in out.iter_mut().zip(tape.value_at(logits)?.chunks_exact(shape.cols.max(1))) {
            *o = argmax(row);
        }
        tape.reset();
        Ok(())
    }

    /// Number of rows of `x` whose predicted class equals the label, evaluating `chunk` rows at
    /// a time (the tape must hold [`eval_tape_floats`](Self::eval_tape_floats)`(chunk)`). Resets the tape.
    pub fn correct(
        &self,
        tape: &mut Tape,
        params: &Params,
        x: &[f32],
        labels: &[u32],
        chunk: usize,
    ) -> Result<usize> {
        let rows = self.rows(x)?;
        if labels.len() != rows {
            return Err(Error::Shape {
                op: "labels",
                expected: Shape::new(rows, 1),
                found: Shape::new(labels.len(), 1),
            });
        }
        if chunk == 0 {
            return Err(Error::InvalidArgument { what: "evaluation chunk rows", value: 0.0 });
        }
        let i = self.inputs();
        let mut hits = 0;
        for (xs, ls) in x.chunks(chunk.saturating_mul(i)).zip(labels.chunks(chunk)) {
            let logits = self.logits_at(tape, params, xs)?;
            let cols = tape.node_at(logits)?.shape.cols;
            for (row, &l) in tape.value_at(logits)?.chunks_exact(cols.max(1)).zip(ls) {
                hits += usize::from(argmax(row) == l);
            }
        }
        tape.reset();
        Ok(hits)
    }
}

/// The error of a layer index without handles. Cold and out of line: in a firmware's step the
/// branch to it must not look likely, or LLVM treats the whole training loop as cold and stops
/// inlining its step.
#[cold]
#[inline(never)]
fn no_layer(l: usize) -> Error {
    Error::InvalidHandle { what: "MLP layer", index: l }
}

fn argmax(row: &[f32]) -> u32 {
    let (mut best, mut max) = (0, f32::NEG_INFINITY);
    for (j, &v) in row.iter().enumerate() {
        if v.is_nan() {
            return j as u32;
        }
        if v > max || j == 0 {
            (best, max) = (j, v);
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Storage;
    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro128PlusPlus;

    #[test]
    fn layout_handles_follow_the_allocation_order() {
        let spec = MlpSpec::new(&[4, 5, 3, 2]).with_batch_norm(BatchNormConfig::BOOK);
        let mut s = Storage::new();
        let (_, mut params) = s.split();
        spec.alloc(&mut params).unwrap();
        assert_eq!(params.tensor_count(), spec.param_tensors());
        assert_eq!(params.len(), spec.param_len());
        assert_eq!(params.entry(spec.weight(2).unwrap()).unwrap().shape, Shape::new(3, 2));
        // Out-of-range layers have no handles (no panic, no wrapped index).
        for l in [3, 70000, usize::MAX / 4, usize::MAX] {
            assert_eq!((spec.weight(l), spec.bias(l)), (None, None));
            assert!(spec.batch_norm_layer(l).is_none());
        }
        let bn = spec.batch_norm_layer(1).unwrap();
        assert_eq!(params.entry(bn.running_var).unwrap().kind, ParamKind::RunningVar);
        assert_eq!(params.value(bn.gamma).unwrap(), &[1.0; 3]);
        assert!(spec.batch_norm_layer(2).is_none());
        assert!(matches!(spec.alloc(&mut params), Err(Error::InvalidArgument { .. })));
    }

    #[test]
    fn argmax_first_max_and_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(argmax(&[1.0, f32::NAN, 5.0]), 1);
        assert_eq!(argmax(&[f32::NEG_INFINITY; 3]), 0);
    }

    #[test]
    fn invalid_specs_are_refused() {
        let mut s = Storage::new();
        let (_, mut params) = s.split();
        for spec in [
            MlpSpec::new(&[3]),
            MlpSpec::new(&[3, 0, 2]),
            MlpSpec::new(&[3, 2]).with_dropout(Dropout::inverted(1.0)),
        ] {
            assert!(spec.alloc(&mut params).is_err());
        }
        assert_eq!(params.tensor_count(), 0);
    }

    #[test]
    fn eval_leaves_running_stats_and_train_moves_them() {
        let spec =
            MlpSpec::new(&[3, 4, 2]).with_batch_norm(BatchNormConfig::BOOK).with_dropout(Dropout::book(0.3));
        let mut s = Storage::new();
        let (mut tape, mut params) = s.split();
        let mut rng = Xoshiro128PlusPlus::seed_from_u64(3);
        spec.alloc(&mut params).unwrap();
        spec.init(&mut params, &mut rng).unwrap();
        let x = [0.5, -1.0, 2.0, 1.5, 0.0, -0.5];
        let bn = spec.batch_norm_layer(0).unwrap();
        let mut out = [0u32; 2];
        spec.predict(&mut tape, &params, &x, &mut out).unwrap();
        assert_eq!(params.value(bn.running_mean).unwrap(), &[0.0; 4]);
        spec.gradient(&mut tape, &mut params, &x, Targets::Labels(&[0, 1]), &mut rng).unwrap();
        assert!(params.value(bn.running_mean).unwrap().iter().any(|&v| v != 0.0));
        assert_eq!(spec.correct(&mut tape, &params, &x, &[out[0], out[1]], 1).unwrap(), 2);
    }

    #[test]
    fn gradcheck_whole_network_with_batch_norm_and_dropout() {
        use crate::gradcheck::{GradcheckConfig, gradcheck};
        for spec in [
            MlpSpec::new(&[3, 5, 4, 3])
                .with_activation(Activation::Tanh)
                .with_batch_norm(BatchNormConfig::BOOK)
                .with_dropout(Dropout::inverted(0.3)),
            MlpSpec::new(&[3, 4, 2])
                .with_activation(Activation::Sigmoid)
                .with_dropout(Dropout::book(0.4))
                .with_loss(Loss::Mse),
        ] {
            let mut s = Storage::new();
            let (mut tape, mut params) = s.split();
            let mut rng = Xoshiro128PlusPlus::seed_from_u64(1);
            spec.alloc(&mut params).unwrap();
            spec.init(&mut params, &mut rng).unwrap();
            let x = crate::testutil::random_values(6 * 3, 0.0, 21);
            let targets = [0.5f32; 6 * 3];
            let t = match spec.loss {
                Loss::Mse => Targets::Values(&targets[..6 * spec.outputs()]),
                _ => Targets::Labels(&[0, 2, 1, 1, 0, 2]),
            };
            let r = gradcheck(&mut tape, &mut params, GradcheckConfig::default(), |tape, p| {
                // Same seed every evaluation: the same dropout mask.
                let mut rng = Xoshiro128PlusPlus::seed_from_u64(9);
                let xv = tape.input(&x, Shape::new(6, 3))?;
                let y = spec.forward_no_update(tape, p, xv, Mode::Train, &mut rng)?;
                spec.loss(tape, y, t)
            })
            .unwrap();
            std::eprintln!(
                "gradcheck MLP {:?}: worst rel error {:.2e} over {}",
                spec.widths,
                r.worst_rel_error,
                r.checked
            );
            assert!(r.worst_rel_error < 1e-2, "{r:?}");
        }
    }

    #[test]
    fn wrong_targets_and_inputs_are_errors() {
        let spec = MlpSpec::new(&[2, 3, 2]);
        let mut s = Storage::new();
        let (mut tape, mut params) = s.split();
        let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
        spec.alloc(&mut params).unwrap();
        let x = [0.5, -0.5, 1.0, 0.0];
        let e = spec.gradient(&mut tape, &mut params, &x, Targets::Values(&[0.0; 4]), &mut rng);
        assert!(matches!(e, Err(Error::InvalidArgument { .. })));
        let e = spec.gradient(&mut tape, &mut params, &x[..3], Targets::Labels(&[0]), &mut rng);
        assert!(matches!(e, Err(Error::Shape { op: "MLP input", .. })));
        let e = spec.gradient(&mut tape, &mut params, &x, Targets::Labels(&[0, 2]), &mut rng);
        assert!(matches!(e, Err(Error::Label { row: 1, label: 2, classes: 2 })));
        let mse = spec.with_loss(Loss::Mse);
        let e = mse.gradient(&mut tape, &mut params, &x, Targets::Values(&[0.0; 3]), &mut rng);
        assert!(matches!(e, Err(Error::Shape { .. })));
        assert!(mse.gradient(&mut tape, &mut params, &x, Targets::Values(&[0.0; 4]), &mut rng).is_ok());
        let mut out = [0u32; 3];
        assert!(matches!(spec.predict(&mut tape, &params, &x, &mut out), Err(Error::Shape { .. })));
        assert!(matches!(
            spec.correct(&mut tape, &params, &x, &[0, 1], 0),
            Err(Error::InvalidArgument { .. })
        ));
    }
}
