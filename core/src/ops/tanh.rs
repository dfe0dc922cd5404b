//! Tanh: `y = tanh x`; backward `dx = dy·(1 − y²)`.

use crate::error::Result;
use crate::parallel::Par;
use crate::tape::{Grads, Node, NodeIndex, Op, Tape, Var};

impl Tape<'_> {
    /// Element-wise hyperbolic tangent.
    pub fn tanh(&mut self, a: Var) -> Result<Var> {
        let y = self.tanh_at(self.check(a)?)?;
        Ok(self.var(y))
    }

    /// [`tanh`](Self::tanh) of node `a` (the core's own recording path).
    pub(crate) fn tanh_at(&mut self, a: NodeIndex) -> Result<NodeIndex> {
        self.unary(Op::Tanh(a), a, f)
    }
}

/// The forward of one element.
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn f(x: f32) -> f32 {
    libm::tanhf(x)
}

/// The backward of one element: `dx` from the input, the output and `dy`.
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn df(_: f32, y: f32, dy: f32) -> f32 {
    dy * (1.0 - y * y)
}

pub(crate) fn backward(par: &Par<'_>, g: Grads, node: Node, a: NodeIndex) -> Result<()> {
    super::unary_backward(par, g, node, a, df)
}

#[cfg(test)]
mod tests {
    use crate::testutil::*;

    #[test]
    fn value() {
        let out = forward_unary(&[0.0, 20.0, -20.0, 0.5], |t, v| t.tanh(v));
        assert_eq!(out.get(..3).unwrap_or_default(), &[0.0, 1.0, -1.0]);
        assert!((out[3] - 0.462_117_16).abs() < 1e-7);
    }

    #[test]
    fn gradcheck_random() {
        check_unary(|t, v| t.tanh(v), 0.0);
    }
}
