//! The memory planner: every buffer a training step needs, counted from the layer list before
//! training starts, all `const fn`: [`Model::param_len`], [`Model::param_tensors`],
//! [`Model::state_len`], [`Model::tape_floats`], [`Model::tape_nodes`] (and the eval-mode pair),
//! or everything at once as a [`Plan`] with byte counts. The numbers are exact: a training step
//! with exactly that storage succeeds and with one float (or node) less it returns
//! [`Error::Capacity`](crate::Error::Capacity). A count that does not fit in `usize` reads
//! `usize::MAX`, never a wrapped number; [`Model::try_plan`] (and, for the parameters,
//! [`Model::validate`]) refuse it as [`Error::Overflow`], in a `const` too. A firmware checks its
//! static buffers at compile time:
//!
//! ```
//! use staticgrad::model::{Layer, Model};
//! use staticgrad::optim::Optimizer;
//! use staticgrad::{BatchNormConfig, Dropout};
//!
//! const NET: Model = Model::new(196, &[
//!     Layer::dense(32),
//!     Layer::batch_norm(BatchNormConfig::BOOK),
//!     Layer::relu(),
//!     Layer::dropout(Dropout::inverted(0.2)),
//!     Layer::dense(10),
//! ]);
//! const BATCH: usize = 8;
//! const OPT: Optimizer = Optimizer::adam();
//! const PARAMS: usize = 7000;
//! const STATE: usize = 14000;
//! const FLOATS: usize = 12000;
//! const NODES: usize = 16;
//! const _: () = assert!(PARAMS >= NET.param_len());
//! const _: () = assert!(STATE >= NET.state_len(&OPT));
//! const _: () = assert!(FLOATS >= NET.tape_floats(BATCH));
//! const _: () = assert!(NODES >= NET.tape_nodes());
//! let plan = NET.plan(BATCH, &OPT);
//! assert_eq!(plan.param_floats, 196 * 32 + 32 + 4 * 32 + 32 * 10 + 10);
//! // Adam: the state's header (step counter, β₁ᵗ, β₂ᵗ), then two moments per parameter.
//! assert_eq!(plan.state_floats, staticgrad::optim::HEADER_LEN + 2 * plan.param_floats);
//! assert!(plan.total_bytes() < 150_000);
//! ```

use super::layer::Dims;
use super::{Layer, LayerKind, Layers, Model, dims_after};
use crate::error::{Error, Result};
use crate::ops::batchnorm::BatchNorm;
use crate::ops::dropout::Dropout;
use crate::ops::window::{GEOMETRY_FLOATS, Pool2dConfig};
use crate::optim::Optimizer;
use crate::params::ParamEntry;
use crate::tape::{Mode, Node};

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

