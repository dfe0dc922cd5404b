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

use super::window::{
    Geometry, Names, Pool2dConfig, pool_backward, pool_backward_planes, pool_tape_floats, record_pool,
    record_pool_planes,
};
use crate::error::Result;
use crate::parallel::Par;
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
        if HOST {
            return record_pool_planes(self, Op::MaxPool2d(x), x, image, config, &NAMES, rows::forward);
        }
        record_pool(self, Op::MaxPool2d(x), x, image, config, &NAMES, |g, plane, at| {
            let k = first_max(g, plane, at);
            plane.get(k).copied().unwrap_or(0.0)
        })
    }
}

/// Index in `plane` of the first maximum (row-major) of the window whose top-left is `at`.
#[cfg_attr(not(debug_assertions), inline(always))]
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
#[cfg_attr(not(debug_assertions), inline(always))]
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
#[cfg_attr(not(debug_assertions), inline(always))]
#[allow(clippy::neg_cmp_op_on_partial_ord)] // the NaN case is the point
fn beats(v: f32, best: f32) -> bool {
    !best.is_nan() && !(v <= best)
}

pub(crate) fn backward(par: &Par<'_>, g: Grads, node: Node, x: NodeIndex) -> Result<()> {
    if HOST {
        return pool_backward_planes(par, g, node, x, rows::backward);
    }
    pool_backward(par, g, node, x, |g, plane, at, dy, dx| {
        if let Some(d) = dx.get_mut(first_max(g, plane, at)) {
            *d += dy;
        }
    })
}

