//! Dropout: in training each element is kept when its uniform draw `u ∈ [0, 1)` is greater than
//! the ratio `p` (so `u == p` is dropped, as in the book) and zeroed otherwise.
//!
//! Two forms ([`DropoutForm`]):
//! * **Inverted** (the default, what current frameworks do): kept values are scaled by
//!   `1/(1 − p)` in training, and evaluation is the identity (no node is recorded).
//! * **Book**: no rescale in training (`y = x·mask`), and evaluation multiplies by `1 − p`.
//!
//! Memory: the keep-mask is stored as bits, 23 per scratch float (each word is a float in
//! `[1, 2)` whose mantissa holds the bits, so it is always a normal number and survives any
//! copy), i.e. `⌈n/23⌉` floats instead of `n`. Backward: `dx += dy·mask·scale`.
//!
//! ```
//! use staticgrad::ops::dropout::Dropout;
//! use staticgrad::{Shape, TapeStorage};
//! let mut ts = TapeStorage::<64, 4>::new();
//! let mut tape = ts.tape();
//! let x = tape.input(&[1.0, 2.0, 3.0, 4.0], Shape::new(1, 4))?;
//! // Drive the mask with explicit draws: keep where u > 0.5.
//! let y = tape.dropout_with_uniform(x, Dropout::inverted(0.5), &[0.9, 0.1, 0.5, 0.7])?;
//! assert_eq!(tape.value(y)?, &[2.0, 0.0, 0.0, 8.0]);
//! # Ok::<(), staticgrad::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::shape::Shape;
use crate::tape::{Grads, Mode, Node, NodeIndex, Op, Tape, Var};
use rand_core::Rng;

/// Mask bits stored per scratch float.
pub const MASK_BITS_PER_FLOAT: usize = 23;
const ONE_BITS: u32 = 0x3F80_0000; // 1.0f32: exponent 0, mantissa free for the bits
const MANTISSA: u32 = 0x007F_FFFF;

/// How kept values are scaled (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DropoutForm {
    /// Scale by `1/(1 − p)` in training; identity in evaluation.
    #[default]
    Inverted,
    /// The book's form: no scale in training; multiply by `1 − p` in evaluation.
    Book,
}

/// A dropout layer's settings: the drop ratio `p ∈ [0, 1)` and the form.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout {
    /// Probability of dropping an element, `0 ≤ ratio < 1`.
    pub ratio: f32,
    /// Inverted (default) or book form.
    pub form: DropoutForm,
}

impl Dropout {
    /// Inverted dropout with drop ratio `ratio`.
    pub const fn inverted(ratio: f32) -> Dropout {
        Dropout { ratio, form: DropoutForm::Inverted }
    }

    /// The book's (non-inverted) dropout with drop ratio `ratio`.
    pub const fn book(ratio: f32) -> Dropout {
        Dropout { ratio, form: DropoutForm::Book }
    }

    /// Checks `0 ≤ ratio < 1` (and not NaN). A `const fn`, as [`Model::validate`](crate::model::Model::validate).
    pub const fn validate(&self) -> Result<()> {
        if self.ratio >= 0.0 && self.ratio < 1.0 {
            Ok(())
        } else {
            Err(Error::InvalidArgument { what: "dropout ratio", value: self.ratio })
        }
    }

    /// Factor applied to kept values in training.
    pub fn train_scale(&self) -> f32 {
        match self.form {
            DropoutForm::Inverted => 1.0 / (1.0 - self.ratio),
            DropoutForm::Book => 1.0,
        }
    }

    /// Factor applied to every value in evaluation.
    pub fn eval_scale(&self) -> f32 {
        match self.form {
            DropoutForm::Inverted => 1.0,
            DropoutForm::Book => 1.0 - self.ratio,
        }
    }

    /// Scratch floats a train-mode dropout over `n` elements reserves for its mask.
    pub const fn scratch_len(n: usize) -> usize {
        n.div_ceil(MASK_BITS_PER_FLOAT)
    }

    /// Tape nodes an eval-mode dropout records: none for the inverted form, one scale for the book's.
    pub const fn eval_nodes(&self) -> usize {
        match self.form {
            DropoutForm::Inverted => 0,
            DropoutForm::Book => 1,
        }
    }
}

impl Default for Dropout {
    /// Inverted dropout with the book's default ratio 0.5.
    fn default() -> Self {
        Dropout::inverted(0.5)
    }
}

