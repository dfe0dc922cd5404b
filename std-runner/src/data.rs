//! Data in: IDX (MNIST, Fashion-MNIST; plain or gzip), CSV, the bundled MNIST subset,
//! normalisation to `[0, 1]` in `f32`, splits, and seeded mini-batch orders.
//!
//! Every reader validates before it trusts: magic numbers, dimensions, and the size a header
//! declares against the bytes actually there — checked before anything that size is allocated,
//! with overflow-checked arithmetic. Errors name the file and the cause in one line.

use crate::budget::{self, Budget};
use flate2::read::MultiGzDecoder;
use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro128PlusPlus;
use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// The bundled images: the first 10,000 records of the official MNIST training file (IDX, gzip).
pub const BUNDLED_IMAGES: &[u8] = include_bytes!("../../data/mnist-10k/train-images-idx3-ubyte.gz");
/// Images in [`BUNDLED_IMAGES`] (28×28 each).
pub const BUNDLED_COUNT: usize = 10_000;
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
    pub fn check_labels(&self, classes: usize) -> Result<(), DataError> {
        match self.y.iter().enumerate().find(|&(_, &l)| l as usize >= classes) {
            Some((i, &l)) => Err(DataError::new(
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
        spec: &staticgrad::MlpSpec,
        tape: &mut staticgrad::Tape,
        params: &staticgrad::Params,
        chunk: usize,
    ) -> Result<usize, staticgrad::Error> {
        match &self.x {
            Features::Floats(x) => spec.correct(tape, params, x, &self.y, chunk),
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
                    hits += spec.correct(tape, params, &buf, &self.y[start..end], chunk)?;
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
/// decompressing it if its name ends in `.gz`, with no memory budget (sizes that overflow are
/// still refused). See [`read_idx_within`].
pub fn read_idx(path: &Path, ndim: u8) -> Result<Idx, DataError> {
    read_idx_within(path, ndim, &mut Budget::unlimited())
}

/// [`read_idx`], charging the data the header declares to `budget` before reading it.
pub fn read_idx_within(path: &Path, ndim: u8, budget: &mut Budget) -> Result<Idx, DataError> {
    let src = path.display();
    let file = File::open(path).map_err(|e| DataError::new(&src, io_cause(&e)))?;
    // For a plain file the true size is known up front; a gzip stream is bounded while reading.
    // A gzip file may hold several members (`cat a.gz b.gz`): they are one stream.
    let plain_len = if is_gz(path) { None } else { file.metadata().ok().map(|m| m.len()) };
    let reader: Box<dyn Read> = if is_gz(path) {
        Box::new(MultiGzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    parse_idx_within(reader, ndim, plain_len, budget, is_gz(path)).map_err(|c| DataError::new(&src, c))
}

/// Parses an IDX stream; `known_len` is the total byte count when known (plain files). No memory
/// budget; see [`parse_idx_within`].
pub fn parse_idx(r: impl Read, ndim: u8, known_len: Option<u64>) -> Result<Idx, String> {
    parse_idx_within(r, ndim, known_len, &mut Budget::unlimited(), false)
}

/// Where a read failed, for the message.
#[derive(Clone, Copy)]
enum Part {
    Header,
    Data { have: usize, total: usize },
    After,
}

fn read_err(e: std::io::Error, part: Part, gz: bool) -> String {
    use std::io::ErrorKind::{InvalidData, InvalidInput, UnexpectedEof};
    let stream = if gz { "the gzip stream" } else { "the file" };
    match (e.kind(), part) {
        (UnexpectedEof, Part::Header) => "truncated: the file ends inside the IDX header".to_string(),
        (UnexpectedEof, Part::Data { have, total }) => {
            format!(
                "truncated: {stream} ends inside the data (header declares {total} data bytes, {have} arrived)"
            )
        }
        (UnexpectedEof, Part::After) => format!(
            "the gzip stream does not end cleanly after the data (truncated, or trailing bytes that are not a gzip member: {e})"
        ),
        (InvalidInput | InvalidData, Part::After) => {
            format!("trailing bytes after the gzip data are not a valid gzip member ({e})")
        }
        (InvalidInput | InvalidData, _) => format!("not a valid gzip stream ({e})"),
        _ => io_cause(&e),
    }
}

/// Parses an IDX stream, charging the data the header declares to `budget` before a byte of it
/// is read; `known_len` is the total byte count when known (plain files), `gz` says the stream
/// is decompressed (for messages).
pub fn parse_idx_within(
    mut r: impl Read,
    ndim: u8,
    known_len: Option<u64>,
    budget: &mut Budget,
    gz: bool,
) -> Result<Idx, String> {
    let mut magic = [0u8; 4];
    r.read_exact(&mut magic).map_err(|e| read_err(e, Part::Header, gz))?;
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
        r.read_exact(&mut d).map_err(|e| read_err(e, Part::Header, gz))?;
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
    // The claim is checked against the budget before any of it is read or reserved.
    let shape = dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("×");
    budget
        .charge(&format!("header declares {shape} = {total} data bytes"), Some(total as u64))
        .map_err(|e| e.0)?;
    // A plain file is known to hold the claim: reserved at once. A stream of unknown length may
    // lie, so its buffer grows with the bytes that arrive, doubling, never past the claim.
    let mut data = Vec::new();
    let reserve = |data: &mut Vec<u8>, n: usize| {
        data.try_reserve_exact(n).map_err(|e| format!("{total} data bytes cannot be allocated ({e})"))
    };
    if known_len.is_some() {
        reserve(&mut data, total)?;
    }
    while data.len() < total {
        let grow = (total - data.len()).min(data.len().max(1 << 20));
        reserve(&mut data, grow)?;
        let got = match r.by_ref().take(grow as u64).read_to_end(&mut data) {
            Ok(n) => n,
            Err(e) => return Err(read_err(e, Part::Data { have: data.len(), total }, gz)),
        };
        if got < grow {
            return Err(format!("truncated: header declares {total} data bytes, file has {}", data.len()));
        }
    }
    let mut extra = [0u8; 1];
    if r.read(&mut extra).map_err(|e| read_err(e, Part::After, gz))? != 0 {
        return Err(format!("header declares {total} data bytes, but the file holds more (trailing bytes)"));
    }
    Ok(Idx { dims, data })
}

/// Joins an image IDX (`n × rows × cols`) and a label IDX (`n`) into a dataset of pixel bytes.
pub fn from_idx(images: Idx, labels: Idx, img_src: &str, lbl_src: &str) -> Result<Dataset, DataError> {
    from_idx_within(images, labels, img_src, lbl_src, &mut Budget::unlimited())
}

/// [`from_idx`], charging the labels (as `u32`) to `budget` first.
pub fn from_idx_within(
    images: Idx,
    labels: Idx,
    img_src: &str,
    lbl_src: &str,
    budget: &mut Budget,
) -> Result<Dataset, DataError> {
    let n = images.dims[0];
    if labels.dims[0] != n {
        return Err(DataError::new(
            lbl_src,
            format!("{} labels but {img_src} holds {n} images", labels.dims[0]),
        ));
    }
    budget
        .charge(&format!("{n} labels as 32-bit class indices"), budget::of::<u32>(n))
        .map_err(|e| DataError::new(lbl_src, e.0))?;
    let features = images.dims[1] * images.dims[2];
    Ok(Dataset {
        source: lbl_src.to_string(),
        features,
        x: Features::Bytes(images.data),
        y: labels.data.iter().map(|&b| b as u32).collect(),
    })
}

/// The bundled set: the first 10,000 MNIST training images, in the official order.
pub fn bundled() -> Result<Dataset, DataError> {
    bundled_within(&mut Budget::unlimited())
}

/// [`bundled`], charged to `budget` (7.9 MB).
pub fn bundled_within(budget: &mut Budget) -> Result<Dataset, DataError> {
    let img = parse_idx_within(MultiGzDecoder::new(BUNDLED_IMAGES), 3, None, budget, true)
        .map_err(|c| DataError::new("bundled train-images-idx3-ubyte.gz", c))?;
    let lbl = parse_idx_within(MultiGzDecoder::new(BUNDLED_LABELS), 1, None, budget, true)
        .map_err(|c| DataError::new("bundled train-labels-idx1-ubyte.gz", c))?;
    from_idx_within(img, lbl, "bundled images", "bundled MNIST (data/mnist-10k)", budget)
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

/// Reads one image/label pair with the standard names from `dir`, charged to `budget`.
pub fn read_mnist_pair(dir: &Path, prefix: &str, budget: &mut Budget) -> Result<Dataset, DataError> {
    let img_name = format!("{prefix}-images-idx3-ubyte");
    let lbl_name = format!("{prefix}-labels-idx1-ubyte");
    let missing = |n: &str| DataError::new(format!("{}[.gz]", dir.join(n).display()), "no such file");
    let img = find_standard(dir, &img_name).ok_or_else(|| missing(&img_name))?;
    let lbl = find_standard(dir, &lbl_name).ok_or_else(|| missing(&lbl_name))?;
    let images = read_idx_within(&img, 3, budget)?;
    let labels = read_idx_within(&lbl, 1, budget)?;
    from_idx_within(images, labels, &img.display().to_string(), &lbl.display().to_string(), budget)
}

/// A folder in the standard MNIST layout: `train-*` required, `t10k-*` optional (the test set),
/// charged to `budget`.
pub fn read_mnist_dir(dir: &Path, budget: &mut Budget) -> Result<(Dataset, Option<Dataset>), DataError> {
    if !dir.is_dir() {
        return Err(DataError::new(dir.display(), "no such directory"));
    }
    let train = read_mnist_pair(dir, "train", budget)?;
    let has_test = find_standard(dir, "t10k-images-idx3-ubyte").is_some()
        || find_standard(dir, "t10k-labels-idx1-ubyte").is_some();
    let test = if has_test { Some(read_mnist_pair(dir, "t10k", budget)?) } else { None };
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
/// No memory budget; see [`read_csv_within`].
pub fn read_csv(path: &Path, fmt: &CsvFormat) -> Result<Dataset, DataError> {
    read_csv_within(path, fmt, &mut Budget::unlimited())
}

/// [`read_csv`], charging the text (its size on disk) and then the values it holds to `budget`
/// before each is allocated.
pub fn read_csv_within(path: &Path, fmt: &CsvFormat, budget: &mut Budget) -> Result<Dataset, DataError> {
    let src = path.display().to_string();
    let len = std::fs::metadata(path).map_err(|e| DataError::new(&src, io_cause(&e)))?.len();
    budget.charge(&format!("{len} bytes of text"), Some(len)).map_err(|e| DataError::new(&src, e.0))?;
    let bytes = budget::read_at_most(path, len).map_err(|e| DataError::new(&src, io_cause(&e)))?;
    let text =
        String::from_utf8(bytes).map_err(|_| DataError::new(&src, "stream did not contain valid UTF-8"))?;
    let d = parse_csv_within(&text, fmt, budget).map_err(|c| DataError::new(&src, c));
    budget.release(len);
    d
}

/// Parses CSV text (see [`read_csv`]); the error is the cause, with line and column.
pub fn parse_csv(text: &str, fmt: &CsvFormat) -> Result<Dataset, String> {
    parse_csv_within(text, fmt, &mut Budget::unlimited())
}

/// [`parse_csv`], charging the values (at most one row per line, as wide as the first row) to
/// `budget` before they are allocated.
pub fn parse_csv_within(text: &str, fmt: &CsvFormat, budget: &mut Budget) -> Result<Dataset, String> {
    if !(fmt.scale.is_finite() && fmt.scale > 0.0) {
        return Err(format!("scale {} must be a positive number", fmt.scale));
    }
    let data_lines =
        || text.lines().enumerate().filter(|(i, l)| !((fmt.header && *i == 0) || l.trim().is_empty()));
    let rows = data_lines().count();
    let first_width = data_lines().next().map_or(0, |(_, l)| l.split(',').count());
    // Every row has the first row's width or is refused, so this is all the values can take.
    let values = rows.checked_mul(first_width.saturating_sub(1));
    let need = budget::sum(&[values.and_then(budget::of::<f32>), budget::of::<u32>(rows)]);
    budget.charge(&format!("{rows} rows of {first_width} fields"), need).map_err(|e| e.0)?;
    let mut width = None;
    let (mut x, mut y) = (Vec::with_capacity(values.unwrap_or(0)), Vec::with_capacity(rows));
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        if (fmt.header && i == 0) || line.trim().is_empty() {
            continue;
        }
        let nfields = line.split(',').count();
        let w = *width.get_or_insert(nfields);
        if nfields != w {
            return Err(format!("line {lineno} has {nfields} fields, expected {w} like the first row"));
        }
        if fmt.label_col >= w {
            return Err(format!("label column {} does not exist (rows have {w} fields)", fmt.label_col));
        }
        for (c, f) in line.split(',').map(str::trim).enumerate() {
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
    Ok(Dataset { source: String::new(), features: w - 1, x: Features::Floats(x), y })
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
    // The held-out parts are copied out of the tail and the pool truncated in place, so the
    // examples are stored once plus the held-out copies (see [`split_copy_rows`]).
    let (mut rest, test) = match test {
        Some(t) => (pool, t),
        None => {
            let k = test_size.of(n);
            if k >= n {
                return Err(DataError::new(
                    &pool.source,
                    format!("test split {test_size} leaves nothing to train on ({n} examples)"),
                ));
            }
            let test = pool.slice(n - k..n);
            let mut pool = pool;
            pool.truncate(n - k);
            (pool, test)
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
    let val = rest.slice(m - k..m);
    rest.truncate(m - k);
    Ok(Splits { train: rest, val, test })
}

/// Examples [`split`] copies out of a pool of `n` (the test part when there is no separate test
/// set, and the validation part); `None` if a split leaves nothing to train on.
pub fn split_copy_rows(n: usize, separate_test: bool, val: SplitSize, test_size: SplitSize) -> Option<usize> {
    let kt = if separate_test { 0 } else { test_size.of(n) };
    let m = n.checked_sub(kt).filter(|&m| m > 0)?;
    let kv = val.of(m);
    (kv < m).then_some(kt + kv)
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
pub fn below(rng: &mut impl Rng, n: usize) -> usize {
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
        assert!(d.x.iter().all(|v| (0.0..=1.0).contains(&v)));
        assert!(matches!(d.x, Features::Bytes(_)), "pixels are kept as bytes");
        assert_eq!(d.stored_bytes(), 10_000 * 784 + 10_000 * 4);
        assert_eq!(d.y[0], 5, "first MNIST training image is a 5");
    }

    #[test]
    fn csv_parsing() {
        let f = CsvFormat { label_col: 2, header: true, scale: 10.0 };
        let d = parse_csv("a,b,label\n1,2,3\n\n4, 5 ,6\n", &f).unwrap();
        assert_eq!((d.len(), d.features), (2, 2));
        assert_eq!(d.y, vec![3, 6]);
        assert_eq!(d.x, Features::Floats(vec![0.1, 0.2, 0.4, 0.5]));
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
            x: Features::Floats((0..10).map(|i| i as f32).collect()),
            y: vec![0; 10],
        };
        let s = split(d.clone(), None, SplitSize::Count(2), SplitSize::Fraction(0.3)).unwrap();
        assert_eq!(s.train.x, Features::Floats(vec![0., 1., 2., 3., 4.]));
        assert_eq!(s.val.x, Features::Floats(vec![5., 6.]));
        assert_eq!(s.test.x, Features::Floats(vec![7., 8., 9.]));
        assert_eq!(split_copy_rows(10, false, SplitSize::Count(2), SplitSize::Fraction(0.3)), Some(5));
        assert_eq!(split_copy_rows(10, true, SplitSize::Count(2), SplitSize::Fraction(0.3)), Some(2));
        assert_eq!(split_copy_rows(10, false, SplitSize::Count(0), SplitSize::Count(10)), None);
        assert!(split(d, None, SplitSize::Count(0), SplitSize::Count(10)).is_err());
    }

    fn gz(b: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn byte_storage_gives_the_same_floats_and_the_same_accuracy() {
        use staticgrad::{MlpSpec, Node, ParamEntry, Params, Tape};
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
        let spec = MlpSpec::new(&widths);
        let (mut v, mut g) = (vec![0.0; spec.param_len()], vec![0.0; spec.param_len()]);
        let mut table = vec![ParamEntry::EMPTY; spec.param_tensors()];
        let mut params = Params::new(&mut v, &mut g, &mut table);
        spec.alloc(&mut params).unwrap();
        spec.init(&mut params, &mut stream(1, 1, 1)).unwrap();
        let mut floats = vec![0.0; spec.eval_tape_floats(7)];
        let mut nodes = vec![Node::EMPTY; spec.eval_tape_nodes()];
        let mut tape = Tape::new(&mut floats, &mut nodes);
        for chunk in [1, 2, 3, 7, 100] {
            let want = f.correct(&spec, &mut tape, &params, chunk).unwrap();
            assert_eq!(b.correct(&spec, &mut tape, &params, chunk).unwrap(), want, "chunk {chunk}");
        }
        assert!(b.correct(&spec, &mut tape, &params, 0).is_err());
    }

    #[test]
    fn sixty_thousand_images_cost_their_bytes() {
        assert_eq!(Dataset::bytes_for(60_000, 784, 1), Some(47_040_000 + 240_000));
        assert_eq!(Dataset::bytes_for(60_000, 784, 4), Some(188_160_000 + 240_000));
        assert_eq!(Dataset::bytes_for(usize::MAX, 2, 1), None);
    }

    #[test]
    fn idx_claims_are_charged_before_reading() {
        let b = idx_bytes(2051, &[1000, 28, 28], &[]);
        let mut budget = Budget::new(100_000, "test");
        let e = parse_idx_within(&b[..], 3, None, &mut budget, true).unwrap_err();
        assert!(e.contains("1000×28×28 = 784000 data bytes") && e.contains("over the memory budget"), "{e}");
        assert_eq!(budget.used(), 0);
        let ok = idx_bytes(2051, &[2, 2, 2], &[1; 8]);
        parse_idx_within(&ok[..], 3, None, &mut budget, true).unwrap();
        assert_eq!(budget.used(), 8);
    }

    #[test]
    fn gzip_members_truncation_and_trailing_bytes() {
        let b = idx_bytes(2051, &[2, 2, 2], &[0, 255, 1, 2, 3, 4, 5, 6]);
        let want = parse_idx(&b[..], 3, None).unwrap();
        let read =
            |z: &[u8]| parse_idx_within(MultiGzDecoder::new(z), 3, None, &mut Budget::unlimited(), true);
        // `cat a.gz b.gz`: one stream.
        let two = [gz(&b[..10]), gz(&b[10..])].concat();
        assert_eq!(read(&two).unwrap(), want);
        // Cut inside the pixel data (the gzip stream is cut too).
        let z = gz(&b);
        let pixels: Vec<u8> =
            (0..50 * 16).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        let big = gz(&idx_bytes(2051, &[50, 4, 4], &pixels));
        let e = read(&big[..big.len() / 2]).unwrap_err();
        assert!(e.contains("truncated") && e.contains("inside the data"), "{e}");
        let e = read(&z[..z.len() - 4]).unwrap_err();
        assert!(e.contains("does not end cleanly"), "{e}");
        let short = gz(&b[..b.len() - 3]);
        let e = read(&short).unwrap_err();
        assert!(e.starts_with("truncated: header declares 8 data bytes, file has 5"), "{e}");
        // Garbage after a valid stream.
        let e = read(&[z.clone(), b"garbage, not a gzip member".to_vec()].concat()).unwrap_err();
        assert!(e.contains("trailing bytes after the gzip data"), "{e}");
        // A valid second member with more IDX bytes is trailing data of the IDX file.
        let e = read(&[z, gz(b"x")].concat()).unwrap_err();
        assert!(e.contains("trailing bytes"), "{e}");
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
