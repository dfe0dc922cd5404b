//! x86-64 kernels chosen at run time (cargo feature `x86-simd`): with `arm.rs`, the only `unsafe`
//! in the crate.
//!
//! * [`Kernels::Avx2`]: the portable blocked driver compiled for AVX2 (8-lane registers, tile
//!   4×16). Same code, same canonical order, no FMA: bit-identical to the portable kernels.
//! * [`Kernels::Avx2Fma`]: the same driver with an FMA inner loop written in intrinsics. One
//!   rounding per step instead of two, so results differ from the portable ones in the last
//!   bits (tested within a tolerance below). Opt-in: the fast mode.
//! * [`Kernels::Avx512`] / [`Kernels::Avx512Fma`]: a driver of their own with 16×16 register
//!   tiles whose `a` operand is broadcast inside the multiply (see the section's comment for
//!   why that matters on Zen 4), `b` packed per 16-column block into an aligned, zero-padded
//!   panel, and masked loads/stores for the edge columns so a 100- or 50-wide layer does not
//!   round up to whole tiles in `c` (an edge of at most 8 columns uses 8-lane registers, which
//!   cost half the pipe time; AVX-512VL masks). The exact one is `vmulps` then `vaddps`, per
//!   output in the canonical order: bit-identical to the portable kernels (tested on many
//!   shapes below); the other `vfmadd231ps`.
//!
//! The CPU is asked with `cpuid`/`xgetbv` (no `std` needed) before a family is accepted (for
//! AVX-512 also whether the OS saves the opmask and ZMM state, XCR0 bits 5–7), and the choice is
//! kept in one atomic, so a kernel that needs AVX2 or AVX-512 can only run on a CPU that has it.

use super::Kernels;
use super::blocked::{Exact, MR, Micro, blocked};
use super::{Out, View};
use core::arch::x86_64::{
    __cpuid, __cpuid_count, __m256, _mm256_add_ps, _mm256_fmadd_ps, _mm256_load_ps, _mm256_loadu_ps,
    _mm256_mask_storeu_ps, _mm256_maskz_loadu_ps, _mm256_mul_ps, _mm256_set1_ps, _mm256_storeu_ps,
    _mm512_add_ps, _mm512_fmadd_ps, _mm512_load_ps, _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps,
    _mm512_mul_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_store_ps, _xgetbv, CpuidResult,
};
use core::sync::atomic::{AtomicU8, Ordering};

const PORTABLE: u8 = 0;
const AVX2: u8 = 1;
const AVX2_FMA: u8 = 2;
const AVX512: u8 = 3;
const AVX512_FMA: u8 = 4;

/// The family in force; written only by [`select`] after the CPU check.
static SELECTED: AtomicU8 = AtomicU8::new(PORTABLE);

struct Features {
    avx2: bool,
    fma: bool,
    avx512: bool,
}

fn cpuid(leaf: u32, sub: u32) -> CpuidResult {
    // SAFETY: `cpuid` exists on every x86-64 CPU and only reads identification registers.
    #[allow(unused_unsafe)]
    unsafe {
        if sub == 0 { __cpuid(leaf) } else { __cpuid_count(leaf, sub) }
    }
}

#[target_feature(enable = "xsave")]
fn xcr0() -> u64 {
    // SAFETY: only called after cpuid reported OSXSAVE, so `xgetbv` is enabled by the OS.
    #[allow(unused_unsafe)]
    unsafe {
        _xgetbv(0)
    }
}

fn features() -> Features {
    let none = Features { avx2: false, fma: false, avx512: false };
    if cpuid(0, 0).eax < 7 {
        return none;
    }
    let l1 = cpuid(1, 0);
    let (osxsave, avx, fma) = (l1.ecx & (1 << 27) != 0, l1.ecx & (1 << 28) != 0, l1.ecx & (1 << 12) != 0);
    if !(osxsave && avx) {
        return none;
    }
    // SAFETY: OSXSAVE is set, so the OS has enabled `xgetbv`; `xsave` is implied by OSXSAVE.
    let xcr = unsafe { xcr0() };
    if xcr & 0b110 != 0b110 {
        return none; // the OS does not save the YMM registers
    }
    let l7 = cpuid(7, 0).ebx;
    let avx2 = l7 & (1 << 5) != 0;
    // AVX-512F and VL (leaf 7 EBX bits 16, 31: masked 8-lane edge tiles), and the OS saves the
    // opmask and both halves of the ZMM registers (XCR0 bits 5, 6, 7). Every AVX-512 CPU has
    // AVX2 and FMA; required anyway, since the AVX-512 families fall back to the AVX2 ones for
    // layouts their driver does not take.
    let avx512 = l7 & (1 << 16) != 0 && l7 & (1 << 31) != 0 && xcr & 0xe0 == 0xe0 && avx2 && fma;
    Features { avx2, fma: avx2 && fma, avx512 }
}

