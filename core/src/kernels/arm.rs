//! The Cortex-M FPU square root and the update runs built on it (cargo feature `arm-fpu-sqrt`,
//! Arm `eabihf` targets only): with `x86.rs`, the only `unsafe` in the crate.
//!
//! On an Arm core with a hardware FPU (`eabihf` targets: Cortex-M4F, M7, M33 with FPU, …) libm's
//! `sqrtf` is a software routine of about 40 instructions, the FPU's `vsqrt.f32` is one. Both are
//! IEEE 754 correctly rounded (round to nearest, even), so they give the same bits for every
//! input, and the Cortex-M result stays bit-identical to the host's. The firmware checks it
//! against `libm::sqrtf` on the target (see `embedded/`), and the host/firmware checksum
//! comparison in CI covers the training runs that use it.
//!
//! The square root is a call, and around a call LLVM compiles the update loops that need it
//! worse (docs/PERFORMANCE.md §3), so the two runs a training step spends most of its update in
//! are written here as whole loops: the book's Adam ([`adam_book_run`], `vsqrt.f32` inline) and
//! plain SGD ([`sgd_run`], four floats per load and store). Each performs the operations of its
//! rule's per-element function in the same order, so the same bits; the Cortex-M firmwares'
//! checksums, compared with the host's in CI, cover them.

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

/// The book's Adam update ([`update_book`](crate::optim::adam::update_book)) over a run, with
/// the FPU's `vsqrt.f32` in the loop instead of a call per element: `m += c1·(g − m)`,
/// `v += c2·(g·g − v)`, `p −= (lr_t·m) / (eps + √v)` for the first `n` elements, `n` the
/// shortest slice, where `c1 = 1 − β₁` and `c2 = 1 − β₂` (as `update_book` computes them). The
/// same operations on the same operands in the same order as the compiled Rust loop, so the
/// same bits.
#[allow(clippy::too_many_arguments)]
pub(crate) fn adam_book_run(
    values: &mut [f32],
    grads: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    lr_t: f32,
    c1: f32,
    c2: f32,
    eps: f32,
) {
    let n = values.len().min(grads.len()).min(m.len()).min(v.len());
    // SAFETY: the four pointers come from slices of at least `n` elements each, the three written
    // ones from distinct `&mut` slices, so `adam_book` reads and writes only their first `n`
    // elements, with no aliasing between a write and another slice.
    unsafe {
        adam_book(values.as_mut_ptr(), grads.as_ptr(), m.as_mut_ptr(), v.as_mut_ptr(), n, lr_t, c1, c2, eps)
    }
}

/// [`adam_book_run`]'s loop. AAPCS-VFP: `p`, `g`, `m`, `v` in r0–r3, `n` on the stack, `lr_t`,
/// `c1`, `c2`, `eps` in s0–s3; it uses only r0–r3, r12 and s4–s7, which the callee may clobber.
///
/// # Safety
/// `p`, `m`, `v` valid for reads and writes and `g` for reads of `n` floats each; the written
/// ranges overlap nothing else that is read.
#[unsafe(naked)]
#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn adam_book(
    p: *mut f32,
    g: *const f32,
    m: *mut f32,
    v: *mut f32,
    n: usize,
    lr_t: f32,
    c1: f32,
    c2: f32,
    eps: f32,
) {
    // SAFETY: see the function's contract; no stack is written, only caller-saved registers.
    core::arch::naked_asm!(
        ".fpu vfpv2",
        "ldr r12, [sp]",
        "cmp r12, #0",
        "beq 4f",
        "3:",
        "vldmia r1!, {{s4}}",  // g
        "vldr s5, [r2]",       // m
        "vsub.f32 s7, s4, s5", // g − m
        "vmul.f32 s7, s1, s7", // c1·(g − m)
        "vadd.f32 s5, s5, s7", // m += …
        "vldr s6, [r3]",       // v
        "vmul.f32 s4, s4, s4", // g·g
        "vsub.f32 s4, s4, s6", // g·g − v
        "vmul.f32 s4, s2, s4", // c2·(g·g − v)
        "vadd.f32 s6, s6, s4", // v += …
        "vstmia r2!, {{s5}}",
        "vstmia r3!, {{s6}}",
        "vmul.f32 s5, s0, s5", // lr_t·m
        "vsqrt.f32 s6, s6",    // √v
        "vadd.f32 s6, s3, s6", // eps + √v
        "vdiv.f32 s5, s5, s6",
        "vldr s7, [r0]",
        "vsub.f32 s7, s7, s5", // p −= …
        "vstmia r0!, {{s7}}",
        "subs r12, r12, #1",
        "bne 3b",
        "4:",
        "bx lr",
    )
}

/// Plain SGD ([`sgd::update`](crate::optim::sgd::update)) over a run: `values[i] −= lr·grads[i]`
/// up to the shorter slice, four elements per `vldm`/`vstm`: the same two operations per element
/// as the Rust loop (`lr·g`, then `p − …`), so the same bits, in fewer instructions and bytes.
pub(crate) fn sgd_run(values: &mut [f32], grads: &[f32], lr: f32) {
    let n = values.len().min(grads.len());
    // SAFETY: both pointers come from slices of at least `n` elements, `values` a `&mut` slice
    // that `grads` cannot overlap; `sgd` touches only their first `n` elements.
    unsafe { sgd(values.as_mut_ptr(), grads.as_ptr(), n, lr) }
}

/// [`sgd_run`]'s loop. AAPCS-VFP: `p`, `g`, `n` in r0–r2, `lr` in s0; it uses only r0–r3 and
/// s4–s11, which the callee may clobber.
///
/// # Safety
/// `p` valid for reads and writes and `g` for reads of `n` floats each, not overlapping.
#[unsafe(naked)]
unsafe extern "C" fn sgd(p: *mut f32, g: *const f32, n: usize, lr: f32) {
    // SAFETY: see the function's contract; no stack is written, only caller-saved registers.
    core::arch::naked_asm!(
        ".fpu vfpv2",
        "lsrs r3, r2, #2", // blocks of four
        "beq 4f",
        "3:",
        "vldmia r1!, {{s4-s7}}", // g
        "vldmia r0, {{s8-s11}}", // p
        "vmul.f32 s4, s0, s4",   // lr·g
        "vmul.f32 s5, s0, s5",
        "vmul.f32 s6, s0, s6",
        "vmul.f32 s7, s0, s7",
        "vsub.f32 s8, s8, s4", // p − lr·g
        "vsub.f32 s9, s9, s5",
        "vsub.f32 s10, s10, s6",
        "vsub.f32 s11, s11, s7",
        "vstmia r0!, {{s8-s11}}",
        "subs r3, r3, #1",
        "bne 3b",
        "4:",
        "ands r2, r2, #3", // the rest, one at a time
        "beq 6f",
        "5:",
        "vldmia r1!, {{s4}}",
        "vldr s8, [r0]",
        "vmul.f32 s4, s0, s4",
        "vsub.f32 s8, s8, s4",
        "vstmia r0!, {{s8}}",
        "subs r2, r2, #1",
        "bne 5b",
        "6:",
        "bx lr",
    )
}
