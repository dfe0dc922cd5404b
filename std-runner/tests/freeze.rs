//! `staticgrad train --init-from DIR --freeze K` end to end: the frozen layers keep DIR's values
//! bit for bit (in the saved weights and through a stop and resume), the others train, the
//! report names what was frozen, a head fine-tuned on all ten digits above a base trained on
//! digits 0–7 gets better on held-out data of all ten, and each bad value is one line, exit 2.

use flate2::read::GzDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_staticgrad")).args(args).output().expect("the binary runs")
}

fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(o.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|v| v.to_bits()).collect()
}

fn weights(dir: &Path) -> Vec<f32> {
    staticgrad_runner::checkpoint::load_weights(dir).unwrap().1
}

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

/// Expects exit code 2 and one stderr line holding every needle, and no output folder.
fn bad(args: &[&str], needles: &[&str]) {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    let o = run(&[args, &["--out", s(&out)]].concat());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: {err:?} lacks {n:?}");
    }
    assert!(!out.exists(), "{args:?} left {}", out.display());
}

fn decompress(gz: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    GzDecoder::new(gz).read_to_end(&mut v).unwrap();
    v
}

/// IDX image and label bytes of the bundled records `range` whose label passes `keep`.
fn idx(range: std::ops::Range<usize>, keep: impl Fn(u8) -> bool) -> (Vec<u8>, Vec<u8>) {
    let img = decompress(staticgrad_runner::data::BUNDLED_IMAGES);
    let lbl = decompress(staticgrad_runner::data::BUNDLED_LABELS);
    let picked: Vec<usize> = range.filter(|&r| keep(lbl[8 + r])).collect();
    let n = picked.len() as u32;
    let mut i = 2051u32.to_be_bytes().to_vec();
    for d in [n, 28, 28] {
        i.extend_from_slice(&d.to_be_bytes());
    }
    let mut l = 2049u32.to_be_bytes().to_vec();
    l.extend_from_slice(&n.to_be_bytes());
    for r in picked {
        i.extend_from_slice(&img[16 + 784 * r..16 + 784 * (r + 1)]);
        l.push(lbl[8 + r]);
    }
    (i, l)
}

/// An MNIST folder: training records `train` with a label `keep` accepts, and the held-out
/// records 9,000–9,999 (every digit) as its test set.
fn mnist_dir(dir: PathBuf, train: std::ops::Range<usize>, keep: impl Fn(u8) -> bool) -> PathBuf {
    std::fs::create_dir_all(&dir).unwrap();
    let (ti, tl) = idx(train, keep);
    let (vi, vl) = idx(9000..10_000, |_| true);
    std::fs::write(dir.join("train-images-idx3-ubyte"), ti).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte"), tl).unwrap();
    std::fs::write(dir.join("t10k-images-idx3-ubyte"), vi).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), vl).unwrap();
    dir
}