/// A uniform draw in `[0, 1)` on the 2⁻²⁴ grid (every value exact in f32).
fn uniform(rng: &mut impl Rng) -> f32 {
    (rng.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
}

fn mask_bit(words: &[f32], i: usize) -> bool {
    let w = words[i / MASK_BITS_PER_FLOAT].to_bits() & MANTISSA;
    w >> (i % MASK_BITS_PER_FLOAT) & 1 == 1
}

impl Tape<'_> {
    /// Dropout of `x`. [`Mode::Train`]: draws one uniform per element from `rng` and keeps the
    /// element if the draw is greater than the ratio. [`Mode::Eval`]: the form's eval scale
    /// (the inverted form returns `x` itself and records nothing; `rng` is not used).
    pub fn dropout(&mut self, x: Var, cfg: Dropout, mode: Mode, rng: &mut impl Rng) -> Result<Var> {
        cfg.validate()?; // refused before the handle, as in `dropout_at`
        let y = self.dropout_at(self.check(x)?, cfg, mode, rng)?;
        Ok(self.var(y))
    }

    /// [`dropout`](Self::dropout) of node `x` (the core's own recording path).
    pub(crate) fn dropout_at(
        &mut self,
        x: NodeIndex,
        cfg: Dropout,
        mode: Mode,
        rng: &mut impl Rng,
    ) -> Result<NodeIndex> {
        cfg.validate()?;
        match mode {
            Mode::Train => self.dropout_keep(x, cfg, |_| uniform(rng) > cfg.ratio),
            Mode::Eval => match cfg.form {
                DropoutForm::Inverted => Ok(x),
                DropoutForm::Book => self.scale_at(x, cfg.eval_scale()),
            },
        }
    }

    /// Train-mode dropout driven by explicit uniform draws `u` (one per element of `x`, row-major):
    /// element `i` is kept if `u[i] > ratio`. For tests, gradient checks and replaying a mask.
    pub fn dropout_with_uniform(&mut self, x: Var, cfg: Dropout, u: &[f32]) -> Result<Var> {
        cfg.validate()?;
        let x = self.check(x)?;
        let shape = self.node_at(x)?.shape;
        if u.len() != shape.len() {
            return Err(Error::Shape {
                op: "dropout uniform draws",
                expected: shape,
                found: Shape::row(u.len()),
            });
        }
        let y = self.dropout_keep(x, cfg, |i| u[i] > cfg.ratio)?;
        Ok(self.var(y))
    }

    fn dropout_keep(
        &mut self,
        x: NodeIndex,
        cfg: Dropout,
        mut keep: impl FnMut(usize) -> bool,
    ) -> Result<NodeIndex> {
        let xn = self.node_at(x)?;
        let n = xn.shape.len();
        let scale = cfg.train_scale();
        let (v, off) =
            self.push(Op::Dropout { x, scale }, xn.shape, Dropout::scratch_len(n), xn.needs_grad())?;
        let (lo, out) = self.split_for_write(off);
        let (y, words) = out.split_at_mut(n);
        let xs = &lo[xn.range()];
        for (k, (ychunk, xchunk)) in
            y.chunks_mut(MASK_BITS_PER_FLOAT).zip(xs.chunks(MASK_BITS_PER_FLOAT)).enumerate()
        {
            let mut bits = 0u32;
            for (b, (o, &xv)) in ychunk.iter_mut().zip(xchunk).enumerate() {
                let kept = keep(k * MASK_BITS_PER_FLOAT + b);
                bits |= (kept as u32) << b;
                // x·0 keeps the sign of x (−0.0 for a dropped negative), as the book's x·mask.
                *o = xv * if kept { scale } else { 0.0 };
            }
            words[k] = f32::from_bits(ONE_BITS | bits);
        }
        Ok(v)
    }
}

