//! Data in: IDX (MNIST, Fashion-MNIST; plain or gzip), CSV, the bundled MNIST subset,
//! normalisation to `[0, 1]` in `f32`, splits, and seeded mini-batch orders.
//!
//! Every reader validates before it trusts: magic numbers, dimensions, and the size a header
//! declares against the bytes actually there — checked before anything that size is allocated,
//! with overflow-checked arithmetic. Errors name the file and the cause in one line.

use flate2::read::GzDecoder;
use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro128PlusPlus;
use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// The bundled images: the first 10,000 records of the official MNIST training file (IDX, gzip).
pub const BUNDLED_IMAGES: &[u8] = include_bytes!("../../data/mnist-10k/train-images-idx3-ubyte.gz");
/// The bundled labels matching [`BUNDLED_IMAGES`].
pub const BUNDLED_LABELS: &[u8] = include_bytes!("../../data/mnist-10k/train-labels-idx1-ubyte.gz");

/// A data problem: which file (or value) and why, printed as one line `file: cause`.
#[derive(Debug, Clone, PartialEq)]
pub struct DataError {
    /// The file (or source) concerned.
    pub source: String,
    /// What is wrong with it.
    pub cause: String,
}

impl DataError {
    /// An error about `source`.
    pub fn new(source: impl fmt::Display, cause: impl Into<String>) -> Self {
        DataError { source: source.to_string(), cause: cause.into() }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.cause)
    }
}

impl std::error::Error for DataError {}

/// Labelled examples: `len() × features` floats in `[0, 1]`, row-major, plus one class index each.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Where the examples came from (for messages).
    pub source: String,
    /// Features per example (784 for MNIST).
    pub features: usize,
    /// Examples, row-major.
    pub x: Vec<f32>,
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

    /// Features of example `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.features..(i + 1) * self.features]
    }

    /// Examples `range` as a new dataset.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Dataset {
        Dataset {
            source: self.source.clone(),
            features: self.features,
            x: self.x[range.start * self.features..range.end * self.features].to_vec(),
            y: self.y[range].to_vec(),
        }
    }

    /// Keeps only the first `n` examples (no-op if there are fewer).
    pub fn truncate(&mut self, n: usize) {
        if n < self.len() {
            self.y.truncate(n);
            self.x.truncate(n * self.features);
        }
    }

    /// Errors naming the source, the record and the label if any label is `≥ classes`.
    pub fn check_labels(&self, classes: usize) -> Result<(), DataError> {
        match self.y.iter().enumerate().find(|&(_, &l)| l as usize >= classes) {
            Some((i, &l)) => Err(DataError::new(
                &self.source,
                format!("label {l} of record {i} is not below the number of classes ({classes})"),
            )),
            None => Ok(()),
        }
    }

    /// Copies examples `idx` into `x` (`idx.len() × features`) and `y`.
    pub fn gather(&self, idx: &[usize], x: &mut Vec<f32>, y: &mut Vec<u32>) {
        x.clear();
        y.clear();
        for &i in idx {
            x.extend_from_slice(self.row(i));
            y.push(self.y[i]);
        }
    }
}

/// Pixel byte to `f32` in `[0, 1]`, as the book: `(byte as f32) / 255.0` in `f32`.
pub fn normalize_byte(b: u8) -> f32 {
    b as f32 / 255.0
}

/// An IDX array of unsigned bytes: its dimensions and data.
#[derive(Debug, Clone, PartialEq)]
pub struct Idx {
    /// Dimensions, outermost first.
    pub dims: Vec<usize>,
    /// `dims.product()` bytes, row-major.
    pub data: Vec<u8>,
}

fn is_gz(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

fn io_cause(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::UnexpectedEof => "unexpected end of file".into(),
        _ => e.to_string(),
    }
}

