//! Seeded randomness: the `(seed, purpose, index)` streams, unbiased integers below `n`, and
//! the mini-batch order of each epoch.

use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro128PlusPlus;

/// How mini-batches are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sampling {
    /// A fresh permutation each epoch; every example once per epoch (last partial batch dropped).
    Shuffle,
    /// Each batch drawn uniformly with replacement, as the book's `np.random.choice`.
    Replace,
}

/// A deterministic random stream for `(seed, purpose, index)`: runs can be resumed at any step
/// by re-deriving a stream instead of saving generator state.
pub fn stream(seed: u64, purpose: u64, index: u64) -> Xoshiro128PlusPlus {
    let mut z =
        seed ^ purpose.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    Xoshiro128PlusPlus::seed_from_u64(z ^ (z >> 31))
}

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

/// Uniform integer in `0..n` without modulo bias (`n > 0`).
pub fn below(rng: &mut impl Rng, n: usize) -> usize {
    let n = n as u64;
    let zone = u64::MAX - (u64::MAX % n);
    loop {
        let r = rng.next_u64();
        if r < zone {
            return (r % n) as usize;
        }
    }
}

/// The example indices of one epoch, `steps × batch` long: batch `s` is `order[s*batch..][..batch]`.
pub fn epoch_order(n: usize, batch: usize, sampling: Sampling, seed: u64, epoch: u64) -> Vec<usize> {
    let steps = steps_per_epoch(n, batch);
    let mut rng = stream(seed, purpose::ORDER, epoch);
    match sampling {
        Sampling::Shuffle => {
            let mut v: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                v.swap(i, below(&mut rng, i + 1));
            }
            v.truncate(steps * batch.min(n));
            v
        }
        Sampling::Replace => (0..steps * batch).map(|_| below(&mut rng, n)).collect(),
    }
}

/// Steps in an epoch: `n / batch`, at least 1 (a batch larger than the set uses the whole set).
pub fn steps_per_epoch(n: usize, batch: usize) -> usize {
    (n / batch.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_are_seeded() {
        let a = epoch_order(10, 3, Sampling::Shuffle, 7, 0);
        assert_eq!(a.len(), 9);
        let mut s = a.clone();
        s.sort();
        s.dedup();
        assert_eq!(s.len(), 9, "no repeats without replacement");
        assert_eq!(a, epoch_order(10, 3, Sampling::Shuffle, 7, 0));
        assert_ne!(a, epoch_order(10, 3, Sampling::Shuffle, 7, 1));
        let r = epoch_order(10, 4, Sampling::Replace, 7, 0);
        assert_eq!(r.len(), 8);
        assert!(r.iter().all(|&i| i < 10));
    }
}
