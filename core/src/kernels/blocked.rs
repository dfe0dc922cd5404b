//! The blocked driver of the matrix kernels: register tiles over a packed panel, reduction in
//! blocks of [`KC`] steps, canonical order per output element (see the parent module's doc).

use super::{KC, Out, View};

/// Rows per register tile of the blocked kernels.
pub(crate) const MR: usize = 4;

/// The inner loop of a register tile: `acc[r][j] += a(r, p)·panel[p][j]` for `p = 0, 1, …`.
/// `a` comes either as `MR` row slices (`a(r, p) = rows[r][p]`) or as a slice whose step `p`
/// starts at `p·stride` and holds `a(0..MR, p)` contiguously (`aᵀ·d`).
pub(crate) trait Micro<const NR: usize> {
    /// Rows form.
    fn rows(acc: &mut [[f32; NR]; MR], rows: [&[f32]; MR], panel: &[[f32; NR]]);
    /// Strided-columns form.
    fn cols(acc: &mut [[f32; NR]; MR], a: &[f32], stride: usize, panel: &[[f32; NR]]);
}

/// Multiply, round, add, round — the canonical step, written so LLVM vectorises across `j`.
pub(crate) struct Exact;

#[cfg_attr(not(debug_assertions), inline(always))]
fn mac_row<const NR: usize>(acc: &mut [f32; NR], a: f32, b: &[f32; NR]) {
    for (o, &bj) in acc.iter_mut().zip(b) {
        *o += a * bj;
    }
}

