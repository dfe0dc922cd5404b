//! Fused update: apply the update rule to each parameter tensor during backward, as soon as its
//! gradient is complete, so training needs **no parameter-gradient buffer**.
//!
//! [`Tape::backward_fused`](crate::Tape::backward_fused) walks the tape like
//! [`Tape::backward`](crate::Tape::backward); when it reaches the node that uses a parameter
//! (an affine layer, or a [`Tape::param`](crate::Tape::param) copy), that parameter's gradient is
//! final, so the node computes it one row at a time into a small scratch (as long as the widest
//! tensor row, see [`Params::fused`](crate::Params::fused)) and hands each row to a
//! [`FusedUpdate`] rule. A 196-32-10 MLP then needs a 32-float scratch instead of a 6,634-float
//! gradient buffer.
//!
//! Rules and limits:
//! * The result is **bit-identical** to `zero_grad` + `backward` + an element-wise step: each
//!   gradient element is summed in the same canonical order from 0.0, and an affine layer's input
//!   gradient is computed from the weights *before* they are updated.
//! * Each parameter may be used by one node only (a shared parameter's gradient is complete only
//!   at its last use): otherwise [`Error::Unsupported`], before anything
//!   is touched.
//! * The rule must be element-wise (SGD, Momentum, Nesterov, AdaGrad, RMSProp, Adam, AdamW,
//!   clipping by value). Global-norm clipping needs every gradient before the first update, so a
//!   rule configured with it must refuse in [`FusedUpdate::begin_step`].
//! * Parameters whose kind is not [trainable](crate::ParamKind::trainable) are never handed over.
//!
//! ```
//! use staticgrad::optim::Optimizer;
//! use staticgrad::{ParamEntry, ParamKind, Params, Shape, TapeStorage};
//! let (mut values, mut scratch, mut table) = ([0.0f32; 3], [0.0f32; 1], [ParamEntry::EMPTY; 2]);
//! let mut params = Params::fused(&mut values, &mut scratch, &mut table); // no gradient buffer
//! let w = params.alloc(Shape::new(2, 1), ParamKind::Weight)?;
//! let b = params.alloc(Shape::row(1), ParamKind::Bias)?;
//! params.value_mut(w)?.copy_from_slice(&[0.5, -1.0]);
//! let mut ts = TapeStorage::<64, 8>::new();
//! let mut tape = ts.tape();
//! let x = tape.input(&[1.0, 2.0], Shape::new(1, 2))?;
//! let y = tape.affine(x, &params, w, b)?;            // −1.5
//! let t = tape.input(&[0.5], Shape::SCALAR)?;
//! let loss = tape.mse(y, t)?;                         // gradient of y: 2·(−1.5 − 0.5) = −4
//! let sgd = Optimizer::sgd();
//! let mut state = [0.0f32; Optimizer::sgd().state_len(3)]; // SGD: the step counter only
//! tape.backward_fused(loss, &mut params, &sgd, &mut state, 0.125)?;
//! assert_eq!(params.value(w)?, &[1.0, 0.0]);          // w − 0.125·(−4·x)
//! assert_eq!(params.value(b)?, &[0.5]);
//! # Ok::<(), staticgrad::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::optim::{Clip, Optimizer, Rule, WeightDecay, sgd};
use crate::params::ParamEntry;

/// Which part of a tensor [`FusedUpdate::update`] is handed: elements
/// `start .. start + values.len()` of tensor `entry` (a row of a weight, or a whole bias).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FusedChunk {
    /// The tensor (its flat offset, shape and kind).
    pub entry: ParamEntry,
    /// Index of the part's first element inside the tensor.
    pub start: usize,
}

/// An element-wise update rule that [`Tape::backward_fused`](crate::Tape::backward_fused)
/// applies piece by piece. [`Optimizer`] is one (every rule, weight decay, clipping by value).
pub trait FusedUpdate {
    /// Called once per fused backward, before any [`update`](Self::update): validate the options
    /// and `lr`, advance the step counter in `state` (the rule's whole state buffer; Adam's bias
    /// correction depends on it), or refuse a configuration that needs all gradients at once
    /// (global-norm clipping) with [`Error::Unsupported`].
    fn begin_step(&self, state: &mut [f32], lr: f32) -> Result<()>;

