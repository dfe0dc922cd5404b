//! Checkpoints and weights files on disk.
//!
//! A checkpoint holds everything a run needs to continue bit-identically: the configuration,
//! the step counter (which fixes the epoch, the position in that epoch's data order and the
//! random streams — see [`crate::data::stream`]), every parameter value (batch-norm running
//! statistics included), the optimizer state (which holds the optimizer's own step counter, see
//! [`staticgrad::optim::state`]) and the metrics so far.
//!
//! Layout: magic `b"SGCK"`, version `u32`, JSON length `u32`, the JSON [`CheckpointMeta`], float
//! count `u64`, the floats (little-endian `f32`: parameters then optimizer state), CRC-32 of all
//! preceding bytes. Written atomically (temporary file, fsync, rename).
//!
//! Final weights use the core's format ([`staticgrad::weights`]), which a firmware reads without
//! allocating.

use crate::Error;
use crate::budget::Budget;
use crate::config::TrainConfig;
use crate::report::{EpochRecord, StepRecord};
use serde::{Deserialize, Serialize};
use staticgrad::optim;
use staticgrad::weights::{self, ModelDesc};
use std::path::{Path, PathBuf};

const MAGIC: [u8; 4] = *b"SGCK";
/// Version 2: the optimizer's step counter moved from the metadata into the state floats
/// (version 1 is still read: its counter is moved into the state's header).
const VERSION: u32 = 2;
/// File name of the checkpoint inside a run folder.
pub const FILE: &str = "checkpoint.bin";
/// File name of the final weights inside a run folder.
pub const WEIGHTS: &str = "model.bin";

/// The JSON part of a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// The run's configuration.
    pub config: TrainConfig,
    /// Steps completed.
    pub step: u64,
    /// Parameter floats (values, running statistics included).
    pub param_len: usize,
    /// Optimizer state floats.
    pub state_len: usize,
    /// Seconds trained so far.
    pub elapsed_s: f64,
    /// Per-step metrics so far.
    pub steps: Vec<StepRecord>,
    /// Per-epoch metrics so far.
    pub epochs: Vec<EpochRecord>,
}

/// A checkpoint in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Counters, configuration and metrics.
    pub meta: CheckpointMeta,
    /// Parameter values.
    pub params: Vec<f32>,
    /// Optimizer state.
    pub state: Vec<f32>,
}

