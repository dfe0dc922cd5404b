//! 2-D convolution over a batch of NCHW images: a cross-correlation (the kernel is not flipped)
//! with zero padding, as the book's `Convolution` layer:
//! `y[n,o,i,j] = (Σ_{c,p,q} W[o,c,p,q]·x[n,c,i·s+p−pad, j·s+q−pad]) + b[o]`,
//! output size `⌊(H + 2·pad − kh)/s⌋ + 1` per axis (see [`super::window`] for the geometry, how
//! the image dims travel on the tape, and why flatten is not an op).
//!
//! Layout: `x` is `batch × (C·H·W)`, the weight a parameter of shape `out × (C·kh·kw)` (the
//! book's `[out, C, kh, kw]` row-major), the bias `1 × out`, the output `batch × (out·OH·OW)`.
//!
//! Canonical order (the same bits on every target, see [`crate::kernels`]), with taps on the
//! padding skipped:
//! * forward: each output sums its taps in (c, p, q) order from 0.0, then adds the bias (as
//!   [`affine`](super::affine) adds its bias after the product);
//! * `dW[o,c,p,q]` adds its terms in (n, i, j) order onto the current gradient, `db[o]` adds
//!   `dy[n,o,i,j]` in (n, i, j) order;
//! * `dx`: for each window position (n, i, j) in ascending order, each tap's
//!   `t = Σ_o dy[n,o,i,j]·W[o,c,p,q]` (from 0.0, o ascending) is added onto `dx` — the order of
//!   an im2col product followed by a col2im scatter, so a later im2col version can give the same
//!   bits. Skipped, as for [`affine`](super::affine), when the input needs no gradient (the first
//!   layer's images).
//!
//! Memory: the output, its gradient, and [`GEOMETRY_FLOATS`] scratch floats; no other buffer
//! ([`tape_floats`] says exactly how many).
//!
//! ```
//! use staticgrad::{Conv2dConfig, ImageShape, ParamKind, ParamStorage, Shape, TapeStorage};
//! let mut ps = ParamStorage::<16, 2>::new();
//! let mut params = ps.params();
//! let w = params.alloc(Shape::new(1, 4), ParamKind::Weight)?; // one 1×2×2 filter
//! let b = params.alloc(Shape::row(1), ParamKind::Bias)?;
//! params.value_mut(w)?.copy_from_slice(&[1.0, 0.0, 0.0, -1.0]);
//! params.value_mut(b)?.copy_from_slice(&[0.5]);
//! let mut ts = TapeStorage::<64, 4>::new();
//! let mut tape = ts.tape();
//! let image = ImageShape::new(1, 3, 3);
//! let x = tape.input(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0], Shape::new(1, 9))?;
//! let y = tape.conv2d(x, &params, w, b, image, Conv2dConfig::new(2, 2, 1, 0))?;
//! // x[i][j] − x[i+1][j+1] + 0.5 = −3.5 at every position of the 2×2 output
//! assert_eq!(tape.value(y)?, &[-3.5; 4]);
//! # Ok::<(), staticgrad::Error>(())
//! ```

use super::window::{GEOMETRY_FLOATS, Geometry, Names, node_floats};
use crate::error::{Error, Region, Result};
use crate::fused::{FusedChunk, FusedUpdate};
use crate::parallel::{Par, rows_per_chunk};
use crate::params::{ParamId, Params};
use crate::shape::{ImageShape, Shape};
use crate::tape::{Grads, Node, NodeIndex, Op, Tape, Var};

/// Kernel size, stride and zero padding of a convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dConfig {
    /// Kernel rows.
    pub kernel_h: usize,
    /// Kernel columns.
    pub kernel_w: usize,
    /// Step between windows, in both directions.
    pub stride: usize,
    /// Zeros added on every side, in both directions.
    pub padding: usize,
}

impl Conv2dConfig {
    /// A `kernel_h × kernel_w` kernel moved by `stride` over the image padded by `padding`.
    pub const fn new(kernel_h: usize, kernel_w: usize, stride: usize, padding: usize) -> Self {
        Conv2dConfig { kernel_h, kernel_w, stride, padding }
    }

    /// A `k × k` kernel, stride 1, no padding (the book's SimpleConvNet uses `valid(5)`).
    pub const fn valid(k: usize) -> Self {
        Conv2dConfig::new(k, k, 1, 0)
    }

    /// The geometry over `image`, checked.
    pub(crate) const fn geometry(&self, image: ImageShape) -> Result<Geometry> {
        Geometry::new(image, self.kernel_h, self.kernel_w, self.stride, self.padding, &NAMES)
    }

    /// Weight shape for `out_channels` filters over `channels` input channels:
    /// `out_channels × (channels·kh·kw)`.
    pub const fn weight_shape(&self, channels: usize, out_channels: usize) -> Result<Shape> {
        match channels.checked_mul(self.kernel_h) {
            Some(ck) => match ck.checked_mul(self.kernel_w) {
                Some(k) => Ok(Shape::new(out_channels, k)),
                None => Err(OVERFLOW),
            },
            None => Err(OVERFLOW),
        }
    }

    /// The output image of `out_channels` filters over `image`, or the error
    /// [`Tape::conv2d`] would give for these settings.
    pub const fn output(&self, image: ImageShape, out_channels: usize) -> Result<ImageShape> {
        match self.geometry(image) {
            Ok(g) => Ok(g.output(out_channels)),
            Err(e) => Err(e),
        }
    }
}

const NAMES: Names = Names {
    stride: "conv2d stride",
    dim: "conv2d dimension (at most 2^24)",
    window: "conv2d window",
    input: "conv2d input",
};
const OVERFLOW: Error = Error::Overflow { what: "conv2d floats", batch: 0 };

/// Tape floats [`Tape::conv2d`] takes for a batch of `batch` `image`s and `out_channels`
/// filters: the output, [`GEOMETRY_FLOATS`] of scratch and, when gradients are enabled
/// (`grads`), the output's gradient. Exactly what the op reserves; one float less is refused.
pub const fn tape_floats(
    batch: usize,
    image: ImageShape,
    out_channels: usize,
    config: Conv2dConfig,
    grads: bool,
) -> Result<usize> {
    let out = match config.output(image, out_channels) {
        Ok(o) => o,
        Err(e) => return Err(e),
    };
    node_floats(batch, out, grads)
}

