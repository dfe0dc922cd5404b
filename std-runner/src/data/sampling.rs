//! Seeded randomness: the mini-batch order of each epoch, over the core's `(seed, purpose,
//! index)` streams and draws ([`staticgrad::sampling`], which the WebAssembly page uses too).

use rand_core::Rng;

pub use staticgrad::sampling::{purpose, steps_per_epoch, stream};

/// How mini-batches are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sampling {
    /// A fresh permutation each epoch; every example once per epoch (last partial batch dropped).
    Shuffle,
    /// Each batch drawn uniformly with replacement, as the book's `np.random.choice`.
    Replace,
}

/// Uniform integer in `0..n` without modulo bias (`n > 0`; 0 is returned for `n = 0`, which no
/// caller passes: every set sampled from is checked to be non-empty first).
pub fn below(rng: &mut impl Rng, n: usize) -> usize {
    staticgrad::sampling::below(rng, n).unwrap_or(0)
}

/// The example indices of one epoch, `steps × batch` long: batch `s` is `order[s*batch..][..batch]`.
pub fn epoch_order(n: usize, batch: usize, sampling: Sampling, seed: u64, epoch: u64) -> Vec<usize> {
    let steps = steps_per_epoch(n, batch);
    let mut rng = stream(seed, purpose::ORDER, epoch);
    // The core's sampling (shared with the WebAssembly page); it refuses only n = 0, where
    // the order is empty.
    match sampling {
        Sampling::Shuffle => {
            let mut v = vec![0; n];
            let _ = staticgrad::sampling::shuffle(&mut rng, &mut v);
            v.truncate(steps * batch.min(n));
            v
        }
        Sampling::Replace => {
            let mut v = vec![0; steps * batch];
            if staticgrad::sampling::with_replacement(&mut rng, n, &mut v).is_err() {
                v.clear();
            }
            v
        }
    }
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
