//! The on-device training demos of staticgrad, `#![no_std]` and heap-free: the firmware in
//! `embedded/mps2-an386` and `embedded/microbit` runs them on a Cortex-M under QEMU, and the host
//! test `tests/tests/embedded_demos.rs` runs the very same code on x86-64 and checks that the final
//! weights have the same bits ([`fnv1a`] checksum).
//!
//! Models are [`staticgrad::model::Model`]s (here [`staticgrad::model::MlpSpec`]s), updates [`staticgrad::optim::Optimizer`]s driven by
//! [`staticgrad::train::Trainer`]; every buffer is handed in by the caller (a firmware's
//! `static`s, sized by the spec's const planner).
//!
//! * [`xor`]: 2-3-1 sigmoid MLP, mean-squared error, batch 4, plain gradient descent.
//! * [`mnist`]: 196-32-10 ReLU MLP on 14×14 MNIST kept in flash as `u8`, softmax cross-entropy,
//!   any batch size, SGD or Adam, with or without the fused update (no gradient buffer).
//! * [`cnn`]: the same data and routine with a small CNN (convolution 8×3×3, ReLU, 2×2 max
//!   pooling, dense 10), batch 1, SGD (fused or not) and Adam (fused).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cnn;
pub mod data;
pub mod mnist;
pub mod xor;

/// 32-bit FNV-1a over the little-endian bit patterns of `values`: equal checksums mean
/// (with overwhelming probability) bit-identical weights.
///
/// ```
/// assert_eq!(staticgrad_demos::fnv1a(&[]), 0x811c_9dc5);
/// assert_ne!(staticgrad_demos::fnv1a(&[0.0]), staticgrad_demos::fnv1a(&[-0.0]));
/// ```
pub fn fnv1a(values: &[f32]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for v in values {
        for b in v.to_bits().to_le_bytes() {
            h = (h ^ b as u32).wrapping_mul(0x0100_0193);
        }
    }
    h
}

/// What a demo reports while it trains; the firmware prints it, the host test collects it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochReport {
    /// Epoch number, from 1.
    pub epoch: u32,
    /// Mean training loss over the epoch's steps.
    pub mean_loss: f32,
    /// Held-out examples classified correctly (for XOR: of the 4 inputs).
    pub correct: u32,
    /// Held-out examples evaluated.
    pub total: u32,
}

/// Callbacks of a training run.
pub trait Hooks {
    /// Called right before the first and right after the last measured training step (the
    /// firmware executes its instruction-count marker here).
    fn mark(&mut self) {}
    /// Called after each epoch.
    fn epoch(&mut self, _report: &EpochReport) {}
}

/// Hooks that do nothing.
pub struct NoHooks;
impl Hooks for NoHooks {}

/// The result of a demo run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    /// The last epoch's report.
    pub last: EpochReport,
    /// [`fnv1a`] of the final parameter values.
    pub checksum: u32,
    /// Training steps taken.
    pub steps: u32,
    /// True if the run met the demo's bar (accuracy, loss).
    pub passed: bool,
}

/// Loss as an integer in units of 1e-4 (the firmware prints no floats; saturates).
pub fn fixed4(x: f32) -> u32 {
    if x.is_finite() && x >= 0.0 { (x * 10_000.0 + 0.5) as u32 } else { u32::MAX }
}

/// Checks the square root the update rules use ([`staticgrad::kernels::sqrt`]; on a Cortex-M4F
/// built with the `arm-fpu-sqrt` feature, the FPU's `vsqrt.f32`) against `libm::sqrtf`, bit for bit, on
/// special values, the subnormal range and a sweep over every sign and exponent. Returns the bit
/// pattern of the first input whose results differ (NaN results only need to be NaN both).
///
/// ```
/// assert_eq!(staticgrad_demos::sqrt_mismatch(), None);
/// ```
#[inline(never)] // a one-off check: keep it out of the caller (and its inlining budget)
pub fn sqrt_mismatch() -> Option<u32> {
    #[inline(never)] // one copy for the three loops below
    fn differs(b: u32) -> bool {
        let x = f32::from_bits(b);
        let (hw, sw) = (staticgrad::kernels::sqrt(x), libm::sqrtf(x));
        !(hw.to_bits() == sw.to_bits() || (hw.is_nan() && sw.is_nan()))
    }
    let specials = [
        0u32,
        0x8000_0000,
        1,
        2,
        3,
        0x007f_ffff,
        0x0080_0000,
        0x3f80_0000,
        0x7f7f_ffff,
        0x7f80_0000,
        0xff80_0000,
        0x7fc0_0000,
        0xbf80_0000,
        0x8000_0001,
    ];
    if let Some(&b) = specials.iter().find(|&&b| differs(b)) {
        return Some(b);
    }
    // Plain loops rather than an iterator chain: the same inputs in the same order, in a
    // fraction of the flash. Subnormals `1, 1 + 8191, …`, then every 65,521st bit pattern.
    let mut b = 1u32;
    while b < 0x0080_0000 {
        if differs(b) {
            return Some(b);
        }
        b += 8_191;
    }
    let mut b = 0u32;
    loop {
        if differs(b) {
            return Some(b);
        }
        b = b.checked_add(65_521)?; // past u32::MAX: all checked
    }
}
