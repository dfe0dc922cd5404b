//! End-to-end tests of the `staticgrad` binary: resume bit-identity, reading a standard MNIST
//! folder (gz and plain), exports, and one test per bad input (exit code 2, one line naming the
//! file or value and the cause, no output left behind). Small models and subsets keep them fast.

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_staticgrad"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("the binary runs")
}

fn ok(args: &[&str]) -> String {
    let o = run(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{args:?} failed: {err}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A small training run: 784-16-10, few steps.
const SMALL: &[&str] =
    &["--layers", "784,16,10", "--limit", "360", "--test", "60", "--batch", "20", "--epochs", "2", "-q"];

fn decompress(gz: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    GzDecoder::new(gz).read_to_end(&mut v).unwrap();
    v
}

/// IDX bytes holding records `range` of the bundled images and labels.
fn idx_subset(range: std::ops::Range<usize>) -> (Vec<u8>, Vec<u8>) {
    let img = decompress(staticgrad_runner::data::BUNDLED_IMAGES);
    let lbl = decompress(staticgrad_runner::data::BUNDLED_LABELS);
    let n = range.len() as u32;
    let mut i = 2051u32.to_be_bytes().to_vec();
    for d in [n, 28, 28] {
        i.extend_from_slice(&d.to_be_bytes());
    }
    i.extend_from_slice(&img[16 + 784 * range.start..16 + 784 * range.end]);
    let mut l = 2049u32.to_be_bytes().to_vec();
    l.extend_from_slice(&n.to_be_bytes());
    l.extend_from_slice(&lbl[8 + range.start..8 + range.end]);
    (i, l)
}

fn write_file(path: &Path, bytes: &[u8], gz: bool) {
    if gz {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(bytes).unwrap();
        std::fs::write(path.with_extension(format!("{}gz", ext_dot(path))), e.finish().unwrap()).unwrap();
    } else {
        std::fs::write(path, bytes).unwrap();
    }
}

fn ext_dot(p: &Path) -> String {
    p.extension().map(|e| format!("{}.", e.to_string_lossy())).unwrap_or_default()
}

/// A folder in the standard layout: 300 training and 100 test records.
fn mnist_dir(root: &Path, gz: bool) -> PathBuf {
    let dir = root.join(if gz { "mnist-gz" } else { "mnist-plain" });
    std::fs::create_dir_all(&dir).unwrap();
    let (ti, tl) = idx_subset(0..300);
    let (vi, vl) = idx_subset(300..400);
    write_file(&dir.join("train-images-idx3-ubyte"), &ti, gz);
    write_file(&dir.join("train-labels-idx1-ubyte"), &tl, gz);
    write_file(&dir.join("t10k-images-idx3-ubyte"), &vi, gz);
    write_file(&dir.join("t10k-labels-idx1-ubyte"), &vl, gz);
    dir
}

fn step_rows(dir: &Path) -> Vec<String> {
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    csv.lines().filter(|l| l.starts_with("step,")).map(str::to_string).collect()
}

#[test]
fn resume_gives_bit_identical_weights() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    // Dropout and Adam: random masks, optimizer moments and Adam's step counter must all resume.
    let common = [SMALL, &["--dropout", "0.2", "--optimizer", "adam"]].concat();
    ok(&[&["train"], &common[..], &["--out", s(&a)]].concat());
    // 300 training examples, batch 20: 15 steps per epoch. Stop mid-epoch 2, after a periodic
    // checkpoint, then resume.
    let out =
        ok(&[&["train"], &common[..], &["--checkpoint-every", "5", "--max-steps", "23", "--out", s(&b)]]
            .concat());
    assert!(out.contains("--resume"), "{out}");
    let ck = std::fs::read(b.join("checkpoint.bin")).unwrap();
    assert!(!ck.is_empty());
    let partial = std::fs::read(b.join("model.bin")).unwrap();
    assert_ne!(partial, std::fs::read(a.join("model.bin")).unwrap(), "a stopped run differs");
    ok(&["train", "--resume", s(&b), "-q"]);
    assert_eq!(
        std::fs::read(a.join("model.bin")).unwrap(),
        std::fs::read(b.join("model.bin")).unwrap(),
        "resumed weights differ from the uninterrupted run"
    );
    assert_eq!(step_rows(&a), step_rows(&b), "per-step losses differ");
    assert_eq!(step_rows(&a).len(), 30);
    // A version-1 checkpoint (the optimizer's step counter in the metadata, not in its state)
    // resumes to the same weights: the counter moves into the state's header on reading.
    let v1 = t.path().join("v1");
    std::fs::create_dir(&v1).unwrap();
    let mut meta_end = 12 + u32::from_le_bytes(ck[8..12].try_into().unwrap()) as usize;
    let mut meta: serde_json::Value = serde_json::from_slice(&ck[12..meta_end]).unwrap();
    let t_steps = staticgrad::optim::steps(&floats_of(&ck[meta_end + 8..ck.len() - 4], &meta)).unwrap();
    meta["optimizer_steps"] = t_steps.into();
    meta["state_len"] = (meta["state_len"].as_u64().unwrap() - 3).into();
    let json = serde_json::to_vec(&meta).unwrap();
    let mut old = b"SGCK".to_vec();
    old.extend_from_slice(&1u32.to_le_bytes());
    old.extend_from_slice(&(json.len() as u32).to_le_bytes());
    old.extend_from_slice(&json);
    let n = u64::from_le_bytes(ck[meta_end..meta_end + 8].try_into().unwrap()) - 3;
    old.extend_from_slice(&n.to_le_bytes());
    meta_end += 8;
    let params = meta["param_len"].as_u64().unwrap() as usize * 4;
    old.extend_from_slice(&ck[meta_end..meta_end + params]); // parameters
    old.extend_from_slice(&ck[meta_end + params + 12..ck.len() - 4]); // state without its header
    let crc = staticgrad::weights::crc32(&old);
    old.extend_from_slice(&crc.to_le_bytes());
    std::fs::write(v1.join("checkpoint.bin"), &old).unwrap();
    ok(&["train", "--resume", s(&v1), "-q"]);
    assert_eq!(
        std::fs::read(a.join("model.bin")).unwrap(),
        std::fs::read(v1.join("model.bin")).unwrap(),
        "weights resumed from a version-1 checkpoint differ from the uninterrupted run"
    );
}

/// The state floats of a checkpoint's float section (after the parameters).
fn floats_of(section: &[u8], meta: &serde_json::Value) -> Vec<f32> {
    let params = meta["param_len"].as_u64().unwrap() as usize;
    section.chunks_exact(4).skip(params).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

#[test]
fn mnist_dir_reads_standard_files_gz_and_plain() {
    let t = tempfile::tempdir().unwrap();
    let mut weights = Vec::new();
    for gz in [true, false] {
        let dir = mnist_dir(t.path(), gz);
        let out = t.path().join(format!("run-{gz}"));
        let o = ok(&[
            "train",
            "--mnist-dir",
            s(&dir),
            "--layers",
            "784,16,10",
            "--batch",
            "50",
            "--epochs",
            "1",
            "--out",
            s(&out),
            "--no-batchnorm",
        ]);
        assert!(o.contains("300 train, 0 validation, 100 test"), "{o}");
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
        assert_eq!(summary["examples"]["test"], 100);
        let e = ok(&["eval", "--weights", s(&out), "--mnist-dir", s(&dir)]);
        assert!(e.contains("of 100 test examples"), "{e}");
        weights.push(std::fs::read(out.join("model.bin")).unwrap());
    }
    assert_eq!(weights[0], weights[1], "gz and plain files hold the same data");
}

#[test]
fn outputs_report_and_exports() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("run");
    let o = ok(&[&["train"], SMALL, &["--val", "40", "--out", s(&out)]].concat());
    assert!(o.contains("report:"), "{o}");
    for f in
        ["model.bin", "metrics.csv", "metrics.jsonl", "summary.json", "loss.svg", "accuracy.svg", "report.md"]
    {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "temporary files left: {names:?}");
    let jsonl = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let epochs = jsonl.lines().filter(|l| l.contains("\"kind\":\"epoch\"")).count();
    assert_eq!(epochs, 2);
    let svg = std::fs::read_to_string(out.join("accuracy.svg")).unwrap();
    assert!(svg.contains("validation") && svg.contains("epoch"));

    let rs = t.path().join("model.rs");
    ok(&["export", "--weights", s(&out), "--format", "rust", "--out", s(&rs)]);
    let src = std::fs::read_to_string(&rs).unwrap();
    let n = 784 * 16 + 16 + 4 * 16 + 16 * 10 + 10;
    assert!(src.contains(&format!("pub const PARAMS: [f32; {n}] = [")), "{}", &src[..400]);
    assert!(src.contains("pub const WIDTHS: [usize; 3] = [784, 16, 10];"));
    let bin = t.path().join("copy.bin");
    ok(&["export", "--weights", s(&out.join("model.bin")), "--format", "bin", "--out", s(&bin)]);
    assert_eq!(std::fs::read(&bin).unwrap(), std::fs::read(out.join("model.bin")).unwrap());
}

#[test]
fn config_file_with_flag_override() {
    let t = tempfile::tempdir().unwrap();
    let cfg = t.path().join("run.toml");
    std::fs::write(&cfg, "layers = [784, 8, 10]\nepochs = 1\nbatch = 30\nlimit = 200\ntest = 50\nlr = 0.5\n")
        .unwrap();
    let out = t.path().join("run");
    ok(&["train", "--config", s(&cfg), "--lr", "0.01", "--out", s(&out), "-q"]);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["config"]["layers"], serde_json::json!([784, 8, 10]));
    assert_eq!(summary["config"]["lr"].as_f64().unwrap() as f32, 0.01);
    assert_eq!(summary["steps"], 5);
    std::fs::write(&cfg, "layers = [784, 8, 10]\nlearning_rate = 1\n").unwrap();
    bad(&["train", "--config", s(&cfg)], &[s(&cfg), "unknown field"]);
}