/// Reads an IDX file of unsigned bytes with `ndim` dimensions (3 for images, 1 for labels),
/// decompressing it if its name ends in `.gz`.
pub fn read_idx(path: &Path, ndim: u8) -> Result<Idx, DataError> {
    let src = path.display();
    let file = File::open(path).map_err(|e| DataError::new(&src, io_cause(&e)))?;
    // For a plain file the true size is known up front; a gzip stream is bounded while reading.
    let plain_len = if is_gz(path) { None } else { file.metadata().ok().map(|m| m.len()) };
    let reader: Box<dyn Read> = if is_gz(path) {
        Box::new(GzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    parse_idx(reader, ndim, plain_len).map_err(|c| DataError::new(&src, c))
}

/// Parses an IDX stream; `known_len` is the total byte count when known (plain files).
pub fn parse_idx(mut r: impl Read, ndim: u8, known_len: Option<u64>) -> Result<Idx, String> {
    let gz_err = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => "truncated: the file ends inside the IDX header".to_string(),
        std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
            format!("not a valid gzip stream ({e})")
        }
        _ => io_cause(&e),
    };
    let mut magic = [0u8; 4];
    r.read_exact(&mut magic).map_err(gz_err)?;
    let want = 0x0800u32 | ndim as u32;
    let found = u32::from_be_bytes(magic);
    if found != want {
        let kind = match ndim {
            1 => "an IDX label file",
            3 => "an IDX image file",
            _ => "this IDX file",
        };
        return Err(format!("wrong magic number {found} (0x{found:08x}); expected {want} for {kind}"));
    }
    let mut dims = Vec::with_capacity(ndim as usize);
    let mut total: usize = 1;
    for i in 0..ndim {
        let mut d = [0u8; 4];
        r.read_exact(&mut d).map_err(gz_err)?;
        let d = u32::from_be_bytes(d) as usize;
        if d == 0 && i > 0 {
            return Err(format!("dimension {i} is zero"));
        }
        total = total.checked_mul(d).ok_or_else(|| "declared dimensions overflow".to_string())?;
        dims.push(d);
    }
    let header = 4 + 4 * ndim as u64;
    if let Some(len) = known_len {
        let have = len.saturating_sub(header);
        if have < total as u64 {
            return Err(format!("truncated: header declares {total} data bytes, file has {have}"));
        }
        if have > total as u64 {
            return Err(format!("header declares {total} data bytes, file has {have} (trailing bytes)"));
        }
    }
    // Never allocate what the header claims: grow with the bytes that really arrive.
    let mut data = Vec::new();
    let n = r.by_ref().take(total as u64).read_to_end(&mut data).map_err(gz_err)?;
    if n < total {
        return Err(format!("truncated: header declares {total} data bytes, file has {n}"));
    }
    let mut extra = [0u8; 1];
    if r.read(&mut extra).map_err(gz_err)? != 0 {
        return Err(format!("header declares {total} data bytes, but the file holds more (trailing bytes)"));
    }
    Ok(Idx { dims, data })
}

/// Joins an image IDX (`n × rows × cols`) and a label IDX (`n`) into a dataset.
pub fn from_idx(images: Idx, labels: Idx, img_src: &str, lbl_src: &str) -> Result<Dataset, DataError> {
    let n = images.dims[0];
    if labels.dims[0] != n {
        return Err(DataError::new(
            lbl_src,
            format!("{} labels but {img_src} holds {n} images", labels.dims[0]),
        ));
    }
    let features = images.dims[1] * images.dims[2];
    Ok(Dataset {
        source: lbl_src.to_string(),
        features,
        x: images.data.iter().map(|&b| normalize_byte(b)).collect(),
        y: labels.data.iter().map(|&b| b as u32).collect(),
    })
}

/// The bundled set: the first 10,000 MNIST training images, in the official order.
pub fn bundled() -> Result<Dataset, DataError> {
    let img = parse_idx(GzDecoder::new(BUNDLED_IMAGES), 3, None)
        .map_err(|c| DataError::new("bundled train-images-idx3-ubyte.gz", c))?;
    let lbl = parse_idx(GzDecoder::new(BUNDLED_LABELS), 1, None)
        .map_err(|c| DataError::new("bundled train-labels-idx1-ubyte.gz", c))?;
    from_idx(img, lbl, "bundled images", "bundled MNIST (data/mnist-10k)")
}

/// Finds `dir/name` or `dir/name.gz` (plain first).
pub fn find_standard(dir: &Path, name: &str) -> Option<PathBuf> {
    let plain = dir.join(name);
    if plain.is_file() {
        return Some(plain);
    }
    let gz = dir.join(format!("{name}.gz"));
    gz.is_file().then_some(gz)
}

/// Reads one image/label pair with the standard names from `dir`.
pub fn read_mnist_pair(dir: &Path, prefix: &str) -> Result<Dataset, DataError> {
    let img_name = format!("{prefix}-images-idx3-ubyte");
    let lbl_name = format!("{prefix}-labels-idx1-ubyte");
    let missing = |n: &str| DataError::new(format!("{}[.gz]", dir.join(n).display()), "no such file");
    let img = find_standard(dir, &img_name).ok_or_else(|| missing(&img_name))?;
    let lbl = find_standard(dir, &lbl_name).ok_or_else(|| missing(&lbl_name))?;
    let images = read_idx(&img, 3)?;
    let labels = read_idx(&lbl, 1)?;
    from_idx(images, labels, &img.display().to_string(), &lbl.display().to_string())
}

