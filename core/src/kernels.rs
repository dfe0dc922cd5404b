//! Matrix kernels shared by the ops, in the **canonical summation order** (docs/DESIGN.md §7).
//!
//! The rule: every output element adds its terms one at a time, in increasing index order, onto
//! its starting value (0.0 for a fresh output, the current gradient for an accumulating kernel).
//! No FMA (Rust never contracts `a * b + c` on its own), no reassociation, no tree reductions.
//! Loops may be reordered and vectorised **across independent outputs**, never across a
//! reduction. The result: the same bits on x86-64 and on a Cortex-M4F.
//!
//! # How the fast kernels keep that order
//!
//! The three products (`a·b`, `aᵀ·d`, `d·bᵀ`) share one blocked driver. It walks the output in
//! register tiles of `MR × NR` elements; a tile's partial sums live in registers while the
//! reduction index `p` runs **upwards**, each step adding `a(i,p)·b(p,j)` to every element of the
//! tile — one multiply and one add per element, exactly the scalar recurrence, just for `MR·NR`
//! independent outputs at once (which is what the SIMD lanes do). The reduction is cut into
//! blocks of [`KC`] steps for the cache: a block ends by storing the partial sums and the next
//! block reloads them, so the sequence of additions each element sees is unchanged. Operands the
//! tile would read with a stride (the transposed weight of `d·bᵀ`) are first copied into a small
//! panel on the stack; copying moves no bits. Padding lanes of edge tiles compute values that are
//! never stored. Hence the blocked kernels give **bit-identical** results to the plain loops; the
//! tests check it on random shapes, odd sizes included.
//!
//! On targets without SIMD registers worth blocking for (Cortex-M, anything not x86/x86-64/
//! AArch64) the plain loops run instead: same order, same bits, smaller code.
//!
//! With the `simd` cargo feature the host can also select x86-64 AVX2 or AVX-512 (same order,
//! same bits) or AVX2+FMA / AVX-512+FMA (faster, *not* bit-identical: each step rounds once
//! instead of twice) kernels at run time; see [`select`] and the `simd` module. Without the
//! feature the core has no `unsafe`.

use crate::error::{Error, Result};
use crate::shape::Shape;

/// Reduction steps per cache block of the blocked kernels.
pub const KC: usize = 256;

/// The kernel family that [`matmul`], [`matmul_tn_acc`] and [`matmul_nt_acc`] run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernels {
    /// Portable safe Rust in the canonical order: bit-identical everywhere (the default).
    Portable,
    /// x86-64 AVX2, canonical order, no FMA: bit-identical to [`Kernels::Portable`].
    Avx2,
    /// x86-64 AVX2 with FMA: fewer roundings, so results differ in the last bits from the
    /// portable kernels (within a few ulps per reduction step); the opt-in fast mode.
    Avx2Fma,
    /// x86-64 AVX-512F, canonical order, no FMA (`vmulps` then `vaddps`): bit-identical to
    /// [`Kernels::Portable`], with half the instructions of [`Kernels::Avx2`].
    Avx512,
    /// x86-64 AVX-512F with FMA: not bit-identical, like [`Kernels::Avx2Fma`]; the fastest.
    Avx512Fma,
}

impl Kernels {
    /// True if this family gives the same bits as the portable kernels (and the Cortex-M).
    pub const fn bit_exact(self) -> bool {
        !matches!(self, Kernels::Avx2Fma | Kernels::Avx512Fma)
    }
}

/// Chooses the kernel family for the whole program and returns the one in force, which is
/// `Portable` if the request is not available (no `simd` feature, not x86-64, or the CPU lacks
/// the instructions: the `simd` module checks with `cpuid` before it ever runs them).
pub fn select(k: Kernels) -> Kernels {
    #[cfg(all(feature = "simd", target_arch = "x86_64"))]
    {
        simd::select(k)
    }
    #[cfg(not(all(feature = "simd", target_arch = "x86_64")))]
    {
        let _ = k;
        Kernels::Portable
    }
}

/// The kernel family in force (see [`select`]).
pub fn selected() -> Kernels {
    #[cfg(all(feature = "simd", target_arch = "x86_64"))]
    {
        simd::selected()
    }
    #[cfg(not(all(feature = "simd", target_arch = "x86_64")))]
    {
        Kernels::Portable
    }
}

