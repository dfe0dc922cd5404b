//! The Cortex-M FPU square root (cargo feature `arm-fpu-sqrt`, Arm `eabihf` targets only): with
//! `x86.rs`, the only `unsafe` in the crate.
//!
//! On an Arm core with a hardware FPU (`eabihf` targets: Cortex-M4F, M7, M33 with FPU, …) libm's
//! `sqrtf` is a software routine of about 40 instructions, the FPU's `vsqrt.f32` is one. Both are
//! IEEE 754 correctly rounded (round to nearest, even), so they give the same bits for every
//! input, and the Cortex-M result stays bit-identical to the host's. The firmware checks it
//! against `libm::sqrtf` on the target (see `embedded/`), and the host/firmware checksum
//! comparison in CI covers the training runs that use it.

/// `√x` with the FPU's `vsqrt.f32`: the same bits as `libm::sqrtf(x)` for every `x` (NaN for
/// `x < 0` and for NaN, `±0` and `+∞` kept).
///
/// A naked function rather than inline `asm!`: rustc does not know that an `eabihf` target has
/// the `vfp2` feature that register operands of class `sreg` need (the feature is unstable on
/// Arm), while the hard-float calling convention already puts `x` and the result in `s0`.
#[unsafe(naked)]
pub(super) extern "C" fn sqrt(x: f32) -> f32 {
    // SAFETY: the AAPCS-VFP (`eabihf`) convention passes `x` and returns the result in `s0`, which
    // the callee may clobber. `vsqrt.f32` reads and writes only `s0` (and the FPSCR's sticky
    // exception bits, as every float operation does); no memory, no stack, no other register.
    // Every `eabihf` target has a VFP unit (VFPv2 or later, all with VSQRT) enabled before `main`.
    // `.fpu`: module-level assembly does not see the target's FPU; VSQRT is encoded alike in all.
    core::arch::naked_asm!(".fpu vfpv2", "vsqrt.f32 s0, s0", "bx lr")
}