/// A folder in the standard MNIST layout: `train-*` required, `t10k-*` optional (the test set).
pub fn read_mnist_dir(dir: &Path) -> Result<(Dataset, Option<Dataset>), DataError> {
    if !dir.is_dir() {
        return Err(DataError::new(dir.display(), "no such directory"));
    }
    let train = read_mnist_pair(dir, "train")?;
    let has_test = find_standard(dir, "t10k-images-idx3-ubyte").is_some()
        || find_standard(dir, "t10k-labels-idx1-ubyte").is_some();
    let test = if has_test { Some(read_mnist_pair(dir, "t10k")?) } else { None };
    if let Some(t) = &test
        && t.features != train.features
    {
        return Err(DataError::new(
            &t.source,
            format!("{} features per image, the training set has {}", t.features, train.features),
        ));
    }
    Ok((train, test))
}

/// How a CSV file is laid out.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvFormat {
    /// Column (0-based) holding the class index.
    pub label_col: usize,
    /// Skip the first line.
    pub header: bool,
    /// Feature values are divided by this (255 for pixel bytes, 1 for data already in `[0, 1]`).
    pub scale: f32,
}

impl Default for CsvFormat {
    fn default() -> Self {
        CsvFormat { label_col: 0, header: false, scale: 255.0 }
    }
}

/// Reads a CSV file: one example per line, one label column, every other column a feature.
pub fn read_csv(path: &Path, fmt: &CsvFormat) -> Result<Dataset, DataError> {
    let src = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| DataError::new(&src, io_cause(&e)))?;
    parse_csv(&text, fmt).map_err(|c| DataError::new(&src, c))
}

/// Parses CSV text (see [`read_csv`]); the error is the cause, with line and column.
pub fn parse_csv(text: &str, fmt: &CsvFormat) -> Result<Dataset, String> {
    if !(fmt.scale.is_finite() && fmt.scale > 0.0) {
        return Err(format!("scale {} must be a positive number", fmt.scale));
    }
    let mut width = None;
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        if (fmt.header && i == 0) || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let w = *width.get_or_insert(fields.len());
        if fields.len() != w {
            return Err(format!(
                "line {lineno} has {} fields, expected {w} like the first row",
                fields.len()
            ));
        }
        if fmt.label_col >= w {
            return Err(format!("label column {} does not exist (rows have {w} fields)", fmt.label_col));
        }
        for (c, f) in fields.iter().enumerate() {
            if c == fmt.label_col {
                let l: u32 = f.parse().map_err(|_| {
                    format!("line {lineno}, column {}: label {f:?} is not a non-negative integer", c + 1)
                })?;
                y.push(l);
            } else {
                let v: f32 = f
                    .parse()
                    .ok()
                    .filter(|v: &f32| v.is_finite())
                    .ok_or_else(|| format!("line {lineno}, column {}: {f:?} is not a number", c + 1))?;
                // A finite value can still overflow once scaled (1e30 / 1e-30): refuse it here
                // rather than train on infinity.
                let v = Some(v / fmt.scale).filter(|v| v.is_finite()).ok_or_else(|| {
                    format!(
                        "line {lineno}, column {}: {f:?} divided by the scale {} is not finite",
                        c + 1,
                        fmt.scale
                    )
                })?;
                x.push(v);
            }
        }
    }
    let w = width.ok_or_else(|| "no data rows".to_string())?;
    if w < 2 {
        return Err("rows need a label and at least one feature".into());
    }
    Ok(Dataset { source: String::new(), features: w - 1, x, y })
}

/// A split size: a count of examples or a fraction of them.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum SplitSize {
    /// Exactly this many examples.
    Count(usize),
    /// This fraction of the examples (rounded down), in `[0, 1)`.
    Fraction(f64),
}

impl SplitSize {
    /// Examples out of `n`.
    pub fn of(self, n: usize) -> usize {
        match self {
            SplitSize::Count(c) => c,
            SplitSize::Fraction(f) => (n as f64 * f).floor() as usize,
        }
    }
}

