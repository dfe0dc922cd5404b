//! The std runner of staticgrad as a library: data loading, the training loop, reports,
//! checkpoints and the command line. `main.rs` only parses arguments and calls [`cli::run`];
//! other tools (benchmarks, the book's experiments) reuse these modules directly.

pub mod bench;
pub mod budget;
pub mod check;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod data;
pub mod experiments;
pub mod interrupt;
pub mod model;
pub mod report;
pub mod runfolder;
pub mod train;

use std::fmt;

/// Why a command failed: bad input (exit code 2), a failure while running (exit code 1),
/// divergence (exit code 3) or Ctrl-C (exit code 130).
/// The message is one line naming the file or value and the cause.
#[derive(Debug, Clone, PartialEq)]
pub struct RunError {
    /// Process exit code: 2 for bad input, 3 for divergence, 130 for Ctrl-C, 1 otherwise.
    pub code: i32,
    /// One-line explanation.
    pub msg: String,
}

impl RunError {
    /// Bad input from the user (a file, a flag, a config value): exit code 2.
    pub fn input(msg: impl fmt::Display) -> Self {
        RunError { code: 2, msg: msg.to_string() }
    }

    /// Something failed while running (disk full, non-finite loss): exit code 1.
    pub fn failure(msg: impl fmt::Display) -> Self {
        RunError { code: 1, msg: msg.to_string() }
    }

    /// Training diverged (a non-finite loss, gradient or parameter): exit code 3. The message
    /// names the step and the last good checkpoint, which is kept.
    pub fn diverged(msg: impl fmt::Display) -> Self {
        RunError { code: 3, msg: msg.to_string() }
    }

    /// Stopped by Ctrl-C after saving what there was to save: exit code 130.
    pub fn interrupted(msg: impl fmt::Display) -> Self {
        RunError { code: interrupt::EXIT_CODE, msg: msg.to_string() }
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for RunError {}

impl From<data::DataError> for RunError {
    fn from(e: data::DataError) -> Self {
        RunError::input(e)
    }
}
