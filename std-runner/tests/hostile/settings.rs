//! See main.rs: this class of issue 14. Every setting of every subcommand and experiment is
//! checked before anything is created: NaN, ±inf, negative, zero and absurd values are refused
//! with exit code 2 and one line naming the flag and the value; TOML is held to the flags' rules;
//! a list flag given twice is refused, not concatenated.

#[allow(unused_imports)]
use super::*;

/// `head` followed by `extra`.
fn with<'a>(head: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    [head, extra].concat()
}

#[test]
fn hpsearch_ranges_and_threads_are_refused_before_any_file() {
    let p = Place::new();
    let hp = |extra| with(&["experiment", "hpsearch", "--out", "hp"], extra);
    p.refused(&hp(&["--lr-exp", "nan", "nan"]), &["--lr-exp", "nan nan"]);
    p.refused(&hp(&["--lr-exp", "100", "200"]), &["--lr-exp", "100 200"]);
    p.refused(&hp(&["--wd-exp", "40", "50"]), &["--wd-exp", "40 50"]);
    p.refused(&hp(&["--wd-exp", "-2", "-4"]), &["--wd-exp", "-2 -4"]);
    p.refused(&hp(&["--lr-exp", "1", "inf"]), &["--lr-exp", "1 inf"]);
    p.refused(&hp(&["--threads", "100000"]), &["--threads", "100000"]);
    p.refused(&hp(&["--threads", "0"]), &["--threads", "0"]);
    p.refused(&hp(&["--val-frac", "nan"]), &["--val-frac", "nan"]);
    p.refused(&hp(&["--dropout", "0.5", "1"]), &["--dropout", "0.5 1"]);
    p.refused(&hp(&["--dropout", "0.4", "0.1"]), &["--dropout", "0.4 0.1"]);
    p.refused(&hp(&["--batch-sizes", "32,0"]), &["--batch-sizes", "0"]);
    p.refused(&hp(&["--optimizers", "sgd,lion"]), &["--optimizers", "lion", "adam"]);
    p.refused(&hp(&["--layers", "784,0,10"]), &["--layers", "784,0,10"]);
    p.refused(&hp(&["--csv-scale", "0"]), &["--csv-scale", "0"]);
    p.refused(&hp(&["--val-frac", "1"]), &["--val-frac", "1"]);
    p.refused(&hp(&["--trials", "0"]), &["--trials", "0"]);
    p.refused(&hp(&["--narrow-top", "0"]), &["--narrow-top", "0"]);
    // A list flag twice is refused, not joined into four numbers.
    p.refused(&hp(&["--lr-exp", "-6", "-2", "--lr-exp", "-5", "-3"]), &["--lr-exp", "multiple times"]);
}

#[test]
fn experiment_learning_rates_decays_and_counts_are_refused() {
    let p = Place::new();
    let e = |name, extra| with(&with(&["experiment"], &[name]), extra);
    p.refused(&e("init-mnist", &["--lr", "nan"]), &["--lr", "nan"]);
    p.refused(&e("init-mnist", &["--lr", "inf"]), &["--lr", "inf"]);
    p.refused(&e("init-mnist", &["--batch", "0"]), &["--batch", "0"]);
    p.refused(&e("overfit", &["--lambda=-1"]), &["--lambda", "-1"]);
    p.refused(&e("overfit", &["--lambda", "nan"]), &["--lambda", "nan"]);
    p.refused(&e("overfit", &["--lr", "0"]), &["--lr", "0"]);
    p.refused(&e("overfit", &["--epochs", "0"]), &["--epochs", "0"]);
    p.refused(&e("dropout", &["--ratio", "nan"]), &["--ratio", "nan"]);
    p.refused(&e("dropout", &["--lr=-0.5"]), &["--lr", "-0.5"]);
    p.refused(&e("batchnorm", &["--lr", "inf"]), &["--lr", "inf"]);
    p.refused(&e("batchnorm", &["--scales", "0"]), &["--scales", "0"]);
    p.refused(&e("activations", &["--repeats", "0"]), &["--repeats", "0"]);
    p.refused(&e("optimizers-2d", &["--steps", "0"]), &["--steps", "0"]);
    p.refused(&e("optimizers-mnist", &["--iters", "0"]), &["--iters", "0"]);
    p.refused(&e("optimizers-mnist", &["--rules", "sgd,nosuch"]), &["--rules", "nosuch"]);
    p.refused(&e("optimizers-mnist", &["--rules", "sgd", "--rules", "adam"]), &["--rules", "multiple times"]);
    p.refused(
        &e("optimizers-mnist", &["--test", "18446744073709551615"]),
        &["--test", "18446744073709551615"],
    );
}

