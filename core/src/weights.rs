//! The trained-weights file format: a small header, the model spec, little-endian `f32`s and a
//! CRC-32, encoded into and parsed from caller-owned bytes — no allocation, so a firmware can read
//! weights straight out of flash with [`parse`] and copy them into its `static` parameter buffer.
//!
//! Layout (all integers and floats little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `b"SGWT"` |
//! | 4 | 2 | format version ([`VERSION`]) |
//! | 6 | 2 | number of layer widths `n` (≤ [`MAX_WIDTHS`]) |
//! | 8 | 1 | activation code ([`ModelDesc::activation`]) |
//! | 9 | 1 | flags (bit 0: batch-norm; other bits 0) |
//! | 10 | 2 | version 1: reserved, 0; version 2: length `L` of the layer string (1 to [`MAX_NET`]) |
//! | 12 | 4 | dropout ratio, `f32` |
//! | 16 | 4 | parameter float count `p` |
//! | 20 | 4 | statistics float count `s` (batch-norm running mean and variance) |
//! | 24 | 4·n | layer widths, `u32` |
//! | 24+4n | `L` rounded up to 4 | version 2 only: the layer string (ASCII, zero-padded) |
//! | … | 4·p | parameter values, `f32`, in [`Params`](crate::Params) order |
//! | … | 4·s | running statistics, `f32` |
//! | end−4 | 4 | CRC-32 (IEEE) of every byte before it |
//!
//! **Versions.** Version 1 describes an MLP by its widths, activation, flags and dropout.
//! Version 2 adds a *layer string* ([`ModelDesc::with_net`]: the runner's
//! `in1x28x28,conv30x5,relu,maxpool2,dense100,relu,dense10`, which this crate stores but does not
//! interpret) for models that widths cannot describe (CNNs); its widths are then the input
//! features and the outputs. A desc without a layer string is written as version 1, byte for
//! byte as before, and both versions are read.
//!
//! ```
//! use staticgrad::weights::{self, ModelDesc};
//! let desc = ModelDesc::new(&[2, 3, 1], 0, 0, 0.0)?;
//! let params = [0.5f32; 13]; // 2·3 + 3 + 3·1 + 1
//! let mut buf = [0u8; 128];
//! let n = weights::encode(&desc, &params, &[], &mut buf)?;
//! assert_eq!(n, weights::encoded_len(3, 13, 0));
//!
//! let view = weights::parse(&buf[..n])?;
//! view.expect(&desc)?;
//! let mut loaded = [0.0f32; 13];
//! view.read_params(&mut loaded)?;
//! assert_eq!(loaded, params);
//!
//! buf[30] ^= 1; // one flipped bit is caught by the checksum
//! assert!(matches!(weights::parse(&buf[..n]), Err(weights::WeightsError::Checksum { .. })));
//! # Ok::<(), weights::WeightsError>(())
//! ```

// A `ModelDesc` holds a version-2 layer string inline (it is `Copy` and fixed-size, no
// allocation), so an error carrying two of them is a few hundred bytes: fine for a file format
// read once on a host or at boot, which no training step touches.
#![allow(clippy::result_large_err, clippy::large_enum_variant)]

use core::fmt;

/// The four bytes every weights file starts with.
pub const MAGIC: [u8; 4] = *b"SGWT";
/// The newest format version this code writes and reads (it reads version 1 too, and writes it
/// for a desc without a layer string).
pub const VERSION: u16 = 2;
/// Longest layer string a version-2 desc holds, in bytes.
pub const MAX_NET: usize = 160;
/// Most layer widths a spec can hold (input, hidden layers and output).
pub const MAX_WIDTHS: usize = 12;
/// Bytes before the layer widths.
pub const FIXED_HEADER: usize = 24;
/// Flag bit: the model has batch-norm after each hidden affine layer.
pub const FLAG_BATCHNORM: u8 = 1;

/// Names of the activation codes, indexed by code.
pub const ACTIVATIONS: [&str; 4] = ["relu", "sigmoid", "tanh", "identity"];

