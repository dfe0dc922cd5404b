//! Byte-mutation property tests of every parser that reads a file written by another program
//! (issue 9): IDX (plain and gzip), CSV, the core's weights format and the runner's checkpoints.
//! Valid seed files are mutated (bit flips, bytes and 32-bit header fields set to extreme values,
//! truncation, insertion, deletion) and parsed: every parse must return `Ok` or `Err` — never
//! panic — and an `Ok` must be self-consistent. Checksummed formats are tried with the checksum
//! recomputed too, so mutations reach the checks behind it.
//!
//! `PROPTEST_CASES` cases per property (default 10,000); the count is printed.

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use staticgrad::weights::{self, ModelDesc};
use staticgrad_runner::checkpoint::{Checkpoint, CheckpointMeta};
use staticgrad_runner::config::TrainConfig;
use staticgrad_runner::data::{CsvFormat, parse_csv, parse_idx};
use std::cell::Cell;
use std::fmt::Debug;
use std::io::Write;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000)
}

fn run_property<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: Debug,
{
    let config = Config { cases: cases(), failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new(config);
    let (ran, ok) = (Cell::new(0u32), Cell::new(0u32));
    let result = runner.run(&strategy, |v| {
        ran.set(ran.get() + 1);
        test(v).inspect(|_| ok.set(ok.get() + 1))
    });
    if let Err(e) = result {
        panic!("property {name} failed: {e}");
    }
    eprintln!("property {name}: {} cases, 0 failures, 0 panics", ran.get());
    assert!(ran.get() >= cases());
}

/// One edit of a file. Positions are taken modulo the length.
#[derive(Clone, Debug)]
enum Mutation {
    Flip {
        at: usize,
        bit: u8,
    },
    Byte {
        at: usize,
        value: u8,
    },
    /// A big-endian and a little-endian 32-bit field (IDX headers are big-endian, the rest little).
    Field {
        at: usize,
        value: u32,
        big_endian: bool,
    },
    Truncate(usize),
    Insert {
        at: usize,
        bytes: Vec<u8>,
    },
    Remove {
        at: usize,
        len: usize,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let field = prop_oneof![
        Just(0u32),
        Just(1),
        Just(u32::MAX),
        Just(0x8000_0000),
        Just(1_000_000_000),
        Just(0x7fff_ffff),
        Just(0x0000_0803),
        Just(0x0000_0801),
        any::<u32>(),
    ];
    prop_oneof![
        3 => (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Mutation::Byte { at, value }),
        // Header fields sit in the first 32 bytes: aim there most of the time.
        3 => (prop_oneof![3 => 0usize..32, 1 => any::<usize>()], field, any::<bool>())
            .prop_map(|(at, value, big_endian)| Mutation::Field { at, value, big_endian }),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        1 => (any::<usize>(), 1usize..8).prop_map(|(at, len)| Mutation::Remove { at, len }),
    ]
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..4)
}

fn apply(seed: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for m in muts {
        let n = b.len().max(1);
        match m {
            Mutation::Flip { at, bit } => {
                if let Some(x) = b.get_mut(at % n) {
                    *x ^= 1 << bit;
                }
            }
            Mutation::Byte { at, value } => {
                if let Some(x) = b.get_mut(at % n) {
                    *x = *value;
                }
            }
            Mutation::Field { at, value, big_endian } => {
                let at = at % n;
                let bytes = if *big_endian { value.to_be_bytes() } else { value.to_le_bytes() };
                for (i, v) in bytes.into_iter().enumerate() {
                    if let Some(x) = b.get_mut(at + i) {
                        *x = v;
                    }
                }
            }
            Mutation::Truncate(k) => b.truncate(k % (b.len() + 1)),
            Mutation::Insert { at, bytes } => {
                let at = at % (b.len() + 1);
                b.splice(at..at, bytes.iter().copied());
            }
            Mutation::Remove { at, len } => {
                let at = at % n;
                let end = (at + len).min(b.len());
                if at < end {
                    b.drain(at..end);
                }
            }
        }
    }
    b
}

fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut b = magic.to_be_bytes().to_vec();
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(data);
    b
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn seed_images() -> Vec<u8> {
    idx(0x803, &[2, 3, 3], &(0..18).map(|i| (i * 14) as u8).collect::<Vec<_>>())
}

fn seed_labels() -> Vec<u8> {
    idx(0x801, &[3], &[7, 0, 9])
}

fn check_idx(bytes: &[u8], ndim: u8, known: Option<u64>) -> Result<(), TestCaseError> {
    if let Ok(i) = parse_idx(bytes, ndim, known) {
        prop_assert_eq!(i.dims.len(), ndim as usize);
        prop_assert_eq!(i.data.len(), i.dims.iter().product::<usize>());
        prop_assert_eq!(
            4 + 4 * ndim as usize + i.data.len(),
            bytes.len(),
            "Ok with bytes left over or missing"
        );
    }
    Ok(())
}

#[test]
fn idx_plain_mutations() {
    let seeds = [(seed_images(), 3u8), (seed_labels(), 1u8)];
    run_property("idx_plain", (0usize..2, mutations()), |(s, muts)| {
        let (seed, ndim) = &seeds[s];
        let b = apply(seed, &muts);
        check_idx(&b, *ndim, Some(b.len() as u64))?;
        check_idx(&b, *ndim, None)
    });
}

#[test]
fn idx_gzip_mutations() {
    let seeds = [(seed_images(), 3u8), (seed_labels(), 1u8)];
    let gz: Vec<Vec<u8>> = seeds.iter().map(|(s, _)| gzip(s)).collect();
    run_property("idx_gzip", (0usize..2, mutations(), any::<bool>()), |(s, muts, compressed)| {
        let ndim = seeds[s].1;
        if compressed {
            // A corrupt gzip stream: a decode error, never a panic.
            let b = apply(&gz[s], &muts);
            let _ = parse_idx(GzDecoder::new(&b[..]), ndim, None);
        } else {
            // A valid gzip stream of a corrupt IDX file.
            let b = apply(&seeds[s].0, &muts);
            let r = parse_idx(GzDecoder::new(&gzip(&b)[..]), ndim, None);
            if let Ok(i) = r {
                prop_assert_eq!(4 + 4 * ndim as usize + i.data.len(), b.len());
            }
        }
        Ok(())
    });
}

#[test]
fn csv_mutations() {
    let seed = b"label,a,b,c\n3,0,255,128\n1,10,20,30\n0,1e3,-4.5,0.25\n".to_vec();
    let fmt = (0usize..5, any::<bool>(), prop_oneof![Just(255.0f32), Just(1.0), Just(1e-30), Just(f32::NAN)]);
    run_property("csv", (mutations(), fmt), |(muts, (label_col, header, scale))| {
        let b = apply(&seed, &muts);
        let text = String::from_utf8_lossy(&b);
        let fmt = CsvFormat { label_col, header, scale };
        if let Ok(d) = parse_csv(&text, &fmt) {
            prop_assert!(d.features >= 1);
            prop_assert_eq!(d.x.len(), d.y.len() * d.features);
            prop_assert!(d.x.iter().all(|v| v.is_finite()), "a non-finite feature was accepted");
        }
        Ok(())
    });
}

fn fix_crc(b: &mut [u8]) {
    if b.len() >= 4 {
        let body = b.len() - 4;
        let crc = weights::crc32(&b[..body]);
        b[body..].copy_from_slice(&crc.to_le_bytes());
    }
}

#[test]
fn weights_mutations() {
    let desc = ModelDesc::new(&[3, 2, 2], 0, 1, 0.25).unwrap();
    let params: Vec<f32> = (0..14).map(|i| i as f32 * 0.5 - 3.0).collect();
    let stats = [0.5f32, -0.5, 1.0, 2.0];
    let mut seed = vec![0u8; weights::encoded_len(3, params.len(), stats.len())];
    weights::encode(&desc, &params, &stats, &mut seed).unwrap();
    run_property("weights", (mutations(), any::<bool>()), |(muts, fix)| {
        let mut b = apply(&seed, &muts);
        if fix {
            fix_crc(&mut b);
        }
        if let Ok(v) = weights::parse(&b) {
            let mut p = vec![0.0f32; v.param_count()];
            let mut s = vec![0.0f32; v.stat_count()];
            prop_assert!(v.read_params(&mut p).is_ok() && v.read_stats(&mut s).is_ok());
            let mut out = vec![0u8; b.len()];
            let n = weights::encode(&v.desc(), &p, &s, &mut out);
            prop_assert_eq!(n, Ok(b.len()));
            prop_assert_eq!(out, b, "an accepted file re-encodes to different bytes");
        }
        // A wrong-sized destination is an error, never a panic.
        if let Ok(v) = weights::parse(&seed) {
            prop_assert!(v.read_params(&mut [0.0; 3]).is_err());
        }
        Ok(())
    });
}

#[test]
fn checkpoint_mutations() {
    let ck = Checkpoint {
        meta: CheckpointMeta {
            config: TrainConfig::default(),
            step: 3,
            param_len: 4,
            state_len: 2,
            elapsed_s: 0.5,
            steps: vec![],
            epochs: vec![],
        },
        params: vec![1.0, 2.0, 3.0, 4.0],
        state: vec![0.5, 0.25],
    };
    let seed = ck.to_bytes();
    run_property("checkpoint", (mutations(), any::<bool>()), |(muts, fix)| {
        let mut b = apply(&seed, &muts);
        if fix {
            fix_crc(&mut b);
        }
        if let Ok(c) = Checkpoint::from_bytes(&b) {
            prop_assert_eq!(c.params.len(), c.meta.param_len);
            prop_assert_eq!(c.state.len(), c.meta.state_len);
        }
        Ok(())
    });
}
