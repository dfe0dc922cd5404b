//! [`MlpSpec`], the short constructor of the common model: a multi-layer perceptron whose hidden
//! layers all share one activation and, optionally, batch norm and dropout.
//!
//! Layer order is the book's `MultiLayerNetExtend`: each hidden layer is
//! `Dense → [BatchNorm] → activation → [Dropout]`, the last layer a lone `Dense` whose output (the
//! logits) goes to the loss. [`MlpSpec::model`] turns it into a [`Model`] without a layer array:
//! the model computes layer `i` from the widths ([`MlpLayers::layer`]), so a `const` spec costs
//! a firmware nothing.

use super::plan::Tally;
use super::{Activation, DenseAt, Layer, Loss, Model, layer_op};
use crate::init::Init;
use crate::ops::batchnorm::{BatchNorm, BatchNormConfig};
use crate::ops::dropout::Dropout;

/// A multi-layer perceptron: widths (input, hidden…, output), one activation for every hidden
/// layer, optional batch norm and dropout, initialisation and loss. Build it with `const fn`s and
/// run it as a [`Model`] ([`model`](Self::model)).
///
/// ```
/// use staticgrad::model::{Layer, MlpSpec, Model};
/// use staticgrad::{Activation, Dropout};
/// const SPEC: MlpSpec = MlpSpec::new(&[784, 100, 10])
///     .with_activation(Activation::Sigmoid)
///     .with_dropout(Dropout::inverted(0.5));
/// const NET: Model = SPEC.model();
/// const LIST: [Layer; 4] = [
///     Layer::dense(100), Layer::sigmoid(), Layer::dropout(Dropout::inverted(0.5)), Layer::dense(10),
/// ];
/// assert_eq!(NET.layer_count(), 4);
/// for (i, layer) in LIST.iter().enumerate() {
///     assert_eq!(NET.layer(i), Some(*layer));
/// }
/// assert_eq!(NET.plan(8, &staticgrad::optim::Optimizer::sgd()), Model::new(784, &LIST).plan(8, &staticgrad::optim::Optimizer::sgd()));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MlpSpec<'a> {
    /// Layer widths: input, hidden layers…, output (at least two entries).
    pub widths: &'a [usize],
    /// Activation after every hidden layer.
    pub activation: Activation,
    /// Batch norm after every hidden dense layer, if any.
    pub batch_norm: Option<BatchNormConfig>,
    /// Dropout after every hidden activation, if any.
    pub dropout: Option<Dropout>,
    /// Initialisation of the weights (biases start at 0, γ at 1, β at 0).
    pub init: Init,
    /// The training loss.
    pub loss: Loss,
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

    /// With batch norm after every hidden dense layer.
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

    /// The model: `widths[0]` inputs, then for each hidden width `Dense → [BatchNorm] →
    /// activation → [Dropout]`, then `Dense` to the last width. A spec with fewer than two widths
    /// gives a model without layers, which [`Model::validate`] refuses.
    pub const fn model(self) -> Model<'a> {
        let layers = MlpLayers {
            widths: self.widths,
            activation: self.activation,
            batch_norm: self.batch_norm,
            dropout: self.dropout,
        };
        Model::from_mlp(layers, self.init, self.loss)
    }
}

/// An [`MlpSpec`]'s layers in compact form: layer `i` and the `l`-th dense layer are computed
/// from the widths, so with a `const` spec each is a constant without a walk.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct MlpLayers<'a> {
    pub(crate) widths: &'a [usize],
    pub(crate) activation: Activation,
    pub(crate) batch_norm: Option<BatchNormConfig>,
    pub(crate) dropout: Option<Dropout>,
}

impl MlpLayers<'_> {
    /// Hidden layers.
    #[cfg_attr(not(debug_assertions), inline(always))]
    const fn hidden(&self) -> usize {
        self.widths.len().saturating_sub(2)
    }

    /// List entries per hidden layer: dense, [batch norm], activation, [dropout].
    #[cfg_attr(not(debug_assertions), inline(always))]
    const fn per_hidden(&self) -> usize {
        2 + self.batch_norm.is_some() as usize + self.dropout.is_some() as usize
    }

    /// Parameter tensors per hidden layer.
    #[cfg_attr(not(debug_assertions), inline(always))]
    const fn tensors_per_hidden(&self) -> usize {
        if self.batch_norm.is_some() { 2 + BatchNorm::TENSORS } else { 2 }
    }

    /// Layers in the list (none for fewer than two widths).
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) const fn len(&self) -> usize {
        if self.widths.len() < 2 {
            0
        } else {
            self.hidden().saturating_mul(self.per_hidden()).saturating_add(1)
        }
    }

    /// Dense layers.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) const fn dense_layers(&self) -> usize {
        self.widths.len().saturating_sub(1)
    }

    /// Output features (0 without layers).
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) const fn outputs(&self) -> usize {
        match self.widths.last() {
            Some(&w) if self.widths.len() >= 2 => w,
            _ => 0,
        }
    }

    /// Layer `i` of the list.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) const fn layer(&self, i: usize) -> Option<Layer> {
        if self.widths.len() < 2 {
            return None;
        }
        let (hidden, per) = (self.hidden(), self.per_hidden());
        let (l, j) = (i / per, i % per);
        if l == hidden && j == 0 {
            return Some(Layer::dense(self.widths[hidden + 1]));
        }
        if l >= hidden {
            return None;
        }
        let act = Layer::activation(self.activation);
        match (j, self.batch_norm, self.dropout) {
            (0, _, _) => Some(Layer::dense(self.widths[l + 1])),
            (1, Some(c), _) => Some(Layer::batch_norm(c)),
            (1, None, _) | (2, Some(_), _) => Some(act),
            (2, None, Some(d)) | (3, _, Some(d)) => Some(Layer::dropout(d)),
            _ => None,
        }
    }

    /// Where the walk meets dense layer `l`.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) const fn dense_at(&self, l: usize) -> Option<DenseAt> {
        if l >= self.dense_layers() {
            return None;
        }
        Some(DenseAt {
            index: l.saturating_mul(self.per_hidden()),
            inputs: self.widths[l],
            units: self.widths[l + 1],
            tensor: l.saturating_mul(self.tensors_per_hidden()),
        })
    }

    /// The op kinds of the layers, as [`OpSet`](crate::tape::OpSet) bits.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) const fn layer_ops(&self) -> u32 {
        if self.hidden() == 0 {
            return 0;
        }
        let mut bits = layer_op(Layer::activation(self.activation));
        if let Some(c) = self.batch_norm {
            bits |= layer_op(Layer::batch_norm(c));
        }
        if let Some(d) = self.dropout {
            bits |= layer_op(Layer::dropout(d));
        }
        bits
    }

    /// `t` after every layer, in [`layer`](Self::layer)'s order (and `for_each_layer!`'s): a
    /// loop over the widths (as constant as they are), not over list positions.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) const fn tally(&self, mut t: Tally) -> Tally {
        let mut l = 0;
        while l + 1 < self.widths.len() {
            t = t.add(Layer::dense(self.widths[l + 1]));
            if l + 2 < self.widths.len() {
                if let Some(c) = self.batch_norm {
                    t = t.add(Layer::batch_norm(c));
                }
                t = t.add(Layer::activation(self.activation));
                if let Some(d) = self.dropout {
                    t = t.add(Layer::dropout(d));
                }
            }
            l += 1;
        }
        t
    }
}
