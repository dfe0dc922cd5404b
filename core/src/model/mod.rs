//! Models from a `const` layer list: the description ([`Model`], [`Layer`], the short
//! [`MlpSpec`]), the memory planner ([`Plan`]), and one implementation of everything that runs
//! them — parameter layout, initialisation, forward, loss, gradient, evaluation — walking the
//! layers.
//!
//! | file | role |
//! |---|---|
//! | `layer.rs` | [`Layer`], [`LayerKind`], and the running shape of the walk |
//! | `mlp.rs` | [`MlpSpec`], the short constructor of the common MLP |
//! | `plan.rs` | the `const fn` planner ([`Plan`], [`Model::plan`], …) and [`Model::validate`] |
//! | `forward.rs` | parameter layout, initialisation, forward, loss, gradient |
//! | `eval.rs` | eval-mode logits, loss, predictions, accuracy |
//! | `direct.rs` | the tape-free gradient of tiny plain nets |
//! | `path.rs` | [`StepPath`]: which of the step's ways to compute a gradient runs, chosen once |
//!
//! # What a layer list may hold
//! A model is its input (features, or an image with [`Model::image`]) and a list of layers,
//! walked in order. The list must start with a dense or convolution layer (so every value after
//! the input is downstream of a parameter and needs a gradient); after it dense, activation,
//! batch-norm, dropout and — while the shape is still an image — convolution and pooling layers
//! may come in any order, with at most one batch norm between two dense layers (so "the batch
//! norm of dense layer `l`" names one; batch norm only on flat features after a dense layer).
//! A dense layer after an image reads it flattened (C, H, W order), so [`Layer::flatten`] is
//! optional; an image layer after flat features is refused. Dense layers need at least one
//! unit, convolutions a filter, windows must fit the (padded) image. The output is whatever the
//! last layer gives, flattened. [`Model::validate`] refuses anything else as
//! [`Error::InvalidArgument`] (or [`Error::Shape`] for a window that does not fit).
//!
//! # Parameter layout
//! [`Model::alloc`] allocates, layer by layer: a dense layer's weight `W` (`in × units`,
//! [`ParamKind::Weight`](crate::ParamKind::Weight)) and bias `b` (`1 × units`,
//! [`ParamKind::Bias`](crate::ParamKind::Bias)); a convolution's weight (`out × (C·kh·kw)`) and
//! bias (`1 × out`), named by [`Model::conv_weight`]`(l)` and [`Model::conv_bias`]`(l)`; a batch
//! norm's `γ`,
//! `β`, running mean and running variance (`1 × features` each). So handles are numbered by the
//! walk, and a model needs no storage for them: [`Model::weight`]`(l)`, [`Model::bias`]`(l)`
//! and [`Model::batch_norm_layer`]`(l)` name the tensors of the `l`-th dense layer (counting
//! from 0) and of the batch norm that follows it.
//!
//! ```
//! use staticgrad::model::{Layer, Model};
//! // PyTorch's Linear → ReLU → Linear → Sigmoid → Linear.
//! const NET: Model = Model::new(784, &[
//!     Layer::dense(100), Layer::relu(), Layer::dense(50), Layer::sigmoid(), Layer::dense(10),
//! ]);
//! const _: () = assert!(NET.validate().is_ok());
//! assert_eq!(NET.param_len(), 784 * 100 + 100 + 100 * 50 + 50 + 50 * 10 + 10);
//! assert_eq!((NET.dense_layers(), NET.outputs()), (3, 10));
//! assert_eq!(NET.bias(2).map(|b| b.index()), Some(5));
//! ```

