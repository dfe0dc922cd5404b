//! The parallel driver: how an op's output is handed out to a caller's worker threads.
//!
//! The core does not start threads (it has no `std`); with the `parallel` feature a caller plugs
//! a [`Parallel`] driver into its [`Tape`](crate::Tape) or [`Trainer`](crate::Trainer)
//! (`with_parallel`), which the ops ask to run a closure on disjoint chunks of an output slice.
//! [`Sequential`] runs them one after the other on the calling thread; the runner implements
//! the trait with a team of spinning threads.
//!
//! **Same bits for any number of workers.** Only *outputs* are split: every chunk is a run of
//! whole output rows, and each output element is still summed by one worker, term by term in
//! the canonical order (docs/DESIGN.md §7). So 1, 2 or 7 workers give the bits of one thread,
//! which are the bits of the Cortex-M. No reduction is ever split.
//!
//! **No cost for a firmware.** The tape holds the driver as a [`Par`] handle. Without the
//! `parallel` feature (a firmware's build) that handle is empty and says "one thread" as a
//! constant, so no split code is compiled and the ops are the code they were before the driver
//! existed; with it, a check per op (`threads() > 1`) and a call through `dyn Parallel` per
//! split, a few nanoseconds against microseconds of work.
//!
//! ```
//! use staticgrad::parallel::{Parallel, Sequential};
//! let mut out = [0.0f32; 7];
//! // Chunks of 3: [0, 3), [3, 6), [6, 7); each is told its index.
//! Sequential.for_each_chunk(&mut out, 3, &|i, chunk| chunk.fill(i as f32));
//! assert_eq!(out, [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0]);
//! ```

/// A way to run a closure on disjoint chunks of a slice, possibly at the same time.
///
/// Implementations must call `f` exactly once for each chunk of `data.chunks_mut(chunk)` (chunk
/// `i` being `data[i·chunk .. min((i+1)·chunk, len)]`), with its index; in any order and on any
/// thread. The core relies on nothing else: what each call computes does not depend on which
/// worker runs it.
pub trait Parallel: Sync {
    /// Workers the driver runs at most at once (1: everything on the caller's thread). The
    /// kernels split a product only if this is above 1, into about this many chunks.
    fn threads(&self) -> usize;

    /// Multiply-adds (for a map: elements) below which the kernels do not split a product: what
    /// handing a chunk to another worker costs. [`MIN_SPLIT_WORK`] unless the driver says less.
    fn min_work(&self) -> usize {
        MIN_SPLIT_WORK
    }

    /// Calls `f(i, chunk)` for every `chunk` of `data.chunks_mut(chunk)` (a `chunk` of 0 is taken
    /// as 1), returning when all calls have returned.
    fn for_each_chunk(&self, data: &mut [f32], chunk: usize, f: &(dyn Fn(usize, &mut [f32]) + Sync));
}

/// The driver of one thread: every chunk on the calling thread, in order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sequential;

impl Parallel for Sequential {
    fn threads(&self) -> usize {
        1
    }

    fn for_each_chunk(&self, data: &mut [f32], chunk: usize, f: &(dyn Fn(usize, &mut [f32]) + Sync)) {
        for (i, c) in data.chunks_mut(chunk.max(1)).enumerate() {
            f(i, c);
        }
    }
}

/// A tape's handle on its driver: empty (the calling thread) unless `with_parallel` set one.
/// Without the `parallel` feature it is always empty, and its answers are constants.
#[derive(Clone, Copy, Default)]
pub(crate) struct Par<'a> {
    #[cfg(feature = "parallel")]
    driver: Option<&'a dyn Parallel>,
    #[cfg(not(feature = "parallel"))]
    driver: core::marker::PhantomData<&'a ()>,
}

impl core::fmt::Debug for Par<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Par({} threads)", self.threads())
    }
}

impl<'a> Par<'a> {
    /// The calling thread.
    #[cfg(feature = "parallel")]
    pub(crate) const SEQUENTIAL: Par<'static> = Par { driver: None };
    /// The calling thread.
    #[cfg(not(feature = "parallel"))]
    pub(crate) const SEQUENTIAL: Par<'static> = Par { driver: core::marker::PhantomData };