impl std::str::FromStr for SplitSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.contains('.') {
            let f: f64 = s.parse().map_err(|_| format!("{s:?} is not a count or a fraction"))?;
            if !(0.0..1.0).contains(&f) {
                return Err(format!("fraction {s} is not in [0, 1)"));
            }
            Ok(SplitSize::Fraction(f))
        } else {
            s.parse().map(SplitSize::Count).map_err(|_| format!("{s:?} is not a count or a fraction"))
        }
    }
}

impl fmt::Display for SplitSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SplitSize::Count(c) => write!(f, "{c}"),
            SplitSize::Fraction(x) => write!(f, "{x}"),
        }
    }
}

/// Train, validation and test sets.
#[derive(Debug, Clone)]
pub struct Splits {
    /// Examples trained on.
    pub train: Dataset,
    /// Held out for model selection (may be empty).
    pub val: Dataset,
    /// Held out for the final score (may be empty).
    pub test: Dataset,
}

/// Splits `pool` in file order: test from its end (unless a separate test set is given), then
/// validation from the end of what is left, training examples first. The book takes the first
/// N training records, so order is kept.
pub fn split(
    pool: Dataset,
    test: Option<Dataset>,
    val: SplitSize,
    test_size: SplitSize,
) -> Result<Splits, DataError> {
    let n = pool.len();
    let (rest, test) = match test {
        Some(t) => (pool, t),
        None => {
            let k = test_size.of(n);
            if k >= n {
                return Err(DataError::new(
                    &pool.source,
                    format!("test split {test_size} leaves nothing to train on ({n} examples)"),
                ));
            }
            (pool.slice(0..n - k), pool.slice(n - k..n))
        }
    };
    let m = rest.len();
    let k = val.of(m);
    if k >= m {
        return Err(DataError::new(
            &rest.source,
            format!("validation split {val} leaves nothing to train on ({m} examples)"),
        ));
    }
    Ok(Splits { train: rest.slice(0..m - k), val: rest.slice(m - k..m), test })
}

/// How mini-batches are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sampling {
    /// A fresh permutation each epoch; every example once per epoch (last partial batch dropped).
    Shuffle,
    /// Each batch drawn uniformly with replacement, as the book's `np.random.choice`.
    Replace,
}

/// A deterministic random stream for `(seed, purpose, index)`: runs can be resumed at any step
/// by re-deriving a stream instead of saving generator state.
pub fn stream(seed: u64, purpose: u64, index: u64) -> Xoshiro128PlusPlus {
    let mut z =
        seed ^ purpose.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    Xoshiro128PlusPlus::seed_from_u64(z ^ (z >> 31))
}

/// Stream purposes for [`stream`].
pub mod purpose {
    /// Parameter initialisation.
    pub const INIT: u64 = 1;
    /// Mini-batch order of an epoch.
    pub const ORDER: u64 = 2;
    /// Dropout masks of a step.
    pub const DROPOUT: u64 = 3;
}

/// Uniform integer in `0..n` without modulo bias (`n > 0`).
pub fn below(rng: &mut impl RngCore, n: usize) -> usize {
    let n = n as u64;
    let zone = u64::MAX - (u64::MAX % n);
    loop {
        let r = rng.next_u64();
        if r < zone {
            return (r % n) as usize;
        }
    }
}

/// The example indices of one epoch, `steps × batch` long: batch `s` is `order[s*batch..][..batch]`.
pub fn epoch_order(n: usize, batch: usize, sampling: Sampling, seed: u64, epoch: u64) -> Vec<usize> {
    let steps = steps_per_epoch(n, batch);
    let mut rng = stream(seed, purpose::ORDER, epoch);
    match sampling {
        Sampling::Shuffle => {
            let mut v: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                v.swap(i, below(&mut rng, i + 1));
            }
            v.truncate(steps * batch.min(n));
            v
        }
        Sampling::Replace => (0..steps * batch).map(|_| below(&mut rng, n)).collect(),
    }
}

