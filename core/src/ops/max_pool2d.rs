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
    // The common 2- and 3-wide windows with their width a constant: no inner loop.
    match g.kw {
        2 if g.kh == 2 => {
            // The book's 2×2 window, unrolled: its four values in row-major order.
            let (Some(&[a, b]), Some(&[c, d])) = (
                plane.get(at..).and_then(|s| s.first_chunk::<2>()),
                plane.get(at + g.w..).and_then(|s| s.first_chunk::<2>()),
            ) else {
                return at;
            };
            let rest = [(at + 1, b), (at + g.w, c), (at + g.w + 1, d)];
            let mut best = (at, a);
            if (a + b + c + d).is_nan() {
                // A NaN among them (or ∞ − ∞): the full rule.
                for (k, v) in rest {
                    if beats(v, best.1) {
                        best = (k, v);
                    }
                }
            } else {
                // No NaN: `beats` is plain `>`.
                for (k, v) in rest {
                    if v > best.1 {
                        best = (k, v);
                    }
                }
            }
            best.0
        }
        2 => first_max_k::<2>(g.kh, g.w, plane, at),
        3 => first_max_k::<3>(g.kh, g.w, plane, at),
        _ => {
            let mut best = (at, plane.get(at).copied().unwrap_or(0.0));
            for p in 0..g.kh {
                let row = at + p * g.w;
                for (q, &v) in plane.get(row..row + g.kw).unwrap_or_default().iter().enumerate() {
                    if beats(v, best.1) {
                        best = (row + q, v);
                    }
                }
            }
            best.0
        }
    }
}

/// [`first_max`] of a `kh × KW` window in rows `w` apart.
#[inline(always)]
fn first_max_k<const KW: usize>(kh: usize, w: usize, plane: &[f32], at: usize) -> usize {
    let mut best = (at, plane.get(at).copied().unwrap_or(0.0));
    for p in 0..kh {
        let row = at + p * w;
        if let Some(vals) = plane.get(row..).and_then(|s| s.first_chunk::<KW>()) {
            for (q, &v) in vals.iter().enumerate() {
                if beats(v, best.1) {
                    best = (row + q, v);
                }
            }
        }
    }
    best.0
}

/// Whether `v` takes the place of the maximum so far, `best`: strictly greater (a tie keeps the
/// earlier element), or a NaN where `best` is a number (a NaN beats any number, the first
/// NaN stays). `!(v <= best)` is "greater or NaN".
#[inline(always)]
#[allow(clippy::neg_cmp_op_on_partial_ord)] // the NaN case is the point
fn beats(v: f32, best: f32) -> bool {
    !best.is_nan() && !(v <= best)
}