impl Checkpoint {
    /// Serialises to the checkpoint layout.
    pub fn to_bytes(&self) -> Vec<u8> {
        let json = serde_json::to_vec(&self.meta).unwrap_or_default();
        let floats = self.params.len() + self.state.len();
        let mut b = Vec::with_capacity(20 + json.len() + 4 * floats + 4);
        b.extend_from_slice(&MAGIC);
        b.extend_from_slice(&VERSION.to_le_bytes());
        b.extend_from_slice(&(json.len() as u32).to_le_bytes());
        b.extend_from_slice(&json);
        b.extend_from_slice(&(floats as u64).to_le_bytes());
        for v in self.params.iter().chain(&self.state) {
            b.extend_from_slice(&v.to_le_bytes());
        }
        let crc = weights::crc32(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parses and validates the checkpoint layout; the error is the cause.
    pub fn from_bytes(b: &[u8]) -> Result<Checkpoint, String> {
        if b.len() < 4 || b[..4] != MAGIC {
            return Err("not a staticgrad checkpoint (wrong magic number)".into());
        }
        if b.len() < 24 {
            return Err(format!("truncated: {} bytes", b.len()));
        }
        let (body, crc) = b.split_at(b.len() - 4);
        let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
        let computed = weights::crc32(body);
        if stored != computed {
            return Err(format!(
                "checksum mismatch: stored {stored:08x}, computed {computed:08x} (truncated or corrupt)"
            ));
        }
        let version = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        if version != VERSION && version != 1 {
            return Err(format!(
                "checkpoint version {version} is not supported (this build reads 1 and {VERSION})"
            ));
        }
        let jl = u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize;
        let json = body.get(12..12usize.saturating_add(jl)).ok_or("truncated JSON section")?;
        let (meta, v1_steps) = if version == 1 {
            // Version 1 kept the optimizer's step counter in the metadata; version 2 keeps it in
            // the state's header (`staticgrad::optim::state`), which is prepended below.
            let mut v: serde_json::Value =
                serde_json::from_slice(json).map_err(|e| format!("bad checkpoint metadata: {e}"))?;
            let t = v.get("optimizer_steps").and_then(serde_json::Value::as_u64);
            let t = t.and_then(|t| u32::try_from(t).ok()).filter(|&t| t <= optim::MAX_STEPS);
            let t = t.ok_or("version-1 metadata without a valid optimizer_steps")?;
            if let Some(m) = v.as_object_mut() {
                m.remove("optimizer_steps");
            }
            let meta: CheckpointMeta =
                serde_json::from_value(v).map_err(|e| format!("bad checkpoint metadata: {e}"))?;
            (meta, Some(t))
        } else {
            let meta: CheckpointMeta =
                serde_json::from_slice(json).map_err(|e| format!("bad checkpoint metadata: {e}"))?;
            (meta, None)
        };
        let rest = &body[12 + jl..];
        if rest.len() < 8 {
            return Err("truncated float section".into());
        }
        let n = u64::from_le_bytes(rest[..8].try_into().unwrap_or([0; 8])) as usize;
        let data = &rest[8..];
        if Some(data.len()) != n.checked_mul(4) || meta.param_len.checked_add(meta.state_len) != Some(n) {
            return Err(format!(
                "float section holds {} bytes, metadata implies {} parameters and {} state floats",
                data.len(),
                meta.param_len,
                meta.state_len
            ));
        }
        let mut floats = data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        let params: Vec<f32> = floats.by_ref().take(meta.param_len).collect();
        let mut state: Vec<f32> = Vec::new();
        let mut meta = meta;
        if let Some(t) = v1_steps {
            // The header as `begin_step` reads it: the counter, and Adam's powers, which the next
            // step recomputes from it.
            state.extend([f32::from_bits(t), 0.0, 0.0]);
            meta.state_len += optim::HEADER_LEN;
        }
        state.extend(floats);
        Ok(Checkpoint { meta, params, state })
    }

    /// Reads `dir/checkpoint.bin` (or the file itself if `path` is a file).
    pub fn load(path: &Path) -> Result<Checkpoint, Error> {
        Checkpoint::load_within(path, &mut Budget::unlimited())
    }

    /// [`Checkpoint::load`], charging twice the file's size (its bytes and what they decode to,
    /// which is no larger) to `budget` before reading it.
    pub fn load_within(path: &Path, budget: &mut Budget) -> Result<Checkpoint, Error> {
        let file = if path.is_dir() { path.join(FILE) } else { path.to_path_buf() };
        let len = std::fs::metadata(&file)
            .map_err(|e| Error::input(format!("{}: {}", file.display(), io(&e))))?
            .len();
        budget.charge(&format!("--resume {}: {len} bytes", file.display()), len.checked_mul(2))?;
        let bytes = crate::budget::read_at_most(&file, len)
            .map_err(|e| Error::input(format!("{}: {}", file.display(), io(&e))))?;
        Checkpoint::from_bytes(&bytes).map_err(|c| Error::input(format!("{}: {c}", file.display())))
    }
}

fn io(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound { "no such file".into() } else { e.to_string() }
}

/// Encodes `params` with `desc` in the core's weights format.
pub fn encode_weights(desc: &ModelDesc, params: &[f32]) -> Vec<u8> {
    let mut buf = vec![0u8; desc.file_len(params.len(), 0)];
    // The buffer is sized by `file_len`, so encoding cannot fail.
    let n = weights::encode(desc, params, &[], &mut buf).unwrap_or(0);
    buf.truncate(n);
    buf
}

/// Resolves a `--weights` argument: a weights file, or a run folder holding `model.bin`.
pub fn weights_path(p: &Path) -> PathBuf {
    if p.is_dir() { p.join(WEIGHTS) } else { p.to_path_buf() }
}

/// Reads and validates a weights file; returns its spec and parameter values.
pub fn load_weights(path: &Path) -> Result<(ModelDesc, Vec<f32>), Error> {
    load_weights_within(path, &mut Budget::unlimited())
}

/// [`load_weights`], charging the file's bytes (before reading) and its parameters (before
/// decoding them) to `budget`.
pub fn load_weights_within(path: &Path, budget: &mut Budget) -> Result<(ModelDesc, Vec<f32>), Error> {
    let file = weights_path(path);
    let len =
        std::fs::metadata(&file).map_err(|e| Error::input(format!("{}: {}", file.display(), io(&e))))?.len();
    budget.charge(&format!("--weights {}: {len} bytes", file.display()), Some(len))?;
    let bytes = crate::budget::read_at_most(&file, len)
        .map_err(|e| Error::input(format!("{}: {}", file.display(), io(&e))))?;
    let view = weights::parse(&bytes).map_err(|e| Error::input(format!("{}: {e}", file.display())))?;
    budget.charge(
        &format!("--weights {}: {} parameters", file.display(), view.param_count()),
        crate::budget::of::<f32>(view.param_count()),
    )?;
    let mut params = vec![0.0; view.param_count()];
    view.read_params(&mut params).map_err(|e| Error::input(format!("{}: {e}", file.display())))?;
    Ok((view.desc(), params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_round_trip_and_corruption() {
        let ck = Checkpoint {
            meta: CheckpointMeta {
                config: TrainConfig::default(),
                step: 17,
                param_len: 3,
                state_len: 2,
                elapsed_s: 1.5,
                steps: vec![StepRecord { step: 1, epoch: 1, loss: 0.1, lr: 0.01 }],
                epochs: vec![],
            },
            params: vec![1.0, -2.0, f32::MIN_POSITIVE],
            state: vec![0.5, 0.25],
        };
        let b = ck.to_bytes();
        assert_eq!(Checkpoint::from_bytes(&b).unwrap(), ck);
        for n in [0, 3, 10, b.len() - 1] {
            assert!(Checkpoint::from_bytes(&b[..n]).is_err());
        }
        let mut c = b.clone();
        c[b.len() - 8] ^= 1;
        assert!(Checkpoint::from_bytes(&c).unwrap_err().contains("checksum"));
        // A version-1 checkpoint (step counter in the metadata, not in the state) reads as
        // version 2: the counter moves into the state's header.
        let v1_bytes = |meta: &serde_json::Value| {
            let json = serde_json::to_vec(meta).unwrap();
            let mut old = b"SGCK".to_vec();
            old.extend_from_slice(&1u32.to_le_bytes());
            old.extend_from_slice(&(json.len() as u32).to_le_bytes());
            old.extend_from_slice(&json);
            old.extend_from_slice(&5u64.to_le_bytes());
            for v in ck.params.iter().chain(&ck.state) {
                old.extend_from_slice(&v.to_le_bytes());
            }
            let crc = weights::crc32(&old);
            old.extend_from_slice(&crc.to_le_bytes());
            old
        };
        let mut meta = serde_json::to_value(&ck.meta).unwrap();
        meta["optimizer_steps"] = 5.into();
        let v1 = Checkpoint::from_bytes(&v1_bytes(&meta)).unwrap();
        assert_eq!(v1.params, ck.params);
        assert_eq!(v1.state, [f32::from_bits(5), 0.0, 0.0, 0.5, 0.25]);
        assert_eq!(v1.meta.state_len, 5);
        assert_eq!(optim::steps(&v1.state), Ok(5));
        // Without the counter it cannot be converted, and says so.
        meta.as_object_mut().unwrap().remove("optimizer_steps");
        let e = Checkpoint::from_bytes(&v1_bytes(&meta)).unwrap_err();
        assert!(e.contains("optimizer_steps"), "{e}");
    }
}