pub(crate) fn backward(mut g: Grads, node: Node, x: NodeIndex, scale: f32) -> Result<()> {
    let n = node.shape.len();
    let vals = g.vals;
    let words = &vals[node.off + n..node.off + n + Dropout::scratch_len(n)];
    let (dy, dx) = g.out_and(node, x);
    for (i, (d, &dyv)) in dx.iter_mut().zip(dy).enumerate() {
        *d += dyv * if mask_bit(words, i) { scale } else { 0.0 };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Dropout, DropoutForm};
    use crate::gradcheck::{GradcheckConfig, gradcheck};
    use crate::testutil::*;
    use crate::{Error, Mode, ParamKind, Shape};
    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro128PlusPlus;
    use std::vec::Vec;

    #[test]
    fn book_and_inverted_train_and_eval() {
        let mut s = Storage::new();
        let (mut tape, _) = s.split();
        let x = tape.input(&[-3.0, -1.5, 0.0, 1.5, 3.0, 4.5], Shape::new(2, 3)).unwrap();
        let u = [0.9, 0.1, 0.5, 0.2, 0.75, 0.3];
        let y = tape.dropout_with_uniform(x, Dropout::book(0.2), &u).unwrap();
        let out = tape.value(y).unwrap();
        assert_eq!(out, &[-3.0, 0.0, 0.0, 0.0, 3.0, 4.5]);
        assert!(out[1].is_sign_negative(), "−1.5·0 is −0.0, as the book's x·mask");
        let y = tape.dropout_with_uniform(x, Dropout::inverted(0.5), &u).unwrap();
        assert_eq!(tape.value(y).unwrap(), &[-6.0, 0.0, 0.0, 0.0, 6.0, 0.0]);

        let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
        let nodes = tape.nodes_used();
        let y = tape.dropout(x, Dropout::inverted(0.5), Mode::Eval, &mut rng).unwrap();
        assert_eq!((y, tape.nodes_used()), (x, nodes), "inverted eval is the identity, no node");
        let y = tape.dropout(x, Dropout::book(0.5), Mode::Eval, &mut rng).unwrap();
        assert_eq!(tape.value(y).unwrap(), &[-1.5, -0.75, 0.0, 0.75, 1.5, 2.25]);
    }

    #[test]
    fn sampled_mask_keeps_about_one_minus_ratio_and_packs_bits() {
        let mut s = Storage::new();
        let (mut tape, _) = s.split();
        let n = 4000;
        let x = tape.input(&std::vec![1.0; n], Shape::new(40, 100)).unwrap();
        let before = tape.floats_used();
        let mut rng = Xoshiro128PlusPlus::seed_from_u64(7);
        let y = tape.dropout(x, Dropout::inverted(0.25), Mode::Train, &mut rng).unwrap();
        // Values and mask only: the output of dropping data needs no gradient.
        assert_eq!(tape.floats_used() - before, n + n.div_ceil(23));
        let out = tape.value(y).unwrap();
        let kept = out.iter().filter(|&&v| v != 0.0).count();
        assert!((2850..3150).contains(&kept), "kept {kept} of {n}");
        assert!(out.iter().all(|&v| v == 0.0 || (v - 4.0 / 3.0).abs() < 1e-6));
    }

    #[test]
    fn invalid_ratio_and_draws() {
        let mut s = Storage::new();
        let (mut tape, _) = s.split();
        let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
        let x = tape.input(&[1.0; 4], Shape::new(2, 2)).unwrap();
        for r in [1.0, -0.1, f32::NAN, 2.0] {
            let e = tape.dropout(x, Dropout { ratio: r, form: DropoutForm::Inverted }, Mode::Train, &mut rng);
            assert!(matches!(e, Err(Error::InvalidArgument { what: "dropout ratio", .. })));
        }
        let e = tape.dropout_with_uniform(x, Dropout::book(0.5), &[0.5; 3]);
        assert!(matches!(e, Err(Error::Shape { .. })));
        assert_eq!(tape.nodes_used(), 1);
    }

    #[test]
    fn gradcheck_fixed_mask_both_forms() {
        for cfg in [Dropout::inverted(0.4), Dropout::book(0.4)] {
            let mut s = Storage::new();
            let (mut tape, mut params) = s.split();
            let shape = Shape::new(5, 7);
            let a = params.alloc(shape, ParamKind::Weight).unwrap();
            params.value_mut(a).unwrap().copy_from_slice(&random_values(shape.len(), 0.0, 11));
            let u: Vec<f32> = random_values(shape.len(), 0.0, 12).iter().map(|v| (v + 2.0) / 4.0).collect();
            let c = random_values(shape.len(), 0.0, 13);
            let r = gradcheck(&mut tape, &mut params, GradcheckConfig::default(), |t, p| {
                let v = t.param(p, a)?;
                let y = t.dropout_with_uniform(v, cfg, &u)?;
                let w = t.input(&c, shape)?;
                let y = t.mul(y, w)?;
                t.sum(y)
            })
            .unwrap();
            std::eprintln!("gradcheck dropout {:?}: worst rel error {:.2e}", cfg.form, r.worst_rel_error);
            assert!(r.worst_rel_error < 1e-2, "{r:?}");
            // Dropped elements get exactly zero gradient.
            let g = params.grad(a).unwrap();
            for (i, &ui) in u.iter().enumerate() {
                if ui <= 0.4 {
                    assert_eq!(g[i], 0.0);
                }
            }
        }
    }
}
