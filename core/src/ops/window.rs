//! Sliding-window geometry shared by [`conv2d`](super::conv2d), [`max_pool2d`](super::max_pool2d)
//! and [`avg_pool2d`](super::avg_pool2d): the output size, which window taps fall inside the
//! image, the pooling settings ([`Pool2dConfig`]), and how a node keeps its geometry.
//!
//! Output size per axis: `⌊(size + 2·padding − window) / stride⌋ + 1`; rows and columns that do
//! not fill a whole window are never read (their input gradient is 0). Padding is zeros that are
//! never stored: a tap on it is skipped, which gives the same bits as adding `0·w` (a sum that
//! starts at +0.0 can never be −0.0, so adding ±0 leaves it unchanged) for finite weights.
//!
//! **How image dims travel on the tape.** A [`Shape`] stays `rows × cols`: a batch of images is
//! `batch × (C·H·W)`, each row one image in C, H, W order. The caller passes the input's
//! [`ImageShape`] to the op, which checks it against the row length; the op then writes its
//! geometry (C, H, W, window height and width, stride, padding) into
//! [`GEOMETRY_FLOATS`] scratch floats right after its output, as exact small integers (every
//! dimension is at most [`MAX_DIM`] = 2²⁴, so each is an exact, normal-or-zero f32 that survives
//! any copy), and backward reads it back from there. The [`Op`] record thus stays as
//! small as it was (a larger payload would grow every [`Node`] of every firmware), at the cost of
//! seven floats per convolution or pooling node, which the planner functions count.
//!
//! **Flatten is not an op.** A convolution's or pooling's output row is already the image in
//! C, H, W order, which is exactly the flat row a dense layer ([`Tape::affine`](crate::Tape::affine))
//! reads: the book's `reshape(N, −1)` moves no data here, so nothing is recorded for it.

use crate::error::{Error, Result};
use crate::parallel::{Par, rows_per_chunk};
use crate::shape::{ImageShape, Shape};
use crate::tape::{Grads, Node, NodeIndex, Op, Tape};
use core::ops::Range;

/// Scratch floats a convolution or pooling node keeps its geometry in (after its output).
pub const GEOMETRY_FLOATS: usize = 7;

/// Largest image or window dimension, stride and padding (2²⁴: each is kept as an exact f32).
pub const MAX_DIM: usize = 1 << 24;

/// Window and stride of a pooling op ([`Tape::max_pool2d`](crate::Tape::max_pool2d),
/// [`Tape::avg_pool2d`](crate::Tape::avg_pool2d)); pooling has no padding (as the book, whose
/// pooling is only consistent without it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dConfig {
    /// Window rows.
    pub window_h: usize,
    /// Window columns.
    pub window_w: usize,
    /// Step between windows, in both directions.
    pub stride: usize,
}

impl Pool2dConfig {
    /// A `window_h × window_w` window moved by `stride`.
    pub const fn new(window_h: usize, window_w: usize, stride: usize) -> Self {
        Pool2dConfig { window_h, window_w, stride }
    }

    /// A `k × k` window moved by `k` (non-overlapping, the book's 2×2 pooling is `square(2)`).
    pub const fn square(k: usize) -> Self {
        Pool2dConfig::new(k, k, k)
    }

    /// One window over the whole of each channel: global pooling, `C × 1 × 1` out.
    pub const fn global(image: ImageShape) -> Self {
        Pool2dConfig::new(image.height, image.width, 1)
    }

    /// The pooled image of `image`, or the error pooling would give for these settings.
    pub const fn output(&self, image: ImageShape) -> Result<ImageShape> {
        match Geometry::new(image, self.window_h, self.window_w, self.stride, 0, &POOL_NAMES) {
            Ok(g) => Ok(g.output(g.c)),
            Err(e) => Err(e),
        }
    }
}

const POOL_NAMES: Names = Names {
    stride: "pool2d stride",
    dim: "pool2d dimension (at most 2^24)",
    window: "pool2d window",
    input: "pool2d input",
};

