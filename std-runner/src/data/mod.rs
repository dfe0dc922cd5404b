//! Data in: IDX (MNIST, Fashion-MNIST; plain or gzip), CSV, the bundled MNIST subset,
//! normalisation to `[0, 1]` in `f32`, splits, and seeded mini-batch orders.
//!
//! Every reader validates before it trusts: magic numbers, dimensions, and the size a header
//! declares against the bytes actually there — checked before anything that size is allocated,
//! with overflow-checked arithmetic. Errors name the file and the cause in one line.
//!
//! This file holds what every reader returns ([`Dataset`], its [`Features`]; a refusal is a
//! [`crate::Error::data`], `file: cause`); the rest lives in a file per role, all re-exported here: `idx` (IDX and gzip, the bundled MNIST,
//! the standard MNIST folder), `csv`, `split` (train/validation/test), `sampling` (seeded
//! random streams and mini-batch orders) and `augment` (random shifts of training images).

mod augment;
mod csv;
mod idx;
mod sampling;
mod split;

pub use augment::shift_batch;
pub use csv::{CsvFormat, parse_csv, parse_csv_within, read_csv, read_csv_within};
pub use idx::{
    BUNDLED_COUNT, BUNDLED_IMAGES, BUNDLED_LABELS, Idx, bundled, bundled_within, find_standard, from_idx,
    from_idx_within, parse_idx, parse_idx_within, read_idx, read_idx_within, read_mnist_dir, read_mnist_pair,
};
pub use sampling::{Sampling, below, epoch_order, purpose, steps_per_epoch, stream};
pub use split::{SplitSize, Splits, split, split_copy_rows};

use crate::Error;

/// How a dataset stores its features: pixel bytes (IDX data, normalised to `f32` only when a
/// batch is gathered, a quarter of the memory) or floats (CSV values, which can be anything).
#[derive(Debug, Clone, PartialEq)]
pub enum Features {
    /// Bytes `0..=255`; the feature value is [`normalize_byte`] of each.
    Bytes(Vec<u8>),
    /// Feature values as they are.
    Floats(Vec<f32>),
}

impl Features {
    /// Number of stored values (examples × features).
    pub fn len(&self) -> usize {
        match self {
            Features::Bytes(b) => b.len(),
            Features::Floats(f) => f.len(),
        }
    }

    /// True if no value is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every value as `f32`, in order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = f32> + '_> {
        match self {
            Features::Bytes(b) => Box::new(b.iter().map(|&v| normalize_byte(v))),
            Features::Floats(f) => Box::new(f.iter().copied()),
        }
    }

    /// Bytes per stored value (1 or 4).
    pub fn value_bytes(&self) -> usize {
        match self {
            Features::Bytes(_) => 1,
            Features::Floats(_) => 4,
        }
    }

    /// Appends values `range` as `f32` to `out`.
    fn extend_f32(&self, range: std::ops::Range<usize>, out: &mut Vec<f32>) {
        match self {
            Features::Bytes(b) => out.extend(b[range].iter().map(|&v| normalize_byte(v))),
            Features::Floats(f) => out.extend_from_slice(&f[range]),
        }
    }

    fn copy_range(&self, range: std::ops::Range<usize>) -> Features {
        match self {
            Features::Bytes(b) => Features::Bytes(b[range].to_vec()),
            Features::Floats(f) => Features::Floats(f[range].to_vec()),
        }
    }

    fn truncate(&mut self, n: usize) {
        match self {
            Features::Bytes(b) => b.truncate(n),
            Features::Floats(f) => f.truncate(n),
        }
    }
}

/// Labelled examples: `len() × features` values, row-major, plus one class index each.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Where the examples came from (for messages).
    pub source: String,
    /// Features per example (784 for MNIST).
    pub features: usize,
    /// Examples, row-major, as stored.
    pub x: Features,
    /// Class index of each example.
    pub y: Vec<u32>,
}

impl Dataset {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// True if there is no example.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Bytes the examples take as stored (features and labels).
    pub fn stored_bytes(&self) -> usize {
        self.x.len() * self.x.value_bytes() + self.y.len() * size_of::<u32>()
    }

    /// Bytes a set of `examples × features` takes stored as `value_bytes` per value, with its
    /// labels; `None` on overflow.
    pub fn bytes_for(examples: usize, features: usize, value_bytes: usize) -> Option<u64> {
        let values = examples.checked_mul(features)?.checked_mul(value_bytes)?;
        (values as u64).checked_add((examples as u64).checked_mul(4)?)
    }

    /// Appends the features of example `i` as `f32` to `out`.
    pub fn row_into(&self, i: usize, out: &mut Vec<f32>) {
        self.x.extend_f32(i * self.features..(i + 1) * self.features, out);
    }

    /// Examples `range` as a new dataset (stored the same way).
    pub fn slice(&self, range: std::ops::Range<usize>) -> Dataset {
        Dataset {
            source: self.source.clone(),
            features: self.features,
            x: self.x.copy_range(range.start * self.features..range.end * self.features),
            y: self.y[range].to_vec(),
        }
    }

    /// Examples `idx`, in that order, as a new dataset (stored the same way).
    pub fn select(&self, idx: &[usize]) -> Dataset {
        let f = self.features;
        // Sized exactly up front (a flattening iterator would grow the vector by doubling).
        let pick =
            |dst: &mut dyn FnMut(std::ops::Range<usize>)| idx.iter().for_each(|&i| dst(i * f..(i + 1) * f));
        let x = match &self.x {
            Features::Bytes(b) => {
                let mut v = Vec::with_capacity(idx.len() * f);
                pick(&mut |r| v.extend_from_slice(&b[r]));
                Features::Bytes(v)
            }
            Features::Floats(src) => {
                let mut v = Vec::with_capacity(idx.len() * f);
                pick(&mut |r| v.extend_from_slice(&src[r]));
                Features::Floats(v)
            }
        };
        Dataset { source: self.source.clone(), features: f, x, y: idx.iter().map(|&i| self.y[i]).collect() }
    }