pub(super) fn select(k: Kernels) -> Kernels {
    let f = features();
    let (chosen, code) = match k {
        Kernels::Avx2 if f.avx2 => (Kernels::Avx2, AVX2),
        Kernels::Avx2Fma if f.fma => (Kernels::Avx2Fma, AVX2_FMA),
        Kernels::Avx512 if f.avx512 => (Kernels::Avx512, AVX512),
        Kernels::Avx512Fma if f.avx512 => (Kernels::Avx512Fma, AVX512_FMA),
        _ => (Kernels::Portable, PORTABLE),
    };
    SELECTED.store(code, Ordering::Relaxed);
    chosen
}

pub(super) fn selected() -> Kernels {
    match SELECTED.load(Ordering::Relaxed) {
        AVX2 => Kernels::Avx2,
        AVX2_FMA => Kernels::Avx2Fma,
        AVX512 => Kernels::Avx512,
        AVX512_FMA => Kernels::Avx512Fma,
        _ => Kernels::Portable,
    }
}

/// Runs the product with the selected family; false means "portable, do it yourself".
pub(super) fn gemm_acc(m: usize, n: usize, k: usize, a: View, b: View, c: Out) -> bool {
    match SELECTED.load(Ordering::Relaxed) {
        // SAFETY: SELECTED holds AVX2 only if `features()` found AVX2 enabled by CPU and OS.
        AVX2 => unsafe { gemm_avx2(m, n, k, a, b, c) },
        // SAFETY: SELECTED holds AVX2_FMA only if `features()` found AVX2 and FMA.
        AVX2_FMA => unsafe { gemm_avx2_fma(m, n, k, a, b, c) },
        AVX512 => {
            let c2 = Out { data: &mut *c.data, rs: c.rs, cs: c.cs };
            // SAFETY: SELECTED holds AVX512 only if `features()` found AVX-512F enabled by CPU and
            // OS, and AVX2 (the fallback for layouts the AVX-512 driver declines).
            if !unsafe { gemm_avx512::<false>(m, n, k, a, b, c2) } {
                // SAFETY: as above.
                unsafe { gemm_avx2(m, n, k, a, b, c) }
            }
        }
        AVX512_FMA => {
            let c2 = Out { data: &mut *c.data, rs: c.rs, cs: c.cs };
            // SAFETY: as above; AVX512_FMA also implies AVX2 and FMA.
            if !unsafe { gemm_avx512::<true>(m, n, k, a, b, c2) } {
                // SAFETY: as above.
                unsafe { gemm_avx2_fma(m, n, k, a, b, c) }
            }
        }
        _ => return false,
    }
    true
}

/// The portable driver and inner loop, compiled with AVX2 enabled (LLVM uses 8-lane registers).
#[target_feature(enable = "avx2")]
fn gemm_avx2(m: usize, n: usize, k: usize, a: View, b: View, c: Out) {
    blocked::<16, Exact>(m, n, k, a, b, c)
}

#[target_feature(enable = "avx2,fma")]
fn gemm_avx2_fma(m: usize, n: usize, k: usize, a: View, b: View, c: Out) {
    blocked::<16, Fma>(m, n, k, a, b, c)
}

/// Fused multiply-add inner loop: a 4×16 tile in eight 8-lane registers.
struct Fma;

