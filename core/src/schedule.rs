//! Learning-rate schedules as pure functions of the step number.
//!
//! A [`Schedule`] is a small `Copy` value; [`Schedule::lr`]`(step)` gives the rate for step
//! `step` (counted from 0), which the training loop passes to
//! [`Optimizer::step`](crate::optim::Optimizer::step). Nothing is stored between calls, so a
//! schedule can be evaluated out of order (plots, resumed runs) and never reaches into an
//! optimizer.
//!
//! ```
//! use staticgrad::schedule::Schedule;
//! let s = Schedule::cosine(0.5, 100, 0.0).with_warmup(4);
//! assert_eq!(s.lr(0), 0.125);       // warm-up: (step + 1)/4 of the base rate
//! assert_eq!(s.lr(3), 0.5);         // warm-up done
//! assert_eq!(s.lr(4), 0.5);         // decay step 0
//! assert!((s.lr(54) - 0.25).abs() < 1e-6); // half-way through the cosine
//! assert_eq!(s.lr(104), 0.0);       // finished: stays at the minimum
//! ```

use crate::error::{Error, Result};

/// How the rate decays after warm-up. `s` below is the decay step: `step − warmup` (0 at the
/// first step after warm-up).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decay {
    /// `base`.
    Constant,
    /// `base · gamma^⌊s / every⌋`: multiply by `gamma` every `every` steps.
    Step {
        /// Steps between drops (> 0).
        every: u32,
        /// Factor per drop, e.g. 0.1.
        gamma: f32,
    },
    /// `base · gamma^s`.
    Exponential {
        /// Factor per step, e.g. 0.999.
        gamma: f32,
    },
    /// Cosine annealing (Loshchilov & Hutter, 2017, without restarts):
    /// `min + (base − min) · (1 + cos(π·s/total)) / 2` for `s < total`, then `min`.
    Cosine {
        /// Length of the decay in steps (> 0).
        total: u32,
        /// Final rate.
        min_lr: f32,
    },
}

/// A learning-rate schedule: base rate, decay and optional linear warm-up.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    /// The rate after warm-up, before decay.
    pub base_lr: f32,
    /// The decay applied after warm-up.
    pub decay: Decay,
    /// Warm-up steps: for `step < warmup` the rate is `lr_after_warmup · (step + 1) / warmup`,
    /// rising linearly to the full rate at `step = warmup − 1`. 0 disables it.
    pub warmup: u32,
}

impl Schedule {
    /// The same rate at every step.
    pub const fn constant(lr: f32) -> Self {
        Schedule { base_lr: lr, decay: Decay::Constant, warmup: 0 }
    }

    /// Multiply by `gamma` every `every` steps.
    pub const fn step_decay(lr: f32, every: u32, gamma: f32) -> Self {
        Schedule { base_lr: lr, decay: Decay::Step { every, gamma }, warmup: 0 }
    }

    /// Multiply by `gamma` every step.
    pub const fn exponential(lr: f32, gamma: f32) -> Self {
        Schedule { base_lr: lr, decay: Decay::Exponential { gamma }, warmup: 0 }
    }

    /// Cosine annealing from `lr` to `min_lr` over `total` steps.
    pub const fn cosine(lr: f32, total: u32, min_lr: f32) -> Self {
        Schedule { base_lr: lr, decay: Decay::Cosine { total, min_lr }, warmup: 0 }
    }

    /// Adds a linear warm-up of `steps` steps before the decay starts.
    pub const fn with_warmup(mut self, steps: u32) -> Self {
        self.warmup = steps;
        self
    }

