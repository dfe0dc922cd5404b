//! The seed-0 rerun of the book's scripts (`std-runner/data/reference_runs_seed0.json`, built in):
//! ballpark numbers the summaries compare with. Not goldens: a different random generator gives
//! different numbers, the same picture.

use serde_json::Value;

/// The file's text.
pub const TEXT: &str = include_str!("../../data/reference_runs_seed0.json");

/// The parsed file (`Value::Null` if it cannot be parsed, so a summary just shows no book column).
pub fn get() -> Value {
    serde_json::from_str(TEXT).unwrap_or(Value::Null)
}
