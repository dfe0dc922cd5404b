//! One file per op, forward and backward side by side, tests of value and gradient next to them.
//!
//! Forward methods are `impl Tape` blocks (`tape.relu(x)`); each file's `backward` is called by
//! [`Tape::backward`](crate::Tape::backward) when the walk reaches that op's node. Operands were
//! validated when the node was recorded, so backward only does arithmetic.

pub mod add;
pub mod affine;
pub mod avg_pool2d;
pub mod batchnorm;
pub mod conv2d;
pub mod dropout;
// The convolution's products on hosts; small targets run the loops in `conv2d` (same bits).
#[cfg(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64"))]
mod im2col;
pub mod matmul;
pub mod max_pool2d;
pub mod mean;
pub mod mse;
pub mod mul;
pub mod relu;
pub mod scale;
pub mod sigmoid;
pub mod softmax_cross_entropy;
pub mod sum;
pub mod tanh;
pub mod window;

use crate::error::Result;
use crate::parallel::Par;
use crate::tape::{Grads, Node, NodeIndex, Op, Tape};

impl Tape<'_> {
    /// Records an element-wise op `y = f(x)` of `a`'s shape.
    pub(crate) fn unary(&mut self, op: Op, a: NodeIndex, f: impl Fn(f32) -> f32 + Sync) -> Result<NodeIndex> {
        let an = self.node_at(a)?;
        let par = self.parallel();
        let (v, off) = self.push(op, an.shape, 0, an.needs_grad())?;
        let (lo, out) = self.split_for_write(off);
        crate::kernels::map_par(&par, lo.get(an.range()).unwrap_or_default(), out, f);
        Ok(v)
    }
}

/// Backward of an element-wise op: `da += df(x, y, dy)` for each element.
pub(crate) fn unary_backward(
    par: &Par<'_>,
    mut g: Grads,
    node: Node,
    a: NodeIndex,
    df: impl Fn(f32, f32, f32) -> f32 + Sync,
) -> Result<()> {
    let vals = g.vals;
    let x = vals.get(g.node(a).range()).unwrap_or_default();
    let y = vals.get(node.range()).unwrap_or_default();
    let (dy, da) = g.out_and(node, a);
    crate::kernels::map_acc3_par(par, x, y, dy, da, df);
    Ok(())
}