/// Runs `$body` with `$layer` bound to each layer of `$model` in order: the runtime walk (the
/// planner's is [`Model::tally`](plan)). The MLP form enumerates from the widths, block by
/// block, so each expansion of `$body` sees a layer kind that is a constant: in a firmware only
/// the arms of its own kinds are compiled in, in straight-line code (a closure would keep them
/// all). `$body` may use `?` and `return` as the enclosing function's.
macro_rules! for_each_layer {
    ($model:expr, |$layer:ident| $body:block) => {
        match $model.layers {
            $crate::model::Layers::List(list) => {
                for &$layer in list {
                    $body
                }
            }
            $crate::model::Layers::Mlp(m) => {
                let hidden = m.widths.len().saturating_sub(2);
                for (l, &units) in m.widths.iter().skip(1).enumerate() {
                    {
                        let $layer = Layer::dense(units);
                        $body
                    }
                    if l < hidden {
                        if let Some(c) = m.batch_norm {
                            let $layer = Layer::batch_norm(c);
                            $body
                        }
                        {
                            let $layer = Layer::activation(m.activation);
                            $body
                        }
                        if let Some(d) = m.dropout {
                            let $layer = Layer::dropout(d);
                            $body
                        }
                    }
                }
            }
        }
    };
}

pub(crate) mod direct;
mod eval;
mod forward;
mod input;
mod layer;
mod mlp;
mod path;
mod plan;

pub use layer::{Layer, LayerKind};
pub use mlp::MlpSpec;
pub use path::{DIRECT_MAX_MACS, OVERWRITE_MIN_PARAMS, StepPath};
pub use plan::Plan;

#[cfg(test)]
pub(crate) use eval::NoDraws;
pub(crate) use input::{Example, Fill};

use crate::error::Error;
use crate::init::Init;
use crate::ops::batchnorm::BatchNorm;
use crate::params::ParamId;
use crate::tape::OpSet;
use layer::Dims;
use mlp::MlpLayers;

/// An element-wise activation.
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

/// The training loss applied to the model's output (the logits).
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

/// A model: input features, a layer list, the weights' initialisation and the loss. Built with
/// `const fn`s, so it can be a `const` whose planner runs at compile time.
///
/// ```
/// use rand_core::SeedableRng;
/// use rand_xoshiro::Xoshiro128PlusPlus;
/// use staticgrad::model::{Layer, Model, Targets};
/// use staticgrad::{Mode, Node, ParamEntry, Params, Shape, Tape};
/// const NET: Model = Model::new(2, &[Layer::dense(3), Layer::tanh(), Layer::dense(2)]);
/// let mut values = [0.0; NET.param_len()];
/// let mut grads = [0.0; NET.param_len()];
/// let mut table = [ParamEntry::EMPTY; NET.param_tensors()];
/// let mut params = Params::new(&mut values, &mut grads, &mut table);
/// let mut rng = Xoshiro128PlusPlus::seed_from_u64(1);
/// NET.alloc(&mut params)?;
/// NET.init(&mut params, &mut rng)?;
/// let mut floats = [0.0; NET.tape_floats(4)];
/// let mut nodes = [Node::EMPTY; NET.tape_nodes()];
/// let mut tape = Tape::new(&mut floats, &mut nodes);
/// let x = tape.input(&[0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0], Shape::new(4, 2))?;
/// let logits = NET.forward(&mut tape, &mut params, x, Mode::Train, &mut rng)?;
/// let loss = NET.loss(&mut tape, logits, Targets::Labels(&[1, 1, 0, 0]))?;
/// tape.backward(loss, &mut params)?;
/// assert_eq!(tape.floats_used(), NET.tape_floats(4));
/// # Ok::<(), staticgrad::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Model<'a> {
    input: Dims,
    layers: Layers<'a>,
    /// Initialisation of the weights (biases start at 0, γ at 1, β at 0).
    pub init: Init,
    /// The training loss.
    pub loss: Loss,
}

/// The layer list, as a slice or as an [`MlpSpec`]'s compact form (which has no array to
/// borrow: its layers are computed one by one, [`MlpLayers::layer`]).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Layers<'a> {
    List(&'a [Layer]),
    Mlp(MlpLayers<'a>),
}

/// Where the walk meets the `l`-th dense layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DenseAt {
    /// Position in the layer list.
    pub(crate) index: usize,
    /// Input and output features.
    pub(crate) inputs: usize,
    pub(crate) units: usize,
    /// Index of its weight in the parameter table (the bias is next).
    pub(crate) tensor: usize,
}