/// The names an op's geometry errors carry.
pub(crate) struct Names {
    /// [`Error::InvalidArgument`] for a zero stride.
    pub(crate) stride: &'static str,
    /// [`Error::InvalidArgument`] for a dimension above [`MAX_DIM`].
    pub(crate) dim: &'static str,
    /// [`Error::Shape`] for a window that is empty or larger than the padded image.
    pub(crate) window: &'static str,
    /// [`Error::Shape`] for an input row that is not one image.
    pub(crate) input: &'static str,
}

/// One op's geometry: input image, window, stride, padding, and the output size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub(crate) c: usize,
    pub(crate) h: usize,
    pub(crate) w: usize,
    pub(crate) kh: usize,
    pub(crate) kw: usize,
    pub(crate) stride: usize,
    pub(crate) pad: usize,
    pub(crate) oh: usize,
    pub(crate) ow: usize,
}

impl Geometry {
    /// Checks the settings and computes the output size; refuses a zero stride, a dimension
    /// above [`MAX_DIM`] and a window that is empty or does not fit the padded image.
    pub(crate) const fn new(
        image: ImageShape,
        kh: usize,
        kw: usize,
        stride: usize,
        pad: usize,
        names: &Names,
    ) -> Result<Geometry> {
        if stride == 0 {
            return Err(Error::InvalidArgument { what: names.stride, value: 0.0 });
        }
        let dims = [image.channels, image.height, image.width, kh, kw, stride, pad];
        let mut i = 0;
        while i < dims.len() {
            if dims[i] > MAX_DIM {
                return Err(Error::InvalidArgument { what: names.dim, value: dims[i] as f32 });
            }
            i += 1;
        }
        // Each term is at most 2²⁴: these sums fit even in 32 bits.
        let (ph, pw) = (image.height + 2 * pad, image.width + 2 * pad);
        if kh == 0 || kw == 0 || kh > ph || kw > pw {
            return Err(Error::Shape {
                op: names.window,
                expected: Shape::new(ph, pw),
                found: Shape::new(kh, kw),
            });
        }
        let (oh, ow) = ((ph - kh) / stride + 1, (pw - kw) / stride + 1);
        Ok(Geometry { c: image.channels, h: image.height, w: image.width, kh, kw, stride, pad, oh, ow })
    }

    /// The output image with `channels` channels.
    pub(crate) const fn output(&self, channels: usize) -> ImageShape {
        ImageShape::new(channels, self.oh, self.ow)
    }

    /// Writes the geometry into a node's scratch (`out` holds [`GEOMETRY_FLOATS`] floats).
    pub(crate) fn store(&self, out: &mut [f32]) {
        let words = [self.c, self.h, self.w, self.kh, self.kw, self.stride, self.pad];
        for (o, &v) in out.iter_mut().zip(&words) {
            *o = v as f32; // at most 2²⁴ (checked by `new`): exact
        }
    }

    /// Reads back the geometry `node` stored ([`store`](Self::store)) from the tape's values.
    pub(crate) fn load(vals: &[f32], node: Node) -> Geometry {
        let at = node.offset().saturating_add(node.shape().len());
        let words = vals.get(at..at.saturating_add(GEOMETRY_FLOATS)).unwrap_or_default();
        let word = |i: usize| words.get(i).map_or(0, |&v| v as usize);
        let (h, w, kh, kw, stride, pad) = (word(1), word(2), word(3), word(4), word(5), word(6));
        // Recorded by `new`, so none of these saturate or divide by zero; written so that a
        // damaged record cannot panic either.
        let out = |size: usize, k: usize| {
            (size.saturating_add(2 * pad).saturating_sub(k)).checked_div(stride).map_or(0, |v| v + 1)
        };
        Geometry { c: word(0), h, w, kh, kw, stride, pad, oh: out(h, kh), ow: out(w, kw) }
    }

