//! Sum of all elements to a `1 × 1` value, in index order; backward `da += dy`.

use crate::error::Result;
use crate::kernels;
use crate::shape::Shape;
use crate::tape::{Grads, Node, NodeIndex, Op, Tape, Var};

impl Tape<'_> {
    /// `Σ a` over all elements, as a `1 × 1` value.
    pub fn sum(&mut self, a: Var) -> Result<Var> {
        let a = self.check(a)?;
        let an = self.node_at(a)?;
        let (v, off) = self.push(Op::Sum(a), Shape::SCALAR, 0, an.needs_grad())?;
        let (lo, out) = self.split_for_write(off);
        out[0] = kernels::sum(lo.get(an.range()).unwrap_or_default());
        Ok(self.var(v))
    }
}

pub(crate) fn backward(mut g: Grads, node: Node, a: NodeIndex) -> Result<()> {
    let (dy, da) = g.out_and(node, a);
    let dy = dy[0];
    for d in da.iter_mut() {
        *d += dy;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::testutil::*;

    #[test]
    fn value() {
        assert_eq!(forward_unary(&[1.0, -2.0, 4.5], |t, v| t.sum(v)), [3.5]);
    }

    #[test]
    fn gradcheck_random() {
        check_reduce(|t, v| t.sum(v));
    }
}
