//! The optimizer's state buffer: where a training run's progress lives.
//!
//! The caller owns the state, a `&mut [f32]` exactly [`Optimizer::state_len`] floats long. It
//! starts with a header of [`HEADER_LEN`] floats, followed by the rule's per-parameter quantities:
//!
//! | floats | what |
//! |---|---|
//! | `0` | the step counter `t` (steps begun so far), stored as the bits of a `u32` (see below) |
//! | `1`, `2` | Adam's `β₁ᵗ` and `β₂ᵗ` for step `t`, written by [`Optimizer::begin_step`] (other rules leave them alone) |
//! | `3 ..` | `k` = [`Optimizer::floats_per_param`] floats per parameter float, tensor by tensor ([`Optimizer::state_range`]) |
//!
//! So **a checkpoint is the parameter values plus the state floats**, for every rule: an
//! [`Optimizer`] holds only options and is never changed by a step. An all-zero state is a fresh
//! start (`t` = 0); copying saved floats back in resumes, bit for bit.
//!
//! Inside a tensor's slice each of the `k` quantities is a run of the tensor's length (Adam: `m`
//! then `v`; centred RMSProp: `h` then `ḡ`). Untrainable tensors (batch-norm running statistics)
//! own a slice too, which stays untouched: offsets stay a multiplication.
//!
//! # The step counter's encoding
//! `t` is stored as `f32::from_bits(t)` and read back with [`f32::to_bits`], so every count is
//! exact and a step costs a load, an add and a store (no conversion, which a Cortex-M0 does in
//! software). `t` saturates at [`MAX_STEPS`], the bits of `f32::MAX`, so the float is always
//! finite and non-negative (a subnormal below 2²³ steps): never a NaN, whose payload is the one
//! thing `from_bits`/`to_bits` may not preserve (x87). Finite floats are copied bit for bit by
//! every load, store and move (flush-to-zero modes touch only arithmetic operands), and by the
//! little-endian bytes of a checkpoint file. A header float whose bits exceed [`MAX_STEPS`]
//! (negative, infinite, NaN — e.g. a state from another layout) is refused as
//! [`Error::InvalidArgument`].
//!
//! ```
//! use staticgrad::optim::{self, Optimizer};
//! use staticgrad::{ParamKind, ParamStorage, Shape};
//!
//! const OPT: Optimizer = Optimizer::adam();
//! let mut ps = ParamStorage::<2, 1>::new();
//! let mut params = ps.params();
//! params.alloc(Shape::row(2), ParamKind::Weight)?;
//! let mut state = [0.0f32; OPT.state_len(2)]; // the header, then m and v
//! for _ in 0..3 {
//!     params.grads_mut().copy_from_slice(&[0.5, -1.0]);
//!     OPT.step(&mut params, &mut state, 0.001)?;
//! }
//! assert_eq!(optim::steps(&state)?, 3);
//! // A checkpoint: `params.values()` and `state`. Resuming copies both back in.
//! # Ok::<(), staticgrad::Error>(())
//! ```

use super::{Optimizer, Rule, adam};
use crate::error::{Error, Region, Result};
use crate::params::ParamEntry;

/// Floats at the start of every state buffer, before the per-parameter quantities: the step
/// counter and Adam's `β₁ᵗ`, `β₂ᵗ` (see the [module documentation](self)).
pub const HEADER_LEN: usize = 3;

/// The largest step count a state holds (`f32::MAX.to_bits()`, 2,139,095,039); the counter
/// saturates there.
pub const MAX_STEPS: u32 = 0x7F7F_FFFF;

/// Steps begun so far according to `state`'s header: 0 for a fresh (all-zero) state.
///
/// `Capacity` of `OptimizerState` if `state` is shorter than the header, `InvalidArgument` if
/// the counter's float is not a valid count (see the [module documentation](self)).
pub fn steps(state: &[f32]) -> Result<u32> {
    Progress::read(state).map(|p| p.t)
}

/// What a step works with: the step number `t` and, for Adam, `β₁ᵗ` and `β₂ᵗ` (each computed
/// once per step, so every tensor and every row of the fused update gets the same bits).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Progress {
    pub(crate) t: u32,
    pub(crate) b1t: f32,
    pub(crate) b2t: f32,
}

