//! AdaGrad: `h += g²; p −= lr·g / (√h + ε)`, with ε **after** the square root (book: 1e-7).
//!
//! Each parameter's step shrinks with the sum of its squared past gradients, so directions with
//! large gradients are damped quickly — in the book's figure the y swing dies out at once. The
//! sum only grows, so learning eventually stops; RMSProp forgets instead.

use super::Float;

/// Floats of state per parameter (the sum of squared gradients `h`).
pub const STATE_PER_PARAM: usize = 1;

/// One element, book order: `h += g*g; p -= lr*g / (sqrt(h) + eps)`.
#[cfg_attr(not(debug_assertions), inline(always))]
pub fn update<R: Float>(p: &mut R, h: &mut R, g: R, lr: R, eps: R) {
    *h += g * g;
    *p -= lr * g / (h.sqrt() + eps);
}

#[cfg(test)]
mod tests {
    #[test]
    fn first_step_is_lr_times_sign() {
        let (mut p, mut h) = (0.0f64, 0.0f64);
        super::update(&mut p, &mut h, -4.0, 0.5, 0.0);
        assert_eq!((p, h), (0.5, 16.0));
    }
}
