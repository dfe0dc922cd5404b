//! Which way a training step computes its gradient: the one place that chooses, and every
//! threshold it uses with its reason. All four give the same bits (tests compare them); they
//! differ in speed and in the memory they need.

use super::{LayerKind, Model};
use crate::tape::OpSet;

/// How a training step runs ([`Model::step_path`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepPath {
    /// Forward, loss and backward straight through, without recording nodes (`direct.rs`): for
    /// tiny plain nets (dense and activation layers only, at most [`DIRECT_MAX_MACS`]
    /// multiply-adds per forward), where the tape's bookkeeping costs more than the arithmetic.
    Direct,
    /// The tape: record the forward, zero the gradients, a backward that adds into them.
    Recorded,
    /// The tape, with a backward that writes the gradients instead of adding to zeroed ones
    /// (at batch 1 a weight gradient is one outer product): for models of at least
    /// [`OVERWRITE_MIN_PARAMS`] parameters, where the zeroing pass is worth saving.
    Overwrite,
    /// The tape, with the **fused update**: each tensor is updated as soon as its gradient is
    /// complete, so there is no gradient buffer ([`Trainer::fused`](crate::Trainer::fused)).
    Fused,
}

/// Largest `rows × Σ in·units` (multiply-adds of one forward) that takes [`StepPath::Direct`]:
/// beyond it the bookkeeping it saves is noise next to the products, which the tiled kernels then
/// do better.
pub const DIRECT_MAX_MACS: usize = 1024;

/// Fewest parameters that take [`StepPath::Overwrite`] rather than [`StepPath::Recorded`]: a tiny
/// net is cheaper with the one `memset` of the zeroing than with the overwriting backward's
/// first-row special cases.
pub const OVERWRITE_MIN_PARAMS: usize = 1024;

impl Model<'_> {
    /// The path of a training step on `rows` rows, `fused` if the caller asked for the fused
    /// update. A `const fn`: with a `const` model and batch, a firmware's step compiles only the
    /// path it takes.
    ///
    /// ```
    /// use staticgrad::model::{Layer, MlpSpec, Model, StepPath};
    /// const XOR: Model = MlpSpec::new(&[2, 3, 1]).model();
    /// assert_eq!(XOR.step_path(4, false), StepPath::Direct);
    /// assert_eq!(XOR.step_path(4, true), StepPath::Fused);
    /// const MNIST: Model = MlpSpec::new(&[784, 100, 10]).model();
    /// assert_eq!(MNIST.step_path(1, false), StepPath::Overwrite);
    /// ```
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub const fn step_path(&self, rows: usize, fused: bool) -> StepPath {
        if fused {
            StepPath::Fused
        } else if self.is_plain() && rows.saturating_mul(self.macs_per_row()) <= DIRECT_MAX_MACS {
            StepPath::Direct
        } else if self.param_len() >= OVERWRITE_MIN_PARAMS {
            StepPath::Overwrite
        } else {
            StepPath::Recorded
        }
    }

    /// Multiply-adds of one row's forward through the dense layers.
    #[cfg_attr(not(debug_assertions), inline(always))]
    const fn macs_per_row(&self) -> usize {
        let (mut macs, mut l) = (0usize, 0);
        while l < self.dense_layers() {
            if let Some(d) = self.dense_at(l) {
                macs = macs.saturating_add(d.inputs.saturating_mul(d.units));
            }
            l += 1;
        }
        macs
    }

    /// Whether the list is `Dense (Activation Dense)*`, the only graph the direct path runs.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) const fn is_plain(&self) -> bool {
        if self.inputs() == 0 || self.layer_count() % 2 == 0 {
            return false;
        }
        if self.frozen_layers() > 0 {
            return false; // the direct path reads every weight from the value buffer
        }
        if self.layer_ops() & (OpSet::BATCH_NORM | OpSet::DROPOUT) != 0 {
            return false;
        }
        if let super::Layers::Mlp(_) = self.layers {
            return true; // an MLP spec's order is fixed: without these, it alternates
        }
        let mut i = 0;
        while i < self.layer_count() {
            let plain = match self.layer(i) {
                Some(layer) => match layer.kind() {
                    LayerKind::Dense { .. } => i % 2 == 0,
                    LayerKind::Activation(_) => i % 2 == 1,
                    _ => false,
                },
                None => false,
            };
            if !plain {
                return false;
            }
            i += 1;
        }
        true
    }
}