/// What went wrong reading or writing a weights file; each variant carries the facts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WeightsError {
    /// The first four bytes are not [`MAGIC`].
    BadMagic {
        /// The bytes found.
        found: [u8; 4],
    },
    /// A format version this code does not read.
    Version {
        /// The version found.
        found: u16,
    },
    /// The bytes end before the header says they should.
    Truncated {
        /// Bytes the header implies.
        needed: usize,
        /// Bytes given.
        available: usize,
    },
    /// More bytes than the header implies.
    TrailingBytes {
        /// Bytes the header implies.
        expected: usize,
        /// Bytes given.
        found: usize,
    },
    /// The stored CRC-32 does not match the contents.
    Checksum {
        /// CRC stored in the file.
        stored: u32,
        /// CRC of the bytes read.
        computed: u32,
    },
    /// The file holds a different model than the caller expects.
    SpecMismatch {
        /// The spec the caller expects.
        expected: ModelDesc,
        /// The spec stored in the file.
        found: ModelDesc,
    },
    /// More than [`MAX_WIDTHS`] widths, fewer than 2, a zero width, an unknown activation or a
    /// dropout ratio outside `[0, 1)`.
    BadSpec {
        /// What is wrong.
        what: &'static str,
        /// The offending number.
        value: u32,
    },
    /// A float count that does not match what the caller has room for or expects.
    Count {
        /// `"params"`, `"stats"` or `"output bytes"`.
        what: &'static str,
        /// Count expected.
        expected: usize,
        /// Count found.
        found: usize,
    },
}

impl fmt::Display for WeightsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WeightsError::BadMagic { found } => {
                write!(f, "not a staticgrad weights file (magic {found:02x?}, expected \"SGWT\")")
            }
            WeightsError::Version { found } => {
                write!(f, "weights format version {found} is not supported (this build reads {VERSION})")
            }
            WeightsError::Truncated { needed, available } => {
                write!(f, "truncated: header implies {needed} bytes, only {available} present")
            }
            WeightsError::TrailingBytes { expected, found } => {
                write!(f, "{found} bytes where the header implies {expected}")
            }
            WeightsError::Checksum { stored, computed } => {
                write!(f, "checksum mismatch: stored {stored:08x}, computed {computed:08x} (file is corrupt)")
            }
            WeightsError::SpecMismatch { expected, found } => {
                write!(f, "model spec mismatch: expected {expected}, file holds {found}")
            }
            WeightsError::BadSpec { what, value } => write!(f, "invalid model spec: {what} ({value})"),
            WeightsError::Count { what, expected, found } => {
                write!(f, "{what}: expected {expected}, found {found}")
            }
        }
    }
}

impl core::error::Error for WeightsError {}

/// The model a weights file belongs to: layer widths, activation, flags and dropout ratio.
/// `Copy` and fixed-size, so errors can carry two of them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelDesc {
    widths: [u32; MAX_WIDTHS],
    len: u8,
    net: [u8; MAX_NET],
    net_len: u8,
    /// Activation code, an index into [`ACTIVATIONS`].
    pub activation: u8,
    /// Flag bits ([`FLAG_BATCHNORM`]).
    pub flags: u8,
    /// Dropout ratio after each hidden activation (0 = none).
    pub dropout: f32,
}

impl ModelDesc {
    /// A spec from its layer widths (input first, classes last), activation code, flags and dropout.
    pub fn new(widths: &[u32], activation: u8, flags: u8, dropout: f32) -> Result<Self, WeightsError> {
        if widths.len() < 2 || widths.len() > MAX_WIDTHS {
            return Err(WeightsError::BadSpec { what: "number of widths", value: widths.len() as u32 });
        }
        if let Some(&w) = widths.iter().find(|&&w| w == 0) {
            return Err(WeightsError::BadSpec { what: "zero layer width", value: w });
        }
        if activation as usize >= ACTIVATIONS.len() {
            return Err(WeightsError::BadSpec { what: "activation code", value: activation as u32 });
        }
        if !(0.0..1.0).contains(&dropout) {
            return Err(WeightsError::BadSpec { what: "dropout ratio bits", value: dropout.to_bits() });
        }
        if flags & !FLAG_BATCHNORM != 0 {
            // Unknown bits would mean a model this version cannot rebuild: refuse, never ignore.
            return Err(WeightsError::BadSpec { what: "unknown flag bits", value: flags as u32 });
        }
        let mut w = [0u32; MAX_WIDTHS];
        w[..widths.len()].copy_from_slice(widths);
        Ok(ModelDesc {
            widths: w,
            len: widths.len() as u8,
            net: [0; MAX_NET],
            net_len: 0,
            activation,
            flags,
            dropout,
        })
    }

