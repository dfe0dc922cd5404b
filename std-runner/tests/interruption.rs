//! Divergence, Ctrl-C and `kill -9` against the `staticgrad` binary (issue 9): no lost work.
//!
//! * a non-finite loss stops `train` with exit code 3, a message naming the step and the last good
//!   checkpoint, and that checkpoint kept on disk;
//! * SIGINT stops `train` at a step boundary with a checkpoint saved (exit code 130), and
//!   `--resume` continues from it;
//! * SIGKILL at random moments (24 times) always leaves a checkpoint that loads and resumes —
//!   never a torn one.

use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro128PlusPlus;
use staticgrad_runner::checkpoint::Checkpoint;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_staticgrad");

/// 60 examples, 4 features, 3 classes, features multiplied by `scale`.
fn write_csv(path: &Path, scale: f64) {
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(1);
    let mut s = String::new();
    for i in 0..60 {
        let c = i % 3;
        s += &c.to_string();
        for _ in 0..4 {
            let u = (rng.next_u32() >> 8) as f64 / (1u32 << 24) as f64;
            s += &format!(",{}", (u + c as f64) * scale);
        }
        s += "\n";
    }
    std::fs::write(path, s).unwrap();
}

fn train_args(csv: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("train").arg("--csv").arg(csv).arg("--out").arg(out);
    c.args(["--layers", "4,8,3", "--batch", "8", "--quiet"]).args(extra);
    c
}

fn run(mut c: Command) -> Output {
    c.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A checkpoint that loads, with counters and floats that agree and are finite.
fn load_ok(dir: &Path) -> Checkpoint {
    let ck = Checkpoint::load(dir)
        .unwrap_or_else(|e| panic!("checkpoint in {} does not load: {e}", dir.display()));
    assert_eq!(ck.meta.steps.len() as u64, ck.meta.step, "metrics and step counter agree");
    assert!(ck.params.iter().chain(&ck.state).all(|v| v.is_finite()));
    ck
}

#[test]
fn divergence_stops_with_code_3_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("big.csv");
    write_csv(&csv, 1e17);
    let out = dir.path().join("run");
    let o = run(train_args(
        &csv,
        &out,
        &[
            "--csv-scale",
            "1",
            "--optimizer",
            "sgd",
            "--lr",
            "1e30",
            "--epochs",
            "50",
            "--checkpoint-every",
            "1",
        ],
    ));
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{e}");
    assert_eq!(e.lines().count(), 1, "one line: {e}");
    // "training diverged: non-finite loss at step N (...); last good checkpoint: <file> (step N-1)"
    let step: u64 = e.split("at step ").nth(1).and_then(|r| r.split(' ').next()).unwrap().parse().unwrap();
    let file = out.join("checkpoint.bin");
    assert!(e.contains("training diverged: non-finite"), "{e}");
    assert!(e.contains(&format!("last good checkpoint: {} (step {})", file.display(), step - 1)), "{e}");
    let ck = load_ok(&out);
    assert_eq!(ck.meta.step, step - 1);
}

#[test]
fn divergence_before_any_checkpoint_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("big.csv");
    write_csv(&csv, 1e17);
    let out = dir.path().join("run");
    let o = run(train_args(&csv, &out, &["--csv-scale", "1", "--optimizer", "sgd", "--lr", "1e30"]));
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{e}");
    assert!(e.contains("no checkpoint was written"), "{e}");
    assert!(!out.exists(), "a failed run that saved nothing leaves no folder");
}

/// Waits (up to 20 s) for the output folder: the command creates it right before it installs its
/// Ctrl-C handler, so a SIGINT sent after this is handled, even on a slow machine.
fn wait_for(dir: &Path) {
    for _ in 0..400 {
        if dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{} never appeared", dir.display());
}

fn spawn(mut c: Command) -> Child {
    c.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
}

#[test]
fn sigint_saves_a_checkpoint_and_resume_continues() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("d.csv");
    write_csv(&csv, 1.0);
    let out = dir.path().join("run");
    let child = spawn(train_args(&csv, &out, &["--epochs", "100000"]));
    // Let it train a little (no periodic checkpoints: only the interrupt writes one).
    wait_for(&out);
    std::thread::sleep(Duration::from_millis(500));
    let st = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(st.success());
    let o = child.wait_with_output().unwrap();
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(130), "{e}");
    assert!(e.contains("interrupted at step"), "{e}");
    let ck = load_ok(&out);
    assert!(e.contains(&format!("interrupted at step {};", ck.meta.step)), "{e}");
    assert!(e.contains("--resume"), "{e}");

    let target = ck.meta.step + 5;
    let mut c = Command::new(BIN);
    c.arg("train").arg("--resume").arg(&out).args(["--quiet", "--max-steps", &target.to_string()]);
    let o = run(c);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let after = load_ok(&out);
    assert_eq!(after.meta.step, target);
    assert_eq!(after.meta.steps[..ck.meta.steps.len()], ck.meta.steps[..], "history kept");
}