impl<'a> Model<'a> {
    /// `inputs` features through `layers`; He-normal weights, exact softmax cross-entropy.
    pub const fn new(inputs: usize, layers: &'a [Layer]) -> Self {
        Model {
            input: Dims::flat(inputs),
            layers: Layers::List(layers),
            init: Init::HeNormal,
            loss: Loss::SoftmaxCrossEntropy,
        }
    }

    /// An image input of `channels × height × width` (each example a row of `C·H·W` values in
    /// C, H, W order, NCHW) through `layers`; He-normal weights, exact softmax cross-entropy.
    /// See [`Layer::conv2d`] for an example.
    pub const fn image(channels: usize, height: usize, width: usize, layers: &'a [Layer]) -> Self {
        Model {
            input: Dims::image(crate::shape::ImageShape::new(channels, height, width)),
            layers: Layers::List(layers),
            init: Init::HeNormal,
            loss: Loss::SoftmaxCrossEntropy,
        }
    }

    /// The input image (`None` for flat features).
    pub const fn input_image(&self) -> Option<crate::shape::ImageShape> {
        if self.input.image { Some(self.input.shape()) } else { None }
    }

    /// An MLP's compact form ([`MlpSpec::model`]).
    pub(crate) const fn from_mlp(layers: MlpLayers<'a>, init: Init, loss: Loss) -> Self {
        let inputs = match layers.widths.first() {
            Some(&w) => w,
            None => 0,
        };
        Model { input: Dims::flat(inputs), layers: Layers::Mlp(layers), init, loss }
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

    // ----- the layer list -----------------------------------------------------------------

    /// Number of layers in the list.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub const fn layer_count(&self) -> usize {
        match self.layers {
            Layers::List(l) => l.len(),
            Layers::Mlp(m) => m.len(),
        }
    }

