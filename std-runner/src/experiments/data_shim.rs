//! TEMPORARY: the bundled MNIST until the runner's `data` module lands on main; same shapes as
//! `crate::data::{Dataset, bundled}` so the switch is an import change.

use std::io::Read;

use flate2::read::GzDecoder;

const IMAGES: &[u8] = include_bytes!("../../../data/mnist-10k/train-images-idx3-ubyte.gz");
const LABELS: &[u8] = include_bytes!("../../../data/mnist-10k/train-labels-idx1-ubyte.gz");

/// Labelled examples, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Source.
    pub source: String,
    /// Features per example.
    pub features: usize,
    /// Examples.
    pub x: Vec<f32>,
    /// Labels.
    pub y: Vec<u32>,
}

impl Dataset {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Examples `range`.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Dataset {
        Dataset {
            source: self.source.clone(),
            features: self.features,
            x: self.x[range.start * self.features..range.end * self.features].to_vec(),
            y: self.y[range].to_vec(),
        }
    }

    /// Copies examples `idx` into `x` and `y`.
    pub fn gather(&self, idx: &[usize], x: &mut Vec<f32>, y: &mut Vec<u32>) {
        x.clear();
        y.clear();
        for &i in idx {
            x.extend_from_slice(&self.x[i * self.features..(i + 1) * self.features]);
            y.push(self.y[i]);
        }
    }
}

fn gunzip(b: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut v = Vec::new();
    GzDecoder::new(b).read_to_end(&mut v)?;
    Ok(v)
}

/// The bundled 10,000 images.
pub fn bundled() -> std::io::Result<Dataset> {
    let img = gunzip(IMAGES)?;
    let lbl = gunzip(LABELS)?;
    let bad = || std::io::Error::other("bundled MNIST is malformed");
    if img.len() < 16 || lbl.len() < 8 {
        return Err(bad());
    }
    let n = u32::from_be_bytes([img[4], img[5], img[6], img[7]]) as usize;
    if img.len() != 16 + n * 784 || lbl.len() != 8 + n {
        return Err(bad());
    }
    Ok(Dataset {
        source: "bundled MNIST".into(),
        features: 784,
        x: img[16..].iter().map(|&b| b as f32 / 255.0).collect(),
        y: lbl[8..].iter().map(|&b| b as u32).collect(),
    })
}
