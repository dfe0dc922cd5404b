//! The convolution's products on hosts (x86-64, x86, AArch64): im2col panels through the
//! selected matrix kernels, the same bits as [`conv2d`](super::conv2d)'s loops.
//!
//! For one image, the taps of a block of output positions are copied into a panel on the stack,
//! `col[t][q] = x(tap t, position pos0 + q)` (`t` in (c, p, q) order), with one more row of 1.0.
//! Then
//! * forward: `y[:, block] = [W | b]·col`, from 0.0: each output adds its taps in (c, p, q)
//!   order and then `b·1.0 = b`, exactly the loops' `(Σ taps) + b`;
//! * weight and bias gradients: `[dW | db] += dy[:, block]·colᵀ`, blocks and images in order:
//!   each `dW[o, t]` adds its terms in (n, i, j) order, each `db[o]` adds `dy·1.0 = dy` in the
//!   same order, onto the current gradient (copied into a stack matrix and back, which moves no
//!   bits).
//!
//! Products by 1.0 are exact and the kernels add every output's terms in increasing order
//! ([`crate::kernels`]), so these are the bits of the loops on every kernel family but the FMA
//! ones. Only convolutions without padding take this path: a tap on the padding is skipped by
//! the loops, and a 0 in the panel would turn an infinite weight into a NaN. The panels are
//! fixed-size stack arrays, like the blocked kernels' own ([`PANEL`] and [`PARAMS`] floats);
//! larger filters (more than `PANEL − 1` taps or `PARAMS` weights) take the loops, so no tape
//! or parameter memory beyond the planner's count is used.

use super::window::Geometry;
use crate::kernels::{Out, View, gemm_views};
use crate::parallel::{Par, rows_per_chunk};
use core::ops::Range;

/// Floats of the im2col panel (32 KiB): the taps of `PANEL / (taps + 1)` positions.
pub(crate) const PANEL: usize = 8 * 1024;
/// Floats of the `[W | b]` / `[dW | db]` matrix (16 KiB): `out·(taps + 1)` at most.
pub(crate) const PARAMS: usize = 4 * 1024;

/// The sizes of one convolution's products, if this path takes it: taps per output `k`,
/// positions per image `p`, positions per panel block `nb`.
fn sizes(g: &Geometry, o: usize) -> Option<(usize, usize, usize)> {
    let k = g.c.checked_mul(g.kh)?.checked_mul(g.kw)?;
    let p = g.oh.checked_mul(g.ow)?;
    let k1 = k.checked_add(1)?;
    if g.pad != 0 || k == 0 || p == 0 || o == 0 || k1 > PANEL || o.checked_mul(k1)? > PARAMS {
        return None;
    }
    // Whole register tiles (16 columns) per block where the image has more positions.
    let nb = PANEL / k1;
    let nb = if nb >= p {
        p
    } else if nb >= 16 {
        nb / 16 * 16
    } else {
        nb
    };
    Some((k, p, nb))
}

/// Writes `col[t·nb + q]` = the input under tap `t` of position `pos0 + q`, for `q < nb`, and
/// `col[k·nb + q] = 1.0`.
fn fill(g: &Geometry, xs: &[f32], pos0: usize, nb: usize, col: &mut [f32]) {
    let mut rows = col.chunks_exact_mut(nb.max(1));
    for c in 0..g.c {
        for p in 0..g.kh {
            for q in 0..g.kw {
                let Some(dst) = rows.next() else { return };
                let (mut i, mut j, mut done) = (pos0 / g.ow, pos0 % g.ow, 0);
                while done < nb {
                    let run = (g.ow - j).min(nb - done);
                    let at = (c * g.h + i * g.stride + p) * g.w + j * g.stride + q;
                    let d = dst.get_mut(done..done + run).unwrap_or_default();
                    let src = xs.get(at..).unwrap_or_default();
                    if g.stride == 1 {
                        for (d, &s) in d.iter_mut().zip(src) {
                            *d = s;
                        }
                    } else {
                        for (d, &s) in d.iter_mut().zip(src.iter().step_by(g.stride)) {
                            *d = s;
                        }
                    }
                    done += run;
                    i += 1;
                    j = 0;
                }
            }
        }
    }
    if let Some(ones) = rows.next() {
        ones.fill(1.0);
    }
}