    /// Layer `i` of the list, `None` past its end.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub const fn layer(&self, i: usize) -> Option<Layer> {
        match self.layers {
            Layers::List(l) => {
                if i < l.len() {
                    Some(l[i])
                } else {
                    None
                }
            }
            Layers::Mlp(m) => m.layer(i),
        }
    }

    /// Input features of one example.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub const fn inputs(&self) -> usize {
        self.input.features()
    }

    /// Output features of one example (the logits): the last layer's output, flattened (0 for
    /// a list without a dense or convolution layer).
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub const fn outputs(&self) -> usize {
        if let Layers::Mlp(m) = self.layers {
            return m.outputs(); // the same number, without a walk
        }
        let t = self.tally(0, crate::tape::Mode::Train);
        if t.dense == 0 && t.convs == 0 { 0 } else { t.dims.features() }
    }

    /// Number of dense layers.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub const fn dense_layers(&self) -> usize {
        if let Layers::Mlp(m) = self.layers {
            return m.dense_layers();
        }
        self.tally(0, crate::tape::Mode::Train).dense
    }

    /// Where the walk meets the `l`-th dense layer (`None` if there is none). The MLP form
    /// answers without a walk, so that with a `const` spec it is a constant for any `l`.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) const fn dense_at(&self, l: usize) -> Option<DenseAt> {
        if let Layers::Mlp(m) = self.layers {
            return m.dense_at(l);
        }
        let (mut dims, mut tensor, mut seen, mut i) = (self.input, 0usize, 0usize, 0);
        while i < self.layer_count() {
            let Some(layer) = self.layer(i) else { break };
            if let LayerKind::Dense { units } = layer.kind() {
                if seen == l {
                    return Some(DenseAt { index: i, inputs: dims.features(), units, tensor });
                }
                seen += 1;
            }
            dims = dims_after(layer, dims);
            tensor = tensor.saturating_add(layer.tensors());
            i += 1;
        }
        None
    }

    /// Where the walk meets the `l`-th convolution (`None` if there is none): its position,
    /// input image, output channels and settings, and its weight's table row.
    pub(crate) const fn conv_at(&self, l: usize) -> Option<ConvAt> {
        if let Layers::Mlp(_) = self.layers {
            return None;
        }
        let (mut dims, mut tensor, mut seen, mut i) = (self.input, 0usize, 0usize, 0);
        while i < self.layer_count() {
            let Some(layer) = self.layer(i) else { break };
            if let LayerKind::Conv2d { out_channels, config } = layer.kind() {
                if seen == l {
                    return Some(ConvAt { image: dims.shape(), out_channels, config, tensor });
                }
                seen += 1;
            }
            dims = dims_after(layer, dims);
            tensor = tensor.saturating_add(layer.tensors());
            i += 1;
        }
        None
    }

    /// Handle of the `l`-th convolution's weight (`out × (C·kh·kw)`, counting convolutions from
    /// 0; valid once [`alloc`](Self::alloc) has run); `None` if there is no convolution `l`.
    pub const fn conv_weight(&self, l: usize) -> Option<ParamId> {
        match self.conv_at(l) {
            Some(c) => Self::id(c.tensor),
            None => None,
        }
    }

    /// Handle of the `l`-th convolution's bias; `None` if there is no convolution `l`.
    pub const fn conv_bias(&self, l: usize) -> Option<ParamId> {
        match self.conv_at(l) {
            Some(c) => Self::id(c.tensor.saturating_add(1)),
            None => None,
        }
    }

    /// Number of convolution layers.
    pub const fn conv_layers(&self) -> usize {
        self.tally(0, crate::tape::Mode::Train).convs
    }

    /// The op kinds the layers record (activations, batch norm, dropout), as [`OpSet`] bits.
    /// The MLP form reads its fields, so with a `const` spec this is a constant.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) const fn layer_ops(&self) -> u32 {
        if let Layers::Mlp(m) = self.layers {
            return m.layer_ops();
        }
        let (mut bits, mut i) = (0u32, 0);
        while i < self.layer_count() {
            if let Some(layer) = self.layer(i) {
                bits |= layer_op(layer);
            }
            i += 1;
        }
        bits
    }

    // ----- parameter handles --------------------------------------------------------------

    /// Handle of table row `index`, if it fits a [`ParamId`] (a model
    /// [`validate`](Self::validate) accepts has no other).
    #[cfg_attr(not(debug_assertions), inline(always))]
    const fn id(index: usize) -> Option<ParamId> {
        if index <= u16::MAX as usize { Some(ParamId(index as u16)) } else { None }
    }

    /// Handle of the `l`-th dense layer's weight (valid once [`alloc`](Self::alloc) has run);
    /// `None` if the model has no dense layer `l`.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub const fn weight(&self, l: usize) -> Option<ParamId> {
        match self.dense_at(l) {
            Some(d) => Self::id(d.tensor),
            None => None,
        }
    }

    /// Handle of the `l`-th dense layer's bias; `None` if the model has no dense layer `l`.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub const fn bias(&self, l: usize) -> Option<ParamId> {
        match self.dense_at(l) {
            Some(d) => Self::id(d.tensor.saturating_add(1)),
            None => None,
        }
    }

    /// Handles of the batch norm that follows the `l`-th dense layer (before the next one), if
    /// it has one.
    pub const fn batch_norm_layer(&self, l: usize) -> Option<BatchNorm> {
        let Some(d) = self.dense_at(l) else { return None };
        let (mut i, mut tensor) = (d.index + 1, d.tensor.saturating_add(2));
        while i < self.layer_count() {
            let Some(layer) = self.layer(i) else { break };
            match layer.kind() {
                LayerKind::Dense { .. } => return None,
                LayerKind::BatchNorm(config) => return batch_norm_handles(tensor, config),
                _ => {}
            }
            tensor = tensor.saturating_add(layer.tensors());
            i += 1;
        }
        None
    }

    /// The batch norm whose `γ` is `gamma` (for moving the running statistics after a forward).
    pub(crate) fn batch_norm_of(&self, gamma: ParamId) -> Option<BatchNorm> {
        let mut tensor = 0usize;
        for i in 0..self.layer_count() {
            let layer = self.layer(i)?;
            if let LayerKind::BatchNorm(config) = layer.kind() {
                if tensor == gamma.index() {
                    return batch_norm_handles(tensor, config);
                }
            }
            tensor = tensor.saturating_add(layer.tensors());
        }
        None
    }
}

