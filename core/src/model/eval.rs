//! Evaluating a [`Model`]: eval-mode logits, loss, predicted classes and accuracy, recorded with
//! gradients off (batch norm reads its running statistics, dropout draws nothing).

use super::Targets;
use super::{Example, Fill, Model};
use crate::error::{Error, Result};
use crate::kernels::Rows;
use crate::params::Params;
use crate::shape::Shape;
use crate::tape::{Mode, NodeIndex, Tape, Var};

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

impl Model<'_> {
    /// Eval-mode logits of `x` on a reset tape, recorded with gradients off (read them with
    /// [`Tape::value`]).
    pub fn logits(&self, tape: &mut Tape<'_>, params: &Params, x: &[f32]) -> Result<Var> {
        let y = self.logits_at(tape, params, x)?;
        Ok(tape.var(y))
    }

    /// [`logits`](Self::logits) as the node's index (for the core's own readers), of a slice
    /// or of an example written in place ([`Example`]).
    pub(crate) fn logits_at(
        &self,
        tape: &mut Tape<'_>,
        params: &Params,
        x: impl Example,
    ) -> Result<NodeIndex> {
        tape.reset();
        let rows = x.rows(self)?;
        let was = tape.grad_enabled();
        tape.set_grad_enabled(false);
        let out = x.record(tape, Shape::new(rows, self.inputs())).and_then(|xv| {
            self.validate()?;
            // The layout first: weights of another model would otherwise fail deep in an op with
            // a shape that does not say which tensor is wrong (or, shapes alike, not at all).
            self.check_layout(params)?;
            self.walk(tape, params, xv, Mode::Eval, &mut NoDraws, Rows::of(rows))
        });
        tape.set_grad_enabled(was);
        out
    }

    /// Eval-mode loss of `x` against `targets` (as the book's `Trainer` logs it: after the
    /// update, with `train_flg=False`), without backward. Resets the tape before and after; needs
    /// [`eval_tape_floats`](Self::eval_tape_floats)` + `[`loss_tape_floats`](Self::loss_tape_floats).
    pub fn eval_loss(
        &self,
        tape: &mut Tape<'_>,
        params: &Params,
        x: &[f32],
        targets: Targets,
    ) -> Result<f32> {
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
    pub fn predict(&self, tape: &mut Tape<'_>, params: &Params, x: &[f32], out: &mut [u32]) -> Result<()> {
        self.predict_from(tape, params, x, out)
    }

    /// [`predict`](Self::predict) of an example of `rows` rows written in place by `fill`
    /// ([`Fill`]). `rows` is an argument of its own, not a field of the fill: a firmware calls this
    /// out of line from several places with the same constant, which then folds into the walk
    /// (a field behind the fill's pointer would not, and the walk would take its any-rows kernels).
    pub(crate) fn predict_with(
        &self,
        tape: &mut Tape<'_>,
        params: &Params,
        rows: usize,
        fill: impl FnOnce(&mut [f32]),
        out: &mut [u32],
    ) -> Result<()> {
        self.predict_from(tape, params, Fill { rows, fill }, out)
    }

    /// [`predict`](Self::predict) of a slice or of an example written in place ([`Example`]).
    pub(crate) fn predict_from(
        &self,
        tape: &mut Tape<'_>,
        params: &Params,
        x: impl Example,
        out: &mut [u32],
    ) -> Result<()> {
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
        tape: &mut Tape<'_>,
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

/// Index of the first maximum of `row`, or of its first NaN.
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
    use super::argmax;
    use crate::testutil::Storage;
    use crate::{Error, Layer, Model};

    #[test]
    fn evaluation_checks_the_weights_are_this_models() {
        // 4 → 3 → 2 and 4 → 2 → 3: the same two tensors, of other shapes.
        let (a, b) = ([Layer::dense(3), Layer::relu(), Layer::dense(2)], [Layer::dense(2), Layer::dense(3)]);
        let (ma, mb) = (Model::new(4, &a), Model::new(4, &b));
        let mut s = Storage::new();
        let (mut tape, mut params) = s.split();
        mb.alloc(&mut params).unwrap();
        let x = [0.5f32; 4];
        let mut out = [0u32; 1];
        let e = ma.predict(&mut tape, &params, &x, &mut out).unwrap_err();
        assert!(matches!(e, Error::Shape { op: "model weight", .. }), "{e:?}");
        assert!(matches!(ma.correct(&mut tape, &params, &x, &[0], 1), Err(Error::Shape { .. })));
        assert!(mb.predict(&mut tape, &params, &x, &mut out).is_ok());
    }

    #[test]
    fn argmax_first_max_and_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(argmax(&[1.0, f32::NAN, 5.0]), 1);
        assert_eq!(argmax(&[f32::NEG_INFINITY; 3]), 0);
    }
}
