//! `--quiet`: the one process-wide switch that the printing helpers read ([`crate::experiments::emit`],
//! `bench`'s notes on stderr), so that a flag given once on the command line reaches every
//! experiment without threading it through each one's settings. Only `cli::main` sets it; the
//! library's own callers (tests, other tools) see the default, not quiet.

use std::sync::atomic::{AtomicBool, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);

/// Sets the switch (the command line's `--quiet`).
pub fn set(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// True if `--quiet` was given: print results only, no progress, announcements or summaries.
pub fn on() -> bool {
    QUIET.load(Ordering::Relaxed)
}
