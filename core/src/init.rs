//! Weight initialisation (book §6.2), drawing from any `&mut impl RngCore`.
//!
//! Why the scale matters: a layer's output variance is `fan_in · Var(w) · E[x²]`. Too large and
//! sigmoid/tanh saturate (activations pile up at the ends, gradients vanish); too small and every
//! unit outputs almost the same value (the network loses expressiveness, and ReLU activations
//! shrink towards 0 layer after layer). Each scheme picks `Var(w)` to keep that variance steady
//! for a family of activations:
//!
//! | scheme | std of `w` | suits |
//! |---|---|---|
//! | [`Init::XavierBook`] | `√(1/fan_in)` | sigmoid, tanh — the book's "Xavier" (fan-in only) |
//! | [`Init::GlorotNormal`] | `√(2/(fan_in+fan_out))` | sigmoid, tanh — Glorot & Bengio's form, also keeps backward variance |
//! | [`Init::GlorotUniform`] | uniform on `±√(6/(fan_in+fan_out))`, same std | as above (Keras' default) |
//! | [`Init::HeNormal`] | `√(2/fan_in)` | ReLU — it zeroes half its inputs, so twice the variance is needed |
//! | [`Init::HeUniform`] | uniform on `±√(6/fan_in)`, same std | ReLU |
//!
//! Xavier/Glorot assume an activation that is linear around 0 (sigmoid, tanh); with ReLU they let
//! activations shrink with depth, which is why the book recommends He for ReLU networks.
//!
//! # The samplers
//! Uniform `[0, 1)` floats take the top 24 bits of one `next_u32` (`(x >> 8) · 2⁻²⁴`): every value
//! is exact and equally likely. Normal draws use the Box–Muller transform in `f32` with `libm`:
//! from `u₁ ∈ (0, 1]` and `u₂ ∈ [0, 1)`, `r = √(−2 ln u₁)`, `θ = 2π·u₂`, giving the pair
//! `(r·cos θ, r·sin θ)` of independent standard normals; both are used. Since `u₁ ≥ 2⁻²⁴`, draws
//! are bounded by `|z| ≤ √(48 ln 2) ≈ 5.77` — a truncation at 5.77σ, harmless for initialisation.
//! Each `fill` consumes exactly `2·⌈len/2⌉` (normal) or `len` (uniform) `u32`s, so the same seed gives
//! the same weights on every platform (all arithmetic is `libm` and IEEE `f32`). The project's
//! default generator is `rand_xoshiro::Xoshiro128PlusPlus` (small state, 32-bit outputs: cheap on a
//! Cortex-M); any `RngCore` works.
//!
//! ```
//! use rand_core::SeedableRng;
//! use rand_xoshiro::Xoshiro128PlusPlus;
//! use staticgrad::init::Init;
//! use staticgrad::{ParamKind, ParamStorage, Shape};
//! let mut ps = ParamStorage::<{ 784 * 100 }, 1>::new();
//! let mut params = ps.params();
//! let w = params.alloc(Shape::new(784, 100), ParamKind::Weight)?;
//! let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
//! Init::HeNormal.fill_param(&mut params, w, &mut rng)?; // fan_in = rows, fan_out = cols
//! let n = params.value(w)?.len() as f32;
//! let var = params.value(w)?.iter().map(|v| v * v).sum::<f32>() / n;
//! assert!((var / (2.0 / 784.0) - 1.0).abs() < 0.02);
//! # Ok::<(), staticgrad::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::params::{ParamId, Params};
use rand_core::RngCore;