impl<const NR: usize> Micro<NR> for Exact {
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn rows(acc: &mut [[f32; NR]; MR], rows: [&[f32]; MR], panel: &[[f32; NR]]) {
        let [r0, r1, r2, r3] = rows;
        // A local copy indexed by constants only (so it lives in registers), and zipped
        // iterators (no bounds check, so no early exit that would force it back to memory).
        let mut t = *acc;
        for ((((bv, &x0), &x1), &x2), &x3) in panel.iter().zip(r0).zip(r1).zip(r2).zip(r3) {
            mac_row(&mut t[0], x0, bv);
            mac_row(&mut t[1], x1, bv);
            mac_row(&mut t[2], x2, bv);
            mac_row(&mut t[3], x3, bv);
        }
        *acc = t;
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    fn cols(acc: &mut [[f32; NR]; MR], a: &[f32], stride: usize, panel: &[[f32; NR]]) {
        let mut t = *acc;
        for (bv, chunk) in panel.iter().zip(a.chunks(stride)) {
            let Some(&[x0, x1, x2, x3]) = chunk.first_chunk::<MR>() else { break };
            mac_row(&mut t[0], x0, bv);
            mac_row(&mut t[1], x1, bv);
            mac_row(&mut t[2], x2, bv);
            mac_row(&mut t[3], x3, bv);
        }
        *acc = t;
    }
}

/// The blocked driver (see the module doc). `MR × NR` is the register tile; `K` the inner loop.
/// Preconditions (checked by the public kernels): every index `(i, p)` with `i < m`, `p < k` is
/// inside `a`, every `(p, j)` inside `b`, and `c` holds `m·n` elements.
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn blocked<const NR: usize, K: Micro<NR>>(m: usize, n: usize, k: usize, a: View, b: View, c: Out) {
    // Panel buffers are sized to the problem: zeroing a big one (safe Rust must initialise it)
    // would dominate a small product.
    if k <= 32 {
        blocked_kc::<NR, K, 32, 1>(m, n, k, a, b, c)
    } else if a.cs == 1 && k <= 128 {
        blocked_kc::<NR, K, 128, 1>(m, n, k, a, b, c)
    } else if a.cs == 1 {
        blocked_kc::<NR, K, KC, 1>(m, n, k, a, b, c)
    } else if n <= 4 * NR {
        // `a` read down its columns (a cache line per step): sweep all column panels per row
        // tile so each line is fetched once, not once per panel.
        blocked_kc::<NR, K, { KC / 2 }, 4>(m, n, k, a, b, c)
    } else {
        blocked_kc::<NR, K, { KC / 2 }, 8>(m, n, k, a, b, c)
    }
}

/// Column blocks of `NP` panels of `NR` columns; per block, reduction blocks of `KCB` steps;
/// per reduction block, all its panels packed once, then every row tile against every panel.
#[cfg_attr(not(debug_assertions), inline(always))]
fn blocked_kc<const NR: usize, K: Micro<NR>, const KCB: usize, const NP: usize>(
    m: usize,
    n: usize,
    k: usize,
    a: View,
    b: View,
    mut c: Out,
) {
    let mut panels = [[[0.0f32; NR]; KCB]; NP];
    let mut jc = 0;
    while jc < n {
        let nc = (NP * NR).min(n - jc);
        let np = nc.div_ceil(NR);
        let mut p0 = 0;
        while p0 < k {
            let kc = KCB.min(k - p0);
            for (q, panel) in panels.iter_mut().enumerate().take(np) {
                let j0 = jc + q * NR;
                pack_b(&mut panel[..kc], b, p0, j0, NR.min(n - j0));
            }
            let mut i0 = 0;
            while i0 < m {
                let mr = MR.min(m - i0);
                for (q, panel) in panels.iter().enumerate().take(np) {
                    let j0 = jc + q * NR;
                    tile::<NR, K>(a, &mut c, (i0, mr), (j0, NR.min(n - j0)), p0, &panel[..kc]);
                }
                i0 += MR;
            }
            p0 += kc;
        }
        jc += nc;
    }
}

/// One register tile: rows `i0..i0+mr`, columns `j0..j0+nr` of `c`, reduction steps
/// `p0..p0+panel.len()` — loaded, advanced in order, stored.
#[cfg_attr(not(debug_assertions), inline(always))]
fn tile<const NR: usize, K: Micro<NR>>(
    a: View,
    c: &mut Out,
    (i0, mr): (usize, usize),
    (j0, nr): (usize, usize),
    p0: usize,
    panel: &[[f32; NR]],
) {
    let kc = panel.len();
    let mut acc = [[0.0f32; NR]; MR];
    for (r, accr) in acc.iter_mut().enumerate().take(mr) {
        let at = (i0 + r) * c.rs + j0 * c.cs;
        if c.cs == 1 {
            copy_short::<NR>(&mut accr[..nr], &c.data[at..at + nr]);
        } else {
            for (jj, x) in accr.iter_mut().enumerate().take(nr) {
                *x = c.data[at + jj * c.cs];
            }
        }
    }
    if a.cs == 1 {
        // Rows of `a` are contiguous. Edge tiles repeat row i0; those lanes are computed but
        // never stored.
        let rows: [&[f32]; MR] = core::array::from_fn(|r| {
            let at = (i0 + if r < mr { r } else { 0 }) * a.rs + p0;
            &a.data[at..at + kc]
        });
        K::rows(&mut acc, rows, panel);
    } else if mr == MR && a.rs == 1 {
        // Columns of `a` are contiguous (`aᵀ·d`): MR consecutive values per step.
        let at = p0 * a.cs + i0;
        let end = (p0 + kc - 1) * a.cs + i0 + MR;
        K::cols(&mut acc, &a.data[at..end], a.cs, panel);
    } else {
        // Edge tile of a strided `a`: gather the rows it needs, in order.
        let mut col = [0.0f32; MR];
        for (p, bv) in panel.iter().enumerate() {
            for (r, x) in col.iter_mut().enumerate().take(mr) {
                *x = a.data[(i0 + r) * a.rs + (p0 + p) * a.cs];
            }
            for (accr, &x) in acc.iter_mut().zip(&col) {
                mac_row(accr, x, bv);
            }
        }
    }
    for (r, accr) in acc.iter().enumerate().take(mr) {
        let at = (i0 + r) * c.rs + j0 * c.cs;
        if c.cs == 1 {
            copy_short::<NR>(&mut c.data[at..at + nr], &accr[..nr]);
        } else {
            for (jj, &x) in accr.iter().enumerate().take(nr) {
                c.data[at + jj * c.cs] = x;
            }
        }
    }
}

/// Copies `b(p0 + p, j0 + j)` for `j < nr` into `panel[p][j]` (the rest keeps stale values that
/// only feed lanes that are never stored).
#[cfg_attr(not(debug_assertions), inline(always))]
fn pack_b<const NR: usize>(panel: &mut [[f32; NR]], b: View, p0: usize, j0: usize, nr: usize) {
    if b.cs == 1 {
        for (p, row) in panel.iter_mut().enumerate() {
            let at = (p0 + p) * b.rs + j0;
            copy_short::<NR>(&mut row[..nr], &b.data[at..at + nr]);
        }
    } else {
        let kc = panel.len();
        for j in 0..nr {
            let at = (j0 + j) * b.cs + p0 * b.rs;
            if b.rs == 1 {
                for (row, &v) in panel.iter_mut().zip(&b.data[at..at + kc]) {
                    row[j] = v;
                }
            } else {
                for (p, row) in panel.iter_mut().enumerate() {
                    row[j] = b.data[at + p * b.rs];
                }
            }
        }
    }
}

/// `dst[..n].copy_from_slice(&src[..n])` for `n ≤ N` floats without a `memcpy` call (which a
/// run-time length would become, and which costs more than the copy at these sizes): a full row
/// is one fixed-size move, a partial one a short loop LLVM cannot turn back into `memcpy`.
#[cfg_attr(not(debug_assertions), inline(always))]
fn copy_short<const N: usize>(dst: &mut [f32], src: &[f32]) {
    let n = dst.len().min(src.len());
    if let (Some(d), Some(s)) = (dst.first_chunk_mut::<N>(), src.first_chunk::<N>()) {
        *d = *s;
        return;
    }
    for j in 0..N {
        if j < n {
            dst[j] = src[j];
        }
    }
}
