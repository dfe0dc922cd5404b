//! A team of spinning workers: the hand-off of a split in well under a microsecond.
//!
//! The core splits each matrix product of a step (about fourteen per step of the book's
//! network, each a few tens of microseconds of work). A pool whose idle workers sleep in the
//! kernel pays a wake-up per split — tens of microseconds on a virtual machine, which made two
//! threads slower than one (docs/PERFORMANCE.md §2.1b). Here idle workers spin on one atomic
//! for a while before they sleep, as OpenMP's active wait does, so a split costs a few cache
//! misses while a training loop runs and nothing once it has stopped.
//!
//! **Protocol.** One word, the *ticket*, holds the current job's chunk count `n` and the next
//! unclaimed chunk `i` (`n << 32 | i`); idle is `i == n`. The caller writes the job (a pointer
//! to its closure) and then the ticket; every thread, the caller included, claims chunk `i` by
//! a compare-and-swap of `(n, i)` to `(n, i + 1)`, and only then reads the job. A successful
//! claim of `i < n` means the job it names is the current one and is not finished (the caller
//! waits for every chunk to be done before it returns or writes another job), so the closure it
//! reads is alive; a claim from a stale look at the ticket fails, or — ticket equal by chance —
//! claims a real chunk of the current job, which is just as right. This module holds the
//! runner's only `unsafe` outside its two libc calls, each block with its reason.

// The fence: sharing a caller's closure and its slice's disjoint chunks with the workers.
#![allow(unsafe_code)]

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the workers run: chunk `i` of the current job.
type Task<'a> = dyn Fn(usize) + Sync + 'a;

/// How long an idle worker spins before it yields, and then sleeps.
const SPIN: Duration = Duration::from_micros(200);
const YIELD: Duration = Duration::from_millis(5);

/// State shared by the caller and the workers.
struct Shared {
    /// `n << 32 | i`: chunks of the current job and the next one to claim.
    ticket: AtomicU64,
    /// Chunks of the current job finished.
    done: AtomicUsize,
    /// The current job: a pointer to the caller's `&Task` (valid while the job runs).
    job: AtomicPtr<()>,
    /// A chunk panicked (its payload is re-raised on the caller's thread).
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    /// A caller holds the team (a second caller, or a nested one, runs its chunks alone).
    busy: AtomicBool,
    /// The team is being dropped.
    stop: AtomicBool,
    /// Workers asleep on `wake`.
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

const fn ticket(n: u64, i: u64) -> u64 {
    n << 32 | i
}

impl Shared {
    /// Claims and runs one chunk of the current job; false if none was left.
    fn run_one(&self) -> bool {
        let t = self.ticket.load(Ordering::Acquire);
        let (n, i) = (t >> 32, t & u64::from(u32::MAX));
        if i >= n {
            return false;
        }
        if self.ticket.compare_exchange_weak(t, t + 1, Ordering::AcqRel, Ordering::Relaxed).is_err() {
            return true; // somebody else moved it: look again
        }
        // SAFETY: the claim above succeeded with `i < n`, so the job is the current one and is
        // not finished: its caller is inside `for_each` waiting for chunk `i`, and the pointer
        // it stored (before the ticket, which our acquiring claim read) points at its `&Task` on
        // its stack, alive until every chunk is done.
        let task: &Task = unsafe { *self.job.load(Ordering::Acquire).cast::<&Task>() };
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| task(i as usize))) {
            self.panic.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(p);
        }
        self.done.fetch_add(1, Ordering::AcqRel);
        true
    }

    fn idle(&self) -> bool {
        let t = self.ticket.load(Ordering::SeqCst);
        t >> 32 <= t & u64::from(u32::MAX)
    }

    /// A worker's life: run chunks as they come; spin, then yield, then sleep while idle.
    fn work(&self) {
        let mut since = Instant::now();
        let mut spins = 0u32;
        loop {
            if self.run_one() {
                spins = 0;
                since = Instant::now();
                continue;
            }
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            spins = spins.wrapping_add(1);
            if !spins.is_multiple_of(1024) {
                std::hint::spin_loop();
                continue;
            }
            let idle_for = since.elapsed();
            if idle_for < SPIN {
                continue;
            }
            if idle_for < YIELD {
                std::thread::yield_now();
                continue;
            }
            let mut g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            while self.idle() && !self.stop.load(Ordering::SeqCst) {
                g = self.wake.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
            drop(g);
            since = Instant::now();
        }
    }
}

/// A team of `workers` spinning threads plus the caller (see the module's notes).
pub struct Team {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Team {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Team").field("workers", &self.workers.len()).finish()
    }
}

