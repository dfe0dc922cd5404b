//! 2-D max pooling over a batch of NCHW images (the book's `Pooling`): each output is the
//! largest value of its `window_h × window_w` window, windows `stride` apart, no padding.
//!
//! Backward sends each output's gradient to the **first** maximum of its window in row-major
//! order (what the book's `np.argmax` picks), so ties are broken the same way; where windows
//! overlap (`stride < window`) an input collects, in output order, the gradient of every window
//! that picked it. The maximum is found again in backward from the stored input instead of kept
//! in scratch: no tape floats beyond the output, its gradient and the geometry. A NaN counts as
//! the maximum (as `np.argmax`): the first NaN of a window wins, so divergence stays visible.
//!
//! Shapes and the geometry on the tape: see [`super::window`].
//!
//! ```
//! use staticgrad::{ImageShape, Pool2dConfig, Shape, TapeStorage};
//! let mut ts = TapeStorage::<64, 4>::new();
//! let mut tape = ts.tape();
//! let x = tape.input(&[1.0, 3.0, 2.0, 0.0, 4.0, 4.0, 5.0, 6.0], Shape::new(1, 8))?;
//! let y = tape.max_pool2d(x, ImageShape::new(2, 2, 2), Pool2dConfig::square(2))?;
//! assert_eq!(tape.value(y)?, &[3.0, 6.0]);
//! # Ok::<(), staticgrad::Error>(())
//! ```

use super::window::{Geometry, Names, Pool2dConfig, pool_backward, pool_tape_floats, record_pool};
use crate::error::Result;
use crate::shape::ImageShape;
use crate::tape::{Grads, Node, NodeIndex, Op, Tape, Var};

const NAMES: Names = Names {
    stride: "max_pool2d stride",
    dim: "max_pool2d dimension (at most 2^24)",
    window: "max_pool2d window",
    input: "max_pool2d input",
};

/// Tape floats [`Tape::max_pool2d`] takes for a batch of `batch` `image`s: the output, the
/// geometry scratch and, if `grads` (gradients enabled and the input has one), the output's
/// gradient. Exactly what the op reserves; one float less is refused.
pub const fn tape_floats(
    batch: usize,
    image: ImageShape,
    config: Pool2dConfig,
    grads: bool,
) -> Result<usize> {
    pool_tape_floats(batch, image, config, grads, &NAMES)
}

impl Tape<'_> {
    /// Max pooling of `x` (`batch × (C·H·W)`, each row an `image`): `batch × (C·OH·OW)`.
    ///
    /// Refused: a row length other than `image`'s ([`Error::Shape`](crate::Error::Shape)
    /// `"max_pool2d input"`), a window that is empty or larger than the image
    /// (`"max_pool2d window"`), a zero stride.
    pub fn max_pool2d(&mut self, x: Var, image: ImageShape, config: Pool2dConfig) -> Result<Var> {
        let y = self.max_pool2d_at(self.check(x)?, image, config)?;
        Ok(self.var(y))
    }

    /// [`max_pool2d`](Self::max_pool2d) of node `x` (the core's own recording path).
    pub(crate) fn max_pool2d_at(
        &mut self,
        x: NodeIndex,
        image: ImageShape,
        config: Pool2dConfig,
    ) -> Result<NodeIndex> {
        record_pool(self, Op::MaxPool2d(x), x, image, config, &NAMES, |g, plane, at| {
            let k = first_max(g, plane, at);
            plane.get(k).copied().unwrap_or(0.0)
        })
    }
}

/// Index in `plane` of the first maximum (row-major) of the window whose top-left is `at`.
#[inline(always)]
fn first_max(g: &Geometry, plane: &[f32], at: usize) -> usize {
    let mut best = (at, plane.get(at).copied().unwrap_or(0.0));
    for p in 0..g.kh {
        let row = at + p * g.w;
        for (q, &v) in plane.get(row..row + g.kw).unwrap_or_default().iter().enumerate() {
            // Strictly greater: a tie keeps the earlier element. A NaN beats any number.
            if v > best.1 || (v.is_nan() && !best.1.is_nan()) {
                best = (row + q, v);
            }
        }
    }
    best.0
}

pub(crate) fn backward(g: Grads, node: Node, x: NodeIndex) -> Result<()> {
    pool_backward(g, node, x, |g, plane, at, dy, dx| {
        if let Some(d) = dx.get_mut(first_max(g, plane, at)) {
            *d += dy;
        }
    })
}