/// Byte counts of a [`Plan`]. Exact for a plan from [`Model::try_plan`] (which refuses one
/// whose bytes overflow); a plan built by hand, or by [`Model::plan`] for a model that overflows,
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

    #[cfg_attr(not(debug_assertions), inline(always))]
    const fn checked_param_bytes(&self) -> Option<usize> {
        let table = checked_mul(self.param_tensors, size_of::<ParamEntry>());
        checked_add(checked_mul(self.param_floats, F32), table)
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    const fn checked_tape_bytes(&self) -> Option<usize> {
        let nodes = checked_mul(self.tape_nodes, size_of::<Node>());
        checked_add(checked_mul(self.tape_floats, F32), nodes)
    }

    /// [`total_bytes`](Self::total_bytes), `None` if it does not fit in `usize`.
    #[cfg_attr(not(debug_assertions), inline(always))]
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

// The planner's arithmetic: saturating, so a count is exact or `usize::MAX`, never wrapped.
const fn add(a: usize, b: usize) -> usize {
    a.saturating_add(b)
}

const fn mul(a: usize, b: usize) -> usize {
    a.saturating_mul(b)
}

/// A count that fits in `usize`: not saturated (a buffer of `usize::MAX` elements cannot exist).
#[cfg_attr(not(debug_assertions), inline(always))]
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

const fn invalid(what: &'static str, value: f32) -> Error {
    Error::InvalidArgument { what, value }
}

/// What one walk over the layers adds up, for a batch of `batch` rows in one mode: every count
/// the planner reports, and the first rule of the list it breaks. Each layer kind's cost is here
/// once ([`add`](Self::add)); a model only enumerates its layers into it ([`Model::tally`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tally {
    /// Parameter floats and tensors.
    pub(crate) params: usize,
    pub(crate) tensors: usize,
    /// Tape values (with op scratch), value gradients and nodes of the forward.
    values: usize,
    grads: usize,
    pub(crate) nodes: usize,
    /// The widest parameter row (the fused update's gradient scratch).
    pub(crate) widest: usize,
    /// Dense layers, convolutions, and batch norms since the last dense layer.
    pub(crate) dense: usize,
    pub(crate) convs: usize,
    batch_norms: usize,
    /// Parameter floats of frozen layers (read-only, not in RAM), and the layers of the frozen
    /// base so far (every layer below the first trainable one).
    pub(crate) frozen_params: usize,
    pub(crate) frozen_layers: usize,
    /// In the frozen base; past a trainable layer.
    base: bool,
    trainable: bool,
    /// The shape after the layers so far.
    pub(crate) dims: Dims,
    /// Layers added so far.
    layers: usize,
    /// The first rule of the list broken, if any.
    pub(crate) invalid: Option<Error>,
    batch: usize,
    train: bool,
}

