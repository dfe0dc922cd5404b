//! Validation of settings, shared by every subcommand and experiment: each check refuses a value
//! with one line, `--flag value: why`, before anything is created on disk (exit code 2).

use std::fmt::Display;

/// A refused setting: the one-line message `--flag value: why`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

/// The refusal of `flag` with value `v`.
pub fn refuse(flag: &str, v: impl Display, why: impl Display) -> Invalid {
    Invalid(format!("{flag} {v}: {why}"))
}

/// A finite number greater than 0 (a learning rate, a scale).
pub fn positive<T: Into<f64> + Copy + Display>(flag: &str, v: T) -> Result<T, Invalid> {
    let x: f64 = v.into();
    if x.is_finite() && x > 0.0 { Ok(v) } else { Err(refuse(flag, v, "must be a positive number")) }
}

/// A finite number, 0 or more (a weight decay).
pub fn non_negative<T: Into<f64> + Copy + Display>(flag: &str, v: T) -> Result<T, Invalid> {
    let x: f64 = v.into();
    if x.is_finite() && x >= 0.0 { Ok(v) } else { Err(refuse(flag, v, "must be zero or a positive number")) }
}

/// A ratio in `[0, 1)` (dropout, a split fraction).
pub fn fraction<T: Into<f64> + Copy + Display>(flag: &str, v: T) -> Result<T, Invalid> {
    let x: f64 = v.into();
    if (0.0..1.0).contains(&x) { Ok(v) } else { Err(refuse(flag, v, "must be in [0, 1)")) }
}

/// A count in `min..=max`.
pub fn count<T: PartialOrd + Copy + Display>(flag: &str, v: T, min: T, max: T) -> Result<T, Invalid> {
    if v < min {
        Err(refuse(flag, v, format_args!("must be at least {min}")))
    } else if v > max {
        Err(refuse(flag, v, format_args!("must be at most {max}")))
    } else {
        Ok(v)
    }
}

/// Counts that must each be at least 1 (sizes, steps, epochs, …), as `(flag, value)` pairs:
/// the first that is 0 is refused, naming its flag.
pub fn nonzero(counts: &[(&str, usize)]) -> Result<(), Invalid> {
    for &(flag, v) in counts {
        count(flag, v, 1, usize::MAX)?;
    }
    Ok(())
}

/// A range `[lo, hi]` of base-10 exponents: both finite, `lo ≤ hi`, inside `[min, max]`.
pub fn exponents(flag: &str, v: &[f64], min: f64, max: f64) -> Result<[f64; 2], Invalid> {
    let shown = v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(" ");
    let &[lo, hi] = v else {
        return Err(refuse(flag, shown, "takes two numbers, LO HI"));
    };
    if !(lo.is_finite() && hi.is_finite()) {
        return Err(refuse(flag, shown, "both exponents must be finite numbers"));
    }
    if lo > hi {
        return Err(refuse(flag, shown, "LO must not exceed HI"));
    }
    if lo < min || hi > max {
        return Err(refuse(flag, shown, format_args!("exponents must lie in [{min}, {max}]")));
    }
    Ok([lo, hi])
}

/// Most worker threads a command starts: far above any machine's cores, far below what the
/// system refuses with an unhelpful "Resource temporarily unavailable".
pub const MAX_THREADS: usize = 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_names_flag_and_value() {
        assert_eq!(positive("--lr", f32::NAN).unwrap_err().0, "--lr NaN: must be a positive number");
        assert!(positive("--lr", 0.0f32).is_err() && positive("--lr", f32::INFINITY).is_err());
        assert_eq!(positive("--lr", 0.5f32), Ok(0.5));
        assert_eq!(
            non_negative("--lambda", -1.0f32).unwrap_err().0,
            "--lambda -1: must be zero or a positive number"
        );
        assert_eq!(non_negative("--lambda", 0.0f32), Ok(0.0));
        assert!(fraction("--val", -3.0).is_err() && fraction("--val", 1.0).is_err());
        assert!(fraction("--val", f64::NAN).is_err());
        assert_eq!(
            count("--threads", 100_000usize, 1, MAX_THREADS).unwrap_err().0,
            "--threads 100000: must be at most 1024"
        );
        assert_eq!(count("--trials", 0usize, 1, 10).unwrap_err().0, "--trials 0: must be at least 1");
        assert_eq!(exponents("--lr-exp", &[-6.0, -2.0], -30.0, 2.0), Ok([-6.0, -2.0]));
        assert!(
            exponents("--lr-exp", &[f64::NAN, f64::NAN], -30.0, 2.0)
                .unwrap_err()
                .0
                .starts_with("--lr-exp NaN NaN:")
        );
        assert!(exponents("--lr-exp", &[100.0, 200.0], -30.0, 2.0).is_err());
        assert!(exponents("--wd-exp", &[-2.0, -4.0], -30.0, 2.0).is_err());
        assert!(exponents("--wd-exp", &[-2.0], -30.0, 2.0).is_err());
    }
}