    /// The same desc with a layer string (printable ASCII, 1 to [`MAX_NET`] bytes): a version-2
    /// file.
    pub fn with_net(mut self, net: &str) -> Result<Self, WeightsError> {
        let b = net.as_bytes();
        if b.is_empty() || b.len() > MAX_NET {
            return Err(WeightsError::BadSpec { what: "layer string length", value: b.len() as u32 });
        }
        if let Some(&c) = b.iter().find(|c| !(c.is_ascii_graphic())) {
            return Err(WeightsError::BadSpec { what: "layer string byte", value: c as u32 });
        }
        self.net = [0; MAX_NET];
        self.net[..b.len()].copy_from_slice(b);
        self.net_len = b.len() as u8;
        Ok(self)
    }

    /// The layer string of a version-2 desc.
    pub fn net(&self) -> Option<&str> {
        let b = &self.net[..self.net_len as usize];
        if b.is_empty() { None } else { core::str::from_utf8(b).ok() }
    }

    /// The version this desc is written as.
    pub fn version(&self) -> u16 {
        if self.net_len == 0 { 1 } else { 2 }
    }

    /// Bytes of a file of this desc with `params` parameter and `stats` statistics floats
    /// ([`encoded_len`] plus the layer string's, saturating).
    pub fn file_len(&self, params: usize, stats: usize) -> usize {
        encoded_len(self.len as usize, params, stats).saturating_add(padded(self.net_len as usize))
    }

    /// Layer widths, input first.
    pub fn widths(&self) -> &[u32] {
        &self.widths[..self.len as usize]
    }

    /// True if the batch-norm flag is set.
    pub fn batchnorm(&self) -> bool {
        self.flags & FLAG_BATCHNORM != 0
    }

    /// Name of the activation (`"relu"`, …).
    pub fn activation_name(&self) -> &'static str {
        ACTIVATIONS.get(self.activation as usize).copied().unwrap_or("unknown")
    }
}

/// `n` rounded up to a multiple of 4.
const fn padded(n: usize) -> usize {
    n.div_ceil(4) * 4
}

impl fmt::Display for ModelDesc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(net) = self.net() {
            return f.write_str(net);
        }
        for (i, w) in self.widths().iter().enumerate() {
            if i > 0 {
                f.write_str("-")?;
            }
            write!(f, "{w}")?;
        }
        write!(f, " {}", self.activation_name())?;
        if self.batchnorm() {
            f.write_str(" batchnorm")?;
        }
        if self.dropout > 0.0 {
            write!(f, " dropout {}", self.dropout)?;
        }
        Ok(())
    }
}

/// Size in bytes of a version-1 file with `widths` layer widths, `params` parameter floats and
/// `stats` statistics floats (saturating: an absurd size never fits a buffer);
/// [`ModelDesc::file_len`] for any desc.
pub const fn encoded_len(widths: usize, params: usize, stats: usize) -> usize {
    FIXED_HEADER
        .saturating_add(widths.saturating_mul(4))
        .saturating_add(params.saturating_add(stats).saturating_mul(4))
        .saturating_add(4)
}

