//! The runner's one error type: every command, experiment and reader returns [`Error`], whose
//! variant is its class, and [`Error::exit`] is the one place that turns it into the process's
//! exit code and its one stderr line, `staticgrad: error: …`.
//!
//! | variant | exit code | what |
//! |---|---|---|
//! | [`Error::Input`] | 2 | a flag, setting, config, data file, checkpoint or size the caller got wrong; refused before anything is written |
//! | [`Error::Output`] | 1 | writing a result failed (a full disk, a folder that cannot be moved into place) |
//! | [`Error::Failed`] | 1 | the core refused an operation while running |
//! | [`Error::Diverged`] | 3 | training diverged; the message names the step and the last good checkpoint |
//! | [`Error::Interrupted`] | 130 | Ctrl-C or SIGTERM, after saving what there was to save |
//!
//! Small validators keep their own narrow types ([`crate::check::Invalid`],
//! [`crate::budget::OverBudget`]) and byte parsers return a `String` cause; each becomes an
//! [`Error::Input`] where it leaves its module.

use std::fmt;

/// Why a command failed: its class (which decides the exit code) and a one-line message naming
/// the file or value and the cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Bad input: a flag, a setting, a config or data file, a checkpoint, a size over the memory
    /// budget. Nothing is left behind. Exit code 2.
    Input(String),
    /// Writing an output failed: a full disk, a run folder that cannot be moved into place, a
    /// closed standard output. Exit code 1.
    Output(String),
    /// Something failed while running that is not the input's fault: the core refused an
    /// operation. Exit code 1.
    Failed(String),
    /// Training diverged (a non-finite loss, gradient or parameter); the message names the step
    /// and the last good checkpoint, which is kept. Exit code 3.
    Diverged(String),
    /// Stopped by Ctrl-C or SIGTERM after saving what there was to save; the message says where.
    /// Exit code [`crate::interrupt::EXIT_CODE`] (130).
    Interrupted(String),
}

/// A result whose error is the runner's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Bad input ([`Error::Input`]).
    pub fn input(msg: impl fmt::Display) -> Self {
        Error::Input(msg.to_string())
    }

    /// A problem with a data file or source: `source: cause` ([`Error::Input`]).
    pub fn data(source: impl fmt::Display, cause: impl fmt::Display) -> Self {
        Error::Input(format!("{source}: {cause}"))
    }

    /// Writing an output failed ([`Error::Output`]).
    pub fn output(msg: impl fmt::Display) -> Self {
        Error::Output(msg.to_string())
    }

    /// A failure while running ([`Error::Failed`]).
    pub fn failed(msg: impl fmt::Display) -> Self {
        Error::Failed(msg.to_string())
    }

    /// Training diverged ([`Error::Diverged`]).
    pub fn diverged(msg: impl fmt::Display) -> Self {
        Error::Diverged(msg.to_string())
    }

    /// Stopped by Ctrl-C ([`Error::Interrupted`]).
    pub fn interrupted(msg: impl fmt::Display) -> Self {
        Error::Interrupted(msg.to_string())
    }

    /// The process exit code of this class of failure.
    pub fn code(&self) -> i32 {
        match self {
            Error::Input(_) => 2,
            Error::Output(_) | Error::Failed(_) => 1,
            Error::Diverged(_) => 3,
            Error::Interrupted(_) => crate::interrupt::EXIT_CODE,
        }
    }

    /// The one-line message.
    pub fn message(&self) -> &str {
        match self {
            Error::Input(m)
            | Error::Output(m)
            | Error::Failed(m)
            | Error::Diverged(m)
            | Error::Interrupted(m) => m,
        }
    }

    /// The same error with `what: ` before its message (the command or setting it came from).
    pub fn context(self, what: impl fmt::Display) -> Self {
        let add = |m: String| format!("{what}: {m}");
        match self {
            Error::Input(m) => Error::Input(add(m)),
            Error::Output(m) => Error::Output(add(m)),
            Error::Failed(m) => Error::Failed(add(m)),
            Error::Diverged(m) => Error::Diverged(add(m)),
            Error::Interrupted(m) => Error::Interrupted(add(m)),
        }
    }

    /// Prints the one stderr line, `staticgrad: error: <message>`, and returns the exit code.
    pub fn exit(&self) -> i32 {
        eprintln!("staticgrad: error: {self}");
        self.code()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}

/// Reading or writing failed where no more specific class applies: an output (exit code 1).
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Output(e.to_string())
    }
}

/// Encoding results as JSON failed: an output (exit code 1).
impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Output(e.to_string())
    }
}

/// The core refused an operation while running (exit code 1).
impl From<staticgrad::Error> for Error {
    fn from(e: staticgrad::Error) -> Self {
        Error::Failed(e.to_string())
    }
}

impl From<crate::check::Invalid> for Error {
    fn from(e: crate::check::Invalid) -> Self {
        Error::Input(e.0)
    }
}

impl From<crate::budget::OverBudget> for Error {
    fn from(e: crate::budget::OverBudget) -> Self {
        Error::Input(e.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_class_has_its_exit_code() {
        let codes: Vec<i32> = [
            Error::input("a"),
            Error::output("b"),
            Error::failed("c"),
            Error::diverged("d"),
            Error::interrupted("e"),
        ]
        .iter()
        .map(Error::code)
        .collect();
        assert_eq!(codes, [2, 1, 1, 3, 130]);
    }

    #[test]
    fn context_keeps_the_class() {
        let e = Error::interrupted("saved in x").context("experiment");
        assert_eq!(e, Error::Interrupted("experiment: saved in x".into()));
        assert_eq!(e.to_string(), "experiment: saved in x");
        assert_eq!(Error::data("a.csv", "line 3 has 2 fields").to_string(), "a.csv: line 3 has 2 fields");
        let core = staticgrad::Error::InvalidArgument { what: "learning rate", value: -1.0 };
        assert_eq!(Error::from(core).code(), 1);
    }
}
