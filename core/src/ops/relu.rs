//! ReLU: `y = max(x, 0)`. As in the book the mask is `x <= 0`, so an input of exactly 0 gives
//! output 0 and gradient 0; NaN passes through so divergence stays visible.

use crate::error::Result;
use crate::parallel::Par;
use crate::tape::{Grads, Node, NodeIndex, Op, Tape, Var};

impl Tape<'_> {
    /// Element-wise `max(a, 0)`.
    pub fn relu(&mut self, a: Var) -> Result<Var> {
        let y = self.relu_at(self.check(a)?)?;
        Ok(self.var(y))
    }

    /// [`relu`](Self::relu) of node `a` (the core's own recording path).
    pub(crate) fn relu_at(&mut self, a: NodeIndex) -> Result<NodeIndex> {
        self.unary(Op::Relu(a), a, f)
    }
}

/// The forward of one element.
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn f(x: f32) -> f32 {
    if x <= 0.0 { 0.0 } else { x }
}

/// The backward of one element: `dx` from the input, the output and `dy`.
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn df(x: f32, _: f32, dy: f32) -> f32 {
    if x <= 0.0 { 0.0 } else { dy }
}

pub(crate) fn backward(par: &Par<'_>, g: Grads, node: Node, a: NodeIndex) -> Result<()> {
    super::unary_backward(par, g, node, a, df)
}

#[cfg(test)]
mod tests {
    use crate::testutil::*;

    #[test]
    fn value_and_zero_at_kink() {
        let out = forward_unary(&[-1.5, 0.0, 2.0, -0.0], |t, v| t.relu(v));
        assert_eq!(out, [0.0, 0.0, 2.0, 0.0]);
    }

    #[test]
    fn gradcheck_random() {
        // Values kept away from the kink, where the central difference is meaningless.
        check_unary(|t, v| t.relu(v), 0.05);
    }
}
