//! One layer of a [`Model`](super::Model): a `Copy` value made with `const fn`s, so a layer list
//! can be a `const` array.
//!
//! A layer is a kind ([`LayerKind`]) behind a struct with private fields: a per-layer setting
//! that applies to every kind (issue 16's `frozen` flag) becomes a new field and a `const fn`
//! setter, and a new kind (convolution, pooling, flatten: issue 17) a new variant of the
//! `#[non_exhaustive]` enum — neither breaks a caller's code.

use super::Activation;
use crate::ops::batchnorm::BatchNormConfig;
use crate::ops::dropout::Dropout;

/// One layer of a model's list: dense (affine), an activation, batch norm or dropout.
///
/// ```
/// use staticgrad::model::{Layer, LayerKind};
/// use staticgrad::{Activation, Dropout};
/// const LAYERS: [Layer; 4] =
///     [Layer::dense(100), Layer::relu(), Layer::dropout(Dropout::inverted(0.5)), Layer::dense(10)];
/// assert_eq!(LAYERS[1].kind(), LayerKind::Activation(Activation::Relu));
/// assert_eq!(LAYERS[3].kind(), LayerKind::Dense { units: 10 });
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Layer {
    kind: LayerKind,
}

/// What a [`Layer`] computes. `#[non_exhaustive]`: convolution, pooling and flatten are to come.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum LayerKind {
    /// `x·W + b` to `units` features: a weight (`in × units`) and a bias (`1 × units`).
    Dense {
        /// Output features.
        units: usize,
    },
    /// An element-wise activation (no parameters).
    Activation(Activation),
    /// Batch normalisation over the batch, per feature: γ, β and the running mean and variance.
    BatchNorm(BatchNormConfig),
    /// Dropout in train mode (the book form also scales in eval mode); no parameters.
    Dropout(Dropout),
}

impl Layer {
    /// A dense (affine) layer with `units` outputs.
    pub const fn dense(units: usize) -> Layer {
        Layer { kind: LayerKind::Dense { units } }
    }

    /// An activation layer.
    pub const fn activation(activation: Activation) -> Layer {
        Layer { kind: LayerKind::Activation(activation) }
    }

    /// `max(x, 0)`.
    pub const fn relu() -> Layer {
        Layer::activation(Activation::Relu)
    }

    /// `1 / (1 + e^−x)`.
    pub const fn sigmoid() -> Layer {
        Layer::activation(Activation::Sigmoid)
    }

    /// `tanh x`.
    pub const fn tanh() -> Layer {
        Layer::activation(Activation::Tanh)
    }

    /// Batch normalisation of the features it receives.
    pub const fn batch_norm(config: BatchNormConfig) -> Layer {
        Layer { kind: LayerKind::BatchNorm(config) }
    }

    /// Dropout of the features it receives.
    pub const fn dropout(dropout: Dropout) -> Layer {
        Layer { kind: LayerKind::Dropout(dropout) }
    }

    /// What the layer computes.
    #[inline(always)]
    pub const fn kind(&self) -> LayerKind {
        self.kind
    }

    /// Parameter tensors the layer allocates: 2 for dense, 4 for batch norm, 0 otherwise.
    #[inline(always)]
    pub(crate) const fn tensors(&self) -> usize {
        match self.kind {
            LayerKind::Dense { .. } => 2,
            LayerKind::BatchNorm(_) => crate::ops::batchnorm::BatchNorm::TENSORS,
            LayerKind::Activation(_) | LayerKind::Dropout(_) => 0,
        }
    }
}

/// The shape of one example as it flows through the layers: channels × height × width.
///
/// Today every layer sees flat features (`1 × 1 × features`); an image input (issue 17) starts
/// at `(C, H, W)`, convolution and pooling change all three and flatten makes them flat again.
/// The walk over the layers ([`Model::out_dims`](super::Model)) carries this, not a feature count,
/// so those layers add arms to it rather than a second walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dims {
    pub(crate) channels: usize,
    pub(crate) height: usize,
    pub(crate) width: usize,
}

impl Dims {
    /// Flat features.
    #[inline(always)]
    pub(crate) const fn flat(features: usize) -> Dims {
        Dims { channels: 1, height: 1, width: features }
    }

    /// Values per example (saturating: a count that does not fit reads `usize::MAX`).
    #[inline(always)]
    pub(crate) const fn features(&self) -> usize {
        self.channels.saturating_mul(self.height).saturating_mul(self.width)
    }
}
