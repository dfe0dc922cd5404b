//! Every report and plot the runner writes, and how it writes them.
//!
//! | file | what |
//! |---|---|
//! | [`chart`] | the one chart helper (plotters, SVG): line charts, grids, histogram rows |
//! | [`metrics`] | a run's per-step and per-epoch records, their CSV/JSON lines and their charts |
//! | [`markdown`] | tables, rows, file lists: the pieces of `report.md` and `summary.md` |
//! | [`plan`] | the memory plan as a text table and as JSON |
//! | [`run`] | a training run's report: metrics, figures, `summary.json`, `report.md` |
//!
//! This file holds the writing itself: every file is written atomically (temporary name, fsync,
//! rename), so a reader never sees half a file, and a run's final files all or none ([`OutDir`]).

pub mod chart;
pub mod markdown;
pub mod metrics;
pub mod plan;
pub mod run;

pub use metrics::{EpochRecord, StepRecord};

use crate::Error;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // Make the rename itself durable (best effort: not every platform can open a folder).
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// A folder of outputs (claimed with [`crate::runfolder::RunFolder`]): single files written
/// atomically, and a run's final files written all or none.
#[derive(Debug)]
pub struct OutDir {
    /// The folder.
    pub path: PathBuf,
}

impl OutDir {
    /// Writes into `path`, which exists (the work folder of a claimed run).
    pub fn new(path: &Path) -> OutDir {
        OutDir { path: path.to_path_buf() }
    }

    /// Atomically writes `name` in the folder.
    pub fn write(&mut self, name: &str, bytes: &[u8]) -> Result<PathBuf, Error> {
        let p = self.path.join(name);
        write_atomic(&p, bytes).map_err(|e| Error::output(format!("{}: {e}", p.display())))?;
        Ok(p)
    }

    /// Writes every file or none: each to a temporary name (fsync), then all renamed into place.
    /// A failure (a full disk) removes the temporary files and leaves the folder's files as they
    /// were, so a report never links files of another run.
    pub fn write_all(&mut self, files: &[(&str, &[u8])]) -> Result<(), Error> {
        let tmp = |name: &str| self.path.join(format!(".{name}.tmp"));
        let mut done: Vec<PathBuf> = Vec::new();
        let mut staged = || -> Result<(), Error> {
            for (name, bytes) in files {
                let t = tmp(name);
                done.push(t.clone());
                let res = (|| {
                    let mut f = std::fs::File::create(&t)?;
                    f.write_all(bytes)?;
                    f.sync_all()
                })();
                res.map_err(|e| Error::output(format!("{}: {e}", self.path.join(name).display())))?;
            }
            Ok(())
        };
        if let Err(e) = staged() {
            for t in &done {
                let _ = std::fs::remove_file(t);
            }
            return Err(e);
        }
        for (name, _) in files {
            let p = self.path.join(name);
            std::fs::rename(tmp(name), &p).map_err(|e| Error::output(format!("{}: {e}", p.display())))?;
        }
        if let Ok(d) = std::fs::File::open(&self.path) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_leaves_no_temp_and_write_all_is_all_or_none() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = OutDir::new(dir.path());
        out.write("a.txt", b"hello").unwrap();
        let names = |p: &Path| {
            let mut v: Vec<_> = std::fs::read_dir(p).unwrap().map(|e| e.unwrap().file_name()).collect();
            v.sort();
            v
        };
        assert_eq!(names(&out.path), vec![std::ffi::OsString::from("a.txt")]);
        out.write_all(&[("a.txt", b"new"), ("b.txt", b"b")]).unwrap();
        assert_eq!(std::fs::read(dir.path().join("a.txt")).unwrap(), b"new");
        // A name that cannot be written (its folder does not exist): nothing changes.
        let err = out.write_all(&[("a.txt", b"newer"), ("no/c.txt", b"c")]).unwrap_err();
        assert!(matches!(&err, Error::Output(m) if m.contains("c.txt")), "{err}");
        assert_eq!(std::fs::read(dir.path().join("a.txt")).unwrap(), b"new");
        assert_eq!(names(&out.path).len(), 2, "no temporary file left");
    }
}