    /// Updates `values` — part `at` of a tensor — given their complete gradient `grads` (same
    /// length; the rule may modify it, e.g. clip it). `state` is the rule's whole state buffer,
    /// as for an unfused step.
    fn update(
        &self,
        at: FusedChunk,
        values: &mut [f32],
        grads: &mut [f32],
        state: &mut [f32],
        lr: f32,
    ) -> Result<()>;

    /// Updates a whole weight tensor `at.entry` (`values`: `a.len()` rows of `d.len()`) whose
    /// gradient is the outer product `grad[r][j] = 0.0 + a[r]·d[j]` — an affine layer's weight at
    /// batch 1. The default hands each row to [`update`](Self::update) through `scratch` (at
    /// least `d.len()` floats); a rule may instead fuse gradient and update in one loop, with the
    /// same arithmetic, so the same bits.
    #[allow(clippy::too_many_arguments)]
    fn update_outer(
        &self,
        at: FusedChunk,
        values: &mut [f32],
        a: &[f32],
        d: &[f32],
        scratch: &mut [f32],
        state: &mut [f32],
        lr: f32,
    ) -> Result<()> {
        fused_default_outer(self, at, values, a, d, scratch, state, lr)
    }
}

impl FusedUpdate for Optimizer {
    /// Validates the options and `lr`, refuses [`Clip::GlobalNorm`] with
    /// [`Error::Unsupported`], then [`Optimizer::begin_step`].
    // The three methods are inlined: a fused step on a `const` optimizer then folds its checks
    // and keeps only its own rule's loop (and no `powf` unless it is Adam), as the step with a
    // gradient buffer does.
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn begin_step(&self, state: &mut [f32], lr: f32) -> Result<()> {
        if !(lr >= 0.0 && lr.is_finite()) {
            return Err(Error::InvalidArgument { what: "learning rate", value: lr });
        }
        self.validate()?;
        if let Clip::GlobalNorm(_) = self.clip {
            return Err(Error::Unsupported {
                what: "global-norm clipping with the fused update (it needs every gradient first)",
            });
        }
        Optimizer::begin_step(self, state)
    }

    /// [`Optimizer::update_part`].
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn update(
        &self,
        at: FusedChunk,
        values: &mut [f32],
        grads: &mut [f32],
        state: &mut [f32],
        lr: f32,
    ) -> Result<()> {
        self.update_part(at.entry, at.start, values, grads, state, lr)
    }

    /// Plain SGD without weight decay or clipping runs one fused loop,
    /// `p −= lr·(0.0 + a[r]·d[j])` (the gradient, then [`sgd::update`]),
    /// with 16 of the `d[j]` held in registers across the rows: the batch-1 hot path of on-device
    /// training. Every other configuration takes the default.
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn update_outer(
        &self,
        at: FusedChunk,
        values: &mut [f32],
        a: &[f32],
        d: &[f32],
        scratch: &mut [f32],
        state: &mut [f32],
        lr: f32,
    ) -> Result<()> {
        let plain = matches!(self.rule, Rule::Sgd)
            && matches!(self.weight_decay, WeightDecay::None)
            && matches!(self.clip, Clip::None);
        let (e, n) = (at.entry, d.len());
        let whole =
            at.start == 0 && values.len() == e.shape.len() && Some(values.len()) == a.len().checked_mul(n);
        if !plain || !whole || n == 0 {
            return fused_default_outer(self, at, values, a, d, scratch, state, lr);
        }
        if !(lr >= 0.0 && lr.is_finite()) {
            return Err(Error::InvalidArgument { what: "learning rate", value: lr });
        }
        if !e.kind.trainable() {
            return Ok(());
        }
        sgd_outer(values, a, d, lr);
        Ok(())
    }
}