/// Hosts (a deep pipeline) take [`rows`]; small targets the branches of [`first_max`].
const HOST: bool = cfg!(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64"));

/// The same first maxima as [`first_max`], found for a run of windows side by side, tap by tap,
/// with selects instead of branches (which a deep pipeline mispredicts on about every window of
/// real data). Same outputs, same gradients added in the same (i, j) order.
mod rows {
    use super::{Geometry, first_max};

    /// Windows per run.
    const RUN: usize = 16;

    /// `out[j] = plane[at + j·s]` for `j < n`.
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn gather(plane: &[f32], at: usize, s: usize, n: usize, out: &mut [f32; RUN]) {
        for (j, o) in out.iter_mut().enumerate().take(n) {
            *o = plane.get(at + j * s).copied().unwrap_or(0.0);
        }
    }

    /// For the `n ≤ RUN` windows of output row `i` from column `j0`: the first maximum's value
    /// and its offset from the window's top-left in `plane` (row-major taps; a NaN beats any
    /// number, the first NaN wins). Lanes from `n` on hold values never read.
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn argmax(
        g: &Geometry,
        plane: &[f32],
        (i, j0, n): (usize, usize, usize),
        best: &mut [f32; RUN],
        off: &mut [u32; RUN],
    ) {
        let (s, base) = (g.stride, i * g.stride * g.w + j0 * g.stride);
        gather(plane, base, s, n, best);
        *off = [0; RUN];
        let mut v = [0.0f32; RUN];
        for p in 0..g.kh {
            for q in 0..g.kw {
                if p == 0 && q == 0 {
                    continue;
                }
                let t = (p * g.w + q) as u32; // below `H·W`, which `fits` holds to u32
                gather(plane, base + p * g.w + q, s, n, &mut v);
                for ((b, o), &v) in best.iter_mut().zip(off.iter_mut()).zip(&v) {
                    let up = better(v, *b);
                    *b = if up { v } else { *b };
                    *o = if up { t } else { *o };
                }
            }
        }
    }

    /// True if a window's offsets fit the `u32` lanes (else the per-window loop runs).
    fn fits(g: &Geometry) -> bool {
        g.h.checked_mul(g.w).is_some_and(|n| n <= u32::MAX as usize)
    }

    /// True if `v` is the new first maximum over `best` (bitwise, not short-circuit: no branch,
    /// so loops over windows vectorise).
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn better(v: f32, best: f32) -> bool {
        (v > best) | (v.is_nan() & !best.is_nan())
    }

    /// The 2×2 windows of stride 2 (the book's pooling) over rows `r0`, `r1`: the first maximum
    /// of window `j` and its tap (0..4, row-major).
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn first_of_four(r0: &[f32], r1: &[f32], j: usize) -> (f32, u32) {
        let taps = [r0.get(2 * j), r0.get(2 * j + 1), r1.get(2 * j), r1.get(2 * j + 1)];
        let [a, b, c, d] = taps.map(|t| t.copied().unwrap_or(0.0));
        let (mut m, mut t) = (a, 0u32);
        for (k, v) in [(1u32, b), (2, c), (3, d)] {
            let up = better(v, m);
            m = if up { v } else { m };
            t = if up { k } else { t };
        }
        (m, t)
    }

    /// True for 2×2 windows of stride 2.
    fn two_by_two(g: &Geometry) -> bool {
        g.kh == 2 && g.kw == 2 && g.stride == 2
    }

    /// One channel's outputs.
    pub(super) fn forward(g: &Geometry, plane: &[f32], out: &mut [f32]) {
        if two_by_two(g) {
            for (i, yrow) in out.chunks_exact_mut(g.ow.max(1)).enumerate() {
                let r0 = plane.get(2 * i * g.w..).unwrap_or_default();
                let r1 = plane.get((2 * i + 1) * g.w..).unwrap_or_default();
                for (j, y) in yrow.iter_mut().enumerate() {
                    *y = first_of_four(r0, r1, j).0;
                }
            }
            return;
        }
        let (mut best, mut off) = ([0.0f32; RUN], [0u32; RUN]);
        for (i, yrow) in out.chunks_exact_mut(g.ow.max(1)).enumerate() {
            for (c, ys) in yrow.chunks_mut(RUN).enumerate() {
                if fits(g) {
                    argmax(g, plane, (i, c * RUN, ys.len()), &mut best, &mut off);
                    ys.copy_from_slice(best.get(..ys.len()).unwrap_or_default());
                } else {
                    for (j, y) in ys.iter_mut().enumerate() {
                        let at = i * g.stride * g.w + (c * RUN + j) * g.stride;
                        *y = plane.get(first_max(g, plane, at)).copied().unwrap_or(0.0);
                    }
                }
            }
        }
    }

    /// One channel's input gradient: each output's gradient onto its window's first maximum,
    /// outputs in (i, j) order.
    pub(super) fn backward(g: &Geometry, plane: &[f32], dy: &[f32], dx: &mut [f32]) {
        let (mut best, mut off) = ([0.0f32; RUN], [0u32; RUN]);
        for (i, dyrow) in dy.chunks_exact(g.ow.max(1)).enumerate() {
            for (c, ds) in dyrow.chunks(RUN).enumerate() {
                let at = i * g.stride * g.w + c * RUN * g.stride;
                if fits(g) {
                    argmax(g, plane, (i, c * RUN, ds.len()), &mut best, &mut off);
                    for (j, (&o, &d)) in off.iter().zip(ds).enumerate() {
                        if let Some(v) = dx.get_mut(at + j * g.stride + o as usize) {
                            *v += d;
                        }
                    }
                } else {
                    for (j, &d) in ds.iter().enumerate() {
                        if let Some(v) = dx.get_mut(first_max(g, plane, at + j * g.stride)) {
                            *v += d;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::gradcheck;
    use crate::testutil::*;
    use crate::{Error, ParamKind, Shape};
    use std::vec;
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

    /// Against `first_max` window by window: non-overlapping, overlapping, a stride that
    /// leaves columns unread, more windows per row than a run; values with ties, ±0 and NaNs.
    #[test]
    fn rows_give_the_first_maxima() {
        for (s, (image, cfg)) in [
            (ImageShape::new(1, 24, 24), Pool2dConfig::square(2)),
            (ImageShape::new(1, 7, 9), Pool2dConfig::new(3, 3, 1)),
            (ImageShape::new(1, 5, 8), Pool2dConfig::new(2, 3, 2)),
            (ImageShape::new(1, 4, 40), Pool2dConfig::new(1, 2, 1)),
        ]
        .into_iter()
        .enumerate()
        {
            let g = Geometry::new(image, cfg.window_h, cfg.window_w, cfg.stride, 0, &NAMES).unwrap();
            let n = g.h * g.w;
            // Few distinct values: many ties; a signed zero and a NaN among them.
            let mut plane: Vec<f32> =
                random_values(n, 0.0, 40 + s as u64).iter().map(|v| (v * 3.0).round()).collect();
            plane[3] = -0.0;
            plane[n / 2] = f32::NAN;
            plane[n / 2 + 1] = f32::NAN;
            let dy = random_values(g.oh * g.ow, 0.0, 50 + s as u64);
            let (mut y, mut want_y) = (vec![0.0f32; g.oh * g.ow], Vec::new());
            rows::forward(&g, &plane, &mut y);
            let start = random_values(n, 0.0, 60 + s as u64);
            let (mut dx, mut want_dx) = (start.clone(), start);
            rows::backward(&g, &plane, &dy, &mut dx);
            for i in 0..g.oh {
                for j in 0..g.ow {
                    let k = first_max(&g, &plane, i * g.stride * g.w + j * g.stride);
                    want_y.push(plane[k]);
                    want_dx[k] += dy[i * g.ow + j];
                }
            }
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&y), bits(&want_y), "forward, case {s}");
            assert_eq!(bits(&dx), bits(&want_dx), "backward, case {s}");
        }
    }
}