    /// The handle of `driver`.
    #[cfg(feature = "parallel")]
    pub(crate) fn new(driver: &'a dyn Parallel) -> Par<'a> {
        Par { driver: Some(driver) }
    }

    /// [`Parallel::threads`] of the driver, 1 without one.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn threads(&self) -> usize {
        #[cfg(feature = "parallel")]
        if let Some(d) = self.driver {
            return d.threads();
        }
        1
    }

    /// [`Parallel::min_work`] of the driver.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn min_work(&self) -> usize {
        #[cfg(feature = "parallel")]
        if let Some(d) = self.driver {
            return d.min_work();
        }
        MIN_SPLIT_WORK
    }

    /// [`Parallel::for_each_chunk`] on the driver, or in order on this thread.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn for_each_chunk<F>(&self, data: &mut [f32], chunk: usize, f: F)
    where
        F: Fn(usize, &mut [f32]) + Sync,
    {
        #[cfg(feature = "parallel")]
        if let Some(d) = self.driver {
            return d.for_each_chunk(data, chunk, &f);
        }
        for (i, c) in data.chunks_mut(chunk.max(1)).enumerate() {
            f(i, c);
        }
    }
}

/// The default [`Parallel::min_work`]: handing work to a thread pool whose idle workers sleep
/// costs a few microseconds, about what this many multiply-adds take on one core.
pub const MIN_SPLIT_WORK: usize = 1 << 17;

/// Rows per chunk when `rows` output rows of `macs_per_row` multiply-adds each are shared among
/// `par`'s workers, or `None` to run the product whole on this thread (one worker, or too
/// little work to pay for the hand-off). Chunks are a multiple of `align` rows (the kernels'
/// register tile) where the rows allow it.
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn rows_per_chunk(par: &Par<'_>, rows: usize, macs_per_row: usize, align: usize) -> Option<usize> {
    let threads = par.threads();
    if threads <= 1 {
        return None;
    }
    split_rows(threads, par.min_work(), rows, macs_per_row, align)
}

/// [`rows_per_chunk`] once the driver has more than one worker (out of line: not in a firmware).
#[inline(never)]
fn split_rows(
    threads: usize,
    min_work: usize,
    rows: usize,
    macs_per_row: usize,
    align: usize,
) -> Option<usize> {
    if rows < 2 || rows.saturating_mul(macs_per_row) < min_work {
        return None;
    }
    let align = align.max(1);
    let per = rows.div_ceil(threads.min(rows));
    let aligned = per.div_ceil(align).saturating_mul(align);
    // Rounding up must still leave work for more than one worker.
    let per = if aligned < rows { aligned } else { per };
    if per >= rows { None } else { Some(per) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_visits_every_chunk_once_in_order() {
        let mut v = [0.0f32; 10];
        Sequential.for_each_chunk(&mut v, 4, &|i, c| {
            for x in c.iter_mut() {
                *x += 1.0 + i as f32;
            }
        });
        assert_eq!(v, [1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 3.0, 3.0]);
        let mut e: [f32; 0] = [];
        Sequential.for_each_chunk(&mut e, 0, &|_, _| panic!("no chunk of an empty slice"));
        Par::SEQUENTIAL.for_each_chunk(&mut v, 3, |i, c| c.fill(i as f32));
        assert_eq!(v, [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 3.0]);
    }

    #[cfg(feature = "parallel")]
    #[test]
    fn rows_are_split_only_when_it_pays() {
        struct Two;
        impl Parallel for Two {
            fn threads(&self) -> usize {
                2
            }
            fn for_each_chunk(&self, d: &mut [f32], c: usize, f: &(dyn Fn(usize, &mut [f32]) + Sync)) {
                Sequential.for_each_chunk(d, c, f)
            }
        }
        let two = Par::new(&Two);
        assert_eq!(rows_per_chunk(&Par::SEQUENTIAL, 128, 1 << 20, 4), None);
        assert_eq!(rows_per_chunk(&two, 128, 78_400, 4), Some(64));
        assert_eq!(rows_per_chunk(&two, 100, 78_400, 8), Some(56));
        assert_eq!(rows_per_chunk(&two, 7, 1 << 20, 8), Some(4)); // rounding would leave one chunk
        assert_eq!(rows_per_chunk(&two, 1, 1 << 20, 4), None);
        assert_eq!(rows_per_chunk(&two, 128, 10, 4), None); // too little work
        assert_eq!(rows_per_chunk(&two, usize::MAX, usize::MAX, 4), Some(usize::MAX / 2 + 1));
    }
}
