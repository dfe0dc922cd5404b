//! The core's [`Parallel`] driver on a rayon thread pool: `--threads N`.
//!
//! The core splits each product's output rows into chunks and asks the driver to run them; here
//! each chunk is a rayon task. Called from inside the pool (what [`Pool::run`] arranges for a
//! whole training loop), a split costs a `join`: the calling worker takes the first chunk, an
//! idle one steals the rest. Every thread count gives the same bits (see
//! `staticgrad::parallel`), so `--threads` changes only the speed.

use crate::Error;
use rayon::prelude::*;
use staticgrad::parallel::Parallel;

/// A pool of `threads` workers (1: everything on the calling thread, no pool started).
#[derive(Debug)]
pub struct Pool {
    pool: Option<rayon::ThreadPool>,
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
            return Ok(Pool { pool: None, threads });
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("staticgrad-{i}"))
            .build()
            .map_err(|e| {
                Error::input(format!("--threads {threads}: cannot start the worker threads: {e}"))
            })?;
        Ok(Pool { pool: Some(pool), threads })
    }

    /// Workers.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The core's driver over this pool.
    pub fn driver(&self) -> Driver<'_> {
        Driver { pool: self.pool.as_ref(), threads: self.threads }
    }

    /// The driver of one thread: every product on the calling thread.
    pub fn sequential() -> Driver<'static> {
        Driver { pool: None, threads: 1 }
    }

    /// A driver over whichever rayon pool the caller runs in (rayon's global pool, whose size
    /// `--threads` sets for the experiments, or the pool of the worker it is called on): for
    /// work that is itself one of many rayon tasks, so its splits share those workers.
    pub fn current() -> Driver<'static> {
        Driver { pool: None, threads: rayon::current_num_threads() }
    }

    /// Runs `f` on one of the pool's workers (on this thread without a pool), so that the
    /// splits inside it are cheap joins rather than hand-offs from a foreign thread.
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(p) => p.install(f),
            None => f(),
        }
    }
}

/// [`Pool`]'s [`Parallel`] driver (a reference: `Copy`).
#[derive(Clone, Copy, Debug)]
pub struct Driver<'p> {
    pool: Option<&'p rayon::ThreadPool>,
    threads: usize,
}

impl Parallel for Driver<'_> {
    fn threads(&self) -> usize {
        self.threads
    }

    fn for_each_chunk<F>(&self, data: &mut [f32], chunk: usize, f: F)
    where
        F: Fn(usize, &mut [f32]) + Sync,
    {
        let chunk = chunk.max(1);
        if self.threads <= 1 {
            return data.chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
        }
        let mut run = || data.par_chunks_mut(chunk).enumerate().with_max_len(1).for_each(|(i, c)| f(i, c));
        match self.pool {
            // `install` runs at once when called from one of this pool's workers.
            Some(p) => p.install(run),
            None => run(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chunk_once_with_its_index() {
        for t in [1, 2, 3] {
            let pool = Pool::new(Some(t)).unwrap();
            let mut v = vec![0.0f32; 103];
            pool.driver().for_each_chunk(&mut v, 10, |i, c| c.iter_mut().for_each(|x| *x += i as f32 + 1.0));
            let want: Vec<f32> = (0..103).map(|j| (j / 10) as f32 + 1.0).collect();
            assert_eq!(v, want, "{t} threads");
        }
        assert!(Pool::new(Some(0)).is_err());
        assert!(Pool::new(None).unwrap().threads() >= 1);
    }
}
