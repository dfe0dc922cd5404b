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
//! With the `x86-simd` cargo feature an x86-64 host can also select AVX2 or AVX-512 (same order,
//! same bits) or AVX2+FMA / AVX-512+FMA (faster, *not* bit-identical: each step rounds once
//! instead of twice) kernels at run time; see [`select`]. With the `arm-fpu-sqrt` feature an Arm
//! hard-float target takes [`sqrt`] from its FPU. Without either feature the core has no
//! `unsafe`.
//!
//! # Dimensions
//!
//! Every product takes its sizes as one [`Dims`], named after the **output**: `c` is
//! `rows × cols`, and each of its elements sums `inner` terms. The operands' stored shapes follow
//! from the function's name (`tn`: the first operand is stored transposed, `nt`: the second):
//!
//! | function | computes | first operand | second operand |
//! |---|---|---|---|
//! | [`matmul`] | `c = a·b` | `a`: `rows × inner` | `b`: `inner × cols` |
//! | [`matmul_tn`], [`matmul_tn_acc`], [`outer_row`] | `c = aᵀ·d`, `c += aᵀ·d`, one row of `aᵀ·d` | `a`: `inner × rows` | `d`: `inner × cols` |
//! | [`matmul_nt_acc`] | `c += d·bᵀ` | `d`: `rows × inner` | `b`: `cols × inner` |
//!
//! For a dense layer with a batch of `B` rows, `I` inputs and `O` outputs, the forward `x·W` is
//! `Dims { rows: B, inner: I, cols: O }`, the weight gradient `xᵀ·dy` is
//! `Dims { rows: I, inner: B, cols: O }` and the input gradient `dy·Wᵀ` is
//! `Dims { rows: B, inner: O, cols: I }`.
//!
//! ```
//! use staticgrad::kernels::{Dims, matmul};
//! // [1 2 3] · [[1 0] [0 1] [1 1]] = [4 5]
//! let mut c = [0.0; 2];
//! matmul(&[1.0, 2.0, 3.0], &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0], &mut c, Dims { rows: 1, inner: 3, cols: 2 })?;
//! assert_eq!(c, [4.0, 5.0]);
//! # Ok::<(), staticgrad::Error>(())
//! ```
//!
//! # Files
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | kernel selection ([`Kernels`], [`select`], [`selected`]), the products' public API and their dispatch |
//! | `plain.rs` | the portable loops: what small targets run, and the tiny products of the direct path |
//! | `blocked.rs` | the blocked driver (register tiles, cache blocks) that SIMD-capable hosts run |
//! | `x86.rs` | the x86-64 AVX2 / AVX-512 kernels and their run-time check: `unsafe`, fenced |
//! | `arm.rs` | the Cortex-M FPU square root (`vsqrt.f32`): `unsafe`, fenced |
//! | `math/` | [`sqrt`], [`expf`], `logf`: one function per file, libm's bits |
//! | `elementwise.rs` | maps over slices (`map`, `map_in_place`, `map_acc3`), [`col_sum_acc`], [`sum`] |

use crate::error::{Error, Result};
use crate::parallel::{Par, rows_per_chunk};
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
/// `Portable` if the request is not available (no `x86-simd` feature, not x86-64, or the CPU lacks
/// the instructions: `x86.rs` checks with `cpuid` before it ever runs them).
pub fn select(k: Kernels) -> Kernels {
    #[cfg(all(feature = "x86-simd", target_arch = "x86_64"))]
    {
        x86::select(k)
    }
    #[cfg(not(all(feature = "x86-simd", target_arch = "x86_64")))]
    {
        let _ = k;
        Kernels::Portable
    }
}

/// The kernel family in force (see [`select`]).
pub fn selected() -> Kernels {
    #[cfg(all(feature = "x86-simd", target_arch = "x86_64"))]
    {
        x86::selected()
    }
    #[cfg(not(all(feature = "x86-simd", target_arch = "x86_64")))]
    {
        Kernels::Portable
    }
}

