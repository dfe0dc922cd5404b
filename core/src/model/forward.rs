//! Running a [`Model`]: parameter layout and initialisation, the forward walk over the layers,
//! the loss, and the gradient of one batch. Each layer kind is one arm of [`Model::walk`]; the
//! planner ([`plan`](super::plan)) mirrors it op by op.

use super::direct;
use super::layer::Dims;
use super::{Activation, Example, Layer, LayerKind, Loss, Model, StepPath, Targets, no_layer};
use crate::error::{Error, Result};
use crate::kernels::Rows;
use crate::ops::batchnorm::BatchNorm;
use crate::ops::softmax_cross_entropy::BOOK_EPS;
use crate::params::{ParamId, ParamKind, Params};
use crate::shape::Shape;
use crate::tape::{Mode, NodeIndex, Op, OpSet, Tape, Var};
use rand_core::Rng;

impl Model<'_> {
    // ----- building -----------------------------------------------------------------------

    /// Allocates every parameter tensor in the walk's order into `params`, which must be empty
    /// (handles are computed from the layer list). Weights and biases start at 0, γ at 1, β and
    /// the running mean at 0, the running variance at the batch-norm config's start value; call
    /// [`init`](Self::init) to draw the weights. The tensors of [frozen](Layer::frozen) layers
    /// come first, read-only from the set's frozen slice ([`Params::alloc_frozen`]).
    pub fn alloc(&self, params: &mut Params) -> Result<()> {
        self.layout(params, false)
    }

    /// [`alloc`](Self::alloc) with **every** tensor frozen: for inference from read-only weights
    /// ([`Params::read_only`], a `static` in flash), `param_len() + frozen_len()` floats in the
    /// layout's order. RAM is then the table and an evaluation's tape
    /// ([`plan_inference`](Self::plan_inference)).
    pub fn alloc_read_only(&self, params: &mut Params) -> Result<()> {
        self.layout(params, true)
    }

    /// The layout of [`alloc`](Self::alloc) (`all_frozen`: of
    /// [`alloc_read_only`](Self::alloc_read_only)).
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn layout(&self, params: &mut Params, all_frozen: bool) -> Result<()> {
        self.validate()?;
        if params.tensor_count() != 0 {
            return Err(Error::InvalidArgument {
                what: "Model::alloc needs an empty Params; tensors already allocated",
                value: params.tensor_count() as f32,
            });
        }
        // Once per model, so a plain loop: flash, not speed, counts here. The image arms are
        // behind their op bits, so a model without them (every MLP firmware) compiles none.
        let (mut dims, ops, frozen_below) = (self.input, self.layer_ops(), self.frozen_layers());
        for i in 0..self.layer_count() {
            let Some(layer) = self.layer(i) else { break };
            // `frozen_below` is 0 for a `const` model without frozen layers: this folds away.
            let frozen = all_frozen || i < frozen_below;
            let put = |params: &mut Params, shape: Shape, kind: ParamKind| {
                if frozen { params.alloc_frozen(shape, kind) } else { params.alloc(shape, kind) }
            };
            match layer.kind() {
                LayerKind::Dense { units } => {
                    put(params, Shape::new(dims.features(), units), ParamKind::Weight)?;
                    put(params, Shape::row(units), ParamKind::Bias)?;
                    dims = Dims::flat(units);
                }
                LayerKind::BatchNorm(config) if ops & OpSet::BATCH_NORM != 0 => {
                    if frozen {
                        // Read-only: γ, β and the running statistics come from the frozen slice.
                        config.validate()?;
                        let shape = Shape::row(dims.features());
                        for kind in
                            [ParamKind::Gamma, ParamKind::Beta, ParamKind::RunningMean, ParamKind::RunningVar]
                        {
                            params.alloc_frozen(shape, kind)?;
                        }
                    } else {
                        BatchNorm::alloc(params, dims.features(), config)?;
                    }
                }
                LayerKind::Conv2d { out_channels, config } if ops & OpSet::CONV2D != 0 => {
                    put(params, config.weight_shape(dims.channels, out_channels)?, ParamKind::Weight)?;
                    put(params, Shape::row(out_channels), ParamKind::Bias)?;
                    dims = super::dims_after(layer, dims);
                }
                LayerKind::MaxPool2d(_) | LayerKind::AvgPool2d(_) | LayerKind::GlobalAvgPool2d
                    if ops & (OpSet::MAX_POOL2D | OpSet::AVG_POOL2D) != 0 =>
                {
                    dims = super::dims_after(layer, dims);
                }
                LayerKind::Flatten => dims = Dims::flat(dims.features()),
                _ => {}
            }
        }
        Ok(())
    }

    /// Draws every weight with the model's [`Init`](crate::Init) (layer by layer, in order, so
    /// a seed gives the same model everywhere), zeroes the biases and resets batch norm (γ = 1,
    /// β = 0, running statistics to their start values). A dense weight's fan-in is its inputs
    /// and its fan-out its units; a convolution's fan-in is `C·kh·kw` and its fan-out
    /// `out·kh·kw` (as PyTorch; [`Init::Normal`](crate::Init::Normal) ignores both, so the
    /// book's `weight_init_std = 0.01` is `Init::Normal { std: 0.01 }`). [Frozen](Layer::frozen)
    /// layers are read-only and skipped (they draw nothing).
    pub fn init(&self, params: &mut Params, rng: &mut impl Rng) -> Result<()> {
        self.check_layout(params)?;
        let (mut tensor, mut i, frozen_below) = (0usize, 0usize, self.frozen_layers());
        for_each_layer!(self, |layer| {
            // Tensor rows as `alloc` made them (a layout `check_layout` has just accepted).
            let id = |k: usize| ParamId((tensor + k) as u16);
            let kind = if i < frozen_below { LayerKind::Flatten } else { layer.kind() }; // frozen: nothing
            i += 1;
            match kind {
                LayerKind::Dense { .. } => {
                    self.init.fill_param(params, id(0), rng)?;
                    params.value_mut(id(1))?.fill(0.0);
                }
                LayerKind::Conv2d { out_channels, config } => {
                    let w = params.entry(id(0))?.shape; // `out × (C·kh·kw)`, checked by `check_layout`
                    let fan_out =
                        out_channels.saturating_mul(config.kernel_h.saturating_mul(config.kernel_w));
                    self.init.fill(params.value_mut(id(0))?, w.cols, fan_out, rng)?;
                    params.value_mut(id(1))?.fill(0.0);
                }
                LayerKind::BatchNorm(config) => {
                    let bn = BatchNorm {
                        gamma: id(0),
                        beta: id(1),
                        running_mean: id(2),
                        running_var: id(3),
                        config,
                    };
                    bn.reset(params)?;
                }
                _ => {} // no parameters
            }
            tensor += layer.tensors();
        });
        Ok(())
    }

    /// Weight and bias of the `l`-th dense layer, or [`Error::InvalidHandle`] naming it.
    // constant for a `const` model inside a firmware's step
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn weight_and_bias(&self, l: usize) -> Result<(ParamId, ParamId)> {
        match (self.weight(l), self.bias(l)) {
            (Some(w), Some(b)) => Ok((w, b)),
            _ => Err(no_layer(l)),
        }
    }

    /// Checks that `params` holds this model's layout (tensor count, dense shapes and kinds).
    // constant for a `const` model inside a firmware's step
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn check_layout(&self, params: &Params) -> Result<()> {
        if params.tensor_count() != self.param_tensors() {
            return Err(Error::InvalidArgument {
                what: "parameter tensors do not match the model",
                value: params.tensor_count() as f32,
            });
        }
        for l in 0..self.dense_layers() {
            let Some(d) = self.dense_at(l) else { return Err(no_layer(l)) };
            let (i, o) = (d.inputs, d.units);
            let (w, b) = self.weight_and_bias(l)?;
            let (w, b) = (params.entry(w)?, params.entry(b)?);
            if w.shape != Shape::new(i, o) || w.kind != ParamKind::Weight {
                return Err(Error::Shape { op: "model weight", expected: Shape::new(i, o), found: w.shape });
            }
            if b.shape != Shape::row(o) || b.kind != ParamKind::Bias {
                return Err(Error::Shape { op: "model bias", expected: Shape::row(o), found: b.shape });
            }
        }
        if self.layer_ops() & OpSet::CONV2D != 0 {
            let mut l = 0;
            while let Some(c) = self.conv_at(l) {
                let expected = c.config.weight_shape(c.image.channels, c.out_channels)?;
                let (w, b) = match (Self::id(c.tensor), Self::id(c.tensor.saturating_add(1))) {
                    (Some(w), Some(b)) => (params.entry(w)?, params.entry(b)?),
                    _ => return Err(no_layer(l)),
                };
                if w.shape != expected || w.kind != ParamKind::Weight {
                    return Err(Error::Shape { op: "model conv2d weight", expected, found: w.shape });
                }
                let row = Shape::row(c.out_channels);
                if b.shape != row || b.kind != ParamKind::Bias {
                    return Err(Error::Shape { op: "model conv2d bias", expected: row, found: b.shape });
                }
                l += 1;
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
        tape: &mut Tape<'_>,
        params: &mut Params,
        x: Var,
        mode: Mode,
        rng: &mut impl Rng,
    ) -> Result<Var> {
        self.validate()?;
        let y = self.forward_valid(tape, params, tape.check(x)?, mode, rng, Rows::Any)?;
        Ok(tape.var(y))
    }

    /// [`forward`](Self::forward) of a model already [validated](Self::validate), with the
    /// kernels' [`Rows`] hint for the batch of `x` (a node the core just recorded).
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn forward_valid(
        &self,
        tape: &mut Tape<'_>,
        params: &mut Params,
        x: NodeIndex,
        mode: Mode,
        rng: &mut impl Rng,
        rows: Rows,
    ) -> Result<NodeIndex> {
        let start = tape.nodes_used();
        let y = self.walk(tape, params, x, mode, rng, rows)?;
        if mode == Mode::Train && self.layer_ops() & OpSet::BATCH_NORM != 0 {
            // After the walk, which reads the parameters only: the batch statistics are on the
            // tape, in the batch-norm nodes just recorded.
            for (i, node) in tape.nodes().iter().enumerate().skip(start) {
                if let Op::BatchNorm { gamma, .. } = node.op() {
                    if let Some(bn) = self.batch_norm_of(gamma) {
                        bn.update_running_at(tape, NodeIndex(i as u32), params)?; // a recorded index
                    }
                }
            }
        }
        Ok(y)
    }

    /// [`forward`](Self::forward) without moving the running statistics (only `&Params`): for
    /// evaluation with shared parameters and for gradient checks of the whole network.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn forward_no_update(
        &self,
        tape: &mut Tape<'_>,
        params: &Params,
        x: Var,
        mode: Mode,
        rng: &mut impl Rng,
    ) -> Result<Var> {
        self.validate()?;
        let y = self.walk(tape, params, tape.check(x)?, mode, rng, Rows::Any)?;
        Ok(tape.var(y))
    }

    /// The walk: each layer records its op on `x`'s node, in list order (model already
    /// validated); `rows` is the kernels' hint for the batch of `x`. A new layer kind is a new
    /// arm here, in the planner's `tape_use` and in `alloc`.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn walk(
        &self,
        tape: &mut Tape<'_>,
        params: &Params,
        x: NodeIndex,
        mode: Mode,
        rng: &mut impl Rng,
        rows: Rows,
    ) -> Result<NodeIndex> {
        // The kinds this model holds: with a `const` model a constant, so the arms of the others
        // (and their ops' code) are left out.
        let ops = self.layer_ops();
        // The shape of `h`: only the image arms read it (a dense layer reads the row length).
        let (mut h, mut tensor, mut dims) = (x, 0usize, self.input);
        // The frozen base (0 layers for a `const` model without: all of this folds away) runs
        // forward-only in eval mode, recording no gradient, so backward stops above it.
        let (frozen_below, grad, mut i) = (self.frozen_layers(), tape.grad_enabled(), 0usize);
        if frozen_below > 0 {
            tape.set_grad_enabled(false);
        }
        for_each_layer!(self, |layer| {
            let mode = if i < frozen_below { Mode::Eval } else { mode };
            if i == frozen_below && i > 0 {
                tape.set_grad_enabled(grad);
            }
            i += 1;
            // At most 65535 tensors (validated): every table row has a handle.
            let id = |k: usize| ParamId((tensor + k) as u16);
            let image = dims.shape();
            dims = match layer.kind() {
                LayerKind::Dense { units } => Dims::flat(units),
                LayerKind::Flatten => Dims::flat(dims.features()),
                LayerKind::Conv2d { .. } | LayerKind::MaxPool2d(_) | LayerKind::AvgPool2d(_)
                    if ops & (OpSet::CONV2D | OpSet::MAX_POOL2D | OpSet::AVG_POOL2D) != 0 =>
                {
                    super::dims_after(layer, dims)
                }
                LayerKind::GlobalAvgPool2d if ops & OpSet::AVG_POOL2D != 0 => super::dims_after(layer, dims),
                _ => dims,
            };
            h = match layer.kind() {
                LayerKind::Dense { .. } => tape.affine_rows(h, params, id(0), id(1), rows)?,
                LayerKind::Conv2d { config, .. } if ops & OpSet::CONV2D != 0 => {
                    tape.conv2d_at(h, params, id(0), id(1), image, config)?
                }
                LayerKind::MaxPool2d(config) if ops & OpSet::MAX_POOL2D != 0 => {
                    tape.max_pool2d_at(h, image, config)?
                }
                LayerKind::AvgPool2d(config) if ops & OpSet::AVG_POOL2D != 0 => {
                    tape.avg_pool2d_at(h, image, config)?
                }
                LayerKind::GlobalAvgPool2d if ops & OpSet::AVG_POOL2D != 0 => {
                    tape.avg_pool2d_at(h, image, crate::Pool2dConfig::global(image))?
                }
                LayerKind::Flatten => h, // an image row already is its C, H, W flattening
                LayerKind::Activation(Activation::Relu) if ops & OpSet::RELU != 0 => tape.relu_at(h)?,
                LayerKind::Activation(Activation::Sigmoid) if ops & OpSet::SIGMOID != 0 => {
                    tape.sigmoid_at(h)?
                }
                LayerKind::Activation(Activation::Tanh) if ops & OpSet::TANH != 0 => tape.tanh_at(h)?,
                LayerKind::BatchNorm(config) if ops & OpSet::BATCH_NORM != 0 => {
                    let bn = BatchNorm {
                        gamma: id(0),
                        beta: id(1),
                        running_mean: id(2),
                        running_var: id(3),
                        config,
                    };
                    tape.batch_norm_at(h, params, &bn, mode)?
                }
                LayerKind::Dropout(d) if ops & OpSet::DROPOUT != 0 => tape.dropout_at(h, d, mode, rng)?,
                // Never: `ops` holds every kind of the list.
                _ => return Err(no_layer(tensor)),
            };
            tensor += layer.tensors();
        });
        if frozen_below > 0 {
            tape.set_grad_enabled(grad); // (an all-frozen list ends in the base)
        }
        Ok(h)
    }

    /// The model's loss of `logits` against `targets` (labels for cross-entropy, values for MSE).
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn loss(&self, tape: &mut Tape<'_>, logits: Var, targets: Targets) -> Result<Var> {
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
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn loss_at(
        &self,
        tape: &mut Tape<'_>,
        logits: NodeIndex,
        targets: Targets,
    ) -> Result<NodeIndex> {
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

    /// The op kinds a training graph of this model records on a batch of `rows` rows (for a
    /// lean backward dispatch, and the kernels' [`Rows`] hint).
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) const fn ops(&self, rows: usize) -> OpSet {
        let mut bits = self.layer_ops();
        bits |= match self.loss {
            Loss::Mse => OpSet::MSE,
            _ => OpSet::SOFTMAX_CE,
        };
        if rows != 1 {
            bits |= OpSet::MANY_ROWS;
        }
        OpSet(bits)
    }

    /// Rows in `x` (which must hold whole rows of `inputs()` features).
    // constant for a `const` model inside a firmware's step
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn rows(&self, x: &[f32]) -> Result<usize> {
        let i = self.inputs();
        if i == 0 || x.len() % i != 0 || x.is_empty() {
            return Err(Error::Shape {
                op: "model input",
                expected: Shape::new(1, i),
                found: Shape::row(x.len()),
            });
        }
        Ok(x.len() / i)
    }

    /// The book's `gradient()`: a train-mode forward on `x`, the loss, and the gradients of every
    /// parameter in `params` (overwritten, not added). Returns the data loss (no weight-decay
    /// term). Takes the model's [`step_path`](Self::step_path) without the fused update: on the
    /// recorded paths the graph stays on the tape until the next reset; the direct path uses
    /// the tape as scratch and leaves it reset.
    pub fn gradient(
        &self,
        tape: &mut Tape<'_>,
        params: &mut Params,
        x: &[f32],
        targets: Targets,
        rng: &mut impl Rng,
    ) -> Result<f32> {
        tape.reset();
        let rows = self.rows(x)?;
        self.validate()?;
        self.gradient_on(self.step_path(rows, false), tape, params, x, rows, targets, rng)
    }

    /// The gradient by `path` (not [`StepPath::Fused`], which updates as it goes: the trainer's)
    /// of a validated model on `x` of `rows` rows (a slice, or written in place: [`Example`]).
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[allow(clippy::too_many_arguments)] // the step's operands, passed through
    pub(crate) fn gradient_on(
        &self,
        path: StepPath,
        tape: &mut Tape<'_>,
        params: &mut Params,
        x: impl Example,
        rows: usize,
        targets: Targets,
        rng: &mut impl Rng,
    ) -> Result<f32> {
        if let StepPath::Direct = path {
            return direct::gradient(self, tape, params, x, rows, targets);
        }
        let logits = self.record(tape, params, x, rows, rng)?;
        let loss = self.loss_at(tape, logits, targets)?;
        if let StepPath::Overwrite = path {
            // = zero_grad + backward, bit for bit: the layers write their weight gradients (at
            // batch 1 an outer product, one pass) instead of a pass that zeroes the buffer and
            // adds to it. Only the backward of this model's ops either way.
            tape.backward_overwrite_ops(loss, params, self.ops(rows), true)?;
        } else {
            params.zero_grad();
            tape.backward_ops(loss, params, self.ops(rows), true)?;
        }
        tape.scalar_at(loss)
    }

    /// A reset tape with gradients on, `x` as its input and the train-mode forward recorded:
    /// the logits' node.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn record(
        &self,
        tape: &mut Tape<'_>,
        params: &mut Params,
        x: impl Example,
        rows: usize,
        rng: &mut impl Rng,
    ) -> Result<NodeIndex> {
        tape.reset();
        tape.set_grad_enabled(true);
        let xv = x.record(tape, Shape::new(rows, self.inputs()))?;
        self.forward_valid(tape, params, xv, Mode::Train, rng, Rows::of(rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Layer, MlpSpec};
    use crate::ops::batchnorm::BatchNormConfig;
    use crate::ops::dropout::Dropout;
    use crate::testutil::Storage;
    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro128PlusPlus;

    #[test]
    fn layout_handles_follow_the_allocation_order() {
        let spec = MlpSpec::new(&[4, 5, 3, 2]).with_batch_norm(BatchNormConfig::BOOK).model();
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
    fn invalid_specs_are_refused() {
        let mut s = Storage::new();
        let (_, mut params) = s.split();
        let bn = Layer::batch_norm(BatchNormConfig::BOOK);
        for spec in [
            MlpSpec::new(&[3]).model(),
            MlpSpec::new(&[3, 0, 2]).model(),
            MlpSpec::new(&[0, 2]).model(),
            MlpSpec::new(&[3, 2, 2]).with_dropout(Dropout::inverted(1.0)).model(),
            Model::new(3, &[]),
            Model::new(0, &[Layer::dense(2)]),
            Model::new(3, &[Layer::relu(), Layer::dense(2)]),
            Model::new(3, &[bn, Layer::dense(2)]),
            Model::new(3, &[Layer::dropout(Dropout::inverted(0.5)), Layer::dense(2)]),
            Model::new(3, &[Layer::dense(4), bn, Layer::relu(), bn, Layer::dense(2)]),
            Model::new(3, &[Layer::dense(4), Layer::relu(), Layer::dense(0)]),
            Model::new(
                3,
                &[Layer::dense(4), Layer::batch_norm(BatchNormConfig { eps: 0.0, ..BatchNormConfig::BOOK })],
            ),
        ] {
            assert!(matches!(spec.validate(), Err(Error::InvalidArgument { .. })), "{spec:?}");
            assert!(spec.alloc(&mut params).is_err());
        }
        assert_eq!(params.tensor_count(), 0);
    }

    #[test]
    fn eval_leaves_running_stats_and_train_moves_them() {
        let spec = MlpSpec::new(&[3, 4, 2])
            .with_batch_norm(BatchNormConfig::BOOK)
            .with_dropout(Dropout::book(0.3))
            .model();
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
        // A PyTorch-style list with per-layer activations, and batch norm after an activation.
        let torch = [Layer::dense(4), Layer::relu(), Layer::dense(5), Layer::sigmoid(), Layer::dense(3)];
        let mixed = [
            Layer::dense(4),
            Layer::tanh(),
            Layer::batch_norm(BatchNormConfig::STANDARD),
            Layer::dropout(Dropout::book(0.2)),
            Layer::dense(3),
            Layer::batch_norm(BatchNormConfig::BOOK),
            Layer::sigmoid(),
        ];
        for spec in [
            MlpSpec::new(&[3, 5, 4, 3])
                .with_activation(Activation::Tanh)
                .with_batch_norm(BatchNormConfig::BOOK)
                .with_dropout(Dropout::inverted(0.3))
                .model(),
            MlpSpec::new(&[3, 4, 2])
                .with_activation(Activation::Sigmoid)
                .with_dropout(Dropout::book(0.4))
                .with_loss(Loss::Mse)
                .model(),
            Model::new(3, &torch),
            Model::new(3, &mixed).with_loss(Loss::Mse),
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
                "gradcheck {:?}: worst rel error {:.2e} over {}",
                spec,
                r.worst_rel_error,
                r.checked
            );
            assert!(r.worst_rel_error < 1e-2, "{r:?}");
        }
    }

    #[test]
    fn wrong_targets_and_inputs_are_errors() {
        let spec = MlpSpec::new(&[2, 3, 2]).model();
        let mut s = Storage::new();
        let (mut tape, mut params) = s.split();
        let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
        spec.alloc(&mut params).unwrap();
        let x = [0.5, -0.5, 1.0, 0.0];
        let e = spec.gradient(&mut tape, &mut params, &x, Targets::Values(&[0.0; 4]), &mut rng);
        assert!(matches!(e, Err(Error::InvalidArgument { .. })));
        let e = spec.gradient(&mut tape, &mut params, &x[..3], Targets::Labels(&[0]), &mut rng);
        assert!(matches!(e, Err(Error::Shape { op: "model input", .. })));
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

    /// An MLP spec's compact form and the same layers as a list are the same model: the same
    /// layers, handles, plan, and the same bits after the same steps.
    #[test]
    fn mlp_form_equals_its_list() {
        let specs = [
            MlpSpec::new(&[3, 5, 4, 2]),
            MlpSpec::new(&[3, 2]),
            MlpSpec::new(&[3, 5, 2])
                .with_activation(Activation::Sigmoid)
                .with_dropout(Dropout::inverted(0.2)),
            MlpSpec::new(&[3, 5, 4, 2]).with_batch_norm(BatchNormConfig::BOOK),
            MlpSpec::new(&[3, 5, 4, 2])
                .with_activation(Activation::Tanh)
                .with_batch_norm(BatchNormConfig::STANDARD)
                .with_dropout(Dropout::book(0.3)),
        ];
        for spec in specs {
            let compact = spec.model();
            let mut list = [Layer::relu(); 16];
            let n = compact.layer_count();
            for (i, l) in list.iter_mut().enumerate().take(n) {
                *l = compact.layer(i).unwrap();
            }
            assert_eq!(compact.layer(n), None);
            let walked = Model::new(3, &list[..n]).with_init(spec.init).with_loss(spec.loss);
            let opt = crate::optim::Optimizer::adam();
            assert_eq!(compact.plan(4, &opt), walked.plan(4, &opt), "{spec:?}");
            assert_eq!(compact.plan_fused(4, &opt), walked.plan_fused(4, &opt));
            assert_eq!(compact.eval_tape_floats(3), walked.eval_tape_floats(3));
            assert_eq!((compact.inputs(), compact.outputs()), (walked.inputs(), walked.outputs()));
            assert_eq!(compact.dense_layers(), walked.dense_layers());
            assert_eq!(compact.layer_ops(), walked.layer_ops());
            assert_eq!(compact.is_plain(), walked.is_plain());
            for l in 0..compact.dense_layers() + 2 {
                assert_eq!(compact.dense_at(l), walked.dense_at(l), "{spec:?} {l}");
                assert_eq!((compact.weight(l), compact.bias(l)), (walked.weight(l), walked.bias(l)));
                assert_eq!(compact.batch_norm_layer(l), walked.batch_norm_layer(l));
            }
            for rows in [1, 4, 200] {
                assert_eq!(compact.step_path(rows, false), walked.step_path(rows, false));
            }
            let x = crate::testutil::random_values(4 * 3, 0.0, 4);
            let run = |m: &Model| {
                let mut s = Storage::new();
                let (mut tape, mut params) = s.split();
                let mut rng = Xoshiro128PlusPlus::seed_from_u64(8);
                m.alloc(&mut params).unwrap();
                m.init(&mut params, &mut rng).unwrap();
                let loss =
                    m.gradient(&mut tape, &mut params, &x, Targets::Labels(&[0, 1, 1, 0]), &mut rng).unwrap();
                let mut bits: std::vec::Vec<u32> = params.values().iter().map(|v| v.to_bits()).collect();
                bits.extend(params.grads().iter().map(|g| g.to_bits()));
                (loss.to_bits(), bits)
            };
            assert_eq!(run(&compact), run(&walked), "{spec:?}");
        }
    }

    /// Linear → ReLU → Linear → Sigmoid → Linear computes what its layers say.
    #[test]
    fn torch_style_values() {
        const NET: Model = Model::new(
            2,
            &[Layer::dense(2), Layer::relu(), Layer::dense(2), Layer::sigmoid(), Layer::dense(1)],
        );
        const _: () = assert!(NET.validate().is_ok());
        let mut s = Storage::new();
        let (mut tape, mut params) = s.split();
        NET.alloc(&mut params).unwrap();
        let (w1, b1, w2, b2, w3, b3) = (
            NET.weight(0).unwrap(),
            NET.bias(0).unwrap(),
            NET.weight(1).unwrap(),
            NET.bias(1).unwrap(),
            NET.weight(2).unwrap(),
            NET.bias(2).unwrap(),
        );
        params.value_mut(w1).unwrap().copy_from_slice(&[1.0, -1.0, 2.0, 0.5]);
        params.value_mut(b1).unwrap().copy_from_slice(&[0.0, -0.25]);
        params.value_mut(w2).unwrap().copy_from_slice(&[1.0, 0.0, 0.0, -2.0]);
        params.value_mut(b2).unwrap().copy_from_slice(&[0.5, 0.0]);
        params.value_mut(w3).unwrap().copy_from_slice(&[2.0, 3.0]);
        params.value_mut(b3).unwrap().copy_from_slice(&[-1.0]);
        let x = [1.0f32, 0.5];
        // By hand: h1 = relu(xW1 + b1), h2 = sigmoid(h1W2 + b2), y = h2W3 + b3.
        let z1: [f32; 2] = [1.0 + 0.5 * 2.0, -1.0 + 0.5 * 0.5 - 0.25];
        let h1 = [z1[0].max(0.0), z1[1].max(0.0)];
        let sig = |v: f32| 1.0 / (1.0 + (-v).exp());
        let h2 = [sig(h1[0] * 1.0 + h1[1] * 0.0 + 0.5), sig(h1[0] * 0.0 + h1[1] * -2.0)];
        let want = h2[0] * 2.0 + h2[1] * 3.0 - 1.0;
        let y = NET.logits(&mut tape, &params, &x).unwrap();
        let got = tape.value(y).unwrap()[0];
        assert!((got - want).abs() < 1e-6, "{got} {want}");
    }

    #[test]
    fn list_handles_count_along_the_walk() {
        let bn = Layer::batch_norm(BatchNormConfig::BOOK);
        let layers =
            [Layer::dense(5), Layer::relu(), bn, Layer::dense(3), Layer::tanh(), Layer::dense(2), bn];
        let net = Model::new(4, &layers);
        let mut s = Storage::new();
        let (_, mut params) = s.split();
        net.alloc(&mut params).unwrap();
        assert_eq!((params.tensor_count(), params.len()), (net.param_tensors(), net.param_len()));
        assert_eq!(net.param_len(), 4 * 5 + 5 + 4 * 5 + 5 * 3 + 3 + 3 * 2 + 2 + 4 * 2);
        let ids = |l| (net.weight(l).map(|p| p.index()), net.bias(l).map(|p| p.index()));
        assert_eq!(
            (ids(0), ids(1), ids(2), ids(3)),
            ((Some(0), Some(1)), (Some(6), Some(7)), (Some(8), Some(9)), (None, None))
        );
        assert_eq!(net.batch_norm_layer(0).map(|b| b.gamma.index()), Some(2));
        assert!(net.batch_norm_layer(1).is_none());
        let last = net.batch_norm_layer(2).unwrap();
        assert_eq!((last.gamma.index(), last.running_var.index()), (10, 13));
        assert_eq!(params.entry(last.running_var).unwrap().shape, Shape::row(2));
        assert_eq!(net.fused_grad_floats(), 5);
        assert_eq!(net.outputs(), 2);
    }
}
