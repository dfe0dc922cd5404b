//! Adam (Kingma & Ba, 2015) in two forms, and AdamW through decoupled weight decay.
//!
//! * [`AdamForm::BookFolded`] — the book's `Adam` (default ε = 1e-7): the bias correction is
//!   folded into the step size, `lr_t = lr·√(1−β₂ᵗ)/(1−β₁ᵗ)` (powers with `powf`, as Python's
//!   `**`), the moments move by `m += (1−β₁)(g−m)`, `v += (1−β₂)(g²−v)`, and
//!   `p −= lr_t·m/(√v + ε)`: ε is added to the **uncorrected** `√v`.
//! * [`AdamForm::BiasCorrected`] — the paper's Algorithm 1 as most frameworks write it (default
//!   ε = 1e-8): `m = β₁m + (1−β₁)g`, `v = β₂v + (1−β₂)g²`, `m̂ = m/(1−β₁ᵗ)`, `v̂ = v/(1−β₂ᵗ)`,
//!   `p −= lr·m̂/(√v̂ + ε)`.
//!
//! Both forms are the same algorithm with ε placed differently; they differ in the last bits
//! everywhere and visibly when `√v` is comparable to ε.
//! AdamW (Loshchilov & Hutter, 2019) is the bias-corrected form with
//! [`WeightDecay::Decoupled`](super::WeightDecay::Decoupled), applied as `p ← p·(1 − lr·λ)` before
//! the Adam step, as PyTorch does.
//!
//! * AMSGrad (Reddi et al., 2018; `amsgrad=True` in PyTorch), in either form, keeps the running
//!   maximum `v_max = max(v_max, v)` and divides by it instead of `v`: in PyTorch's documented
//!   form, `v̂ = v_max/(1−β₂ᵗ)`, `p −= lr·m̂/(√v̂ + ε)`.
//!
//! State: two floats per parameter (`m` then `v`, each a run of the tensor's length), zero at start.
//! The step counter `t` is shared by all tensors and counted once per optimizer step.

use super::Float;

/// Floats of state per parameter (`m` and `v`).
pub const STATE_PER_PARAM: usize = 2;

/// Which Adam formula an update computes (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdamForm {
    /// The book's: bias correction folded into `lr_t`, ε after the uncorrected `√v`.
    BookFolded,
    /// The paper's / PyTorch's: bias-corrected `m̂`, `v̂`, ε after `√v̂`.
    BiasCorrected,
}

/// The book's folded step size `lr·sqrt(1 − b2^t) / (1 − b1^t)`, evaluated in that order.
#[inline]
pub fn book_lr_t<R: Float>(lr: R, b1: R, b2: R, t: u32) -> R {
    let (b1t, b2t) = powers(b1, b2, t);
    book_lr_t_from_powers(lr, b1t, b2t)
}

/// `(b1^t, b2^t)` with `powf` (as Python's `**`): what [`book_lr_t`] and [`bias_corrections`]
/// raise; the optimizer computes them once per step.
#[inline]
pub fn powers<R: Float>(b1: R, b2: R, t: u32) -> (R, R) {
    let t = R::from_u32(t);
    (b1.powf(t), b2.powf(t))
}

/// [`book_lr_t`] from the powers `b1t = b1^t`, `b2t = b2^t`: `lr·sqrt(1 − b2t) / (1 − b1t)`.
#[inline]
pub fn book_lr_t_from_powers<R: Float>(lr: R, b1t: R, b2t: R) -> R {
    lr * (R::ONE - b2t).sqrt() / (R::ONE - b1t)
}

/// One element, book order: `m += (1-b1)*(g-m); v += (1-b2)*(g*g - v); p -= lr_t*m/(sqrt(v)+eps)`.
#[cfg_attr(not(debug_assertions), inline(always))]
#[allow(clippy::too_many_arguments)]
pub fn update_book<R: Float>(p: &mut R, m: &mut R, v: &mut R, g: R, lr_t: R, b1: R, b2: R, eps: R) {
    *m += (R::ONE - b1) * (g - *m);
    *v += (R::ONE - b2) * (g * g - *v);
    *p -= lr_t * *m / (v.sqrt() + eps);
}

