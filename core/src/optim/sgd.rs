//! Plain stochastic gradient descent: `p ← p − lr·g`. No state.
//!
//! The book's `SGD` (default lr 0.01). Keeps no history, so every step moves against the current
//! gradient only; on the elongated bowl of the book's figure that zig-zags across the valley.

use super::Float;

/// Floats of state per parameter.
pub const STATE_PER_PARAM: usize = 0;

/// One element: `p −= lr·g` (the book's `params[key] -= self.lr * grads[key]`).
#[cfg_attr(not(debug_assertions), inline(always))]
pub fn update<R: Float>(p: &mut R, g: R, lr: R) {
    *p -= lr * g;
}

/// [`update`] over a run (`values[i] −= lr·grads[i]`, pairs up to the shorter slice), eight
/// elements per loop iteration: the same arithmetic per element, fewer loop instructions on an
/// in-order core (the plain SGD step of a training loop is mostly this loop). With the
/// `arm-fpu-sqrt` feature on an Arm `eabihf` core, a loop moving four floats per load and store
/// (`kernels/arm.rs`), the same bits.
#[inline]
pub fn update_run(values: &mut [f32], grads: &[f32], lr: f32) {
    #[cfg(all(feature = "arm-fpu-sqrt", target_arch = "arm", target_abi = "eabihf"))]
    crate::kernels::sgd_run(values, grads, lr);
    #[cfg(not(all(feature = "arm-fpu-sqrt", target_arch = "arm", target_abi = "eabihf")))]
    {
        let n = values.len().min(grads.len());
        let (values, grads) = (&mut values[..n], &grads[..n]);
        let mut vs = values.chunks_exact_mut(8);
        let mut gs = grads.chunks_exact(8);
        for (v, g) in (&mut vs).zip(&mut gs) {
            for (p, &g) in v.iter_mut().zip(g) {
                update(p, g, lr);
            }
        }
        for (p, &g) in vs.into_remainder().iter_mut().zip(gs.remainder()) {
            update(p, g, lr);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_step() {
        let mut p = 1.0f32;
        super::update(&mut p, 0.5, 0.1);
        assert_eq!(p, 1.0 - 0.1 * 0.5);
    }

    #[test]
    fn run_equals_elementwise() {
        for n in [0usize, 1, 7, 8, 9, 23] {
            let g: std::vec::Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let mut a: std::vec::Vec<f32> = (0..n).map(|i| i as f32 * 0.1 - 1.0).collect();
            let mut b = a.clone();
            super::update_run(&mut a, &g, 0.3);
            for (p, &g) in b.iter_mut().zip(&g) {
                super::update(p, g, 0.3);
            }
            assert_eq!(a, b);
        }
    }
}
