//! Output folders that never lose or mix runs (issue 14).
//!
//! * A new run goes into a folder that does not exist or is empty; an existing non-empty folder
//!   is refused (exit code 2) unless `--force` is given.
//! * With `--force` the new run is written into a staging folder next to it
//!   (`<name>.staging-<pid>`) and swapped into place only when it has succeeded: a failing run
//!   leaves the earlier one exactly as it was.
//! * A folder in use is locked (`flock` on `<folder>/.staticgrad.lock`, which holds the pid): a
//!   second run into it is refused (exit code 2) naming the holder. The kernel drops the lock when
//!   the process dies, so a killed run never blocks the next one.
//! * `--resume DIR` writes into DIR itself, holding its lock.

use crate::check::Invalid;
use std::fs::File;
use std::io::{self, Write as _};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Name of the lock file inside a folder in use.
pub const LOCK_FILE: &str = ".staticgrad.lock";

/// How a command may use its output folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A new run: the folder must not exist or be empty.
    New,
    /// A new run that replaces an existing folder once it has succeeded (`--force`).
    Replace,
    /// Continue the run already in the folder (`--resume`).
    InPlace,
}

/// True for what a killed run may leave behind and holds no result: the lock file and the
/// temporary files of atomic writes (`.name.tmp`).
fn leftover(name: &str) -> bool {
    name == LOCK_FILE || (name.starts_with('.') && name.ends_with(".tmp"))
}

/// `Some(true)` if `dir` exists and holds something besides leftovers, `Some(false)` if it exists
/// and holds nothing, `None` if it does not exist.
fn holds_results(dir: &Path) -> Result<Option<bool>, Invalid> {
    let shown = dir.display();
    // A symlink to a folder counts as that folder.
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Invalid(format!("{shown}: {e}"))),
        Ok(m) if !m.is_dir() => {
            return Err(Invalid(format!("{shown}: exists and is not a folder")));
        }
        Ok(_) => {}
    }
    let rd = std::fs::read_dir(dir).map_err(|e| Invalid(format!("{shown}: {e}")))?;
    for e in rd {
        let e = e.map_err(|e| Invalid(format!("{shown}: {e}")))?;
        if !leftover(&e.file_name().to_string_lossy()) {
            return Ok(Some(true));
        }
    }
    Ok(Some(false))
}

/// The holder of `dir`'s lock, if a live process holds it (checked without creating anything).
fn holder(dir: &Path) -> Option<String> {
    let f = File::open(dir.join(LOCK_FILE)).ok()?;
    if try_lock(&f).ok()? {
        return None; // Nobody holds it; dropping `f` releases it again.
    }
    let pid = std::fs::read_to_string(dir.join(LOCK_FILE)).unwrap_or_default();
    let pid = pid.trim();
    Some(if pid.is_empty() { "another staticgrad process".into() } else { format!("staticgrad pid {pid}") })
}

fn in_use(dir: &Path, who: &str) -> Invalid {
    Invalid(format!("{}: in use by {who}; wait for it to finish or choose another --out", dir.display()))
}

fn not_empty(dir: &Path) -> Invalid {
    Invalid(format!(
        "{}: holds an earlier run; choose another --out, or --force to replace it once the new run has succeeded",
        dir.display()
    ))
}

/// Checks, creating nothing, that a command may write into `dir` in `mode`; the refusal names
/// the folder and, for a folder in use, the holder.
pub fn check(dir: &Path, mode: Mode) -> Result<(), Invalid> {
    let state = holds_results(dir)?;
    if state.is_some()
        && let Some(who) = holder(dir)
    {
        return Err(in_use(dir, &who));
    }
    if mode == Mode::New && state == Some(true) {
        return Err(not_empty(dir));
    }
    if mode == Mode::InPlace && state.is_none() {
        return Err(Invalid(format!("{}: no such folder", dir.display())));
    }
    Ok(())
}

/// `flock(LOCK_EX | LOCK_NB)`: `Ok(false)` if another open file holds it.
#[allow(unsafe_code)] // `flock`: libc has no safe wrapper.
fn try_lock(f: &File) -> io::Result<bool> {
    // SAFETY: `flock` only reads the descriptor number, which `f` keeps open for the call.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) { Ok(false) } else { Err(e) }
}

/// The lock of a folder, held while this value lives; its file is removed when released.
#[derive(Debug)]
struct Lock {
    file: File,
    path: PathBuf,
}

