//! Turns the bundled MNIST IDX files (`std-runner/data/mnist-10k`, nothing is downloaded) into flash tables:
//! images 2×2-average-pooled to 14×14 and kept as `u8`, labels as `u8`.
//! Training set: images 0..TRAIN_N; held-out set: images HELD_OUT_START..HELD_OUT_START+TEST_N.

use flate2::read::GzDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::{env, fs};

const TRAIN_N: usize = 2000;
const TEST_N: usize = 500;
const HELD_OUT_START: usize = 9000;

fn gunzip(path: &Path) -> Vec<u8> {
    let f = fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    GzDecoder::new(f).read_to_end(&mut out).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    out
}

fn be32(b: &[u8], at: usize) -> usize {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
}

/// 28×28 → 14×14: each output pixel is the rounded mean of a 2×2 block.
fn pool(img: &[u8]) -> [u8; 196] {
    let mut out = [0u8; 196];
    for r in 0..14 {
        for c in 0..14 {
            let px = |dr: usize, dc: usize| img[(2 * r + dr) * 28 + 2 * c + dc] as u32;
            out[r * 14 + c] = ((px(0, 0) + px(0, 1) + px(1, 0) + px(1, 1) + 2) / 4) as u8;
        }
    }
    out
}

fn main() {
    let data = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../std-runner/data/mnist-10k");
    let (img_path, lbl_path) =
        (data.join("train-images-idx3-ubyte.gz"), data.join("train-labels-idx1-ubyte.gz"));
    println!("cargo:rerun-if-changed={}", img_path.display());
    println!("cargo:rerun-if-changed={}", lbl_path.display());
    println!("cargo:rerun-if-changed=build.rs");
    let (images, labels) = (gunzip(&img_path), gunzip(&lbl_path));
    assert_eq!(be32(&images, 0), 2051, "image file magic");
    assert_eq!(be32(&labels, 0), 2049, "label file magic");
    let n = be32(&images, 4);
    assert!(n == be32(&labels, 4) && be32(&images, 8) == 28 && be32(&images, 12) == 28);
    assert!(TRAIN_N <= HELD_OUT_START && HELD_OUT_START + TEST_N <= n);
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let write = |name: &str, range: std::ops::Range<usize>| {
        let mut px = Vec::with_capacity(range.len() * 196);
        for i in range.clone() {
            px.extend_from_slice(&pool(&images[16 + i * 784..16 + (i + 1) * 784]));
        }
        fs::write(out.join(format!("{name}_images.bin")), px).unwrap();
        fs::write(out.join(format!("{name}_labels.bin")), &labels[8 + range.start..8 + range.end]).unwrap();
    };
    write("train", 0..TRAIN_N);
    write("test", HELD_OUT_START..HELD_OUT_START + TEST_N);
    let rs = format!(
        "/// Training images (bundled MNIST records 0..{TRAIN_N}).\n\
         pub const TRAIN_N: usize = {TRAIN_N};\n\
         /// Held-out images (bundled MNIST records {HELD_OUT_START}..{end}).\n\
         pub const TEST_N: usize = {TEST_N};\n\
         /// Index of the first held-out record in the bundled file.\n\
         pub const HELD_OUT_START: usize = {HELD_OUT_START};\n\
         /// `TRAIN_N` images of 14×14 `u8` pixels, row-major.\n\
         pub static TRAIN_IMAGES: &[u8; {ti}] = include_bytes!(concat!(env!(\"OUT_DIR\"), \"/train_images.bin\"));\n\
         /// `TRAIN_N` labels 0–9.\n\
         pub static TRAIN_LABELS: &[u8; {TRAIN_N}] = include_bytes!(concat!(env!(\"OUT_DIR\"), \"/train_labels.bin\"));\n\
         /// `TEST_N` held-out images of 14×14 `u8` pixels.\n\
         pub static TEST_IMAGES: &[u8; {si}] = include_bytes!(concat!(env!(\"OUT_DIR\"), \"/test_images.bin\"));\n\
         /// `TEST_N` held-out labels 0–9.\n\
         pub static TEST_LABELS: &[u8; {TEST_N}] = include_bytes!(concat!(env!(\"OUT_DIR\"), \"/test_labels.bin\"));\n",
        end = HELD_OUT_START + TEST_N,
        ti = TRAIN_N * 196,
        si = TEST_N * 196,
    );
    fs::write(out.join("mnist14.rs"), rs).unwrap();
}
