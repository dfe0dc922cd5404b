//! See main.rs: this class of issue 14. Sizes are computed from the settings and the data's
//! headers and charged to the memory budget before anything is allocated or created; a plan over
//! the budget exits 2 naming the setting, the bytes and the budget.

#[allow(unused_imports)]
use super::*;

/// `args` with an earlier run in the same place, which must stay intact byte for byte.
fn refused_beside_a_run(args: &[&str], needles: &[&str]) {
    let p = Place::new();
    small_run(&p, "earlier");
    p.refused(args, needles);
}

#[test]
fn budget_train_model_sizes() {
    for layers in ["784,1000000000,10", "784,100000,100000,10"] {
        refused_beside_a_run(
            &["train", "--layers", layers, "-q"],
            &[&format!("--layers {layers}"), "bytes", "budget"],
        );
        // No subcommand and no --out: nothing appears under runs/ either.
        let p = Place::new();
        p.refused(&["train", "--layers", layers], &["--layers", "budget"]);
    }
}

#[test]
fn budget_train_epochs_and_records() {
    // The step total overflows: refused naming --epochs (it used to train 0 steps, exit 0).
    refused_beside_a_run(
        &["train", "--epochs", "1152921504606846976", "-q"],
        &["--epochs 1152921504606846976", "steps in total"],
    );
    // Representable (3.6·10⁹ steps), but their metrics do not fit.
    refused_beside_a_run(&["train", "--epochs", "40000000", "-q"], &["--epochs 40000000", "bytes", "budget"]);
}

#[test]
fn budget_train_huge_batch_is_the_whole_set_and_fits() {
    // A batch larger than the training set is the whole set: the tape is sized for the 9,000
    // rows actually used, which fits under the 1 GiB limit (it used to abort allocating 10¹² rows).
    for batch in ["1000000000000", "18446744073709551615"] {
        let p = Place::new();
        let out = p.ok(&["train", "-q", "--batch", batch, "--epochs", "1", "--out", &p.arg("run")]);
        assert!(out.contains("done: 1 steps"), "{out}");
        assert!(p.path().join("run/model.bin").is_file());
    }
    // The default model and data, as `cargo run --release` trains them, fit under the limit.
    let p = Place::new();
    p.ok(&["train", "-q", "--epochs", "1", "--out", &p.arg("run")]);
    // Under a budget too small for those rows, the refusal names --batch and the rows used.
    let p = Place::new();
    p.refused(
        &["train", "-q", "--batch", "1000000000000", "--max-memory", "32M", "--out", "run"],
        &["--batch 1000000000000", "9000 rows", "--max-memory 32.0 MiB"],
    );
}

#[test]
fn budget_toml_batch_and_max_memory() {
    let p = Place::new();
    small_run(&p, "earlier");
    std::fs::write(p.path().join("big.toml"), "batch = 9223372036854775807\nmax_memory = \"32M\"\n").unwrap();
    p.refused(
        &["train", "--config", "big.toml", "-q", "--out", "run"],
        &["--batch 9223372036854775807", "budget"],
    );
    std::fs::write(p.path().join("small.toml"), "layers = [784, 16, 10]\nmax_memory = \"1K\"\n").unwrap();
    p.refused(
        &["train", "--config", "small.toml", "-q", "--out", "run"],
        &["--layers 784,16,10", "1024 bytes"],
    );
    // The flag overrides the file.
    p.ok(&[
        "train",
        "--config",
        "small.toml",
        "--max-memory",
        "256M",
        "--limit",
        "100",
        "--epochs",
        "1",
        "-q",
        "--out",
        &p.arg("run"),
    ]);
}

#[test]
fn budget_max_memory_passes_a_small_run_and_refuses_it_when_too_low() {
    let p = Place::new();
    let args = |m: &'static str| -> Vec<String> {
        let mut v: Vec<String> = ["train"].iter().chain(SMALL).map(|s| s.to_string()).collect();
        v.extend(["--max-memory".into(), m.into(), "--out".into(), "run".into()]);
        v
    };
    let a = args("64M");
    p.ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(p.path().join("run/model.bin").is_file());
    let p = Place::new();
    let a = args("2M");
    p.refused(
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        &["over the memory budget", "--max-memory 2.0 MiB"],
    );
    // A budget that is not a size is a usage error (exit 2), nothing created.
    let out = p.run(&["train", "--max-memory", "lots", "--out", "run"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!p.path().join("run").exists());
}