#[test]
fn sigkill_at_random_moments_leaves_a_checkpoint_that_loads_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("d.csv");
    write_csv(&csv, 1.0);
    let out = dir.path().join("run");
    let file = out.join("checkpoint.bin");
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(2026);
    let (mut kills, mut loaded, mut resumed, mut last_step) = (0, 0, 0, 0u64);
    for round in 0..24 {
        // Train with a checkpoint every step (so kills often land inside a write): from scratch
        // until a checkpoint exists, then by resuming it.
        let c = if file.exists() {
            let mut c = Command::new(BIN);
            c.arg("train").arg("--resume").arg(&out).arg("--quiet");
            c
        } else {
            train_args(&csv, &out, &["--epochs", "100000", "--checkpoint-every", "1"])
        };
        let mut child = spawn(c);
        let delay = 30 + u64::from(rng.next_u32() % 400);
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap(); // SIGKILL
        let st = child.wait().unwrap();
        kills += 1;
        if !file.exists() {
            eprintln!("round {round}: killed after {delay} ms ({st}), no checkpoint yet");
            continue;
        }
        // Whatever was on disk at the kill: the previous or the new checkpoint, whole.
        let ck = load_ok(&out);
        loaded += 1;
        assert!(ck.meta.step >= last_step, "a checkpoint went back in time");
        // ... and it resumes: one more step, to completion.
        let target = ck.meta.step + 1;
        let mut c = Command::new(BIN);
        c.arg("train").arg("--resume").arg(&out).args(["--quiet", "--max-steps", &target.to_string()]);
        let o = run(c);
        assert_eq!(o.status.code(), Some(0), "resume from step {}: {}", ck.meta.step, stderr(&o));
        let after = load_ok(&out);
        assert_eq!(after.meta.step, target);
        resumed += 1;
        last_step = target;
        eprintln!(
            "round {round}: killed after {delay} ms at checkpoint step {}, resumed to {target}",
            ck.meta.step
        );
    }
    eprintln!(
        "SIGKILL: {kills} kills, {loaded} checkpoints loaded, {resumed} resumed, final step {last_step}"
    );
    assert!(kills >= 20 && loaded >= 20 && resumed >= 20, "{kills} kills, {loaded} loads, {resumed} resumes");
}

#[test]
fn a_corrupted_or_truncated_checkpoint_is_refused_not_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("d.csv");
    write_csv(&csv, 1.0);
    let out = dir.path().join("run");
    let o = run(train_args(&csv, &out, &["--epochs", "1", "--max-steps", "3"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let file = out.join("checkpoint.bin");
    let good = std::fs::read(&file).unwrap();
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x10;
    for (what, bytes) in [("flipped bit", flipped), ("truncated", good[..good.len() - 7].to_vec())] {
        std::fs::write(&file, &bytes).unwrap();
        let mut c = Command::new(BIN);
        c.arg("train").arg("--resume").arg(&out).arg("--quiet");
        let o = run(c);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{what}: {e}");
        assert!(e.contains("checksum mismatch"), "{what}: {e}");
        assert_eq!(std::fs::read(&file).unwrap(), bytes, "{what}: a refused checkpoint is left as it was");
    }
}

#[test]
fn sigint_during_hpsearch_saves_the_finished_trials() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hp");
    let mut c = Command::new(BIN);
    c.args([
        "experiment",
        "hpsearch",
        "--trials",
        "400",
        "--epochs",
        "5",
        "--samples",
        "200",
        "--threads",
        "1",
    ]);
    c.arg("--out").arg(&out);
    let child = spawn(c);
    wait_for(&out);
    std::thread::sleep(Duration::from_millis(1000));
    let st = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(st.success());
    let o = child.wait_with_output().unwrap();
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(130), "{e}");
    let file = out.join("trials.jsonl");
    let trials = staticgrad_runner::experiments::hpsearch::read_jsonl(std::slice::from_ref(&file)).unwrap();
    assert!(!trials.is_empty() && trials.len() < 400, "{} trials", trials.len());
    assert!(e.contains(&format!("{} of 400 trials finished", trials.len())), "{e}");
    let mut idx: Vec<usize> = trials.iter().map(|t| t.trial).collect();
    idx.dedup();
    assert_eq!(idx.len(), trials.len(), "each finished trial once, in order");
}
