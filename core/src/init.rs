//! Weight initialisation (book §6.2), drawing from any `&mut impl Rng`.
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
//! is exact and equally likely. Normal draws use the Box–Muller transform, all in `f32`:
//! from `u₁ ∈ (0, 1]` and `u₂ ∈ [0, 1)`, `r = √(−2 ln u₁)` (`libm::logf`, a correctly rounded
//! square root), `θ = 2π·u₂`, giving the pair `(r·cos θ, r·sin θ)` of independent standard
//! normals; both are used. `cos θ` and `sin θ` come from [`cos_sin_turn`], short `f32`
//! polynomials after an exact reduction of `u₂`'s 24 bits (libm's `sinf`/`cosf` work in `f64`,
//! which a Cortex-M4F emulates in software). Since `u₁ ≥ 2⁻²⁴`, draws
//! are bounded by `|z| ≤ √(48 ln 2) ≈ 5.77` — a truncation at 5.77σ, harmless for initialisation.
//! Each `fill` consumes exactly `2·⌈len/2⌉` (normal) or `len` (uniform) `u32`s, so the same seed gives
//! the same weights on every platform (all arithmetic is `libm` and IEEE `f32`, no FMA). The project's
//! default generator is `rand_xoshiro::Xoshiro128PlusPlus` (small state, 32-bit outputs: cheap on a
//! Cortex-M); any `Rng` works.
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
use rand_core::Rng;

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
            Init::XavierBook => Dist::Normal(crate::kernels::sqrt(1.0 / fan(fan_in, "fan_in")?)),
            Init::GlorotNormal => Dist::Normal(crate::kernels::sqrt(
                2.0 / fan(fan_in.saturating_add(fan_out), "fan_in + fan_out")?,
            )),
            Init::GlorotUniform => {
                let a = crate::kernels::sqrt(6.0 / fan(fan_in.saturating_add(fan_out), "fan_in + fan_out")?);
                Dist::Uniform(-a, a)
            }
            Init::HeNormal => Dist::Normal(crate::kernels::sqrt(2.0 / fan(fan_in, "fan_in")?)),
            Init::HeUniform => {
                let a = crate::kernels::sqrt(6.0 / fan(fan_in, "fan_in")?);
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
    pub fn fill(&self, values: &mut [f32], fan_in: usize, fan_out: usize, rng: &mut impl Rng) -> Result<()> {
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
    pub fn fill_param(&self, params: &mut Params, id: ParamId, rng: &mut impl Rng) -> Result<()> {
        let shape = params.entry(id)?.shape;
        self.fill(params.value_mut(id)?, shape.rows, shape.cols, rng)
    }
}

/// A uniform draw from `[0, 1)`: the top 24 bits of one `next_u32`, times 2⁻²⁴ (exact).
#[inline]
pub fn uniform01(rng: &mut impl Rng) -> f32 {
    (rng.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// Two independent standard normal draws by Box–Muller (see the [module docs](self)):
/// `u₁ = ((x₁ >> 8) + 1)·2⁻²⁴ ∈ (0, 1]`, `j = x₂ >> 8`, `r = √(−2 ln u₁)`, returns
/// `(r cos θ, r sin θ)` for `θ = 2π·j·2⁻²⁴` ([`cos_sin_turn`]). Out of line: initialisation
/// is cold, and [`Init::fill`] calls it from two places.
#[inline(never)]
pub fn normal_pair(rng: &mut impl Rng) -> (f32, f32) {
    let u1 = ((rng.next_u32() >> 8) + 1) as f32 * (1.0 / 16_777_216.0);
    let j = rng.next_u32() >> 8;
    let r = crate::kernels::sqrt(-2.0 * crate::kernels::logf(u1));
    let (cos, sin) = cos_sin_turn(j);
    (r * cos, r * sin)
}

/// `(cos θ, sin θ)` for `θ = 2π·j·2⁻²⁴` (`j < 2²⁴`, a fraction of a turn), in `f32` only: no
/// `f64` (which a Cortex-M4F does in software, with a few KB of routines) and no general
/// argument reduction. The reduction is exact, in integers: `j = q·2²² + i` with the quadrant
/// `q` and `−2²¹ ≤ i < 2²¹`, so `θ = q·π/2 + φ` with `|φ| ≤ π/4`, `φ = i·(2π·2⁻²⁴)` (one
/// rounding). Then Cephes' single-precision polynomials for `sin φ` and `cos φ` (relative error
/// a few 1e-8 on `[−π/4, π/4]`), and the quadrant's signs and swap. Plain `f32` multiplies and
/// adds in a fixed order: the same bits on every IEEE platform.
pub fn cos_sin_turn(j: u32) -> (f32, f32) {
    let j = j & 0x00ff_ffff;
    let q = ((j + (1 << 21)) >> 22) & 3;
    let i = j as i32 - (((j + (1 << 21)) >> 22) << 22) as i32; // −2²¹ ≤ i < 2²¹, exact
    let phi = i as f32 * (core::f32::consts::TAU / 16_777_216.0);
    let z = phi * phi;
    let sin = ((-1.951_529_6e-4 * z + 8.332_161e-3) * z - 1.666_665_5e-1) * z * phi + phi;
    let cos = ((2.443_315_7e-5 * z - 1.388_731_6e-3) * z + 4.166_664_6e-2) * z * z - 0.5 * z + 1.0;
    match q {
        0 => (cos, sin),
        1 => (-sin, cos),
        2 => (-cos, -sin),
        _ => (sin, -cos),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro128PlusPlus;

    #[test]
    fn cos_sin_turn_is_close_to_libm() {
        // Every 97th angle `normal_pair` can draw, and the quadrant edges.
        let edges = [0u32, 1, (1 << 21) - 1, 1 << 21, (1 << 22) - 1, 1 << 22, (3 << 21) + 5, (1 << 24) - 1];
        for j in (0..1u32 << 24).step_by(97).chain(edges) {
            let theta = j as f64 * (core::f64::consts::TAU / 16_777_216.0);
            let (c, s) = cos_sin_turn(j);
            assert!((c as f64 - theta.cos()).abs() < 2e-7, "cos at {j}: {c} vs {}", theta.cos());
            assert!((s as f64 - theta.sin()).abs() < 2e-7, "sin at {j}: {s} vs {}", theta.sin());
            assert!(c.abs() <= 1.0 && s.abs() <= 1.0);
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