/// Plain SGD's fused outer-product update, `p −= lr·(0.0 + a[r]·d[j])` for the `a.len() × d.len()`
/// row-major `values`, with 16 of the `d[j]` in registers across the rows. Out of line: the
/// batch-1 hot loop, compiled on its own.
#[inline(never)]
fn sgd_outer(values: &mut [f32], a: &[f32], d: &[f32], lr: f32) {
    const TILE: usize = 16;
    let n = d.len();
    if n == 0 {
        return;
    }
    let mut j0 = 0;
    for dt in d.chunks_exact(TILE) {
        let mut dr = [0.0f32; TILE];
        dr.copy_from_slice(dt);
        for (row, &ar) in values.chunks_exact_mut(n).zip(a) {
            if let Some(w) = row.get_mut(j0..j0 + TILE) {
                for (p, &dv) in w.iter_mut().zip(&dr) {
                    sgd::update(p, 0.0 + ar * dv, lr);
                }
            }
        }
        j0 += TILE;
    }
    let rest = d.get(j0..).unwrap_or_default();
    for (row, &ar) in values.chunks_exact_mut(n).zip(a) {
        for (p, &dv) in row.get_mut(j0..).unwrap_or_default().iter_mut().zip(rest) {
            sgd::update(p, 0.0 + ar * dv, lr);
        }
    }
}

