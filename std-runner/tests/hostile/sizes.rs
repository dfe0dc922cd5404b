//! See main.rs: this class of issue 14.

#[allow(unused_imports)]
use super::*;

// ----- overflow_: sizes that do not fit in usize (the core's checked planner) -------------------
// Widths whose products, or a batch whose tape, overflow 64-bit sizes: before the fix `plan`
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
        p.refused(
            &["train", "--layers", "784,16,10", "--batch", MAX_BATCH, "--limit", "360", "--out", out, "-q"],
            &["--batch", MAX_BATCH],
        );
    }
}

#[test]
fn overflow_eval_refuses_a_batch_or_a_weights_file_whose_sizes_overflow() {
    let p = Place::new();
    let run = small_run(&p, "run");
    let weights = run.join("model.bin");
    let w = weights.to_str().unwrap();
    p.refused(&["eval", "--weights", w, "--batch", MAX_BATCH], &["--batch", MAX_BATCH]);
    // A well-formed weights file (header, no floats, checksum) that describes an impossible model.
    let desc = staticgrad::weights::ModelDesc::new(&[784, u32::MAX, u32::MAX, 10], 0, 0, 0.0).unwrap();
    let mut bytes = vec![0u8; staticgrad::weights::encoded_len(4, 0, 0)];
    staticgrad::weights::encode(&desc, &[], &[], &mut bytes).unwrap();
    let huge = p.path().join("huge.bin");
    std::fs::write(&huge, &bytes).unwrap();
    p.refused(&["eval", "--weights", huge.to_str().unwrap()], &["huge.bin", "64-bit"]);
}
