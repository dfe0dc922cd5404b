//! Plain stochastic gradient descent: `p ← p − lr·g`. No state.
//!
//! The book's `SGD` (default lr 0.01). Keeps no history, so every step moves against the current
//! gradient only; on the elongated bowl of the book's figure that zig-zags across the valley.

use super::Float;

/// Floats of state per parameter.
pub const STATE_PER_PARAM: usize = 0;

/// One element: `p −= lr·g` (the book's `params[key] -= self.lr * grads[key]`).
#[inline(always)]
pub fn update<R: Float>(p: &mut R, g: R, lr: R) {
    *p -= lr * g;
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_step() {
        let mut p = 1.0f32;
        super::update(&mut p, 0.5, 0.1);
        assert_eq!(p, 1.0 - 0.1 * 0.5);
    }
}
