//! Nesterov's accelerated gradient, in the reformulation the book uses (Bengio et al., 2013):
//! the parameter stored is the look-ahead point, so only the current gradient is needed.
//!
//! Three orderings exist in the wild and give different paths:
//! * [`NesterovForm::Book`] — the Japanese repository since its January 2021 fix:
//!   `p += μ²·v − (1+μ)·lr·g`, then `v = μ·v − lr·g` (uses the **old** velocity). This is
//!   the correct reformulation of Nesterov momentum.
//! * [`NesterovForm::BookPre2021`] — the older ordering still in the Korean repository: the
//!   velocity is updated **first** and the new one is used, `v = μ·v − lr·g; p += μ²·v − (1+μ)·lr·g`.
//!   Kept so that code ported from that edition can be reproduced exactly.
//! * [`NesterovForm::Sutskever`] — the form of PyTorch's `SGD(nesterov=True)` and Keras:
//!   `b = μ·b + g; p −= lr·(g + μ·b)`.
//!
//! State: one velocity (or buffer) per parameter, starting at zero.

use super::Float;

/// Floats of state per parameter (the velocity).
pub const STATE_PER_PARAM: usize = 1;

/// Which Nesterov ordering an update computes (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NesterovForm {
    /// Book, Japanese repository after the 2021 fix: position from the old velocity.
    Book,
    /// Book, pre-2021 ordering (Korean repository): position from the already-updated velocity.
    BookPre2021,
    /// PyTorch/Keras form: `b = μ·b + g; p −= lr·(g + μ·b)`.
    Sutskever,
}

/// One element, book order (JP 2021):
/// `p += mu*mu*v; p -= (1+mu)*lr*g; v *= mu; v -= lr*g`.
#[cfg_attr(not(debug_assertions), inline(always))]
pub fn update_book<R: Float>(p: &mut R, v: &mut R, g: R, lr: R, mu: R) {
    *p += mu * mu * *v;
    *p -= (R::ONE + mu) * lr * g;
    *v *= mu;
    *v -= lr * g;
}

/// One element, pre-2021 order: `v *= mu; v -= lr*g; p += mu*mu*v; p -= (1+mu)*lr*g`.
#[cfg_attr(not(debug_assertions), inline(always))]
pub fn update_book_pre2021<R: Float>(p: &mut R, v: &mut R, g: R, lr: R, mu: R) {
    *v *= mu;
    *v -= lr * g;
    *p += mu * mu * *v;
    *p -= (R::ONE + mu) * lr * g;
}

/// One element, PyTorch/Keras form: `b = mu*b + g; p -= lr*(g + mu*b)`.
#[cfg_attr(not(debug_assertions), inline(always))]
pub fn update_sutskever<R: Float>(p: &mut R, b: &mut R, g: R, lr: R, mu: R) {
    *b = mu * *b + g;
    *p -= lr * (g + mu * *b);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orderings_differ_from_the_second_step() {
        let run = |f: fn(&mut f64, &mut f64, f64, f64, f64)| {
            let (mut p, mut v) = (1.0f64, 0.0f64);
            let mut out = [0.0; 2];
            for o in &mut out {
                let g = p; // gradient of p²/2
                f(&mut p, &mut v, g, 0.1, 0.9);
                *o = p;
            }
            out
        };
        let jp = run(update_book);
        let kr = run(update_book_pre2021);
        // First step from v = 0: JP moves by (1+μ)·lr·g only; pre-2021 also adds μ²·(−lr·g).
        assert_eq!(jp[0], 1.0 - 1.9 * 0.1);
        assert_eq!(kr[0], 1.0 + 0.81 * -0.1 - 1.9 * 0.1);
        assert_ne!(jp[1], kr[1]);
    }

    #[test]
    fn sutskever_first_step() {
        let (mut p, mut b) = (1.0f64, 0.0f64);
        update_sutskever(&mut p, &mut b, 1.0, 0.1, 0.9);
        assert_eq!(b, 1.0);
        assert_eq!(p, 1.0 - 0.1 * 1.9);
    }
}