// The FPU square root is a naked function, stable since Rust 1.88: the `arm-fpu-sqrt` feature
// needs that compiler.
#[cfg(all(feature = "arm-fpu-sqrt", target_arch = "arm", target_abi = "eabihf"))]
#[allow(unsafe_code)]
#[clippy::msrv = "1.88"]
mod arm;
#[cfg(all(feature = "arm-fpu-sqrt", target_arch = "arm", target_abi = "eabihf"))]
pub(crate) use arm::{adam_book_run, sgd_run};
// The blocked driver serves the SIMD-capable hosts; small targets run `plain` (same bits).
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64")), allow(dead_code))]
mod blocked;
mod elementwise;
mod math;
mod plain;
// The AVX-512 intrinsics are stable since Rust 1.89: the `x86-simd` feature needs that compiler,
// the rest of the crate keeps its own minimum.
#[cfg(all(feature = "x86-simd", target_arch = "x86_64"))]
#[allow(unsafe_code)]
#[clippy::msrv = "1.89"]
mod x86;

pub use elementwise::{col_sum_acc, sum};
pub(crate) use elementwise::{map, map_acc3, map_acc3_par, map_in_place, map_par, zero_par};
pub(crate) use math::logf;
pub use math::{expf, sqrt};
pub(crate) use plain::gemm_small;

/// The products of the direct path: `c(i, j) = 0.0 + Σ_p a(i,p)·b(p,j)`, `c` row-major `m × n`
/// and overwritten, the same bits as [`gemm_small`]. Small targets run [`gemm_small`] itself, so
/// with `const` shapes a firmware's products still unroll; SIMD-capable hosts, where those shapes
/// are run-time values and the scalar loops do not vectorise, zero `c` and accumulate with the
/// selected kernels (the same terms in the same order onto 0.0, so the same bits in every
/// bit-exact family; with an FMA family the same bits as the recorded path's products).
/// Operands shorter than their shapes leave `c` untouched, as in [`gemm_small`].
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn gemm_direct(m: usize, n: usize, k: usize, a: View, b: View, c: &mut [f32]) {
    #[cfg(not(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64")))]
    gemm_small(m, n, k, a, b, c);
    #[cfg(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64"))]
    gemm_direct_host(m, n, k, a, b, c);
}

/// [`gemm_direct`] on a host. Out of line: the direct path inlines its layers, and each inlined
/// product would add the blocked driver's panel to that one frame (a stack overflow in a debug
/// build's 2 MiB test thread).
#[cfg(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64"))]
#[inline(never)]
fn gemm_direct_host(m: usize, n: usize, k: usize, a: View, b: View, c: &mut [f32]) {
    let (Some(ae), Some(be), Some(len)) = (a.extent(m, k), b.extent(k, n), m.checked_mul(n)) else {
        return;
    };
    if a.data.len() < ae || b.data.len() < be {
        return;
    }
    let Some(c) = c.get_mut(..len) else {
        return;
    };
    c.fill(0.0);
    gemm(m, n, k, a, b, Out { data: c, rs: n, cs: 1 }, true);
}

/// `c(i, j) += Σ_p a(i,p)·b(p,j)` over `p = 0, 1, …` on a host, with the selected kernels, for
/// operands given as views (the convolution's im2col products, `ops/im2col.rs`). Returns false,
/// touching nothing, if a view is shorter than its shape or `c`'s strides are not one row-major
/// or column-major layout.
#[cfg(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64"))]
pub(crate) fn gemm_views(m: usize, n: usize, k: usize, a: View, b: View, c: Out) -> bool {
    let cv = View { data: &[], rs: c.rs, cs: c.cs };
    let (Some(ae), Some(be), Some(ce)) = (a.extent(m, k), b.extent(k, n), cv.extent(m, n)) else {
        return false;
    };
    if a.data.len() < ae || b.data.len() < be || c.data.len() < ce || !(c.cs == 1 || c.rs == 1) {
        return false;
    }
    gemm(m, n, k, a, b, c, true);
    true
}

#[cfg(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64", test))]
use blocked::{Exact, blocked};
#[cfg(not(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64")))]
use plain::plain;

/// A read-only matrix view: element `(r, c)` at `data[r·rs + c·cs]`.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub(crate) data: &'a [f32],
    pub(crate) rs: usize,
    pub(crate) cs: usize,
}

impl View<'_> {
    /// Elements a `rows × cols` view reaches (`0` if empty): its data must be at least this long.
    /// `None` if the count does not fit in `usize`.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn extent(&self, rows: usize, cols: usize) -> Option<usize> {
        match (rows, cols) {
            (0, _) | (_, 0) => Some(0),
            _ => {
                (rows - 1).checked_mul(self.rs)?.checked_add((cols - 1).checked_mul(self.cs)?)?.checked_add(1)
            }
        }
    }
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
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) const fn of(batch: usize) -> Rows {
        if batch == 1 { Rows::One } else { Rows::Any }
    }

    /// [`Rows::One`] if `one`.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) const fn one_if(one: bool) -> Rows {
        if one { Rows::One } else { Rows::Any }
    }
}

