//! Settings shared by the MNIST experiments: where the images come from and how the bundled
//! 10,000 are split.

use super::Result;
use crate::Error;
use crate::data::{Dataset, bundled};

/// The bundled images (the first 10,000 of the official MNIST training file).
pub fn load() -> Result<Dataset> {
    bundled()
}

/// `train` images from the start and `test` from the end of the bundled set, refusing overlap.
pub fn split_head_tail(d: &Dataset, train: usize, test: usize) -> Result<(Dataset, Dataset)> {
    let n = d.len();
    if train == 0 || train.checked_add(test).is_none_or(|t| t > n) {
        return Err(Error::Input(format!(
            "--train {train} and --test {test} do not fit in the {n} bundled images (need train ≥ 1, train + test ≤ {n})"
        )));
    }
    Ok((d.slice(0..train), d.slice(n - test..n)))
}

/// The book's note on scale, for summaries.
pub fn scale_note(train: usize, test: usize, book: &str) -> String {
    format!(
        "**Scale:** {book}; this run uses the bundled data: the first {train} of the 10,000 bundled MNIST \
         training images to train and the last {test} (never trained on) as held-out images."
    )
}