/// Forward of `batch` images (`x`: `batch × C·H·W`, `y`: `batch × o·OH·OW`, `w`: `o × k`,
/// `b`: `o`); false, with nothing written, if this path does not take the convolution.
#[inline(never)]
pub(super) fn forward(
    g: &Geometry,
    batch: usize,
    o: usize,
    x: &[f32],
    w: &[f32],
    b: &[f32],
    y: &mut [f32],
) -> bool {
    let Some((k, p, nb)) = sizes(g, o) else { return false };
    let (img, out, k1) = (g.c * g.h * g.w, o * p, k + 1);
    let fits = |len: usize, per: usize| batch.checked_mul(per).is_some_and(|n| n <= len);
    if !fits(x.len(), img) || !fits(y.len(), out) || w.len() < o * k || b.len() < o {
        return false;
    }
    let mut wb = [0.0f32; PARAMS];
    for ((row, wf), &bias) in wb.chunks_exact_mut(k1).zip(w.chunks_exact(k)).zip(b).take(o) {
        let (wr, br) = row.split_at_mut(k);
        wr.copy_from_slice(wf);
        br[0] = bias;
    }
    let mut col = [0.0f32; PANEL];
    for (xs, yn) in x.chunks_exact(img).zip(y.chunks_exact_mut(out)).take(batch) {
        let mut pos0 = 0;
        while pos0 < p {
            let nbb = nb.min(p - pos0);
            let panel = col.get_mut(..k1 * nbb).unwrap_or_default();
            fill(g, xs, pos0, nbb, panel);
            for row in yn.chunks_exact_mut(p) {
                row.get_mut(pos0..pos0 + nbb).unwrap_or_default().fill(0.0);
            }
            gemm_views(
                o,
                nbb,
                k1,
                View { data: &wb, rs: k1, cs: 1 },
                View { data: panel, rs: nbb, cs: 1 },
                Out { data: yn.get_mut(pos0..).unwrap_or_default(), rs: p, cs: 1 },
            );
            pos0 += nbb;
        }
    }
    true
}

/// `dW += Σ dy·xᵀ` and `db += Σ dy` over `batch` images, the weight's gradient at `grads[wr]`
/// (`o × k`) and the bias's at `grads[br]` (`o`); false, with nothing written, if this path does
/// not take the convolution. The filters are shared among `par`'s workers: each sums all of its
/// filters' terms, in order, so the bits do not depend on the split.
#[allow(clippy::too_many_arguments)]
pub(super) fn weight_grad(
    par: &Par<'_>,
    g: &Geometry,
    batch: usize,
    o: usize,
    x: &[f32],
    dy: &[f32],
    grads: &mut [f32],
    (wr, br): (Range<usize>, Range<usize>),
) -> bool {
    let (dw, db) = if wr.end <= br.start {
        let (lo, hi) = grads.split_at_mut(br.start.min(grads.len()));
        (lo.get_mut(wr), hi.get_mut(..br.len()))
    } else if br.end <= wr.start {
        let (lo, hi) = grads.split_at_mut(wr.start.min(grads.len()));
        (hi.get_mut(..wr.len()), lo.get_mut(br))
    } else {
        (None, None)
    };
    match (dw, db) {
        (Some(dw), Some(db)) => weight_grad_into(par, g, batch, o, x, dy, dw, db),
        _ => false,
    }
}

#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn weight_grad_into(
    par: &Par<'_>,
    g: &Geometry,
    batch: usize,
    o: usize,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    db: &mut [f32],
) -> bool {
    let Some((k, p, nb)) = sizes(g, o) else { return false };
    let (img, out, k1) = (g.c * g.h * g.w, o * p, k + 1);
    let fits = |len: usize, per: usize| batch.checked_mul(per).is_some_and(|n| n <= len);
    if !fits(x.len(), img) || !fits(dy.len(), out) || dw.len() < o * k || db.len() < o {
        return false;
    }
    let mut acc = [0.0f32; PARAMS];
    for ((row, dwf), &d) in acc.chunks_exact_mut(k1).zip(dw.chunks_exact(k)).zip(&*db).take(o) {
        let (wr, br) = row.split_at_mut(k);
        wr.copy_from_slice(dwf);
        br[0] = d;
    }
    let acc_rows = acc.get_mut(..o * k1).unwrap_or_default();
    let work = batch.saturating_mul(p).saturating_mul(k1);
    match rows_per_chunk(par, o, work, 1) {
        None => filters_grad(g, batch, (0, o, o), x, dy, acc_rows, (k1, p, nb)),
        Some(per) => par.for_each_chunk(acc_rows, per * k1, |i, acc| {
            filters_grad(g, batch, (i * per, acc.len() / k1, o), x, dy, acc, (k1, p, nb));
        }),
    }
    for ((row, dwf), d) in acc.chunks_exact(k1).zip(dw.chunks_exact_mut(k)).zip(db.iter_mut()).take(o) {
        let (wr, br) = row.split_at(k);
        dwf.copy_from_slice(wr);
        *d = br[0];
    }
    true
}