/// Writes `desc`, `params` and `stats` into `out`; returns the number of bytes written.
pub fn encode(
    desc: &ModelDesc,
    params: &[f32],
    stats: &[f32],
    out: &mut [u8],
) -> Result<usize, WeightsError> {
    let n = desc.file_len(params.len(), stats.len());
    if out.len() < n {
        return Err(WeightsError::Count { what: "output bytes", expected: n, found: out.len() });
    }
    let to_u32 = |what, v: usize| {
        u32::try_from(v).map_err(|_| WeightsError::Count { what, expected: u32::MAX as usize, found: v })
    };
    let (p, s) = (to_u32("params", params.len())?, to_u32("stats", stats.len())?);
    let out = &mut out[..n];
    out[0..4].copy_from_slice(&MAGIC);
    out[4..6].copy_from_slice(&desc.version().to_le_bytes());
    out[6..8].copy_from_slice(&(desc.len as u16).to_le_bytes());
    out[8] = desc.activation;
    out[9] = desc.flags;
    out[10..12].copy_from_slice(&(desc.net_len as u16).to_le_bytes());
    out[12..16].copy_from_slice(&desc.dropout.to_le_bytes());
    out[16..20].copy_from_slice(&p.to_le_bytes());
    out[20..24].copy_from_slice(&s.to_le_bytes());
    let mut at = FIXED_HEADER;
    for w in desc.widths() {
        out[at..at + 4].copy_from_slice(&w.to_le_bytes());
        at += 4;
    }
    let net = padded(desc.net_len as usize);
    out[at..at + net].fill(0);
    out[at..at + desc.net_len as usize].copy_from_slice(&desc.net[..desc.net_len as usize]);
    at += net;
    for v in params.iter().chain(stats) {
        out[at..at + 4].copy_from_slice(&v.to_le_bytes());
        at += 4;
    }
    let crc = crc32(&out[..at]);
    out[at..at + 4].copy_from_slice(&crc.to_le_bytes());
    Ok(n)
}

/// A validated weights file, borrowed: the spec plus the raw float bytes, read on demand.
#[derive(Clone, Copy, Debug)]
pub struct WeightsView<'a> {
    desc: ModelDesc,
    params: &'a [u8],
    stats: &'a [u8],
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Checks magic, version, spec, sizes and checksum, in that order; returns a view of `bytes`.
/// Sizes are checked against `bytes.len()` before anything else is read, so a lying header
/// can only produce an error.
pub fn parse(bytes: &[u8]) -> Result<WeightsView<'_>, WeightsError> {
    if bytes.len() < 4 {
        let mut found = [0u8; 4];
        found[..bytes.len()].copy_from_slice(bytes);
        if found[..bytes.len()] != MAGIC[..bytes.len()] {
            return Err(WeightsError::BadMagic { found });
        }
        return Err(WeightsError::Truncated { needed: FIXED_HEADER + 4, available: bytes.len() });
    }
    let found = [bytes[0], bytes[1], bytes[2], bytes[3]];
    if found != MAGIC {
        return Err(WeightsError::BadMagic { found });
    }
    if bytes.len() < FIXED_HEADER {
        return Err(WeightsError::Truncated { needed: FIXED_HEADER + 4, available: bytes.len() });
    }
    let version = le_u16(bytes, 4);
    if version != 1 && version != VERSION {
        return Err(WeightsError::Version { found: version });
    }
    // Version 1: reserved, 0 (checked below); version 2: the layer string's length.
    let net_len = if version == 2 { le_u16(bytes, 10) as usize } else { 0 };
    if version == 2 && !(1..=MAX_NET).contains(&net_len) {
        return Err(WeightsError::BadSpec { what: "layer string length", value: net_len as u32 });
    }
    let nw = le_u16(bytes, 6) as usize;
    if !(2..=MAX_WIDTHS).contains(&nw) {
        return Err(WeightsError::BadSpec { what: "number of widths", value: nw as u32 });
    }
    let (p, s) = (le_u32(bytes, 16) as usize, le_u32(bytes, 20) as usize);
    let needed = encoded_len(nw, p, s).saturating_add(padded(net_len));
    if bytes.len() < needed {
        return Err(WeightsError::Truncated { needed, available: bytes.len() });
    }
    if bytes.len() > needed {
        return Err(WeightsError::TrailingBytes { expected: needed, found: bytes.len() });
    }
    let body = needed - 4;
    let (stored, computed) = (le_u32(bytes, body), crc32(&bytes[..body]));
    if stored != computed {
        return Err(WeightsError::Checksum { stored, computed });
    }
    let mut widths = [0u32; MAX_WIDTHS];
    for (i, w) in widths.iter_mut().take(nw).enumerate() {
        *w = le_u32(bytes, FIXED_HEADER + 4 * i);
    }
    if version == 1 && (bytes[10] != 0 || bytes[11] != 0) {
        // Reserved for later versions: a non-zero value is a file this version does not understand.
        return Err(WeightsError::BadSpec { what: "reserved bytes", value: le_u16(bytes, 10) as u32 });
    }
    let dropout = f32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
    let mut desc = ModelDesc::new(&widths[..nw], bytes[8], bytes[9], dropout)?;
    let mut start = FIXED_HEADER + 4 * nw;
    if net_len > 0 {
        let net = core::str::from_utf8(&bytes[start..start + net_len])
            .map_err(|_| WeightsError::BadSpec { what: "layer string (not ASCII)", value: net_len as u32 })?;
        desc = desc.with_net(net)?;
        start += padded(net_len);
    }
    let (params, rest) = bytes[start..body].split_at(4 * p);
    Ok(WeightsView { desc, params, stats: rest })
}

