//! Models from elsewhere (issue 16, item 4): `staticgrad import` of a PyTorch-layout safetensors
//! file, `export --format safetensors`, and `train --init-from`.
//!
//! The fixture `tests/fixtures/torch_mlp/` (made by its `make.py` with numpy and the Python
//! `safetensors` package) is a 6-5-5-3 ReLU MLP as `nn.Sequential` saves it, with inputs and their
//! logits computed in float64. Ours are computed in f32, so they agree within
//! [`TOLERANCE`] × (1 + |logit|), far below what a missed transpose changes.

use staticgrad::{Node, ParamEntry, Params, Tape};
use staticgrad_runner::checkpoint;
use staticgrad_runner::model::ModelSpec;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Agreement of our f32 logits with the fixture's float64 ones, relative to 1 + |logit|.
const TOLERANCE: f64 = 1e-5;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/torch_mlp")
}

fn ok(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_staticgrad")).args(args).output().expect("the binary runs");
    assert!(o.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Eval-mode logits of `rows` rows of `x` with the parameter values `values` of `spec`.
fn logits(spec: &ModelSpec, values: &[f32], x: &[f32], rows: usize) -> Vec<f32> {
    let m = spec.model();
    let mut v = vec![0.0; m.param_len()];
    let mut g = vec![0.0; m.param_len()];
    let mut table = vec![ParamEntry::EMPTY; m.param_tensors()];
    let mut params = Params::new(&mut v, &mut g, &mut table);
    m.alloc(&mut params).unwrap();
    params.values_mut().copy_from_slice(values);
    let mut floats = vec![0.0; m.eval_tape_floats(rows)];
    let mut nodes = vec![Node::EMPTY; m.eval_tape_nodes()];
    let mut tape = Tape::new(&mut floats, &mut nodes);
    let y = m.logits(&mut tape, &params, x).unwrap();
    tape.value(y).unwrap().to_vec()
}

#[test]
fn a_pytorch_mlp_imports_with_its_logits() {
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture().join("expected.json")).unwrap()).unwrap();
    let rows: Vec<Vec<u32>> = serde_json::from_value(expected["input_bits"].clone()).unwrap();
    let want: Vec<Vec<f64>> = serde_json::from_value(expected["logits"].clone()).unwrap();
    let x: Vec<f32> = rows.iter().flatten().map(|&b| f32::from_bits(b)).collect();
    assert_eq!((x.len(), want.len()), (4 * 6, 4));

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("imported");
    let said =
        ok(&["import", s(&fixture().join("model.safetensors")), "--layers", "6,5,5,3", "--out", s(&out)]);
    assert!(said.contains("83 parameters of 6-5-5-3 relu"), "{said}");
    let (desc, values) = checkpoint::load_weights(&out).unwrap();
    assert_eq!(desc.to_string(), "6-5-5-3 relu");
    let spec = ModelSpec::from_desc(&desc).unwrap();
    let got = logits(&spec, &values, &x, rows.len());
    let worst = got
        .iter()
        .zip(want.iter().flatten())
        .map(|(&g, &w)| (g as f64 - w).abs() / (1.0 + w.abs()))
        .fold(0.0, f64::max);
    assert!(worst <= TOLERANCE, "logits {got:?} vs {want:?}: {worst}");

    // The check can fail: the square middle layer left as PyTorch stores it ([out, in], not
    // transposed) passes every shape check but gives other logits.
    let mut wrong = values.clone();
    let w1 = 6 * 5 + 5; // after W0 and b0
    for i in 0..5 {
        for o in 0..5 {
            wrong[w1 + i * 5 + o] = values[w1 + o * 5 + i];
        }
    }
    let bad = logits(&spec, &wrong, &x, rows.len());
    let off = bad.iter().zip(want.iter().flatten()).map(|(&g, &w)| (g as f64 - w).abs()).fold(0.0, f64::max);
    assert!(off > 1e-3, "an untransposed layer went unnoticed: {off}");
}