    /// Checks the schedule: rates finite and ≥ 0, `gamma` finite and > 0, `every` and `total`
    /// > 0, `min_lr ≤ base_lr`.
    pub fn validate(&self) -> Result<()> {
        let bad = |what, value| Err(Error::InvalidArgument { what, value });
        if !(self.base_lr >= 0.0 && self.base_lr.is_finite()) {
            return bad("base learning rate", self.base_lr);
        }
        match self.decay {
            Decay::Constant => Ok(()),
            Decay::Step { every, gamma } => {
                if every == 0 {
                    bad("step decay interval", 0.0)
                } else if !(gamma > 0.0 && gamma.is_finite()) {
                    bad("gamma", gamma)
                } else {
                    Ok(())
                }
            }
            Decay::Exponential { gamma } if !(gamma > 0.0 && gamma.is_finite()) => bad("gamma", gamma),
            Decay::Exponential { .. } => Ok(()),
            Decay::Cosine { total, min_lr } => {
                if total == 0 {
                    bad("cosine length", 0.0)
                } else if !(min_lr >= 0.0 && min_lr <= self.base_lr) {
                    bad("minimum learning rate", min_lr)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// The learning rate for step `step` (from 0). Pure: same input, same bits. For a schedule
    /// that fails [`Schedule::validate`] the result is still defined (a zero `every` or `total`
    /// means no decay) but not meaningful.
    pub fn lr(&self, step: u32) -> f32 {
        let s = step.saturating_sub(self.warmup);
        let decayed = match self.decay {
            Decay::Constant => self.base_lr,
            Decay::Step { every, gamma } => match s.checked_div(every) {
                Some(k) => self.base_lr * libm::powf(gamma, k as f32),
                None => self.base_lr,
            },
            Decay::Exponential { gamma } => self.base_lr * libm::powf(gamma, s as f32),
            Decay::Cosine { total, min_lr } => {
                if total == 0 {
                    self.base_lr
                } else if s >= total {
                    min_lr
                } else {
                    let c = libm::cosf(core::f32::consts::PI * (s as f32 / total as f32));
                    min_lr + (self.base_lr - min_lr) * (0.5 * (1.0 + c))
                }
            }
        };
        if step < self.warmup { decayed * ((step + 1) as f32 / self.warmup as f32) } else { decayed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_decay_drops_on_schedule() {
        let s = Schedule::step_decay(1.0, 3, 0.5);
        let got: [f32; 7] = core::array::from_fn(|i| s.lr(i as u32));
        assert_eq!(got, [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]);
    }

    #[test]
    fn exponential_and_constant() {
        let s = Schedule::exponential(2.0, 0.5);
        assert_eq!([s.lr(0), s.lr(1), s.lr(4)], [2.0, 1.0, 0.125]);
        assert_eq!(Schedule::constant(0.3).lr(1_000_000), 0.3);
    }

    #[test]
    fn cosine_is_monotone_and_ends_at_min() {
        let s = Schedule::cosine(1.0, 50, 0.1);
        assert_eq!(s.lr(0), 1.0);
        let mut prev = f32::INFINITY;
        for t in 0..60 {
            let lr = s.lr(t);
            assert!(lr <= prev && lr >= 0.1, "step {t}: {lr}");
            prev = lr;
        }
        assert_eq!(s.lr(50), 0.1);
        assert!((s.lr(25) - 0.55).abs() < 1e-6);
    }

    #[test]
    fn warmup_ramps_then_hands_over() {
        let s = Schedule::exponential(1.0, 0.5).with_warmup(4);
        let got: [f32; 6] = core::array::from_fn(|i| s.lr(i as u32));
        assert_eq!(got, [0.25, 0.5, 0.75, 1.0, 1.0, 0.5]);
    }

    #[test]
    fn validation() {
        assert!(Schedule::step_decay(0.1, 0, 0.5).validate().is_err());
        assert_eq!(Schedule::step_decay(0.1, 0, 0.5).lr(7), 0.1);
        assert!(Schedule::cosine(0.1, 10, 0.2).validate().is_err());
        assert!(Schedule::exponential(0.1, 0.0).validate().is_err());
        assert!(Schedule::constant(f32::NAN).validate().is_err());
        assert!(Schedule::cosine(0.1, 10, 0.0).with_warmup(3).validate().is_ok());
    }
}