// The blocked driver serves the SIMD-capable hosts; small targets run `plain` (same bits).
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64")), allow(dead_code))]
mod blocked;
// The AVX-512 intrinsics are stable since Rust 1.89: the `simd` feature needs that compiler,
// the rest of the crate keeps the workspace's minimum.
#[cfg(all(feature = "simd", any(target_arch = "x86_64", all(target_arch = "arm", target_abi = "eabihf"))))]
#[allow(unsafe_code)]
#[clippy::msrv = "1.89"]
mod simd;

#[cfg(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64", test))]
use blocked::{Exact, blocked};

/// A read-only matrix view: element `(r, c)` at `data[r·rs + c·cs]`.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub(crate) data: &'a [f32],
    pub(crate) rs: usize,
    pub(crate) cs: usize,
}

/// A writable matrix view: element `(r, c)` at `data[r·rs + c·cs]`.
pub(crate) struct Out<'a> {
    pub(crate) data: &'a mut [f32],
    pub(crate) rs: usize,
    pub(crate) cs: usize,
}

/// What a caller knows about the batch of its products: a hint that picks code paths, never bits
/// (every path adds the same terms in the same order). With [`Rows::One`] the multi-row panel
/// kernel (`rows4`, what batches of 4 rows and more run on small targets) is not used, so a
/// firmware whose batch is a constant 1 can leave it out of its flash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rows {
    /// Batch 1 (a product with more rows is still right, just without the panel kernel).
    One,
    /// Any batch.
    Any,
}

impl Rows {
    /// [`Rows::One`] for a batch of one row.
    #[inline(always)]
    pub(crate) const fn of(batch: usize) -> Rows {
        if batch == 1 { Rows::One } else { Rows::Any }
    }

    /// [`Rows::One`] if `one`.
    #[inline(always)]
    pub(crate) const fn one_if(one: bool) -> Rows {
        if one { Rows::One } else { Rows::Any }
    }
}

fn check(op: &'static str, have: usize, rows: usize, cols: usize) -> Result<()> {
    match rows.checked_mul(cols) {
        Some(need) if need <= have => Ok(()),
        _ => Err(Error::Shape { op, expected: Shape::new(rows, cols), found: Shape::new(1, have) }),
    }
}

/// `c = a · b` with `a: m×k`, `b: k×n`, `c: m×n`, all row-major; `c` is overwritten.
/// Slices shorter than their shape are an [`Error::Shape`].
pub fn matmul(a: &[f32], b: &[f32], c: &mut [f32], m: usize, k: usize, n: usize) -> Result<()> {
    matmul_rows(a, b, c, m, k, n, Rows::Any)
}

/// [`matmul`] with a [`Rows`] hint.
#[inline(always)] // so that a constant hint picks one copy of the kernel at once
pub(crate) fn matmul_rows(
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    m: usize,
    k: usize,
    n: usize,
    rows: Rows,
) -> Result<()> {
    check("matmul a", a.len(), m, k)?;
    check("matmul b", b.len(), k, n)?;
    check("matmul c", c.len(), m, n)?;
    c.get_mut(..m * n).unwrap_or_default().fill(0.0); // checked above
    gemm_acc(
        m,
        n,
        k,
        View { data: a, rs: k, cs: 1 },
        View { data: b, rs: n, cs: 1 },
        Out { data: c, rs: n, cs: 1 },
        rows,
    );
    Ok(())
}

/// `c += aᵀ · d` with `a: m×k`, `d: m×n`, `c: k×n` (a weight gradient `xᵀ·dout`).
/// Each `c[p][j]` adds `a[i][p]·d[i][j]` for `i = 0, 1, …`.
pub fn matmul_tn_acc(a: &[f32], d: &[f32], c: &mut [f32], m: usize, k: usize, n: usize) -> Result<()> {
    matmul_tn_acc_rows(a, d, c, m, k, n, Rows::Any)
}