/// `[dW | db]` of the `count` filters from `first` on (of `o`), added onto `acc` (`count × k1`),
/// terms in (image, position) order. Sizes checked by the caller.
#[allow(clippy::too_many_arguments)]
fn filters_grad(
    g: &Geometry,
    batch: usize,
    (first, count, o): (usize, usize, usize),
    x: &[f32],
    dy: &[f32],
    acc: &mut [f32],
    (k1, p, nb): (usize, usize, usize),
) {
    let (img, out) = (g.c * g.h * g.w, o * p);
    let mut col = [0.0f32; PANEL];
    for (xs, dys) in x.chunks_exact(img).zip(dy.chunks_exact(out)).take(batch) {
        let dys = dys.get(first * p..).unwrap_or_default();
        let mut pos0 = 0;
        while pos0 < p {
            let nbb = nb.min(p - pos0);
            let panel = col.get_mut(..k1 * nbb).unwrap_or_default();
            fill(g, xs, pos0, nbb, panel);
            gemm_views(
                count,
                k1,
                nbb,
                View { data: dys.get(pos0..).unwrap_or_default(), rs: p, cs: 1 },
                View { data: panel, rs: 1, cs: nbb },
                Out { data: &mut *acc, rs: k1, cs: 1 },
            );
            pos0 += nbb;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::ImageShape;
    use crate::testutil::random_values;
    use crate::{Conv2dConfig, kernels};
    use std::vec;
    use std::vec::Vec;

    /// (batch, image, filters, config): the bench's SimpleConvNet layer (two panel blocks per
    /// image), channels, stride 2, a non-square kernel, 1×1, a single position.
    const CASES: [(usize, ImageShape, usize, Conv2dConfig); 6] = [
        (3, ImageShape::new(1, 28, 28), 30, Conv2dConfig::valid(5)),
        (2, ImageShape::new(3, 9, 7), 5, Conv2dConfig::valid(3)),
        (2, ImageShape::new(2, 9, 9), 17, Conv2dConfig::new(3, 3, 2, 0)),
        (1, ImageShape::new(2, 6, 7), 3, Conv2dConfig::new(2, 4, 1, 0)),
        (2, ImageShape::new(4, 3, 3), 2, Conv2dConfig::valid(1)),
        (2, ImageShape::new(1, 4, 4), 3, Conv2dConfig::valid(4)),
    ];

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// The definition in the canonical order: forward sums the taps in (c, p, q) order from 0.0
    /// and adds the bias; `dW`, `db` add their terms in (n, i, j) order onto their start.
    fn reference(g: &Geometry, batch: usize, o: usize, x: &[f32], w: &[f32], dy: &[f32]) -> [Vec<f32>; 3] {
        let (k, p) = (g.c * g.kh * g.kw, g.oh * g.ow);
        let img = g.c * g.h * g.w;
        let at = |n: usize, c: usize, i: usize, j: usize, pp: usize, q: usize| {
            n * img + (c * g.h + i * g.stride + pp) * g.w + j * g.stride + q
        };
        let b = random_values(o, 0.0, 7);
        let mut y = vec![0.0f32; batch * o * p];
        let mut dw = random_values(o * k, 0.0, 8);
        let mut db = random_values(o, 0.0, 9);
        for n in 0..batch {
            for f in 0..o {
                for i in 0..g.oh {
                    for j in 0..g.ow {
                        let mut acc = 0.0f32;
                        for c in 0..g.c {
                            for pp in 0..g.kh {
                                for q in 0..g.kw {
                                    acc += w[f * k + (c * g.kh + pp) * g.kw + q] * x[at(n, c, i, j, pp, q)];
                                }
                            }
                        }
                        y[(n * o + f) * p + i * g.ow + j] = acc + b[f];
                    }
                }
            }
        }
        for f in 0..o {
            for c in 0..g.c {
                for pp in 0..g.kh {
                    for q in 0..g.kw {
                        let d = &mut dw[f * k + (c * g.kh + pp) * g.kw + q];
                        for n in 0..batch {
                            for i in 0..g.oh {
                                for j in 0..g.ow {
                                    *d += dy[(n * o + f) * p + i * g.ow + j] * x[at(n, c, i, j, pp, q)];
                                }
                            }
                        }
                    }
                }
            }
            for v in dy.chunks_exact(p).skip(f).step_by(o) {
                for &d in v {
                    db[f] += d;
                }
            }
        }
        [y, dw, db]
    }

    fn check_all() {
        for (s, (batch, image, o, config)) in CASES.into_iter().enumerate() {
            let g = config.geometry(image).unwrap();
            let (k, p) = (g.c * g.kh * g.kw, g.oh * g.ow);
            let x = random_values(batch * image.checked_len().unwrap(), 0.0, 10 + s as u64);
            let w = random_values(o * k, 0.0, 20 + s as u64);
            let dy = random_values(batch * o * p, 0.0, 30 + s as u64);
            let [y_ref, dw_ref, db_ref] = reference(&g, batch, o, &x, &w, &dy);
            let mut y = vec![f32::NAN; batch * o * p];
            assert!(forward(&g, batch, o, &x, &w, &random_values(o, 0.0, 7), &mut y), "case {s}");
            assert_eq!(bits(&y), bits(&y_ref), "forward, case {s}, {:?}", kernels::selected());
            // The weight's and the bias's gradients in one buffer, bias first (either order works).
            let mut grads = random_values(o, 0.0, 9);
            grads.extend(random_values(o * k, 0.0, 8));
            assert!(
                weight_grad(&Par::SEQUENTIAL, &g, batch, o, &x, &dy, &mut grads, (o..o + o * k, 0..o)),
                "case {s}"
            );
            assert_eq!(bits(&grads[o..]), bits(&dw_ref), "dW, case {s}, {:?}", kernels::selected());
            assert_eq!(bits(&grads[..o]), bits(&db_ref), "db, case {s}, {:?}", kernels::selected());
        }
    }

    #[test]
    fn products_give_the_bits_of_the_definition() {
        check_all();
    }

    /// Every bit-exact family the CPU runs gives the same bits (selection is global: only
    /// bit-exact families are selected in tests, so other tests are unaffected).
    #[cfg(all(feature = "x86-simd", target_arch = "x86_64"))]
    #[test]
    fn every_exact_family_gives_the_same_bits() {
        for family in [kernels::Kernels::Avx2, kernels::Kernels::Avx512] {
            if kernels::select(family) == family {
                check_all();
            }
        }
        kernels::select(kernels::Kernels::Portable);
    }

    #[test]
    fn declines_what_it_does_not_take() {
        let x = [0.0f32; 64];
        let mut y = [0.0f32; 256];
        // Padding: the loops skip its taps.
        let g = Conv2dConfig::new(3, 3, 1, 1).geometry(ImageShape::new(1, 8, 8)).unwrap();
        assert!(!forward(&g, 1, 1, &x, &[0.0; 9], &[0.0], &mut y));
        let mut grads = [0.0f32; 10];
        assert!(!weight_grad(&Par::SEQUENTIAL, &g, 1, 1, &x, &y, &mut grads, (0..9, 9..10)));
        // More weights than the stack matrix holds.
        let g = Conv2dConfig::valid(8).geometry(ImageShape::new(1, 8, 8)).unwrap();
        let o = PARAMS / 64;
        assert!(!forward(&g, 1, o, &x, &vec![0.0; o * 64], &vec![0.0; o], &mut y));
        // Buffers shorter than their shapes, overlapping gradient ranges.
        let g = Conv2dConfig::valid(3).geometry(ImageShape::new(1, 8, 8)).unwrap();
        assert!(!forward(&g, 2, 1, &x, &[0.0; 9], &[0.0], &mut y));
        assert!(!weight_grad(&Par::SEQUENTIAL, &g, 1, 1, &x, &y, &mut grads, (0..9, 8..9)));
        assert!(!weight_grad(&Par::SEQUENTIAL, &g, 1, 1, &x, &y, &mut grads[..9], (0..9, 9..10)));
    }
}