    /// Window rows that fall inside the image for output row `i`.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn taps_h(&self, i: usize) -> Range<usize> {
        taps(i, self.stride, self.pad, self.kh, self.h)
    }

    /// Window columns that fall inside the image for output column `j`.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn taps_w(&self, j: usize) -> Range<usize> {
        taps(j, self.stride, self.pad, self.kw, self.w)
    }

    /// Output rows whose window row `p` falls inside the image.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn outs_h(&self, p: usize) -> Range<usize> {
        outs(p, self.stride, self.pad, self.h, self.oh)
    }

    /// Output columns whose window column `q` falls inside the image.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn outs_w(&self, q: usize) -> Range<usize> {
        outs(q, self.stride, self.pad, self.w, self.ow)
    }
}

/// Taps `t` of a window of `k` with `0 ≤ o·stride + t − pad < size`.
#[cfg_attr(not(debug_assertions), inline(always))]
fn taps(o: usize, stride: usize, pad: usize, k: usize, size: usize) -> Range<usize> {
    let start = o * stride; // ≤ size + 2·pad − k: no overflow
    pad.saturating_sub(start)..k.min((size + pad).saturating_sub(start))
}

/// Outputs `o < out` with `0 ≤ o·stride + t − pad < size`.
#[cfg_attr(not(debug_assertions), inline(always))]
fn outs(t: usize, stride: usize, pad: usize, size: usize, out: usize) -> Range<usize> {
    let ceil = |a: usize| if stride == 1 { a } else { a.div_ceil(stride.max(1)) };
    ceil(pad.saturating_sub(t))..out.min(ceil((size + pad).saturating_sub(t)))
}

/// Floats of a node with a `batch × out` output plus geometry scratch, and its gradient if
/// `grads` (shared by the pooling ops).
pub(crate) const fn node_floats(batch: usize, out: ImageShape, grads: bool) -> Result<usize> {
    let overflow = Error::Overflow { what: "image op tape floats", batch };
    let Some(len) = out.checked_len() else { return Err(overflow) };
    let Some(len) = len.checked_mul(batch) else { return Err(overflow) };
    let Some(total) = len.checked_add(GEOMETRY_FLOATS) else { return Err(overflow) };
    if !grads {
        return Ok(total);
    }
    match total.checked_add(len) {
        Some(t) => Ok(t),
        None => Err(overflow),
    }
}

/// Records a pooling op: checks `x` against `image`, reserves the output (`batch × C·OH·OW`),
/// its geometry scratch and, if `x` has one, a gradient, and fills each output with `window`
/// of its input window (the channel's plane and the window's top-left index in it).
pub(crate) fn record_pool(
    tape: &mut Tape<'_>,
    op: Op,
    x: NodeIndex,
    image: ImageShape,
    config: Pool2dConfig,
    names: &Names,
    window: impl Fn(&Geometry, &[f32], usize) -> f32 + Sync,
) -> Result<NodeIndex> {
    record_pool_planes(tape, op, x, image, config, names, |g, xc, yc| {
        // Nested loops, not `at / ow`: a division per output is dear on a Cortex-M.
        for (i, yrow) in yc.chunks_exact_mut(g.ow.max(1)).enumerate() {
            for (j, yv) in yrow.iter_mut().enumerate() {
                *yv = window(g, xc, i * g.stride * g.w + j * g.stride);
            }
        }
    })
}

