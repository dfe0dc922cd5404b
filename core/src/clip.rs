//! Gradient clipping over the trainable tensors of a [`Params`]: by global L2 norm and by value.
//!
//! Both touch only trainable kinds (not batch-norm running statistics) and run in the canonical
//! order (flat index, increasing), so results are bit-identical across platforms.
//! [`Optimizer`](crate::optim::Optimizer) applies them itself when configured with a
//! [`Clip`](crate::optim::Clip); these functions are for loops that want the norm or clip by hand.
//!
//! ```
//! use staticgrad::{clip, ParamKind, ParamStorage, Shape};
//! let mut ps = ParamStorage::<4, 1>::new();
//! let mut params = ps.params();
//! let w = params.alloc(Shape::row(2), ParamKind::Weight)?;
//! params.grad_mut(w)?.copy_from_slice(&[3.0, 4.0]);
//! let norm = clip::clip_global_norm(&mut params, 1.0)?;
//! assert_eq!(norm, 5.0);
//! assert_eq!(params.grad(w)?, &[0.6, 0.8]);
//! # Ok::<(), staticgrad::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::params::{ParamEntry, Params};

/// Fails with `NonFinite { what: "gradient", index }` at the first NaN or infinite gradient of a
/// trainable tensor (flat index).
#[cfg_attr(not(debug_assertions), inline(always))]
pub fn check_finite(params: &Params) -> Result<()> {
    check_finite_in(params.grads(), params.entries())
}

/// [`check_finite`] on the gradient buffer and the table: slices, not the `Params` (a call
/// given a local's address keeps that local in memory; a step's parameters stay in registers).
pub(crate) fn check_finite_in(grads: &[f32], entries: &[ParamEntry]) -> Result<()> {
    if probe_finite(grads) {
        // All finite (the common case): one pass over the whole buffer, not one per tensor.
        return Ok(());
    }
    // Rare: find the first bad element of a trainable tensor (or none: an untrainable tensor's
    // gradient, or a finite sum that overflowed).
    for e in entries.iter().filter(|e| e.kind.trainable()) {
        let g = grads.get(e.range()).unwrap_or(&[]);
        if let Some(i) = g.iter().position(|g| !g.is_finite()) {
            return Err(Error::NonFinite { what: "gradient", index: e.offset + i });
        }
    }
    Ok(())
}

/// A fast, branch-free test that is true if every element of `g` is finite, and false if one is
/// not — or, rarely, if a finite sum overflows (the caller then scans precisely). A NaN or an
/// infinity makes the sum NaN or infinite whatever else is added, so one add per element (in
/// [`PROBE_LANES`] independent lanes: any order will do, only finiteness is read) is enough.
#[inline]
pub(crate) fn probe_finite(g: &[f32]) -> bool {
    if g.len() < 2 * PROBE_LANES {
        // A small tensor (a bias, a tiny net): one lane.
        let mut s = 0.0f32;
        for &x in g {
            s += x;
        }
        return s.is_finite();
    }
    let mut lanes = [0.0f32; PROBE_LANES];
    let mut chunks = g.chunks_exact(PROBE_LANES);
    for c in &mut chunks {
        for (l, &x) in lanes.iter_mut().zip(c) {
            *l += x;
        }
    }
    for (l, &x) in lanes.iter_mut().zip(chunks.remainder()) {
        *l += x;
    }
    // Summing the lanes keeps a NaN or an infinity (∞ − ∞ is NaN): one test at the end.
    lanes.iter().fold(0.0f32, |s, &l| s + l).is_finite()
}

/// Lanes of [`probe_finite`]: on hosts with vector registers, enough independent sums to keep
/// every adder busy (8 registers of 4); on a microcontroller, what its FPU registers hold.
const PROBE_LANES: usize = if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) { 32 } else { 8 };

/// The L2 norm of all trainable gradients, `√Σ g²`, summed in flat-index order from 0.
///
/// If the plain sum of squares overflows `f32` while every gradient is finite, it is recomputed
/// scaled by the largest magnitude, so large but finite gradients get a finite norm. A NaN or
/// infinite gradient gives `NonFinite`.
pub fn global_norm(params: &Params) -> Result<f32> {
    check_finite(params)?;
    let grads = params.grads();
    let trainable = || params.entries().iter().filter(|e| e.kind.trainable());
    let mut s = 0.0f32;
    for e in trainable() {
        for &g in grads.get(e.range()).unwrap_or(&[]) {
            s += g * g;
        }
    }
    if s.is_finite() {
        return Ok(libm::sqrtf(s));
    }
    let mut max = 0.0f32;
    for e in trainable() {
        for &g in grads.get(e.range()).unwrap_or(&[]) {
            max = max.max(libm::fabsf(g));
        }
    }
    let mut s = 0.0f32;
    for e in trainable() {
        for &g in grads.get(e.range()).unwrap_or(&[]) {
            let q = g / max;
            s += q * q;
        }
    }
    Ok(max * libm::sqrtf(s))
}

