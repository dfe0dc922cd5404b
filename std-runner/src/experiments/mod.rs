//! `staticgrad experiment …`: the experiments of chapter 6 of *Deep Learning from Scratch*, one
//! subcommand each, with the book's settings as defaults.
//!
//! Every experiment writes into its output folder: the numbers (CSV and JSON), SVG figures, and a
//! `summary.md` that states the outcome in numbers next to the book's. Each `run` function takes
//! its settings and returns the measured numbers, so the tests run the same code on reduced sizes.

pub mod activations;
pub mod all;
pub mod batchnorm;
pub mod curves;
pub mod dropout;
pub mod hpsearch;
pub mod init_mnist;
pub mod init_symmetry;
pub mod mnist_common;
pub mod net;
pub mod optimizers_2d;
pub mod optimizers_mnist;
pub mod overfit;
pub mod reference;
pub mod smooth;

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::Error;
use crate::budget::{self, Budget};
use crate::data::Dataset;
use crate::report::markdown;
use crate::runfolder::{Mode, RunFolder};

/// `staticgrad experiment <name>`.
#[derive(clap::Subcommand, Clone, Debug)]
pub enum ExperimentCmd {
    /// §6.1.7: SGD, Momentum, Nesterov, AdaGrad, RMSProp and Adam on f(x,y) = x²/20 + y².
    #[command(name = "optimizers-2d")]
    Optimizers2d(optimizers_2d::Args),
    /// §6.2.2: activation histograms of a 5×100 stack for std 1, std 0.01, Xavier, He × sigmoid, tanh, ReLU.
    Activations(activations::Args),
    /// §6.1.8: SGD, Momentum, AdaGrad, Adam on MNIST (4×100 ReLU, batch 128, 2,000 iterations).
    #[command(name = "optimizers-mnist")]
    OptimizersMnist(optimizers_mnist::Args),
    /// §6.2.4: std 0.01 vs Xavier vs He on the 4×100 ReLU MNIST network.
    #[command(name = "init-mnist")]
    InitMnist(init_mnist::Args),
    /// §6.2.1: all-zero and all-equal initial weights beside He's: the units of a layer stay identical.
    #[command(name = "init-symmetry")]
    InitSymmetry(init_symmetry::Args),
    /// §6.3.2: with vs without batch norm over 16 weight scales (1,000 images), a 4×4 grid.
    Batchnorm(batchnorm::Args),
    /// §6.4.1–6.4.2: overfitting 300 images with a 6×100 network, λ = 0 and λ = 0.1.
    Overfit(overfit::Args),
    /// §6.4.3: the same network with the book's dropout (ratio 0.15 by default).
    Dropout(dropout::Args),
    /// §6.5: random search of lr and weight decay on a validation split (parallel, shardable; `merge`).
    Hpsearch(Box<hpsearch::Args>),
    /// Every experiment with the book's settings, and one report linking all figures.
    All(all::Args),
}

impl ExperimentCmd {
    /// Charges everything the experiment will allocate, computed from its settings with checked
    /// arithmetic, to `budget`; refused (an input error naming the setting) if it does not fit.
    pub fn charge(&self, budget: &mut Budget) -> Result<()> {
        match self {
            ExperimentCmd::Optimizers2d(a) => optimizers_2d::charge(a, budget),
            ExperimentCmd::Activations(a) => activations::charge(a, budget),
            ExperimentCmd::OptimizersMnist(a) => optimizers_mnist::charge(a, budget),
            ExperimentCmd::InitMnist(a) => init_mnist::charge(a, budget),
            ExperimentCmd::InitSymmetry(a) => init_symmetry::charge(a, budget),
            ExperimentCmd::Batchnorm(a) => batchnorm::charge(a, budget),
            ExperimentCmd::Overfit(a) => overfit::charge(a, budget),
            ExperimentCmd::Dropout(a) => dropout::charge(a, budget),
            ExperimentCmd::Hpsearch(a) => hpsearch::charge(a, budget),
            ExperimentCmd::All(a) => all::charge(a, budget),
        }
    }

    /// Runs the experiment; its summary is printed and written to its output folder.
    pub fn run(&self) -> Result<()> {
        match self {
            ExperimentCmd::Optimizers2d(a) => optimizers_2d::run(a).map(drop),
            ExperimentCmd::Activations(a) => activations::run(a).map(drop),
            ExperimentCmd::OptimizersMnist(a) => optimizers_mnist::run(a).map(drop),
            ExperimentCmd::InitMnist(a) => init_mnist::run(a).map(drop),
            ExperimentCmd::InitSymmetry(a) => init_symmetry::run(a).map(drop),
            ExperimentCmd::Batchnorm(a) => batchnorm::run(a).map(drop),
            ExperimentCmd::Overfit(a) => overfit::run(a).map(drop),
            ExperimentCmd::Dropout(a) => dropout::run(a).map(drop),
            ExperimentCmd::Hpsearch(a) => hpsearch::run(a).map(drop),
            ExperimentCmd::All(a) => all::run(a),
        }
    }
}

