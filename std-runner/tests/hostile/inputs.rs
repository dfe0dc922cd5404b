//! See main.rs: this class of issue 14.

#[allow(unused_imports)]
use super::*;

use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::{Read, Write};

fn gz(b: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

/// The first `n` bundled images and labels as plain IDX bytes.
fn bundled_idx(n: usize) -> (Vec<u8>, Vec<u8>) {
    let mut img = Vec::new();
    flate2::read::GzDecoder::new(staticgrad_runner::data::BUNDLED_IMAGES).read_to_end(&mut img).unwrap();
    let mut lbl = Vec::new();
    flate2::read::GzDecoder::new(staticgrad_runner::data::BUNDLED_LABELS).read_to_end(&mut lbl).unwrap();
    let mut i = 2051u32.to_be_bytes().to_vec();
    for d in [n as u32, 28, 28] {
        i.extend_from_slice(&d.to_be_bytes());
    }
    i.extend_from_slice(&img[16..16 + 784 * n]);
    let mut l = 2049u32.to_be_bytes().to_vec();
    l.extend_from_slice(&(n as u32).to_be_bytes());
    l.extend_from_slice(&lbl[8..8 + n]);
    (i, l)
}

/// A place with `mnist/` holding `images` (gzip bytes) and 200 labels, and an earlier run.
fn mnist_place(images_gz: &[u8]) -> Place {
    let p = Place::new();
    small_run(&p, "earlier");
    let (_, l) = bundled_idx(200);
    std::fs::create_dir(p.path().join("mnist")).unwrap();
    std::fs::write(p.path().join("mnist/train-images-idx3-ubyte.gz"), images_gz).unwrap();
    std::fs::write(p.path().join("mnist/train-labels-idx1-ubyte.gz"), gz(&l)).unwrap();
    p
}

const MNIST_TRAIN: &[&str] =
    &["train", "--mnist-dir", "mnist", "--layers", "784,8,10", "--epochs", "1", "-q", "--out", "run"];

#[test]
fn gzip_multi_member_is_one_stream() {
    let (i, _) = bundled_idx(200);
    let cut = 16 + 784 * 77 + 5;
    let p = mnist_place(&[gz(&i[..cut]), gz(&i[cut..])].concat());
    let out = p.ok(MNIST_TRAIN);
    assert!(out.contains("done:"), "{out}");
}

#[test]
fn gzip_cut_inside_the_pixels_says_so() {
    let (i, _) = bundled_idx(200);
    let z = gz(&i);
    let p = mnist_place(&z[..z.len() / 2]);
    let e = p.refused(MNIST_TRAIN, &["train-images-idx3-ubyte.gz", "truncated", "inside the data"]);
    assert!(!e.contains("inside the IDX header"), "{e}");
}

#[test]
fn gzip_trailing_garbage_is_refused() {
    let (i, _) = bundled_idx(200);
    let p = mnist_place(&[gz(&i), b"\x00\x01 not gzip".to_vec()].concat());
    p.refused(MNIST_TRAIN, &["train-images-idx3-ubyte.gz", "trailing bytes after the gzip data"]);
}

#[test]
fn gzip_bomb_is_refused_from_its_header() {
    // 4 GB of zero pixels claimed and present, compressed to a few MB: refused from the header's
    // claim before a byte of it is inflated and stored.
    let n: u32 = 5_000_000;
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    for v in [2051u32, n, 28, 28] {
        e.write_all(&v.to_be_bytes()).unwrap();
    }
    let zeros = vec![0u8; 784 * 1000];
    for _ in 0..n / 1000 {
        e.write_all(&zeros).unwrap();
    }
    let p = mnist_place(&e.finish().unwrap());
    p.refused(
        MNIST_TRAIN,
        &["train-images-idx3-ubyte.gz", "5000000×28×28", "3920000000 data bytes", "budget"],
    );
}