impl Tally {
    /// Before the first layer: the input batch (values only, one node).
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) const fn start(input: Dims, batch: usize, mode: Mode) -> Tally {
        Tally {
            params: 0,
            tensors: 0,
            values: mul(batch, input.features()),
            grads: 0,
            nodes: 1,
            widest: 0,
            dense: 0,
            convs: 0,
            batch_norms: 0,
            frozen_params: 0,
            frozen_layers: 0,
            base: false,
            trainable: false,
            dims: input,
            layers: 0,
            invalid: None,
            batch,
            train: matches!(mode, Mode::Train),
        }
    }

    /// The tally after `layer` too: its parameters, its op's value, scratch and gradient (every
    /// value after the input is downstream of a parameter: the list starts with a dense or
    /// convolution layer).
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) const fn add(mut self, layer: Layer) -> Tally {
        let before = self.dims;
        let features = before.features();
        self.dims = dims_after(layer, before);
        let act = mul(self.batch, self.dims.features()); // the layer's output
        let mut scratch = 0;
        let mut records = true;
        // The widest parameter row: a dense layer's rows and bias, and a batch norm's tensors,
        // are one output wide; a convolution's filter rows `C·kh·kw`, its bias `out`.
        let mut row = self.dims.features();
        // A frozen layer (or a layer without parameters in the frozen base) runs forward-only in
        // eval mode: values only, its parameters counted apart (`frozen_params`).
        let has_params = layer.tensors() > 0;
        let frozen = if has_params { layer.is_frozen() } else { self.base };
        let params_before = self.params;
        let frozen_rule = if layer.is_frozen() && self.trainable {
            Err(invalid(
                "frozen layer above a trainable one (frozen layers are the lowest)",
                self.layers as f32,
            ))
        } else if has_params
            && !frozen
            && self.base
            && !matches!(layer.kind(), LayerKind::Dense { .. } | LayerKind::Conv2d { .. })
        {
            Err(invalid(
                "first trainable layer above frozen ones (must be dense or conv2d)",
                self.layers as f32,
            ))
        } else {
            Ok(())
        };
        if has_params {
            self.base = frozen;
            self.trainable = self.trainable || !frozen;
        }
        if frozen {
            self.frozen_layers = self.layers + 1;
        }
        let rule = match layer.kind() {
            LayerKind::Dense { units } => {
                self.params = add(self.params, add(mul(features, units), units));
                self.dense += 1;
                self.batch_norms = 0;
                if units == 0 { Err(invalid("dense layer units", 0.0)) } else { Ok(()) }
            }
            LayerKind::Conv2d { out_channels, config } => {
                let k = mul(before.channels, mul(config.kernel_h, config.kernel_w));
                self.params = add(self.params, add(mul(out_channels, k), out_channels));
                row = if k > out_channels { k } else { out_channels };
                scratch = GEOMETRY_FLOATS;
                self.convs += 1;
                if !before.image {
                    Err(NOT_IMAGE)
                } else if out_channels == 0 {
                    Err(invalid("conv2d output channels", 0.0))
                } else {
                    match config.output(before.shape(), out_channels) {
                        Ok(_) => Ok(()),
                        Err(e) => Err(e),
                    }
                }
            }
            _ if self.layers == 0 => Err(invalid("model layers (the first must be dense or conv2d)", 0.0)),
            LayerKind::Activation(_) => Ok(()),
            LayerKind::BatchNorm(c) => {
                self.params = add(self.params, BatchNorm::param_len(features));
                scratch = BatchNorm::scratch_len(features);
                self.batch_norms += 1;
                if before.image || self.dense == 0 {
                    Err(invalid(
                        "batch norm (only after a dense layer, on flat features)",
                        self.layers as f32,
                    ))
                } else if self.batch_norms > 1 {
                    Err(invalid("batch norm (at most one between two dense layers)", self.layers as f32))
                } else {
                    c.validate()
                }
            }
            LayerKind::Dropout(d) => {
                if self.train && !frozen {
                    scratch = Dropout::scratch_len(act);
                } else {
                    records = d.eval_nodes() == 1; // in eval mode only the book form's scale
                }
                d.validate()
            }
            LayerKind::MaxPool2d(config) | LayerKind::AvgPool2d(config) => {
                scratch = GEOMETRY_FLOATS;
                if !before.image {
                    Err(NOT_IMAGE)
                } else {
                    match config.output(before.shape()) {
                        Ok(_) => Ok(()),
                        Err(e) => Err(e),
                    }
                }
            }
            LayerKind::GlobalAvgPool2d => {
                scratch = GEOMETRY_FLOATS;
                if before.image {
                    match Pool2dConfig::global(before.shape()).output(before.shape()) {
                        Ok(_) => Ok(()),
                        Err(e) => Err(e),
                    }
                } else {
                    Err(NOT_IMAGE)
                }
            }
            LayerKind::Flatten => {
                records = false; // moves no data (see `ops/window.rs`)
                Ok(())
            }
        };
        if let (Err(e), None) = (rule, self.invalid) {
            self.invalid = Some(e);
        }
        if let (Err(e), None) = (frozen_rule, self.invalid) {
            self.invalid = Some(e);
        }
        if frozen {
            // The arm above added this layer's parameters to the trainable count: move them.
            self.frozen_params = add(self.frozen_params, self.params - params_before);
            self.params = params_before;
        }
        if has_params {
            self.tensors = add(self.tensors, layer.tensors());
            if row > self.widest && !frozen {
                self.widest = row;
            }
        }
        if records {
            self.values = add(self.values, add(act, scratch));
            if !frozen {
                self.grads = add(self.grads, act);
            }
            self.nodes = add(self.nodes, 1);
        }
        self.layers += 1;
        self
    }
}

/// An image layer after flat features.
const NOT_IMAGE: Error =
    invalid("image layer on flat features (needs Model::image, before any dense or flatten)", 0.0);