    /// Keeps only the first `n` examples (no-op if there are fewer).
    pub fn truncate(&mut self, n: usize) {
        if n < self.len() {
            self.y.truncate(n);
            self.x.truncate(n * self.features);
        }
    }

    /// Errors naming the source, the record and the label if any label is `≥ classes`.
    pub fn check_labels(&self, classes: usize) -> Result<(), Error> {
        match self.y.iter().enumerate().find(|&(_, &l)| l as usize >= classes) {
            Some((i, &l)) => Err(Error::data(
                &self.source,
                format!("label {l} of record {i} is not below the number of classes ({classes})"),
            )),
            None => Ok(()),
        }
    }

    /// Copies examples `idx` as `f32` into `x` (`idx.len() × features`) and `y`.
    pub fn gather(&self, idx: &[usize], x: &mut Vec<f32>, y: &mut Vec<u32>) {
        x.clear();
        y.clear();
        for &i in idx {
            self.row_into(i, x);
            y.push(self.y[i]);
        }
    }

    /// Examples the model classifies correctly, evaluated `chunk` rows at a time (eval mode).
    /// Byte-stored examples are converted to `f32` one chunk at a time (a buffer of
    /// `chunk × features` floats), with the same results as converting them all first.
    pub fn correct(
        &self,
        trainer: &mut staticgrad::Trainer<'_, '_>,
        chunk: usize,
    ) -> Result<usize, staticgrad::Error> {
        match &self.x {
            Features::Floats(x) => trainer.correct(x, &self.y, chunk),
            Features::Bytes(_) if chunk == 0 => {
                Err(staticgrad::Error::InvalidArgument { what: "evaluation chunk rows", value: 0.0 })
            }
            Features::Bytes(_) => {
                let chunk = chunk.min(self.len().max(1));
                let mut buf = Vec::with_capacity(chunk * self.features);
                let mut hits = 0;
                for start in (0..self.len()).step_by(chunk) {
                    let end = (start + chunk).min(self.len());
                    buf.clear();
                    self.x.extend_f32(start * self.features..end * self.features, &mut buf);
                    hits += trainer.correct(&buf, &self.y[start..end], chunk)?;
                }
                Ok(hits)
            }
        }
    }
}

/// Pixel byte to `f32` in `[0, 1]`, as the book: `(byte as f32) / 255.0` in `f32`.
pub fn normalize_byte(b: u8) -> f32 {
    b as f32 / 255.0
}

fn io_cause(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::UnexpectedEof => "unexpected end of file".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_storage_gives_the_same_floats_and_the_same_accuracy() {
        use crate::memory::OwnedMemory;
        use staticgrad::{MlpSpec, Optimizer, Trainer};
        let bytes: Vec<u8> = (0..7 * 4).map(|i| (i * 37 % 256) as u8).collect();
        let y = vec![0, 1, 2, 0, 1, 2, 1];
        let b = Dataset { source: "b".into(), features: 4, x: Features::Bytes(bytes.clone()), y: y.clone() };
        let f = Dataset {
            source: "f".into(),
            features: 4,
            x: Features::Floats(bytes.iter().map(|&v| normalize_byte(v)).collect()),
            y,
        };
        assert_eq!((b.stored_bytes(), f.stored_bytes()), (7 * 4 + 7 * 4, 7 * 4 * 4 + 7 * 4));
        let (mut xb, mut yb, mut xf, mut yf) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        b.gather(&[6, 0, 3, 3], &mut xb, &mut yb);
        f.gather(&[6, 0, 3, 3], &mut xf, &mut yf);
        assert_eq!((xb.clone(), yb), (xf, yf));
        assert_eq!(
            xb[..4],
            [
                normalize_byte(bytes[24]),
                normalize_byte(bytes[25]),
                normalize_byte(bytes[26]),
                normalize_byte(bytes[27])
            ]
        );
        assert_eq!(b.select(&[6, 0]).x, Features::Bytes([&bytes[24..28], &bytes[0..4]].concat()));
        assert_eq!(b.slice(1..3).x, Features::Bytes(bytes[4..12].to_vec()));
        let widths = [4, 5, 3];
        let spec = MlpSpec::new(&widths).model();
        let opt = Optimizer::sgd();
        let mut memory = OwnedMemory::new(&spec.plan(7, &opt));
        let mut trainer = Trainer::new(&spec, &opt, 7, memory.memory()).unwrap();
        trainer.init(&mut stream(1, 1, 1)).unwrap();
        for chunk in [1, 2, 3, 7, 100] {
            let want = f.correct(&mut trainer, chunk).unwrap();
            assert_eq!(b.correct(&mut trainer, chunk).unwrap(), want, "chunk {chunk}");
        }
        assert!(b.correct(&mut trainer, 0).is_err());
    }

    #[test]
    fn sixty_thousand_images_cost_their_bytes() {
        assert_eq!(Dataset::bytes_for(60_000, 784, 1), Some(47_040_000 + 240_000));
        assert_eq!(Dataset::bytes_for(60_000, 784, 4), Some(188_160_000 + 240_000));
        assert_eq!(Dataset::bytes_for(usize::MAX, 2, 1), None);
    }
}