impl Tape<'_> {
    /// Convolution of `x` (`batch × (C·H·W)`, each row an `image`) with weight `w`
    /// (`out × (C·kh·kw)`) and bias `b` (`1 × out`): `batch × (out·OH·OW)`. See the module docs.
    ///
    /// Refused: a row length other than `image`'s ([`Error::Shape`] `"conv2d input"`), a weight
    /// or bias of another shape (`"conv2d weight"`, `"conv2d bias"`), a window that does not fit
    /// the padded image (`"conv2d window"`), a zero stride.
    pub fn conv2d(
        &mut self,
        x: Var,
        params: &Params,
        w: ParamId,
        b: ParamId,
        image: ImageShape,
        config: Conv2dConfig,
    ) -> Result<Var> {
        let y = self.conv2d_at(self.check(x)?, params, w, b, image, config)?;
        Ok(self.var(y))
    }

    /// [`conv2d`](Self::conv2d) of node `x` (the core's own recording path).
    pub(crate) fn conv2d_at(
        &mut self,
        x: NodeIndex,
        params: &Params,
        w: ParamId,
        b: ParamId,
        image: ImageShape,
        config: Conv2dConfig,
    ) -> Result<NodeIndex> {
        let xn = self.node_at(x)?;
        let g = config.geometry(image)?;
        let batch = xn.shape.rows;
        let in_len = image.checked_len().ok_or(Error::Overflow { what: "conv2d floats", batch })?;
        if xn.shape.cols != in_len {
            return Err(Error::Shape {
                op: "conv2d input",
                expected: Shape::new(batch, in_len),
                found: xn.shape,
            });
        }
        let (we, be) = (params.entry(w)?, params.entry(b)?);
        let out_channels = we.shape.rows;
        let expected = config.weight_shape(image.channels, out_channels)?;
        if we.shape != expected {
            return Err(Error::Shape { op: "conv2d weight", expected, found: we.shape });
        }
        if be.shape != Shape::row(out_channels) {
            return Err(Error::Shape {
                op: "conv2d bias",
                expected: Shape::row(out_channels),
                found: be.shape,
            });
        }
        node_floats(batch, g.output(out_channels), true)?; // every size below fits
        let out_len = g.output(out_channels).checked_len().unwrap_or(0);
        let par = self.parallel();
        let (v, off) =
            self.push(Op::Conv2d { x, w, b }, Shape::new(batch, out_len), GEOMETRY_FLOATS, true)?;
        let (lo, out) = self.split_for_write(off);
        let (y, scratch) = out.split_at_mut((batch * out_len).min(out.len()));
        let (xv, wv, bv) = (lo.get(xn.range()).unwrap_or_default(), params.value(w)?, params.value(b)?);
        // Images are independent: a worker takes a run of them (the same bits, see `parallel`).
        match rows_per_chunk(&par, batch, out_len.saturating_mul(we.shape.cols), 1) {
            None => forward_images(&g, batch, out_channels, xv, wv, bv, y),
            Some(per) => par.for_each_chunk(y, per * out_len, |i, y| {
                let xs = xv.get(i * per * in_len..).unwrap_or_default();
                forward_images(&g, y.len() / out_len.max(1), out_channels, xs, wv, bv, y);
            }),
        }
        g.store(scratch);
        Ok(v)
    }
}

/// The forward of `batch` images: im2col products on hosts where they apply, else the loops.
#[cfg_attr(not(debug_assertions), inline(always))]
fn forward_images(g: &Geometry, batch: usize, o: usize, x: &[f32], w: &[f32], b: &[f32], y: &mut [f32]) {
    #[cfg(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64"))]
    let done = super::im2col::forward(g, batch, o, x, w, b, y);
    #[cfg(not(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64")))]
    let done = false;
    if !done {
        forward(g, batch, o, x, w, b, y);
    }
}

/// The forward loops. Each output still adds its taps in (c, p, q) order from 0.0 (module docs);
/// the loops run over the taps outside and a whole output row inside, which only reorders
/// independent outputs (as [`crate::kernels`] allows) and lets a row vectorise. A 3×3 kernel at
/// stride 1 takes [`forward_3x3`] instead.
fn forward(g: &Geometry, batch: usize, o: usize, x: &[f32], w: &[f32], b: &[f32], y: &mut [f32]) {
    if g.kh == 3
        && g.kw == 3
        && g.stride == 1
        && g.w + 2 * g.pad <= PADDED_ROW
        && w.iter().all(|v| v.is_finite())
    {
        return forward_3x3(g, batch, o, x, w, b, y);
    }
    let (img, k, plane) = (g.c * g.h * g.w, g.c * g.kh * g.kw, g.oh * g.ow);
    for n in 0..batch {
        let xs = x.get(n * img..(n + 1) * img).unwrap_or_default();
        for f in 0..o {
            let wf = w.get(f * k..(f + 1) * k).unwrap_or_default();
            let bias = b.get(f).copied().unwrap_or(0.0);
            let ys = y.get_mut((n * o + f) * plane..(n * o + f + 1) * plane).unwrap_or_default();
            for (i, yrow) in ys.chunks_exact_mut(g.ow.max(1)).enumerate() {
                yrow.fill(0.0);
                for c in 0..g.c {
                    for p in g.taps_h(i) {
                        // Rows inside the image only: `p` is at least `pad − i·stride`.
                        let xrow = (c * g.h + i * g.stride + p - g.pad) * g.w;
                        let taps = wf.get((c * g.kh + p) * g.kw..).unwrap_or_default();
                        for (q, &wv) in taps.iter().enumerate().take(g.kw) {
                            // Outputs whose tap `q` is inside the image: `j·stride + q ≥ pad`.
                            let js = g.outs_w(q);
                            let x0 = xrow + js.start * g.stride + q - g.pad;
                            let ys = yrow.get_mut(js).unwrap_or_default();
                            if g.stride == 1 {
                                for (yv, &xv) in ys.iter_mut().zip(xs.get(x0..).unwrap_or_default()) {
                                    *yv += wv * xv;
                                }
                            } else {
                                let xr = xs.get(x0..).unwrap_or_default().iter().step_by(g.stride.max(1));
                                for (yv, &xv) in ys.iter_mut().zip(xr) {
                                    *yv += wv * xv;
                                }
                            }
                        }
                    }
                }
                for yv in yrow.iter_mut() {
                    *yv += bias;
                }
            }
        }
    }
}

