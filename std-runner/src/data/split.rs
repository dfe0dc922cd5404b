//! Train, validation and test splits of a pool of examples, taken from its end in file order.

use super::Dataset;
use crate::Error;
use std::fmt;

/// A split size: a count of examples or a fraction of them.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum SplitSize {
    /// Exactly this many examples.
    Count(usize),
    /// This fraction of the examples (rounded down), in `[0, 1)`.
    Fraction(f64),
}

impl SplitSize {
    /// Examples out of `n`.
    pub fn of(self, n: usize) -> usize {
        match self {
            SplitSize::Count(c) => c,
            SplitSize::Fraction(f) => (n as f64 * f).floor() as usize,
        }
    }
}

impl std::str::FromStr for SplitSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.contains('.') {
            let f: f64 = s.parse().map_err(|_| format!("{s:?} is not a count or a fraction"))?;
            if !(0.0..1.0).contains(&f) {
                return Err(format!("fraction {s} is not in [0, 1)"));
            }
            Ok(SplitSize::Fraction(f))
        } else {
            s.parse().map(SplitSize::Count).map_err(|_| format!("{s:?} is not a count or a fraction"))
        }
    }
}

impl fmt::Display for SplitSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SplitSize::Count(c) => write!(f, "{c}"),
            SplitSize::Fraction(x) => write!(f, "{x}"),
        }
    }
}

/// Train, validation and test sets.
#[derive(Debug, Clone)]
pub struct Splits {
    /// Examples trained on.
    pub train: Dataset,
    /// Held out for model selection (may be empty).
    pub val: Dataset,
    /// Held out for the final score (may be empty).
    pub test: Dataset,
}

/// Splits `pool` in file order: test from its end (unless a separate test set is given), then
/// validation from the end of what is left, training examples first. The book takes the first
/// N training records, so order is kept.
pub fn split(
    pool: Dataset,
    test: Option<Dataset>,
    val: SplitSize,
    test_size: SplitSize,
) -> Result<Splits, Error> {
    // The held-out parts are copied out of the tail and the pool truncated in place, so the
    // examples are stored once plus the held-out copies (see [`split_copy_rows`]).
    let (rest, test) = match test {
        Some(t) => (pool, t),
        None => hold_out_tail(pool, test_size, "test")?,
    };
    let (rest, val) = hold_out_tail(rest, val, "validation")?;
    Ok(Splits { train: rest, val, test })
}

/// The last `size` examples of `pool` copied out, and `pool` truncated to the rest; refused when
/// nothing would be left to train on.
fn hold_out_tail(mut pool: Dataset, size: SplitSize, what: &str) -> Result<(Dataset, Dataset), Error> {
    let n = pool.len();
    let k = size.of(n);
    if k >= n {
        return Err(Error::data(
            &pool.source,
            format!("{what} split {size} leaves nothing to train on ({n} examples)"),
        ));
    }
    let held = pool.slice(n - k..n);
    pool.truncate(n - k);
    Ok((pool, held))
}

/// Examples [`split`] copies out of a pool of `n` (the test part when there is no separate test
/// set, and the validation part); `None` if a split leaves nothing to train on.
pub fn split_copy_rows(n: usize, separate_test: bool, val: SplitSize, test_size: SplitSize) -> Option<usize> {
    let kt = if separate_test { 0 } else { test_size.of(n) };
    let m = n.checked_sub(kt).filter(|&m| m > 0)?;
    let kv = val.of(m);
    (kv < m).then_some(kt + kv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Features;

    #[test]
    fn splits_and_sizes() {
        assert_eq!("0.1".parse::<SplitSize>().unwrap(), SplitSize::Fraction(0.1));
        assert_eq!("1000".parse::<SplitSize>().unwrap(), SplitSize::Count(1000));
        assert!("1.5".parse::<SplitSize>().is_err());
        let d = Dataset {
            source: "t".into(),
            features: 1,
            x: Features::Floats((0..10).map(|i| i as f32).collect()),
            y: vec![0; 10],
        };
        let s = split(d.clone(), None, SplitSize::Count(2), SplitSize::Fraction(0.3)).unwrap();
        assert_eq!(s.train.x, Features::Floats(vec![0., 1., 2., 3., 4.]));
        assert_eq!(s.val.x, Features::Floats(vec![5., 6.]));
        assert_eq!(s.test.x, Features::Floats(vec![7., 8., 9.]));
        assert_eq!(split_copy_rows(10, false, SplitSize::Count(2), SplitSize::Fraction(0.3)), Some(5));
        assert_eq!(split_copy_rows(10, true, SplitSize::Count(2), SplitSize::Fraction(0.3)), Some(2));
        assert_eq!(split_copy_rows(10, false, SplitSize::Count(0), SplitSize::Count(10)), None);
        assert!(split(d, None, SplitSize::Count(0), SplitSize::Count(10)).is_err());
    }
}
