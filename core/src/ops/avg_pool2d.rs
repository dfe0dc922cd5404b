//! 2-D average pooling over a batch of NCHW images: each output is the mean of its
//! `window_h × window_w` window, windows `stride` apart, no padding. **Global** average pooling
//! (one value per channel) is the window over the whole image,
//! [`Pool2dConfig::global`], or [`Tape::global_avg_pool2d`].
//!
//! Canonical order: the window's sum from 0.0 in row-major order, divided by the window's size
//! (one rounding, the same on every target). Backward: each output's `dy / size` is added onto
//! every input of its window, outputs in (n, c, i, j) order.
//!
//! Shapes and the geometry on the tape: see [`super::window`].
//!
//! ```
//! use staticgrad::{ImageShape, Pool2dConfig, Shape, TapeStorage};
//! let mut ts = TapeStorage::<64, 4>::new();
//! let mut tape = ts.tape();
//! let x = tape.input(&[1.0, 3.0, 2.0, 0.0, 4.0, 4.0, 5.0, 7.0], Shape::new(1, 8))?;
//! let y = tape.global_avg_pool2d(x, ImageShape::new(2, 2, 2))?;
//! assert_eq!(tape.value(y)?, &[1.5, 5.0]);
//! # Ok::<(), staticgrad::Error>(())
//! ```

use super::window::{Geometry, Names, Pool2dConfig, pool_backward, pool_tape_floats, record_pool};
use crate::error::Result;
use crate::shape::ImageShape;
use crate::tape::{Grads, Node, NodeIndex, Op, Tape, Var};

const NAMES: Names = Names {
    stride: "avg_pool2d stride",
    dim: "avg_pool2d dimension (at most 2^24)",
    window: "avg_pool2d window",
    input: "avg_pool2d input",
};

/// Tape floats [`Tape::avg_pool2d`] takes for a batch of `batch` `image`s: the output, the
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
    /// Average pooling of `x` (`batch × (C·H·W)`, each row an `image`): `batch × (C·OH·OW)`.
    ///
    /// Refused: a row length other than `image`'s ([`Error::Shape`](crate::Error::Shape)
    /// `"avg_pool2d input"`), a window that is empty or larger than the image
    /// (`"avg_pool2d window"`), a zero stride.
    pub fn avg_pool2d(&mut self, x: Var, image: ImageShape, config: Pool2dConfig) -> Result<Var> {
        let y = self.avg_pool2d_at(self.check(x)?, image, config)?;
        Ok(self.var(y))
    }

    /// Global average pooling: the mean of each channel, `batch × C`
    /// ([`avg_pool2d`](Self::avg_pool2d) with [`Pool2dConfig::global`]).
    pub fn global_avg_pool2d(&mut self, x: Var, image: ImageShape) -> Result<Var> {
        self.avg_pool2d(x, image, Pool2dConfig::global(image))
    }

    /// [`avg_pool2d`](Self::avg_pool2d) of node `x` (the core's own recording path).
    pub(crate) fn avg_pool2d_at(
        &mut self,
        x: NodeIndex,
        image: ImageShape,
        config: Pool2dConfig,
    ) -> Result<NodeIndex> {
        record_pool(self, Op::AvgPool2d(x), x, image, config, &NAMES, |g, plane, at| {
            let mut acc = 0.0f32;
            for p in 0..g.kh {
                let row = at + p * g.w;
                for &v in plane.get(row..row + g.kw).unwrap_or_default() {
                    acc += v;
                }
            }
            acc / size(g)
        })
    }
}

/// Elements of a window, as the divisor (exact up to 2²⁴ elements; beyond, rounded the same
/// way everywhere).
#[inline(always)]
fn size(g: &Geometry) -> f32 {
    (g.kh * g.kw) as f32
}

pub(crate) fn backward(g: Grads, node: Node, x: NodeIndex) -> Result<()> {
    pool_backward(g, node, x, |g, _, at, dy, dx| {
        let share = dy / size(g);
        for p in 0..g.kh {
            let row = at + p * g.w;
            for d in dx.get_mut(row..row + g.kw).unwrap_or_default() {
                *d += share;
            }
        }
    })
}