impl Micro<16> for Fma {
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn rows(acc: &mut [[f32; 16]; MR], rows: [&[f32]; MR], panel: &[[f32; 16]]) {
        // SAFETY: only reached from `gemm_avx2_fma`, which runs only when AVX2 and FMA exist.
        unsafe { fma_rows(acc, rows, panel) }
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    fn cols(acc: &mut [[f32; 16]; MR], a: &[f32], stride: usize, panel: &[[f32; 16]]) {
        // SAFETY: as above.
        unsafe { fma_cols(acc, a, stride, panel) }
    }
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn load(acc: &[[f32; 16]; MR]) -> [[__m256; 2]; MR] {
    // SAFETY: each row is 16 contiguous f32; the two unaligned loads read [0, 8) and [8, 16).
    core::array::from_fn(|r| unsafe {
        [_mm256_loadu_ps(acc[r].as_ptr()), _mm256_loadu_ps(acc[r].as_ptr().add(8))]
    })
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn store(t: [[__m256; 2]; MR], acc: &mut [[f32; 16]; MR]) {
    for (row, v) in acc.iter_mut().zip(t) {
        // SAFETY: each row is 16 contiguous f32; the stores write [0, 8) and [8, 16).
        unsafe {
            _mm256_storeu_ps(row.as_mut_ptr(), v[0]);
            _mm256_storeu_ps(row.as_mut_ptr().add(8), v[1]);
        }
    }
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn step(t: &mut [[__m256; 2]; MR], x: [f32; MR], bv: &[f32; 16]) {
    // SAFETY: `bv` is 16 contiguous f32; the loads read [0, 8) and [8, 16).
    let (b0, b1) = unsafe { (_mm256_loadu_ps(bv.as_ptr()), _mm256_loadu_ps(bv.as_ptr().add(8))) };
    for (tr, &xr) in t.iter_mut().zip(&x) {
        let a = _mm256_set1_ps(xr);
        tr[0] = _mm256_fmadd_ps(a, b0, tr[0]);
        tr[1] = _mm256_fmadd_ps(a, b1, tr[1]);
    }
}

#[target_feature(enable = "avx2,fma")]
fn fma_rows(acc: &mut [[f32; 16]; MR], rows: [&[f32]; MR], panel: &[[f32; 16]]) {
    let mut t = load(acc);
    let [r0, r1, r2, r3] = rows;
    for ((((bv, &x0), &x1), &x2), &x3) in panel.iter().zip(r0).zip(r1).zip(r2).zip(r3) {
        step(&mut t, [x0, x1, x2, x3], bv);
    }
    store(t, acc);
}

#[target_feature(enable = "avx2,fma")]
fn fma_cols(acc: &mut [[f32; 16]; MR], a: &[f32], stride: usize, panel: &[[f32; 16]]) {
    let mut t = load(acc);
    for (bv, chunk) in panel.iter().zip(a.chunks(stride)) {
        let Some(&x) = chunk.first_chunk::<MR>() else { break };
        step(&mut t, x, bv);
    }
    store(t, acc);
}

/// [`super::map`] compiled for the selected family's instruction set; false for the portable one.
#[cfg_attr(not(debug_assertions), inline(always))]
pub(super) fn map(x: &[f32], out: &mut [f32], f: &impl Fn(f32) -> f32) -> bool {
    match SELECTED.load(Ordering::Relaxed) {
        // SAFETY: SELECTED holds an AVX-512 family only if `features()` found AVX-512F.
        AVX512 | AVX512_FMA => unsafe { map_avx512(x, out, f) },
        // SAFETY: SELECTED holds an AVX2 family only if `features()` found AVX2.
        AVX2 | AVX2_FMA => unsafe { map_avx2(x, out, f) },
        _ => return false,
    }
    true
}

/// [`super::map_in_place`] compiled for the selected family's instruction set.
#[cfg_attr(not(debug_assertions), inline(always))]
pub(super) fn map_in_place(v: &mut [f32], f: &impl Fn(f32) -> f32) -> bool {
    match SELECTED.load(Ordering::Relaxed) {
        // SAFETY: as in `map`.
        AVX512 | AVX512_FMA => unsafe { map_in_place_avx512(v, f) },
        // SAFETY: as in `map`.
        AVX2 | AVX2_FMA => unsafe { map_in_place_avx2(v, f) },
        _ => return false,
    }
    true
}

/// [`super::map_acc3`] compiled for the selected family's instruction set.
#[cfg_attr(not(debug_assertions), inline(always))]
pub(super) fn map_acc3(
    x: &[f32],
    y: &[f32],
    dy: &[f32],
    d: &mut [f32],
    df: &impl Fn(f32, f32, f32) -> f32,
) -> bool {
    match SELECTED.load(Ordering::Relaxed) {
        // SAFETY: as in `map`.
        AVX512 | AVX512_FMA => unsafe { map_acc3_avx512(x, y, dy, d, df) },
        // SAFETY: as in `map`.
        AVX2 | AVX2_FMA => unsafe { map_acc3_avx2(x, y, dy, d, df) },
        _ => return false,
    }
    true
}

// The plain loops, compiled with more registers: LLVM vectorises the (inlined) element function
// across elements with the same IEEE operations, so the same bits.
#[target_feature(enable = "avx512f")]
fn map_avx512(x: &[f32], out: &mut [f32], f: &impl Fn(f32) -> f32) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = f(v);
    }
}

#[target_feature(enable = "avx512f")]
fn map_in_place_avx512(v: &mut [f32], f: &impl Fn(f32) -> f32) {
    for o in v.iter_mut() {
        *o = f(*o);
    }
}

#[target_feature(enable = "avx2")]
fn map_in_place_avx2(v: &mut [f32], f: &impl Fn(f32) -> f32) {
    for o in v.iter_mut() {
        *o = f(*o);
    }
}

#[target_feature(enable = "avx2")]
fn map_avx2(x: &[f32], out: &mut [f32], f: &impl Fn(f32) -> f32) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = f(v);
    }
}