/// Runs `args` (with an output folder appended), expecting exit code 2, a single stderr line
/// containing every `needles`, nothing on stdout's side left on disk.
fn bad(args: &[&str], needles: &[&str]) {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    let mut all: Vec<&str> = args.to_vec();
    if args[0] == "train" {
        all.extend(["--out", s(&out)]);
    }
    let o = run(&all);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: {err:?} lacks {n:?}");
    }
    assert!(!out.exists(), "{args:?} left {}", out.display());
}

#[test]
fn bad_mnist_files() {
    let t = tempfile::tempdir().unwrap();
    let dir = mnist_dir(t.path(), false);
    let base = ["train", "--mnist-dir", s(&dir), "--layers", "784,8,10", "--epochs", "1"];
    // Missing file.
    let lbl = dir.join("train-labels-idx1-ubyte");
    let saved = std::fs::read(&lbl).unwrap();
    std::fs::remove_file(&lbl).unwrap();
    bad(&base, &["train-labels-idx1-ubyte", "no such file"]);
    // Wrong magic number: an image file where the labels should be.
    std::fs::copy(dir.join("train-images-idx3-ubyte"), &lbl).unwrap();
    bad(&base, &[s(&lbl), "wrong magic number 2051"]);
    std::fs::write(&lbl, &saved).unwrap();
    // Truncated images, plain and gz.
    let img = dir.join("train-images-idx3-ubyte");
    let full = std::fs::read(&img).unwrap();
    std::fs::write(&img, &full[..full.len() - 100]).unwrap();
    bad(&base, &[s(&img), "truncated"]);
    std::fs::remove_file(&img).unwrap();
    write_file(&img, &full[..full.len() - 100], true);
    bad(&base, &["train-images-idx3-ubyte.gz", "truncated"]);
}

