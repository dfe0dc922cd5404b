//! `sqrt`: the square root of the update rules and the initialisers.

/// `√x`, correctly rounded: the same bits as `libm::sqrtf` for every input. What the update
/// rules use (Adam, RMSProp, AdaGrad). With the `arm-fpu-sqrt` feature on an Arm core with a hardware FPU
/// (`eabihf`, e.g. a Cortex-M4F) it is the FPU's `vsqrt.f32`, one instruction instead of libm's
/// software routine (IEEE 754 requires both to round correctly, so the bits agree); elsewhere it
/// is `libm::sqrtf`.
///
/// ```
/// assert_eq!(staticgrad::kernels::sqrt(2.0).to_bits(), libm::sqrtf(2.0).to_bits());
/// ```
#[cfg_attr(not(debug_assertions), inline(always))]
pub fn sqrt(x: f32) -> f32 {
    #[cfg(all(feature = "arm-fpu-sqrt", target_arch = "arm", target_abi = "eabihf"))]
    {
        super::super::arm::sqrt(x)
    }
    #[cfg(not(all(feature = "arm-fpu-sqrt", target_arch = "arm", target_abi = "eabihf")))]
    {
        libm::sqrtf(x)
    }
}

#[cfg(test)]
mod tests {
    use super::sqrt;

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
}