/// [`matmul_tn_acc`] with a [`Rows`] hint (`m` is the batch).
#[inline(always)] // so that a constant hint picks one copy of the kernel at once
pub(crate) fn matmul_tn_acc_rows(
    a: &[f32],
    d: &[f32],
    c: &mut [f32],
    m: usize,
    k: usize,
    n: usize,
    rows: Rows,
) -> Result<()> {
    check("matmul_tn a", a.len(), m, k)?;
    check("matmul_tn d", d.len(), m, n)?;
    check("matmul_tn c", c.len(), k, n)?;
    if BLOCKED && m > 32 {
        // Computed as `cᵀ += dᵀ·a`, i.e. `cᵀ[j][p] += Σ_i d[i][j]·a[i][p]`: the same terms in the
        // same order for every element, but the wide operand `a` is now read along its rows
        // (one contiguous vector per step) instead of down its columns (a cache line per step).
        let ct = Out { data: c, rs: 1, cs: n };
        gemm_acc(n, k, m, View { data: d, rs: 1, cs: n }, View { data: a, rs: k, cs: 1 }, ct, rows);
    } else {
        gemm_acc(
            k,
            n,
            m,
            View { data: a, rs: 1, cs: k },
            View { data: d, rs: n, cs: 1 },
            Out { data: c, rs: n, cs: 1 },
            rows,
        );
    }
    Ok(())
}

/// `c = aᵀ · d` (overwritten) with `a: m×k`, `d: m×n`, `c: k×n`: each `c[p][j] = 0.0 +
/// a[0][p]·d[0][j] + a[1][p]·d[1][j] + …`, the same bits as [`matmul_tn_acc`] onto a zeroed
/// `c`. At `m = 1` (a batch-1 weight gradient, an outer product) `c` is written in one pass,
/// without zeroing it first or reading it back.
pub fn matmul_tn(a: &[f32], d: &[f32], c: &mut [f32], m: usize, k: usize, n: usize) -> Result<()> {
    matmul_tn_rows(a, d, c, m, k, n, Rows::Any)
}

/// [`matmul_tn`] with a [`Rows`] hint (`m` is the batch).
#[inline(always)] // so that a constant hint picks one copy of the kernel at once
pub(crate) fn matmul_tn_rows(
    a: &[f32],
    d: &[f32],
    c: &mut [f32],
    m: usize,
    k: usize,
    n: usize,
    rows: Rows,
) -> Result<()> {
    check("matmul_tn a", a.len(), m, k)?;
    check("matmul_tn d", d.len(), m, n)?;
    check("matmul_tn c", c.len(), k, n)?;
    if m != 1 || n == 0 {
        c.get_mut(..k * n).unwrap_or_default().fill(0.0); // checked above
        return matmul_tn_acc_rows(a, d, c, m, k, n, rows);
    }
    // 16 of the `d[j]` stay in registers while the rows go by: a multiply, an add and a store per
    // element. `0.0 + t` rather than `t`: the same bits as the sum from 0.0 (it turns −0 into +0).
    const TILE: usize = 16;
    let (Some(c), Some(d), Some(a)) = (c.get_mut(..k * n), d.get(..n), a.get(..k)) else {
        return Ok(()); // checked above
    };
    let mut j0 = 0;
    for dt in d.chunks_exact(TILE) {
        let mut dr = [0.0f32; TILE];
        dr.copy_from_slice(dt);
        for (row, &ap) in c.chunks_exact_mut(n).zip(a) {
            if let Some(o) = row.get_mut(j0..j0 + TILE) {
                for (o, &dv) in o.iter_mut().zip(&dr) {
                    *o = 0.0 + ap * dv;
                }
            }
        }
        j0 += TILE;
    }
    let rest = d.get(j0..).unwrap_or_default();
    for (row, &ap) in c.chunks_exact_mut(n).zip(a) {
        for (o, &dv) in row.get_mut(j0..).unwrap_or_default().iter_mut().zip(rest) {
            *o = 0.0 + ap * dv;
        }
    }
    Ok(())
}

/// Row `p` of `aᵀ · d` (with `a: m×k`, `d: m×n`) into `row` (`n` floats), overwritten: each
/// `row[j] = 0.0 + a[0][p]·d[0][j] + a[1][p]·d[1][j] + …`, the same bits as
/// [`matmul_tn_acc`] onto a zeroed `c` (what the fused update uses instead of a gradient buffer).
pub fn outer_row(a: &[f32], d: &[f32], row: &mut [f32], p: usize, m: usize, k: usize, n: usize) {
    if m == 0 {
        row.fill(0.0);
    }
    for (i, drow) in d.chunks_exact(n.max(1)).take(m).enumerate() {
        let aip = a.get(i * k + p).copied().unwrap_or_default();
        if i == 0 {
            // Written out rather than `fill(0.0)` + add: same bits (0.0 + t), one pass.
            for (o, &dv) in row.iter_mut().zip(drow) {
                *o = 0.0 + aip * dv;
            }
        } else {
            for (o, &dv) in row.iter_mut().zip(drow) {
                *o += aip * dv;
            }
        }
    }
}

