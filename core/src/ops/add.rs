//! Addition: `y = a + b`, where `b` has `a`'s shape or is a `1 × cols` row broadcast over the
//! rows of `a` (a bias, a residual). Backward: `da += dy`; `db += dy` or its column sums.

use crate::error::{Error, Result};
use crate::kernels;
use crate::tape::{Grads, Node, NodeIndex, Op, Tape, Var};

impl Tape<'_> {
    /// `a + b`, with `b` of `a`'s shape or a `1 × a.cols` row.
    pub fn add(&mut self, a: Var, b: Var) -> Result<Var> {
        let (a, b) = (self.check(a)?, self.check(b)?);
        let (an, bn) = (self.node_at(a)?, self.node_at(b)?);
        let broadcast = bn.shape.rows == 1 && bn.shape.cols == an.shape.cols;
        if bn.shape != an.shape && !broadcast {
            return Err(Error::Shape { op: "add", expected: an.shape, found: bn.shape });
        }
        let (v, off) = self.push(Op::Add { a, b }, an.shape, 0, an.needs_grad() || bn.needs_grad())?;
        let (lo, out) = self.split_for_write(off);
        let (x, y) = (lo.get(an.range()).unwrap_or_default(), lo.get(bn.range()).unwrap_or_default());
        let out = out.get_mut(..x.len()).unwrap_or_default();
        if bn.shape == an.shape {
            for ((o, &xv), &yv) in out.iter_mut().zip(x).zip(y) {
                *o = xv + yv;
            }
        } else if !y.is_empty() {
            for (orow, xrow) in out.chunks_exact_mut(y.len()).zip(x.chunks_exact(y.len())) {
                for ((o, &xv), &yv) in orow.iter_mut().zip(xrow).zip(y) {
                    *o = xv + yv;
                }
            }
        }
        Ok(self.var(v))
    }
}

pub(crate) fn backward(mut g: Grads, node: Node, a: NodeIndex, b: NodeIndex) -> Result<()> {
    let (an, bn) = (g.node(a), g.node(b));
    if an.needs_grad() {
        let (dy, da) = g.out_and(node, a);
        for (d, &v) in da.iter_mut().zip(dy) {
            *d += v;
        }
    }
    if bn.needs_grad() {
        let (dy, db) = g.out_and(node, b);
        if bn.shape == node.shape {
            for (d, &v) in db.iter_mut().zip(dy) {
                *d += v;
            }
        } else {
            kernels::col_sum_acc(dy, db, node.shape.rows, node.shape.cols);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::testutil::*;
    use crate::{Error, Shape};

    #[test]
    fn value_same_shape_and_broadcast() {
        let a: &[f32] = &[1.0, 2.0, 3.0, 4.0];
        let out = forward_binary(
            (a, Shape::new(2, 2)),
            (&[10.0, 20.0, 30.0, 40.0], Shape::new(2, 2)),
            |t, a, b| t.add(a, b),
        );
        assert_eq!(out, [11.0, 22.0, 33.0, 44.0]);
        let out =
            forward_binary((a, Shape::new(2, 2)), (&[10.0, 20.0], Shape::row(2)), |t, a, b| t.add(a, b));
        assert_eq!(out, [11.0, 22.0, 13.0, 24.0]);
    }

    #[test]
    fn shape_mismatch() {
        let err = try_binary(Shape::new(2, 3), Shape::new(3, 2), |t, a, b| t.add(a, b));
        assert!(matches!(err, Err(Error::Shape { op: "add", .. })));
    }

    #[test]
    fn gradcheck_random() {
        check_binary(Shape::new(3, 4), Shape::new(3, 4), |t, a, b| t.add(a, b));
        check_binary(Shape::new(3, 4), Shape::row(4), |t, a, b| t.add(a, b));
    }

    #[test]
    fn same_var_twice_gets_both_contributions() {
        let out = grad_of_self_binary(&[1.0, -2.0], |t, a| t.add(a, a));
        assert_eq!(out, [2.0, 2.0]);
    }
}
