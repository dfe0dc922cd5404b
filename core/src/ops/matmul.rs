//! Matrix product of two tape values: `y = a·b`; backward `da += dy·bᵀ`, `db += aᵀ·dy`.

use crate::error::{Error, Result};
use crate::kernels::{self, Dims};
use crate::shape::Shape;
use crate::tape::{Grads, Node, NodeIndex, Op, Tape, Var};

impl Tape<'_> {
    /// `a · b` with `a: m×k`, `b: k×n`.
    pub fn matmul(&mut self, a: Var, b: Var) -> Result<Var> {
        let (a, b) = (self.check(a)?, self.check(b)?);
        let (an, bn) = (self.node_at(a)?, self.node_at(b)?);
        if an.shape.cols != bn.shape.rows {
            return Err(Error::Shape {
                op: "matmul",
                expected: Shape::new(an.shape.cols, bn.shape.cols),
                found: bn.shape,
            });
        }
        let (m, k, n) = (an.shape.rows, an.shape.cols, bn.shape.cols);
        let (v, off) =
            self.push(Op::MatMul { a, b }, Shape::new(m, n), 0, an.needs_grad() || bn.needs_grad())?;
        let (lo, out) = self.split_for_write(off);
        kernels::matmul(
            lo.get(an.range()).unwrap_or_default(),
            lo.get(bn.range()).unwrap_or_default(),
            out,
            Dims { rows: m, inner: k, cols: n },
        )?;
        Ok(self.var(v))
    }
}

pub(crate) fn backward(mut g: Grads, node: Node, a: NodeIndex, b: NodeIndex) -> Result<()> {
    let (an, bn) = (g.node(a), g.node(b));
    let (m, k, n) = (an.shape.rows, an.shape.cols, bn.shape.cols);
    let vals = g.vals;
    if an.needs_grad() {
        let (dy, da) = g.out_and(node, a);
        let dims = Dims { rows: m, inner: n, cols: k };
        kernels::matmul_nt_acc(dy, vals.get(bn.range()).unwrap_or_default(), da, dims)?;
    }
    if bn.needs_grad() {
        let (dy, db) = g.out_and(node, b);
        let dims = Dims { rows: k, inner: m, cols: n };
        kernels::matmul_tn_acc(vals.get(an.range()).unwrap_or_default(), dy, db, dims)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::testutil::*;
    use crate::{Error, Shape};

    #[test]
    fn value() {
        // [1 2; 3 4] · [1 0 2; 0 1 -1]
        let out = forward_binary(
            (&[1.0, 2.0, 3.0, 4.0], Shape::new(2, 2)),
            (&[1.0, 0.0, 2.0, 0.0, 1.0, -1.0], Shape::new(2, 3)),
            |t, a, b| t.matmul(a, b),
        );
        assert_eq!(out, [1.0, 2.0, 0.0, 3.0, 4.0, 2.0]);
    }

    #[test]
    fn shape_mismatch() {
        let err = try_binary(Shape::new(2, 3), Shape::new(2, 3), |t, a, b| t.matmul(a, b));
        assert!(matches!(err, Err(Error::Shape { op: "matmul", .. })));
    }

    #[test]
    fn gradcheck_random() {
        for (m, k, n) in [(1, 1, 1), (3, 4, 2), (5, 2, 7)] {
            check_binary(Shape::new(m, k), Shape::new(k, n), |t, a, b| t.matmul(a, b));
        }
    }
}
