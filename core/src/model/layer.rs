//! One layer of a [`Model`](super::Model): a `Copy` value made with `const fn`s, so a layer list
//! can be a `const` array.
//!
//! A layer is a kind ([`LayerKind`]) behind a struct with private fields: a per-layer setting
//! that applies to every kind (the [`frozen`](Layer::frozen) flag) is a field and a `const fn`
//! setter, and a new kind a new variant of the `#[non_exhaustive]` enum — neither breaks a
//! caller's code.

use super::Activation;
use crate::ops::batchnorm::BatchNormConfig;
use crate::ops::conv2d::Conv2dConfig;
use crate::ops::dropout::Dropout;
use crate::ops::window::Pool2dConfig;
use crate::shape::ImageShape;

/// One layer of a model's list: dense (affine), an activation, batch norm, dropout, or one of
/// the image layers (convolution, max and average pooling, flatten).
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
    /// Parameters read-only (see [`Layer::frozen`]).
    frozen: bool,
}

/// What a [`Layer`] computes. `#[non_exhaustive]`: more kinds may come.
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
    /// 2-D convolution of an image (NCHW) to `out_channels` channels: a weight
    /// (`out_channels × (C·kh·kw)`, the book's `[out, C, kh, kw]`) and a bias (`1 × out_channels`).
    Conv2d {
        /// Output channels (filters).
        out_channels: usize,
        /// Kernel, stride and zero padding.
        config: Conv2dConfig,
    },
    /// 2-D max pooling of an image, channel by channel; no parameters.
    MaxPool2d(Pool2dConfig),
    /// 2-D average pooling of an image, channel by channel; no parameters.
    AvgPool2d(Pool2dConfig),
    /// The mean of each channel of an image: `C × 1 × 1` out; no parameters.
    GlobalAvgPool2d,
    /// An image as flat features in C, H, W order. Moves no data and records nothing (an image
    /// row already is that order); a dense layer after an image flattens it anyway.
    Flatten,
}

impl Layer {
    /// A dense (affine) layer with `units` outputs.
    pub const fn dense(units: usize) -> Layer {
        Layer { frozen: false, kind: LayerKind::Dense { units } }
    }

    /// An activation layer.
    pub const fn activation(activation: Activation) -> Layer {
        Layer { frozen: false, kind: LayerKind::Activation(activation) }
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
        Layer { frozen: false, kind: LayerKind::BatchNorm(config) }
    }

    /// Dropout of the features it receives.
    pub const fn dropout(dropout: Dropout) -> Layer {
        Layer { frozen: false, kind: LayerKind::Dropout(dropout) }
    }

    /// A convolution to `out_channels` channels with a `kernel × kernel` kernel moved by
    /// `stride`, the image padded by `padding` zeros on every side. The book's SimpleConvNet
    /// starts with `conv2d(30, 5, 1, 0)`.
    ///
    /// ```
    /// use staticgrad::model::{Layer, Model};
    /// const NET: Model = Model::image(1, 28, 28, &[
    ///     Layer::conv2d(30, 5, 1, 0), Layer::relu(), Layer::max_pool2d(2, 2),
    ///     Layer::dense(100), Layer::relu(), Layer::dense(10),
    /// ]);
    /// const _: () = assert!(NET.validate().is_ok());
    /// // 30·1·5·5 + 30, then 30·12·12 → 100 and 100 → 10
    /// assert_eq!(NET.param_len(), 780 + 4320 * 100 + 100 + 100 * 10 + 10);
    /// ```
    pub const fn conv2d(out_channels: usize, kernel: usize, stride: usize, padding: usize) -> Layer {
        Layer::conv2d_with(out_channels, Conv2dConfig::new(kernel, kernel, stride, padding))
    }

    /// A convolution with any [`Conv2dConfig`] (a rectangular kernel).
    pub const fn conv2d_with(out_channels: usize, config: Conv2dConfig) -> Layer {
        Layer { frozen: false, kind: LayerKind::Conv2d { out_channels, config } }
    }

    /// Max pooling over `window × window` windows moved by `stride` (the book's 2×2 pooling is
    /// `max_pool2d(2, 2)`).
    pub const fn max_pool2d(window: usize, stride: usize) -> Layer {
        Layer::max_pool2d_with(Pool2dConfig::new(window, window, stride))
    }