/// [`record_pool`] with the outputs computed a channel at a time: `plane` fills the channel's
/// output plane (`OH·OW` floats) from its input plane.
pub(crate) fn record_pool_planes(
    tape: &mut Tape<'_>,
    op: Op,
    x: NodeIndex,
    image: ImageShape,
    config: Pool2dConfig,
    names: &Names,
    plane: impl Fn(&Geometry, &[f32], &mut [f32]) + Sync,
) -> Result<NodeIndex> {
    let xn = tape.node_at(x)?;
    let g = Geometry::new(image, config.window_h, config.window_w, config.stride, 0, names)?;
    let batch = xn.shape.rows;
    let in_len = image.checked_len().ok_or(Error::Overflow { what: "image op tape floats", batch })?;
    if xn.shape.cols != in_len {
        return Err(Error::Shape { op: names.input, expected: Shape::new(batch, in_len), found: xn.shape });
    }
    node_floats(batch, g.output(g.c), true)?; // every size below fits
    let out_len = g.output(g.c).checked_len().unwrap_or(0);
    let par = tape.parallel();
    let (v, off) = tape.push(op, Shape::new(batch, out_len), GEOMETRY_FLOATS, xn.needs_grad())?;
    let (lo, out) = tape.split_for_write(off);
    let (y, scratch) = out.split_at_mut((batch * out_len).min(out.len()));
    let (xv, hw, out_plane) = (lo.get(xn.range()).unwrap_or_default(), g.h * g.w, g.oh * g.ow);
    // Plane by plane as `chunks_exact(..).zip(chunks_exact_mut(..))` would, without the zip's
    // division by a chunk size it cannot see is nonzero (a panic path in a firmware).
    let planes = |mut xs: &[f32], mut ys: &mut [f32]| {
        while let (Some((xc, xr)), Some((yc, yr))) =
            (xs.split_at_checked(hw.max(1)), ys.split_at_mut_checked(out_plane.max(1)))
        {
            plane(&g, xc, yc);
            (xs, ys) = (xr, yr);
        }
    };
    // Planes are independent: a worker takes a run of them (the same bits, see `parallel`).
    match rows_per_chunk(&par, batch * g.c, hw, 1) {
        None => planes(xv, y),
        Some(per) => par.for_each_chunk(y, per * out_plane, |i, y| {
            planes(xv.get(i * per * hw..).unwrap_or_default(), y);
        }),
    }
    g.store(scratch);
    Ok(v)
}

/// Backward of a pooling node: for each output in (n, c, i, j) order, `window` adds its share of
/// `dy` onto the input gradient of its window (the channel's input plane, the window's top-left
/// index, `dy`, the channel's `dx` plane).
pub(crate) fn pool_backward(
    par: &Par<'_>,
    grads: Grads<'_>,
    node: Node,
    x: NodeIndex,
    window: impl Fn(&Geometry, &[f32], usize, f32, &mut [f32]) + Sync,
) -> Result<()> {
    pool_backward_planes(par, grads, node, x, |g, xc, dyc, dxc| {
        for (i, dyrow) in dyc.chunks_exact(g.ow.max(1)).enumerate() {
            for (j, &d) in dyrow.iter().enumerate() {
                window(g, xc, i * g.stride * g.w + j * g.stride, d, dxc);
            }
        }
    })
}

/// [`pool_backward`] a channel at a time: `plane` gets the channel's input plane, output
/// gradient plane and input gradient plane.
pub(crate) fn pool_backward_planes(
    par: &Par<'_>,
    mut grads: Grads<'_>,
    node: Node,
    x: NodeIndex,
    plane: impl Fn(&Geometry, &[f32], &[f32], &mut [f32]) + Sync,
) -> Result<()> {
    let g = Geometry::load(grads.vals, node);
    let xv = grads.vals.get(grads.node(x).range()).unwrap_or_default();
    let (dy, dx) = grads.out_and(node, x);
    let (hw, out_plane) = ((g.h * g.w).max(1), (g.oh * g.ow).max(1));
    let planes = |xv: &[f32], dy: &[f32], dx: &mut [f32]| {
        for ((xc, dxc), dyc) in
            xv.chunks_exact(hw).zip(dx.chunks_exact_mut(hw)).zip(dy.chunks_exact(out_plane))
        {
            plane(&g, xc, dyc, dxc);
        }
    };
    // A plane's input gradient comes from its own output gradient only: a worker takes a run
    // of planes (the same bits, see `parallel`).
    let count = (dx.len() / hw).min(dy.len() / out_plane).min(xv.len() / hw);
    match rows_per_chunk(par, count, hw, 1) {
        None => planes(xv, dy, dx),
        Some(per) => par.for_each_chunk(dx.get_mut(..count * hw).unwrap_or_default(), per * hw, |i, dx| {
            let at = i * per;
            planes(xv.get(at * hw..).unwrap_or_default(), dy.get(at * out_plane..).unwrap_or_default(), dx);
        }),
    }
    Ok(())
}

