//! See main.rs: this class of issue 14. Earlier results are never lost or mixed: a run into an
//! existing run folder is refused unless `--force`; `--force` stages the new run and swaps it in
//! only when it has succeeded; a folder in use is locked and a second run names the holder;
//! `export` never replaces a special file by a rename.

#[allow(unused_imports)]
use super::*;
use std::process::{Child, Stdio};
use std::time::Duration;

/// `train SMALL… --out <rel> extra…`.
fn train<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    [&["train"], SMALL, &["--out", out], extra].concat()
}

fn snapshot_of(dir: &Path) -> BTreeMap<PathBuf, Entry> {
    let mut m = BTreeMap::new();
    walk(dir, dir, &mut m);
    m
}

#[test]
fn a_second_run_into_a_run_folder_is_refused_and_the_first_stays_byte_for_byte() {
    let p = Place::new();
    let run = small_run(&p, "run");
    let out = run.to_str().unwrap();
    p.refused(&train(out, &[]), &[out, "--force"]);
    p.refused(&train(out, &["--seed", "8"]), &[out, "--force"]);
    // Resuming a run into another run's folder is refused the same way.
    let stopped = p.arg("stopped");
    p.ok(&train(&stopped, &["--max-steps", "5"]));
    p.refused(&["train", "--resume", &stopped, "--out", out], &[out, "--force"]);
    // Experiments and hpsearch shards: the same promise.
    p.ok(&["experiment", "optimizers-2d", "--out", "o2d", "--steps", "5"]);
    p.refused(&["experiment", "optimizers-2d", "--out", "o2d", "--steps", "5"], &["o2d", "--force"]);
    let shard =
        ["experiment", "hpsearch", "--trials", "2", "--epochs", "1", "--samples", "50", "--shard", "0/2"];
    p.ok(&[&shard[..], &["--out", "shard0"]].concat());
    p.refused(&[&shard[..], &["--out", "shard0"]].concat(), &["shard0", "--force"]);
    // `experiment all` checks every experiment's folder before the first one starts.
    std::fs::create_dir_all(p.path().join("book/hpsearch")).unwrap();
    std::fs::write(p.path().join("book/hpsearch/trials.jsonl"), b"{}\n").unwrap();
    p.refused(&["experiment", "all", "--out", "book"], &["book/hpsearch", "--force"]);
    // An output path that is a file, not a folder.
    std::fs::write(p.path().join("file"), b"x").unwrap();
    p.refused(&train("file", &[]), &["file", "not a folder"]);
}

#[test]
fn force_replaces_an_earlier_run_only_once_the_new_one_succeeded() {
    let p = Place::new();
    let run = small_run(&p, "run");
    let out = run.to_str().unwrap();
    let first = snapshot_of(&run);
    p.ok(&train(out, &["--force", "--seed", "8"]));
    let second = snapshot_of(&run);
    assert_eq!(first.keys().collect::<Vec<_>>(), second.keys().collect::<Vec<_>>(), "same files");
    assert_ne!(
        first.get(Path::new("model.bin")),
        second.get(Path::new("model.bin")),
        "the new run's weights"
    );
    // Nothing beside it: no staging folder, no earlier copy, no lock file.
    let names: Vec<_> = std::fs::read_dir(p.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("run")]);
    // An experiment with --force (before or after its name) replaces its folder too.
    p.ok(&["experiment", "optimizers-2d", "--out", "o2d", "--steps", "5"]);
    p.ok(&["experiment", "optimizers-2d", "--out", "o2d", "--steps", "6", "--force"]);
    p.ok(&["experiment", "--force", "optimizers-2d", "--out", "o2d", "--steps", "7"]);
    let summary = std::fs::read_to_string(p.path().join("o2d/summary.md")).unwrap();
    assert!(summary.contains('7'), "{summary}");
}

/// 60 CSV rows, 4 features, 3 classes, features far too large: SGD at lr 1e30 diverges at once.
fn diverging_csv(path: &Path) {
    let mut s = String::new();
    for i in 0..60 {
        s += &format!("{},{}e17,{}e17,1e17,2e17\n", i % 3, i % 7, i % 5);
    }
    std::fs::write(path, s).unwrap();
}

#[test]
fn a_failing_force_run_leaves_the_earlier_run_intact() {
    let p = Place::new();
    let csv = p.arg("big.csv");
    diverging_csv(Path::new(&csv));
    let base = ["train", "--csv", &csv, "--csv-scale", "1", "--layers", "4,8,3", "--batch", "8", "-q"];
    let run = p.arg("run");
    p.ok(&[&base[..], &["--epochs", "1", "--lr", "1e-30", "--optimizer", "sgd", "--out", &run]].concat());
    let before = p.snapshot();
    // Diverges (exit 3) after training started in the staging folder: the earlier run is intact
    // and, with no checkpoint to go back to, nothing else is left.
    let o = p.run(&[&base[..], &["--optimizer", "sgd", "--lr", "1e30", "--out", &run, "--force"]].concat());
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(diff(&before, &p.snapshot()), Vec::<String>::new());
    // With a checkpoint the failed run's work stays, in its own folder, named in the message.
    let o = p.run(
        &[
            &base[..],
            &["--optimizer", "sgd", "--lr", "1e30", "--checkpoint-every", "1", "--out", &run, "--force"],
        ]
        .concat(),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    let changes = diff(&before, &p.snapshot());
    assert!(changes.iter().all(|c| c.starts_with("added run.staging-")), "{changes:?}");
    assert!(
        changes.iter().any(|c| c.ends_with("checkpoint.bin") && err.contains(&c["added ".len()..])),
        "{err}"
    );
}

/// Runs `args` in `place` with file writes limited to `bytes` (RLIMIT_FSIZE, SIGXFSZ ignored): a
/// full disk for anything larger, even as root.
#[allow(unsafe_code)] // `pre_exec` sets the limit in the child.
fn run_with_small_disk(place: &Place, args: &[&str], bytes: u64) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_staticgrad"));
    cmd.args(args).current_dir(place.path());
    use std::os::unix::process::CommandExt as _;
    // SAFETY: only async-signal-safe calls (`signal`, `setrlimit`) in the child before exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit { rlim_cur: bytes, rlim_max: bytes };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    cmd.output().unwrap()
}

