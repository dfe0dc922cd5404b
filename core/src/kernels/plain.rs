//! The portable loops, in the canonical summation order (see the parent module): what targets
//! without SIMD registers worth blocking for (Cortex-M) run for every product, and the tiny
//! fully inlined products of the direct path ([`gemm_small`]). Safe Rust; every index goes
//! through `get`, so no loop can panic.

use super::View;

/// The plain loops: for each output row, the reduction runs outermost so the inner loop walks
/// contiguous outputs. The canonical order by construction; what small targets run. Without
/// `panel` (a [`super::Rows::One`] caller) the multi-row panel kernel is not used (same bits).
#[cfg_attr(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64"), allow(dead_code))]
#[cfg_attr(not(debug_assertions), inline(always))]
pub(super) fn plain(m: usize, n: usize, k: usize, a: View, b: View, c: &mut [f32], panel: bool) {
    const TILE: usize = 16; // outputs per register tile
    if k == 1 && b.cs == 1 {
        // One term per output (a batch-1 weight gradient `c += x[p]·dy[j]`): 16 of the `b(0, j)`
        // stay in registers while the rows go by, so each output costs a load, a multiply, an
        // add and a store. Same single addition onto the start value as below.
        let (b0, mut j0) = (b.data.get(..n).unwrap_or_default(), 0);
        for bt in b0.chunks_exact(TILE) {
            let mut br = [0.0f32; TILE];
            br.copy_from_slice(bt);
            for (i, row) in c.chunks_exact_mut(n).take(m).enumerate() {
                let (Some(&ai), Some(o)) = (a.data.get(i * a.rs), row.get_mut(j0..j0 + TILE)) else {
                    break;
                };
                for (o, &bv) in o.iter_mut().zip(&br) {
                    *o += ai * bv;
                }
            }
            j0 += TILE;
        }
        for (i, row) in c.chunks_exact_mut(n).take(m).enumerate() {
            let ai = a.data.get(i * a.rs).copied().unwrap_or_default();
            let (row, b0) = (row.get_mut(j0..).unwrap_or_default(), b0.get(j0..).unwrap_or_default());
            for (o, &bv) in row.iter_mut().zip(b0) {
                *o += ai * bv;
            }
        }
        return;
    }
    // Batches of 4 rows and more (`x·W`, and `xᵀ·dy` whose rows are the inputs): 4×4 tiles,
    // then the last `n mod 4` columns of those rows in row tiles; leftover rows as below. Never
    // at batch 1 (`k` is the batch in `xᵀ·dy`, handled above): a `Rows::One` caller leaves it out.
    let mut done = 0;
    if panel && b.cs == 1 && n >= 4 && m >= 4 {
        done = rows4(c, m, n, k, a, b);
        let j0 = n - n % 4;
        for (i, row) in c.chunks_exact_mut(n).enumerate().take(done) {
            if n - j0 >= 2 {
                tile::<2>(row, j0, a, i * a.rs, b, k);
            }
            if n - j0 == 1 || n - j0 == 3 {
                tile::<1>(row, n - 1, a, i * a.rs, b, k);
            }
        }
    }
    // Rows below `done` were done by the panel kernel; the rest start at row `done` (a split,
    // not `skip`, whose first step links a generic `nth`).
    let rest = c.get_mut(done * n..).unwrap_or_default();
    for (r, row) in rest.chunks_exact_mut(n).take(m - done).enumerate() {
        let i = done + r;
        if b.cs == 1 {
            // Tiles of 16 outputs whose partial sums stay in registers while `p` runs up: the
            // same additions in the same order as a one-output loop, but one load of `a(i,p)` and
            // no load/store of the outputs per step (FPv4-SP has 32 registers). The last
            // `n mod 16` outputs go in tiles of 8, 4, 2 and 1, so a narrow layer (XOR's 3 or 1
            // outputs, MNIST's 10 classes) keeps its sums in registers too.
            let ao = i * a.rs;
            let mut j0 = 0;
            while n - j0 >= TILE {
                tile::<TILE>(row, j0, a, ao, b, k);
                j0 += TILE;
            }
            if n - j0 >= 8 {
                tile::<8>(row, j0, a, ao, b, k);
                j0 += 8;
            }
            if n - j0 >= 4 {
                tile::<4>(row, j0, a, ao, b, k);
                j0 += 4;
            }
            if n - j0 >= 2 {
                tile::<2>(row, j0, a, ao, b, k);
                j0 += 2;
            }
            if n - j0 >= 1 {
                tile::<1>(row, j0, a, ao, b, k);
            }
        } else {
            // `d·bᵀ` (`a.cs == 1`, `b.rs == 1`): both operands are contiguous along the
            // reduction; one dot product each.
            let arow = a.data.get(i * a.rs..i * a.rs + k).unwrap_or_default();
            for (j, o) in row.iter_mut().enumerate() {
                let bcol = b.data.get(j * b.cs..j * b.cs + k).unwrap_or_default();
                let mut s = *o;
                for (&x, &y) in arow.iter().zip(bcol) {
                    s += x * y;
                }
                *o = s;
            }
        }
    }
}

