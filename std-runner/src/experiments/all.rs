//! `staticgrad experiment all`: every experiment with the book's settings, each in its own folder
//! under `--out`, and one `report.md` that links every summary and figure and lists every check.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Parser;

use super::{ExperimentCmd, Result};
use crate::Error;
use crate::budget::Budget;

/// Settings of `staticgrad experiment all`.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Output folder: one sub-folder per experiment and `report.md`.
    #[arg(long, default_value = "runs")]
    pub out: PathBuf,
    /// Skip the narrowed second round of the hyperparameter search.
    #[arg(long)]
    pub no_narrow: bool,
}

/// The experiments in the book's order, with their folder names and extra flags.
pub const ORDER: [(&str, &str); 9] = [
    ("optimizers-2d", "Update rules on x²/20 + y² (§6.1.7)"),
    ("optimizers-mnist", "Update rules on MNIST (§6.1.8)"),
    ("init-symmetry", "Equal initial weights (§6.2.1)"),
    ("activations", "Activation histograms by weight scale (§6.2.2)"),
    ("init-mnist", "Weight initialisation on MNIST (§6.2.4)"),
    ("batchnorm", "Batch normalisation over 16 weight scales (§6.3.2)"),
    ("overfit", "Overfitting and weight decay (§6.4.1–6.4.2)"),
    ("dropout", "Dropout (§6.4.3)"),
    ("hpsearch", "Hyperparameter random search (§6.5)"),
];

#[derive(Parser)]
struct One {
    #[command(subcommand)]
    cmd: ExperimentCmd,
}

fn commands(args: &Args) -> Result<Vec<(&'static str, &'static str, PathBuf, One)>> {
    let mut v = Vec::new();
    for (name, title) in ORDER {
        let dir = args.out.join(name);
        let mut argv =
            vec!["experiment".to_string(), name.to_string(), "--out".into(), dir.display().to_string()];
        if name == "hpsearch" {
            // Every trial, even inside a job array: the narrowed search needs them all.
            argv.push("--no-scheduler-env".into());
            if !args.no_narrow {
                argv.push("--narrow".into());
            }
        }
        let one = One::try_parse_from(&argv).map_err(|e| Error::Input(e.to_string()))?;
        v.push((name, title, dir, one));
    }
    Ok(v)
}

/// Charges each experiment (one after the other, each to a fresh copy of `budget`): all must fit
/// before the first one starts.
pub fn charge(args: &Args, budget: &mut Budget) -> Result<()> {
    for (name, _, _, one) in commands(args)? {
        one.cmd.charge(&mut budget.clone()).map_err(|e| Error::Input(format!("{name}: {e}")))?;
    }
    Ok(())
}

/// Runs every experiment and writes `report.md`.
pub fn run(args: &Args) -> Result<()> {
    run_each(args, &|cmd: &ExperimentCmd| cmd.run())
}

/// [`run`] as the command line does: every experiment's folder is checked before the first one
/// starts (an earlier result is refused unless `force`), then each is charged to a budget of
/// `max_memory` bytes and claimed in turn (see [`ExperimentCmd::run_claimed`]).
pub fn run_claimed(args: &Args, force: bool, max_memory: Option<u64>) -> Result<()> {
    let mode = if force { crate::runfolder::Mode::Replace } else { crate::runfolder::Mode::New };
    for (name, _) in ORDER {
        crate::runfolder::check(&args.out.join(name), mode)?;
    }
    let report = args.out.join("report.md");
    if !force && report.exists() {
        return Err(Error::Input(format!(
            "{}: holds an earlier report; choose another --out, or --force to replace it",
            report.display()
        )));
    }
    run_each(args, &|cmd: &ExperimentCmd| cmd.run_claimed(force, max_memory))
}

fn run_each(args: &Args, go: &dyn Fn(&ExperimentCmd) -> Result<()>) -> Result<()> {
    let cmds = commands(args)?;
    std::fs::create_dir_all(&args.out)?;
    let mut report = String::from(
        "# Chapter 6 of *Deep Learning from Scratch*, reproduced with staticgrad\n\nEach experiment ran with the \
         book's settings on the bundled MNIST images (10,000 images from the official training file; where the \
         book uses all 60,000 images or the 10,000-image test set, the summary says what this run used).\n\n",
    );
    let mut checks = crate::report::markdown::table_head(&["experiment", "claim", "holds", "numbers"]);
    let mut sections = String::new();
    for (name, title, dir, one) in cmds {
        let t = Instant::now();
        super::emit(&format!("=== {name} → {}", dir.display()));
        go(&one.cmd)?;
        let secs = t.elapsed().as_secs_f64();
        let _ = writeln!(sections, "\n## {title}\n\n[summary]({name}/summary.md) · {secs:.0} s\n");
        for f in figures(&dir) {
            let _ = writeln!(sections, "![{name}/{f}]({name}/{f})\n");
        }
        for row in check_rows(&dir.join("summary.md")) {
            let _ = writeln!(checks, "| {name} {row}");
        }
    }
    report.push_str("## The book's claims\n\n");
    report.push_str(&checks);
    report.push_str(&sections);
    let p = args.out.join("report.md");
    crate::report::write_atomic(&p, report.as_bytes())?;
    super::emit(&format!("report: {}", p.display()));
    Ok(())
}

fn figures(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.retain(|f| f.ends_with(".svg"));
    v.sort();
    v
}

/// The rows of a summary's checks table (after its header), as `| claim | holds | numbers |`.
fn check_rows(summary: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(summary).unwrap_or_default();
    let mut rows = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("| claim |") {
            inside = true;
            continue;
        }
        if inside {
            if line.starts_with("|---") {
                continue;
            }
            if !line.starts_with('|') {
                break;
            }
            rows.push(line.to_string());
        }
    }
    rows
}