#[target_feature(enable = "avx512f")]
fn map_acc3_avx512(x: &[f32], y: &[f32], dy: &[f32], d: &mut [f32], df: &impl Fn(f32, f32, f32) -> f32) {
    for (((o, &x), &y), &dy) in d.iter_mut().zip(x).zip(y).zip(dy) {
        *o += df(x, y, dy);
    }
}

#[target_feature(enable = "avx2")]
fn map_acc3_avx2(x: &[f32], y: &[f32], dy: &[f32], d: &mut [f32], df: &impl Fn(f32, f32, f32) -> f32) {
    for (((o, &x), &y), &dy) in d.iter_mut().zip(x).zip(y).zip(dy) {
        *o += df(x, y, dy);
    }
}

// ---------------------------------------------------------------------------------------------
// AVX-512: its own driver (masked edge columns need no padding lanes in `c`), same canonical
// order per output element as the portable kernels.
//
// The tile is 16 rows × one 16-lane register. Each step multiplies the panel row by `a(r, p)`
// taken straight from memory with an embedded broadcast (`vmulps zmm, zmm, [a]{1to16}`, or
// `vfmadd231ps` with the same operand): LLVM folds the broadcast into the multiply when each
// value is used once. Wider tiles (6×64, 8×32) would reuse a broadcast register instead, and a
// register broadcast of a zmm occupies a vector pipe on Zen 4 — the pipes the exact kernel's
// `vaddps` need. With folded broadcasts the exact kernel keeps up with the FMA kernel
// (measurements: docs/PERFORMANCE.md).
// ---------------------------------------------------------------------------------------------

/// Rows of an AVX-512 register tile (edge tiles use 8, 4, 2 or 1).
const MR512: usize = 16;
/// Reduction steps per packed panel (`KC512 × 16` floats = 16 KiB, half the L1 data cache).
const KC512: usize = 256;

/// A packed block of `b`: row `p` holds `b(p0 + p, j0 .. j0 + 16)`, zero past the edge.
#[repr(C, align(64))]
struct Panel([[f32; 16]; KC512]);

/// True if every `(r, c)` with `r < rows`, `c < cols` of a view with strides `rs`, `cs` lies
/// inside `len` floats (the AVX-512 driver checks this before it reads with raw pointers).
fn fits(len: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    let hi = (rows - 1).checked_mul(rs).zip((cols - 1).checked_mul(cs));
    matches!(hi.and_then(|(x, y)| x.checked_add(y)), Some(h) if h < len)
}

/// `c(i, j) += Σ_p a(i,p)·b(p,j)`, `p` upwards, with 16-lane registers. `FMA = false` rounds the
/// product and then the sum (`vmulps`, `vaddps`): the portable kernels' bits. `FMA = true` uses
/// `vfmadd231ps`. Returns false (nothing done) for layouts it does not handle: neither operand
/// of `a` nor `c` contiguous along one axis, or views too short (never from the public kernels).
#[target_feature(enable = "avx512f,avx512vl,fma")]
fn gemm_avx512<const FMA: bool>(m: usize, n: usize, k: usize, a: View, b: View, c: Out) -> bool {
    if m == 0 || n == 0 || k == 0 {
        return true;
    }
    // Make rows of `c` contiguous: `cᵀ = bᵀ·aᵀ` has the same terms in the same order.
    let (m, n, a, b, c) = if c.cs == 1 {
        (m, n, a, b, c)
    } else if c.rs == 1 {
        let at = View { data: b.data, rs: b.cs, cs: b.rs };
        let bt = View { data: a.data, rs: a.cs, cs: a.rs };
        (n, m, at, bt, Out { data: c.data, rs: c.cs, cs: 1 })
    } else {
        return false;
    };
    if !(a.cs == 1 || a.rs == 1)
        || !fits(a.data.len(), m, k, a.rs, a.cs)
        || !fits(b.data.len(), k, n, b.rs, b.cs)
        || !fits(c.data.len(), m, n, c.rs, 1)
    {
        return false;
    }
    let mut panel = core::mem::MaybeUninit::<Panel>::uninit();
    let pp = panel.as_mut_ptr().cast::<f32>();
    let mut j0 = 0;
    while j0 < n {
        let nr = 16.min(n - j0);
        let mask = if nr == 16 { 0xffff } else { (1u16 << nr) - 1 };
        let mut p0 = 0;
        while p0 < k {
            let kc = KC512.min(k - p0);
            // SAFETY: `fits` above: rows `p0..p0+kc` < k and columns `j0..j0+nr` < n of `b` are
            // inside `b.data`; the panel holds KC512 ≥ kc rows of 16 floats; `mask` has `nr` lanes.
            unsafe { pack(pp, b, p0, kc, j0, nr, mask) };
            let mut i0 = 0;
            while i0 < m {
                let rest = m - i0;
                let mr = [MR512, 8, 4, 2, 1].into_iter().find(|&r| r <= rest).unwrap_or(1);
                // SAFETY: rows `i0..i0+mr` < m, steps `p0..p0+kc` < k of `a` and the tile's
                // outputs (rows `i0..i0+mr`, columns `j0..j0+nr`, `c.cs == 1`) are inside their
                // slices (`fits` above), and `c` is borrowed mutably, so nothing else reads it;
                // the panel rows `< kc` were written by `pack`; `mask` covers exactly `nr` lanes.
                unsafe {
                    let cp = c.data.as_mut_ptr().add(i0 * c.rs + j0);
                    let t = Tile { kc, pp, cp, c_rs: c.rs, mask };
                    // An edge of at most 8 columns (100 = 6·16 + 4, 50 = 3·16 + 2, 10) in 8-lane
                    // registers: half the pipe time of a 16-lane operation on Zen 4.
                    match (a.cs == 1, nr <= 8) {
                        (true, false) => {
                            by_rows::<FMA, false, false>(mr, a.data.as_ptr().add(i0 * a.rs + p0), a.rs, t)
                        }
                        (true, true) => {
                            by_rows::<FMA, false, true>(mr, a.data.as_ptr().add(i0 * a.rs + p0), a.rs, t)
                        }
                        (false, false) => {
                            by_rows::<FMA, true, false>(mr, a.data.as_ptr().add(p0 * a.cs + i0), a.cs, t)
                        }
                        (false, true) => {
                            by_rows::<FMA, true, true>(mr, a.data.as_ptr().add(p0 * a.cs + i0), a.cs, t)
                        }
                    }
                };
                i0 += mr;
            }
            p0 += kc;
        }
        j0 += nr;
    }
    true
}

