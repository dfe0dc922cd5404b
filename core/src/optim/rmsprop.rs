//! RMSProp: an exponentially decaying average of squared gradients replaces AdaGrad's sum.
//!
//! Book form (default decay **0.99**, ε = 1e-7 **after** the square root):
//! `h = decay·h; h += ((1−decay)·g)·g; p −= lr·g / (√h + ε)`.
//! The centred variant (Graves, 2013; `centered=True` in PyTorch) also tracks the mean gradient
//! `ḡ` and divides by the estimated standard deviation `√(h − ḡ²) + ε`.

use super::Float;

/// Floats of state per parameter: `h` (plus `ḡ` when centred, see [`state_per_param`]).
pub const STATE_PER_PARAM: usize = 1;

/// Floats of state per parameter for the plain (1) or centred (2) variant.
pub const fn state_per_param(centered: bool) -> usize {
    if centered { 2 } else { 1 }
}

/// One element, book order: `h *= decay; h += (1-decay)*g*g; p -= lr*g / (sqrt(h) + eps)`.
#[inline(always)]
pub fn update<R: Float>(p: &mut R, h: &mut R, g: R, lr: R, decay: R, eps: R) {
    *h *= decay;
    *h += (R::ONE - decay) * g * g;
    *p -= lr * g / (h.sqrt() + eps);
}

/// One element, centred: as [`update`], plus `gbar = decay*gbar + (1-decay)*g` and the
/// denominator `sqrt(max(h - gbar², 0)) + eps` (the clamp keeps rounding from making it NaN).
#[inline(always)]
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