/// An initialisation scheme. `fan_in`/`fan_out` are the weight's rows and columns
/// (`in × out`, as the affine op stores it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// All zeros (biases, β).
    Zeros,
    /// All one value (γ = 1).
    Constant(f32),
    /// Normal with mean 0 and this standard deviation (the book's numeric `weight_init_std`,
    /// e.g. 0.01, which is too small for deep nets).
    Normal {
        /// Standard deviation.
        std: f32,
    },
    /// Uniform on `[low, high)`.
    Uniform {
        /// Lower bound.
        low: f32,
        /// Upper bound.
        high: f32,
    },
    /// The book's "Xavier": normal with std `√(1/fan_in)`.
    XavierBook,
    /// Glorot & Bengio (2010), normal: std `√(2/(fan_in + fan_out))`.
    GlorotNormal,
    /// Glorot & Bengio (2010), uniform on `±√(6/(fan_in + fan_out))`.
    GlorotUniform,
    /// He et al. (2015), normal: std `√(2/fan_in)`.
    HeNormal,
    /// He et al. (2015), uniform on `±√(6/fan_in)`.
    HeUniform,
}

enum Dist {
    Const(f32),
    Normal(f32),
    Uniform(f32, f32),
}

impl Init {
    fn dist(&self, fan_in: usize, fan_out: usize) -> Result<Dist> {
        let fan = |n: usize, what| {
            if n == 0 { Err(Error::InvalidArgument { what, value: 0.0 }) } else { Ok(n as f32) }
        };
        let d = match *self {
            Init::Zeros => Dist::Const(0.0),
            Init::Constant(c) => Dist::Const(c),
            Init::Normal { std } => Dist::Normal(std),
            Init::Uniform { low, high } => {
                if !(low <= high && low.is_finite() && high.is_finite()) {
                    return Err(Error::InvalidArgument { what: "uniform bounds", value: high - low });
                }
                Dist::Uniform(low, high)
            }
            Init::XavierBook => Dist::Normal(libm::sqrtf(1.0 / fan(fan_in, "fan_in")?)),
            Init::GlorotNormal => {
                Dist::Normal(libm::sqrtf(2.0 / fan(fan_in.saturating_add(fan_out), "fan_in + fan_out")?))
            }
            Init::GlorotUniform => {
                let a = libm::sqrtf(6.0 / fan(fan_in.saturating_add(fan_out), "fan_in + fan_out")?);
                Dist::Uniform(-a, a)
            }
            Init::HeNormal => Dist::Normal(libm::sqrtf(2.0 / fan(fan_in, "fan_in")?)),
            Init::HeUniform => {
                let a = libm::sqrtf(6.0 / fan(fan_in, "fan_in")?);
                Dist::Uniform(-a, a)
            }
        };
        match d {
            Dist::Normal(s) if !(s >= 0.0 && s.is_finite()) => {
                Err(Error::InvalidArgument { what: "std", value: s })
            }
            Dist::Const(c) if !c.is_finite() => Err(Error::InvalidArgument { what: "constant", value: c }),
            d => Ok(d),
        }
    }

    /// Fills `values` with this scheme for a weight of `fan_in` inputs and `fan_out` outputs.
    /// Zero fans for a scheme that divides by them, a negative or non-finite std or constant, or
    /// `low > high` give `InvalidArgument` and leave `values` unchanged.
    pub fn fill(
        &self,
        values: &mut [f32],
        fan_in: usize,
        fan_out: usize,
        rng: &mut impl RngCore,
    ) -> Result<()> {
        match self.dist(fan_in, fan_out)? {
            Dist::Const(c) => values.fill(c),
            Dist::Normal(std) => {
                let mut chunks = values.chunks_exact_mut(2);
                for pair in &mut chunks {
                    let (a, b) = normal_pair(rng);
                    pair[0] = std * a;
                    pair[1] = std * b;
                }
                if let [last] = chunks.into_remainder() {
                    *last = std * normal_pair(rng).0;
                }
            }
            Dist::Uniform(low, high) => {
                let width = high - low;
                for v in values {
                    *v = low + width * uniform01(rng);
                }
            }
        }
        Ok(())
    }