/// Writes rows `0..kc` of the panel at `pp` (16 floats each, 64-byte aligned) with
/// `b(p0 + p, j0 + j)` for `j < nr` and zeros after.
/// # Safety
/// AVX-512F present; every `b(p0 + p, j0 + j)` with `p < kc`, `j < nr` inside `b.data`;
/// `pp` valid for `KC512·16` floats, 64-byte aligned; `kc ≤ KC512`, `nr ≤ 16`; `mask` covers
/// exactly the lanes `j < nr`.
#[inline]
#[target_feature(enable = "avx512f,avx512vl,fma")]
unsafe fn pack(pp: *mut f32, b: View, p0: usize, kc: usize, j0: usize, nr: usize, mask: u16) {
    let src = b.data.as_ptr();
    // SAFETY: the caller's contract; masked loads touch only the `nr` lanes inside `b.data`.
    unsafe {
        if b.cs == 1 {
            for p in 0..kc {
                let v = _mm512_maskz_loadu_ps(mask, src.add((p0 + p) * b.rs + j0));
                _mm512_store_ps(pp.add(p * 16), v);
            }
        } else {
            for p in 0..kc {
                _mm512_store_ps(pp.add(p * 16), _mm512_setzero_ps());
            }
            // Column by column: `b` is then read along its contiguous axis (`dy·Wᵀ`).
            for j in 0..nr {
                let s = src.add((j0 + j) * b.cs + p0 * b.rs);
                for p in 0..kc {
                    *pp.add(p * 16 + j) = *s.add(p * b.rs);
                }
            }
        }
    }
}

/// What a register tile needs besides `a`: `kc` steps of the panel at `pp`, outputs at `cp`
/// (rows `c_rs` apart), lanes `mask`.
#[derive(Clone, Copy)]
struct Tile {
    kc: usize,
    pp: *const f32,
    cp: *mut f32,
    c_rs: usize,
    mask: u16,
}

/// Runs the tile instantiation for `mr` rows (`MR512`, 8, 4, 2 or 1), 16 lanes or (`NARROW`,
/// for at most 8 columns) 8.
/// # Safety
/// As [`tile`] / [`tile_narrow`].
#[cfg_attr(not(debug_assertions), inline(always))]
unsafe fn by_rows<const FMA: bool, const COLS: bool, const NARROW: bool>(
    mr: usize,
    ap: *const f32,
    stride: usize,
    t: Tile,
) {
    macro_rules! go {
        ($mr:expr) => {
            if NARROW {
                tile_narrow::<{ $mr }, FMA, COLS>(ap, stride, t)
            } else {
                tile::<{ $mr }, FMA, COLS>(ap, stride, t)
            }
        };
    }
    // SAFETY: the caller's contract.
    unsafe {
        match mr {
            MR512 => go!(MR512),
            8 => go!(8),
            4 => go!(4),
            2 => go!(2),
            _ => go!(1),
        }
    }
}