fn read_floats(src: &[u8], out: &mut [f32], what: &'static str) -> Result<(), WeightsError> {
    if out.len() * 4 != src.len() {
        return Err(WeightsError::Count { what, expected: src.len() / 4, found: out.len() });
    }
    for (o, c) in out.iter_mut().zip(src.chunks_exact(4)) {
        *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    Ok(())
}

impl WeightsView<'_> {
    /// The model spec stored in the file.
    pub fn desc(&self) -> ModelDesc {
        self.desc
    }

    /// Errors with both specs named unless the file holds exactly `expected`.
    pub fn expect(&self, expected: &ModelDesc) -> Result<(), WeightsError> {
        if *expected != self.desc {
            return Err(WeightsError::SpecMismatch { expected: *expected, found: self.desc });
        }
        Ok(())
    }

    /// Number of parameter floats.
    pub fn param_count(&self) -> usize {
        self.params.len() / 4
    }

    /// Number of statistics floats.
    pub fn stat_count(&self) -> usize {
        self.stats.len() / 4
    }

    /// Copies the parameters into `out`, which must be exactly [`param_count`](Self::param_count) long.
    pub fn read_params(&self, out: &mut [f32]) -> Result<(), WeightsError> {
        read_floats(self.params, out, "params")
    }

    /// Copies the running statistics into `out`, exactly [`stat_count`](Self::stat_count) long.
    pub fn read_stats(&self, out: &mut [f32]) -> Result<(), WeightsError> {
        read_floats(self.stats, out, "stats")
    }
}

/// CRC-32 (IEEE 802.3, reflected, as zlib and PNG): `crc32(b"123456789") == 0xCBF43926`.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c = CRC_TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

const CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    const LEN: usize = encoded_len(3, 29, 6);

    fn sample() -> (ModelDesc, [u8; LEN]) {
        let desc = ModelDesc::new(&[4, 3, 2], 0, FLAG_BATCHNORM, 0.25).unwrap();
        let mut params = [0.0f32; 29];
        for (i, p) in params.iter_mut().enumerate() {
            *p = i as f32 * 0.5 - 3.0;
        }
        let stats = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut buf = [0u8; LEN];
        encode(&desc, &params, &stats, &mut buf).unwrap();
        (desc, buf)
    }

    #[test]
    fn crc_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn version_2_carries_a_layer_string() {
        let net = "in1x6x6,conv2x3,relu,dense3";
        let desc = ModelDesc::new(&[36, 3], 0, 0, 0.0).unwrap().with_net(net).unwrap();
        assert_eq!((desc.version(), desc.net()), (2, Some(net)));
        assert_eq!(std::format!("{desc}"), net);
        let params = [0.25f32; 5];
        let mut buf = [0u8; 256];
        let n = encode(&desc, &params, &[], &mut buf).unwrap();
        assert_eq!(n, desc.file_len(5, 0));
        assert_eq!(n, encoded_len(2, 5, 0) + 28); // 27 bytes padded to 28
        let view = parse(&buf[..n]).unwrap();
        assert_eq!(view.desc(), desc);
        let mut back = [0.0f32; 5];
        view.read_params(&mut back).unwrap();
        assert_eq!(back, params);
        // Every truncation and a bad length are errors; a version-1 desc is still written as 1.
        for k in 0..n {
            assert!(parse(&buf[..k]).is_err());
        }
        let mut bad = buf;
        bad[10] = 0;
        assert!(parse(&bad[..n]).is_err());
        assert!(ModelDesc::new(&[2, 1], 0, 0, 0.0).unwrap().with_net("a b").is_err());
        assert_eq!(ModelDesc::new(&[2, 1], 0, 0, 0.0).unwrap().version(), 1);
    }

    #[test]
    fn round_trip() {
        let (desc, buf) = sample();
        let v = parse(&buf).unwrap();
        assert_eq!(v.desc(), desc);
        assert_eq!((v.param_count(), v.stat_count()), (29, 6));
        let mut p = [0.0f32; 29];
        v.read_params(&mut p).unwrap();
        assert_eq!(p[28], 11.0);
        let mut s = [0.0f32; 6];
        v.read_stats(&mut s).unwrap();
        assert_eq!(s, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert!(matches!(v.read_params(&mut [0.0; 3]), Err(WeightsError::Count { .. })));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let (_, buf) = sample();
        for n in 0..buf.len() {
            assert!(parse(&buf[..n]).is_err(), "prefix of {n} bytes accepted");
        }
        assert_eq!(
            parse(&buf[..40]).unwrap_err(),
            WeightsError::Truncated { needed: buf.len(), available: 40 }
        );
    }

    #[test]
    fn bad_magic_version_checksum_trailing() {
        let (_, buf) = sample();
        let mut b = buf;
        b[0] = b'X';
        assert!(matches!(parse(&b), Err(WeightsError::BadMagic { .. })));
        let mut b = buf;
        b[4] = 9;
        assert_eq!(parse(&b).unwrap_err(), WeightsError::Version { found: 9 });
        let mut b = buf;
        let last = b.len() - 10;
        b[last] ^= 0x40;
        assert!(matches!(parse(&b), Err(WeightsError::Checksum { .. })));
        let mut b = [0u8; LEN + 1];
        b[..LEN].copy_from_slice(&buf);
        assert!(matches!(parse(&b), Err(WeightsError::TrailingBytes { .. })));
    }

    #[test]
    fn lying_header_is_refused_without_reading_past_the_end() {
        let (_, mut buf) = sample();
        buf[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(parse(&buf), Err(WeightsError::Truncated { .. })));
        buf[6..8].copy_from_slice(&1000u16.to_le_bytes());
        assert!(matches!(parse(&buf), Err(WeightsError::BadSpec { .. })));
    }

    #[test]
    fn spec_mismatch_names_both() {
        let (_, buf) = sample();
        let other = ModelDesc::new(&[4, 5, 2], 1, 0, 0.0).unwrap();
        let e = parse(&buf).unwrap().expect(&other).unwrap_err();
        let mut msg = heapless::String::<128>::new();
        write!(msg, "{e}").unwrap();
        assert_eq!(
            msg.as_str(),
            "model spec mismatch: expected 4-5-2 sigmoid, file holds 4-3-2 relu batchnorm dropout 0.25"
        );
    }

    #[test]
    fn bad_specs() {
        assert!(ModelDesc::new(&[3], 0, 0, 0.0).is_err());
        assert!(ModelDesc::new(&[3, 0, 2], 0, 0, 0.0).is_err());
        assert!(ModelDesc::new(&[3, 2], 9, 0, 0.0).is_err());
        assert!(ModelDesc::new(&[3, 2], 0, 0, 1.0).is_err());
        assert!(ModelDesc::new(&[1; MAX_WIDTHS + 1], 0, 0, 0.0).is_err());
    }
}
