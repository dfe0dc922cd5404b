//! `expf`: the exponential of the sigmoid and the softmax, libm's bits in a form that
//! vectorises.

use crate::kernels::BLOCKED;

/// `e^x`, the same bits as `libm::expf` for every input (the tests compare them), written
/// without branches so that LLVM vectorises a loop of it on SIMD hosts (libm's version is a
/// chain of branches, one call per element). Small targets call `libm::expf` directly.
#[cfg_attr(not(debug_assertions), inline(always))]
pub fn expf(x: f32) -> f32 {
    if BLOCKED { expf_branchless(x) } else { libm::expf(x) }
}

/// libm's `expf` (FreeBSD `e_expf.c`) with every branch computed and the result selected:
/// the same operations in the same order on each path, so the same bits.
#[cfg_attr(not(debug_assertions), inline(always))]
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

#[cfg(test)]
mod tests {
    use super::expf_branchless;

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
}