#[test]
fn budget_eval_and_export() {
    let p = Place::new();
    let run = small_run(&p, "earlier");
    let w = run.to_str().unwrap();
    // A pass larger than the test set is the test set: it fits.
    let out = p.ok(&["eval", "--weights", w, "--batch", "1000000000000", "--test", "60", "--limit", "360"]);
    assert!(out.contains("of 60 test examples"), "{out}");
    p.refused(&["eval", "--weights", w, "--max-memory", "1K"], &["--weights", "budget"]);
    // The data fits in 10 MiB, a pass over the 1,000 test images does not.
    p.refused(
        &["eval", "--weights", w, "--batch", "1000000000000", "--max-memory", "10M"],
        &["--batch 1000000000000 (1000 rows used)", "budget"],
    );
    p.refused(
        &["export", "--weights", w, "--format", "rust", "--max-memory", "300K", "--out", "x.rs"],
        &["--format rust", "budget"],
    );
}

#[test]
fn budget_experiments() {
    let cases: &[(&[&str], &[&str])] = &[
        (&["optimizers-2d", "--steps", "1000000000"], &["--steps 1000000000"]),
        (&["activations", "--width", "100000"], &["--width 100000"]),
        (&["activations", "--samples", "100000000"], &["--samples 100000000"]),
        (&["activations", "--bins", "1000000000"], &["--bins 1000000000"]),
        (&["optimizers-mnist", "--batch", "1000000000000"], &["--batch 1000000000000"]),
        (&["optimizers-mnist", "--iters", "100000000000"], &["--iters 100000000000"]),
        (&["optimizers-mnist", "--hidden", "1000000000000"], &["--hidden 1000000000000"]),
        (&["init-mnist", "--batch", "1000000000000"], &["--batch 1000000000000"]),
        (&["batchnorm", "--hidden", "100000000"], &["--hidden 100000000"]),
        (&["batchnorm", "--epochs", "10000000000"], &["--epochs 10000000000"]),
        (&["overfit", "--epochs", "100000000000"], &["--epochs 100000000000"]),
        (&["overfit", "--batch", "10000000000"], &["--batch 10000000000"]),
        (&["dropout", "--hidden", "1000000"], &["--hidden 1000000"]),
        (&["hpsearch", "--hidden", "1000000"], &["--hidden 1000000"]),
        (&["hpsearch", "--batch", "1000000000000"], &["--batch 1000000000000"]),
        (&["hpsearch", "--trials", "100000000000"], &["--trials 100000000000"]),
    ];
    let p = Place::new();
    small_run(&p, "earlier");
    for (args, needles) in cases {
        let mut a = vec!["experiment"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["--out", "exp"]);
        let mut n = needles.to_vec();
        n.extend_from_slice(&["bytes", "budget"]);
        p.refused(&a, &n);
    }
    // `all` checks every experiment before the first starts; `--max-memory` is global.
    p.refused(&["experiment", "all", "--out", "exp", "--max-memory", "4M"], &["budget"]);
    p.refused(
        &["experiment", "--max-memory", "16K", "optimizers-2d", "--out", "exp"],
        &["--steps 30", "budget"],
    );
}