impl Progress {
    /// The header of `state` as stored.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn read(state: &[f32]) -> Result<Progress> {
        let Some(&[t, b1t, b2t]) = state.first_chunk::<HEADER_LEN>() else {
            return Err(header_missing(state.len()));
        };
        let bits = t.to_bits();
        if bits > MAX_STEPS {
            return Err(bad_counter(t));
        }
        Ok(Progress { t: bits, b1t, b2t })
    }

    /// The progress of a step that [`Optimizer::begin_step`] began: as [`read`](Self::read),
    /// refusing a counter of 0 (no step begun) with the same error as an invalid or missing
    /// one, in one comparison (Adam's fused step checks it for every row it updates).
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn begun(state: &[f32]) -> Result<Progress> {
        match state.first_chunk::<HEADER_LEN>() {
            Some(&[t, b1t, b2t]) if t.to_bits().wrapping_sub(1) < MAX_STEPS => {
                Ok(Progress { t: t.to_bits(), b1t, b2t })
            }
            _ => Err(not_begun()),
        }
    }
}

#[cold]
#[inline(never)]
fn not_begun() -> Error {
    Error::InvalidArgument { what: "step counter (call begin_step first)", value: 0.0 }
}

#[cold]
#[inline(never)]
fn bad_counter(t: f32) -> Error {
    Error::InvalidArgument { what: "optimizer state's step counter", value: t }
}

#[cold]
#[inline(never)]
fn header_missing(available: usize) -> Error {
    Error::Capacity { region: Region::OptimizerState, needed: HEADER_LEN, available }
}

impl Optimizer {
    /// Floats of caller state needed for `param_len` parameter floats ([`Params::len`](crate::Params::len)):
    /// the [header](HEADER_LEN) plus [`floats_per_param`](Self::floats_per_param)` × param_len`.
    /// Saturates, so an absurd size never fits instead of wrapping.
    pub const fn state_len(&self, param_len: usize) -> usize {
        HEADER_LEN.saturating_add(self.floats_per_param().saturating_mul(param_len))
    }

    /// Where the state of tensor `entry` lives in the whole state buffer:
    /// `HEADER_LEN + k·entry.offset .. HEADER_LEN + k·(entry.offset + len)` with `k` =
    /// [`Optimizer::floats_per_param`] (saturating).
    pub const fn state_range(&self, entry: &ParamEntry) -> core::ops::Range<usize> {
        let k = self.floats_per_param();
        let end = entry.offset.saturating_add(entry.shape.len());
        HEADER_LEN.saturating_add(k.saturating_mul(entry.offset))
            ..HEADER_LEN.saturating_add(k.saturating_mul(end))
    }

    /// The progress of the step after the one recorded in `state`: `t + 1` (saturating at
    /// [`MAX_STEPS`]) and, for Adam, its powers. Reads only; [`store_progress`](Self::store_progress)
    /// writes it once every check has passed.
    // Adam's `powf` folds away for a `const` optimizer of another rule
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn next_progress(&self, state: &[f32]) -> Result<Progress> {
        let Progress { t, .. } = Progress::read(state)?;
        let t = if t < MAX_STEPS { t + 1 } else { MAX_STEPS };
        let (b1t, b2t) = match self.rule {
            Rule::Adam { beta1, beta2, .. } => adam::powers(beta1, beta2, t),
            _ => (1.0, 1.0),
        };
        Ok(Progress { t, b1t, b2t })
    }

    /// The step [`begin_step`](Self::begin_step) began, for a per-part update: Adam's update
    /// reads its powers from the header and refuses a state whose step was not begun; the other
    /// rules read nothing from it (their arithmetic does not depend on the counter).
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn begun(&self, state: &[f32]) -> Result<Progress> {
        match self.rule {
            Rule::Adam { .. } => Progress::begun(state),
            _ => Ok(Progress { t: 1, b1t: 1.0, b2t: 1.0 }),
        }
    }