impl Team {
    /// Starts `workers` threads (the caller of [`for_each`](Self::for_each) is one more).
    pub fn new(workers: usize) -> std::io::Result<Team> {
        let shared = Arc::new(Shared {
            ticket: AtomicU64::new(0),
            done: AtomicUsize::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            panic: Mutex::new(None),
            busy: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        let mut team = Team { shared, workers: Vec::with_capacity(workers) };
        for k in 0..workers {
            let s = Arc::clone(&team.shared);
            let h =
                std::thread::Builder::new().name(format!("staticgrad-{}", k + 1)).spawn(move || s.work())?;
            team.workers.push(h); // on an error, `Drop` stops the ones already started
        }
        Ok(team)
    }

    /// Runs `task(i)` for every `i < n`, on the workers and this thread, and returns when all
    /// have returned (re-raising a panic of any of them here). Called while the team is busy
    /// (from a chunk, or from a second thread) it runs the chunks on this thread, in order.
    pub fn for_each(&self, n: usize, task: &Task) {
        let s = &*self.shared;
        if n <= 1
            || self.workers.is_empty()
            || n > u32::MAX as usize
            || s.busy.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err()
        {
            (0..n).for_each(task);
            return;
        }
        let slot: &Task = task;
        s.done.store(0, Ordering::Relaxed);
        s.job.store(std::ptr::from_ref(&slot).cast_mut().cast(), Ordering::Relaxed);
        s.ticket.store(ticket(n as u64, 0), Ordering::SeqCst);
        if s.sleepers.load(Ordering::SeqCst) > 0 {
            drop(s.lock.lock().unwrap_or_else(|e| e.into_inner()));
            s.wake.notify_all();
        }
        while s.run_one() {}
        // Every chunk is claimed; wait for the workers' to finish before `slot` goes away.
        while s.done.load(Ordering::Acquire) < n {
            std::hint::spin_loop();
        }
        s.job.store(std::ptr::null_mut(), Ordering::Relaxed);
        let panic = s.panic.lock().unwrap_or_else(|e| e.into_inner()).take();
        s.busy.store(false, Ordering::Release);
        if let Some(p) = panic {
            resume_unwind(p);
        }
    }

    /// Calls `f(i, chunk)` for every `chunk` of `data.chunks_mut(chunk)`, as [`for_each`](Self::for_each).
    pub fn for_each_chunk<F>(&self, data: &mut [f32], chunk: usize, f: F)
    where
        F: Fn(usize, &mut [f32]) + Sync,
    {
        let (len, chunk) = (data.len(), chunk.max(1));
        let base = SharedSlice(data.as_mut_ptr());
        self.for_each(len.div_ceil(chunk), &|i| {
            let start = i * chunk;
            let end = len.min(start + chunk);
            // SAFETY: `for_each` calls every `i < len.div_ceil(chunk)` exactly once, so the
            // ranges `start..end` are in bounds and disjoint, and `data` stays mutably borrowed
            // (by this call) until all calls have returned: each chunk has one writer.
            let c = unsafe { std::slice::from_raw_parts_mut(base.at(start), end - start) };
            f(i, c);
        });
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        drop(self.shared.lock.lock().unwrap_or_else(|e| e.into_inner()));
        self.shared.wake.notify_all();
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
    }
}

/// The base of a slice whose disjoint chunks the team's threads write.
#[derive(Clone, Copy)]
struct SharedSlice(*mut f32);

// SAFETY: only `for_each_chunk` makes one, and it hands each chunk to one thread.
unsafe impl Sync for SharedSlice {}

impl SharedSlice {
    /// The pointer `start` floats in (a method, so closures capture the whole `Sync` wrapper).
    fn at(self, start: usize) -> *mut f32 {
        self.0.wrapping_add(start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn every_chunk_once_many_times_over() {
        let team = Team::new(3).unwrap();
        let mut v = vec![0.0f32; 1001];
        for round in 0..2000 {
            let chunk = 1 + round % 97;
            team.for_each_chunk(&mut v, chunk, |i, c| {
                assert_eq!(c.len(), chunk.min(1001 - i * chunk));
                c.iter_mut().for_each(|x| *x += 1.0);
            });
        }
        assert!(v.iter().all(|&x| x == 2000.0));
    }

    #[test]
    fn wakes_after_sleeping() {
        let team = Team::new(1).unwrap();
        std::thread::sleep(YIELD + Duration::from_millis(20));
        let hits = AtomicU32::new(0);
        let seen = Mutex::new(std::collections::HashSet::new());
        team.for_each(64, &|_| {
            hits.fetch_add(1, Ordering::Relaxed);
            seen.lock().unwrap().insert(std::thread::current().id());
            std::thread::sleep(Duration::from_millis(1));
        });
        assert_eq!(hits.load(Ordering::Relaxed), 64);
        assert_eq!(seen.lock().unwrap().len(), 2, "the sleeping worker took part");
    }

    #[test]
    fn a_panicking_chunk_reaches_the_caller_after_every_chunk_is_done() {
        let team = Team::new(2).unwrap();
        let hits = AtomicU32::new(0);
        let r = catch_unwind(AssertUnwindSafe(|| {
            team.for_each(50, &|i| {
                hits.fetch_add(1, Ordering::Relaxed);
                assert!(i != 17, "chunk 17");
            })
        }));
        assert!(r.is_err());
        assert_eq!(hits.load(Ordering::Relaxed), 50);
        // The team still works afterwards.
        let mut v = vec![0.0f32; 10];
        team.for_each_chunk(&mut v, 1, |i, c| c[0] = i as f32);
        assert_eq!(v, (0..10).map(|i| i as f32).collect::<Vec<_>>());
    }

    #[test]
    fn nested_and_concurrent_calls_run_alone() {
        let team = Team::new(1).unwrap();
        let hits = AtomicU32::new(0);
        team.for_each(4, &|_| {
            team.for_each(3, &|_| {
                hits.fetch_add(1, Ordering::Relaxed);
            })
        });
        assert_eq!(hits.load(Ordering::Relaxed), 12);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    for _ in 0..200 {
                        team.for_each(5, &|_| {
                            hits.fetch_add(1, Ordering::Relaxed);
                        });
                    }
                });
            }
        });
        assert_eq!(hits.load(Ordering::Relaxed), 12 + 3 * 200 * 5);
    }
}