#[test]
fn train_plan_and_eval_settings_are_refused() {
    let p = Place::new();
    fn t<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        with(&["train", "--out", "run"], extra)
    }
    for (flag, v) in [
        ("--lr", "nan"),
        ("--lr", "inf"),
        ("--lr", "0"),
        ("--weight-decay", "nan"),
        ("--weight-decay", "-1"),
        ("--weight-decay", "inf"),
        ("--dropout", "nan"),
        ("--dropout", "-0.1"),
        ("--csv-scale", "nan"),
        ("--csv-scale", "0"),
        ("--batch", "0"),
        ("--epochs", "0"),
        ("--max-steps", "0"),
    ] {
        p.refused(&t(&[flag, v]), &[flag, v]);
    }
    p.refused(&t(&["--lr=-inf"]), &["--lr", "-inf"]);
    p.refused(&t(&["--val", "1.5"]), &["--val", "1.5"]);
    // The step total overflows (or exceeds what the schedule counts): refused, not 0 steps.
    p.refused(&t(&["--epochs", "1152921504606846976"]), &["--epochs", "1152921504606846976"]);
    p.refused(&t(&["--epochs", "2000000000", "--limit", "360"]), &["--epochs", "2000000000", "steps"]);
    // `--layers` twice is refused, not concatenated into 784,16,10,784,16,10.
    p.refused(&t(&["--layers", "784,16,10", "--layers", "784,16,10"]), &["--layers", "multiple times"]);
    p.refused(&["plan", "--layers", "784,10", "--layers", "16"], &["--layers", "multiple times"]);
    // Layer strings: one line naming the token; a model the core refuses names the string.
    for (layers, token) in [
        ("conv30,relu,dense10", "'conv30'"),
        ("conv8x3q1,dense10", "'conv8x3q1'"),
        ("conv8x3,swish,dense10", "'swish'"),
        ("conv8x3,maxpool2p1,dense10", "'maxpool2p1'"),
        ("dense10,in1x28x28", "'in1x28x28'"),
        ("conv8x3,,dense10", "''"),
        ("conv8x3,dense16,maxpool2,dense10", "image layer on flat features"),
        ("conv8x31,dense10", "conv2d window"),
        ("784,dense10", "'784'"),
    ] {
        p.refused(&t(&["--layers", layers]), &["--layers", layers, token]);
    }
    p.refused(&t(&["--model", "resnet"]), &["--model", "resnet", "convnet"]);
    p.refused(&t(&["--model", "convnet", "--layers", "784,10"]), &["--model", "--layers"]);
    p.refused(&["plan", "--dropout", "nan"], &["--dropout", "nan"]);
    p.refused(&["plan", "--batch", "0"], &["--batch", "0"]);
}

#[test]
fn toml_values_are_held_to_the_flags_rules() {
    let p = Place::new();
    for (line, needles) in [
        ("val = -3", ["--val", "-3"]),
        ("test = 1.5", ["--test", "1.5"]),
        ("lr = nan", ["--lr", "nan"]),
        ("weight_decay = -inf", ["--weight-decay", "-inf"]),
        ("dropout = -0.5", ["--dropout", "-0.5"]),
        ("max_steps = 0", ["--max-steps", "0"]),
        ("net = \"conv8x3,relu,blur,dense10\"", ["--layers", "'blur'"]),
    ] {
        std::fs::write(p.path().join("run.toml"), line).unwrap();
        p.refused(&["train", "--config", "run.toml", "--out", "run"], &needles);
    }
}