/// `c += d · bᵀ` with `d: m×n`, `b: k×n`, `c: m×k` (an input gradient `dout·Wᵀ`).
/// Each `c[i][p]` adds `d[i][j]·b[p][j]` for `j = 0, 1, …`.
pub fn matmul_nt_acc(d: &[f32], b: &[f32], c: &mut [f32], m: usize, n: usize, k: usize) -> Result<()> {
    matmul_nt_acc_rows(d, b, c, m, n, k, Rows::Any)
}

/// [`matmul_nt_acc`] with a [`Rows`] hint (`m` is the batch).
#[inline(always)] // so that a constant hint picks one copy of the kernel at once
pub(crate) fn matmul_nt_acc_rows(
    d: &[f32],
    b: &[f32],
    c: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    rows: Rows,
) -> Result<()> {
    check("matmul_nt d", d.len(), m, n)?;
    check("matmul_nt b", b.len(), k, n)?;
    check("matmul_nt c", c.len(), m, k)?;
    gemm_acc(
        m,
        k,
        n,
        View { data: d, rs: n, cs: 1 },
        View { data: b, rs: 1, cs: n },
        Out { data: c, rs: k, cs: 1 },
        rows,
    );
    Ok(())
}

/// True where the blocked driver runs (SIMD-capable hosts); elsewhere the plain loops.
const BLOCKED: bool = cfg!(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64"));

/// `c(i, j) += Σ_p a(i,p)·b(p,j)` over `p = 0, 1, …` for `i < m`, `j < n`; shapes checked.
/// `c(i, j) += Σ_p a(i,p)·b(p,j)` over `p = 0, 1, …` for `i < m`, `j < n`; shapes checked.
/// `rows` is the caller's [`Rows`] hint: one function per hint (not generic, so each exists
/// once in a program), and a constant hint keeps one of them: a batch-1 firmware has no panel
/// kernel.
#[inline(always)]
fn gemm_acc(m: usize, n: usize, k: usize, a: View, b: View, c: Out, rows: Rows) {
    match rows {
        Rows::One => gemm_one(m, n, k, a, b, c),
        Rows::Any => gemm_any(m, n, k, a, b, c),
    }
}

/// [`gemm_acc`] for any batch.
fn gemm_any(m: usize, n: usize, k: usize, a: View, b: View, c: Out) {
    gemm(m, n, k, a, b, c, true);
}

/// [`gemm_acc`] for batch 1: the plain loops without their multi-row panel kernel.
fn gemm_one(m: usize, n: usize, k: usize, a: View, b: View, c: Out) {
    gemm(m, n, k, a, b, c, false);
}

/// [`gemm_acc`]'s body; the plain loops (small targets) only ever see a row-major `c`, and use
/// their multi-row panel kernel only with `panel`.
#[allow(unused_mut, unused_variables)]
#[inline(always)]
fn gemm(m: usize, n: usize, k: usize, a: View, b: View, mut c: Out, panel: bool) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    #[cfg(all(feature = "simd", target_arch = "x86_64"))]
    if simd::gemm_acc(m, n, k, a, b, Out { data: &mut *c.data, rs: c.rs, cs: c.cs }) {
        return;
    }
    #[cfg(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64"))]
    blocked::<8, Exact>(m, n, k, a, b, c);
    #[cfg(not(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64")))]
    plain(m, n, k, a, b, c.data, panel);
}