/// The trait's default `update_outer`, callable from an override: row by row through `scratch`.
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn fused_default_outer<U: FusedUpdate + ?Sized>(
    rule: &U,
    at: FusedChunk,
    values: &mut [f32],
    a: &[f32],
    d: &[f32],
    scratch: &mut [f32],
    state: &mut [f32],
    lr: f32,
) -> Result<()> {
    let (n, available) = (d.len(), scratch.len());
    let g = scratch.get_mut(..n).ok_or(Error::Capacity {
        region: crate::Region::ParamGrads,
        needed: n,
        available,
    })?;
    if n == 0 {
        return Ok(());
    }
    for (r, (row, &ar)) in values.chunks_exact_mut(n).zip(a).enumerate() {
        for (g, &dv) in g.iter_mut().zip(d) {
            *g = 0.0 + ar * dv;
        }
        rule.update(FusedChunk { entry: at.entry, start: at.start + r * n }, row, g, state, lr)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::optim::{Clip, HEADER_LEN, Optimizer};
    use crate::testutil::random_values;
    use crate::{Error, ParamEntry, ParamKind, Params, Region, Shape, Tape};
    use std::vec;
    use std::vec::Vec;

    /// x(batch×4) → affine(4×5) → tanh → param copy of a 5×2 weight via matmul → mse: every kind of
    /// parameter use the fused walk handles (affine in place, `Tape::param`), with batch > 1.
    fn run(fused: bool, opt: Optimizer, steps: usize, batch: usize) -> Vec<f32> {
        let (mut values, mut grads, mut table) = (vec![0.0; 40], vec![0.0; 40], [ParamEntry::EMPTY; 3]);
        let mut scratch = [0.0f32; 5];
        let mut params = if fused {
            Params::fused(&mut values, &mut scratch, &mut table)
        } else {
            Params::new(&mut values, &mut grads, &mut table)
        };
        let w = params.alloc(Shape::new(4, 5), ParamKind::Weight).unwrap();
        let b = params.alloc(Shape::row(5), ParamKind::Bias).unwrap();
        let v = params.alloc(Shape::new(5, 2), ParamKind::Weight).unwrap();
        params.values_mut().copy_from_slice(&random_values(35, 0.0, 3));
        let (mut floats, mut nodes) = (vec![0.0; 256], vec![crate::Node::EMPTY; 16]);
        let mut tape = Tape::new(&mut floats, &mut nodes);
        let mut state = vec![0.0; opt.state_len(35)];
        for s in 0..steps {
            let x = tape.input(&random_values(4 * batch, 0.0, 10 + s as u64), Shape::new(batch, 4)).unwrap();
            let h = tape.affine(x, &params, w, b).unwrap();
            let h = tape.tanh(h).unwrap();
            let vp = tape.param(&params, v).unwrap();
            let y = tape.matmul(h, vp).unwrap();
            let t =
                tape.input(&[0.5, -0.5, 1.0, 0.0, -1.0, 0.25][..2 * batch], Shape::new(batch, 2)).unwrap();
            let loss = tape.mse(y, t).unwrap();
            if fused {
                tape.backward_fused(loss, &mut params, &opt, &mut state, 0.1).unwrap();
            } else {
                params.zero_grad();
                tape.backward(loss, &mut params).unwrap();
                opt.step(&mut params, &mut state, 0.1).unwrap();
            }
            tape.reset();
        }
        params.values().to_vec()
    }

    #[test]
    fn fused_equals_unfused_bit_for_bit() {
        for opt in [
            Optimizer::sgd(),
            Optimizer::momentum(),
            Optimizer::adagrad(),
            Optimizer::rmsprop().centered(true),
            Optimizer::adam(),
            Optimizer::adamw(0.01),
            Optimizer::sgd().with_clip(Clip::Value(0.05)),
        ] {
            // Batch 3 (row scratch) and batch 1 (`update_outer`, fused loop for plain SGD).
            for batch in [3, 1] {
                let (a, b) = (run(false, opt, 5, batch), run(true, opt, 5, batch));
                let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&a), bits(&b), "{opt:?} batch {batch}");
                assert_ne!(a, run(false, opt, 0, batch), "{opt:?} trained");
            }
        }
    }

    #[test]
    fn refusals() {
        let (mut values, mut scratch, mut table) = ([0.0f32; 8], [0.0f32; 2], [ParamEntry::EMPTY; 2]);
        let mut params = Params::fused(&mut values, &mut scratch, &mut table);
        let w = params.alloc(Shape::new(2, 2), ParamKind::Weight).unwrap();
        let b = params.alloc(Shape::row(2), ParamKind::Bias).unwrap();
        params.value_mut(w).unwrap().copy_from_slice(&[1.0, 2.0, 3.0, 4.0]);
        let (mut floats, mut nodes) = ([0.0f32; 64], [crate::Node::EMPTY; 8]);
        let mut tape = Tape::new(&mut floats, &mut nodes);
        let x = tape.input(&[1.0, 1.0], Shape::new(1, 2)).unwrap();
        let h = tape.affine(x, &params, w, b).unwrap();
        let y = tape.affine(h, &params, w, b).unwrap(); // the same weight twice
        let loss = tape.sum(y).unwrap();
        // No gradient buffer: the ordinary backward says so.
        assert_eq!(
            tape.backward(loss, &mut params),
            Err(Error::Capacity { region: Region::ParamGrads, needed: 6, available: 0 })
        );
        let before: Vec<f32> = params.values().to_vec();
        let sgd = Optimizer::sgd();
        assert!(matches!(
            tape.backward_fused(loss, &mut params, &sgd, &mut [0.0; HEADER_LEN], 0.1),
            Err(Error::Unsupported { .. })
        ));
        let clipped = Optimizer::sgd().with_clip(Clip::GlobalNorm(1.0));
        tape.reset();
        let x = tape.input(&[1.0, 1.0], Shape::new(1, 2)).unwrap();
        let y = tape.affine(x, &params, w, b).unwrap();
        let loss = tape.sum(y).unwrap();
        assert!(matches!(
            tape.backward_fused(loss, &mut params, &clipped, &mut [0.0; HEADER_LEN], 0.1),
            Err(Error::Unsupported { .. })
        ));
        assert!(matches!(
            tape.backward_fused(loss, &mut params, &sgd, &mut [0.0; HEADER_LEN], -1.0),
            Err(Error::InvalidArgument { .. })
        ));
        assert_eq!(params.values(), &before[..], "refused before anything was written");
        tape.backward_fused(loss, &mut params, &sgd, &mut [0.0; HEADER_LEN], 0.5).unwrap();
        assert_eq!(params.values(), &[0.5, 1.5, 2.5, 3.5, -0.5, -0.5]);
    }
}