/// Where the walk meets a convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConvAt {
    /// Its input image.
    pub(crate) image: crate::shape::ImageShape,
    pub(crate) out_channels: usize,
    pub(crate) config: crate::ops::conv2d::Conv2dConfig,
    /// Index of its weight in the parameter table (the bias is next).
    pub(crate) tensor: usize,
}

/// The four handles of a batch norm whose `γ` is table row `tensor`.
const fn batch_norm_handles(tensor: usize, config: crate::BatchNormConfig) -> Option<BatchNorm> {
    match (Model::id(tensor), Model::id(tensor.saturating_add(3))) {
        (Some(gamma), Some(_)) => Some(BatchNorm {
            gamma,
            beta: ParamId(gamma.0 + 1),
            running_mean: ParamId(gamma.0 + 2),
            running_var: ParamId(gamma.0 + 3),
            config,
        }),
        _ => None,
    }
}

/// The shape after `layer` of an example of shape `dims`. Settings that do not fit the image
/// leave it as it was (the walk's `Tally` records the error; `validate` refuses the model).
#[cfg_attr(not(debug_assertions), inline(always))]
const fn dims_after(layer: Layer, dims: Dims) -> Dims {
    let out = match layer.kind() {
        LayerKind::Dense { units } => return Dims::flat(units),
        LayerKind::Flatten => return Dims::flat(dims.features()),
        LayerKind::Activation(_) | LayerKind::BatchNorm(_) | LayerKind::Dropout(_) => return dims,
        LayerKind::Conv2d { out_channels, config } => config.output(dims.shape(), out_channels),
        LayerKind::MaxPool2d(config) | LayerKind::AvgPool2d(config) => config.output(dims.shape()),
        LayerKind::GlobalAvgPool2d => Ok(crate::shape::ImageShape::new(dims.channels, 1, 1)),
    };
    match out {
        Ok(image) => Dims::image(image),
        Err(_) => dims,
    }
}

/// The op kind `layer` records, as an [`OpSet`] bit.
#[cfg_attr(not(debug_assertions), inline(always))]
const fn layer_op(layer: Layer) -> u32 {
    match layer.kind() {
        LayerKind::Dense { .. } => 0, // affine: always in the set
        LayerKind::Activation(Activation::Relu) => OpSet::RELU,
        LayerKind::Activation(Activation::Sigmoid) => OpSet::SIGMOID,
        LayerKind::Activation(Activation::Tanh) => OpSet::TANH,
        LayerKind::BatchNorm(_) => OpSet::BATCH_NORM,
        // The book form's eval-mode scale is a graph op.
        LayerKind::Dropout(_) => OpSet::DROPOUT | OpSet::GRAPH,
        LayerKind::Conv2d { .. } => OpSet::CONV2D,
        LayerKind::MaxPool2d(_) => OpSet::MAX_POOL2D,
        LayerKind::AvgPool2d(_) | LayerKind::GlobalAvgPool2d => OpSet::AVG_POOL2D,
        LayerKind::Flatten => 0, // records nothing
    }
}

/// The error of a dense-layer index without handles. Cold and out of line: in a firmware's step
/// the branch to it must not look likely, or LLVM treats the whole training loop as cold and
/// stops inlining its step.
#[cold]
#[inline(never)]
pub(crate) fn no_layer(l: usize) -> Error {
    Error::InvalidHandle { what: "model dense layer", index: l }
}
