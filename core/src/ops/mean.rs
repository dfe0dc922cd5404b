//! Mean of all elements to a `1 × 1` value: `Σ a / n`; backward `da += dy / n`.

use crate::error::{Error, Result};
use crate::kernels;
use crate::shape::Shape;
use crate::tape::{Grads, Node, NodeIndex, Op, Tape, Var};

impl Tape<'_> {
    /// Mean of all elements of `a` (at least one), as a `1 × 1` value.
    pub fn mean(&mut self, a: Var) -> Result<Var> {
        let a = self.check(a)?;
        let an = self.node_at(a)?;
        if an.shape.is_empty() {
            return Err(Error::Shape { op: "mean", expected: Shape::SCALAR, found: an.shape });
        }
        let (v, off) = self.push(Op::Mean(a), Shape::SCALAR, 0, an.needs_grad())?;
        let (lo, out) = self.split_for_write(off);
        out[0] = kernels::sum(lo.get(an.range()).unwrap_or_default()) / an.shape.len() as f32;
        Ok(self.var(v))
    }
}

pub(crate) fn backward(mut g: Grads, node: Node, a: NodeIndex) -> Result<()> {
    let (dy, da) = g.out_and(node, a);
    let d = dy[0] / da.len() as f32;
    for x in da.iter_mut() {
        *x += d;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::testutil::*;

    #[test]
    fn value() {
        assert_eq!(forward_unary(&[1.0, -2.0, 4.0, 1.0], |t, v| t.mean(v)), [1.0]);
    }

    #[test]
    fn gradcheck_random() {
        check_reduce(|t, v| t.mean(v));
    }
}