/// Widest padded input row (`W + 2·pad`) [`forward_3x3`] keeps on the stack (three of them).
const PADDED_ROW: usize = 64;

/// [`forward`] of a 3×3 kernel at stride 1 with finite weights: each input row is copied once,
/// zero-padded, into a ring of three rows on the stack, and every output then takes all nine taps
/// of its window from it — no tap is on the padding any more, no window bound is checked per
/// output, the nine weights stay in registers. Same bits: a padding tap adds `w·0 = ±0`, which
/// leaves a sum that started at +0.0 unchanged (it is never −0.0, see [`super::window`]), so it
/// is as if it were skipped; hence finite weights only (`∞·0` is NaN). Loops: image, channel,
/// output row, filter, output column; each output still sums in (c, p, q) order, then the bias.
fn forward_3x3(g: &Geometry, batch: usize, o: usize, x: &[f32], w: &[f32], b: &[f32], y: &mut [f32]) {
    let (img, k, plane, pw) = (g.c * g.h * g.w, g.c * 9, g.oh * g.ow, g.w + 2 * g.pad);
    let mut ring = [[0.0f32; PADDED_ROW]; 3];
    for n in 0..batch {
        let xs = x.get(n * img..(n + 1) * img).unwrap_or_default();
        let ys = y.get_mut(n * o * plane..(n + 1) * o * plane).unwrap_or_default();
        for c in 0..g.c {
            // Padded row `r` (input row `r − pad`, or zeros) into ring slot `r % 3`.
            let load = |ring: &mut [[f32; PADDED_ROW]; 3], r: usize| {
                let Some(slot) = ring.get_mut(r % 3) else { return };
                slot.fill(0.0);
                if (g.pad..g.pad + g.h).contains(&r) {
                    let src = xs.get((c * g.h + r - g.pad) * g.w..).unwrap_or_default();
                    let dst = slot.get_mut(g.pad..g.pad + g.w).unwrap_or_default();
                    for (d, &v) in dst.iter_mut().zip(src) {
                        *d = v;
                    }
                }
            };
            load(&mut ring, 0);
            load(&mut ring, 1);
            let (first, last) = (c == 0, c + 1 == g.c);
            for i in 0..g.oh {
                load(&mut ring, i + 2);
                let row = |p: usize| ring.get((i + p) % 3).and_then(|r| r.get(..pw)).unwrap_or_default();
                let (r0, r1, r2) = (row(0), row(1), row(2));
                for f in 0..o {
                    let wf = w
                        .get(f * k + c * 9..)
                        .and_then(|s| s.first_chunk::<9>())
                        .copied()
                        .unwrap_or([0.0; 9]);
                    let bias = b.get(f).copied().unwrap_or(0.0);
                    let at = f * plane + i * g.ow;
                    let yrow = ys.get_mut(at..at + g.ow).unwrap_or_default();
                    let windows = r0.windows(3).zip(r1.windows(3)).zip(r2.windows(3));
                    for (yv, ((a, m), z)) in yrow.iter_mut().zip(windows) {
                        let (Some(a), Some(m), Some(z)) = (a.first_chunk(), m.first_chunk(), z.first_chunk())
                        else {
                            continue; // never: windows of 3
                        };
                        let mut acc = if first { 0.0 } else { *yv };
                        acc = taps3(acc, &wf, 0, a);
                        acc = taps3(acc, &wf, 3, m);
                        acc = taps3(acc, &wf, 6, z);
                        *yv = if last { acc + bias } else { acc };
                    }
                }
            }
        }
    }
}

/// `acc + w[at]·x[0] + w[at+1]·x[1] + w[at+2]·x[2]`, left to right: one kernel row.
#[cfg_attr(not(debug_assertions), inline(always))]
fn taps3(acc: f32, w: &[f32; 9], at: usize, x: &[f32; 3]) -> f32 {
    let w = w.get(at..).and_then(|s| s.first_chunk::<3>()).copied().unwrap_or([0.0; 3]);
    ((acc + w[0] * x[0]) + w[1] * x[1]) + w[2] * x[2]
}

/// Backward with a gradient buffer: `dx` (if the input needs it), then `dW` and `db` added onto
/// the parameters' gradients.
pub(crate) fn backward(
    par: &Par<'_>,
    mut g: Grads,
    node: Node,
    x: NodeIndex,
    w: ParamId,
    b: ParamId,
    params: &mut Params,
) -> Result<()> {
    let geom = Geometry::load(g.vals, node);
    let xn = g.node(x);
    let batch = xn.shape.rows;
    let vals = g.vals;
    let (we, be) = (params.entry(w)?, params.entry(b)?);
    let (o, k) = (we.shape.rows, we.shape.cols);
    let (pv, pg, _) = params.split_mut();
    let (dy, dx) = g.out_and(node, x);
    if xn.needs_grad() {
        input_grad(&geom, batch, o, dy, pv.get(we.range()).unwrap_or_default(), dx);
    }
    let xv = vals.get(xn.range()).unwrap_or_default();
    #[cfg(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64"))]
    if super::im2col::weight_grad(par, &geom, batch, o, xv, dy, pg, (we.range(), be.range())) {
        return Ok(());
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64")))]
    let _ = par; // the loops run on one thread
    let x_finite = xv.iter().all(|v| v.is_finite());
    for (f, dwf) in pg.get_mut(we.range()).unwrap_or_default().chunks_exact_mut(k.max(1)).enumerate() {
        filter_grad(&geom, batch, o, f, xv, dy, dwf, x_finite);
    }
    bias_grad(&geom, batch, o, dy, pg.get_mut(be.range()).unwrap_or_default());
    Ok(())
}

/// Backward with the fused update: `dx` first (from the weights before the update), then each
/// filter's gradient (one row of the weight, `C·kh·kw` floats) summed from 0.0 into the row
/// scratch and handed to `rule`, then the bias's. Bit-identical to `zero_grad` + [`backward`] +
/// the same step.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward_fused<U: FusedUpdate + ?Sized>(
    mut g: Grads,
    node: Node,
    x: NodeIndex,
    w: ParamId,
    b: ParamId,
    params: &mut Params,
    rule: &U,
    state: &mut [f32],
    lr: f32,
) -> Result<()> {
    let geom = Geometry::load(g.vals, node);
    let xn = g.node(x);
    let batch = xn.shape.rows;
    let vals = g.vals;
    let (we, be) = (params.entry(w)?, params.entry(b)?);
    let (o, k) = (we.shape.rows, we.shape.cols);
    let (pv, scratch, _) = params.split_fused();
    let (needed, available) = (k.max(o), scratch.len());
    let row =
        scratch.get_mut(..needed).ok_or(Error::Capacity { region: Region::ParamGrads, needed, available })?;
    let (dy, dx) = g.out_and(node, x);
    if xn.needs_grad() {
        input_grad(&geom, batch, o, dy, pv.get(we.range()).unwrap_or_default(), dx);
    }
    let xv = vals.get(xn.range()).unwrap_or_default();
    if we.kind.trainable() {
        let x_finite = xv.iter().all(|v| v.is_finite());
        let r = row.get_mut(..k).unwrap_or_default();
        for (f, wf) in pv.get_mut(we.range()).unwrap_or_default().chunks_exact_mut(k.max(1)).enumerate() {
            r.fill(0.0);
            filter_grad(&geom, batch, o, f, xv, dy, r, x_finite);
            rule.update(FusedChunk { entry: we, start: f * k }, wf, r, state, lr)?;
        }
    }
    if be.kind.trainable() {
        let r = row.get_mut(..o).unwrap_or_default();
        r.fill(0.0);
        bias_grad(&geom, batch, o, dy, r);
        rule.update(
            FusedChunk { entry: be, start: 0 },
            pv.get_mut(be.range()).unwrap_or_default(),
            r,
            state,
            lr,
        )?;
    }
    Ok(())
}