impl Model<'_> {
    // Counts are computed with saturating arithmetic, which on these sums and products of
    // non-negative numbers gives exactly `min(true count, usize::MAX)`: a count is exact, or
    // `usize::MAX` if it does not fit — never a wrapped number (and a `const` array of
    // `usize::MAX` floats fails to compile). `try_plan` and `validate` turn a count of
    // `usize::MAX` (or bytes past it) into `Err(Error::Overflow)`. Every count is one walk over
    // the layers, each kind adding what its op records.

    /// One walk over the layers with `batch` rows in `mode`: everything the planner counts.
    /// The list form walks its slice; the MLP form enumerates its blocks from the widths, so
    /// that with a `const` spec the loop is over constants and folds away.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) const fn tally(&self, batch: usize, mode: Mode) -> Tally {
        let mut t = Tally::start(self.input, batch, mode);
        match self.layers {
            Layers::List(list) => {
                let mut i = 0;
                while i < list.len() {
                    t = t.add(list[i]);
                    i += 1;
                }
            }
            Layers::Mlp(m) => t = m.tally(t),
        }
        t
    }

    /// Parameter tensors [`alloc`](Self::alloc) creates (rows of the parameter table);
    /// `usize::MAX` if that does not fit (see [`try_plan`](Self::try_plan)).
    // folds to a constant for a `const` model
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub const fn param_tensors(&self) -> usize {
        self.tally(0, Mode::Train).tensors
    }

    /// Parameter floats in RAM (values; the gradient buffer is as long), running statistics
    /// included — all of them but those of [frozen](Layer::frozen) layers
    /// ([`frozen_len`](Self::frozen_len)); `usize::MAX` if that does not fit (a model
    /// [`validate`](Self::validate) refuses).
    // folds to a constant for a `const` model
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub const fn param_len(&self) -> usize {
        self.tally(0, Mode::Train).params
    }

    /// Parameter floats of the [frozen](Layer::frozen) layers: read-only, from the caller's
    /// slice ([`Memory::frozen`](crate::Memory::frozen), a `static` in flash), not counted in
    /// [`param_len`](Self::param_len) (0 for a model without frozen layers; `usize::MAX` if it
    /// does not fit).
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub const fn frozen_len(&self) -> usize {
        self.tally(0, Mode::Train).frozen_params
    }

    /// Layers of the frozen base: every layer below the first trainable dense or convolution
    /// layer, when the layers below it are [frozen](Layer::frozen) (0 for a model without frozen
    /// layers). A training step runs them forward-only, in eval mode, with no gradient.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub const fn frozen_layers(&self) -> usize {
        if let Layers::Mlp(_) = self.layers {
            return 0; // an MLP spec has no frozen layer
        }
        self.tally(0, Mode::Train).frozen_layers
    }

    /// Optimizer state floats for `optimizer` over this model's parameters (`usize::MAX` if
    /// that does not fit).
    // folds to a constant for a `const` model and optimizer
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub const fn state_len(&self, optimizer: &Optimizer) -> usize {
        optimizer.state_len(self.param_len())
    }

    /// Tape floats of one forward + loss + backward in [`Mode::Train`] with `batch` rows: the
    /// values of every op (and its scratch) plus a gradient for each value downstream of a
    /// parameter (the input batch and op scratch get none). `usize::MAX` if that does not fit
    /// (a batch [`try_plan`](Self::try_plan) refuses).
    // constant for a `const` model inside a firmware's step
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub const fn tape_floats(&self, batch: usize) -> usize {
        let (floats, _) = self.tape_use(batch, Mode::Train, true);
        floats
    }

    /// Tape nodes of one training forward + loss.
    // constant for a `const` model inside a firmware's step
    #[cfg_attr(not(debug_assertions), inline(always))]
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
    // constant for a `const` model inside a firmware's step
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub const fn loss_tape_floats(&self, batch: usize) -> usize {
        add(1, mul(batch, self.outputs()))
    }

    /// Tape nodes of [`loss`](Self::loss): 1 for cross-entropy, 2 for MSE (target input + loss).
    // constant for a `const` model inside a firmware's step
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub const fn loss_tape_nodes(&self) -> usize {
        match self.loss {
            super::Loss::Mse => 2,
            _ => 1,
        }
    }

    /// (floats, nodes) of a forward over `batch` rows in `mode` (with the loss if `with_loss`),
    /// mirroring the forward walk and [`loss`](Self::loss) op by op. Eval passes run with
    /// gradients off.
    // constant for a `const` model inside a firmware's step
    #[cfg_attr(not(debug_assertions), inline(always))]
    const fn tape_use(&self, batch: usize, mode: Mode, with_loss: bool) -> (usize, usize) {
        let t = self.tally(batch, mode);
        let (mut v, mut g, mut nodes) = (t.values, t.grads, t.nodes);
        if with_loss {
            v = add(v, self.loss_tape_floats(batch));
            g = add(g, 1);
            nodes = add(nodes, self.loss_tape_nodes());
        }
        if !t.train {
            g = 0;
        }
        (add(v, g), nodes)
    }

    /// Gradient floats with the fused update ([`Params::fused`](crate::Params::fused)'s row
    /// scratch): the widest parameter row — the most units of a dense layer, or a
    /// convolution's filter row `C·kh·kw` (or its output channels, for the bias).
    pub const fn fused_grad_floats(&self) -> usize {
        self.tally(0, Mode::Train).widest
    }

    /// Everything a training step with the fused update
    /// ([`Trainer::fused`](crate::train::Trainer::fused)) needs: as [`plan`](Self::plan)
    /// but with [`fused_grad_floats`](Self::fused_grad_floats) instead of a gradient buffer.
    ///
    /// ```
    /// use staticgrad::model::{MlpSpec, Model, Plan};
    /// use staticgrad::optim::Optimizer;
    /// const NET: Model = MlpSpec::new(&[196, 32, 10]).model();
    /// const PLAN: Plan = NET.plan_fused(1, &Optimizer::sgd());
    /// const _: () = assert!(PLAN.grad_floats == 32 && NET.plan(1, &Optimizer::sgd()).grad_floats == 6634);
    /// ```
    pub const fn plan_fused(&self, batch: usize, optimizer: &Optimizer) -> Plan {
        Plan { grad_floats: self.fused_grad_floats(), ..self.plan(batch, optimizer) }
    }

    /// What **inference from read-only weights** needs for batches of `batch` rows
    /// ([`Params::read_only`](crate::Params::read_only) and
    /// [`alloc_read_only`](Self::alloc_read_only), then [`predict`](Self::predict),
    /// [`correct`](Self::correct) or [`logits`](Self::logits)): no parameter, gradient or state
    /// floats in RAM — the table's rows and an evaluation's tape only. The weights themselves are
    /// `param_len() + frozen_len()` read-only floats (flash on a device).
    ///
    /// ```
    /// use staticgrad::model::{MlpSpec, Model, Plan};
    /// const NET: Model = MlpSpec::new(&[196, 32, 10]).model();
    /// const RAM: Plan = NET.plan_inference(1);
    /// assert_eq!((RAM.param_floats, RAM.grad_floats, RAM.state_floats), (0, 0, 0));
    /// assert_eq!(RAM.tape_floats, 196 + 32 + 32 + 10); // input, affine, relu, affine
    /// assert!(RAM.total_bytes() < 2048); // with the table and the node records
    /// ```
    pub const fn plan_inference(&self, batch: usize) -> Plan {
        Plan {
            param_floats: 0,
            param_tensors: self.param_tensors(),
            grad_floats: 0,
            state_floats: 0,
            tape_floats: self.eval_tape_floats(batch),
            tape_nodes: self.eval_tape_nodes(),
        }
    }

    /// Everything a training step with `batch` rows and `optimizer` needs. A count that
    /// overflows `usize` reads `usize::MAX` (so a `const` array of it fails to compile); call
    /// [`try_plan`](Self::try_plan) for an `Err` instead.
    // folds to a constant for a `const` model (validate calls it, via try_plan)
    #[cfg_attr(not(debug_assertions), inline(always))]
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
    /// it is `Ok`, every count of the model at this batch is exact, the eval-mode ones
    /// ([`eval_tape_floats`](Self::eval_tape_floats), …) included, and so are the plan's
    /// byte counts. A `const fn`:
    ///
    /// ```
    /// use staticgrad::model::{MlpSpec, Model};
    /// use staticgrad::optim::Optimizer;
    /// use staticgrad::Error;
    /// const NET: Model = MlpSpec::new(&[196, 32, 10]).model();
    /// const _: () = assert!(NET.try_plan(8, &Optimizer::adam()).is_ok());
    /// let huge = MlpSpec::new(&[usize::MAX / 2, usize::MAX / 2, 10]).model();
    /// assert!(matches!(huge.try_plan(1, &Optimizer::sgd()), Err(Error::Overflow { .. })));
    /// assert!(matches!(NET.try_plan(usize::MAX, &Optimizer::sgd()), Err(Error::Overflow { .. })));
    /// ```
    // folds to a constant for a `const` model (validate calls it)
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub const fn try_plan(&self, batch: usize, optimizer: &Optimizer) -> Result<Plan> {
        let plan = self.plan(batch, optimizer);
        // Saturated counts are `usize::MAX`: refuse them, naming the first.
        if fits(plan.param_floats).is_none() {
            return Err(overflow("model parameter floats", batch));
        }
        if fits(plan.param_tensors).is_none() {
            return Err(overflow("model parameter tensors", batch));
        }
        if fits(plan.state_floats).is_none() {
            return Err(overflow("optimizer state floats", batch));
        }
        if fits(plan.tape_floats).is_none() || fits(plan.tape_nodes).is_none() {
            return Err(overflow("model tape floats", batch));
        }
        if plan.checked_total_bytes().is_none() {
            return Err(overflow("model memory plan bytes", batch));
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

    /// Checks the model: at least one input feature; a layer list that starts with a dense
    /// layer, has dense layers of at least one unit, at most one batch norm between two dense
    /// layers, valid batch-norm and dropout settings; at most 65535 parameter tensors; and
    /// parameters whose count and bytes (values, gradients, table) fit in `usize`
    /// ([`Error::Overflow`] otherwise; the tape of a batch and an optimizer's state are
    /// [`try_plan`](Self::try_plan)'s to check). Anything else is [`Error::InvalidArgument`].
    /// A `const fn`, so a `const` model can be checked at compile time:
    ///
    /// ```
    /// use staticgrad::model::{Layer, MlpSpec, Model};
    /// use staticgrad::BatchNormConfig;
    /// const NET: Model = MlpSpec::new(&[196, 32, 10]).model();
    /// const _: () = assert!(NET.validate().is_ok());
    /// const HUGE: Model = MlpSpec::new(&[usize::MAX / 2, usize::MAX / 2, 10]).model();
    /// const _: () = assert!(HUGE.validate().is_err());
    /// const BN_FIRST: Model = Model::new(4, &[Layer::batch_norm(BatchNormConfig::BOOK), Layer::dense(2)]);
    /// const _: () = assert!(BN_FIRST.validate().is_err());
    /// ```
    // a `const` model's checks fold away (a firmware keeps none of them)
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub const fn validate(&self) -> Result<()> {
        if self.inputs() == 0 {
            return Err(invalid("model inputs (need at least one feature)", 0.0));
        }
        let t = self.tally(0, Mode::Train);
        if t.layers == 0 {
            return Err(invalid("model layers (need at least one dense layer)", 0.0));
        }
        if let Some(e) = t.invalid {
            return Err(e);
        }
        // The model's own sizes: parameter values and gradients, and the table (what a batch
        // and an optimizer add is `try_plan`'s). Cheap enough to fold away for a `const` model.
        let (params, tensors) = (t.params, t.tensors);
        let table = checked_mul(tensors, size_of::<ParamEntry>());
        if fits(params).is_none() {
            return Err(overflow("model parameter floats", 0));
        }
        if checked_add(checked_mul(params, 2 * F32), table).is_none() {
            return Err(overflow("model parameter bytes (values and gradients)", 0));
        }
        if tensors > u16::MAX as usize {
            return Err(invalid("model parameter tensors (at most 65535)", tensors as f32));
        }
        Ok(())
    }
}