/// Groups of 4 rows of the row-major `c` (`n` columns), columns in tiles of 4 (the last `n mod 4`
/// are left to the caller): `c(i, j) += Σ_p a(i,p)·b(p,j)` for `p = 0, 1, …` in order (`b`
/// row-major), 16 partial sums in registers. The 4 rows of `a` for a block of [`KB4`] steps are
/// first copied into a panel (4 neighbouring floats per step), which every column tile then
/// reads: per step 4 loads of `a` and 4 of `b` feed 16 multiply-adds, where a 1×16 row tile needs
/// 17 loads. What batches of 4 rows and more run on a Cortex-M4F (32 FPU registers). A block
/// ends by storing the sums and the next reloads them: the additions each output sees are
/// unchanged. Returns the number of rows done (a multiple of 4). Out of line, so the panel is
/// on the stack only while it is used.
#[inline(never)]
fn rows4(c: &mut [f32], m: usize, n: usize, k: usize, a: View, b: View) -> usize {
    const R: usize = 4;
    let mut panel = [[0.0f32; R]; KB4];
    let four = |s: &[f32], at: usize| s.get(at..).and_then(|s| s.first_chunk::<R>()).copied();
    let mut i0 = 0;
    while m - i0 >= R {
        let mut p0 = 0;
        while p0 < k {
            let kb = KB4.min(k - p0);
            for (q, x) in panel[..kb].iter_mut().enumerate() {
                let p = p0 + q;
                if a.rs == 1 {
                    // `xᵀ·dy`: a(i0.., p) are neighbours.
                    *x = four(a.data, i0 + p * a.cs).unwrap_or_default();
                } else {
                    for (r, v) in x.iter_mut().enumerate() {
                        *v = a.data.get((i0 + r) * a.rs + p * a.cs).copied().unwrap_or_default();
                    }
                }
            }
            // Whole rows of `b` with `chunks_exact`: every chunk has the same length, so the
            // bounds check of the 4 columns is loop-invariant and leaves the loop.
            let brows = || b.data.get(p0 * b.rs..).unwrap_or_default().chunks_exact(b.rs.max(1));
            let mut j0 = 0;
            while n - j0 >= R {
                let mut acc = [[0.0f32; R]; R];
                for (r, accr) in acc.iter_mut().enumerate() {
                    *accr = four(c, (i0 + r) * n + j0).unwrap_or_default();
                }
                for (x, bc) in panel[..kb].iter().zip(brows()) {
                    let Some(bv) = four(bc, j0) else {
                        break;
                    };
                    mac4x4(&mut acc, x, &bv);
                }
                for (r, accr) in acc.iter().enumerate() {
                    if let Some(o) = c.get_mut((i0 + r) * n + j0..).and_then(|s| s.first_chunk_mut::<R>()) {
                        *o = *accr;
                    }
                }
                j0 += R;
            }
            p0 += kb;
        }
        i0 += R;
    }
    i0
}

/// Reduction steps per panel of [`rows4`] (4 floats each: 1 KiB of stack).
const KB4: usize = 64;

/// One reduction step of a 4×4 tile: `acc[r][j] += x[r]·b[j]`, multiply then add.
#[cfg_attr(not(debug_assertions), inline(always))]
fn mac4x4(acc: &mut [[f32; 4]; 4], x: &[f32; 4], b: &[f32; 4]) {
    for (accr, &xr) in acc.iter_mut().zip(x) {
        for (o, &bj) in accr.iter_mut().zip(b) {
            *o += xr * bj;
        }
    }
}

/// `row[j0 + j] += Σ_p a(i,p)·b(p, j0 + j)` for `j < W`, `p = 0, 1, …, k−1` in order, with the
/// `W` partial sums in registers (`a(i,p)` at `a.data[ao + p·a.cs]`, `b` row-major).
#[cfg_attr(not(debug_assertions), inline(always))]
fn tile<const W: usize>(row: &mut [f32], j0: usize, a: View, ao: usize, b: View, k: usize) {
    let Some(out) = row.get_mut(j0..j0 + W) else {
        return;
    };
    let mut acc = [0.0f32; W];
    acc.copy_from_slice(out);
    let (mut ao, mut bo) = (ao, j0);
    for _ in 0..k {
        // Always in bounds (shapes were checked); `get` keeps the loop free of panics.
        let (Some(&aip), Some(bt)) = (a.data.get(ao), b.data.get(bo..bo + W)) else {
            break;
        };
        for (o, &bv) in acc.iter_mut().zip(bt) {
            *o += aip * bv;
        }
        ao += a.cs;
        bo += b.rs;
    }
    out.copy_from_slice(&acc);
}