/// `dW[f,c,p,q] += Σ_{n,i,j} dy[n,f,i,j]·x[n,c,i·s+p−pad, j·s+q−pad]` for filter `f`, terms in
/// (n, i, j) order onto the current value of `dwf` (`C·kh·kw` floats). `x_finite`: every input
/// value is finite (the caller checks once per backward).
///
/// Where that holds and no `dwf` entry is −0.0, the outputs whose `dy` is zero are skipped
/// ([`filter_grad_sparse`]): after ReLU and max pooling most are (3 in 4 at least behind a 2×2
/// pool). Same bits: such a term is ±0 (finite `x`), and adding ±0 changes no sum that is not
/// −0.0 — a sum that starts at +0.0 or a nonzero value never becomes −0.0 (x + (−x) = +0.0).
#[allow(clippy::too_many_arguments)]
fn filter_grad(
    g: &Geometry,
    batch: usize,
    o: usize,
    f: usize,
    x: &[f32],
    dy: &[f32],
    dwf: &mut [f32],
    x_finite: bool,
) {
    if x_finite && !dwf.iter().any(|d| d.to_bits() == (-0.0f32).to_bits()) {
        filter_grad_sparse(g, batch, o, f, x, dy, dwf);
    } else {
        filter_grad_dense(g, batch, o, f, x, dy, dwf);
    }
}

/// [`filter_grad`] over the outputs whose `dy` is not zero: each adds `dy·x` onto every tap of
/// its window that is inside the image, outputs in (n, i, j) order.
fn filter_grad_sparse(
    g: &Geometry,
    batch: usize,
    o: usize,
    f: usize,
    x: &[f32],
    dy: &[f32],
    dwf: &mut [f32],
) {
    let (img, plane, kk) = (g.c * g.h * g.w, g.oh * g.ow, g.kh * g.kw);
    for n in 0..batch {
        let xs = x.get(n * img..(n + 1) * img).unwrap_or_default();
        let dys = dy.get((n * o + f) * plane..(n * o + f + 1) * plane).unwrap_or_default();
        for (i, dyrow) in dys.chunks_exact(g.ow.max(1)).enumerate() {
            let rows = g.taps_h(i);
            let mut j = 0;
            // The next nonzero `dy` (±0.0 both skipped: the bits without the sign are zero).
            while let Some(skip) = dyrow.get(j..).and_then(|r| r.iter().position(|v| v.to_bits() << 1 != 0)) {
                j += skip;
                let dv = dyrow.get(j).copied().unwrap_or(0.0);
                let cols = g.taps_w(j);
                // Not `cols.len()`: its `assert_eq!` on the size hint may stay in a firmware.
                let width = cols.end.saturating_sub(cols.start);
                for c in 0..g.c {
                    for p in rows.clone() {
                        // Taps inside the image only: no underflow.
                        let at =
                            (c * g.h + i * g.stride + p - g.pad) * g.w + j * g.stride + cols.start - g.pad;
                        let tap = c * kk + p * g.kw + cols.start;
                        if width == 3 {
                            // A whole 3-wide kernel row, unrolled.
                            let d = dwf.get_mut(tap..).and_then(|s| s.first_chunk_mut::<3>());
                            if let (Some(d), Some(xv)) = (d, xs.get(at..).and_then(|s| s.first_chunk::<3>()))
                            {
                                d[0] += dv * xv[0];
                                d[1] += dv * xv[1];
                                d[2] += dv * xv[2];
                            }
                            continue;
                        }
                        let dr = dwf.get_mut(tap..tap + width).unwrap_or_default();
                        for (d, &xv) in dr.iter_mut().zip(xs.get(at..).unwrap_or_default()) {
                            *d += dv * xv;
                        }
                    }
                }
                j += 1;
            }
        }
    }
}

/// [`filter_grad`] over every output. The taps `q` of one kernel row take turns row by row (each
/// its own sum, so the same order): independent sums the CPU can overlap.
fn filter_grad_dense(g: &Geometry, batch: usize, o: usize, f: usize, x: &[f32], dy: &[f32], dwf: &mut [f32]) {
    let (img, plane) = (g.c * g.h * g.w, g.oh * g.ow);
    for (cp, dwrow) in dwf.chunks_exact_mut(g.kw.max(1)).enumerate().take(g.c * g.kh) {
        let (c, p) = (cp / g.kh.max(1), cp % g.kh.max(1));
        let rows = g.outs_h(p);
        for n in 0..batch {
            let xs = x.get(n * img..(n + 1) * img).unwrap_or_default();
            let dys = dy.get((n * o + f) * plane..(n * o + f + 1) * plane).unwrap_or_default();
            for i in rows.clone() {
                // Rows whose tap row `p` is inside the image only: no underflow.
                let xrow = xs.get((c * g.h + i * g.stride + p - g.pad) * g.w..).unwrap_or_default();
                let dyrow = dys.get(i * g.ow..).unwrap_or_default();
                for (q, d) in dwrow.iter_mut().enumerate() {
                    let cols = g.outs_w(q);
                    let drow = dyrow.get(cols.clone()).unwrap_or_default();
                    // Columns whose tap `q` is inside the image only: no underflow.
                    let xt = xrow.get(cols.start * g.stride + q - g.pad..).unwrap_or_default();
                    let mut acc = *d;
                    if g.stride == 1 {
                        for (&dv, &xv) in drow.iter().zip(xt) {
                            acc += dv * xv;
                        }
                    } else {
                        for (&dv, &xv) in drow.iter().zip(xt.iter().step_by(g.stride.max(1))) {
                            acc += dv * xv;
                        }
                    }
                    *d = acc;
                }
            }
        }
    }
}

