//! The WebAssembly binding of staticgrad for the chapter-6 page (`web/www/`).
//!
//! Plain C-ABI exports over buffers in linear memory, no wasm-bindgen: the page writes its input
//! (the MNIST bytes) into the buffer [`sg_input`] returns, calls an experiment, and reads the
//! result from [`sg_output`] / [`sg_output_len`]. Every experiment returns 0 on success; on
//! failure −1, with the core's error message (UTF-8) as the output.
//!
//! The experiments make the same calls into the core, with the same seeds, as the runner's:
//! [`paths`] as `staticgrad experiment optimizers-2d`, [`activations`] as `experiment
//! activations`, [`mnist`] as `staticgrad train` (its batches from the core's
//! [`staticgrad::sampling`], which the runner uses too), [`hpsearch`] as `experiment hpsearch` — so the page shows the same bits
//! (`web/test.sh` checks them in headless Chromium).
//!
//! The buffers live in one `static` behind a `Mutex` (the module is single-threaded; a page
//! and its worker each instantiate their own), so there is no `unsafe` block: Rust only hands
//! out pointers, and the page reads and writes them between calls. The only `unsafe` keywords
//! are the C ABI's own: `#[unsafe(no_mangle)]` on the exports and the `unsafe extern` block
//! declaring the page's two callbacks as `safe fn`s (`mnist.rs`).

pub mod activations;
pub mod hpsearch;
pub mod mnist;
pub mod paths;

use std::sync::{Mutex, MutexGuard};

/// The page's input and the last result, both bytes.
struct Buffers {
    input: Vec<u8>,
    output: Vec<u8>,
}

static BUFFERS: Mutex<Buffers> = Mutex::new(Buffers { input: Vec::new(), output: Vec::new() });

fn buffers() -> MutexGuard<'static, Buffers> {
    // A panic aborts (panic = "abort"), so the lock is never poisoned; recover anyway.
    BUFFERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// A zeroed input buffer of `len` bytes for the page to fill; valid until the next call of this.
#[unsafe(no_mangle)]
pub extern "C" fn sg_input(len: usize) -> *mut u8 {
    let mut b = buffers();
    b.input.clear();
    b.input.resize(len, 0);
    b.input.as_mut_ptr()
}

/// Where the last result starts (valid until the next experiment).
#[unsafe(no_mangle)]
pub extern "C" fn sg_output() -> *const u8 {
    buffers().output.as_ptr()
}

/// Bytes of the last result.
#[unsafe(no_mangle)]
pub extern "C" fn sg_output_len() -> usize {
    buffers().output.len()
}

/// The page's input, as last written.
fn input() -> Vec<u8> {
    buffers().input.clone()
}

/// Sets the output to `values` (little-endian, as wasm memory is) and returns 0, or to the
/// error's message and returns −1.
fn finish<T: Copy, const N: usize>(
    r: Result<Vec<T>, staticgrad::Error>,
    to_bytes: impl Fn(T) -> [u8; N],
) -> i32 {
    let mut b = buffers();
    b.output.clear();
    match r {
        Ok(v) => {
            b.output.reserve(v.len() * N);
            for x in v {
                b.output.extend_from_slice(&to_bytes(x));
            }
            0
        }
        Err(e) => {
            b.output.extend_from_slice(describe(&e).as_bytes());
            -1
        }
    }
}

/// The error in words, without the core's `Display` (its float formatting alone would add a
/// tenth to the module's size): the kind and the `what` it names, integers as they are.
fn describe(e: &staticgrad::Error) -> String {
    use staticgrad::Error as E;
    match *e {
        E::Capacity { needed, available, .. } => {
            format!("a buffer is too small: {needed} needed, {available} available")
        }
        E::Shape { op, .. } => format!("shapes do not fit: {op}"),
        E::Label { row, label, classes } => format!("label {label} of row {row} is not below {classes}"),
        E::NonFinite { what, index } => {
            format!("non-finite {what} (index {index}): try a smaller learning rate")
        }
        E::InvalidHandle { what, index } => format!("invalid handle: {what} {index}"),
        E::Unsupported { what } => format!("unsupported: {what}"),
        E::Overflow { what, .. } => format!("too large: {what}"),
        E::InvalidArgument { what, value } => format!("invalid {what}: {}", value as i64),
    }
}