/// Scales all trainable gradients by `max_norm / norm` if their [`global_norm`] exceeds
/// `max_norm` (direction kept, length capped); returns the norm **before** clipping, which is
/// worth logging. `max_norm` must be finite and > 0.
pub fn clip_global_norm(params: &mut Params, max_norm: f32) -> Result<f32> {
    if !(max_norm > 0.0 && max_norm.is_finite()) {
        return Err(Error::InvalidArgument { what: "clip norm", value: max_norm });
    }
    let norm = global_norm(params)?;
    if norm > max_norm {
        let scale = max_norm / norm;
        for_each_trainable(params, |g| {
            for g in g {
                *g *= scale;
            }
        });
    }
    Ok(norm)
}

/// Clamps every trainable gradient element to `[−limit, limit]`. `limit` must be finite and > 0.
/// NaN gradients are left as they are (the optimizer rejects them).
pub fn clip_value(params: &mut Params, limit: f32) -> Result<()> {
    if !(limit > 0.0 && limit.is_finite()) {
        return Err(Error::InvalidArgument { what: "clip value", value: limit });
    }
    for_each_trainable(params, |g| clamp_slice(g, limit));
    Ok(())
}

/// Clamps each element of `g` to `[−limit, limit]` (no panic for any `limit`; NaN stays NaN).
pub fn clamp_slice(g: &mut [f32], limit: f32) {
    for g in g {
        if *g > limit {
            *g = limit;
        } else if *g < -limit {
            *g = -limit;
        }
    }
}

fn for_each_trainable(params: &mut Params, mut f: impl FnMut(&mut [f32])) {
    let (_, grads, table) = params.split_mut();
    for e in table.iter().filter(|e| e.kind.trainable()) {
        if let Some(g) = grads.get_mut(e.range()) {
            f(g);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ParamKind, ParamStorage, Shape};

    #[test]
    fn norm_clip_keeps_direction_and_skips_running_stats() {
        let mut ps = ParamStorage::<8, 3>::new();
        let mut p = ps.params();
        let w = p.alloc(Shape::row(2), ParamKind::Weight).unwrap();
        let r = p.alloc(Shape::row(1), ParamKind::RunningVar).unwrap();
        let b = p.alloc(Shape::row(1), ParamKind::Bias).unwrap();
        p.grad_mut(w).unwrap().copy_from_slice(&[6.0, 0.0]);
        p.grad_mut(r).unwrap()[0] = 100.0;
        p.grad_mut(b).unwrap()[0] = -8.0;
        assert_eq!(global_norm(&p).unwrap(), 10.0);
        assert_eq!(clip_global_norm(&mut p, 5.0).unwrap(), 10.0);
        assert_eq!(p.grads(), &[3.0, 0.0, 100.0, -4.0]);
        // Below the limit: nothing changes.
        assert_eq!(clip_global_norm(&mut p, 5.0).unwrap(), 5.0);
        assert_eq!(p.grads(), &[3.0, 0.0, 100.0, -4.0]);
    }

    #[test]
    fn huge_finite_gradients_have_a_finite_norm() {
        let mut ps = ParamStorage::<2, 1>::new();
        let mut p = ps.params();
        let w = p.alloc(Shape::row(2), ParamKind::Weight).unwrap();
        p.grad_mut(w).unwrap().copy_from_slice(&[3e30, 4e30]);
        let n = global_norm(&p).unwrap();
        assert!((n / 5e30 - 1.0).abs() < 1e-6, "{n}");
        clip_global_norm(&mut p, 1.0).unwrap();
        assert!((p.grads()[0] - 0.6).abs() < 1e-6);
    }

    #[test]
    fn probe_finds_every_non_finite_element() {
        for n in [1usize, 7, 8, 9, 17, 64] {
            let mut g: std::vec::Vec<f32> = (0..n).map(|i| i as f32 - 3.5).collect();
            assert!(probe_finite(&g));
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                for i in 0..n {
                    let keep = g[i];
                    g[i] = bad;
                    assert!(!probe_finite(&g), "n {n}, index {i}, {bad}");
                    g[i] = keep;
                }
            }
        }
        // +inf and -inf in different lanes, and a finite overflow: the probe says "look", the
        // precise scan decides.
        assert!(!probe_finite(&[f32::INFINITY, f32::NEG_INFINITY]));
        let mut ps = ParamStorage::<16, 1>::new();
        let mut p = ps.params();
        let w = p.alloc(Shape::row(16), ParamKind::Weight).unwrap();
        p.grad_mut(w).unwrap().fill(f32::MAX);
        assert!(!probe_finite(p.grad(w).unwrap()));
        assert_eq!(check_finite(&p), Ok(()));
        p.grad_mut(w).unwrap()[13] = f32::NAN;
        assert_eq!(check_finite(&p), Err(Error::NonFinite { what: "gradient", index: 13 }));
    }

    #[test]
    fn value_clip_and_errors() {
        let mut ps = ParamStorage::<4, 1>::new();
        let mut p = ps.params();
        let w = p.alloc(Shape::row(4), ParamKind::Weight).unwrap();
        p.grad_mut(w).unwrap().copy_from_slice(&[-3.0, -0.5, 0.5, 3.0]);
        clip_value(&mut p, 1.0).unwrap();
        assert_eq!(p.grads(), &[-1.0, -0.5, 0.5, 1.0]);
        assert!(clip_value(&mut p, -1.0).is_err());
        assert!(clip_global_norm(&mut p, f32::NAN).is_err());
        p.grads_mut()[1] = f32::NAN;
        assert_eq!(global_norm(&p), Err(Error::NonFinite { what: "gradient", index: 1 }));
    }
}