    /// Writes `p` into `state`'s header (the powers only for Adam, whose step reads them).
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn store_progress(&self, state: &mut [f32], p: Progress) {
        if let Some([t, b1t, b2t]) = state.first_chunk_mut::<HEADER_LEN>() {
            *t = f32::from_bits(p.t);
            if let Rule::Adam { .. } = self.rule {
                (*b1t, *b2t) = (p.b1t, p.b2t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_len_counts_the_header() {
        const N: usize = Optimizer::adam().state_len(10);
        assert_eq!(N, HEADER_LEN + 20);
        assert_eq!(Optimizer::sgd().state_len(10), HEADER_LEN);
        assert_eq!(Optimizer::rmsprop().centered(true).state_len(3), HEADER_LEN + 6);
        assert_eq!(Optimizer::adam().state_len(usize::MAX), usize::MAX);
        assert_eq!(Optimizer::sgd().state_len(usize::MAX), HEADER_LEN);
        let e = ParamEntry { offset: 4, shape: crate::Shape::row(2), kind: crate::ParamKind::Bias };
        assert_eq!(Optimizer::adam().state_range(&e), HEADER_LEN + 8..HEADER_LEN + 12);
        assert_eq!(Optimizer::sgd().state_range(&e), HEADER_LEN..HEADER_LEN);
    }

    #[test]
    fn counter_round_trips_over_its_whole_range() {
        let opt = Optimizer::momentum();
        for t in [0, 1, 2, 1 << 23, (1 << 24) + 1, 0x7F7F_FFFE, MAX_STEPS] {
            let mut state = [0.0f32; HEADER_LEN];
            opt.store_progress(&mut state, Progress { t, b1t: 1.0, b2t: 1.0 });
            assert!(state[0].is_finite() && state[0] >= 0.0, "{t}");
            // Through the bytes a checkpoint file holds.
            let back = f32::from_le_bytes(state[0].to_le_bytes());
            assert_eq!(steps(&[back, 0.0, 0.0]), Ok(t));
            let next = opt.next_progress(&state).unwrap().t;
            assert_eq!(next, if t == MAX_STEPS { MAX_STEPS } else { t + 1 });
        }
    }

    #[test]
    fn bad_headers_refused() {
        assert_eq!(steps(&[0.0; 2]), Err(header_missing(2)));
        for bad in [-1.0, f32::INFINITY, f32::NAN, -0.0] {
            assert!(matches!(steps(&[bad, 0.0, 0.0]), Err(Error::InvalidArgument { .. })), "{bad}");
        }
        assert_eq!(steps(&[0.0; 3]), Ok(0));
    }

    #[test]
    fn a_begun_step_is_one_past_zero() {
        assert_eq!(Progress::begun(&[0.0; 3]), Err(not_begun()));
        assert_eq!(Progress::begun(&[f32::from_bits(1); 2]), Err(not_begun()));
        assert_eq!(Progress::begun(&[f32::NAN, 0.0, 0.0]), Err(not_begun()));
        assert_eq!(Progress::begun(&[f32::from_bits(MAX_STEPS + 1), 0.0, 0.0]), Err(not_begun()));
        for t in [1, 2, MAX_STEPS] {
            assert_eq!(
                Progress::begun(&[f32::from_bits(t), 0.5, 0.25]),
                Ok(Progress { t, b1t: 0.5, b2t: 0.25 })
            );
        }
    }

    #[test]
    fn adam_powers_stored_with_the_counter() {
        let opt = Optimizer::adam_bias_corrected();
        let mut state = [0.0f32; HEADER_LEN];
        for _ in 0..7 {
            let p = opt.next_progress(&state).unwrap();
            opt.store_progress(&mut state, p);
        }
        let (b1t, b2t) = adam::powers(0.9f32, 0.999, 7);
        assert_eq!(state.map(f32::to_bits), [f32::from_bits(7), b1t, b2t].map(f32::to_bits));
        // Other rules write only the counter.
        let mut other = [0.0f32; HEADER_LEN];
        Optimizer::sgd().store_progress(&mut other, Progress { t: 5, b1t: 0.5, b2t: 0.5 });
        assert_eq!(other, [f32::from_bits(5), 0.0, 0.0]);
    }
}