#[test]
fn bad_csv_files() {
    let t = tempfile::tempdir().unwrap();
    let csv = t.path().join("d.csv");
    let base =
        ["train", "--csv", s(&csv), "--layers", "3,4,3", "--test", "1", "--batch", "2", "--epochs", "1"];
    std::fs::write(&csv, "0,1,2,3\n1,4,5,6\n2,7,8,9\n1,1,1,1\n").unwrap();
    let o = run(&[&base[..], &["--out", s(&t.path().join("good")), "-q"]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::write(&csv, "0,1,2,3\n1,4,5,6\n2,7,8\n1,1,1,1\n").unwrap();
    bad(&base, &[s(&csv), "line 3 has 3 fields, expected 4"]);
    std::fs::write(&csv, "0,1,2,3\n1,4,five,6\n2,7,8,9\n1,1,1,1\n").unwrap();
    bad(&base, &[s(&csv), "line 2, column 3", "\"five\" is not a number"]);
    std::fs::write(&csv, "0,1,2,3\n3,4,5,6\n2,7,8,9\n1,1,1,1\n").unwrap();
    bad(&base, &[s(&csv), "label 3", "number of classes (3)"]);
    bad(
        &["train", "--csv", s(&t.path().join("nope.csv")), "--layers", "3,4,3"],
        &["nope.csv", "no such file"],
    );
}

#[test]
fn bad_values() {
    bad(&["train", "--layers", "100,10", "--epochs", "1"], &["--layers 100,10", "784 features"]);
    bad(&["train", "--lr", "-0.1"], &["--lr -0.1", "positive"]);
    bad(&["train", "--optimizer", "adamax"], &["--optimizer adamax", "unknown"]);
    bad(&["train", "--dropout", "1.5"], &["--dropout 1.5"]);
    let t = tempfile::tempdir().unwrap();
    let w = t.path().join("w.bin");
    std::fs::write(&w, b"SGWT\x01\x00").unwrap();
    bad(&["eval", "--weights", s(&w)], &[s(&w), "truncated"]);
    std::fs::write(&w, b"not weights at all").unwrap();
    bad(&["export", "--weights", s(&w), "--format", "rust"], &[s(&w), "magic"]);
}

#[test]
fn killed_run_resumes_bit_identically() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    let args =
        ["--layers", "784,16,10", "--limit", "500", "--test", "100", "--batch", "10", "--epochs", "3", "-q"];
    ok(&[&["train"], &args[..], &["--out", s(&a)]].concat());
    // Kill the process once its first checkpoint exists (wherever it is by then).
    let mut child = bin()
        .args([&["train"], &args[..], &["--checkpoint-every", "7", "--out", s(&b)]].concat())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ck = b.join("checkpoint.bin");
    let start = std::time::Instant::now();
    while !ck.exists() && start.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(ck.exists(), "no checkpoint was written");
    ok(&["train", "--resume", s(&b), "-q"]);
    assert_eq!(std::fs::read(a.join("model.bin")).unwrap(), std::fs::read(b.join("model.bin")).unwrap());
}

#[test]
fn a_cnn_from_a_layer_string_trains_evaluates_exports_and_resumes() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    let common =
        ["--layers", "conv3x3p1,relu,maxpool2,dense10", "--limit", "300", "--batch", "20", "--epochs", "2"];
    ok(&[&["train"], &common[..], &["--out", s(&a), "-q"]].concat());
    ok(&[&["train"], &common[..], &["--checkpoint-every", "5", "--max-steps", "23", "--out", s(&b), "-q"]]
        .concat());
    ok(&["train", "--resume", s(&b), "-q"]);
    let model = std::fs::read(a.join("model.bin")).unwrap();
    assert_eq!(model, std::fs::read(b.join("model.bin")).unwrap(), "resumed CNN weights differ");
    assert_eq!(u16::from_le_bytes([model[4], model[5]]), 2, "a CNN is a version-2 weights file");
    let desc = staticgrad::weights::parse(&model).unwrap().desc();
    assert_eq!(desc.net(), Some("in1x28x28,conv3x3p1,relu,maxpool2,dense10"));
    let out = ok(&["eval", "--weights", s(&a), "--limit", "300"]);
    assert!(out.starts_with("in1x28x28,conv3x3p1,relu,maxpool2,dense10: accuracy "), "{out}");
    let src = t.path().join("w.rs");
    ok(&["export", "--weights", s(&a), "--format", "rust", "--out", s(&src)]);
    let text = std::fs::read_to_string(&src).unwrap();
    assert!(text.contains("pub const NET: &str = \"in1x28x28,conv3x3p1,relu,maxpool2,dense10\";"));
    // The preset: the book's SimpleConvNet, std 0.01 weights (one step is enough to see it run).
    let c = t.path().join("c");
    ok(&["train", "--model", "convnet", "--limit", "200", "--max-steps", "1", "--out", s(&c), "-q"]);
    let desc = staticgrad::weights::parse(&std::fs::read(c.join("model.bin")).unwrap()).unwrap().desc();
    assert_eq!(desc.net(), Some(staticgrad_runner::net::CONVNET));
}