#[test]
fn budget_resume_csv_and_bench() {
    let p = Place::new();
    let run = p.arg("run");
    p.ok(&[&["train"], SMALL, &["--max-steps", "5", "--out", &run]].concat());
    assert!(p.path().join("run/checkpoint.bin").is_file());
    p.refused(&["train", "--resume", &run, "--max-memory", "1K"], &["--resume", "checkpoint.bin", "budget"]);
    p.ok(&["train", "--resume", &run, "--max-memory", "256M", "-q"]);
    assert!(p.path().join("run/model.bin").is_file());

    // A CSV's values are charged from its first row and its line count before they are stored.
    let mut csv = String::new();
    for i in 0..2000 {
        csv.push_str(&(i % 10).to_string());
        for j in 0..784 {
            csv.push_str(if (i + j) % 7 == 0 { ",255" } else { ",0" });
        }
        csv.push('\n');
    }
    std::fs::write(p.path().join("big.csv"), &csv).unwrap();
    p.refused(
        &["train", "--csv", "big.csv", "--layers", "784,8,10", "--max-memory", "8M", "-q", "--out", "csvrun"],
        &["big.csv", "2000 rows of 785 fields", "budget"],
    );

    let out = p.run(&["bench", "tiny", "--check", "--max-memory", "1K"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bench tiny"));
    p.ok(&["bench", "tiny", "--check", "--max-memory", "1M"]);
}

// ----- overflow_: sizes that do not fit in usize (the core's checked planner) -------------------
// Widths whose products, or a batch whose tape (in `plan`, which has no data to clamp it to), overflow 64-bit sizes: before the fix `plan`
// printed a wrapped total ("512 bytes") and `train` panicked on "capacity overflow". Each is
// refused with the setting named, before any data is read or anything is created.

/// Two widths of 2³² − 1: the weight between them alone is about 2⁶⁴ floats.
const HUGE_LAYERS: &str = "784,4294967295,4294967295,10";
const MAX_BATCH: &str = "18446744073709551615";

#[test]
fn overflow_plan_refuses_layers_whose_sizes_overflow() {
    let p = Place::new();
    p.refused(&["plan", "--layers", HUGE_LAYERS, "--batch", MAX_BATCH], &["--layers", HUGE_LAYERS, "64-bit"]);
    p.refused(&["plan", "--layers", HUGE_LAYERS], &["--layers", HUGE_LAYERS]);
}

#[test]
fn overflow_plan_refuses_a_batch_whose_tape_overflows() {
    let p = Place::new();
    p.refused(&["plan", "--layers", "784,100,10", "--batch", MAX_BATCH], &["--batch", MAX_BATCH, "tape"]);
    // Fits at batch 1, not at 2³² − 1 rows of a 2³²-wide layer.
    p.refused(&["plan", "--layers", "784,4294967295,10", "--batch", "4294967295"], &["--batch 4294967295"]);
    // About 2⁶³ parameter floats fit in usize, their bytes do not.
    let w = "1,4294967295,2147483648,1";
    p.refused(&["plan", "--layers", w, "--optimizer", "sgd"], &["--layers", w, "bytes"]);
    assert!(p.ok(&["plan", "--layers", "784,100,10", "--batch", "8"]).contains("total"));
}

#[test]
fn overflow_train_refuses_before_touching_an_earlier_run() {
    let p = Place::new();
    let run = small_run(&p, "run");
    let out = run.to_str().unwrap();
    let fresh = p.arg("fresh");
    for out in [out, fresh.as_str()] {
        p.refused(&["train", "--layers", HUGE_LAYERS, "--out", out, "-q"], &["--layers", HUGE_LAYERS]);
    }
}

#[test]
fn overflow_eval_refuses_a_batch_or_a_weights_file_whose_sizes_overflow() {
    let p = Place::new();
    let run = small_run(&p, "run");
    let weights = run.join("model.bin");
    let w = weights.to_str().unwrap();
    // A batch larger than the data is the whole data (see budget_train_huge_batch_…).
    assert!(p.ok(&["eval", "--weights", w, "--batch", MAX_BATCH, "--limit", "50"]).contains("accuracy"));
    // A well-formed weights file (header, no floats, checksum) that describes an impossible model.
    let desc = staticgrad::weights::ModelDesc::new(&[784, u32::MAX, u32::MAX, 10], 0, 0, 0.0).unwrap();
    let mut bytes = vec![0u8; staticgrad::weights::encoded_len(4, 0, 0)];
    staticgrad::weights::encode(&desc, &[], &[], &mut bytes).unwrap();
    let huge = p.path().join("huge.bin");
    std::fs::write(&huge, &bytes).unwrap();
    p.refused(&["eval", "--weights", huge.to_str().unwrap()], &["huge.bin", "64-bit"]);
}
