//! A 16-byte IDX file that claims 10⁹ images of 28×28 (784 GB) must be refused before anything is
//! allocated: by the parser in-process, and by the `staticgrad` binary, whose peak resident memory
//! (`ru_maxrss` of the waited-for child) is measured. This file holds only these tests so no other
//! child process of this test binary can raise the measured peak.

use staticgrad_runner::data::{parse_idx, read_idx};
use std::io::Write;
use std::process::Command;

const IMAGES: u32 = 1_000_000_000;

fn header_images() -> Vec<u8> {
    let mut b = Vec::new();
    for v in [0x0803u32, IMAGES, 28, 28] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    assert_eq!(b.len(), 16);
    b
}

fn header_labels() -> Vec<u8> {
    let mut b = Vec::new();
    for v in [0x0801u32, IMAGES] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

#[test]
fn parser_refuses_the_claim() {
    let b = header_images();
    let e = parse_idx(&b[..], 3, Some(16)).unwrap_err();
    assert!(e.contains("truncated") && e.contains("784000000000"), "{e}");
    // As a stream of unknown length (a gzip file): the same answer, after reading 16 bytes.
    let e = parse_idx(&b[..], 3, None).unwrap_err();
    assert!(e.contains("truncated"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("x-idx3-ubyte.gz");
    std::fs::write(&gz, gzip(&b)).unwrap();
    let e = read_idx(&gz, 3).unwrap_err();
    assert!(e.to_string().contains("truncated"), "{e}");
    // Within a budget, a gzip file's claim (its length is unknown up front) is refused from the
    // header, before the body is read.
    let mut budget = staticgrad_runner::budget::Budget::new(1 << 30, "test");
    let e = staticgrad_runner::data::read_idx_within(&gz, 3, &mut budget).unwrap_err();
    assert!(e.to_string().contains("784000000000 data bytes") && e.to_string().contains("budget"), "{e}");
}

/// Peak resident set size of all waited-for children, in KiB.
#[allow(unsafe_code)] // `getrusage`: libc has no safe wrapper.
fn children_max_rss_kib() -> i64 {
    // SAFETY: `rusage` is plain integers and `timeval`s, for which all-zero bytes are valid.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `getrusage` writes one `rusage` into the valid, exclusively borrowed `u`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    assert_eq!(rc, 0);
    u.ru_maxrss
}

#[test]
fn binary_refuses_the_claim_without_allocating_it() {
    for gz in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (img, lbl) = (header_images(), header_labels());
        let (img, lbl, sfx) = if gz { (gzip(&img), gzip(&lbl), ".gz") } else { (img, lbl, "") };
        std::fs::write(dir.path().join(format!("train-images-idx3-ubyte{sfx}")), img).unwrap();
        std::fs::write(dir.path().join(format!("train-labels-idx1-ubyte{sfx}")), lbl).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_staticgrad"))
            .args(["train", "--quiet", "--mnist-dir"])
            .arg(dir.path())
            .arg("--out")
            .arg(dir.path().join("run"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let peak_kib = children_max_rss_kib();
        eprintln!(
            "gzip={gz}: exit {:?}, peak RSS {} KiB, stderr: {}",
            out.status.code(),
            peak_kib,
            stderr.trim()
        );
        assert_eq!(out.status.code(), Some(2), "bad input is exit code 2: {stderr}");
        // A plain file is known to be short; a gzip stream's claim is refused by the budget
        // before its body is read.
        let cause = if gz { "over the memory budget" } else { "truncated" };
        assert!(stderr.contains(cause), "{stderr}");
        assert!(stderr.lines().count() == 1, "one-line cause: {stderr}");
        // The claim is 784 GB; the process must stay near its baseline (tens of MB).
        assert!(peak_kib < 64 * 1024, "peak RSS {peak_kib} KiB");
        assert!(!dir.path().join("run").exists(), "nothing is written for bad input");
    }
}