impl ExperimentCmd {
    /// Refuses a setting that cannot run, before anything is created.
    pub fn validate(&self) -> Result<()> {
        match self {
            ExperimentCmd::Optimizers2d(a) => a.validate(),
            ExperimentCmd::Activations(a) => a.validate(),
            ExperimentCmd::OptimizersMnist(a) => a.validate(),
            ExperimentCmd::InitMnist(a) => a.validate(),
            ExperimentCmd::InitSymmetry(a) => a.validate(),
            ExperimentCmd::Batchnorm(a) => a.validate(),
            ExperimentCmd::Overfit(a) => a.validate(),
            ExperimentCmd::Dropout(a) => a.validate(),
            ExperimentCmd::Hpsearch(a) => a.validate(),
            ExperimentCmd::All(_) => Ok(()),
        }
    }

    /// The output folder (`None` for `all`, whose experiments each have their own).
    pub fn out_dir(&self) -> Option<&Path> {
        Some(match self {
            ExperimentCmd::Optimizers2d(a) => &a.out,
            ExperimentCmd::Activations(a) => &a.out,
            ExperimentCmd::OptimizersMnist(a) => &a.out,
            ExperimentCmd::InitMnist(a) => &a.out,
            ExperimentCmd::InitSymmetry(a) => &a.out,
            ExperimentCmd::Batchnorm(a) => &a.out,
            ExperimentCmd::Overfit(a) => &a.out,
            ExperimentCmd::Dropout(a) => &a.out,
            ExperimentCmd::Hpsearch(a) => match &a.cmd {
                Some(hpsearch::HpCmd::Merge { out, .. }) => out,
                None => &a.out,
            },
            ExperimentCmd::All(_) => return None,
        })
    }

    fn with_out(&self, dir: &Path) -> ExperimentCmd {
        let mut c = self.clone();
        match &mut c {
            ExperimentCmd::Optimizers2d(a) => a.out = dir.into(),
            ExperimentCmd::Activations(a) => a.out = dir.into(),
            ExperimentCmd::OptimizersMnist(a) => a.out = dir.into(),
            ExperimentCmd::InitMnist(a) => a.out = dir.into(),
            ExperimentCmd::InitSymmetry(a) => a.out = dir.into(),
            ExperimentCmd::Batchnorm(a) => a.out = dir.into(),
            ExperimentCmd::Overfit(a) => a.out = dir.into(),
            ExperimentCmd::Dropout(a) => a.out = dir.into(),
            ExperimentCmd::Hpsearch(a) => match &mut a.cmd {
                Some(hpsearch::HpCmd::Merge { out, .. }) => *out = dir.into(),
                None => a.out = dir.into(),
            },
            ExperimentCmd::All(_) => {}
        }
        c
    }

    /// Runs the experiment as the command line does: settings validated, then its output folder
    /// claimed (refused if it holds an earlier result, unless `force`; locked while in use), the
    /// files written there (or, replacing an earlier result, beside it and moved into place on
    /// success). A failed run leaves an earlier result as it was.
    /// Before anything is created, the settings are validated and everything the experiment will
    /// allocate is charged to a budget of `max_memory` bytes (default: a share of this machine's
    /// memory).
    pub fn run_claimed(&self, force: bool, max_memory: Option<u64>) -> Result<()> {
        self.validate()?;
        self.charge(&mut Budget::from_flag(max_memory))?;
        let ExperimentCmd::All(a) = self else {
            let dir = self.out_dir().unwrap_or(Path::new("runs"));
            // `hpsearch --resume` continues in the folder a preempted task left, or starts it.
            let resume = matches!(self, ExperimentCmd::Hpsearch(h) if h.resume && h.cmd.is_none());
            let mode = if resume && dir.exists() {
                Mode::InPlace
            } else if force {
                Mode::Replace
            } else {
                Mode::New
            };
            if mode == Mode::New && dir.join("trials.done.jsonl").exists() {
                return Err(Error::Input(format!(
                    "{}: holds the finished trials of an interrupted search; --resume continues it, --force replaces it",
                    dir.display()
                )));
            }
            let folder = RunFolder::claim(dir, mode)?;
            let res = self.with_out(folder.dir()).run();
            return match res {
                Ok(()) => folder.commit().map(drop),
                Err(e) => {
                    // An interrupted search saved its finished trials, a failed one logged them:
                    // they stay, for `hpsearch merge`.
                    let log = folder.dir().join("trials.done.jsonl");
                    let logged = std::fs::metadata(log).is_ok_and(|m| m.len() > 0);
                    folder.abandon(logged || matches!(e, Error::Interrupted(_)));
                    Err(e)
                }
            };
        };
        all::run_claimed(a, force, max_memory)
    }
}

