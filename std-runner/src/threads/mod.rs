//! The core's [`Parallel`] driver for the runner: `--threads N`.
//!
//! The core splits each product's output rows (and the larger element-wise maps) into chunks
//! and asks the driver to run them. A training run or a benchmark hands them to a [`Team`] of
//! spinning workers (`team.rs`: a split costs well under a microsecond); work that is itself
//! one of many rayon tasks (an experiment's networks) shares rayon's workers instead
//! ([`Pool::current`]). Every thread count gives the same bits (see `staticgrad::parallel`), so
//! `--threads` changes only the speed.

mod team;

use crate::Error;
use rayon::prelude::*;
use staticgrad::parallel::{Parallel, Sequential};
pub use team::Team;

/// The workers of a run: `threads − 1` spinning threads plus the caller.
#[derive(Debug)]
pub struct Pool {
    team: Option<Team>,
    threads: usize,
}

impl Pool {
    /// A pool of `threads` workers; `None` for one per core.
    pub fn new(threads: Option<usize>) -> Result<Pool, Error> {
        let threads = match threads {
            Some(0) => return Err(Error::input("--threads 0: at least one thread")),
            Some(t) => t,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        if threads == 1 {
            return Ok(Pool { team: None, threads });
        }
        let team = Team::new(threads - 1).map_err(|e| {
            Error::input(format!("--threads {threads}: cannot start the worker threads: {e}"))
        })?;
        Ok(Pool { team: Some(team), threads })
    }

    /// Workers, the caller included.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The core's driver over this pool.
    pub fn driver(&self) -> Driver<'_> {
        self
    }

    /// The driver of one thread: every product on the calling thread.
    pub fn sequential() -> Driver<'static> {
        &Sequential
    }

    /// A driver over whichever rayon pool the caller runs in (rayon's global pool, whose size
    /// `--threads` sets for the experiments, or the pool of the worker it is called on): for
    /// work that is itself one of many rayon tasks, so its splits share those workers.
    pub fn current() -> Driver<'static> {
        &Rayon
    }
}

/// The core's driver, as the runner hands it to a [`Trainer`](staticgrad::Trainer).
pub type Driver<'p> = &'p dyn Parallel;

/// Multiply-adds (or elements) below which a split does not pay: a [`Team`] hands a chunk over
/// in well under a microsecond, a few thousand multiply-adds; rayon's sleeping workers take
/// tens of microseconds to wake (the core's default).
const TEAM_MIN_WORK: usize = 1 << 14;

impl Parallel for Pool {
    fn threads(&self) -> usize {
        self.threads
    }

    fn min_work(&self) -> usize {
        TEAM_MIN_WORK
    }

    fn for_each_chunk(&self, data: &mut [f32], chunk: usize, f: &(dyn Fn(usize, &mut [f32]) + Sync)) {
        match &self.team {
            Some(t) => t.for_each_chunk(data, chunk, f),
            None => Sequential.for_each_chunk(data, chunk, f),
        }
    }
}

/// The driver over the rayon pool the caller runs in ([`Pool::current`]).
struct Rayon;

impl Parallel for Rayon {
    fn threads(&self) -> usize {
        rayon::current_num_threads()
    }

    fn for_each_chunk(&self, data: &mut [f32], chunk: usize, f: &(dyn Fn(usize, &mut [f32]) + Sync)) {
        data.par_chunks_mut(chunk.max(1)).enumerate().with_max_len(1).for_each(|(i, c)| f(i, c));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chunk_once_with_its_index() {
        for t in [1, 2, 3] {
            let pool = Pool::new(Some(t)).unwrap();
            for driver in [pool.driver(), Pool::current()] {
                let mut v = vec![0.0f32; 103];
                driver.for_each_chunk(&mut v, 10, &|i, c| c.iter_mut().for_each(|x| *x += i as f32 + 1.0));
                let want: Vec<f32> = (0..103).map(|j| (j / 10) as f32 + 1.0).collect();
                assert_eq!(v, want, "{t} threads");
            }
        }
        assert!(Pool::new(Some(0)).is_err());
        assert!(Pool::new(None).unwrap().threads() >= 1);
    }
}