/// The plain loops: for each output row, the reduction runs outermost so the inner loop walks
/// contiguous outputs. The canonical order by construction; what small targets run. Without
/// `panel` (a [`Rows::One`] caller) the multi-row panel kernel is not used (same bits).
#[cfg_attr(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64"), allow(dead_code))]
#[inline(always)]
fn plain(m: usize, n: usize, k: usize, a: View, b: View, c: &mut [f32], panel: bool) {
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
#[inline(always)]
fn mac4x4(acc: &mut [[f32; 4]; 4], x: &[f32; 4], b: &[f32; 4]) {
    for (accr, &xr) in acc.iter_mut().zip(x) {
        for (o, &bj) in accr.iter_mut().zip(b) {
            *o += xr * bj;
        }
    }
}

/// `row[j0 + j] += Σ_p a(i,p)·b(p, j0 + j)` for `j < W`, `p = 0, 1, …, k−1` in order, with the
/// `W` partial sums in registers (`a(i,p)` at `a.data[ao + p·a.cs]`, `b` row-major).
#[inline(always)]
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
/// products ([`StepPath::Direct`](crate::model::StepPath::Direct)): inlined where the shapes are constants, the loops unroll and the
/// bounds checks fold away. Operands shorter than their shapes leave `c` untouched.
#[inline(always)]
pub(crate) fn gemm_small(m: usize, n: usize, k: usize, a: View, b: View, c: &mut [f32]) {
    if m == 0 || n == 0 {
        return;
    }
    let end = |v: &View, rows: usize, cols: usize| match (rows, cols) {
        (0, _) | (_, 0) => 0,
        _ => (rows - 1) * v.rs + (cols - 1) * v.cs + 1,
    };
    let (Some(ad), Some(bd), Some(c)) =
        (a.data.get(..end(&a, m, k)), b.data.get(..end(&b, k, n)), c.get_mut(..m * n))
    else {
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

/// `√x`, correctly rounded: the same bits as `libm::sqrtf` for every input. What the update
/// rules use (Adam, RMSProp, AdaGrad). With the `simd` feature on an Arm core with a hardware FPU
/// (`eabihf`, e.g. a Cortex-M4F) it is the FPU's `vsqrt.f32`, one instruction instead of libm's
/// software routine (IEEE 754 requires both to round correctly, so the bits agree); elsewhere it
/// is `libm::sqrtf`.
///
/// ```
/// assert_eq!(staticgrad::kernels::sqrt(2.0).to_bits(), libm::sqrtf(2.0).to_bits());
/// ```
#[inline(always)]
pub fn sqrt(x: f32) -> f32 {
    #[cfg(all(feature = "simd", target_arch = "arm", target_abi = "eabihf"))]
    {
        simd::sqrt(x)
    }
    #[cfg(not(all(feature = "simd", target_arch = "arm", target_abi = "eabihf")))]
    {
        libm::sqrtf(x)
    }
}

/// `e^x`, the same bits as `libm::expf` for every input (the tests compare them), written
/// without branches so that LLVM vectorises a loop of it on SIMD hosts (libm's version is a
/// chain of branches, one call per element). Small targets call `libm::expf` directly.
#[inline(always)]
pub fn expf(x: f32) -> f32 {
    if BLOCKED { expf_branchless(x) } else { libm::expf(x) }
}

/// `ln x`: `libm::logf`, called out of line, so that its callers (the cross-entropy once per row,
/// Box–Muller's draws) share one copy in a firmware.
#[inline(never)]
pub(crate) fn logf(x: f32) -> f32 {
    libm::logf(x)
}

/// libm's `expf` (FreeBSD `e_expf.c`) with every branch computed and the result selected:
/// the same operations in the same order on each path, so the same bits.
#[inline(always)]
fn expf_branchless(x0: f32) -> f32 {
    // libm's constants, by their bits.
    let ln2_hi = f32::from_bits(0x3f31_7200);
    let ln2_lo = f32::from_bits(0x35bf_be8e);
    let inv_ln2 = f32::from_bits(0x3fb8_aa3b);
    let p1 = f32::from_bits(0x3e2a_aa8f); // 0xaaaa8f.0p-26
    let p2 = f32::from_bits(0xbb35_5215); // -0xb55215.0p-32
    let x1p127 = f32::from_bits(0x7f00_0000);
    let bits = x0.to_bits();
    let sign = (bits >> 31) as i32;
    let hx = bits & 0x7fff_ffff;
    // Argument reduction for |x| > ln2/2: k = round(x/ln2), or ±1 up to 1.5·ln2.
    let half = if sign == 0 { 0.5f32 } else { -0.5 };
    let k_far = (inv_ln2 * x0 + half) as i32;
    let k_near = 1i32.wrapping_sub(sign).wrapping_sub(sign);
    let k_red = if hx > 0x3f85_1592 { k_far } else { k_near };
    let kf = k_red as f32;
    let hi_red = x0 - kf * ln2_hi;
    let lo_red = kf * ln2_lo;
    let reduce = hx > 0x3eb1_7218;
    let k = if reduce { k_red } else { 0 };
    let hi = if reduce { hi_red } else { x0 };
    let lo = if reduce { lo_red } else { 0.0 };
    let x = if reduce { hi_red - lo_red } else { x0 };
    let xx = x * x;
    let c = x - xx * (p1 + xx * p2);
    let y = 1.0 + (x * c / (2.0 - c) - lo + hi);
    // scalbn(y, k) as libm does it: prescale out of the exponent range, then one multiply.
    let (y1, n) = if k > 127 {
        (y * x1p127, k.wrapping_sub(127))
    } else if k < -126 {
        (y * f32::from_bits(0x0c80_0000), k.wrapping_add(102)) // 2^-102
    } else {
        (y, k)
    };
    let scaled = y1 * f32::from_bits((0x7f_i32.wrapping_add(n) as u32) << 23);
    let r = if k == 0 { y } else { scaled };
    let r = if hx > 0x3900_0000 { r } else { 1.0 + x0 }; // |x| <= 2^-14
    if hx > 0x7f80_0000 {
        x0 // NaN
    } else if hx >= 0x42b1_7218 && sign == 0 {
        x0 * x1p127 // overflow
    } else if hx >= 0x42cf_f1b5 && sign != 0 {
        0.0 // underflow
    } else {
        r
    }
}

/// `out[i] = f(x[i])` for every `i` of the shorter slice. With the `simd` feature, on a host
/// running an AVX2 or AVX-512 family the loop is compiled for that instruction set: the same
/// operations per element (no FMA, no reassociation), hence the same bits, in wider registers.
#[inline(always)]
pub(crate) fn map(x: &[f32], out: &mut [f32], f: impl Fn(f32) -> f32) {
    #[cfg(all(feature = "simd", target_arch = "x86_64"))]
    if simd::map(x, out, &f) {
        return;
    }
    for (o, &v) in out.iter_mut().zip(x) {
        *o = f(v);
    }
}

/// `v[i] = f(v[i])` for every `i`, compiled for the selected instruction set like [`map`].
#[inline(always)]
pub(crate) fn map_in_place(v: &mut [f32], f: impl Fn(f32) -> f32) {
    #[cfg(all(feature = "simd", target_arch = "x86_64"))]
    if simd::map_in_place(v, &f) {
        return;
    }
    for o in v.iter_mut() {
        *o = f(*o);
    }
}

/// `d[i] += df(x[i], y[i], dy[i])` for every `i` of the shortest slice (an element-wise
/// backward), compiled for the selected instruction set like [`map`].
#[inline(always)]
pub(crate) fn map_acc3(x: &[f32], y: &[f32], dy: &[f32], d: &mut [f32], df: impl Fn(f32, f32, f32) -> f32) {
    #[cfg(all(feature = "simd", target_arch = "x86_64"))]
    if simd::map_acc3(x, y, dy, d, &df) {
        return;
    }
    for (((o, &x), &y), &dy) in d.iter_mut().zip(x).zip(y).zip(dy) {
        *o += df(x, y, dy);
    }
}

/// `c[j] += Σ_i d[i][j]` for `i = 0, 1, …` (a bias gradient: column sums of `d: m×n`).
pub fn col_sum_acc(d: &[f32], c: &mut [f32], m: usize, n: usize) {
    if n == 0 {
        return; // empty output: `m` (unbounded by an empty shape) must not drive a loop
    }
    for drow in d.chunks_exact(n).take(m) {
        for (o, &dv) in c.iter_mut().zip(drow) {
            *o += dv;
        }
    }
}

/// `Σ x[i]` for `i = 0, 1, …`, from 0.0.
pub fn sum(x: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for &v in x {
        s += v;
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn matmul_tn_overwrite_equals_zeroed_accumulate() {
        use std::vec::Vec;
        for (m, k, n) in [(1, 1, 1), (1, 7, 33), (1, 196, 32), (1, 4, 10), (2, 5, 3), (8, 9, 17), (1, 3, 0)] {
            let mut a = random_values(m * k, 0.0, 1);
            let d = random_values(m * n, 0.0, 2);
            if let Some(x) = a.first_mut() {
                *x = -0.0; // products of −0: the sum from 0.0 turns them into +0
            }
            let mut want = std::vec![0.0f32; k * n];
            matmul_tn_acc(&a, &d, &mut want, m, k, n).unwrap();
            let mut got = std::vec![f32::NAN; k * n];
            matmul_tn(&a, &d, &mut got, m, k, n).unwrap();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{m}×{k}×{n}");
        }
        assert!(matmul_tn(&[1.0], &[1.0, 2.0], &mut [0.0; 1], 1, 1, 2).is_err());
    }

    #[test]
    fn sqrt_is_correctly_rounded_everywhere() {
        // f64's square root rounded to f32 is the correctly rounded f32 square root (53 ≥ 2·24 + 2
        // bits, so no double-rounding error): an oracle independent of libm and of the FPU.
        let check = |x: f32| {
            let (got, want) = (sqrt(x), (x as f64).sqrt() as f32);
            if want.is_nan() {
                assert!(got.is_nan() && libm::sqrtf(x).is_nan(), "{x:e}");
            } else {
                assert_eq!(got.to_bits(), want.to_bits(), "sqrt({x:e} = {:#010x})", x.to_bits());
                assert_eq!(got.to_bits(), libm::sqrtf(x).to_bits(), "libm, {x:e}");
            }
        };
        for x in [0.0, -0.0, 1.0, 2.0, 4.0, f32::MIN_POSITIVE, f32::MAX, f32::INFINITY, f32::NEG_INFINITY] {
            check(x);
        }
        check(f32::NAN);
        check(-1.0);
        check(-f32::MIN_POSITIVE);
        // Subnormals (both ends and a sweep), then a sweep over every exponent and sign.
        for b in (1u32..0x0080_0000).step_by(997).chain([1, 2, 3, 0x007f_ffff]) {
            check(f32::from_bits(b));
        }
        for b in (0u32..=u32::MAX).step_by(65_521) {
            check(f32::from_bits(b));
        }
    }

    use super::*;
    use crate::testutil::random_values;
    use std::vec;
    use std::vec::Vec;

    /// The definition: each output adds its terms one at a time, in increasing index order.
    fn reference(
        m: usize,
        n: usize,
        k: usize,
        a: &dyn Fn(usize, usize) -> f32,
        b: &dyn Fn(usize, usize) -> f32,
        c: &mut [f32],
    ) {
        for i in 0..m {
            for j in 0..n {
                let mut s = c[i * n + j];
                for p in 0..k {
                    s += a(i, p) * b(p, j);
                }
                c[i * n + j] = s;
            }
        }
    }

    fn bits(x: &[f32]) -> Vec<u32> {
        x.iter().map(|v| v.to_bits()).collect()
    }

    const SHAPES: [(usize, usize, usize); 18] = [
        (8, 196, 32), // the MNIST demo at batch 8: forward, and (below) the weight gradient
        (196, 8, 32),
        (40, 13, 19),
        (45, 7, 37),
        (1, 1, 1),
        (1, 7, 3),
        (3, 1, 5),
        (4, 8, 16),
        (5, 9, 17),
        (7, 300, 13),
        (8, 4, 16),
        (8, 16, 3),
        (13, 11, 33),
        (17, 257, 9),
        (33, 520, 47),
        (100, 50, 10),
        (128, 100, 100),
        (3, 513, 2),
    ];

    #[test]
    fn blocked_matmul_matches_the_definition_bit_for_bit() {
        for (s, &(m, k, n)) in SHAPES.iter().enumerate() {
            let a = random_values(m * k, 0.0, s as u64);
            let b = random_values(k * n, 0.0, 100 + s as u64);
            let mut want = vec![0.0; m * n];
            reference(m, n, k, &|i, p| a[i * k + p], &|p, j| b[p * n + j], &mut want);
            let mut got = vec![f32::NAN; m * n];
            matmul(&a, &b, &mut got, m, k, n).unwrap();
            assert_eq!(bits(&got), bits(&want), "matmul {m}x{k}x{n}");
            let mut got = vec![0.0; m * n];
            blocked::<8, Exact>(
                m,
                n,
                k,
                View { data: &a, rs: k, cs: 1 },
                View { data: &b, rs: n, cs: 1 },
                Out { data: &mut got, rs: n, cs: 1 },
            );
            assert_eq!(bits(&got), bits(&want), "blocked matmul {m}x{k}x{n}");
        }
    }

    #[test]
    fn blocked_tn_and_nt_match_the_definition_bit_for_bit() {
        for (s, &(m, k, n)) in SHAPES.iter().enumerate() {
            // c (k×n) += aᵀ (k×m) · d (m×n), starting from a non-zero gradient.
            let a = random_values(m * k, 0.0, 200 + s as u64);
            let d = random_values(m * n, 0.0, 300 + s as u64);
            let start = random_values(k * n, 0.0, 400 + s as u64);
            let mut want = start.clone();
            reference(k, n, m, &|p, i| a[i * k + p], &|i, j| d[i * n + j], &mut want);
            let mut got = start.clone();
            matmul_tn_acc(&a, &d, &mut got, m, k, n).unwrap();
            assert_eq!(bits(&got), bits(&want), "tn {m}x{k}x{n}");
            let mut got = start.clone();
            blocked::<8, Exact>(
                k,
                n,
                m,
                View { data: &a, rs: 1, cs: k },
                View { data: &d, rs: n, cs: 1 },
                Out { data: &mut got, rs: n, cs: 1 },
            );
            assert_eq!(bits(&got), bits(&want), "blocked tn {m}x{k}x{n}");
            // The transposed form the public kernel uses for long reductions, at every size.
            let mut got = start.clone();
            blocked::<8, Exact>(
                n,
                k,
                m,
                View { data: &d, rs: 1, cs: n },
                View { data: &a, rs: k, cs: 1 },
                Out { data: &mut got, rs: 1, cs: n },
            );
            assert_eq!(bits(&got), bits(&want), "blocked transposed tn {m}x{k}x{n}");

            // c (m×k) += d (m×n) · bᵀ with b: k×n.
            let b = random_values(k * n, 0.0, 500 + s as u64);
            let start = random_values(m * k, 0.0, 600 + s as u64);
            let mut want = start.clone();
            reference(m, k, n, &|i, j| d[i * n + j], &|j, p| b[p * n + j], &mut want);
            let mut got = start.clone();
            matmul_nt_acc(&d, &b, &mut got, m, n, k).unwrap();
            assert_eq!(bits(&got), bits(&want), "nt {m}x{k}x{n}");
            let mut got = start;
            blocked::<8, Exact>(
                m,
                k,
                n,
                View { data: &d, rs: n, cs: 1 },
                View { data: &b, rs: 1, cs: n },
                Out { data: &mut got, rs: k, cs: 1 },
            );
            assert_eq!(bits(&got), bits(&want), "blocked nt {m}x{k}x{n}");
        }
    }

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

    fn same_as_libm(x: f32) {
        let (got, want) = (expf_branchless(x), libm::expf(x));
        assert!(
            got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
            "expf({x:e}) = {got:e}, libm {want:e}"
        );
    }

    #[test]
    fn branchless_expf_is_libm_bit_for_bit() {
        for x in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MIN_POSITIVE,
            f32::MAX,
            f32::MIN,
        ] {
            same_as_libm(x);
        }
        // Every branch threshold of libm's expf and its neighbours (in both signs).
        for t in
            [0x3900_0000u32, 0x3eb1_7218, 0x3f85_1592, 0x42ae_ac50, 0x42b1_7218, 0x42cf_f1b5, 0x7f80_0000]
        {
            for d in 0..64 {
                for b in [t.wrapping_sub(d), t + d] {
                    same_as_libm(f32::from_bits(b));
                    same_as_libm(f32::from_bits(b | 0x8000_0000));
                }
            }
        }
        // A sweep over all bit patterns (every 1021st), which visits every exponent.
        for b in (0..u32::MAX).step_by(1021) {
            same_as_libm(f32::from_bits(b));
        }
        // Densely where the results go subnormal or the reduction changes form.
        for i in 0..200_000u32 {
            same_as_libm(-87.0 - i as f32 * 17.5 / 200_000.0);
            same_as_libm(-1.5 + i as f32 * 3.0 / 200_000.0);
        }
    }

    /// Every one of the 2³² inputs: `cargo test --release -p staticgrad -- --ignored expf`.
    #[test]
    #[ignore]
    fn branchless_expf_is_libm_for_every_input() {
        for b in 0..=u32::MAX {
            same_as_libm(f32::from_bits(b));
        }
    }

    #[test]
    fn short_buffers_are_errors_not_panics() {
        let mut c = [0.0; 4];
        assert!(matches!(matmul(&[0.0; 3], &[0.0; 4], &mut c, 2, 2, 2), Err(Error::Shape { .. })));
        assert!(matches!(
            matmul_tn_acc(&[0.0; 4], &[0.0; 4], &mut c[..3], 2, 2, 2),
            Err(Error::Shape { .. })
        ));
        assert!(matches!(matmul_nt_acc(&[0.0; 4], &[0.0; 3], &mut c, 2, 2, 2), Err(Error::Shape { .. })));
        assert!(matches!(matmul(&[], &[], &mut [], usize::MAX, 2, 2), Err(Error::Shape { .. })));
        assert_eq!(matmul(&[], &[], &mut [], 0, 0, 0), Ok(()));
    }
}
