//! Seeded sampling: one random stream per `(seed, purpose, index)`, unbiased integers below `n`,
//! and the mini-batch order of an epoch written into a caller's buffer.
//!
//! A run that derives every stream from `(seed, purpose, index)` — the initial weights, each
//! epoch's order, each step's dropout masks — can be resumed at any step by re-deriving a stream
//! instead of saving generator state, and replayed on any target: the std runner, the WebAssembly
//! page and a microcontroller draw the same batches from the same seed.
//!
//! ```
//! use staticgrad::sampling::{purpose, shuffle, stream};
//! let mut order = [0usize; 10];
//! shuffle(&mut stream(7, purpose::ORDER, 0), &mut order)?;
//! let mut again = [0usize; 10];
//! shuffle(&mut stream(7, purpose::ORDER, 0), &mut again)?;
//! assert_eq!(order, again); // same seed, epoch and purpose: same order
//! let mut sorted = order;
//! sorted.sort_unstable();
//! assert_eq!(sorted, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]); // a permutation
//! # Ok::<(), staticgrad::Error>(())
//! ```

use crate::error::{Error, Result};
use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro128PlusPlus;

/// Stream purposes for [`stream`].
pub mod purpose {
    /// Parameter initialisation.
    pub const INIT: u64 = 1;
    /// Mini-batch order of an epoch.
    pub const ORDER: u64 = 2;
    /// Dropout masks of a step.
    pub const DROPOUT: u64 = 3;
    /// Augmentation offsets of a step.
    pub const AUGMENT: u64 = 4;
}

/// A deterministic random stream for `(seed, purpose, index)`: the three are mixed (SplitMix64's
/// finaliser) into the seed of a xoshiro128++ generator, so neighbouring indices give unrelated
/// streams.
pub fn stream(seed: u64, purpose: u64, index: u64) -> Xoshiro128PlusPlus {
    let mut z =
        seed ^ purpose.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    Xoshiro128PlusPlus::seed_from_u64(z ^ (z >> 31))
}

/// Uniform integer in `0..n` without modulo bias (draws above the largest multiple of `n` are
/// rejected). `n = 0` is refused.
pub fn below(rng: &mut impl Rng, n: usize) -> Result<usize> {
    if n == 0 {
        return Err(Error::InvalidArgument { what: "sampling bound (below 0)", value: 0.0 });
    }
    let n = n as u64;
    let zone = u64::MAX - (u64::MAX % n);
    loop {
        let r = rng.next_u64();
        if r < zone {
            return Ok((r % n) as usize);
        }
    }
}

/// Fills `order` with a uniformly random permutation of `0..order.len()` (Fisher–Yates, from the
/// last position down, one [`below`] draw per position). The order of a shuffled epoch is its
/// first `steps × batch` entries.
pub fn shuffle(rng: &mut impl Rng, order: &mut [usize]) -> Result<()> {
    for (i, v) in order.iter_mut().enumerate() {
        *v = i;
    }
    for i in (1..order.len()).rev() {
        order.swap(i, below(rng, i + 1)?);
    }
    Ok(())
}

/// Fills `order` with indices drawn uniformly from `0..n` with replacement (the book's
/// `np.random.choice`). `n = 0` is refused unless `order` is empty.
pub fn with_replacement(rng: &mut impl Rng, n: usize, order: &mut [usize]) -> Result<()> {
    for v in order.iter_mut() {
        *v = below(rng, n)?;
    }
    Ok(())
}

/// Steps in an epoch: `n / batch`, at least 1 (a batch larger than the set uses the whole set).
pub const fn steps_per_epoch(n: usize, batch: usize) -> usize {
    let b = if batch == 0 { 1 } else { batch };
    let s = n / b;
    if s == 0 { 1 } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_seeded_and_distinct() {
        let mut a = stream(7, purpose::ORDER, 0);
        let mut b = stream(7, purpose::ORDER, 0);
        let mut c = stream(7, purpose::ORDER, 1);
        let (x, y, z) = (a.next_u64(), b.next_u64(), c.next_u64());
        assert_eq!(x, y);
        assert_ne!(x, z);
    }

    #[test]
    fn below_stays_below_and_refuses_zero() {
        let mut r = stream(1, 2, 3);
        for n in 1..50 {
            assert!(below(&mut r, n).unwrap() < n);
        }
        assert!(below(&mut r, 0).is_err());
        assert!(with_replacement(&mut r, 0, &mut [0; 3]).is_err());
        assert!(with_replacement(&mut r, 0, &mut []).is_ok());
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut v = [0usize; 33];
        shuffle(&mut stream(3, purpose::ORDER, 5), &mut v).unwrap();
        let mut s = v;
        s.sort_unstable();
        assert!(s.iter().enumerate().all(|(i, &x)| i == x));
        assert_ne!(v, s, "33 elements left in order: not shuffled");
        assert_eq!((steps_per_epoch(10, 3), steps_per_epoch(2, 100), steps_per_epoch(5, 0)), (3, 1, 5));
    }
}