/// The held-out accuracy `eval` prints for the weights in `w` on `dir`'s test set.
fn accuracy(w: &Path, dir: &Path) -> f32 {
    let out = ok(&["eval", "--weights", s(w), "--mnist-dir", s(dir)]);
    let at = out.find("accuracy ").expect("an accuracy") + "accuracy ".len();
    out[at..].split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn a_head_above_a_frozen_base_adapts_to_new_digits() {
    let t = tempfile::tempdir().unwrap();
    let d = |n: &str| t.path().join(n);
    // The base: 784-64-10 with batch norm (the default), trained on digits 0–7 only.
    let base_data = mnist_dir(d("digits0-7"), 0..4000, |l| l < 8);
    let all_data = mnist_dir(d("digits0-9"), 4000..7000, |_| true);
    let model = ["--layers", "784,64,10", "--batch", "50", "--seed", "5", "-q"];
    ok(&[&["train", "--mnist-dir", s(&base_data), "--epochs", "4", "--out", s(&d("base"))], &model[..]]
        .concat());
    let before = accuracy(&d("base"), &all_data);
    // 8 and 9 are about a fifth of the held-out digits and the base never answers them.
    assert!(before < 0.85, "the base knows digits it never saw: {before}");

    // Fine-tuning on all ten digits with dense 784→64 and its batch norm frozen.
    let base_dir = d("base");
    let common =
        [&["train", "--mnist-dir", s(&all_data), "--init-from", s(&base_dir), "--lr", "0.01"], &model[..]]
            .concat();
    let out = ok(&[&common[..], &["--freeze", "1", "--epochs", "3", "--out", s(&d("tuned"))]].concat());
    assert!(out.contains("frozen: the lowest 1 weight layer(s), dense64,bn,relu (50496 values"), "{out}");
    let after = accuracy(&d("tuned"), &all_data);
    eprintln!("held-out accuracy, all ten digits: base {before}, fine-tuned head {after}");
    assert!(after > before + 0.05, "held-out accuracy {before} → {after}");

    // The frozen values (W, b, γ, β and the running statistics of the first block) are DIR's,
    // bit for bit; the head's changed.
    let (base, tuned) = (weights(&d("base")), weights(&d("tuned")));
    let frozen = 784 * 64 + 64 + 4 * 64;
    assert_eq!(base.len(), tuned.len());
    assert_eq!(bits(&base[..frozen]), bits(&tuned[..frozen]), "a frozen value changed");
    let changed = (frozen..base.len()).filter(|&i| base[i].to_bits() != tuned[i].to_bits()).count();
    assert!(changed > (base.len() - frozen) / 2, "only {changed} trained values changed");

    // The summary and the report say what was frozen; the memory plan is the head's.
    let sm = summary(&d("tuned"));
    assert_eq!(sm["frozen"]["weight_layers"], 1);
    assert_eq!(sm["frozen"]["layers"], serde_json::json!(["dense64", "bn", "relu"]));
    assert_eq!(sm["frozen"]["values"], frozen);
    assert_eq!(sm["config"]["freeze"], 1);
    assert_eq!(sm["memory_plan"]["param_floats"], 64 * 10 + 10);
    let report = std::fs::read_to_string(d("tuned/report.md")).unwrap();
    assert!(
        report.contains("| frozen (--freeze) | the lowest 1 weight layer(s): dense64, bn, relu"),
        "{report}"
    );
    assert!(summary(&d("base")).get("frozen").is_none());

    // Stopped and resumed without the --init-from folder: the same bits (the checkpoint holds
    // the frozen values too).
    let stop = [&common[..], &["--freeze", "1", "--epochs", "3", "--max-steps", "70"]].concat();
    ok(&[&stop[..], &["--out", s(&d("stopped"))]].concat());
    std::fs::rename(d("base"), d("base-moved")).unwrap();
    ok(&["train", "--resume", s(&d("stopped")), "-q"]);
    assert_eq!(bits(&weights(&d("stopped"))), bits(&tuned), "the resumed run differs");

    // Without --freeze the same run trains every layer: the base's values move too.
    std::fs::rename(d("base-moved"), d("base")).unwrap();
    ok(&[&common[..], &["--epochs", "1", "--out", s(&d("all"))]].concat());
    let all = weights(&d("all"));
    assert_ne!(bits(&base[..784 * 64]), bits(&all[..784 * 64]));
}

#[test]
fn a_convolution_freezes_and_the_config_file_says_freeze() {
    let t = tempfile::tempdir().unwrap();
    let d = |n: &str| t.path().join(n);
    let net =
        ["--layers", "conv4x5,relu,maxpool2,dense10", "--limit", "300", "--test", "60", "--batch", "20"];
    ok(&[&["train", "--epochs", "1", "-q", "--out", s(&d("base"))], &net[..]].concat());
    let cfg = d("run.toml");
    std::fs::write(
        &cfg,
        format!(
            "net = \"conv4x5,relu,maxpool2,dense10\"\nlimit = 300\ntest = 60\nbatch = 20\nepochs = 2\nseed = 9\ninit_from = \"{}\"\nfreeze = 1\n",
            s(&d("base"))
        ),
    )
    .unwrap();
    let out = ok(&["train", "--config", s(&cfg), "--out", s(&d("tuned"))]);
    assert!(out.contains("frozen: the lowest 1 weight layer(s), conv4x5,relu,maxpool2"), "{out}");
    let (base, tuned) = (weights(&d("base")), weights(&d("tuned")));
    let frozen = 4 * 25 + 4;
    assert_eq!(bits(&base[..frozen]), bits(&tuned[..frozen]));
    assert_ne!(bits(&base[frozen..]), bits(&tuned[frozen..]));
    // The flag and the file give the same run.
    let base_dir = d("base");
    let flags = ["--epochs", "2", "--seed", "9", "-q", "--init-from", s(&base_dir), "--freeze", "1"];
    ok(&[&["train"], &net[..], &flags[..], &["--out", s(&d("flags"))]].concat());
    assert_eq!(bits(&weights(&d("flags"))), bits(&tuned));
    // --freeze in a file without init_from is refused like the flag.
    std::fs::write(&cfg, "net = \"conv4x5,relu,maxpool2,dense10\"\nfreeze = 1\n").unwrap();
    bad(&["train", "--config", s(&cfg)], &["--freeze 1", "needs --init-from"]);
}

#[test]
fn bad_freeze_values() {
    let t = tempfile::tempdir().unwrap();
    let base = t.path().join("base");
    let model =
        ["--layers", "784,16,8,10", "--limit", "120", "--test", "20", "--batch", "20", "--epochs", "1"];
    ok(&[&["train", "-q", "--out", s(&base)], &model[..]].concat());
    let from = [&["train"], &model[..], &["--init-from", s(&base)]].concat();
    bad(&[&["train"], &model[..], &["--freeze", "1"]].concat(), &["--freeze 1", "needs --init-from"]);
    bad(
        &[&from[..], &["--freeze", "3"]].concat(),
        &["--freeze 3", "every weight layer of 784-16-8-10 relu batchnorm", "at most 2"],
    );
    bad(&[&from[..], &["--freeze", "7"]].concat(), &["--freeze 7", "has 3 weight layers"]);
    bad(&["train", "--resume", s(&base), "--freeze", "1"], &["--freeze"]);
    // 0 freezes nothing: every layer trains.
    ok(&[&from[..], &["--freeze", "0", "-q", "--out", s(&t.path().join("none"))]].concat());
    assert!(summary(&t.path().join("none")).get("frozen").is_none());
}