/// [`tile`] for at most 8 columns, in 8-lane registers (AVX-512VL masks); the lanes of
/// `t.mask` above 8 must be clear.
/// # Safety
/// As [`tile`], and AVX-512VL and FMA present.
#[cfg_attr(not(debug_assertions), inline(always))]
unsafe fn tile_narrow<const MR: usize, const FMA: bool, const COLS: bool>(
    ap: *const f32,
    stride: usize,
    t: Tile,
) {
    let mask = t.mask as u8;
    // SAFETY: the caller's contract (AVX-512F/VL and FMA are enabled in every caller by
    // `target_feature`); the panel rows are 64-byte aligned, so their first 8 floats are too.
    unsafe {
        let mut acc = [_mm256_set1_ps(0.0); MR];
        for (r, x) in acc.iter_mut().enumerate() {
            *x = _mm256_maskz_loadu_ps(mask, t.cp.add(r * t.c_rs));
        }
        for p in 0..t.kc {
            let bv = _mm256_load_ps(t.pp.add(p * 16));
            for (r, o) in acc.iter_mut().enumerate() {
                let x = if COLS { *ap.add(p * stride + r) } else { *ap.add(r * stride + p) };
                let xv = _mm256_set1_ps(x);
                *o = if FMA { _mm256_fmadd_ps(xv, bv, *o) } else { _mm256_add_ps(*o, _mm256_mul_ps(xv, bv)) };
            }
        }
        for (r, &x) in acc.iter().enumerate() {
            _mm256_mask_storeu_ps(t.cp.add(r * t.c_rs), mask, x);
        }
    }
}