#[test]
fn augmentation_shifts_images_and_resumes_bit_identically() {
    let t = tempfile::tempdir().unwrap();
    let (a, b, plain) = (t.path().join("a"), t.path().join("b"), t.path().join("plain"));
    let common =
        ["--layers", "conv2x3p1,relu,maxpool2,dense10", "--limit", "200", "--batch", "20", "--epochs", "2"];
    ok(&[&["train"], &common[..], &["--out", s(&plain), "-q"]].concat());
    let aug = [&common[..], &["--augment-shift", "2"]].concat();
    ok(&[&["train"], &aug[..], &["--out", s(&a), "-q"]].concat());
    ok(&[&["train"], &aug[..], &["--checkpoint-every", "4", "--max-steps", "13", "--out", s(&b), "-q"]]
        .concat());
    ok(&["train", "--resume", s(&b), "-q"]);
    let model = std::fs::read(a.join("model.bin")).unwrap();
    assert_eq!(model, std::fs::read(b.join("model.bin")).unwrap(), "resumed augmented run differs");
    assert_ne!(model, std::fs::read(plain.join("model.bin")).unwrap(), "augmentation changed nothing");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["config"]["augment_shift"], 2);
    bad(&["train", "--layers", "784,16,10", "--augment-shift", "1"], &["--augment-shift 1", "image model"]);
    bad(
        &["train", "--layers", "in1x4x4,conv2x3p1,dense10", "--augment-shift", "4"],
        &["--augment-shift 4", "1x4x4"],
    );
}