/// `c(i, j) = 0.0 + Σ_p a(i,p)·b(p,j)` for `p = 0, 1, …` in order, `c` row-major `m × n` and
/// overwritten: the same bits as accumulating onto a zeroed `c` with the other kernels. For tiny
/// products (the direct path): inlined where the shapes are constants, the loops unroll and the
/// bounds checks fold away. Operands shorter than their shapes leave `c` untouched.
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn gemm_small(m: usize, n: usize, k: usize, a: View, b: View, c: &mut [f32]) {
    if m == 0 || n == 0 {
        return;
    }
    let (Some(ae), Some(be), Some(len)) = (a.extent(m, k), b.extent(k, n), m.checked_mul(n)) else {
        return;
    };
    let (Some(ad), Some(bd), Some(c)) = (a.data.get(..ae), b.data.get(..be), c.get_mut(..len)) else {
        return;
    };
    for (i, row) in c.chunks_exact_mut(n).enumerate() {
        for (j, o) in row.iter_mut().enumerate() {
            let mut s = 0.0f32;
            for p in 0..k {
                // In bounds by the cut above; `get` keeps a non-constant shape free of panics.
                let (x, y) = (ad.get(i * a.rs + p * a.cs), bd.get(p * b.rs + j * b.cs));
                s += x.copied().unwrap_or_default() * y.copied().unwrap_or_default();
            }
            *o = s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Rows;
    use super::super::tests::{SHAPES, bits, reference};
    use super::*;
    use crate::testutil::random_values;
    use std::vec;

    #[test]
    fn plain_single_step_matches_the_definition() {
        // k = 1 (a batch-1 weight gradient): register tiles of 16 columns plus the remainder.
        for (s, &(m, n)) in [(7, 37), (196, 32), (3, 16), (2, 5)].iter().enumerate() {
            let at = random_values(m, 0.0, 1100 + s as u64); // 1×m, used transposed
            let b = random_values(n, 0.0, 1200 + s as u64);
            let mut want = random_values(m * n, 0.0, 1300 + s as u64);
            let mut got = want.clone();
            reference(m, n, 1, &|i, _| at[i], &|_, j| b[j], &mut want);
            plain(m, n, 1, View { data: &at, rs: 1, cs: m }, View { data: &b, rs: n, cs: 1 }, &mut got, true);
            assert_eq!(bits(&got), bits(&want), "{m}x1x{n}");
        }
    }

    #[test]
    fn plain_loops_match_the_definition_bit_for_bit() {
        for (s, &(m, k, n)) in SHAPES.iter().enumerate() {
            let a = random_values(m * k, 0.0, 700 + s as u64);
            let b = random_values(k * n, 0.0, 800 + s as u64);
            let mut want = vec![0.0; m * n];
            reference(m, n, k, &|i, p| a[i * k + p], &|p, j| b[p * n + j], &mut want);
            // Both hints: with `Rows::One` the panel kernel is left out, the bits stay.
            for rows in [Rows::Any, Rows::One] {
                let mut got = vec![0.0; m * n];
                let (av, bv) = (View { data: &a, rs: k, cs: 1 }, View { data: &b, rs: n, cs: 1 });
                plain(m, n, k, av, bv, &mut got, rows == Rows::Any);
                assert_eq!(bits(&got), bits(&want));
            }
            let bt = random_values(n * k, 0.0, 900 + s as u64); // n×k, used transposed
            let mut want = vec![0.5; m * n];
            reference(m, n, k, &|i, p| a[i * k + p], &|p, j| bt[j * k + p], &mut want);
            let mut got = vec![0.5; m * n];
            plain(m, n, k, View { data: &a, rs: k, cs: 1 }, View { data: &bt, rs: 1, cs: k }, &mut got, true);
            assert_eq!(bits(&got), bits(&want));
            // A transposed left operand (the weight gradient `xᵀ·d`) onto a non-zero start: the
            // register tiles of 16 and the remainder columns.
            let at = random_values(k * m, 0.0, 1000 + s as u64); // k×m, used transposed
            let mut want = vec![0.25; m * n];
            reference(m, n, k, &|i, p| at[p * m + i], &|p, j| b[p * n + j], &mut want);
            for rows in [Rows::Any, Rows::One] {
                let mut got = vec![0.25; m * n];
                let (av, bv) = (View { data: &at, rs: 1, cs: m }, View { data: &b, rs: n, cs: 1 });
                plain(m, n, k, av, bv, &mut got, rows == Rows::Any);
                assert_eq!(bits(&got), bits(&want));
            }
        }
    }
}