#[test]
fn eval_batch_zero_and_a_resume_that_cannot_advance_are_refused() {
    let p = Place::new();
    small_run(&p, "run");
    p.refused(&["eval", "--weights", "run", "--batch", "0"], &["--batch", "0"]);
    // --max-steps stops a run with a checkpoint; the advised --resume then works.
    let stopped = p.arg("stopped");
    let out = p.ok(&[&["train"], SMALL, &["--max-steps", "5", "--out", &stopped]].concat());
    assert!(out.contains("--resume"), "{out}");
    // A total at or below the checkpoint's step has nothing to do: refused, folder untouched.
    p.refused(&["train", "--resume", &stopped, "--max-steps", "5"], &["--max-steps 5", "step 5"]);
    p.ok(&["train", "--resume", &stopped, "-q"]);
}

/// One line of a `trials.jsonl`: trial `i` of a `trials`-trial search with `seed`.
fn trial_line(i: u64, trials: usize, seed: u64, val: f64) -> String {
    format!(
        "{{\"trial\":{i},\"lr\":0.005,\"weight_decay\":1e-6,\"val_acc\":{val},\"train_acc\":0.5,\"val_curve\":[{val}],\
         \"train_curve\":[0.5],\"search\":{{\"seed\":{seed},\"trials\":{trials},\"samples\":100,\"val_frac\":0.2,\
         \"epochs\":1,\"batch\":20,\"hidden\":1,\"lr_exp\":[-6.0,-2.0],\"wd_exp\":[-8.0,-4.0],\"stage\":\"broad\"}}}}\n"
    )
}

#[test]
fn hpsearch_merge_refuses_missing_out_of_range_and_mixed_trials() {
    let p = Place::new();
    let write = |name: &str, lines: &[String]| std::fs::write(p.path().join(name), lines.concat()).unwrap();
    let merge = |files, extra| {
        with(&with(&with(&["experiment", "hpsearch", "merge"], files), &["--out", "merged"]), extra)
    };
    // Trials 0-2 of a 6-trial search: three missing.
    write("a.jsonl", &(0..3).map(|i| trial_line(i, 6, 0, 0.5)).collect::<Vec<_>>());
    p.refused(&merge(&["a.jsonl"], &[]), &["3 of 6 trials missing", "3, 4, 5", "--allow-incomplete"]);
    // A trial index of 10^15 in a 6-trial search.
    write("b.jsonl", &[trial_line(1_000_000_000_000_000, 6, 0, 0.5)]);
    p.refused(&merge(&["a.jsonl", "b.jsonl"], &[]), &["trial index 1000000000000000", "6 trials"]);
    // Accuracies outside [0, 1].
    write("c.jsonl", &[trial_line(3, 6, 0, -0.5)]);
    p.refused(&merge(&["a.jsonl", "c.jsonl"], &[]), &["trial 3", "-0.5", "[0, 1]"]);
    write("c.jsonl", &[trial_line(3, 6, 0, 1.5)]);
    p.refused(&merge(&["a.jsonl", "c.jsonl"], &[]), &["trial 3", "1.5"]);
    // Shards of different searches: one readable line naming the setting, no `Debug` dump.
    write("d.jsonl", &(3..6).map(|i| trial_line(i, 6, 1, 0.5)).collect::<Vec<_>>());
    let err = p.refused(&merge(&["a.jsonl", "d.jsonl"], &[]), &["different search", "seed 0 vs 1"]);
    assert!(!err.contains("Search {"), "{err}");
    // --allow-incomplete merges what there is and says what is missing.
    p.ok(&merge(&["a.jsonl"], &["--allow-incomplete"]));
    let summary = std::fs::read_to_string(p.path().join("merged/summary.md")).unwrap();
    assert!(summary.contains("missing trials 3, 4, 5"), "{summary}");
}