impl Lock {
    fn take(dir: &Path) -> Result<Lock, Invalid> {
        let path = dir.join(LOCK_FILE);
        let io_err = |e: io::Error| Invalid(format!("{}: {e}", path.display()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err)?;
        if !try_lock(&file).map_err(io_err)? {
            return Err(in_use(dir, &holder(dir).unwrap_or_else(|| "another staticgrad process".into())));
        }
        // The holder before us may have removed the file between our open and our lock: then we
        // hold the lock of a file nobody else sees. Only the file at the path counts.
        let same =
            std::fs::metadata(&path).ok().zip(file.metadata().ok()).is_some_and(|(a, b)| a.ino() == b.ino());
        if !same {
            return Err(in_use(dir, "another staticgrad process"));
        }
        let mut f = &file;
        let _ = file.set_len(0);
        let _ = writeln!(f, "{}", std::process::id());
        Ok(Lock { file, path })
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Remove the file only if it is still ours (a swap may have moved it away); closing the
        // file releases the lock after that, so nobody can lock a file that is about to go.
        let ours = std::fs::metadata(&self.path)
            .ok()
            .zip(self.file.metadata().ok())
            .is_some_and(|(a, b)| a.ino() == b.ino() && a.dev() == b.dev());
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Removes `dirs` (innermost first) while they are empty.
fn remove_empty(dirs: &[PathBuf]) {
    for d in dirs {
        if std::fs::remove_dir(d).is_err() {
            break;
        }
    }
}

/// An output folder claimed by this process: locked, and either the folder itself or a staging
/// folder that replaces it on [`commit`](RunFolder::commit).
#[derive(Debug)]
pub struct RunFolder {
    target: PathBuf,
    work: PathBuf,
    staged: bool,
    /// Folders this run created (the folder and missing parents), innermost first.
    created: Vec<PathBuf>,
    fresh: bool,
    lock: Option<Lock>,
}

impl RunFolder {
    /// Claims `dir` for a run in `mode` (see [`check`] for the refusals): creates it if needed,
    /// locks it and, to replace an earlier run, creates the staging folder next to it.
    pub fn claim(dir: &Path, mode: Mode) -> Result<RunFolder, Invalid> {
        check(dir, mode)?;
        let shown = dir.display();
        // The folders this creates, innermost first, so a failed run can take them away again.
        let created: Vec<PathBuf> = dir
            .ancestors()
            .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
            .map(Path::to_path_buf)
            .collect();
        std::fs::create_dir_all(dir).map_err(|e| Invalid(format!("{shown}: {e}")))?;
        let lock = match Lock::take(dir) {
            Ok(l) => l,
            Err(e) => {
                remove_empty(&created);
                return Err(e);
            }
        };
        // Under the lock, look again: a run that held it a moment ago may have filled the folder.
        let full = holds_results(dir)?.unwrap_or(false);
        if mode == Mode::New && full {
            return Err(not_empty(dir));
        }
        let staged = mode == Mode::Replace && full;
        let work = if staged {
            // `.`, `..` or `/` cannot be swapped by a rename.
            let Some(name) = dir.file_name().map(|n| n.to_string_lossy().into_owned()) else {
                return Err(Invalid(format!("{shown}: --force replaces a named folder; give its name")));
            };
            let w = dir.with_file_name(format!("{name}.staging-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&w); // A stale one of a dead process with our pid.
            std::fs::create_dir(&w).map_err(|e| Invalid(format!("{}: {e}", w.display())))?;
            w
        } else {
            dir.to_path_buf()
        };
        let fresh = !full;
        Ok(RunFolder { target: dir.to_path_buf(), work, staged, created, fresh, lock: Some(lock) })
    }

    /// Where the run writes its files now (the folder, or its staging folder).
    pub fn dir(&self) -> &Path {
        &self.work
    }

    /// The folder the run's files end up in.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The run succeeded: a staged run replaces the earlier folder; the lock is released. If
    /// the swap fails, both runs stay and the message says where the new one is.
    pub fn commit(mut self) -> Result<PathBuf, crate::Error> {
        if self.staged {
            let name = self.target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let old = self.target.with_file_name(format!(".{name}.replaced-{}", std::process::id()));
            let failed = |e: io::Error| {
                crate::Error::output(format!(
                    "{}: cannot move the new run into place ({e}); it is in {}",
                    self.target.display(),
                    self.work.display()
                ))
            };
            std::fs::rename(&self.target, &old).map_err(failed)?;
            if let Err(e) = std::fs::rename(&self.work, &self.target) {
                let _ = std::fs::rename(&old, &self.target);
                return Err(failed(e));
            }
            // The earlier run (and our lock file in it) goes only now that the new one is in place.
            let _ = std::fs::remove_dir_all(&old);
        }
        self.lock = None;
        Ok(self.target.clone())
    }

    /// The run failed. With `keep_work` (it saved work to go back to, e.g. a checkpoint) its
    /// folder stays, named in the error; otherwise what this run created goes. An earlier run
    /// is never touched.
    pub fn abandon(mut self, keep_work: bool) {
        if !keep_work {
            if self.staged {
                let _ = std::fs::remove_dir_all(&self.work);
            } else if self.fresh {
                // A new or empty folder: everything in it but the lock is this run's.
                if let Ok(rd) = std::fs::read_dir(&self.work) {
                    for e in rd.flatten().filter(|e| e.file_name() != LOCK_FILE) {
                        let p = e.path();
                        let _ =
                            if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
                    }
                }
                self.lock = None;
                remove_empty(&self.created);
            }
        }
        self.lock = None;
    }
}
