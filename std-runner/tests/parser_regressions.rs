//! Regression tests for what the parser property tests (`prop_parsers.rs`) and the fuzzers
//! (`fuzz/`) found: each is the failing input, written out.

use staticgrad::weights::{self, ModelDesc, WeightsError};
use staticgrad_runner::checkpoint::{Checkpoint, CheckpointMeta};
use staticgrad_runner::config::TrainConfig;
use staticgrad_runner::data::{CsvFormat, parse_csv};

/// Checkpoint metadata whose sizes overflow when added: the JSON is valid and the checksum right,
/// so only the size arithmetic stood between this file and a panic (`attempt to add with overflow`).
#[test]
fn checkpoint_sizes_that_overflow() {
    for (p, s) in [(usize::MAX, 1usize), (usize::MAX / 2 + 1, usize::MAX / 2 + 1), (1usize << 62, 0)] {
        let ck = Checkpoint {
            meta: CheckpointMeta {
                config: TrainConfig::default(),
                step: 0,
                param_len: p,
                state_len: s,
                elapsed_s: 0.0,
                steps: vec![],
                epochs: vec![],
            },
            params: vec![],
            state: vec![],
        };
        let e = Checkpoint::from_bytes(&ck.to_bytes()).unwrap_err();
        assert!(e.contains("float section"), "sizes {p} + {s}: {e}");
    }
}

fn weights_file() -> Vec<u8> {
    let desc = ModelDesc::new(&[3, 2, 2], 0, 1, 0.25).unwrap();
    let params: Vec<f32> = (0..14).map(|i| i as f32).collect();
    let mut b = vec![0u8; weights::encoded_len(3, 14, 4)];
    weights::encode(&desc, &params, &[0.5; 4], &mut b).unwrap();
    b
}

fn fix_crc(b: &mut [u8]) {
    let body = b.len() - 4;
    let crc = weights::crc32(&b[..body]);
    b[body..].copy_from_slice(&crc.to_le_bytes());
}

/// Non-zero reserved header bytes were ignored, so a file from a later format revision would load
/// as if it meant the same thing (and did not re-encode to itself).
#[test]
fn weights_reserved_bytes_must_be_zero() {
    let mut b = weights_file();
    b[10] = 202;
    b[11] = 154;
    fix_crc(&mut b);
    assert_eq!(
        weights::parse(&b).map(|_| ()),
        Err(WeightsError::BadSpec { what: "reserved bytes", value: 0x9aca })
    );
}

/// Unknown flag bits were kept but meant nothing to this version.
#[test]
fn weights_unknown_flags_are_refused() {
    let mut b = weights_file();
    b[9] |= 0x80;
    fix_crc(&mut b);
    assert_eq!(
        weights::parse(&b).map(|_| ()),
        Err(WeightsError::BadSpec { what: "unknown flag bits", value: 0x81 })
    );
    assert!(ModelDesc::new(&[2, 2], 0, 2, 0.0).is_err());
}

/// A finite CSV value that overflows once divided by the scale became an infinite feature.
#[test]
fn csv_value_that_overflows_when_scaled() {
    let fmt = CsvFormat { label_col: 0, header: false, scale: 1e-30 };
    let e = parse_csv("1,1e30\n", &fmt).unwrap_err();
    assert!(e.contains("line 1, column 2") && e.contains("not finite"), "{e}");
    assert!(parse_csv("1,1e-3\n", &fmt).is_ok());
}
