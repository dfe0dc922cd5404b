//! `--threads N` end to end: `train` with 1, 2 and 3 threads writes byte-identical weights (an
//! MLP with batch norm and dropout, and a small CNN), `eval` gives the same accuracy, `bench
//! --check` the same losses, and `--threads 0` is one line, exit 2. The core's own test
//! (`tests/tests/threads.rs`) covers every workload shape; this one covers the runner's team
//! of spinning workers that `--threads` starts.

use std::path::Path;
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

#[test]
fn any_thread_count_trains_the_same_bytes() {
    let t = tempfile::tempdir().unwrap();
    let models: [&[&str]; 2] = [
        // Odd widths and batch, so chunks end mid-tile.
        &[
            "--layers",
            "784,129,37,10",
            "--batchnorm",
            "--dropout",
            "0.1",
            "--batch",
            "67",
            "--optimizer",
            "adam",
        ],
        &["--model", "convnet", "--batch", "23"],
    ];
    for (m, model) in models.iter().enumerate() {
        // The weights and the accuracy `eval` prints, of the one-thread run.
        let mut first: Option<(Vec<u8>, String)> = None;
        for threads in ["1", "2", "3"] {
            let out = t.path().join(format!("m{m}-t{threads}"));
            let common =
                ["train", "--limit", "600", "--test", "200", "--epochs", "2", "-q", "--threads", threads];
            ok(&[&common[..], model, &["--out", s(&out)]].concat());
            let bytes = std::fs::read(out.join("model.bin")).unwrap();
            let eval =
                ["eval", "-q", "--weights", s(&out), "--limit", "600", "--test", "300", "--threads", threads];
            let acc = ok(&eval);
            match &first {
                None => first = Some((bytes, acc)),
                Some((b, a)) => {
                    assert!(*b == bytes, "model {m}: {threads} threads wrote other weights than 1");
                    assert_eq!(acc, *a, "model {m}: eval with {threads} threads");
                }
            }
        }
    }
}

#[test]
fn bench_check_losses_do_not_depend_on_threads() {
    for w in ["book", "cnn"] {
        let check = |threads: &str| {
            let out = ok(&["bench", w, "--check", "--threads", threads]);
            out.lines().find(|l| l.contains("check_loss0=")).map(str::to_owned).expect("a check line")
        };
        assert_eq!(check("1"), check("2"), "{w}");
    }
}

#[test]
fn zero_threads_is_one_line_exit_2() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    let o = run(&["train", "--limit", "200", "--epochs", "1", "--threads", "0", "--out", s(&out)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("--threads 0"), "{err}");
    assert!(!out.exists());
}
