//! Softmax cross-entropy with class-index labels, fused and numerically stable, mean over the
//! batch. Forward subtracts each row's maximum before `exp`; it also stores
//! `(softmax − onehot) / batch` in scratch, which is the whole backward (times the upstream
//! gradient, 1 for a loss).
//!
//! Two loss forms: [`Tape::softmax_cross_entropy`] is the exact `−log softmax`
//! (`−(x_t − max − ln Σ e^(x−max))`, finite for any finite logits); the book's form
//! [`Tape::softmax_cross_entropy_eps`] is `−ln(y_t + eps)` with `eps = 1e-7`, which caps a
//! saturated wrong prediction at `−ln 1e-7 ≈ 16.1`. Both have the same gradient (the book's
//! backward ignores `eps`).

use crate::error::{Error, Result};
use crate::kernels;
use crate::shape::Shape;
use crate::tape::{Grads, Node, NodeIndex, Op, Tape, Var};

/// The book's `eps` inside the logarithm.
pub const BOOK_EPS: f32 = 1e-7;

impl Tape<'_> {
    /// Mean over rows of `−log softmax(logits)[label]`; `labels[i] < logits.cols`.
    pub fn softmax_cross_entropy(&mut self, logits: Var, labels: &[u32]) -> Result<Var> {
        let y = self.softmax_ce(self.check(logits)?, labels, None)?;
        Ok(self.var(y))
    }

    /// The book's form: mean over rows of `−ln(softmax(logits)[label] + eps)`.
    pub fn softmax_cross_entropy_eps(&mut self, logits: Var, labels: &[u32], eps: f32) -> Result<Var> {
        let y = self.softmax_ce(self.check(logits)?, labels, Some(eps))?;
        Ok(self.var(y))
    }

    /// Either form, of node `logits` (the core's own recording path); `eps` for the book's.
    pub(crate) fn softmax_ce(
        &mut self,
        logits: NodeIndex,
        labels: &[u32],
        eps: Option<f32>,
    ) -> Result<NodeIndex> {
        let ln = self.node_at(logits)?;
        let (rows, classes) = (ln.shape.rows, ln.shape.cols);
        check_labels(labels, rows, classes)?;
        // Scratch (the per-element gradient) sits right after the 1-float output.
        let dlogits = self.next_offset() + 1;
        let op = Op::SoftmaxCrossEntropy { logits, dlogits };
        let (v, off) = self.push(op, Shape::SCALAR, rows * classes, ln.needs_grad())?;
        let (lo, out) = self.split_for_write(off);
        // `push` reserved the loss and its scratch: never empty.
        let Some((loss, probs)) = out.split_first_mut() else { return Ok(v) };
        *loss = forward(lo.get(ln.range()).unwrap_or_default(), labels, probs, classes, eps);
        Ok(v)
    }
}

/// Refuses labels that are not one per row, each below `classes`.
pub(crate) fn check_labels(labels: &[u32], rows: usize, classes: usize) -> Result<()> {
    if labels.len() != rows || rows == 0 || classes == 0 {
        return Err(Error::Shape {
            op: "softmax_cross_entropy labels",
            expected: Shape::new(rows.max(1), 1),
            found: Shape::new(labels.len(), 1),
        });
    }
    if let Some((row, &label)) = labels.iter().enumerate().find(|&(_, &l)| l as usize >= classes) {
        return Err(Error::Label { row, label: label as usize, classes });
    }
    Ok(())
}

/// The loss of the `rows × classes` logits `x` (rows = `labels.len()`, every label below
/// `classes`, checked by the caller); writes `(softmax − onehot) / rows` into `probs`.
#[inline]
pub(crate) fn forward(x: &[f32], labels: &[u32], probs: &mut [f32], classes: usize, eps: Option<f32>) -> f32 {
    let rows = labels.len();
    let inv_n = 1.0 / rows as f32;
    let mut total = 0.0f32;
    // Three passes so the exponentials run over the whole batch in one vectorised loop
    // (rows are often as short as 10 classes); each element sees the same operations.
    // `classes ≥ 1` (checked by the caller); said again so that no `chunks_exact` panic is linked
    // where the caller's check is out of sight.
    let classes = classes.max(1);
    let n = (rows * classes).min(x.len()).min(probs.len());
    let (x, probs) = (x.get(..n).unwrap_or_default(), probs.get_mut(..n).unwrap_or_default());
    for (xrow, prow) in x.chunks_exact(classes).zip(probs.chunks_exact_mut(classes)) {
        let max = xrow.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        for (p, &xv) in prow.iter_mut().zip(xrow) {
            *p = xv - max;
        }
    }
    kernels::map_in_place(probs, kernels::expf); // libm::expf bit for bit
    for ((xrow, prow), &t) in x.chunks_exact(classes).zip(probs.chunks_exact_mut(classes)).zip(labels) {
        let t = t as usize;
        let max = xrow.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let s = kernels::sum(prow);
        for p in prow.iter_mut() {
            *p /= s;
        }
        total += match eps {
            None => -((xrow.get(t).copied().unwrap_or_default() - max) - kernels::logf(s)),
            Some(e) => -kernels::logf(prow.get(t).copied().unwrap_or_default() + e),
        };
        if let Some(p) = prow.get_mut(t) {
            *p -= 1.0; // labels were checked: always
        }
        for p in prow.iter_mut() {
            *p *= inv_n;
        }
    }
    total * inv_n
}

pub(crate) fn backward(mut g: Grads, node: Node, logits: NodeIndex, dlogits: usize) -> Result<()> {
    let vals = g.vals;
    let (dy, dx) = g.out_and(node, logits);
    let dy = dy.first().copied().unwrap_or_default();
    for (d, &p) in dx.iter_mut().zip(vals.get(dlogits..).unwrap_or_default()) {
        *d += dy * p;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::testutil::*;
    use crate::{Error, Shape};

    #[test]
    fn bad_label_and_shape() {
        let mut s = Storage::new();
        let (mut tape, _) = s.split();
        let x = tape.input(&[0.0; 6], Shape::new(2, 3)).unwrap();
        assert_eq!(
            tape.softmax_cross_entropy(x, &[0, 3]),
            Err(Error::Label { row: 1, label: 3, classes: 3 })
        );
        assert!(matches!(tape.softmax_cross_entropy(x, &[0]), Err(Error::Shape { .. })));
        assert_eq!(tape.nodes_used(), 1, "a refused op records nothing");
    }

    #[test]
    fn uniform_logits_give_ln_classes() {
        let mut s = Storage::new();
        let (mut tape, _) = s.split();
        let x = tape.input(&[5.0; 20], Shape::new(2, 10)).unwrap();
        let l = tape.softmax_cross_entropy(x, &[3, 9]).unwrap();
        assert!((tape.scalar(l).unwrap() - 10f32.ln()).abs() < 1e-6);
    }

    #[test]
    fn huge_logits_stay_finite() {
        let mut s = Storage::new();
        let (mut tape, _) = s.split();
        let x = tape.input(&[1000.0, 0.0, -1000.0], Shape::new(1, 3)).unwrap();
        let l = tape.softmax_cross_entropy(x, &[2]).unwrap();
        assert_eq!(tape.scalar(l).unwrap(), 2000.0);
        let l = tape.softmax_cross_entropy_eps(x, &[2], super::BOOK_EPS).unwrap();
        assert!((tape.scalar(l).unwrap() - 16.118_095).abs() < 1e-4);
    }

    #[test]
    fn gradcheck_random() {
        check_loss(Shape::new(4, 5), |t, v| t.softmax_cross_entropy(v, &[0, 4, 2, 2]));
    }
}
