//! x86-64 kernels chosen at run time (cargo feature `simd`): the only `unsafe` in the crate.
//!
//! * [`Kernels::Avx2`]: the portable blocked driver compiled for AVX2 (8-lane registers, tile
//!   4×16). Same code, same canonical order, no FMA: bit-identical to the portable kernels.
//! * [`Kernels::Avx2Fma`]: the same driver with an FMA inner loop written in intrinsics. One
//!   rounding per step instead of two, so results differ from the portable ones in the last
//!   bits (tested within a tolerance below). Opt-in: the fast mode.
//!
//! The CPU is asked with `cpuid`/`xgetbv` (no `std` needed) before a family is accepted, and the
//! choice is kept in one atomic, so a kernel that needs AVX2 can only run on a CPU that has it.

/// Compiles the items it wraps on x86-64 only (like `cfg_if!`): everything but the Arm section at
/// the end of the file.
macro_rules! x86_64_only {
    ($($item:item)*) => { $(#[cfg(target_arch = "x86_64")] $item)* };
}

x86_64_only! {

use super::Kernels;
use super::blocked::{Exact, MR, Micro, blocked};
use super::{Out, View};
use core::arch::x86_64::{
    __cpuid, __cpuid_count, __m256, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_set1_ps, _mm256_storeu_ps,
    _xgetbv, CpuidResult,
};
use core::sync::atomic::{AtomicU8, Ordering};

const PORTABLE: u8 = 0;
const AVX2: u8 = 1;
const AVX2_FMA: u8 = 2;

/// The family in force; written only by [`select`] after the CPU check.
static SELECTED: AtomicU8 = AtomicU8::new(PORTABLE);

struct Features {
    avx2: bool,
    fma: bool,
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
    let none = Features { avx2: false, fma: false };
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
    let avx2 = cpuid(7, 0).ebx & (1 << 5) != 0;
    Features { avx2, fma: avx2 && fma }
}

pub(super) fn select(k: Kernels) -> Kernels {
    let f = features();
    let (chosen, code) = match k {
        Kernels::Avx2 if f.avx2 => (Kernels::Avx2, AVX2),
        Kernels::Avx2Fma if f.fma => (Kernels::Avx2Fma, AVX2_FMA),
        _ => (Kernels::Portable, PORTABLE),
    };
    SELECTED.store(code, Ordering::Relaxed);
    chosen
}

pub(super) fn selected() -> Kernels {
    match SELECTED.load(Ordering::Relaxed) {
        AVX2 => Kernels::Avx2,
        AVX2_FMA => Kernels::Avx2Fma,
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
    #[inline(always)]
    fn rows(acc: &mut [[f32; 16]; MR], rows: [&[f32]; MR], panel: &[[f32; 16]]) {
        // SAFETY: only reached from `gemm_avx2_fma`, which runs only when AVX2 and FMA exist.
        unsafe { fma_rows(acc, rows, panel) }
    }

    #[inline(always)]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::random_values;
    use std::vec;
    use std::vec::Vec;

    /// The three products of one shape through the family `code` (called directly, so these
    /// tests never switch the global choice under the other tests' feet).
    fn all_products(code: u8, m: usize, k: usize, n: usize, seed: u64) -> Vec<f32> {
        let run = |mm, nn, kk, a: View, b: View, c: &mut [f32]| {
            let c = Out { data: c, rs: nn, cs: 1 };
            match code {
                // SAFETY: the callers only pass AVX2 / AVX2_FMA after checking `features()`.
                AVX2 => unsafe { gemm_avx2(mm, nn, kk, a, b, c) },
                // SAFETY: as above.
                AVX2_FMA => unsafe { gemm_avx2_fma(mm, nn, kk, a, b, c) },
                _ => blocked::<8, Exact>(mm, nn, kk, a, b, c),
            }
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
        match code {
            // SAFETY: as above.
            AVX2 => unsafe {
                gemm_avx2(n, k, m, View { data: &d, rs: 1, cs: n }, View { data: &a, rs: k, cs: 1 }, ct)
            },
            // SAFETY: as above.
            AVX2_FMA => unsafe {
                gemm_avx2_fma(n, k, m, View { data: &d, rs: 1, cs: n }, View { data: &a, rs: k, cs: 1 }, ct)
            },
            _ => blocked::<8, Exact>(
                n,
                k,
                m,
                View { data: &d, rs: 1, cs: n },
                View { data: &a, rs: k, cs: 1 },
                ct,
            ),
        }
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

    #[test]
    fn fma_agrees_with_portable_within_rounding() {
        if !features().fma {
            return;
        }
        let mut differs = false;
        for (s, &(m, k, n)) in SHAPES.iter().enumerate() {
            let want = all_products(PORTABLE, m, k, n, 10 * s as u64);
            let got = all_products(AVX2_FMA, m, k, n, 10 * s as u64);
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

    #[test]
    fn selection_reports_what_runs() {
        // Only families bit-identical to the portable one are selected here: other tests run
        // concurrently in this process.
        assert_eq!(select(Kernels::Portable), Kernels::Portable);
        assert_eq!(selected(), Kernels::Portable);
        let got = select(Kernels::Avx2);
        assert_eq!(got == Kernels::Avx2, features().avx2);
        assert_eq!(selected(), got);
        select(Kernels::Portable);
    }
}

} // x86_64_only!

// ---------------------------------------------------------------------------------------------
// Arm with a hardware FPU (`eabihf` targets: Cortex-M4F, M7, M33 with FPU, …). Only the square
// root lives here: libm's `sqrtf` is a software routine of about 40 instructions on these cores,
// the FPU's `vsqrt.f32` is one. Both are IEEE 754 correctly rounded (round to nearest, even), so
// they give the same bits for every input, and the Cortex-M result stays bit-identical to the
// host's. The firmware checks it against `libm::sqrtf` on the target (see `embedded/`), and the
// host/firmware checksum comparison in CI covers the training runs that use it.

/// `√x` with the FPU's `vsqrt.f32`: the same bits as `libm::sqrtf(x)` for every `x` (NaN for
/// `x < 0` and for NaN, `±0` and `+∞` kept).
///
/// A naked function rather than inline `asm!`: rustc does not know that an `eabihf` target has
/// the `vfp2` feature that register operands of class `sreg` need (the feature is unstable on
/// Arm), while the hard-float calling convention already puts `x` and the result in `s0`.
#[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
#[unsafe(naked)]
pub(super) extern "C" fn sqrt(x: f32) -> f32 {
    // SAFETY: the AAPCS-VFP (`eabihf`) convention passes `x` and returns the result in `s0`, which
    // the callee may clobber. `vsqrt.f32` reads and writes only `s0` (and the FPSCR's sticky
    // exception bits, as every float operation does); no memory, no stack, no other register.
    // Every `eabihf` target has a VFP unit (VFPv2 or later, all with VSQRT) enabled before `main`.
    // `.fpu`: module-level assembly does not see the target's FPU; VSQRT is encoded alike in all.
    core::arch::naked_asm!(".fpu vfpv2", "vsqrt.f32 s0, s0", "bx lr")
}