pub(crate) fn backward(g: Grads, node: Node, x: NodeIndex) -> Result<()> {
    pool_backward(g, node, x, |g, plane, at, dy, dx| {
        if let Some(d) = dx.get_mut(first_max(g, plane, at)) {
            *d += dy;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::gradcheck;
    use crate::testutil::*;
    use crate::{Error, ParamKind, Shape};
    use std::vec::Vec;

    /// `n` values 0.1 apart in a shuffled order: every window's maximum is ahead of the rest by
    /// more than the gradient check's step, so no kink is crossed.
    fn spread(n: usize, seed: u64) -> Vec<f32> {
        let keys = random_values(n, 0.0, seed);
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| keys[a].total_cmp(&keys[b]));
        let mut out = std::vec![0.0; n];
        for (rank, &i) in order.iter().enumerate() {
            out[i] = rank as f32 * 0.1 - n as f32 * 0.05;
        }
        out
    }

    #[test]
    fn gradcheck_over_layouts() {
        // Non-overlapping, overlapping (stride 1), a stride that leaves a column unread, global.
        for (batch, image, cfg) in [
            (2, ImageShape::new(3, 4, 4), Pool2dConfig::square(2)),
            (1, ImageShape::new(2, 5, 5), Pool2dConfig::new(3, 3, 1)),
            (2, ImageShape::new(1, 5, 7), Pool2dConfig::new(2, 3, 2)),
            (2, ImageShape::new(2, 3, 4), Pool2dConfig::global(ImageShape::new(2, 3, 4))),
        ] {
            let mut s = Storage::new();
            let (mut tape, mut params) = s.split();
            let len = image.checked_len().unwrap();
            let x = params.alloc(Shape::new(batch, len), ParamKind::Weight).unwrap();
            params.value_mut(x).unwrap().copy_from_slice(&spread(batch * len, 5));
            let r = gradcheck(&mut tape, &mut params, config(), |t, p| {
                let xv = t.param(p, x)?;
                let y = t.max_pool2d(xv, image, cfg)?;
                weighted_loss(t, y)
            })
            .unwrap();
            assert_report("max_pool2d", r);
        }
    }

    /// dx of Σ(y ⊙ dy) for `x`.
    fn through(x: &[f32], image: ImageShape, cfg: Pool2dConfig, dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let mut s = Storage::new();
        let (mut tape, mut params) = s.split();
        let p = params.alloc(Shape::new(1, x.len()), ParamKind::Weight).unwrap();
        params.value_mut(p).unwrap().copy_from_slice(x);
        let xv = tape.param(&params, p).unwrap();
        let y = tape.max_pool2d(xv, image, cfg).unwrap();
        let d = tape.input(dy, tape.shape(y).unwrap()).unwrap();
        let l = tape.mul(y, d).unwrap();
        let l = tape.sum(l).unwrap();
        tape.backward(l, &mut params).unwrap();
        (tape.value(y).unwrap().to_vec(), params.grad(p).unwrap().to_vec())
    }

    #[test]
    fn ties_go_to_the_first_maximum_and_overlaps_add_up() {
        // Every window of a constant image is a tie: each picks its top-left element.
        let (y, dx) =
            through(&[2.0; 9], ImageShape::new(1, 3, 3), Pool2dConfig::new(2, 2, 1), &[1.0, 2.0, 4.0, 8.0]);
        assert_eq!(y, [2.0; 4]);
        assert_eq!(dx, [1.0, 2.0, 0.0, 4.0, 8.0, 0.0, 0.0, 0.0, 0.0]);
        // A tie later in the window than a smaller first element: the first of the maxima.
        let (_, dx) =
            through(&[0.5, 2.0, 1.0, 2.0], ImageShape::new(1, 2, 2), Pool2dConfig::square(2), &[3.0]);
        assert_eq!(dx, [0.0, 3.0, 0.0, 0.0]);
        // Overlapping windows that pick the same element add their gradients.
        let (_, dx) = through(
            &[0.0, 1.0, 0.0, 0.0, 9.0, 0.0],
            ImageShape::new(1, 2, 3),
            Pool2dConfig::new(2, 2, 1),
            &[1.0, 2.0],
        );
        assert_eq!(dx, [0.0, 0.0, 0.0, 0.0, 3.0, 0.0]);
    }

    #[test]
    fn nan_is_the_maximum() {
        let mut s = Storage::new();
        let (mut tape, _) = s.split();
        let x = tape.input(&[1.0, f32::NAN, 3.0, 0.0, 1.0, 2.0], Shape::new(1, 6)).unwrap();
        let y = tape.max_pool2d(x, ImageShape::new(1, 2, 3), Pool2dConfig::new(2, 2, 1)).unwrap();
        let y = tape.value(y).unwrap();
        assert!(y[0].is_nan() && y[1].is_nan());
    }

    #[test]
    fn refusals() {
        let mut s = Storage::new();
        let (mut tape, _) = s.split();
        let x = tape.input(&[0.0; 32], Shape::new(2, 16)).unwrap();
        let img = ImageShape::new(1, 4, 4);
        let r = tape.max_pool2d(x, ImageShape::new(1, 4, 3), Pool2dConfig::square(2));
        assert!(matches!(r, Err(Error::Shape { op: "max_pool2d input", .. })), "{r:?}");
        let r = tape.max_pool2d(x, img, Pool2dConfig::square(5));
        assert!(matches!(r, Err(Error::Shape { op: "max_pool2d window", .. })), "{r:?}");
        let r = tape.max_pool2d(x, img, Pool2dConfig::new(2, 2, 0));
        assert!(matches!(r, Err(Error::InvalidArgument { what: "max_pool2d stride", .. })), "{r:?}");
    }

    /// The planner's count is exactly what the op takes, with a gradient (input a parameter) and
    /// without (input data); one float less is refused.
    #[test]
    fn planner_equals_usage() {
        for (image, cfg) in [
            (ImageShape::new(3, 4, 4), Pool2dConfig::square(2)),
            (ImageShape::new(2, 5, 5), Pool2dConfig::new(3, 3, 1)),
            (ImageShape::new(2, 7, 5), Pool2dConfig::new(3, 2, 2)),
        ] {
            let batch = 2;
            let len = batch * image.checked_len().unwrap();
            for grads in [true, false] {
                let need = tape_floats(batch, image, cfg, grads).unwrap();
                // A parameter copy takes its value and a gradient; data its value only.
                let input = if grads { 2 * len } else { len };
                for spare in [0, 1] {
                    let mut s = Storage::new();
                    let (_, mut params) = s.split();
                    let p = params.alloc(Shape::new(batch, len / batch), ParamKind::Weight).unwrap();
                    let mut floats = std::vec![0.0; input + need + spare - 1];
                    let mut nodes = [Node::EMPTY; 2];
                    let mut tape = Tape::new(&mut floats, &mut nodes);
                    let x = if grads {
                        tape.param(&params, p).unwrap()
                    } else {
                        tape.input(&std::vec![0.0; len], Shape::new(batch, len / batch)).unwrap()
                    };
                    let r = tape.max_pool2d(x, image, cfg);
                    if spare == 1 {
                        r.unwrap();
                        assert_eq!(tape.floats_used(), input + need);
                    } else {
                        assert!(matches!(r, Err(Error::Capacity { .. })), "{r:?}");
                    }
                }
            }
        }
    }
}