/// [`update_book`] over a run, without weight decay: element `i` of `values`, `m`, `v` with
/// gradient `grads[i]`, up to the shortest slice. With the `arm-fpu-sqrt` feature on an Arm
/// `eabihf` core it is one loop with the FPU's square root inside (`kernels/arm.rs`), the same
/// bits; out of line, as the other rules' loops (see `Optimizer::apply_whole`).
#[inline(never)]
#[allow(clippy::too_many_arguments)]
pub fn update_book_run(
    values: &mut [f32],
    grads: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    lr_t: f32,
    b1: f32,
    b2: f32,
    eps: f32,
) {
    #[cfg(all(feature = "arm-fpu-sqrt", target_arch = "arm", target_abi = "eabihf"))]
    crate::kernels::adam_book_run(values, grads, m, v, lr_t, 1.0 - b1, 1.0 - b2, eps);
    #[cfg(not(all(feature = "arm-fpu-sqrt", target_arch = "arm", target_abi = "eabihf")))]
    for (((p, &g), m), v) in values.iter_mut().zip(grads).zip(m).zip(v) {
        update_book(p, m, v, g, lr_t, b1, b2, eps);
    }
}

/// The bias corrections `(1 − b1^t, 1 − b2^t)` for step `t` (1-based).
#[inline]
pub fn bias_corrections<R: Float>(b1: R, b2: R, t: u32) -> (R, R) {
    let (b1t, b2t) = powers(b1, b2, t);
    (R::ONE - b1t, R::ONE - b2t)
}

/// One element, bias-corrected form: `m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;
/// p -= lr*(m/bc1) / (sqrt(v/bc2) + eps)` with `(bc1, bc2)` from [`bias_corrections`].
#[cfg_attr(not(debug_assertions), inline(always))]
#[allow(clippy::too_many_arguments)]
pub fn update_bias_corrected<R: Float>(
    p: &mut R,
    m: &mut R,
    v: &mut R,
    g: R,
    lr: R,
    b1: R,
    b2: R,
    eps: R,
    bc1: R,
    bc2: R,
) {
    *m = b1 * *m + (R::ONE - b1) * g;
    *v = b2 * *v + (R::ONE - b2) * g * g;
    let m_hat = *m / bc1;
    let v_hat = *v / bc2;
    *p -= lr * m_hat / (v_hat.sqrt() + eps);
}

/// One element, book order, AMSGrad: as [`update_book`] with `vmax = max(vmax, v)` in the
/// denominator.
#[cfg_attr(not(debug_assertions), inline(always))]
#[allow(clippy::too_many_arguments)]
pub fn update_book_amsgrad<R: Float>(
    p: &mut R,
    m: &mut R,
    v: &mut R,
    vmax: &mut R,
    g: R,
    lr_t: R,
    b1: R,
    b2: R,
    eps: R,
) {
    *m += (R::ONE - b1) * (g - *m);
    *v += (R::ONE - b2) * (g * g - *v);
    if *v > *vmax {
        *vmax = *v;
    }
    *p -= lr_t * *m / (vmax.sqrt() + eps);
}

