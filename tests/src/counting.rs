//! A counting global allocator for zero-allocation proofs. A test binary installs it with
//! `#[global_allocator] static A: CountingAlloc = CountingAlloc;` and wraps the code under test
//! in [`count_allocations`]. Counts are per thread, so the test harness's own threads don't
//! disturb them.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    static BYTES: Cell<usize> = const { Cell::new(0) };
}

/// Forwards to the system allocator and counts allocations and bytes on the calling thread.
pub struct CountingAlloc;

#[allow(unsafe_code)] // A global allocator cannot be written without `unsafe`.
// SAFETY: every call is forwarded unchanged to `System`, which upholds the GlobalAlloc contract;
// the counters are const-initialised thread-locals that never allocate.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        BYTES.with(|c| c.set(c.get() + layout.size()));
        // SAFETY: same layout the caller gave us.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        BYTES.with(|c| c.set(c.get() + new_size));
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Runs `f` and returns its result with the number of allocations and bytes it made on this
/// thread (meaningful only in a binary whose global allocator is [`CountingAlloc`]).
pub fn count_allocations<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    let (a0, b0) = (ALLOCATIONS.with(Cell::get), BYTES.with(Cell::get));
    let out = f();
    let (a1, b1) = (ALLOCATIONS.with(Cell::get), BYTES.with(Cell::get));
    (out, a1 - a0, b1 - b0)
}