/// `db[f] += Σ_{n,i,j} dy[n,f,i,j]`, terms in (n, i, j) order.
fn bias_grad(g: &Geometry, batch: usize, o: usize, dy: &[f32], db: &mut [f32]) {
    let plane = g.oh * g.ow;
    for (f, d) in db.iter_mut().enumerate().take(o) {
        let mut acc = *d;
        for n in 0..batch {
            for &v in dy.get((n * o + f) * plane..(n * o + f + 1) * plane).unwrap_or_default() {
                acc += v;
            }
        }
        *d = acc;
    }
}

/// `dx`: for each window position (n, i, j) in order, each tap inside the image gets
/// `Σ_f dy[n,f,i,j]·W[f,c,p,q]` (from 0.0, f ascending) added.
fn input_grad(g: &Geometry, batch: usize, o: usize, dy: &[f32], w: &[f32], dx: &mut [f32]) {
    let (img, k, plane) = (g.c * g.h * g.w, g.c * g.kh * g.kw, g.oh * g.ow);
    for n in 0..batch {
        let dys = dy.get(n * o * plane..(n + 1) * o * plane).unwrap_or_default();
        let dxs = dx.get_mut(n * img..(n + 1) * img).unwrap_or_default();
        for i in 0..g.oh {
            let rows = g.taps_h(i);
            for j in 0..g.ow {
                let cols = g.taps_w(j);
                let dcol = dys.get(i * g.ow + j..).unwrap_or_default();
                for c in 0..g.c {
                    for p in rows.clone() {
                        let x0 =
                            (c * g.h + i * g.stride + p - g.pad) * g.w + j * g.stride + cols.start - g.pad;
                        let taps = (c * g.kh + p) * g.kw + cols.start;
                        let dxrow = dxs.get_mut(x0..x0 + cols.len()).unwrap_or_default();
                        for (tap, d) in (taps..).zip(dxrow) {
                            let wcol = w.get(tap..).unwrap_or_default().iter().step_by(k.max(1));
                            let mut t = 0.0f32;
                            for (&dv, &wv) in dcol.iter().step_by(plane.max(1)).zip(wcol).take(o) {
                                t += dv * wv;
                            }
                            *d += t;
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
    use crate::optim::Optimizer;
    use crate::testutil::*;
    use crate::{ParamEntry, ParamKind, Pool2dConfig};
    use std::vec;
    use std::vec::Vec;

    /// (batch, image, filters, config): valid, stride 2 with padding on a non-square image,
    /// 1×1, "same" 5×5, a stride that leaves the last rows unread, a non-square kernel.
    /// The last four take the stride-1 3- and 5-wide row kernels: "same" 3×3 over two channels
    /// (the anchor CNN's layer), padding wider than the image's margin, a 5×3 kernel, 5×5 valid.
    const CASES: [(usize, ImageShape, usize, Conv2dConfig); 10] = [
        (2, ImageShape::new(1, 6, 6), 3, Conv2dConfig::valid(3)),
        (2, ImageShape::new(2, 5, 7), 2, Conv2dConfig::new(3, 3, 2, 1)),
        (1, ImageShape::new(3, 4, 4), 4, Conv2dConfig::valid(1)),
        (2, ImageShape::new(1, 8, 8), 2, Conv2dConfig::new(5, 5, 1, 2)),
        (1, ImageShape::new(2, 6, 5), 2, Conv2dConfig::new(3, 3, 2, 0)),
        (3, ImageShape::new(2, 5, 6), 3, Conv2dConfig::new(2, 3, 1, 1)),
        (2, ImageShape::new(2, 6, 7), 3, Conv2dConfig::new(3, 3, 1, 1)),
        (1, ImageShape::new(1, 3, 4), 2, Conv2dConfig::new(3, 3, 1, 2)),
        (2, ImageShape::new(2, 7, 6), 2, Conv2dConfig::new(5, 3, 1, 1)),
        (1, ImageShape::new(1, 7, 9), 2, Conv2dConfig::valid(5)),
    ];

    /// Allocates x (as a parameter, so its gradient is checked too), W and b with random values.
    fn setup(params: &mut Params, case: (usize, ImageShape, usize, Conv2dConfig), seed: u64) -> [ParamId; 3] {
        let (batch, image, o, config) = case;
        let x = params.alloc(Shape::new(batch, image.checked_len().unwrap()), ParamKind::Weight).unwrap();
        let w = params.alloc(config.weight_shape(image.channels, o).unwrap(), ParamKind::Weight).unwrap();
        let b = params.alloc(Shape::row(o), ParamKind::Bias).unwrap();
        for (i, id) in [x, w, b].into_iter().enumerate() {
            let len = params.entry(id).unwrap().shape.len();
            params.value_mut(id).unwrap().copy_from_slice(&random_values(len, 0.0, seed + i as u64));
        }
        [x, w, b]
    }

    /// The definition, one output at a time: each sums its taps in (c, p, q) order from 0.0.
    fn forward_reference(
        g: &Geometry,
        batch: usize,
        o: usize,
        x: &[f32],
        w: &[f32],
        b: &[f32],
        y: &mut [f32],
    ) {
        let (img, k, plane) = (g.c * g.h * g.w, g.c * g.kh * g.kw, g.oh * g.ow);
        for n in 0..batch {
            let xs = x.get(n * img..(n + 1) * img).unwrap_or_default();
            for f in 0..o {
                let wf = w.get(f * k..(f + 1) * k).unwrap_or_default();
                let bias = b.get(f).copied().unwrap_or(0.0);
                let ys = y.get_mut((n * o + f) * plane..(n * o + f + 1) * plane).unwrap_or_default();
                for (i, yrow) in ys.chunks_exact_mut(g.ow.max(1)).enumerate() {
                    let ph = g.taps_h(i);
                    for (j, yv) in yrow.iter_mut().enumerate() {
                        let pw = g.taps_w(j);
                        let mut acc = 0.0f32;
                        for c in 0..g.c {
                            for p in ph.clone() {
                                // Taps inside the image only: `p`, `pw.start` are at least the padding.
                                let wt = (c * g.kh + p) * g.kw + pw.start;
                                let xt = (c * g.h + i * g.stride + p - g.pad) * g.w + j * g.stride + pw.start
                                    - g.pad;
                                let wt = wf.get(wt..wt + pw.len()).unwrap_or_default();
                                let xt = xs.get(xt..xt + pw.len()).unwrap_or_default();
                                for (&a, &bv) in wt.iter().zip(xt) {
                                    acc += a * bv;
                                }
                            }
                        }
                        *yv = acc + bias;
                    }
                }
            }
        }
    }

    /// The filter gradient one weight at a time, all its terms in (n, i, j) order.
    fn filter_grad_reference(
        g: &Geometry,
        batch: usize,
        o: usize,
        f: usize,
        x: &[f32],
        dy: &[f32],
        dwf: &mut [f32],
    ) {
        let (img, plane) = (g.c * g.h * g.w, g.oh * g.ow);
        let mut out = dwf.iter_mut();
        for c in 0..g.c {
            for p in 0..g.kh {
                let rows = g.outs_h(p);
                for q in 0..g.kw {
                    let Some(d) = out.next() else { return };
                    let cols = g.outs_w(q);
                    if cols.is_empty() {
                        continue;
                    }
                    let mut acc = *d;
                    for n in 0..batch {
                        let xs = x.get(n * img..(n + 1) * img).unwrap_or_default();
                        let dys = dy.get((n * o + f) * plane..(n * o + f + 1) * plane).unwrap_or_default();
                        for i in rows.clone() {
                            let drow =
                                dys.get(i * g.ow + cols.start..i * g.ow + cols.end).unwrap_or_default();
                            // Outputs whose tap (p, q) is inside the image only: no underflow.
                            let x0 = (c * g.h + i * g.stride + p - g.pad) * g.w + cols.start * g.stride + q
                                - g.pad;
                            let xrow = xs.get(x0..).unwrap_or_default();
                            if g.stride == 1 {
                                for (&dv, &xv) in drow.iter().zip(xrow) {
                                    acc += dv * xv;
                                }
                            } else {
                                for (&dv, &xv) in drow.iter().zip(xrow.iter().step_by(g.stride.max(1))) {
                                    acc += dv * xv;
                                }
                            }
                        }
                    }
                    *d = acc;
                }
            }
        }
    }

    #[test]
    fn filter_gradient_gives_the_bits_of_the_definition() {
        for (n, (batch, image, o, config)) in CASES.into_iter().enumerate() {
            let g = config.geometry(image).unwrap();
            let x = random_values(batch * image.checked_len().unwrap(), 0.0, 90 + n as u64);
            let dy = random_values(batch * config.output(image, o).unwrap().checked_len().unwrap(), 0.0, 95);
            // As behind a ReLU and a max pool: most of `dy` zero, some of it −0.0.
            let mut sparse = dy.clone();
            for (i, d) in sparse.iter_mut().enumerate() {
                if i % 4 != 1 {
                    *d = if i % 3 == 0 { -0.0 } else { 0.0 };
                }
            }
            // An infinite input: its zero-`dy` terms are NaN, so nothing may be skipped.
            let mut inf = x.clone();
            inf[x.len() / 2] = f32::INFINITY;
            let k = config.weight_shape(image.channels, o).unwrap().cols;
            for f in 0..o {
                let random = random_values(k, 0.0, 99 + f as u64);
                let mut negzero = vec![0.0; k];
                negzero[k / 2] = -0.0;
                for (xs, dys, start) in [
                    (&x, &dy, &random),
                    (&x, &sparse, &random),
                    (&x, &sparse, &vec![0.0; k]),
                    (&x, &sparse, &negzero),
                    (&inf, &sparse, &vec![0.0; k]),
                ] {
                    let (mut fast, mut slow) = (start.clone(), start.clone());
                    let finite = xs.iter().all(|v| v.is_finite());
                    filter_grad(&g, batch, o, f, xs, dys, &mut fast, finite);
                    filter_grad_reference(&g, batch, o, f, xs, dys, &mut slow);
                    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&fast), bits(&slow), "case {n} filter {f}");
                }
            }
        }
    }

    #[test]
    fn row_loops_give_the_bits_of_the_definition() {
        for (n, (batch, image, o, config)) in CASES.into_iter().enumerate() {
            let g = config.geometry(image).unwrap();
            let len = |s: Shape| s.len();
            let x = random_values(batch * image.checked_len().unwrap(), 0.0, 60 + n as u64);
            let w = random_values(len(config.weight_shape(image.channels, o).unwrap()), 0.0, 70 + n as u64);
            let b = random_values(o, 0.0, 80 + n as u64);
            let out = batch * config.output(image, o).unwrap().checked_len().unwrap();
            let (mut fast, mut slow) = (vec![f32::NAN; out], vec![f32::NAN; out]);
            forward(&g, batch, o, &x, &w, &b, &mut fast);
            forward_reference(&g, batch, o, &x, &w, &b, &mut slow);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&fast), bits(&slow), "case {n}");
        }
    }

    #[test]
    fn gradcheck_over_layouts() {
        for (n, case) in CASES.into_iter().enumerate() {
            let mut s = Storage::new();
            let (mut tape, mut params) = s.split();
            let [x, w, b] = setup(&mut params, case, 20 + 3 * n as u64);
            let (_, image, _, conv) = case;
            // The loss is linear in each single input, weight and bias element, so a central
            // difference is exact at any step: a wide one keeps the f32 loss's rounding small.
            let cfg = crate::gradcheck::GradcheckConfig { step: 0.25, ..config() };
            let r = gradcheck(&mut tape, &mut params, cfg, |t, p| {
                let xv = t.param(p, x)?;
                let y = t.conv2d(xv, p, w, b, image, conv)?;
                weighted_loss(t, y)
            })
            .unwrap();
            assert_report("conv2d", r);
        }
    }

    /// The output against a plain six-deep loop over a zero-padded copy of the input.
    #[test]
    fn value_is_the_padded_cross_correlation() {
        for (n, case) in CASES.into_iter().enumerate() {
            let (batch, image, o, config) = case;
            let mut s = Storage::new();
            let (mut tape, mut params) = s.split();
            let [x, w, b] = setup(&mut params, case, 40 + n as u64);
            let xv = tape.param(&params, x).unwrap();
            let y = tape.conv2d(xv, &params, w, b, image, config).unwrap();
            let out = config.output(image, o).unwrap();
            let (c, h, wd, p) = (image.channels, image.height, image.width, config.padding);
            let (xs, ws, bs) = (params.value(x).unwrap(), params.value(w).unwrap(), params.value(b).unwrap());
            let mut expected = Vec::new();
            for nn in 0..batch {
                for (f, &bias) in bs.iter().enumerate().take(o) {
                    for i in 0..out.height {
                        for j in 0..out.width {
                            let mut acc = 0.0f64;
                            for cc in 0..c {
                                for pp in 0..config.kernel_h {
                                    for qq in 0..config.kernel_w {
                                        let (r, col) = (i * config.stride + pp, j * config.stride + qq);
                                        if r < p || col < p || r - p >= h || col - p >= wd {
                                            continue;
                                        }
                                        let xi = nn * c * h * wd + (cc * h + r - p) * wd + col - p;
                                        let wi = f * c * config.kernel_h * config.kernel_w
                                            + (cc * config.kernel_h + pp) * config.kernel_w
                                            + qq;
                                        acc += f64::from(ws[wi]) * f64::from(xs[xi]);
                                    }
                                }
                            }
                            expected.push(acc + f64::from(bias));
                        }
                    }
                }
            }
            let got = tape.value(y).unwrap();
            assert_eq!(got.len(), expected.len());
            for (g, e) in got.iter().zip(&expected) {
                assert!((f64::from(*g) - e).abs() < 1e-4, "case {n}: {g} vs {e}");
            }
        }
    }

    #[test]
    fn refusals() {
        let mut s = Storage::new();
        let (mut tape, mut params) = s.split();
        let image = ImageShape::new(2, 4, 4);
        let w = params.alloc(Shape::new(3, 18), ParamKind::Weight).unwrap();
        let b = params.alloc(Shape::row(3), ParamKind::Bias).unwrap();
        let b2 = params.alloc(Shape::row(2), ParamKind::Bias).unwrap();
        let x = tape.input(&[0.0; 64], Shape::new(2, 32)).unwrap();
        let c3 = Conv2dConfig::valid(3);
        let shape_err = |r: Result<Var>| match r {
            Err(Error::Shape { op, .. }) => op,
            other => panic!("{other:?}"),
        };
        assert_eq!(shape_err(tape.conv2d(x, &params, w, b, ImageShape::new(2, 4, 3), c3)), "conv2d input");
        assert_eq!(shape_err(tape.conv2d(x, &params, w, b, image, Conv2dConfig::valid(2))), "conv2d weight");
        assert_eq!(shape_err(tape.conv2d(x, &params, w, b2, image, c3)), "conv2d bias");
        let wide = params.alloc(Shape::new(3, 2 * 5 * 5), ParamKind::Weight).unwrap();
        assert_eq!(
            shape_err(tape.conv2d(x, &params, wide, b, image, Conv2dConfig::valid(5))),
            "conv2d window"
        );
        assert!(tape.conv2d(x, &params, wide, b, image, Conv2dConfig::new(5, 5, 1, 1)).is_ok());
        assert!(matches!(
            tape.conv2d(x, &params, w, b, image, Conv2dConfig::new(3, 3, 0, 0)),
            Err(Error::InvalidArgument { what: "conv2d stride", .. })
        ));
        let huge = ImageShape::new(usize::MAX / 2, 3, 3);
        assert!(tape.conv2d(x, &params, w, b, huge, c3).is_err());
        assert!(tape_floats(usize::MAX, image, 3, c3, true).is_err());
    }

    /// The planner's count is exactly what the op takes: with that many floats free it records,
    /// with one less it is refused as `Capacity`; with and without gradients.
    #[test]
    fn planner_equals_usage() {
        for (batch, image, o, config) in CASES {
            for grads in [true, false] {
                let need = tape_floats(batch, image, o, config, grads).unwrap();
                let in_len = batch * image.checked_len().unwrap();
                for spare in [0usize, 1] {
                    let mut pv = vec![0.0; 512];
                    let mut pg = vec![0.0; 512];
                    let mut table = [ParamEntry::EMPTY; 2];
                    let mut params = Params::new(&mut pv, &mut pg, &mut table);
                    let w = params
                        .alloc(config.weight_shape(image.channels, o).unwrap(), ParamKind::Weight)
                        .unwrap();
                    let b = params.alloc(Shape::row(o), ParamKind::Bias).unwrap();
                    let mut floats = vec![0.0; in_len + need + spare - 1];
                    let mut nodes = vec![Node::EMPTY; 2];
                    let mut tape = Tape::new(&mut floats, &mut nodes);
                    tape.set_grad_enabled(grads);
                    let x = tape.input(&vec![0.5; in_len], Shape::new(batch, in_len / batch)).unwrap();
                    let r = tape.conv2d(x, &params, w, b, image, config);
                    if spare == 1 {
                        r.unwrap();
                        assert_eq!(tape.floats_used(), in_len + need);
                    } else {
                        assert!(
                            matches!(r, Err(Error::Capacity { region: Region::TapeFloats, .. })),
                            "{r:?}"
                        );
                    }
                }
            }
        }
    }

    /// x → conv (pad 1) → tanh → max pool → conv (stride 2) → relu → avg pool → affine → mse:
    /// every image op with a gradient to pass on.
    fn cnn(tape: &mut Tape, params: &Params, ids: &[ParamId; 6], batch: usize, seed: u64) -> Result<Var> {
        let x = tape.input(&random_values(batch * 2 * 8 * 8, 0.0, seed), Shape::new(batch, 2 * 8 * 8))?;
        let h =
            tape.conv2d(x, params, ids[0], ids[1], ImageShape::new(2, 8, 8), Conv2dConfig::new(3, 3, 1, 1))?;
        let h = tape.tanh(h)?;
        let h = tape.max_pool2d(h, ImageShape::new(3, 8, 8), Pool2dConfig::square(2))?;
        let h =
            tape.conv2d(h, params, ids[2], ids[3], ImageShape::new(3, 4, 4), Conv2dConfig::new(2, 2, 2, 0))?;
        let h = tape.relu(h)?;
        let h = tape.avg_pool2d(h, ImageShape::new(4, 2, 2), Pool2dConfig::new(2, 1, 1))?;
        let y = tape.affine(h, params, ids[4], ids[5])?;
        let t = tape.input(&random_values(batch * 3, 0.0, seed + 1), Shape::new(batch, 3))?;
        tape.mse(y, t)
    }

    fn cnn_params(params: &mut Params) -> [ParamId; 6] {
        let shapes = [
            (Shape::new(3, 18), ParamKind::Weight),
            (Shape::row(3), ParamKind::Bias),
            (Shape::new(4, 12), ParamKind::Weight),
            (Shape::row(4), ParamKind::Bias),
            (Shape::new(8, 3), ParamKind::Weight),
            (Shape::row(3), ParamKind::Bias),
        ];
        let ids = shapes.map(|(s, k)| params.alloc(s, k).unwrap());
        let n = params.len();
        params.values_mut().copy_from_slice(&random_values(n, 0.0, 5));
        for v in params.values_mut() {
            *v *= 0.5;
        }
        ids
    }

    fn train(mode: u8, opt: Optimizer, steps: usize) -> Vec<u32> {
        let (mut values, mut grads, mut table) = (vec![0.0; 160], vec![0.0; 160], [ParamEntry::EMPTY; 6]);
        let mut scratch = [0.0f32; 18];
        let mut params = if mode == 2 {
            Params::fused(&mut values, &mut scratch, &mut table)
        } else {
            Params::new(&mut values, &mut grads, &mut table)
        };
        let ids = cnn_params(&mut params);
        let mut state = vec![0.0; opt.state_len(params.len())];
        let (mut floats, mut nodes) = (vec![0.0; 4096], vec![Node::EMPTY; 16]);
        let mut tape = Tape::new(&mut floats, &mut nodes);
        for s in 0..steps {
            let loss = cnn(&mut tape, &params, &ids, 3, 100 + s as u64).unwrap();
            match mode {
                0 => {
                    params.zero_grad();
                    tape.backward(loss, &mut params).unwrap();
                    opt.step(&mut params, &mut state, 0.1).unwrap();
                }
                1 => {
                    params.grads_mut().fill(f32::NAN);
                    tape.backward_overwrite(loss, &mut params).unwrap();
                    opt.step(&mut params, &mut state, 0.1).unwrap();
                }
                _ => tape.backward_fused(loss, &mut params, &opt, &mut state, 0.1).unwrap(),
            }
            tape.reset();
        }
        params.values().iter().map(|v| v.to_bits()).collect()
    }

    #[test]
    fn fused_and_overwrite_equal_backward_bit_for_bit() {
        for opt in [Optimizer::sgd(), Optimizer::adam(), Optimizer::momentum()] {
            let reference = train(0, opt, 4);
            assert_eq!(train(1, opt, 4), reference, "{opt:?} overwrite");
            assert_eq!(train(2, opt, 4), reference, "{opt:?} fused");
        }
    }

    #[test]
    fn gradcheck_whole_cnn() {
        let mut s = Storage::new();
        let (mut tape, mut params) = s.split();
        let ids = cnn_params(&mut params);
        // A smaller step than the per-op checks, as a ReLU and the max-pool windows have kinks
        // that a step of 1e-2 on a weight can cross; a higher floor, as the f32 loss's rounding
        // then shows in the differences (about 1e-7·L/h ≈ 3e-4 absolute).
        let cfg = crate::gradcheck::GradcheckConfig { step: 1e-3, floor: 5e-2 };
        let r = gradcheck(&mut tape, &mut params, cfg, |t, p| cnn(t, p, &ids, 2, 7)).unwrap();
        assert_report("cnn", r);
    }

    #[test]
    fn fused_refuses_a_shared_weight() {
        let (mut values, mut table) = (vec![0.0; 160], [ParamEntry::EMPTY; 6]);
        let mut scratch = [0.0f32; 18];
        let mut params = Params::fused(&mut values, &mut scratch, &mut table);
        let ids = cnn_params(&mut params);
        let (mut floats, mut nodes) = (vec![0.0; 4096], vec![Node::EMPTY; 16]);
        let mut tape = Tape::new(&mut floats, &mut nodes);
        let sgd = Optimizer::sgd();
        let x = tape.input(&[0.5; 128], Shape::new(1, 128)).unwrap();
        let img = ImageShape::new(2, 8, 8);
        let h = tape.conv2d(x, &params, ids[0], ids[1], img, Conv2dConfig::new(3, 3, 1, 1)).unwrap();
        let h2 = tape.conv2d(x, &params, ids[0], ids[1], img, Conv2dConfig::new(3, 3, 1, 1)).unwrap();
        let h = tape.add(h, h2).unwrap();
        let loss = tape.sum(h).unwrap();
        let r = tape.backward_fused(loss, &mut params, &sgd, &mut [], 0.1);
        assert!(matches!(r, Err(Error::Unsupported { .. })), "{r:?}");
    }

    /// Backward against parameters other than the recorded ones is refused before anything is
    /// touched, as for affine.
    #[test]
    fn backward_checks_the_parameter_shapes() {
        let mut s = Storage::new();
        let (mut tape, mut params) = s.split();
        let [x, w, b] = setup(&mut params, CASES[1], 3);
        let xv = tape.param(&params, x).unwrap();
        let y = tape.conv2d(xv, &params, w, b, CASES[1].1, CASES[1].3).unwrap();
        let loss = tape.sum(y).unwrap();
        let (mut pv, mut pg, mut table) = (vec![0.0; 512], vec![0.0; 512], [ParamEntry::EMPTY; 3]);
        let mut other = Params::new(&mut pv, &mut pg, &mut table);
        other.alloc(Shape::new(2, 70), ParamKind::Weight).unwrap();
        other.alloc(Shape::new(2, 17), ParamKind::Weight).unwrap();
        other.alloc(Shape::row(2), ParamKind::Bias).unwrap();
        let r = tape.backward(loss, &mut other);
        assert!(matches!(r, Err(Error::Shape { op: "backward params", .. })), "{r:?}");
    }
}