    /// Max pooling with any [`Pool2dConfig`].
    pub const fn max_pool2d_with(config: Pool2dConfig) -> Layer {
        Layer { frozen: false, kind: LayerKind::MaxPool2d(config) }
    }

    /// Average pooling over `window × window` windows moved by `stride`.
    pub const fn avg_pool2d(window: usize, stride: usize) -> Layer {
        Layer::avg_pool2d_with(Pool2dConfig::new(window, window, stride))
    }

    /// Average pooling with any [`Pool2dConfig`].
    pub const fn avg_pool2d_with(config: Pool2dConfig) -> Layer {
        Layer { frozen: false, kind: LayerKind::AvgPool2d(config) }
    }

    /// Global average pooling: each channel's mean.
    pub const fn global_avg_pool2d() -> Layer {
        Layer { frozen: false, kind: LayerKind::GlobalAvgPool2d }
    }

    /// An image as flat features (records nothing; see [`LayerKind::Flatten`]).
    pub const fn flatten() -> Layer {
        Layer { frozen: false, kind: LayerKind::Flatten }
    }

    /// What the layer computes.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub const fn kind(&self) -> LayerKind {
        self.kind
    }

    /// This layer **frozen**: its parameters are read from the caller's read-only slice (a
    /// `static` in flash, [`Memory::frozen`](crate::Memory::frozen)) and get no gradient, no
    /// optimizer state and no RAM. Frozen layers are the lowest of a model: every layer below
    /// the first trainable dense or convolution layer is the frozen base, which a training step
    /// runs forward-only in eval mode (batch norm on its running statistics, no dropout), with
    /// no gradient flowing into it ([`Model::frozen_layers`](super::Model::frozen_layers)).
    ///
    /// ```
    /// use staticgrad::model::{Layer, Model};
    /// // 196 → 64 frozen (in flash), 64 → 10 trained.
    /// const NET: Model = Model::new(196, &[Layer::dense(64).frozen(), Layer::relu(), Layer::dense(10)]);
    /// const _: () = assert!(NET.validate().is_ok());
    /// assert_eq!((NET.frozen_layers(), NET.frozen_len(), NET.param_len()), (2, 196 * 64 + 64, 64 * 10 + 10));
    /// ```
    pub const fn frozen(mut self) -> Layer {
        self.frozen = true;
        self
    }

    /// True if the layer was marked [`frozen`](Self::frozen).
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub const fn is_frozen(&self) -> bool {
        self.frozen
    }

    /// Parameter tensors the layer allocates: 2 for dense and convolution, 4 for batch norm, 0
    /// otherwise.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) const fn tensors(&self) -> usize {
        match self.kind {
            LayerKind::Dense { .. } | LayerKind::Conv2d { .. } => 2,
            LayerKind::BatchNorm(_) => crate::ops::batchnorm::BatchNorm::TENSORS,
            _ => 0,
        }
    }
}

/// The shape of one example as it flows through the layers: channels × height × width.
///
/// Flat features are `1 × 1 × features` with `image` false; an image input
/// ([`Model::image`](super::Model::image)) starts at `(C, H, W)`, convolution and pooling change
/// all three, and flatten or a dense layer make them flat again. The one walk over the layers
/// carries this, not a feature count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dims {
    pub(crate) channels: usize,
    pub(crate) height: usize,
    pub(crate) width: usize,
    /// An image (what convolution and pooling take), not flat features.
    pub(crate) image: bool,
}

impl Dims {
    /// Flat features.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) const fn flat(features: usize) -> Dims {
        Dims { channels: 1, height: 1, width: features, image: false }
    }

    /// An image.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) const fn image(image: ImageShape) -> Dims {
        Dims { channels: image.channels, height: image.height, width: image.width, image: true }
    }

    /// As the ops' [`ImageShape`].
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) const fn shape(&self) -> ImageShape {
        ImageShape::new(self.channels, self.height, self.width)
    }

    /// Values per example (saturating: a count that does not fit reads `usize::MAX`).
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) const fn features(&self) -> usize {
        self.channels.saturating_mul(self.height).saturating_mul(self.width)
    }
}
