//! Scale by a constant: `y = k·a`; backward `da += k·dy`.

use crate::error::Result;
use crate::tape::{Grads, Node, NodeIndex, Op, Tape, Var};

impl Tape<'_> {
    /// `k · a`, element-wise.
    pub fn scale(&mut self, a: Var, k: f32) -> Result<Var> {
        let y = self.scale_at(self.check(a)?, k)?;
        Ok(self.var(y))
    }

    /// [`scale`](Self::scale) of node `a` (the core's own recording path).
    pub(crate) fn scale_at(&mut self, a: NodeIndex, k: f32) -> Result<NodeIndex> {
        self.unary(Op::Scale { a, k }, a, |x| k * x)
    }
}

pub(crate) fn backward(g: Grads, node: Node, a: NodeIndex, k: f32) -> Result<()> {
    super::unary_backward(&crate::parallel::Par::SEQUENTIAL, g, node, a, |_, _, dy| k * dy)
}

#[cfg(test)]
mod tests {
    use crate::testutil::*;

    #[test]
    fn value() {
        assert_eq!(forward_unary(&[1.0, -2.0], |t, v| t.scale(v, -0.5)), [-0.5, 1.0]);
    }

    #[test]
    fn gradcheck_random() {
        check_unary(|t, v| t.scale(v, 3.0), 0.0);
    }
}