#[test]
fn import_of_export_is_the_identity_and_init_from_trains_the_same_bits() {
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n);
    let run = |extra: &[&str], out: &Path| {
        let mut a = vec!["train", "--layers", "784,16,10", "--limit", "360", "--test", "60", "--batch", "20"];
        a.extend_from_slice(&["--epochs", "1", "-q", "--no-batchnorm", "--out", s(out)]);
        a.extend_from_slice(extra);
        ok(&a);
    };
    run(&[], &d("base"));
    ok(&[
        "export",
        "--weights",
        s(&d("base")),
        "--format",
        "safetensors",
        "--out",
        s(&d("base.safetensors")),
    ]);
    ok(&["import", s(&d("base.safetensors")), "--layers", "784,16,10", "--out", s(&d("imported"))]);
    let base = std::fs::read(d("base/model.bin")).unwrap();
    assert!(std::fs::read(d("imported/model.bin")).unwrap() == base, "import ∘ export changed the weights");
    // Exporting the imported weights gives the same file again.
    ok(&[
        "export",
        "--weights",
        s(&d("imported")),
        "--format",
        "safetensors",
        "--out",
        s(&d("again.safetensors")),
    ]);
    let again = std::fs::read(d("again.safetensors")).unwrap();
    assert!(again == std::fs::read(d("base.safetensors")).unwrap(), "a second export differs");

    // Fine-tuning from our own file and from the imported one: the same bits.
    ok(&["export", "--weights", s(&d("base")), "--format", "bin", "--out", s(&d("ours.bin"))]);
    run(&["--init-from", s(&d("ours.bin")), "--seed", "3"], &d("from_ours"));
    run(&["--init-from", s(&d("imported")), "--seed", "3"], &d("from_imported"));
    let a = std::fs::read(d("from_ours/model.bin")).unwrap();
    assert!(
        a == std::fs::read(d("from_imported/model.bin")).unwrap(),
        "imported weights trained differently"
    );
    // A fine-tuning run stopped and resumed ends on the same bits, without its weights file
    // (the checkpoint holds the parameters).
    run(&["--init-from", s(&d("ours.bin")), "--seed", "3", "--max-steps", "4"], &d("resumed"));
    std::fs::remove_file(d("ours.bin")).unwrap();
    ok(&["train", "--resume", s(&d("resumed")), "-q"]);
    assert!(a == std::fs::read(d("resumed/model.bin")).unwrap(), "the resumed run differs");
    // And it did start from those weights: a drawn start with the same seed ends elsewhere, and
    // the run's summary names where it started.
    run(&["--seed", "3"], &d("drawn"));
    assert!(a != std::fs::read(d("drawn/model.bin")).unwrap(), "--init-from was ignored");
    assert!(a != base, "the fine-tuning run did not train");
    let summary = std::fs::read_to_string(d("from_ours/summary.json")).unwrap();
    assert!(summary.contains("\"init_from\""), "{summary}");
    assert!(!std::fs::read_to_string(d("drawn/summary.json")).unwrap().contains("init_from"));
}

#[test]
fn fc_style_names_and_explicit_names_import() {
    // `fc1`, `fc2` (ordered by their number) and names given with --names read the same values.
    let src = std::fs::read(fixture().join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&src).unwrap();
    let rename = |map: &[(&str, &str)]| {
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = map
            .iter()
            .flat_map(|(from, to)| {
                ["weight", "bias"].map(|k| (format!("{to}.{k}"), st.tensor(&format!("{from}.{k}")).unwrap()))
            })
            .collect();
        safetensors::serialize(views, None).unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("fc.safetensors"), rename(&[("0", "fc1"), ("2", "fc2"), ("4", "fc3")])).unwrap();
    std::fs::write(p("named.safetensors"), rename(&[("0", "hidden"), ("2", "middle"), ("4", "out")]))
        .unwrap();
    let layers = ["--layers", "6,5,5,3"];
    ok(&[&["import", s(&fixture().join("model.safetensors")), "--out", s(&p("seq"))][..], &layers].concat());
    ok(&[&["import", s(&p("fc.safetensors")), "--out", s(&p("fc"))][..], &layers].concat());
    let names = ["--names", "hidden,middle,out"];
    ok(&[&["import", s(&p("named.safetensors")), "--out", s(&p("named.bin"))][..], &layers, &names].concat());
    let seq = std::fs::read(p("seq/model.bin")).unwrap();
    assert!(std::fs::read(p("fc/model.bin")).unwrap() == seq, "fc1-style names read differently");
    assert!(std::fs::read(p("named.bin")).unwrap() == seq, "--names read differently");
}
