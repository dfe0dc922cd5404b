//! Ctrl-C (SIGINT, and SIGTERM) during a long command: the first one asks the running loop to
//! stop at the next step boundary, where it writes a final checkpoint (or flushes finished trials)
//! and exits with code 130; a second one exits at once. Neither can tear a file: every file is
//! written to a temporary name and renamed into place.

use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

/// Exit code of a run stopped by Ctrl-C (128 + SIGINT, the shell convention).
pub const EXIT_CODE: i32 = 130;

/// Installs the handler (once per process; later calls do nothing). If another handler is
/// already installed, Ctrl-C keeps its default meaning.
pub fn install() {
    INSTALL.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            if REQUESTED.swap(true, Ordering::SeqCst) {
                std::process::exit(EXIT_CODE);
            }
            eprintln!("\nstaticgrad: interrupted; saving, then stopping (Ctrl-C again to quit now)");
        });
    });
}

/// True once Ctrl-C was pressed.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Asks the running loop to stop, as Ctrl-C does (for tests and embedding programs).
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Forgets a request (for tests, and for programs that run several commands).
pub fn clear() {
    REQUESTED.store(false, Ordering::SeqCst);
}