/// Steps in an epoch: `n / batch`, at least 1 (a batch larger than the set uses the whole set).
pub fn steps_per_epoch(n: usize, batch: usize) -> usize {
    (n / batch.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx_bytes(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn idx_ok_and_errors() {
        let b = idx_bytes(2051, &[2, 2, 2], &[0, 255, 1, 2, 3, 4, 5, 6]);
        let idx = parse_idx(&b[..], 3, Some(b.len() as u64)).unwrap();
        assert_eq!(idx.dims, vec![2, 2, 2]);
        assert_eq!(idx.data[1], 255);
        // Gzip path: size unknown up front.
        assert_eq!(parse_idx(&b[..], 3, None).unwrap(), idx);
        let e = parse_idx(&b[..b.len() - 1], 3, None).unwrap_err();
        assert!(e.starts_with("truncated"), "{e}");
        let e = parse_idx(&b[..b.len() - 1], 3, Some(b.len() as u64 - 1)).unwrap_err();
        assert!(e.starts_with("truncated"), "{e}");
        let e = parse_idx(&b[..], 1, None).unwrap_err();
        assert!(e.contains("wrong magic number 2051"), "{e}");
        let e = parse_idx(&b[..6], 3, None).unwrap_err();
        assert!(e.contains("header"), "{e}");
    }

    #[test]
    fn idx_lying_header_does_not_allocate_the_claim() {
        // 4 billion × 4 billion × 4 billion overflows; 65535³ does not but the data is absent.
        let b = idx_bytes(2051, &[u32::MAX, u32::MAX, u32::MAX], &[1, 2]);
        let e = parse_idx(&b[..], 3, None).unwrap_err();
        assert!(e.contains("overflow") || e.starts_with("truncated"), "{e}");
        let b = idx_bytes(2051, &[65535, 65535, 65535], &[1, 2]);
        let e = parse_idx(&b[..], 3, None).unwrap_err();
        assert!(e.starts_with("truncated"), "{e}");
    }

    #[test]
    fn bundled_is_mnist() {
        let d = bundled().unwrap();
        assert_eq!((d.len(), d.features), (10_000, 784));
        let mut counts = [0usize; 10];
        for &l in &d.y {
            counts[l as usize] += 1;
        }
        assert_eq!(counts, [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
        assert!(d.x.iter().all(|&v| (0.0..=1.0).contains(&v)));
        assert_eq!(d.y[0], 5, "first MNIST training image is a 5");
    }

    #[test]
    fn csv_parsing() {
        let f = CsvFormat { label_col: 2, header: true, scale: 10.0 };
        let d = parse_csv("a,b,label\n1,2,3\n\n4, 5 ,6\n", &f).unwrap();
        assert_eq!((d.len(), d.features), (2, 2));
        assert_eq!(d.y, vec![3, 6]);
        assert_eq!(d.x, vec![0.1, 0.2, 0.4, 0.5]);
        let e = parse_csv("1,2\n3,4,5\n", &CsvFormat::default()).unwrap_err();
        assert_eq!(e, "line 2 has 3 fields, expected 2 like the first row");
        let e = parse_csv("1,2\n3,x\n", &CsvFormat::default()).unwrap_err();
        assert_eq!(e, "line 2, column 2: \"x\" is not a number");
        let e = parse_csv("1.5,2\n", &CsvFormat::default()).unwrap_err();
        assert!(e.contains("label \"1.5\""), "{e}");
    }

    #[test]
    fn splits_and_sizes() {
        assert_eq!("0.1".parse::<SplitSize>().unwrap(), SplitSize::Fraction(0.1));
        assert_eq!("1000".parse::<SplitSize>().unwrap(), SplitSize::Count(1000));
        assert!("1.5".parse::<SplitSize>().is_err());
        let d = Dataset {
            source: "t".into(),
            features: 1,
            x: (0..10).map(|i| i as f32).collect(),
            y: vec![0; 10],
        };
        let s = split(d.clone(), None, SplitSize::Count(2), SplitSize::Fraction(0.3)).unwrap();
        assert_eq!(s.train.x, vec![0., 1., 2., 3., 4.]);
        assert_eq!(s.val.x, vec![5., 6.]);
        assert_eq!(s.test.x, vec![7., 8., 9.]);
        assert!(split(d, None, SplitSize::Count(0), SplitSize::Count(10)).is_err());
    }

    #[test]
    fn orders_are_seeded() {
        let a = epoch_order(10, 3, Sampling::Shuffle, 7, 0);
        assert_eq!(a.len(), 9);
        let mut s = a.clone();
        s.sort();
        s.dedup();
        assert_eq!(s.len(), 9, "no repeats without replacement");
        assert_eq!(a, epoch_order(10, 3, Sampling::Shuffle, 7, 0));
        assert_ne!(a, epoch_order(10, 3, Sampling::Shuffle, 7, 1));
        let r = epoch_order(10, 4, Sampling::Replace, 7, 0);
        assert_eq!(r.len(), 8);
        assert!(r.iter().all(|&i| i < 10));
    }
}
