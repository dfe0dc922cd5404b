//! RMSProp: an exponentially decaying average of squared gradients replaces AdaGrad's sum.
//!
//! Book form (default decay **0.99**, ε = 1e-7 **after** the square root):
//! `h = decay·h; h += ((1−decay)·g)·g; p −= lr·g / (√h + ε)`.
//! The centred variant (Graves, 2013; `centered=True` in PyTorch) also tracks the mean gradient
//! `ḡ` and divides by the estimated standard deviation `√(h − ḡ²) + ε`.
//! With momentum μ > 0 (PyTorch's `RMSprop(momentum=μ)`), the scaled gradient goes into a
//! buffer first: `buf = μ·buf + g/(√h + ε)`, `p −= lr·buf` (its documented algorithm).

use super::Float;

/// Floats of state per parameter: `h` (plus `ḡ` when centred, see [`state_per_param`]).
pub const STATE_PER_PARAM: usize = 1;

/// Floats of state per parameter for the plain (1) or centred (2) variant.
pub const fn state_per_param(centered: bool) -> usize {
    if centered { 2 } else { 1 }
}

/// One element, book order: `h *= decay; h += (1-decay)*g*g; p -= lr*g / (sqrt(h) + eps)`.
#[cfg_attr(not(debug_assertions), inline(always))]
pub fn update<R: Float>(p: &mut R, h: &mut R, g: R, lr: R, decay: R, eps: R) {
    *h *= decay;
    *h += (R::ONE - decay) * g * g;
    *p -= lr * g / (h.sqrt() + eps);
}

/// One element, centred: as [`update`], plus `gbar = decay*gbar + (1-decay)*g` and the
/// denominator `sqrt(max(h - gbar², 0)) + eps` (the clamp keeps rounding from making it NaN).
#[cfg_attr(not(debug_assertions), inline(always))]
pub fn update_centered<R: Float>(p: &mut R, h: &mut R, gbar: &mut R, g: R, lr: R, decay: R, eps: R) {
    *h *= decay;
    *h += (R::ONE - decay) * g * g;
    *gbar = decay * *gbar + (R::ONE - decay) * g;
    let mut var = *h - *gbar * *gbar;
    if var < R::ZERO {
        var = R::ZERO;
    }
    *p -= lr * g / (var.sqrt() + eps);
}

/// One element with momentum (PyTorch's form): `h *= decay; h += (1-decay)*g*g;
/// buf = mu*buf + g/(sqrt(h) + eps); p -= lr*buf`.
#[cfg_attr(not(debug_assertions), inline(always))]
#[allow(clippy::too_many_arguments)]
pub fn update_momentum<R: Float>(p: &mut R, h: &mut R, buf: &mut R, g: R, lr: R, decay: R, eps: R, mu: R) {
    *h *= decay;
    *h += (R::ONE - decay) * g * g;
    *buf = mu * *buf + g / (h.sqrt() + eps);
    *p -= lr * *buf;
}

/// One element, centred with momentum: the denominator of [`update_centered`], the buffer of
/// [`update_momentum`].
#[cfg_attr(not(debug_assertions), inline(always))]
#[allow(clippy::too_many_arguments)]
pub fn update_centered_momentum<R: Float>(
    p: &mut R,
    h: &mut R,
    gbar: &mut R,
    buf: &mut R,
    g: R,
    lr: R,
    decay: R,
    eps: R,
    mu: R,
) {
    *h *= decay;
    *h += (R::ONE - decay) * g * g;
    *gbar = decay * *gbar + (R::ONE - decay) * g;
    let mut var = *h - *gbar * *gbar;
    if var < R::ZERO {
        var = R::ZERO;
    }
    *buf = mu * *buf + g / (var.sqrt() + eps);
    *p -= lr * *buf;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decay_forgets() {
        let (mut p, mut h) = (0.0f64, 0.0f64);
        update(&mut p, &mut h, 1.0, 0.1, 0.5, 0.0);
        assert_eq!(h, 0.5);
        update(&mut p, &mut h, 0.0, 0.1, 0.5, 0.0);
        assert_eq!(h, 0.25);
    }

    /// Two steps worked by hand (decay 0.5, ε = 0, μ = 0.9, lr 0.1, g = 2 then 1):
    /// h₁ = 0.5·4 = 2, buf₁ = 2/√2 = √2, p₁ = −0.1·√2;
    /// h₂ = 0.5·2 + 0.5·1 = 1.5, buf₂ = 0.9·√2 + 1/√1.5, p₂ = p₁ − 0.1·buf₂.
    #[test]
    fn momentum_steps_by_hand() {
        let (mut p, mut h, mut buf) = (0.0f64, 0.0f64, 0.0f64);
        update_momentum(&mut p, &mut h, &mut buf, 2.0, 0.1, 0.5, 0.0, 0.9);
        assert_eq!(h, 2.0);
        assert!((buf - 2f64.sqrt()).abs() < 1e-15 && (p + 0.1 * 2f64.sqrt()).abs() < 1e-15);
        update_momentum(&mut p, &mut h, &mut buf, 1.0, 0.1, 0.5, 0.0, 0.9);
        let b2 = 0.9 * 2f64.sqrt() + 1.0 / 1.5f64.sqrt();
        assert_eq!(h, 1.5);
        assert!((buf - b2).abs() < 1e-15 && (p + 0.1 * 2f64.sqrt() + 0.1 * b2).abs() < 1e-15);
        // μ = 0 is plain RMSProp (to rounding: lr·(g/d) against (lr·g)/d).
        let (mut q, mut hq, mut bq, mut r, mut hr) = (0.3f64, 0.0, 0.0, 0.3f64, 0.0);
        for g in [1.0, -2.0, 0.5] {
            update_momentum(&mut q, &mut hq, &mut bq, g, 0.1, 0.9, 1e-7, 0.0);
            update(&mut r, &mut hr, g, 0.1, 0.9, 1e-7);
        }
        assert!(hq == hr && (q - r).abs() < 1e-15, "{q} vs {r}");
        // Centred: ḡ₁ = 0.5·2 = 1, var = 2 − 1 = 1, buf₁ = 2/1 = 2, p₁ = −0.2.
        let (mut p, mut h, mut gb, mut buf) = (0.0f64, 0.0, 0.0, 0.0);
        update_centered_momentum(&mut p, &mut h, &mut gb, &mut buf, 2.0, 0.1, 0.5, 0.0, 0.9);
        assert_eq!((h, gb, buf), (2.0, 1.0, 2.0));
        assert!((p + 0.2).abs() < 1e-15);
    }

    #[test]
    fn centred_divides_by_std_not_rms() {
        // Constant gradient: the variance estimate is smaller than the mean square, so the
        // centred step is larger than the plain one.
        let (mut p1, mut h1) = (0.0f64, 0.0f64);
        let (mut p2, mut h2, mut gb) = (0.0f64, 0.0f64, 0.0f64);
        for _ in 0..3 {
            update(&mut p1, &mut h1, 1.0, 0.01, 0.9, 1e-7);
            update_centered(&mut p2, &mut h2, &mut gb, 1.0, 0.01, 0.9, 1e-7);
        }
        assert!(p2 < p1);
    }
}