    /// Fills parameter `id` of `params`, taking `fan_in` = rows and `fan_out` = cols of its shape.
    pub fn fill_param(&self, params: &mut Params, id: ParamId, rng: &mut impl RngCore) -> Result<()> {
        let shape = params.entry(id)?.shape;
        self.fill(params.value_mut(id)?, shape.rows, shape.cols, rng)
    }
}

/// A uniform draw from `[0, 1)`: the top 24 bits of one `next_u32`, times 2⁻²⁴ (exact).
#[inline]
pub fn uniform01(rng: &mut impl RngCore) -> f32 {
    (rng.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// Two independent standard normal draws by Box–Muller (see the [module docs](self)):
/// `u₁ = ((x₁ >> 8) + 1)·2⁻²⁴ ∈ (0, 1]`, `u₂ = (x₂ >> 8)·2⁻²⁴`, `r = √(−2 ln u₁)`,
/// returns `(r cos 2πu₂, r sin 2πu₂)`.
pub fn normal_pair(rng: &mut impl RngCore) -> (f32, f32) {
    let u1 = ((rng.next_u32() >> 8) + 1) as f32 * (1.0 / 16_777_216.0);
    let u2 = uniform01(rng);
    let r = libm::sqrtf(-2.0 * libm::logf(u1));
    let theta = core::f32::consts::TAU * u2;
    let (cos, sin) = cos_sin_small(theta); // libm::cosf / libm::sinf, bit for bit
    (r * cos, r * sin)
}

/// `(cos x, sin x)` for `0 ≤ x ≤ 9π/4`, the same bits as `libm::cosf`/`libm::sinf`: their
/// branches for that range (FreeBSD `s_cosf.c`/`s_sinf.c` with `k_cosf.c`/`k_sinf.c`, as ported
/// by the `libm` crate; © 1993 Sun Microsystems, "Permission to use, copy, modify, and distribute
/// this software is freely granted, provided that this notice is preserved"), without their
/// general argument reduction, which Box–Muller's `2πu₂ < 2π` never reaches and which is the
/// bulk of their code (about 5 KB of a Cortex-M firmware). Tested against libm on every angle
/// [`normal_pair`] can draw.
fn cos_sin_small(x: f32) -> (f32, f32) {
    use core::f64::consts::FRAC_PI_2;
    let x64 = x as f64;
    let ix = x.to_bits() & 0x7fff_ffff;
    if ix < 0x3980_0000 {
        return (1.0, x); // |x| < 2⁻¹²
    }
    if ix <= 0x3f49_0fda {
        return (k_cosf(x64), k_sinf(x64)); // |x| ≲ π/4
    }
    if ix <= 0x4016_cbe3 {
        return (k_sinf(FRAC_PI_2 - x64), k_cosf(x64 - FRAC_PI_2)); // ≲ 3π/4
    }
    if ix <= 0x407b_53d1 {
        let r = x64 - 2.0 * FRAC_PI_2; // ≲ 5π/4
        return (-k_cosf(r), k_sinf(-r));
    }
    if ix <= 0x40af_eddf {
        return (k_sinf(x64 - 3.0 * FRAC_PI_2), -k_cosf(x64 - 3.0 * FRAC_PI_2)); // ≲ 7π/4
    }
    let r = x64 - 4.0 * FRAC_PI_2; // ≲ 9π/4
    (k_cosf(r), k_sinf(r))
}

/// libm's `k_sinf`: sin on [−π/4, π/4] in `f64` (constants as libm writes them).
#[allow(clippy::excessive_precision)]
fn k_sinf(x: f64) -> f32 {
    const S1: f64 = -0.166666666416265235595;
    const S2: f64 = 0.0083333293858894631756;
    const S3: f64 = -0.000198393348360966317347;
    const S4: f64 = 0.0000027183114939898219064;
    let z = x * x;
    let w = z * z;
    let r = S3 + z * S4;
    let s = z * x;
    ((x + s * (S1 + z * S2)) + s * w * r) as f32
}

/// libm's `k_cosf`: cos on [−π/4, π/4] in `f64` (constants as libm writes them).
#[allow(clippy::excessive_precision)]
fn k_cosf(x: f64) -> f32 {
    const C0: f64 = -0.499999997251031003120;
    const C1: f64 = 0.0416666233237390631894;
    const C2: f64 = -0.00138867637746099294692;
    const C3: f64 = 0.0000243904487962774090654;
    let z = x * x;
    let w = z * z;
    let r = C2 + z * C3;
    (((1.0 + z * C0) + w * C1) + (w * z) * r) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro128PlusPlus;

    fn check_cos_sin(step: usize) {
        // Every angle `normal_pair` can draw: `2π·j·2⁻²⁴` for `j < 2²⁴`, and 9π/4's neighbourhood.
        let far = (0x40e2_31c0..=0x40e2_31d5).map(f32::from_bits);
        for theta in (0..1u32 << 24)
            .step_by(step)
            .map(|j| core::f32::consts::TAU * (j as f32 * (1.0 / 16_777_216.0)))
            .chain(far)
        {
            let (c, s) = cos_sin_small(theta);
            assert_eq!(c.to_bits(), libm::cosf(theta).to_bits(), "cos {theta:e}");
            assert_eq!(s.to_bits(), libm::sinf(theta).to_bits(), "sin {theta:e}");
        }
    }

    #[test]
    fn cos_sin_small_is_libm_bit_for_bit() {
        check_cos_sin(97);
    }

    /// All 2²⁴ angles, and every `f32` in [0, 9π/4]:
    /// `cargo test --release -p staticgrad -- --ignored cos_sin`.
    #[test]
    #[ignore]
    fn cos_sin_small_is_libm_bit_for_bit_on_every_angle() {
        check_cos_sin(1);
        for bits in 0..=0x40e2_31d5u32 {
            let x = f32::from_bits(bits);
            let (c, s) = cos_sin_small(x);
            assert!(
                c.to_bits() == libm::cosf(x).to_bits() && s.to_bits() == libm::sinf(x).to_bits(),
                "{x:e}"
            );
        }
    }

    #[test]
    fn errors_leave_values() {
        let mut rng = Xoshiro128PlusPlus::seed_from_u64(1);
        let mut v = [7.0f32; 3];
        for init in [
            Init::HeNormal,
            Init::XavierBook,
            Init::Normal { std: -1.0 },
            Init::Uniform { low: 1.0, high: 0.0 },
            Init::Constant(f32::NAN),
        ] {
            assert!(
                matches!(init.fill(&mut v, 0, 0, &mut rng), Err(Error::InvalidArgument { .. })),
                "{init:?}"
            );
        }
        assert_eq!(v, [7.0; 3]);
        Init::GlorotUniform.fill(&mut v, 0, 3, &mut rng).unwrap();
        // fan_in 0 is fine for Glorot as long as fan_in + fan_out > 0: limit √(6/3).
        assert!(v.iter().all(|x| x.abs() <= 2f32.sqrt()));
    }

    #[test]
    fn odd_length_and_bounds() {
        let mut rng = Xoshiro128PlusPlus::seed_from_u64(2);
        let mut v = [0.0f32; 5];
        Init::Normal { std: 1.0 }.fill(&mut v, 1, 1, &mut rng).unwrap();
        assert!(v.iter().all(|x| x.abs() <= 5.78 && *x != 0.0));
        Init::Uniform { low: -2.0, high: -1.0 }.fill(&mut v, 1, 1, &mut rng).unwrap();
        assert!(v.iter().all(|x| (-2.0..=-1.0).contains(x)));
        Init::Constant(1.0).fill(&mut v, 1, 1, &mut rng).unwrap();
        assert_eq!(v, [1.0; 5]);
    }
}