/// One element, bias-corrected AMSGrad (PyTorch's documented algorithm): as
/// [`update_bias_corrected`] with `vmax = max(vmax, v)` and `v̂ = vmax/bc2`.
#[cfg_attr(not(debug_assertions), inline(always))]
#[allow(clippy::too_many_arguments)]
pub fn update_bias_corrected_amsgrad<R: Float>(
    p: &mut R,
    m: &mut R,
    v: &mut R,
    vmax: &mut R,
    g: R,
    lr: R,
    b1: R,
    b2: R,
    eps: R,
    bc1: R,
    bc2: R,
) {
    *m = b1 * *m + (R::ONE - b1) * g;
    *v = b2 * *v + (R::ONE - b2) * g * g;
    if *v > *vmax {
        *vmax = *v;
    }
    let m_hat = *m / bc1;
    let v_hat = *vmax / bc2;
    *p -= lr * m_hat / (v_hat.sqrt() + eps);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn book_run_equals_elementwise() {
        for n in [0usize, 1, 2, 7, 33] {
            let f =
                |k: f32| -> std::vec::Vec<f32> { (0..n).map(|i| ((i as f32 + k) * 0.73).sin()).collect() };
            let (g, mut p, mut m) = (f(0.0), f(1.0), f(2.0));
            let mut v: std::vec::Vec<f32> = f(3.0).iter().map(|x| x * x).collect();
            let (mut p2, mut m2, mut v2) = (p.clone(), m.clone(), v.clone());
            // One slice shorter: the run stops there.
            let short = n.saturating_sub(1);
            update_book_run(&mut p, &g, &mut m[..short], &mut v, 0.01, 0.9, 0.999, 1e-7);
            for i in 0..short {
                update_book(&mut p2[i], &mut m2[i], &mut v2[i], g[i], 0.01, 0.9, 0.999, 1e-7);
            }
            let bits = |x: &[f32]| x.iter().map(|x| x.to_bits()).collect::<std::vec::Vec<_>>();
            assert_eq!((bits(&p), bits(&m), bits(&v)), (bits(&p2), bits(&m2), bits(&v2)), "n = {n}");
        }
    }

    /// Two steps worked by hand (β = (0.5, 0.5), ε = 0, lr 1, g = 2 then 0):
    /// t=1: m = 1, v = 2, vmax = 2, m̂ = 1/0.5 = 2, v̂ = 2/0.5 = 4, p = −2/2 = −1;
    /// t=2: m = 0.5, v = 1 < vmax = 2, m̂ = 0.5/0.75, v̂ = 2/0.75, p = −1 − (2/3)/√(8/3).
    /// Plain Adam at t=2 divides by √(1/0.75) instead: a larger step.
    #[test]
    fn amsgrad_steps_by_hand() {
        let (mut p, mut m, mut v, mut vmax) = (0.0f64, 0.0, 0.0, 0.0);
        let (bc1, bc2) = bias_corrections(0.5, 0.5, 1);
        update_bias_corrected_amsgrad(&mut p, &mut m, &mut v, &mut vmax, 2.0, 1.0, 0.5, 0.5, 0.0, bc1, bc2);
        assert_eq!((m, v, vmax, p), (1.0, 2.0, 2.0, -1.0));
        let (bc1, bc2) = bias_corrections(0.5, 0.5, 2);
        update_bias_corrected_amsgrad(&mut p, &mut m, &mut v, &mut vmax, 0.0, 1.0, 0.5, 0.5, 0.0, bc1, bc2);
        assert_eq!((m, v, vmax), (0.5, 1.0, 2.0));
        let want = -1.0 - (0.5 / 0.75) / (2.0f64 / 0.75).sqrt();
        assert!((p - want).abs() < 1e-15, "{p} vs {want}");
        let (mut q, mut m2, mut v2) = (-1.0f64, 1.0, 2.0);
        update_bias_corrected(&mut q, &mut m2, &mut v2, 0.0, 1.0, 0.5, 0.5, 0.0, bc1, bc2);
        assert!(q < p, "plain Adam steps further once v falls: {q} vs {p}");
        // Book form: lr_t = lr·√(1−0.25)/(1−0.25) at t=2, denominator √vmax.
        let (mut p, mut m, mut v, mut vmax) = (0.0f64, 1.0, 2.0, 2.0);
        let lr_t = book_lr_t(1.0, 0.5, 0.5, 2);
        update_book_amsgrad(&mut p, &mut m, &mut v, &mut vmax, 0.0, lr_t, 0.5, 0.5, 0.0);
        assert_eq!((m, v, vmax), (0.5, 1.0, 2.0));
        assert!((p + lr_t * 0.5 / 2f64.sqrt()).abs() < 1e-15);
    }

    #[test]
    fn first_step_is_about_lr() {
        // At t = 1 both forms move by ≈ lr·sign(g), whatever the gradient's scale.
        for g in [1e-3f64, 1.0, 1e3] {
            let (mut p, mut m, mut v) = (0.0, 0.0, 0.0);
            let lr_t = book_lr_t(0.1, 0.9, 0.999, 1);
            update_book(&mut p, &mut m, &mut v, g, lr_t, 0.9, 0.999, 1e-7);
            assert!((p + 0.1).abs() < 1e-3, "{p}");
            let (mut q, mut m, mut v) = (0.0, 0.0, 0.0);
            let (bc1, bc2) = bias_corrections(0.9, 0.999, 1);
            update_bias_corrected(&mut q, &mut m, &mut v, g, 0.1, 0.9, 0.999, 1e-8, bc1, bc2);
            assert!((q + 0.1).abs() < 1e-3, "{q}");
        }
    }
}
