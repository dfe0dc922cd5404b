//! Element-wise product: `y = a ⊙ b` (same shapes); backward `da += dy ⊙ b`, `db += dy ⊙ a`.

use crate::error::{Error, Result};
use crate::tape::{Grads, Node, NodeIndex, Op, Tape, Var};

impl Tape<'_> {
    /// `a ⊙ b`, element-wise, same shapes.
    pub fn mul(&mut self, a: Var, b: Var) -> Result<Var> {
        let (a, b) = (self.check(a)?, self.check(b)?);
        let (an, bn) = (self.node_at(a)?, self.node_at(b)?);
        if bn.shape != an.shape {
            return Err(Error::Shape { op: "mul", expected: an.shape, found: bn.shape });
        }
        let (v, off) = self.push(Op::Mul { a, b }, an.shape, 0, an.needs_grad() || bn.needs_grad())?;
        let (lo, out) = self.split_for_write(off);
        for ((o, &x), &y) in out
            .iter_mut()
            .zip(lo.get(an.range()).unwrap_or_default())
            .zip(lo.get(bn.range()).unwrap_or_default())
        {
            *o = x * y;
        }
        Ok(self.var(v))
    }
}

pub(crate) fn backward(mut g: Grads, node: Node, a: NodeIndex, b: NodeIndex) -> Result<()> {
    let (an, bn) = (g.node(a), g.node(b));
    let vals = g.vals;
    if an.needs_grad() {
        let (dy, da) = g.out_and(node, a);
        for ((d, &dy), &y) in da.iter_mut().zip(dy).zip(vals.get(bn.range()).unwrap_or_default()) {
            *d += dy * y;
        }
    }
    if bn.needs_grad() {
        let (dy, db) = g.out_and(node, b);
        for ((d, &dy), &x) in db.iter_mut().zip(dy).zip(vals.get(an.range()).unwrap_or_default()) {
            *d += dy * x;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::testutil::*;
    use crate::{Error, Shape};

    #[test]
    fn value() {
        let out = forward_binary((&[1.0, -2.0], Shape::row(2)), (&[3.0, 0.5], Shape::row(2)), |t, a, b| {
            t.mul(a, b)
        });
        assert_eq!(out, [3.0, -1.0]);
    }

    #[test]
    fn shape_mismatch() {
        let err = try_binary(Shape::new(2, 3), Shape::row(3), |t, a, b| t.mul(a, b));
        assert!(matches!(err, Err(Error::Shape { op: "mul", .. })));
    }

    #[test]
    fn gradcheck_random() {
        check_binary(Shape::new(3, 4), Shape::new(3, 4), |t, a, b| t.mul(a, b));
    }

    #[test]
    fn square_via_same_var() {
        // d(x²)/dx = 2x: both operand slots contribute.
        assert_eq!(grad_of_self_binary(&[3.0, -1.0], |t, a| t.mul(a, a)), [6.0, -2.0]);
    }
}
