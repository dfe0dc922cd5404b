//! The hpsearch job-array examples (`examples/slurm/hpsearch.sbatch`,
//! `examples/k8s/hpsearch-indexed-job.yaml`) run locally with the scheduler's variables set, one
//! task after another: the merge of their shards equals the unsharded search, file for file. And
//! a task killed with SIGKILL (a preemption) resumes from its `trials.done.jsonl`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_staticgrad");
/// A small search: 8 trials of 100 images, 2 evaluations.
const SMALL: &[&str] = &["--trials", "8", "--epochs", "2", "--samples", "100", "--batch", "20"];

fn example(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `PATH` with the folder of the `staticgrad` under test first, as the scripts call it by name.
fn path_with_bin() -> String {
    let dir = Path::new(BIN).parent().unwrap();
    format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default())
}

/// A command with none of the scheduler's variables of the machine running the tests.
fn clean(program: &str) -> Command {
    let mut c = Command::new(program);
    for v in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_MIN",
        "SLURM_ARRAY_TASK_MAX",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_STEP",
        "JOB_COMPLETION_INDEX",
        "STATICGRAD_SHARDS",
    ] {
        c.env_remove(v);
    }
    c.env("PATH", path_with_bin());
    c
}

fn ok(o: Output, what: &str) -> String {
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{what}: exit {:?}, stderr: {e}", o.status);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The unsharded search and the merge of `shards` agree on every trial and on the ranking.
fn merge_equals_unsharded(dir: &Path, shards: &[PathBuf]) {
    let mut c = clean(BIN);
    c.args(["experiment", "hpsearch", "--no-scheduler-env", "--out"]).arg(dir.join("whole")).args(SMALL);
    ok(c.output().unwrap(), "unsharded");
    let mut c = clean(BIN);
    c.args(["experiment", "hpsearch", "merge", "--out"]).arg(dir.join("merged")).args(shards);
    ok(c.output().unwrap(), "merge");
    for f in ["trials.jsonl", "trials.csv"] {
        let a = std::fs::read_to_string(dir.join("whole").join(f)).unwrap();
        let b = std::fs::read_to_string(dir.join("merged").join(f)).unwrap();
        assert_eq!(a, b, "{f}");
    }
}

#[test]
fn slurm_array_of_the_example_merges_to_the_unsharded_search() {
    let script = example("slurm/hpsearch.sbatch");
    let array = script.lines().find_map(|l| l.strip_prefix("#SBATCH --array=")).expect("an --array line");
    let (lo, hi) = array.split_once('-').expect("LO-HI");
    let (lo, hi): (usize, usize) = (lo.parse().unwrap(), hi.parse().unwrap());
    assert_eq!(lo, 1, "the example shows a 1-based array");
    let dir = tempfile::tempdir().unwrap();
    let mut shards = Vec::new();
    for id in lo..=hi {
        let mut c = clean("bash");
        c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/slurm/hpsearch.sbatch")).args(SMALL);
        c.env("HPSEARCH_OUT", dir.path().join("runs"))
            .env("SLURM_ARRAY_TASK_ID", id.to_string())
            .env("SLURM_ARRAY_TASK_MIN", lo.to_string())
            .env("SLURM_ARRAY_TASK_MAX", hi.to_string())
            .env("SLURM_ARRAY_TASK_COUNT", (hi - lo + 1).to_string())
            .env("SLURM_CPUS_PER_TASK", "1");
        let out = ok(c.output().unwrap(), &format!("task {id}"));
        assert!(out.contains(&format!("shard {}/{}", id - lo, hi - lo + 1)), "{out}");
        let f = dir.path().join(format!("runs/shard-{id}/trials.jsonl"));
        let t = staticgrad_runner::experiments::hpsearch::read_jsonl(std::slice::from_ref(&f)).unwrap();
        let n = hi - lo + 1;
        assert!(t.iter().all(|t| t.trial % n == id - lo), "task {id} ran another task's trial");
        shards.push(f);
    }
    merge_equals_unsharded(dir.path(), &shards);
}

#[test]
fn kubernetes_indexed_job_of_the_example_merges_to_the_unsharded_search() {
    let yaml = example("k8s/hpsearch-indexed-job.yaml");
    let completions: usize = yaml
        .lines()
        .find_map(|l| l.trim().strip_prefix("completions:"))
        .expect("completions")
        .trim()
        .parse()
        .unwrap();
    let cmd = yaml
        .lines()
        .find_map(|l| l.trim().strip_prefix("- exec staticgrad"))
        .map(|rest| format!("exec staticgrad{rest}"))
        .expect("the container's command");
    let shards_env = yaml.lines().skip_while(|l| !l.contains("name: STATICGRAD_SHARDS")).nth(1).unwrap();
    let shards_env = shards_env.trim().trim_start_matches("value:").trim().trim_matches('"');
    assert_eq!(shards_env, completions.to_string(), "STATICGRAD_SHARDS equals completions");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("runs");
    let cmd = cmd.replace("/runs", &root.display().to_string()).replace("--threads 4", "--threads 1");
    let mut shards = Vec::new();
    for k in 0..completions {
        let mut c = clean("sh");
        c.arg("-c").arg(format!("{cmd} {}", SMALL.join(" ")));
        c.env("JOB_COMPLETION_INDEX", k.to_string()).env("STATICGRAD_SHARDS", shards_env);
        let out = ok(c.output().unwrap(), &format!("pod {k}"));
        assert!(out.contains(&format!("shard {k}/{completions}")), "{out}");
        shards.push(root.join(format!("hpsearch/shard-{k}/trials.jsonl")));
    }
    merge_equals_unsharded(dir.path(), &shards);
}

#[test]
fn a_killed_shard_resumes_from_its_finished_trials() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("shard");
    let args = ["--trials", "60", "--epochs", "3", "--samples", "100", "--batch", "20", "--threads", "1"];
    let shard = |c: &mut Command| {
        c.args(["experiment", "hpsearch", "--resume", "--out"]).arg(&out).args(args);
        c.env("SLURM_ARRAY_TASK_ID", "2").env("SLURM_ARRAY_TASK_MIN", "1").env("SLURM_ARRAY_TASK_COUNT", "2");
    };
    let mut c = clean(BIN);
    shard(&mut c);
    let mut child = c.stdout(std::process::Stdio::null()).spawn().unwrap();
    let log = out.join("trials.done.jsonl");
    let lines = |p: &Path| std::fs::read_to_string(p).map_or(0, |s| s.lines().count());
    let t0 = std::time::Instant::now();
    while lines(&log) < 2 {
        assert!(t0.elapsed() < Duration::from_secs(120), "no trial finished");
        assert!(child.try_wait().unwrap().is_none(), "the shard ended before it could be killed");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A preemption: SIGKILL, no chance to save anything.
    child.kill().unwrap();
    child.wait().unwrap();
    let before = staticgrad_runner::experiments::hpsearch::read_jsonl(std::slice::from_ref(&log)).unwrap();
    assert!(before.len() >= 2 && before.len() < 30, "{} trials logged", before.len());
    // The requeued task: the same command.
    let mut c = clean(BIN);
    shard(&mut c);
    let o = ok(c.output().unwrap(), "requeued");
    assert!(o.contains(&format!("{} finished trials kept", before.len())), "{o}");
    let file = out.join("trials.jsonl");
    let after = staticgrad_runner::experiments::hpsearch::read_jsonl(std::slice::from_ref(&file)).unwrap();
    assert_eq!(after.iter().map(|t| t.trial).collect::<Vec<_>>(), (1..60).step_by(2).collect::<Vec<_>>());
    for t in &before {
        assert_eq!(after.iter().find(|a| a.trial == t.trial), Some(t), "trial {} kept as it was", t.trial);
    }
    // And the resumed shard equals one that was never killed.
    let mut c = clean(BIN);
    c.args(["experiment", "hpsearch", "--shard", "1/2", "--out"]).arg(dir.path().join("whole")).args(args);
    ok(c.output().unwrap(), "never killed");
    let whole = std::fs::read_to_string(dir.path().join("whole/trials.jsonl")).unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), whole);
    assert!(!log.exists(), "the log goes once the shard is written");
}