#[test]
fn a_full_disk_while_writing_the_outputs_loses_nothing() {
    let p = Place::new();
    let run = small_run(&p, "run");
    let out = run.to_str().unwrap();
    let before = p.snapshot();
    // model.bin of 784-16-10 is about 50 KB: the disk is full before it is written.
    for extra in [&["--force"][..], &[]] {
        let dir = if extra.is_empty() { p.arg("fresh") } else { out.to_string() };
        let o = run_with_small_disk(&p, &train(&dir, &[extra, &["--seed", "9"]].concat()), 20_000);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains("model.bin"), "{err}");
        assert_eq!(diff(&before, &p.snapshot()), Vec::<String>::new(), "{extra:?}: {err}");
    }
}

fn spawn(place: &Place, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_staticgrad"))
        .args(args)
        .current_dir(place.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_folder_in_use_is_locked_and_a_second_run_names_the_holder() {
    let p = Place::new();
    let run = p.arg("run");
    let long =
        ["train", "--layers", "784,16,10", "--limit", "360", "--epochs", "100000", "-q", "--out", &run];
    let first = spawn(&p, &long);
    let lock = Path::new(&run).join(".staticgrad.lock");
    let pid = first.id().to_string();
    for _ in 0..400 {
        if std::fs::read_to_string(&lock).is_ok_and(|s| s.trim() == pid) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for args in [
        train(&run, &[]),
        train(&run, &["--force"]),
        vec!["train", "--resume", &run, "-q"],
        vec!["experiment", "optimizers-2d", "--out", &run, "--force"],
    ] {
        let o = p.run(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(&run) && err.contains("in use") && err.contains(&pid), "{args:?}: {err}");
    }
    let st = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(st.success());
    let o = first.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    // Released: the lock file is gone and --resume continues in the folder.
    assert!(!lock.exists());
    let step: u64 =
        err.split("interrupted at step ").nth(1).and_then(|r| r.split(';').next()).unwrap().parse().unwrap();
    p.ok(&["train", "--resume", &run, "--max-steps", &(step + 2).to_string(), "-q"]);
}

#[test]
fn a_killed_run_does_not_block_its_folder() {
    let p = Place::new();
    // What SIGKILL leaves before the first checkpoint: a lock file nobody holds, a temporary file.
    std::fs::create_dir(p.path().join("run")).unwrap();
    std::fs::write(p.path().join("run/.staticgrad.lock"), b"999999\n").unwrap();
    std::fs::write(p.path().join("run/.checkpoint.bin.tmp"), b"torn").unwrap();
    p.ok(&train(&p.arg("run"), &[]));
    assert!(p.path().join("run/model.bin").is_file());
    assert!(!p.path().join("run/.staticgrad.lock").exists());
}

#[test]
fn export_writes_through_a_symlink_and_refuses_special_files() {
    let p = Place::new();
    small_run(&p, "run");
    let mk = Command::new("mkfifo").arg(p.path().join("fifo")).status().unwrap();
    assert!(mk.success());
    let export =
        |out: &str| ["export", "--weights", "run", "--format", "rust", "--out", out].map(String::from);
    let refused = |out: &str, needles: &[&str]| {
        let a = export(out);
        p.refused(&a.iter().map(String::as_str).collect::<Vec<_>>(), needles)
    };
    refused("fifo", &["fifo", "FIFO", "regular file"]);
    std::os::unix::fs::symlink("fifo", p.path().join("to-fifo")).unwrap();
    refused("to-fifo", &["to-fifo", "FIFO"]);
    refused("/dev/null", &["/dev/null", "device"]);
    refused("run", &["run", "folder"]);
    // A symlink to a regular file: the file is replaced, the link stays a link.
    std::fs::write(p.path().join("weights.rs"), b"old").unwrap();
    std::os::unix::fs::symlink("weights.rs", p.path().join("link.rs")).unwrap();
    let a = export("link.rs");
    p.ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let snap = p.snapshot();
    assert_eq!(snap.get(Path::new("link.rs")), Some(&Entry::Symlink(PathBuf::from("weights.rs"))));
    let src = std::fs::read_to_string(p.path().join("weights.rs")).unwrap();
    assert!(src.contains("pub const PARAMS"), "{src}");
}
