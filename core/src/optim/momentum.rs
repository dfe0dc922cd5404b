//! Momentum (heavy ball), in the book's form: `v ← μ·v − lr·g; p ← p + v`.
//!
//! State: one velocity per parameter, starting at zero. The velocity accumulates past steps, so
//! consistent gradient directions speed up and alternating ones cancel (the "ball rolling in a
//! bowl" of the book's figure). The common form `v ← μ·v + g; p ← p − lr·v` gives the same path
//! for a constant learning rate, up to rounding.

use super::Float;

/// Floats of state per parameter (the velocity).
pub const STATE_PER_PARAM: usize = 1;

/// One element, book order: `v = mu*v - lr*g; p += v`.
#[cfg_attr(not(debug_assertions), inline(always))]
pub fn update<R: Float>(p: &mut R, v: &mut R, g: R, lr: R, mu: R) {
    *v = mu * *v - lr * g;
    *p += *v;
}

#[cfg(test)]
mod tests {
    #[test]
    fn velocity_accumulates() {
        let (mut p, mut v) = (0.0f32, 0.0f32);
        super::update(&mut p, &mut v, 1.0, 0.1, 0.9);
        assert_eq!((p, v), (-0.1, -0.1));
        super::update(&mut p, &mut v, 1.0, 0.1, 0.9);
        // v = 0.9·(−0.1) − 0.1; the second step is longer than the first.
        assert_eq!(v, 0.9f32 * -0.1 - 0.1);
        assert_eq!(p, -0.1 + v);
    }
}