/// One register tile of `MR × 16` outputs: loaded (masked), advanced through `t.kc` reduction
/// steps in order, stored (masked). `a(r, p)` is at `ap[r·stride + p]` (rows of `a` contiguous)
/// or, with `COLS`, at `ap[p·stride + r]`; `b(p, ·)` is panel row `p`.
/// # Safety
/// AVX-512F present; every `a(r, p)` with `r < MR`, `p < t.kc` readable; panel rows `< t.kc`
/// written (64-byte aligned, 16 floats each); `t.cp[r·t.c_rs + j]` writable for `r < MR` and
/// every lane `j` set in `t.mask`.
#[cfg_attr(not(debug_assertions), inline(always))]
unsafe fn tile<const MR: usize, const FMA: bool, const COLS: bool>(ap: *const f32, stride: usize, t: Tile) {
    // SAFETY: the caller's contract (AVX-512F is enabled in every caller by `target_feature`).
    unsafe {
        let mut acc = [_mm512_setzero_ps(); MR];
        for (r, x) in acc.iter_mut().enumerate() {
            *x = _mm512_maskz_loadu_ps(t.mask, t.cp.add(r * t.c_rs));
        }
        for p in 0..t.kc {
            let bv = _mm512_load_ps(t.pp.add(p * 16));
            for (r, o) in acc.iter_mut().enumerate() {
                let x = if COLS { *ap.add(p * stride + r) } else { *ap.add(r * stride + p) };
                let xv = _mm512_set1_ps(x);
                *o = if FMA { _mm512_fmadd_ps(xv, bv, *o) } else { _mm512_add_ps(*o, _mm512_mul_ps(xv, bv)) };
            }
        }
        for (r, &x) in acc.iter().enumerate() {
            _mm512_mask_storeu_ps(t.cp.add(r * t.c_rs), t.mask, x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::random_values;
    use std::vec;
    use std::vec::Vec;

    /// One product through the family `code` (the callers check `features()` first).
    fn run_family(code: u8, m: usize, n: usize, k: usize, a: View, b: View, c: Out) {
        match code {
            // SAFETY: the callers only pass a family after checking `features()` for it.
            AVX2 => unsafe { gemm_avx2(m, n, k, a, b, c) },
            // SAFETY: as above.
            AVX2_FMA => unsafe { gemm_avx2_fma(m, n, k, a, b, c) },
            // SAFETY: as above. The driver must take every layout the public kernels produce.
            AVX512 => assert!(unsafe { gemm_avx512::<false>(m, n, k, a, b, c) }),
            // SAFETY: as above.
            AVX512_FMA => assert!(unsafe { gemm_avx512::<true>(m, n, k, a, b, c) }),
            _ => blocked::<8, Exact>(m, n, k, a, b, c),
        }
    }

    /// The three products of one shape through the family `code` (called directly, so these
    /// tests never switch the global choice under the other tests' feet).
    fn all_products(code: u8, m: usize, k: usize, n: usize, seed: u64) -> Vec<f32> {
        let run = |mm, nn, kk, a: View, b: View, c: &mut [f32]| {
            let c = Out { data: c, rs: nn, cs: 1 };
            run_family(code, mm, nn, kk, a, b, c)
        };
        let a = random_values(m * k, 0.0, seed);
        let b = random_values(k * n, 0.0, seed + 1);
        let d = random_values(m * n, 0.0, seed + 2);
        let mut out = vec![0.0; m * n];
        run(m, n, k, View { data: &a, rs: k, cs: 1 }, View { data: &b, rs: n, cs: 1 }, &mut out);
        let mut dw = random_values(k * n, 0.0, seed + 3);
        run(k, n, m, View { data: &a, rs: 1, cs: k }, View { data: &d, rs: n, cs: 1 }, &mut dw);
        let mut dwt = random_values(k * n, 0.0, seed + 5); // the transposed form of dW
        let ct = Out { data: &mut dwt, rs: 1, cs: n };
        run_family(code, n, k, m, View { data: &d, rs: 1, cs: n }, View { data: &a, rs: k, cs: 1 }, ct);
        let mut dx = random_values(m * k, 0.0, seed + 4);
        run(m, k, n, View { data: &d, rs: n, cs: 1 }, View { data: &b, rs: 1, cs: n }, &mut dx);
        out.extend(dw);
        out.extend(dwt);
        out.extend(dx);
        out
    }

    const SHAPES: [(usize, usize, usize); 8] = [
        (1, 1, 1),
        (3, 5, 7),
        (8, 4, 16),
        (13, 40, 33),
        (17, 300, 9),
        (128, 100, 10),
        (100, 784, 50),
        (5, 33, 300),
    ];

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn avx2_is_bit_identical_to_portable() {
        if !features().avx2 {
            return;
        }
        for (s, &(m, k, n)) in SHAPES.iter().enumerate() {
            let want = all_products(PORTABLE, m, k, n, 10 * s as u64);
            let got = all_products(AVX2, m, k, n, 10 * s as u64);
            assert_eq!(bits(&got), bits(&want), "{m}x{k}x{n}");
        }
    }

    /// Random shapes for the AVX-512 driver: every tile height (8, 4, 2, 1 and their sums),
    /// one- and two-register column tiles with every edge width, reductions across the panel
    /// length, plus the workloads' widths (784, 100, 50, 10, 1).
    fn random_shapes() -> Vec<(usize, usize, usize)> {
        let mut rng = <rand_xoshiro::Xoshiro128PlusPlus as rand_core::SeedableRng>::seed_from_u64(8);
        let mut next = |hi: u32| (rand_core::Rng::next_u32(&mut rng) % hi) as usize + 1;
        let mut shapes: Vec<_> = (0..60).map(|_| (next(40), next(300), next(70))).collect();
        shapes.extend((0..8).map(|_| (next(20), next(600), next(40))));
        let sizes = [1, 10, 50, 100, 784];
        for &m in &[1usize, 10, 100, 128] {
            for &k in &sizes {
                for &n in &sizes {
                    if m * k * n <= 128 * 784 * 100 && !(k == 784 && n == 784) {
                        shapes.push((m, k, n));
                    }
                }
            }
        }
        shapes
    }

    #[test]
    fn avx512_is_bit_identical_to_portable() {
        if !features().avx512 {
            return;
        }
        for (s, &(m, k, n)) in random_shapes().iter().enumerate() {
            let want = all_products(PORTABLE, m, k, n, 1000 + 10 * s as u64);
            let got = all_products(AVX512, m, k, n, 1000 + 10 * s as u64);
            assert_eq!(bits(&got), bits(&want), "{m}x{k}x{n}");
        }
    }

    #[test]
    fn avx512_declines_views_too_short() {
        if !features().avx512 {
            return;
        }
        // 2×3 · 3×2, all row-major.
        let (a, b, mut c) = ([1.0f32; 6], [1.0f32; 6], [0.0f32; 4]);
        let av = |len| View { data: &a[..len], rs: 3, cs: 1 };
        let bv = |len| View { data: &b[..len], rs: 2, cs: 1 };
        for (al, bl, cl) in [(5, 6, 4), (6, 5, 4), (6, 6, 3)] {
            let out = Out { data: &mut c[..cl], rs: 2, cs: 1 };
            // SAFETY: AVX-512F checked above.
            assert!(!unsafe { gemm_avx512::<false>(2, 2, 3, av(al), bv(bl), out) });
        }
        assert_eq!(c, [0.0; 4]);
        let out = Out { data: &mut c, rs: 2, cs: 1 };
        // SAFETY: as above.
        assert!(unsafe { gemm_avx512::<false>(2, 2, 3, av(6), bv(6), out) });
        assert_eq!(c, [3.0; 4]);
    }

    #[test]
    fn fma_agrees_with_portable_within_rounding() {
        for code in [AVX2_FMA, AVX512_FMA] {
            if (code == AVX2_FMA && features().fma) || (code == AVX512_FMA && features().avx512) {
                fma_within_rounding(code);
            }
        }
    }

    fn fma_within_rounding(code: u8) {
        let mut differs = false;
        let shapes = if code == AVX512_FMA { random_shapes() } else { SHAPES.to_vec() };
        for (s, &(m, k, n)) in shapes.iter().enumerate() {
            let want = all_products(PORTABLE, m, k, n, 10 * s as u64);
            let got = all_products(code, m, k, n, 10 * s as u64);
            differs |= bits(&got) != bits(&want);
            // One rounding less per step: the gap grows at most linearly with the reduction
            // length; terms are below 4 in magnitude.
            let len = k.max(m).max(n) as f32;
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= 4.0 * len * f32::EPSILON * (4.0 + w.abs()),
                    "{m}x{k}x{n} [{i}]: {g} vs {w}"
                );
            }
        }
        assert!(differs, "the FMA kernels should round differently somewhere");
    }

    /// The element-wise loops compiled for AVX2 / AVX-512 give the portable loop's bits:
    /// sigmoid (the branchless `expf`) over a sweep of all exponents and both signs, and the
    /// backward forms.
    #[test]
    fn wide_maps_are_bit_identical() {
        let sig = |x: f32| 1.0 / (1.0 + crate::kernels::expf(-x));
        let relu = |x: f32| if x <= 0.0 { 0.0 } else { x };
        let x: Vec<f32> = (0..u32::MAX / 4093).map(|i| f32::from_bits(i.wrapping_mul(4093))).collect();
        let y = random_values(x.len(), 0.0, 77);
        let dy = random_values(x.len(), 0.0, 78);
        let start = random_values(x.len(), 0.0, 79);
        let same = |a: &[f32], b: &[f32]| {
            a.iter().zip(b).all(|(p, q)| p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()))
        };
        let mut want = vec![0.0; x.len()];
        for (o, &v) in want.iter_mut().zip(&x) {
            *o = sig(v);
        }
        let mut want_relu = want.clone();
        for (o, &v) in want_relu.iter_mut().zip(&x) {
            *o = relu(v);
        }
        let bwd = |x: f32, y: f32, dy: f32| (dy * (1.0 - y)) * y + if x <= 0.0 { 0.0 } else { dy };
        let mut want_b = start.clone();
        for (((o, &x), &y), &dy) in want_b.iter_mut().zip(&x).zip(&y).zip(&dy) {
            *o += bwd(x, y, dy);
        }
        let mut got = vec![0.0; x.len()];
        if features().avx2 {
            // SAFETY: AVX2 checked.
            unsafe { map_avx2(&x, &mut got, &sig) };
            assert!(same(&got, &want), "avx2 sigmoid");
            // SAFETY: as above.
            unsafe { map_avx2(&x, &mut got, &relu) };
            assert!(same(&got, &want_relu), "avx2 relu");
            let mut v = x.clone();
            // SAFETY: as above.
            unsafe { map_in_place_avx2(&mut v, &sig) };
            assert!(same(&v, &want), "avx2 sigmoid in place");
            let mut b = start.clone();
            // SAFETY: as above.
            unsafe { map_acc3_avx2(&x, &y, &dy, &mut b, &bwd) };
            assert!(same(&b, &want_b), "avx2 backward");
        }
        if features().avx512 {
            // SAFETY: AVX-512F checked.
            unsafe { map_avx512(&x, &mut got, &sig) };
            assert!(same(&got, &want), "avx512 sigmoid");
            // SAFETY: as above.
            unsafe { map_avx512(&x, &mut got, &relu) };
            assert!(same(&got, &want_relu), "avx512 relu");
            let mut v = x.clone();
            // SAFETY: as above.
            unsafe { map_in_place_avx512(&mut v, &sig) };
            assert!(same(&v, &want), "avx512 sigmoid in place");
            let mut b = start.clone();
            // SAFETY: as above.
            unsafe { map_acc3_avx512(&x, &y, &dy, &mut b, &bwd) };
            assert!(same(&b, &want_b), "avx512 backward");
        }
    }

    #[test]
    fn selection_reports_what_runs() {
        // Only families bit-identical to the portable one are selected here: other tests run
        // concurrently in this process.
        assert_eq!(select(Kernels::Portable), Kernels::Portable);
        assert_eq!(selected(), Kernels::Portable);
        let got = select(Kernels::Avx2);
        assert_eq!(got == Kernels::Avx2, features().avx2);
        assert_eq!(selected(), got);
        let got = select(Kernels::Avx512);
        assert_eq!(got == Kernels::Avx512, features().avx512);
        assert_eq!(selected(), got);
        select(Kernels::Portable);
    }
}