/// Runs `args` expecting failure: exit code `code` and exactly one stderr line, which carries the
/// one error prefix; returns that line.
fn one_error_line(args: &[&str], code: i32) -> String {
    let o = run(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: not one line: {err:?}");
    assert!(err.starts_with("staticgrad: error: "), "{args:?}: {err:?}");
    err.trim_end().to_string()
}

#[test]
fn every_error_has_the_one_prefix() {
    let t = tempfile::tempdir().unwrap();
    let missing = t.path().join("missing");
    let m = s(&missing);
    // clap's refusals, one line each, with what clap says on its later lines.
    let e = one_error_line(&["import", "x.safetensors"], 2);
    assert!(e.contains("--layers") && e.contains("--out"), "names the missing arguments: {e}");
    let e = one_error_line(&["train", "--sampling", "sideways"], 2);
    assert!(e.contains("possible values: shuffle") && !e.contains("For more information"), "{e}");
    let e = one_error_line(&["expriment"], 2);
    assert!(e.contains("'expriment'") && e.contains("tip:") && e.contains("experiment"), "{e}");
    one_error_line(&["train", "--batch", "many"], 2);
    one_error_line(&["completions", "tcsh"], 2);
    one_error_line(&["man", "--bogus"], 2);
    // Every subcommand's own refusals.
    one_error_line(&["train", "--lr", "-1", "--out", m], 2);
    one_error_line(&["plan", "--layers", "2"], 2);
    one_error_line(&["eval", "--weights", m], 2);
    one_error_line(&["export", "--weights", m, "--format", "bin"], 2);
    one_error_line(&["import", m, "--layers", "2,2", "--out", m], 2);
    one_error_line(&["bench", "huge"], 2);
    one_error_line(&["experiment", "hpsearch", "merge", m, "--out", m], 2);
    let e = one_error_line(&["web", "--dir", m, "--port", "0"], 2);
    assert!(e.contains("no index.html here"), "{e}");
    assert!(!missing.exists());
}

#[test]
fn quiet_on_every_subcommand() {
    let t = tempfile::tempdir().unwrap();
    let run_dir = t.path().join("run");
    // Train: no announcement, no per-epoch lines; the closing lines stay (accuracy, report).
    let out = ok(&[&["train"], SMALL, &["--out", s(&run_dir)]].concat());
    assert!(!out.contains("training ") && !out.contains("epoch 1/"), "{out}");
    assert!(out.contains("report:"), "{out}");
    let loud = ok(&[
        "train",
        "--layers",
        "784,8,10",
        "--limit",
        "100",
        "--epochs",
        "1",
        "--out",
        s(&t.path().join("loud")),
    ]);
    assert!(loud.contains("training ") && loud.contains("epoch 1/1"), "{loud}");
    // Export and import: nothing (the file is where --out says).
    let st = t.path().join("m.safetensors");
    let w = t.path().join("nobn");
    ok(&[
        "train",
        "--layers",
        "784,8,10",
        "--no-batchnorm",
        "--limit",
        "100",
        "--epochs",
        "1",
        "-q",
        "--out",
        s(&w),
    ]);
    assert_eq!(ok(&["export", "-q", "--weights", s(&w), "--format", "safetensors", "--out", s(&st)]), "");
    assert_eq!(ok(&["-q", "import", s(&st), "--layers", "784,8,10", "--out", s(&t.path().join("imp"))]), "");
    // Plan and eval print their result either way.
    assert!(ok(&["plan", "-q"]).contains("tape floats"));
    assert!(
        ok(&["eval", "-q", "--weights", s(&run_dir), "--limit", "360", "--test", "60"]).contains("accuracy")
    );
    // An experiment: where its summary is, instead of the whole summary.
    let exp = t.path().join("opt2d");
    let out = ok(&["experiment", "optimizers-2d", "--quiet", "--out", s(&exp)]);
    assert_eq!(out.trim_end(), format!("summary: {}", exp.join("summary.md").display()));
    let loud = ok(&["experiment", "optimizers-2d", "--out", s(&t.path().join("opt2d-loud"))]);
    assert!(loud.lines().count() > 5, "{loud}");
    // Bench: the result line only, no notes on stderr.
    let o = run(&["bench", "tiny", "--check", "-q"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("check_loss0=1.182342"));
    assert_eq!(String::from_utf8_lossy(&o.stderr), "");
    // Completions and man are results: printed regardless.
    assert!(!ok(&["completions", "fish", "-q"]).is_empty());
}

#[test]
fn completions_and_man_pages() {
    let bash = ok(&["completions", "bash"]);
    assert!(bash.contains("_staticgrad()") && bash.contains("complete -F _staticgrad"), "{}", &bash[..200]);
    // Every subcommand and the experiments are completed.
    for word in ["train", "experiment", "hpsearch", "--mnist-dir", "--quiet", "completions"] {
        assert!(bash.contains(word), "bash completion lacks {word}");
    }
    assert!(ok(&["completions", "ZSH"]).starts_with("#compdef staticgrad"));
    let page = ok(&["man"]);
    assert!(page.contains(".TH staticgrad 1"), "{}", &page[..200]);
    assert!(page.contains("completions") && page.contains("experiment"));
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("man1");
    ok(&["man", "--out", s(&dir)]);
    for page in ["staticgrad.1", "staticgrad-train.1", "staticgrad-experiment-hpsearch.1", "staticgrad-man.1"]
    {
        let text = std::fs::read_to_string(dir.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH"), "{page}");
    }
    let train = std::fs::read_to_string(dir.join("staticgrad-train.1")).unwrap();
    assert!(train.contains("\\-\\-max\\-memory"), "the train page lists its flags");
}

#[test]
fn summary_json_writes_the_settings_as_given_and_the_rate_used() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    ok(&[&["train"], SMALL, &["--lr", "0.002", "--dropout", "0.15", "--out", s(&a)]].concat());
    let text = std::fs::read_to_string(a.join("summary.json")).unwrap();
    assert!(text.contains("\"lr\": 0.002,"), "{text}");
    assert!(text.contains("\"dropout\": 0.15,"), "{text}");
    assert!(!text.contains("0.0020000000949949026") && !text.contains("0.15000000596"), "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    // Shortest decimals read back to the same f32.
    assert_eq!(v["config"]["lr"].as_f64().unwrap() as f32, 0.002f32);
    let acc = v["final"]["train_acc"].as_f64().unwrap();
    assert_eq!(acc, (acc as f32).to_string().parse::<f64>().unwrap(), "accuracies are shortest f32 decimals");
    // No --lr: the optimizer's default is what ran, and what the summary says.
    ok(&[&["train"], SMALL, &["--optimizer", "momentum", "--out", s(&b)]].concat());
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(b.join("summary.json")).unwrap()).unwrap();
    assert_eq!(v["config"]["lr"], serde_json::json!(0.01), "momentum's book default");
}

#[test]
fn names_are_taken_in_any_case() {
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("a");
    ok(&[
        &["train"],
        SMALL,
        &["--activation", "RELU", "--optimizer", "ADAM", "--init", "He", "--out", s(&a)],
    ]
    .concat());
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("summary.json")).unwrap()).unwrap();
    assert_eq!(
        (v["config"]["activation"].as_str(), v["config"]["optimizer"].as_str()),
        (Some("relu"), Some("adam"))
    );
    assert_eq!(v["config"]["init"].as_str(), Some("he"));
    ok(&["plan", "--optimizer", "AdaGrad"]);
    bad(&["train", "--activation", "swish"], &["--activation swish", "relu, sigmoid, tanh"]);
}