#[test]
fn scheduler_variables_that_cannot_be_used_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    // (variables, extra flags, a part of the one-line refusal)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);
    let cases: &[Case] = &[
        (
            &[("SLURM_ARRAY_TASK_ID", "9"), ("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_COUNT", "8")],
            &[],
            "out of range",
        ),
        (&[("SLURM_ARRAY_TASK_ID", "x")], &[], "SLURM_ARRAY_TASK_ID=\"x\""),
        (
            &[("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_COUNT", "4"), ("SLURM_ARRAY_TASK_STEP", "2")],
            &[],
            "STEP=2",
        ),
        (&[("JOB_COMPLETION_INDEX", "3")], &[], "--shards N"),
        (&[("JOB_COMPLETION_INDEX", "3"), ("STATICGRAD_SHARDS", "3")], &[], "shard 3 of 3"),
        (&[], &["--shards", "4"], "--shard K/4"),
    ];
    for (env, extra, needle) in cases {
        let mut c = clean(BIN);
        c.current_dir(dir.path()).args(["experiment", "hpsearch"]).args(SMALL).args(*extra);
        for (k, v) in *env {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{env:?}: {e}");
        assert_eq!(e.trim_end().lines().count(), 1, "{env:?}: {e}");
        assert!(e.contains(needle), "{env:?}: {needle:?} not in {e}");
        assert!(!dir.path().join("runs").exists(), "{env:?}: created files");
    }
}
