//! IDX files (MNIST, Fashion-MNIST; plain or gzip) and the bundled MNIST subset: headers
//! validated and the sizes they declare charged before anything is allocated, image and label
//! files joined into a [`Dataset`] of pixel bytes, and the standard MNIST folder layout.

use super::{Dataset, Features, io_cause};
use crate::Error;
use crate::budget::{self, Budget};
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// The bundled images: the first 10,000 records of the official MNIST training file (IDX, gzip).
pub const BUNDLED_IMAGES: &[u8] = include_bytes!("../../data/mnist-10k/train-images-idx3-ubyte.gz");
/// Images in [`BUNDLED_IMAGES`] (28×28 each).
pub const BUNDLED_COUNT: usize = 10_000;
/// The bundled labels matching [`BUNDLED_IMAGES`].
pub const BUNDLED_LABELS: &[u8] = include_bytes!("../../data/mnist-10k/train-labels-idx1-ubyte.gz");

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

/// Reads an IDX file of unsigned bytes with `ndim` dimensions (3 for images, 1 for labels),
/// decompressing it if its name ends in `.gz`, with no memory budget (sizes that overflow are
/// still refused). See [`read_idx_within`].
pub fn read_idx(path: &Path, ndim: u8) -> Result<Idx, Error> {
    read_idx_within(path, ndim, &mut Budget::unlimited())
}

/// [`read_idx`], charging the data the header declares to `budget` before reading it.
pub fn read_idx_within(path: &Path, ndim: u8, budget: &mut Budget) -> Result<Idx, Error> {
    let src = path.display();
    let file = File::open(path).map_err(|e| Error::data(&src, io_cause(&e)))?;
    // For a plain file the true size is known up front; a gzip stream is bounded while reading.
    // A gzip file may hold several members (`cat a.gz b.gz`): they are one stream.
    let plain_len = if is_gz(path) { None } else { file.metadata().ok().map(|m| m.len()) };
    let reader: Box<dyn Read> = if is_gz(path) {
        Box::new(MultiGzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    parse_idx_within(reader, ndim, plain_len, budget, is_gz(path)).map_err(|c| Error::data(&src, c))
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
pub fn from_idx(images: Idx, labels: Idx, img_src: &str, lbl_src: &str) -> Result<Dataset, Error> {
    from_idx_within(images, labels, img_src, lbl_src, &mut Budget::unlimited())
}

/// [`from_idx`], charging the labels (as `u32`) to `budget` first.
pub fn from_idx_within(
    images: Idx,
    labels: Idx,
    img_src: &str,
    lbl_src: &str,
    budget: &mut Budget,
) -> Result<Dataset, Error> {
    let n = images.dims[0];
    if labels.dims[0] != n {
        return Err(Error::data(
            lbl_src,
            format!("{} labels but {img_src} holds {n} images", labels.dims[0]),
        ));
    }
    budget
        .charge(&format!("{n} labels as 32-bit class indices"), budget::of::<u32>(n))
        .map_err(|e| Error::data(lbl_src, e.0))?;
    let features = images.dims[1] * images.dims[2];
    Ok(Dataset {
        source: lbl_src.to_string(),
        features,
        x: Features::Bytes(images.data),
        y: labels.data.iter().map(|&b| b as u32).collect(),
    })
}

/// The bundled set: the first 10,000 MNIST training images, in the official order.
pub fn bundled() -> Result<Dataset, Error> {
    bundled_within(&mut Budget::unlimited())
}

/// [`bundled`], charged to `budget` (7.9 MB).
pub fn bundled_within(budget: &mut Budget) -> Result<Dataset, Error> {
    let img = parse_idx_within(MultiGzDecoder::new(BUNDLED_IMAGES), 3, None, budget, true)
        .map_err(|c| Error::data("bundled train-images-idx3-ubyte.gz", c))?;
    let lbl = parse_idx_within(MultiGzDecoder::new(BUNDLED_LABELS), 1, None, budget, true)
        .map_err(|c| Error::data("bundled train-labels-idx1-ubyte.gz", c))?;
    from_idx_within(img, lbl, "bundled images", "bundled MNIST (std-runner/data/mnist-10k)", budget)
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
pub fn read_mnist_pair(dir: &Path, prefix: &str, budget: &mut Budget) -> Result<Dataset, Error> {
    let img_name = format!("{prefix}-images-idx3-ubyte");
    let lbl_name = format!("{prefix}-labels-idx1-ubyte");
    let missing = |n: &str| Error::data(format!("{}[.gz]", dir.join(n).display()), "no such file");
    let img = find_standard(dir, &img_name).ok_or_else(|| missing(&img_name))?;
    let lbl = find_standard(dir, &lbl_name).ok_or_else(|| missing(&lbl_name))?;
    let images = read_idx_within(&img, 3, budget)?;
    let labels = read_idx_within(&lbl, 1, budget)?;
    from_idx_within(images, labels, &img.display().to_string(), &lbl.display().to_string(), budget)
}

/// A folder in the standard MNIST layout: `train-*` required, `t10k-*` optional (the test set),
/// charged to `budget`.
pub fn read_mnist_dir(dir: &Path, budget: &mut Budget) -> Result<(Dataset, Option<Dataset>), Error> {
    if !dir.is_dir() {
        return Err(Error::data(dir.display(), "no such directory"));
    }
    let train = read_mnist_pair(dir, "train", budget)?;
    let has_test = find_standard(dir, "t10k-images-idx3-ubyte").is_some()
        || find_standard(dir, "t10k-labels-idx1-ubyte").is_some();
    let test = if has_test { Some(read_mnist_pair(dir, "t10k", budget)?) } else { None };
    if let Some(t) = &test
        && t.features != train.features
    {
        return Err(Error::data(
            &t.source,
            format!("{} features per image, the training set has {}", t.features, train.features),
        ));
    }
    Ok((train, test))
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

    fn gz(b: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b).unwrap();
        e.finish().unwrap()
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
}
