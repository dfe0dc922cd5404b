//! Mean squared error: `L = Σ (a − t)² / n` over all `n` elements (a `1 × 1` value).
//! Backward: `da += dy·2(a − t)/n`, `dt −= dy·2(a − t)/n` (when the target needs a gradient).

use crate::error::{Error, Result};
use crate::shape::Shape;
use crate::tape::{Grads, Node, NodeIndex, Op, Tape, Var};

impl Tape<'_> {
    /// Mean of `(a − target)²` over all elements; shapes must match.
    pub fn mse(&mut self, a: Var, target: Var) -> Result<Var> {
        let y = self.mse_at(self.check(a)?, self.check(target)?)?;
        Ok(self.var(y))
    }

    /// [`mse`](Self::mse) of nodes `a` and `target` (the core's own recording path).
    pub(crate) fn mse_at(&mut self, a: NodeIndex, target: NodeIndex) -> Result<NodeIndex> {
        let (an, tn) = (self.node_at(a)?, self.node_at(target)?);
        if an.shape != tn.shape || an.shape.is_empty() {
            return Err(Error::Shape { op: "mse", expected: an.shape, found: tn.shape });
        }
        let (v, off) =
            self.push(Op::Mse { a, target }, Shape::SCALAR, 0, an.needs_grad() || tn.needs_grad())?;
        let (lo, out) = self.split_for_write(off);
        out.fill(value(lo.get(an.range()).unwrap_or_default(), lo.get(tn.range()).unwrap_or_default())); // the 1 × 1 loss
        Ok(v)
    }
}

/// `Σ (x − t)² / n` over the `n` elements of `x` (and `t`, as long).
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn value(x: &[f32], t: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for (&x, &t) in x.iter().zip(t) {
        let d = x - t;
        s += d * d;
    }
    s / x.len() as f32
}

/// `dx += (dy·2/n)·(x − t)`: the gradient with respect to the prediction, `dy` upstream.
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn backward_pred(x: &[f32], t: &[f32], dy: f32, dx: &mut [f32]) {
    let c = dy * (2.0 / x.len() as f32);
    for ((d, &x), &t) in dx.iter_mut().zip(x).zip(t) {
        *d += c * (x - t);
    }
}

pub(crate) fn backward(mut g: Grads, node: Node, a: NodeIndex, target: NodeIndex) -> Result<()> {
    let (an, tn) = (g.node(a), g.node(target));
    let vals = g.vals;
    let (x, t) = (vals.get(an.range()).unwrap_or_default(), vals.get(tn.range()).unwrap_or_default());
    if an.needs_grad() {
        let (dy, da) = g.out_and(node, a);
        backward_pred(x, t, dy.first().copied().unwrap_or_default(), da);
    }
    if tn.needs_grad() {
        let (dy, dt) = g.out_and(node, target);
        let c = dy.first().copied().unwrap_or_default() * (2.0 / x.len() as f32);
        for ((d, &x), &t) in dt.iter_mut().zip(x).zip(t) {
            *d -= c * (x - t);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::Shape;
    use crate::testutil::*;

    #[test]
    fn value() {
        let out = forward_binary(
            (&[1.0, 2.0, 3.0, 4.0], Shape::new(2, 2)),
            (&[1.0, 0.0, 3.0, 6.0], Shape::new(2, 2)),
            |t, a, b| t.mse(a, b),
        );
        assert_eq!(out, [2.0]);
    }

    #[test]
    fn gradcheck_random() {
        check_binary(Shape::new(3, 2), Shape::new(3, 2), |t, a, b| t.mse(a, b));
    }
}
