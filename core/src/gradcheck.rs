//! Gradient checking by central differences, usable on a device (no_std, no allocation).
//!
//! The graph under test is a closure that records ops on a tape and returns a `1 × 1` loss. Every
//! value to be checked is a parameter (feed data through [`Tape::param`] to check an op's gradient
//! with respect to its input). For each trainable parameter element `p`, the check compares the
//! gradient from [`Tape::backward`] with `(L(p + h) − L(p − h)) / (2h)` and reports the worst
//! relative error `|a − n| / max(|a|, |n|, floor)`.
//!
//! ```
//! use staticgrad::gradcheck::{gradcheck, GradcheckConfig};
//! use staticgrad::{ParamKind, ParamStorage, Shape, TapeStorage};
//! let mut ps = ParamStorage::<16, 2>::new();
//! let mut params = ps.params();
//! let x = params.alloc(Shape::new(2, 3), ParamKind::Weight)?;
//! params.value_mut(x)?.copy_from_slice(&[0.3, -1.2, 0.8, 2.0, -0.4, 0.1]);
//! let mut ts = TapeStorage::<256, 8>::new();
//! let mut tape = ts.tape();
//! let report = gradcheck(&mut tape, &mut params, GradcheckConfig::default(), |t, p| {
//!     let v = t.param(p, x)?;
//!     let s = t.sigmoid(v)?;
//!     t.sum(s)
//! })?;
//! assert!(report.worst_rel_error < 1e-2);
//! # Ok::<(), staticgrad::Error>(())
//! ```

use crate::error::Result;
use crate::params::{ParamId, Params};
use crate::tape::{Tape, Var};

/// Step and floor of the relative error.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradcheckConfig {
    /// Perturbation `h` (default 1e-2: in f32, smaller steps drown in rounding error).
    pub step: f32,
    /// Denominator floor of the relative error, so gradients near zero compare absolutely
    /// (default 1e-2).
    pub floor: f32,
}

impl Default for GradcheckConfig {
    fn default() -> Self {
        GradcheckConfig { step: 1e-2, floor: 1e-2 }
    }
}

/// Where the worst disagreement occurred, and how large it was.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradcheckReport {
    /// Worst relative error over all checked elements.
    pub worst_rel_error: f32,
    /// The parameter tensor holding the worst element.
    pub param: ParamId,
    /// Index of the worst element within that tensor.
    pub index: usize,
    /// Backward's gradient at the worst element.
    pub analytic: f32,
    /// Central-difference gradient at the worst element.
    pub numeric: f32,
    /// Number of elements checked.
    pub checked: usize,
}

/// Checks `build`'s backward against central differences for every trainable parameter element.
/// `build` is called `1 + 2·n` times; it must be deterministic (reseed any RNG it uses inside).
/// Leaves parameter values as they were and the analytic gradients in `params`' gradient buffer.
pub fn gradcheck<F>(
    tape: &mut Tape,
    params: &mut Params,
    config: GradcheckConfig,
    mut build: F,
) -> Result<GradcheckReport>
where
    F: FnMut(&mut Tape, &Params) -> Result<Var>,
{
    tape.reset();
    params.zero_grad();
    let loss = build(tape, params)?;
    tape.backward(loss, params)?;
    tape.reset();

    let mut report = GradcheckReport {
        worst_rel_error: 0.0,
        param: ParamId(0),
        index: 0,
        analytic: 0.0,
        numeric: 0.0,
        checked: 0,
    };
    for id in params.ids() {
        let entry = params.entry(id)?;
        if !entry.kind.trainable() || params.is_frozen(id) {
            continue;
        }
        for i in 0..entry.shape.len() {
            let at = entry.offset + i;
            let original = params.values()[at];
            let plus = original + config.step;
            let minus = original - config.step;
            params.values_mut()[at] = plus;
            let lp = eval(tape, params, &mut build)?;
            params.values_mut()[at] = minus;
            let lm = eval(tape, params, &mut build)?;
            params.values_mut()[at] = original;

            let numeric = (lp - lm) / (plus - minus);
            let analytic = params.grads()[at];
            let denom = libm::fabsf(analytic).max(libm::fabsf(numeric)).max(config.floor);
            let rel = libm::fabsf(analytic - numeric) / denom;
            report.checked += 1;
            if rel > report.worst_rel_error || rel.is_nan() {
                report = GradcheckReport {
                    worst_rel_error: rel,
                    param: id,
                    index: i,
                    analytic,
                    numeric,
                    ..report
                };
            }
        }
    }
    Ok(report)
}

fn eval<F>(tape: &mut Tape, params: &Params, build: &mut F) -> Result<f32>
where
    F: FnMut(&mut Tape, &Params) -> Result<Var>,
{
    tape.reset();
    let loss = build(tape, params)?;
    let l = tape.scalar(loss)?;
    tape.reset();
    Ok(l)
}
