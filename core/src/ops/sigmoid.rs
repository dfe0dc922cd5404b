//! Sigmoid: `y = 1 / (1 + e^−x)`; backward `dx = (dy·(1 − y))·y`, in the book's order.

use crate::error::Result;
use crate::parallel::Par;
use crate::tape::{Grads, Node, NodeIndex, Op, Tape, Var};

impl Tape<'_> {
    /// Element-wise logistic sigmoid.
    pub fn sigmoid(&mut self, a: Var) -> Result<Var> {
        let y = self.sigmoid_at(self.check(a)?)?;
        Ok(self.var(y))
    }

    /// [`sigmoid`](Self::sigmoid) of node `a` (the core's own recording path).
    pub(crate) fn sigmoid_at(&mut self, a: NodeIndex) -> Result<NodeIndex> {
        // `kernels::expf` is `libm::expf` bit for bit, in a form LLVM vectorises on SIMD hosts.
        self.unary(Op::Sigmoid(a), a, f)
    }
}

/// The forward of one element.
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn f(x: f32) -> f32 {
    1.0 / (1.0 + crate::kernels::expf(-x))
}

/// The backward of one element: `dx` from the input, the output and `dy`.
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn df(_: f32, y: f32, dy: f32) -> f32 {
    (dy * (1.0 - y)) * y
}

pub(crate) fn backward(par: &Par<'_>, g: Grads, node: Node, a: NodeIndex) -> Result<()> {
    super::unary_backward(par, g, node, a, df)
}

#[cfg(test)]
mod tests {
    use crate::testutil::*;

    #[test]
    fn value() {
        let out = forward_unary(&[0.0, 100.0, -100.0], |t, v| t.sigmoid(v));
        assert_eq!(out[0], 0.5);
        assert_eq!(out[1], 1.0);
        assert!(out[2] >= 0.0 && out[2] < 1e-40);
    }

    #[test]
    fn gradcheck_random() {
        check_unary(|t, v| t.sigmoid(v), 0.0);
    }
}