/// Tape floats a pooling op takes for a batch of `batch` `image`s: the output,
/// [`GEOMETRY_FLOATS`] of scratch and, if `grads` (gradients enabled and the input has one), the
/// output's gradient. Exactly what the op reserves; one float less is refused.
pub(crate) const fn pool_tape_floats(
    batch: usize,
    image: ImageShape,
    config: Pool2dConfig,
    grads: bool,
    names: &Names,
) -> Result<usize> {
    match Geometry::new(image, config.window_h, config.window_w, config.stride, 0, names) {
        Ok(g) => node_floats(batch, g.output(g.c), grads),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: Names = Names { stride: "s", dim: "d", window: "w", input: "i" };

    #[test]
    fn output_size_is_a_floor() {
        let g = Geometry::new(ImageShape::new(2, 6, 5), 3, 3, 2, 0, &NAMES).unwrap();
        assert_eq!((g.oh, g.ow), (2, 2)); // the book's case e: row 5 is never read
        let g = Geometry::new(ImageShape::new(2, 5, 7), 3, 3, 2, 1, &NAMES).unwrap();
        assert_eq!((g.oh, g.ow), (3, 4));
    }

    #[test]
    fn taps_and_outs_agree() {
        for (h, k, s, p) in
            [(5, 3, 2, 1), (8, 5, 1, 2), (6, 3, 2, 0), (4, 1, 1, 0), (3, 3, 1, 2), (7, 2, 3, 1)]
        {
            let g = Geometry::new(ImageShape::new(1, h, h), k, k, s, p, &NAMES).unwrap();
            for i in 0..g.oh {
                for t in 0..k {
                    let inside = (i * s + t) >= p && (i * s + t) < h + p;
                    assert_eq!(g.taps_h(i).contains(&t), inside, "{h} {k} {s} {p}: i {i} t {t}");
                    assert_eq!(g.outs_h(t).contains(&i), inside, "{h} {k} {s} {p}: i {i} t {t}");
                }
            }
        }
    }

    #[test]
    fn refusals() {
        let img = ImageShape::new(1, 4, 4);
        assert!(matches!(
            Geometry::new(img, 2, 2, 0, 0, &NAMES),
            Err(Error::InvalidArgument { what: "s", .. })
        ));
        assert!(matches!(Geometry::new(img, 5, 2, 1, 0, &NAMES), Err(Error::Shape { op: "w", .. })));
        assert!(matches!(Geometry::new(img, 0, 2, 1, 0, &NAMES), Err(Error::Shape { op: "w", .. })));
        assert!(Geometry::new(img, 6, 6, 1, 1, &NAMES).is_ok());
        let big = ImageShape::new(1, MAX_DIM + 1, 1);
        assert!(matches!(
            Geometry::new(big, 1, 1, 1, 0, &NAMES),
            Err(Error::InvalidArgument { what: "d", .. })
        ));
    }

    #[test]
    fn store_then_load() {
        let g = Geometry::new(ImageShape::new(3, 9, 7), 3, 2, 2, 1, &NAMES).unwrap();
        let mut vals = [0.0f32; 4 + GEOMETRY_FLOATS];
        g.store(&mut vals[4..]);
        let node = Node { off: 0, shape: Shape::new(1, 4), ..Node::EMPTY };
        assert_eq!(Geometry::load(&vals, node), g);
    }
}
