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

/// A safetensors file of a 3-4-2 MLP in PyTorch's layout; `edit` changes the tensors first.
fn torch_mlp(edit: impl FnOnce(&mut Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)>)) -> Vec<u8> {
    let f32s = |n: usize, x: f32| (0..n).flat_map(|i| (x * i as f32).to_le_bytes()).collect::<Vec<u8>>();
    let mut t = vec![
        ("0.weight".to_string(), safetensors::Dtype::F32, vec![4, 3], f32s(12, 0.1)),
        ("0.bias".to_string(), safetensors::Dtype::F32, vec![4], f32s(4, -0.1)),
        ("2.weight".to_string(), safetensors::Dtype::F32, vec![2, 4], f32s(8, 0.2)),
        ("2.bias".to_string(), safetensors::Dtype::F32, vec![2], f32s(2, 0.3)),
    ];
    edit(&mut t);
    let views: Vec<_> = t
        .iter()
        .map(|(n, d, s, b)| (n.clone(), safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize(views, None).unwrap()
}

/// `import m.safetensors --layers 3,4,2 --out imported` in a place holding `bytes` as m.safetensors
/// and an earlier import: refused with `needles`, nothing written.
fn import_refused(bytes: &[u8], needles: &[&str]) {
    let p = Place::new();
    std::fs::write(p.path().join("good.safetensors"), torch_mlp(|_| {})).unwrap();
    let args = ["import", "good.safetensors", "--layers", "3,4,2", "--out", "earlier"];
    assert!(p.ok(&args).contains("wrote earlier/model.bin"));
    std::fs::write(p.path().join("m.safetensors"), bytes).unwrap();
    let e = p.refused(&["import", "m.safetensors", "--layers", "3,4,2", "--out", "imported"], needles);
    assert!(e.contains("m.safetensors"), "{e}");
    // Into the earlier import's folder: still refused, the earlier file intact.
    p.refused(&["import", "m.safetensors", "--layers", "3,4,2", "--out", "earlier", "--force"], needles);
}

#[test]
fn import_truncated_file_is_refused() {
    let good = torch_mlp(|_| {});
    for cut in [0, 5, 8, 40, good.len() - 1] {
        import_refused(&good[..cut], &["not a readable safetensors file"]);
    }
}

#[test]
fn import_wrong_shape_names_the_tensor() {
    // The weight stored as ours ([in, out]) instead of PyTorch's [out, in].
    import_refused(&torch_mlp(|t| t[2].2 = vec![4, 2]), &["tensor 2.weight", "shape [4, 2]", "need [2, 4]"]);
}

#[test]
fn import_missing_tensor_names_it() {
    import_refused(&torch_mlp(|t| drop(t.remove(3))), &["tensor 2.bias", "missing"]);
    // A third Linear layer the --layers do not have.
    let extra = torch_mlp(|t| {
        t.push(("4.weight".into(), safetensors::Dtype::F32, vec![2, 2], vec![0; 16]));
        t.push(("4.bias".into(), safetensors::Dtype::F32, vec![2], vec![0; 8]));
    });
    import_refused(&extra, &["3 Linear layers (0, 2, 4)", "--layers 3,4,2 has 2"]);
    // A batch norm's statistics are not a Linear layer's.
    let bn = torch_mlp(|t| t.push(("1.running_mean".into(), safetensors::Dtype::F32, vec![4], vec![0; 16])));
    import_refused(&bn, &["tensor 1.running_mean", "not a Linear weight or bias"]);
}

#[test]
fn import_wrong_dtype_names_it() {
    let ints = torch_mlp(|t| t[0].1 = safetensors::Dtype::I32);
    import_refused(&ints, &["tensor 0.weight", "dtype I32", "F32, F64, F16 and BF16"]);
}

#[test]
fn import_nan_weight_names_tensor_and_index() {
    let nan = torch_mlp(|t| t[0].3[20..24].copy_from_slice(&f32::NAN.to_le_bytes()));
    import_refused(&nan, &["tensor 0.weight", "value 5 is NaN", "not finite"]);
}

#[test]
fn init_from_another_model_names_both() {
    let p = Place::new();
    let earlier = small_run(&p, "earlier");
    let args = [&["train"], SMALL, &["--no-batchnorm", "--init-from", "earlier", "--out", "again"]].concat();
    p.refused(
        &args,
        &[
            "--init-from",
            "earlier/model.bin",
            "784-16-10 relu batchnorm",
            "the run's model is 784-16-10 relu",
        ],
    );
    let args =
        ["train", "--layers", "784,8,10", "--limit", "360", "--init-from", "earlier", "--out", "again"];
    p.refused(&args, &["weights of 784-16-10 relu batchnorm", "the run's model is 784-8-10 relu batchnorm"]);
    assert!(earlier.join("model.bin").is_file());
}

#[test]
fn safetensors_export_of_a_layer_string_model_is_refused_by_name() {
    // The PyTorch layout written here is a Sequential of Linears given by widths; a model from a
    // layer string (here a CNN) is refused, not guessed at, and nothing is written.
    let p = Place::new();
    let train =
        [&["train", "--layers", "conv2x3,relu,maxpool2,dense10"], &SMALL[2..], &["--out", "cnn"]].concat();
    p.ok(&train);
    let args = ["export", "--weights", "cnn", "--format", "safetensors", "--out", "cnn.safetensors"];
    p.refused(&args, &["model.bin", "is a layer string", "--layers widths"]);
}
