//! Hostile input against the `staticgrad` binary (issue 14). Every case runs the binary in a fresh
//! folder under an address-space limit of 1 GiB, so a size that was not checked before allocating
//! aborts the child instead of succeeding on a large machine, and asserts the promise of the README:
//! exit code 2, one stderr line naming the setting or file, nothing new on disk, and an earlier run
//! in the same place intact byte for byte.
//!
//! One file per class of the issue: `sizes.rs` (sizes checked before allocating), `settings.rs`
//! (every setting validated before anything is created), `outputs.rs` (earlier results never lost
//! or mixed), `inputs.rs` (data and file formats).

use std::collections::BTreeMap;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod inputs;
mod outputs;
mod settings;
mod sizes;

/// The address-space limit of every child: far below what an unchecked size asks for, far above
/// what a sensible run needs.
pub const ADDRESS_SPACE: u64 = 1 << 30;

/// A fresh working folder; the binary runs with it as its current directory, so default output
/// folders (`runs/…`) land inside it.
pub struct Place {
    dir: tempfile::TempDir,
}

impl Default for Place {
    fn default() -> Place {
        Place::new()
    }
}

impl Place {
    /// A fresh temporary folder, removed when the `Place` drops.
    pub fn new() -> Place {
        Place { dir: tempfile::tempdir().expect("a temporary folder") }
    }

    /// The folder's path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `self.path().join(rel)` as a string argument.
    pub fn arg(&self, rel: &str) -> String {
        self.path().join(rel).to_str().expect("a UTF-8 temporary path").to_string()
    }

    /// Runs `staticgrad args…` in this folder under the address-space limit.
    #[allow(unsafe_code)] // `pre_exec` sets the limit in the child.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_staticgrad"));
        cmd.args(args).current_dir(self.path()).env_remove("RUST_BACKTRACE");
        // SAFETY: the closure runs in the forked child before exec and only calls `setrlimit`,
        // which is async-signal-safe, on a stack-allocated struct; it allocates nothing.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit { rlim_cur: ADDRESS_SPACE, rlim_max: ADDRESS_SPACE };
                if libc::setrlimit(libc::RLIMIT_AS, &lim) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        cmd.output().expect("the binary starts")
    }

    /// Everything below this folder: path → what it is and, for a file, its bytes.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, Entry> {
        let mut m = BTreeMap::new();
        walk(self.path(), self.path(), &mut m);
        m
    }

    /// Runs `args` and asserts the refusal: exit code 2, exactly one line on stderr containing
    /// every `needle` (case-insensitive), and the folder exactly as it was before.
    pub fn refused(&self, args: &[&str], needles: &[&str]) -> String {
        let before = self.snapshot();
        let out = self.run(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{args:?}: exit {:?}, stderr: {err}", out.status);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: one line, got: {err}");
        for n in needles {
            assert!(err.to_lowercase().contains(&n.to_lowercase()), "{args:?}: {n:?} not in: {err}");
        }
        let after = self.snapshot();
        assert_eq!(diff(&before, &after), Vec::<String>::new(), "{args:?} changed the folder");
        err
    }

    /// Runs `args` and asserts success (exit 0); returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: exit {:?}, stderr: {err}", out.status);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// One path in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A folder.
    Dir,
    /// A regular file and its bytes.
    File(Vec<u8>),
    /// A symbolic link and its target.
    Symlink(PathBuf),
    /// Anything else (FIFO, socket, device), by kind.
    Other(&'static str),
}

fn walk(root: &Path, dir: &Path, m: &mut BTreeMap<PathBuf, Entry>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        let rel = p.strip_prefix(root).unwrap().to_path_buf();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_symlink() {
            m.insert(rel, Entry::Symlink(std::fs::read_link(&p).unwrap_or_default()));
        } else if ft.is_dir() {
            m.insert(rel, Entry::Dir);
            walk(root, &p, m);
        } else if ft.is_file() {
            m.insert(rel, Entry::File(std::fs::read(&p).unwrap_or_default()));
        } else if ft.is_fifo() {
            m.insert(rel, Entry::Other("fifo"));
        } else {
            m.insert(rel, Entry::Other("special"));
        }
    }
}

/// The paths that differ between two snapshots, each with how.
pub fn diff(a: &BTreeMap<PathBuf, Entry>, b: &BTreeMap<PathBuf, Entry>) -> Vec<String> {
    let mut d = Vec::new();
    for (p, e) in a {
        match b.get(p) {
            None => d.push(format!("removed {}", p.display())),
            Some(f) if f != e => d.push(format!("changed {}", p.display())),
            _ => {}
        }
    }
    for p in b.keys().filter(|p| !a.contains_key(*p)) {
        d.push(format!("added {}", p.display()));
    }
    d
}

/// A small, quick training run (784-16-10 on 360 bundled images, 2 epochs).
pub const SMALL: &[&str] =
    &["--layers", "784,16,10", "--limit", "360", "--test", "60", "--batch", "20", "--epochs", "2", "-q"];

/// `train SMALL… --out <place>/rel`, run to completion; returns the run folder.
pub fn small_run(place: &Place, rel: &str) -> PathBuf {
    let out = place.arg(rel);
    place.ok(&[&["train"], SMALL, &["--out", &out]].concat());
    PathBuf::from(out)
}

#[test]
fn the_harness_sees_changes_and_the_limit_holds() {
    let p = Place::new();
    let a = p.snapshot();
    std::fs::write(p.path().join("x"), b"1").unwrap();
    assert_eq!(diff(&a, &p.snapshot()), vec!["added x".to_string()]);
    // The limit is in force in the child: a plain run of the core still fits under it.
    small_run(&p, "run");
    assert!(p.path().join("run/model.bin").is_file());
}
