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
use crate::parallel::Par;
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
#[cfg_attr(not(debug_assertions), inline(always))]
fn size(g: &Geometry) -> f32 {
    (g.kh * g.kw) as f32
}

pub(crate) fn backward(par: &Par<'_>, g: Grads, node: Node, x: NodeIndex) -> Result<()> {
    pool_backward(par, g, node, x, |g, _, at, dy, dx| {
        let share = dy / size(g);
        for p in 0..g.kh {
            let row = at + p * g.w;
            for d in dx.get_mut(row..row + g.kw).unwrap_or_default() {
                *d += share;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::gradcheck;
    use crate::testutil::*;
    use crate::{Error, ParamKind, Shape};

    #[test]
    fn gradcheck_over_layouts() {
        for (batch, image, cfg) in [
            (2, ImageShape::new(3, 4, 4), Pool2dConfig::square(2)),
            (1, ImageShape::new(2, 5, 5), Pool2dConfig::new(3, 3, 1)),
            (2, ImageShape::new(1, 5, 7), Pool2dConfig::new(2, 3, 2)),
            (2, ImageShape::new(2, 3, 4), Pool2dConfig::global(ImageShape::new(2, 3, 4))),
        ] {
            let mut s = Storage::new();
            let (mut tape, mut params) = s.split();
            let len = batch * image.checked_len().unwrap();
            let x = params.alloc(Shape::new(batch, len / batch), ParamKind::Weight).unwrap();
            params.value_mut(x).unwrap().copy_from_slice(&random_values(len, 0.0, 8));
            let r = gradcheck(&mut tape, &mut params, config(), |t, p| {
                let xv = t.param(p, x)?;
                let y = t.avg_pool2d(xv, image, cfg)?;
                weighted_loss(t, y)
            })
            .unwrap();
            assert_report("avg_pool2d", r);
        }
    }

    #[test]
    fn overlapping_windows_share_their_gradient() {
        let mut s = Storage::new();
        let (mut tape, mut params) = s.split();
        let p = params.alloc(Shape::new(1, 6), ParamKind::Weight).unwrap();
        params.value_mut(p).unwrap().copy_from_slice(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let x = tape.param(&params, p).unwrap();
        let y = tape.avg_pool2d(x, ImageShape::new(1, 2, 3), Pool2dConfig::new(2, 2, 1)).unwrap();
        assert_eq!(tape.value(y).unwrap(), &[3.0, 4.0]);
        let d = tape.input(&[4.0, 8.0], Shape::new(1, 2)).unwrap();
        let l = tape.mul(y, d).unwrap();
        let l = tape.sum(l).unwrap();
        tape.backward(l, &mut params).unwrap();
        assert_eq!(params.grad(p).unwrap(), &[1.0, 3.0, 2.0, 1.0, 3.0, 2.0]);
    }

    #[test]
    fn global_pooling_is_one_value_per_channel() {
        let mut s = Storage::new();
        let (mut tape, _) = s.split();
        let x = tape.input(&[1.0, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0], Shape::new(2, 4)).unwrap();
        let y = tape.global_avg_pool2d(x, ImageShape::new(2, 1, 2)).unwrap();
        assert_eq!(tape.shape(y).unwrap(), Shape::new(2, 2));
        assert_eq!(tape.value(y).unwrap(), &[1.5, 3.5, 15.0, 35.0]);
        let r = tape.global_avg_pool2d(x, ImageShape::new(1, 2, 3));
        assert!(matches!(r, Err(Error::Shape { op: "avg_pool2d input", .. })), "{r:?}");
    }

    #[test]
    fn planner_equals_usage() {
        let (image, cfg, batch) = (ImageShape::new(2, 6, 5), Pool2dConfig::new(2, 3, 2), 3);
        let len = batch * image.checked_len().unwrap();
        let need = tape_floats(batch, image, cfg, false).unwrap();
        for spare in [0, 1] {
            let mut floats = std::vec![0.0; len + need + spare - 1];
            let mut nodes = [Node::EMPTY; 2];
            let mut tape = Tape::new(&mut floats, &mut nodes);
            let x = tape.input(&std::vec![0.0; len], Shape::new(batch, len / batch)).unwrap();
            let r = tape.avg_pool2d(x, image, cfg);
            if spare == 1 {
                r.unwrap();
                assert_eq!(tape.floats_used(), len + need);
            } else {
                assert!(matches!(r, Err(Error::Capacity { .. })), "{r:?}");
            }
        }
    }
}