/// Bytes of `count` records of `per` bytes each (checked).
pub fn records(count: usize, per: u64) -> Option<u64> {
    (count as u64).checked_mul(per)
}

/// Threads that run experiment parts at once (rayon's pool).
pub fn parallel() -> usize {
    rayon::current_num_threads().max(1)
}

/// Bytes of the bundled images as stored (pixel bytes and labels) and a copy of `rows` of them.
pub fn bundled_bytes(rows: usize) -> Option<u64> {
    let n = crate::data::BUNDLED_COUNT;
    budget::sum(&[Dataset::bytes_for(n, 784, 1), Dataset::bytes_for(rows.min(n), 784, 1)])
}

/// Result of the experiment functions.
pub type Result<T> = std::result::Result<T, Error>;

/// One claim of the book checked against our numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    /// The claim, in words.
    pub claim: String,
    /// Whether our run shows it.
    pub holds: bool,
    /// The numbers behind the verdict.
    pub detail: String,
}

impl Check {
    /// A check with its verdict and numbers.
    pub fn new(claim: impl Into<String>, holds: bool, detail: impl Into<String>) -> Self {
        Check { claim: claim.into(), holds, detail: detail.into() }
    }
}

/// The output folder of one experiment: files written so far and the summary being built.
#[derive(Debug)]
pub struct Output {
    dir: PathBuf,
    files: Vec<String>,
    /// Markdown body of `summary.md` (after the title).
    pub summary: String,
    /// The book's claims and whether they hold here.
    pub checks: Vec<Check>,
}

impl Output {
    /// Creates (if needed) `dir`.
    pub fn new(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Output { dir: dir.to_path_buf(), files: Vec::new(), summary: String::new(), checks: Vec::new() })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of a file in the folder, recorded as an output.
    pub fn path(&mut self, name: &str) -> PathBuf {
        if !self.files.iter().any(|f| f == name) {
            self.files.push(name.to_string());
        }
        self.dir.join(name)
    }

    /// Files written, in order.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// Writes a CSV file: a header line and rows of already formatted cells.
    pub fn csv(
        &mut self,
        name: &str,
        header: &[&str],
        rows: impl IntoIterator<Item = Vec<String>>,
    ) -> Result<()> {
        let mut s = header.join(",");
        s.push('\n');
        for r in rows {
            s.push_str(&r.join(","));
            s.push('\n');
        }
        let p = self.path(name);
        std::fs::write(p, s)?;
        Ok(())
    }

    /// Writes pretty JSON.
    pub fn json(&mut self, name: &str, v: &Value) -> Result<()> {
        let p = self.path(name);
        std::fs::write(p, serde_json::to_string_pretty(v)? + "\n")?;
        Ok(())
    }

    /// Appends a line to the summary.
    pub fn line(&mut self, s: impl AsRef<str>) {
        self.summary.push_str(s.as_ref());
        self.summary.push('\n');
    }

    /// Records a check.
    pub fn check(&mut self, c: Check) {
        self.checks.push(c);
    }

    /// Appends the header of a Markdown table with these columns to the summary.
    pub fn table_head(&mut self, columns: &[&str]) {
        self.summary.push_str(&markdown::table_head(columns));
    }

    /// Appends one row of a Markdown table to the summary.
    pub fn row<S: AsRef<str>>(&mut self, cells: &[S]) {
        self.summary.push_str(&markdown::row(cells));
    }

    /// Writes `summary.md` (title, body, the checks, the files) and returns its text.
    pub fn finish(&mut self, title: &str) -> Result<String> {
        let mut s = format!("# {title}\n\n{}\n", self.summary.trim_end());
        if !self.checks.is_empty() {
            s.push_str("\n## The book's claims, checked on this run\n\n");
            s.push_str(&markdown::table_head(&["claim", "holds", "numbers"]));
            for c in &self.checks {
                s.push_str(&markdown::row(&[
                    c.claim.as_str(),
                    if c.holds { "yes" } else { "**no**" },
                    &c.detail,
                ]));
            }
        }
        s.push_str("\n## Files\n\n");
        s.push_str(&markdown::file_list(&self.files));
        std::fs::write(self.dir.join("summary.md"), &s)?;
        Ok(s)
    }
}

/// Prints a summary to stdout, unless `--quiet` ([`crate::quiet`]); a closed pipe (`| head`) is
/// not an error.
pub fn emit(text: &str) {
    use std::io::Write as _;
    if crate::quiet::on() {
        return;
    }
    let _ = writeln!(std::io::stdout(), "{text}");
}

/// Formats a float for tables: 4 significant digits, `NaN` spelt out.
pub fn fmt(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e4).contains(&a) { format!("{v:.3e}") } else { format!("{v:.4}") }
}

/// The values of a JSON number list, for golden and reference files.
pub fn f64s(v: &Value) -> Vec<f64> {
    v.as_array().map(|a| a.iter().filter_map(Value::as_f64).collect()).unwrap_or_default()
}