/// The sizes of a matrix product, named after its output (see the module's
/// [dimensions](crate::kernels#dimensions)): `c` is `rows × cols` and each element sums `inner` terms, in
/// increasing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    /// Rows of the output `c`.
    pub rows: usize,
    /// Terms summed into each output element: the dimension the two operands share.
    pub inner: usize,
    /// Columns of the output `c`.
    pub cols: usize,
}

fn check(op: &'static str, have: usize, rows: usize, cols: usize) -> Result<()> {
    match rows.checked_mul(cols) {
        Some(need) if need <= have => Ok(()),
        _ => Err(Error::Shape { op, expected: Shape::new(rows, cols), found: Shape::new(1, have) }),
    }
}

/// `c = a · b` with `a: rows×inner`, `b: inner×cols`, `c: rows×cols`, all row-major; `c` is
/// overwritten. Slices shorter than their shape are an [`Error::Shape`].
pub fn matmul(a: &[f32], b: &[f32], c: &mut [f32], dims: Dims) -> Result<()> {
    matmul_rows(a, b, c, dims, Rows::Any)
}

/// [`matmul`] with a [`Rows`] hint.
// so that a constant hint picks one copy of the kernel at once
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn matmul_rows(a: &[f32], b: &[f32], c: &mut [f32], dims: Dims, rows: Rows) -> Result<()> {
    let Dims { rows: m, inner: k, cols: n } = dims;
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

/// `c += aᵀ · d` with `a: inner×rows`, `d: inner×cols`, `c: rows×cols` (a weight gradient
/// `xᵀ·dout`, `inner` the batch). Each `c[p][j]` adds `a[i][p]·d[i][j]` for `i = 0, 1, …`.
pub fn matmul_tn_acc(a: &[f32], d: &[f32], c: &mut [f32], dims: Dims) -> Result<()> {
    matmul_tn_acc_rows(a, d, c, dims, Rows::Any)
}

/// [`matmul_tn_acc`] with a [`Rows`] hint (`dims.inner` is the batch).
// so that a constant hint picks one copy of the kernel at once
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn matmul_tn_acc_rows(a: &[f32], d: &[f32], c: &mut [f32], dims: Dims, rows: Rows) -> Result<()> {
    // `m` the batch (the reduction), `k` the rows of `c`, as in the weight gradient `xᵀ·dy`.
    let Dims { rows: k, inner: m, cols: n } = dims;
    check("matmul_tn a", a.len(), m, k)?;
    check("matmul_tn d", d.len(), m, n)?;
    check("matmul_tn c", c.len(), k, n)?;
    tn_acc(a, k, d, c, Dims { rows: k, inner: m, cols: n }, rows);
    Ok(())
}

/// The body of [`matmul_tn_acc`] for the rows `p0 .. p0 + dims.rows` of `c`: `a` starts at
/// column `p0` of the `inner × lda` matrix (`a[i][p]` at `a[i·lda + p]`), `c` is those rows.
/// Shapes checked by the caller: `a` reaches `(inner − 1)·lda + rows`, `d` and `c` are long
/// enough.
#[cfg_attr(not(debug_assertions), inline(always))]
fn tn_acc(a: &[f32], lda: usize, d: &[f32], c: &mut [f32], dims: Dims, rows: Rows) {
    let Dims { rows: k, inner: m, cols: n } = dims;
    if BLOCKED && m > 32 {
        // Computed as `cᵀ += dᵀ·a`, i.e. `cᵀ[j][p] += Σ_i d[i][j]·a[i][p]`: the same terms in the
        // same order for every element, but the wide operand `a` is now read along its rows
        // (one contiguous vector per step) instead of down its columns (a cache line per step).
        let ct = Out { data: c, rs: 1, cs: n };
        gemm_acc(n, k, m, View { data: d, rs: 1, cs: n }, View { data: a, rs: lda, cs: 1 }, ct, rows);
    } else {
        gemm_acc(
            k,
            n,
            m,
            View { data: a, rs: 1, cs: lda },
            View { data: d, rs: n, cs: 1 },
            Out { data: c, rs: n, cs: 1 },
            rows,
        );
    }
}

/// `c = aᵀ · d` (overwritten) with `a: inner×rows`, `d: inner×cols`, `c: rows×cols`: each
/// `c[p][j] = 0.0 + a[0][p]·d[0][j] + a[1][p]·d[1][j] + …`, the same bits as [`matmul_tn_acc`]
/// onto a zeroed `c`. At `inner = 1` (a batch-1 weight gradient, an outer product) `c` is
/// written in one pass, without zeroing it first or reading it back.
pub fn matmul_tn(a: &[f32], d: &[f32], c: &mut [f32], dims: Dims) -> Result<()> {
    matmul_tn_rows(a, d, c, dims, Rows::Any)
}

/// [`matmul_tn`] with a [`Rows`] hint (`dims.inner` is the batch).
// so that a constant hint picks one copy of the kernel at once
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn matmul_tn_rows(a: &[f32], d: &[f32], c: &mut [f32], dims: Dims, rows: Rows) -> Result<()> {
    let Dims { rows: k, inner: m, cols: n } = dims; // as in `matmul_tn_acc_rows`
    check("matmul_tn a", a.len(), m, k)?;
    check("matmul_tn d", d.len(), m, n)?;
    check("matmul_tn c", c.len(), k, n)?;
    if m != 1 || n == 0 {
        c.get_mut(..k * n).unwrap_or_default().fill(0.0); // checked above
        return matmul_tn_acc_rows(a, d, c, dims, rows);
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

/// Row `p` of `aᵀ · d` (with `a: inner×rows`, `d: inner×cols`) into `row` (`cols` floats),
/// overwritten: each `row[j] = 0.0 + a[0][p]·d[0][j] + a[1][p]·d[1][j] + …`, the same bits as
/// [`matmul_tn_acc`] onto a zeroed `c` (what the fused update uses instead of a gradient buffer).
pub fn outer_row(a: &[f32], d: &[f32], row: &mut [f32], p: usize, dims: Dims) {
    let Dims { rows: k, inner: m, cols: n } = dims; // as in `matmul_tn_acc_rows`
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

/// `c += d · bᵀ` with `d: rows×inner`, `b: cols×inner`, `c: rows×cols` (an input gradient
/// `dout·Wᵀ`, `rows` the batch). Each `c[i][p]` adds `d[i][j]·b[p][j]` for `j = 0, 1, …`.
pub fn matmul_nt_acc(d: &[f32], b: &[f32], c: &mut [f32], dims: Dims) -> Result<()> {
    matmul_nt_acc_rows(d, b, c, dims, Rows::Any)
}

/// [`matmul_nt_acc`] with a [`Rows`] hint (`dims.rows` is the batch).
// so that a constant hint picks one copy of the kernel at once
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn matmul_nt_acc_rows(d: &[f32], b: &[f32], c: &mut [f32], dims: Dims, rows: Rows) -> Result<()> {
    // `m` the batch, `n` the layer's outputs (the reduction), `k` its inputs, as in `dy·Wᵀ`.
    let Dims { rows: m, inner: n, cols: k } = dims;
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

// ----- the products with their output rows shared among a driver's workers ---------------
//
// Each takes the sequential kernel at once when the driver has one worker or the product is too
// small to share (`rows_per_chunk`); otherwise every chunk of whole output rows runs the same
// kernel on its rows. An output element is summed by one worker, term by term in the canonical
// order, so the bits do not depend on the driver (docs/DESIGN.md §7).

/// [`matmul_rows`] with the rows of `c` (the batch) shared among `par`'s workers, then `then`
/// on the rows just computed (the affine forward's bias): each worker finishes its own rows while
/// they are in its cache, and the element-wise `then` gives the same bits on any split.
#[cfg_attr(not(debug_assertions), inline(always))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul_par(
    par: &Par<'_>,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    dims: Dims,
    rows: Rows,
    then: impl Fn(&mut [f32]) + Sync,
) -> Result<()> {
    match rows_per_chunk(par, dims.rows, dims.inner.saturating_mul(dims.cols), blocked::MR) {
        None => {
            matmul_rows(a, b, c, dims, rows)?;
            then(c.get_mut(..dims.rows * dims.cols).unwrap_or_default()); // checked by matmul_rows
            Ok(())
        }
        Some(per) => matmul_split(par, per, a, b, c, dims, then),
    }
}

fn matmul_split(
    par: &Par<'_>,
    per: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    dims: Dims,
    then: impl Fn(&mut [f32]) + Sync,
) -> Result<()> {
    let Dims { rows: m, inner: k, cols: n } = dims;
    check("matmul a", a.len(), m, k)?;
    check("matmul b", b.len(), k, n)?;
    check("matmul c", c.len(), m, n)?;
    let c = c.get_mut(..m * n).unwrap_or_default(); // checked above
    par.for_each_chunk(c, per * n, |i, c| {
        let a = a.get(i * per * k..).unwrap_or_default();
        let part = Dims { rows: c.len() / n, inner: k, cols: n };
        // Cannot fail: the rows `i·per ..` of `a` and `c` are within the shapes checked above.
        let _ = matmul_rows(a, b, c, part, Rows::Any);
        then(c);
    });
    Ok(())
}

/// [`matmul_nt_acc_rows`] (`c += d·bᵀ`, an input gradient) with the rows of `c` (the batch)
/// shared among `par`'s workers.
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn matmul_nt_acc_par(
    par: &Par<'_>,
    d: &[f32],
    b: &[f32],
    c: &mut [f32],
    dims: Dims,
    rows: Rows,
) -> Result<()> {
    match rows_per_chunk(par, dims.rows, dims.inner.saturating_mul(dims.cols), blocked::MR) {
        None => matmul_nt_acc_rows(d, b, c, dims, rows),
        Some(per) => nt_acc_split(par, per, d, b, c, dims),
    }
}

fn nt_acc_split(par: &Par<'_>, per: usize, d: &[f32], b: &[f32], c: &mut [f32], dims: Dims) -> Result<()> {
    let Dims { rows: m, inner: n, cols: k } = dims;
    check("matmul_nt d", d.len(), m, n)?;
    check("matmul_nt b", b.len(), k, n)?;
    check("matmul_nt c", c.len(), m, k)?;
    let c = c.get_mut(..m * k).unwrap_or_default(); // checked above
    par.for_each_chunk(c, per * k, |i, c| {
        let d = d.get(i * per * n..).unwrap_or_default();
        // Cannot fail: as in `matmul_split`.
        let _ = matmul_nt_acc_rows(d, b, c, Dims { rows: c.len() / k, inner: n, cols: k }, Rows::Any);
    });
    Ok(())
}

/// [`matmul_tn_acc_rows`] (`c += aᵀ·d`, a weight gradient; `write`: [`matmul_tn_rows`], `c`
/// overwritten) with the rows of `c` (the layer's inputs) shared among `par`'s workers.
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn matmul_tn_par(
    par: &Par<'_>,
    a: &[f32],
    d: &[f32],
    c: &mut [f32],
    dims: Dims,
    rows: Rows,
    write: bool,
) -> Result<()> {
    // A multiple of the widest register tile: the long-reduction form tiles these rows as columns.
    match rows_per_chunk(par, dims.rows, dims.inner.saturating_mul(dims.cols), 8) {
        None if write => matmul_tn_rows(a, d, c, dims, rows),
        None => matmul_tn_acc_rows(a, d, c, dims, rows),
        Some(per) => tn_split(par, per, a, d, c, dims, write),
    }
}

fn tn_split(
    par: &Par<'_>,
    per: usize,
    a: &[f32],
    d: &[f32],
    c: &mut [f32],
    dims: Dims,
    write: bool,
) -> Result<()> {
    let Dims { rows: k, inner: m, cols: n } = dims;
    check("matmul_tn a", a.len(), m, k)?;
    check("matmul_tn d", d.len(), m, n)?;
    check("matmul_tn c", c.len(), k, n)?;
    let c = c.get_mut(..k * n).unwrap_or_default(); // checked above
    par.for_each_chunk(c, per * n, |i, c| {
        if write {
            // `0.0 + Σ…` from a zeroed row: the bits of `matmul_tn` (see there).
            c.fill(0.0);
        }
        // Columns `i·per ..` of `a`: still `m` rows of stride `k`, within the checked shape.
        let a = a.get(i * per..).unwrap_or_default();
        tn_acc(a, k, d, c, Dims { rows: c.len() / n.max(1), inner: m, cols: n }, Rows::Any);
    });
    Ok(())
}

/// True where the blocked driver runs (SIMD-capable hosts); elsewhere the plain loops.
const BLOCKED: bool = cfg!(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64"));

/// `c(i, j) += Σ_p a(i,p)·b(p,j)` over `p = 0, 1, …` for `i < m`, `j < n`; shapes checked.
/// `rows` is the caller's [`Rows`] hint: one function per hint (not generic, so each exists
/// once in a program), and a constant hint keeps one of them: a batch-1 firmware has no panel
/// kernel.
#[cfg_attr(not(debug_assertions), inline(always))]
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
#[cfg_attr(not(debug_assertions), inline(always))]
fn gemm(m: usize, n: usize, k: usize, a: View, b: View, mut c: Out, panel: bool) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    #[cfg(all(feature = "x86-simd", target_arch = "x86_64"))]
    if x86::gemm_acc(m, n, k, a, b, Out { data: &mut *c.data, rs: c.rs, cs: c.cs }) {
        return;
    }
    #[cfg(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64"))]
    blocked::<8, Exact>(m, n, k, a, b, c);
    #[cfg(not(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64")))]
    plain(m, n, k, a, b, c.data, panel);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::random_values;
    use std::vec;
    use std::vec::Vec;

    /// The definition: each output adds its terms one at a time, in increasing index order.
    pub(super) fn reference(
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

    pub(super) fn bits(x: &[f32]) -> Vec<u32> {
        x.iter().map(|v| v.to_bits()).collect()
    }

    /// Shapes `(m, k, n)` of the bit-identity tests, odd sizes included.
    pub(super) const SHAPES: [(usize, usize, usize); 18] = [
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
    fn matmul_tn_overwrite_equals_zeroed_accumulate() {
        for (m, k, n) in [(1, 1, 1), (1, 7, 33), (1, 196, 32), (1, 4, 10), (2, 5, 3), (8, 9, 17), (1, 3, 0)] {
            let mut a = random_values(m * k, 0.0, 1);
            let d = random_values(m * n, 0.0, 2);
            if let Some(x) = a.first_mut() {
                *x = -0.0; // products of −0: the sum from 0.0 turns them into +0
            }
            let mut want = std::vec![0.0f32; k * n];
            let dims = Dims { rows: k, inner: m, cols: n };
            matmul_tn_acc(&a, &d, &mut want, dims).unwrap();
            let mut got = std::vec![f32::NAN; k * n];
            matmul_tn(&a, &d, &mut got, dims).unwrap();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{m}×{k}×{n}");
        }
        assert!(matmul_tn(&[1.0], &[1.0, 2.0], &mut [0.0; 1], Dims { rows: 1, inner: 1, cols: 2 }).is_err());
    }

    #[test]
    fn blocked_matmul_matches_the_definition_bit_for_bit() {
        for (s, &(m, k, n)) in SHAPES.iter().enumerate() {
            let a = random_values(m * k, 0.0, s as u64);
            let b = random_values(k * n, 0.0, 100 + s as u64);
            let mut want = vec![0.0; m * n];
            reference(m, n, k, &|i, p| a[i * k + p], &|p, j| b[p * n + j], &mut want);
            let mut got = vec![f32::NAN; m * n];
            matmul(&a, &b, &mut got, Dims { rows: m, inner: k, cols: n }).unwrap();
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
            matmul_tn_acc(&a, &d, &mut got, Dims { rows: k, inner: m, cols: n }).unwrap();
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
            matmul_nt_acc(&d, &b, &mut got, Dims { rows: m, inner: n, cols: k }).unwrap();
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
    fn short_buffers_are_errors_not_panics() {
        let mut c = [0.0; 4];
        let two = Dims { rows: 2, inner: 2, cols: 2 };
        assert!(matches!(matmul(&[0.0; 3], &[0.0; 4], &mut c, two), Err(Error::Shape { .. })));
        assert!(matches!(matmul_tn_acc(&[0.0; 4], &[0.0; 4], &mut c[..3], two), Err(Error::Shape { .. })));
        assert!(matches!(matmul_nt_acc(&[0.0; 4], &[0.0; 3], &mut c, two), Err(Error::Shape { .. })));
        let huge = Dims { rows: usize::MAX, inner: 2, cols: 2 };
        assert!(matches!(matmul(&[], &[], &mut [], huge), Err(Error::Shape { .. })));
        assert_eq!(matmul(&[], &[], &mut [], Dims { rows: 0, inner: 0, cols: 0 }), Ok(()));
    }
}
