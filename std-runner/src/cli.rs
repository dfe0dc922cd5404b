//! The command line: `staticgrad [train|plan|eval|export|import|bench|experiment|web|completions|man] …`.
//! With no subcommand it runs the default MNIST training on the bundled data (what `cargo run
//! --release` does).
//!
//! Conventions every subcommand follows: `--quiet` (global) prints results only; every refusal is
//! one stderr line `staticgrad: error: …` ([`Error::exit`]), clap's own included ([`parse_error`]);
//! exit codes are [`Error::code`]'s.
//!
//! Adding a subcommand: a variant in [`Command`] and an arm in [`run`].

use crate::budget::{self, Budget};
use crate::checkpoint::{self, Checkpoint};
use crate::config::{TrainConfig, join};
use crate::data::{Sampling, SplitSize};
use crate::memory::OwnedMemory;
use crate::model::{self, ModelSpec};
use crate::report::OutDir;
use crate::runfolder::{Mode, RunFolder};
use crate::threads::Pool;
use crate::train::{self, Prepared};
use crate::{Error, bench};
use clap::{Args, Parser, Subcommand, ValueEnum};
use staticgrad::{Node, ParamEntry, Plan, Trainer};
use std::path::{Path, PathBuf};

/// Train neural networks in static memory: the host-side runner of the staticgrad core.
///
/// With no subcommand, trains a 784-100-100-10 network (ReLU, batch-norm, Adam at lr 0.002 with
/// cosine annealing, 8 epochs) on the bundled MNIST images (first 9,000 to train, last 1,000 held
/// out) and writes a report under runs/. Same as `staticgrad train --lr 0.002`.
#[derive(Parser, Debug)]
#[command(name = "staticgrad", version, about, long_about, max_term_width = 100)]
pub struct Cli {
    /// Print results only: no progress, announcements or summaries (train keeps its closing
    /// lines, an experiment prints where its summary is, export and import print nothing).
    /// Errors are printed regardless.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// What to do (default: train the default model on the bundled MNIST).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a model and write weights, metrics, plots and a report into an output folder.
    Train(Box<TrainArgs>),
    /// Print the memory plan (floats and bytes per region) of a model, batch size and optimizer.
    Plan(PlanArgs),
    /// Measure the accuracy of trained weights on a data set.
    Eval(EvalArgs),
    /// Convert trained weights to a Rust source file of consts, the core's binary format or
    /// PyTorch's safetensors layout.
    Export(ExportArgs),
    /// Read an MLP trained elsewhere (PyTorch's safetensors layout) into a weights file (model.bin).
    Import(ImportArgs),
    /// Time training steps of a peer-benchmark workload (tiny | book | twolayer | cnn).
    Bench(bench::BenchArgs),
    /// Reproduce an experiment of the book's chapter 6 (settings default to the book's).
    Experiment {
        /// Replace an earlier result in --out: the new one is written beside it and moved into
        /// place only when it has succeeded.
        #[arg(long, global = true)]
        force: bool,
        /// Memory budget (bytes, or K/M/G/T): the experiment is refused (exit code 2) before
        /// anything is created if what it needs exceeds it [default: a share of this machine's
        /// memory; see train].
        #[arg(long, global = true, value_name = "SIZE", value_parser = crate::budget::parse_size)]
        max_memory: Option<u64>,
        /// Worker threads, shared by the experiment's networks and each network's products
        /// [default: all cores]. Results do not depend on it.
        #[arg(long, global = true, value_name = "N")]
        threads: Option<usize>,
        /// Which experiment.
        #[command(subcommand)]
        which: crate::experiments::ExperimentCmd,
    },
    /// Serve the chapter-6 page (interactive experiments on the core compiled to WebAssembly) on
    /// 127.0.0.1 and print its URL; build the module first with `bash web/build.sh`.
    Web(crate::web::WebArgs),
    /// Print a shell completion script: `staticgrad completions bash > ~/.local/share/bash-completion/completions/staticgrad`.
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell.
        #[arg(value_enum, ignore_case = true)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to stdout, or write one page per subcommand into a folder:
    /// `staticgrad man | man -l -`, `staticgrad man --out ~/.local/share/man/man1`.
    Man {
        /// Folder to write staticgrad.1, staticgrad-train.1, … into (created if needed).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

/// Where the data comes from and how it is split (shared by `train` and `eval`).
#[derive(Args, Debug, Clone, Default)]
pub struct DataArgs {
    /// Folder with the standard MNIST/Fashion-MNIST files: train-images-idx3-ubyte,
    /// train-labels-idx1-ubyte and optionally t10k-* (each plain or .gz). Default: the bundled
    /// 10,000 MNIST images.
    #[arg(long, value_name = "DIR", help_heading = "Data")]
    pub mnist_dir: Option<PathBuf>,
    /// CSV training file: one example per line, a label column, every other column a feature.
    #[arg(long, value_name = "FILE", help_heading = "Data")]
    pub csv: Option<PathBuf>,
    /// CSV test file (same layout as --csv).
    #[arg(long, value_name = "FILE", help_heading = "Data")]
    pub csv_test: Option<PathBuf>,
    /// CSV column (0-based) holding the class label [default: 0].
    #[arg(long, value_name = "N", help_heading = "Data")]
    pub csv_label_col: Option<usize>,
    /// The CSV files start with a header line.
    #[arg(long, help_heading = "Data")]
    pub csv_header: bool,
    /// CSV feature values are divided by this [default: 255].
    #[arg(long, value_name = "X", allow_negative_numbers = true, help_heading = "Data")]
    pub csv_scale: Option<f32>,
    /// Use only the first N records of the training file.
    #[arg(long, value_name = "N", help_heading = "Data")]
    pub limit: Option<usize>,
    /// Validation split from the end of the training records: a count (500) or a fraction (0.1)
    /// [default: 0].
    #[arg(long, value_name = "SIZE", help_heading = "Data")]
    pub val: Option<SplitSize>,
    /// Test split from the end of the training file, used when there is no separate test file
    /// (t10k-* or --csv-test): a count or a fraction [default: 0.1, the last 1,000 bundled images].
    #[arg(long, value_name = "SIZE", help_heading = "Data")]
    pub test: Option<SplitSize>,
}

impl DataArgs {
    fn apply(&self, c: &mut TrainConfig) {
        if self.mnist_dir.is_some() {
            c.mnist_dir = self.mnist_dir.clone();
        }
        if self.csv.is_some() {
            c.csv = self.csv.clone();
        }
        if self.csv_test.is_some() {
            c.csv_test = self.csv_test.clone();
        }
        set(&mut c.csv_label_col, self.csv_label_col);
        c.csv_header |= self.csv_header;
        set(&mut c.csv_scale, self.csv_scale);
        if self.limit.is_some() {
            c.limit = self.limit;
        }
        set(&mut c.val, self.val);
        set(&mut c.test, self.test);
    }
}

fn set<T>(slot: &mut T, v: Option<T>) {
    if let Some(v) = v {
        *slot = v;
    }
}

/// Arguments of `staticgrad train`. Settings come from the defaults, then `--config`, then flags.
#[derive(Args, Debug, Clone, Default)]
pub struct TrainArgs {
    /// TOML file with any of the settings below (keys as the flags, with _ for -); flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Continue the run in DIR from its checkpoint.bin, bit-identically to an uninterrupted run
    /// (its settings come from the checkpoint; --max-steps and --checkpoint-every may change).
    #[arg(long, value_name = "DIR", conflicts_with = "config")]
    pub resume: Option<PathBuf>,
    /// Start from the weights in FILE (model.bin, from a run, `import` or `export --format bin`)
    /// or a run folder holding one, instead of drawing them. Its model (widths, activation,
    /// batch norm) must be the run's.
    #[arg(long, value_name = "DIR_OR_FILE", conflicts_with = "resume")]
    pub init_from: Option<PathBuf>,
    /// With --init-from: freeze the lowest K weight (dense or conv2d) layers, with the batch
    /// norm of a frozen dense layer. They keep the values of --init-from bit for bit and run in
    /// evaluation mode; only the layers above train [default: 0, none].
    #[arg(long, value_name = "K", conflicts_with = "resume")]
    pub freeze: Option<usize>,
    /// Output folder [default: runs/YYYY-MM-DD_HH-MM-SS, UTC]. It must not exist or be empty, unless
    /// --force is given.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace an existing run in --out: the new run is written beside it and moved into place
    /// only when it has succeeded, so a failing run leaves the earlier one intact.
    #[arg(long)]
    pub force: bool,

    /// Layer widths, input first, classes last [default: 784,100,100,10]; or a whole model as a
    /// layer string such as conv30x5,relu,maxpool2,dense100,relu,dense10 (tokens: inCxHxW,
    /// convNxK[sS][pP], maxpoolK[sS], avgpoolK[sS], gap, flatten, denseN, relu, sigmoid, tanh,
    /// dropoutR, bn; the input defaults to in1x28x28), for which --activation, --batchnorm and
    /// --dropout do not apply.
    #[arg(long, value_name = "W,W,… | LAYERS", help_heading = "Model")]
    pub layers: Option<String>,
    /// A preset model: convnet, the book's SimpleConvNet (conv 30×5×5, ReLU, max-pool 2, dense
    /// 100, ReLU, dense 10; std 0.01 init unless --init). The book trains it with Adam at 0.001,
    /// batch 100 (this command's defaults).
    #[arg(long, value_name = "NAME", conflicts_with = "layers", help_heading = "Model")]
    pub model: Option<String>,
    /// Hidden activation: relu, sigmoid or tanh [default: relu].
    #[arg(long, value_name = "NAME", help_heading = "Model")]
    pub activation: Option<String>,
    /// Weight initialisation: he, he-uniform, xavier, glorot, glorot-uniform, or a standard
    /// deviation such as 0.01 [default: he].
    #[arg(long, value_name = "NAME", help_heading = "Model")]
    pub init: Option<String>,
    /// Batch-norm after each hidden layer (on by default).
    #[arg(long, overrides_with = "no_batchnorm", help_heading = "Model")]
    pub batchnorm: bool,
    /// No batch-norm.
    #[arg(long, help_heading = "Model")]
    pub no_batchnorm: bool,
    /// Dropout ratio after each hidden activation, in [0, 1) [default: 0].
    #[arg(long, value_name = "P", allow_negative_numbers = true, help_heading = "Model")]
    pub dropout: Option<f32>,

    /// Update rule: sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw, … [default: adam].
    #[arg(long, value_name = "NAME", help_heading = "Training")]
    pub optimizer: Option<String>,
    /// Learning rate [default: the optimizer's book default, 0.001 for Adam].
    #[arg(long, value_name = "LR", allow_negative_numbers = true, help_heading = "Training")]
    pub lr: Option<f32>,
    /// Learning-rate schedule: constant, or cosine (annealed to 0 at the last step) [default: cosine].
    #[arg(long, value_name = "NAME", help_heading = "Training")]
    pub schedule: Option<crate::config::ScheduleName>,
    /// Weight decay λ: coupled L2 (½λ‖W‖² in the loss), decoupled for adamw [default: 0].
    #[arg(long, value_name = "λ", allow_negative_numbers = true, help_heading = "Training")]
    pub weight_decay: Option<f32>,
    /// Mini-batch size [default: 100].
    #[arg(long, value_name = "N", help_heading = "Training")]
    pub batch: Option<usize>,
    /// Passes over the training set [default: 8].
    #[arg(long, value_name = "N", help_heading = "Training")]
    pub epochs: Option<usize>,
    /// Seed of the initial weights, the data order and dropout [default: 7].
    #[arg(long, value_name = "N", help_heading = "Training")]
    pub seed: Option<u64>,
    /// Mini-batches: a fresh shuffle each epoch, or drawn with replacement as the book does
    /// [default: shuffle].
    #[arg(long, value_name = "HOW", help_heading = "Training")]
    pub sampling: Option<Sampling>,
    /// Augmentation: move each training image by a random offset of up to PX pixels across and
    /// down (zero fill), drawn per step from the seed; image models (--layers with an image
    /// input, --model convnet) only [default: 0, none].
    #[arg(long, value_name = "PX", help_heading = "Training")]
    pub augment_shift: Option<usize>,
    /// Write checkpoint.bin every N steps (atomically) [default: never].
    #[arg(long, value_name = "N", help_heading = "Training")]
    pub checkpoint_every: Option<u64>,
    /// Stop after N steps in total, writing a checkpoint to resume from.
    #[arg(long, value_name = "N", help_heading = "Training")]
    pub max_steps: Option<u64>,
    /// Memory budget: the run is refused (exit code 2) before anything is allocated or written
    /// if what it needs exceeds it. Bytes, or K/M/G/T (512M, 4G) [default: 3/4 of the physical
    /// memory, the cgroup limit or what RLIMIT_AS/RLIMIT_DATA leave, whichever is smallest].
    #[arg(long, value_name = "SIZE", value_parser = crate::budget::parse_size)]
    pub max_memory: Option<u64>,
    /// Worker threads of a step: each product's output rows are shared among them [default:
    /// all cores]. Results do not depend on it (the same bits for every count).
    #[arg(long, value_name = "N", help_heading = "Training")]
    pub threads: Option<usize>,

    /// Data source and splits.
    #[command(flatten)]
    pub data: DataArgs,
}

impl TrainArgs {
    /// Defaults, then the config file, then flags.
    pub fn config(&self) -> Result<TrainConfig, Error> {
        let mut c = match &self.config {
            Some(p) => TrainConfig::from_toml_file(p)?,
            None => TrainConfig::default(),
        };
        if let Some(name) = &self.model {
            let p = crate::net::preset(name).ok_or_else(|| {
                let names: Vec<&str> = crate::net::PRESETS.iter().map(|p| p.0).collect();
                Error::input(format!("--model {name}: unknown; one of {}", names.join(", ")))
            })?;
            c.net = Some(p.1.to_string());
            c.init = p.2.to_string();
        }
        if let Some(l) = &self.layers {
            if crate::net::is_widths(l) {
                let widths: Result<Vec<usize>, _> = l.split(',').map(|w| w.trim().parse::<usize>()).collect();
                c.layers = widths.map_err(|e| Error::input(format!("--layers {l}: {e}")))?;
                c.net = None;
            } else {
                c.net = Some(l.clone());
            }
        }
        set(&mut c.activation, self.activation.clone());
        set(&mut c.init, self.init.clone());
        if self.batchnorm {
            c.batchnorm = true;
        }
        if self.no_batchnorm {
            c.batchnorm = false;
        }
        set(&mut c.dropout, self.dropout);
        set(&mut c.optimizer, self.optimizer.clone());
        if self.lr.is_some() {
            c.lr = self.lr;
        }
        set(&mut c.schedule, self.schedule);
        set(&mut c.weight_decay, self.weight_decay);
        set(&mut c.batch, self.batch);
        set(&mut c.epochs, self.epochs);
        set(&mut c.seed, self.seed);
        set(&mut c.sampling, self.sampling);
        set(&mut c.augment_shift, self.augment_shift);
        set(&mut c.checkpoint_every, self.checkpoint_every);
        if self.max_steps.is_some() {
            c.max_steps = self.max_steps;
        }
        if self.max_memory.is_some() {
            c.max_memory = self.max_memory;
        }
        if self.init_from.is_some() {
            c.init_from = self.init_from.clone();
        }
        set(&mut c.freeze, self.freeze);
        self.data.apply(&mut c);
        // Names are taken in any case (`--activation RELU`, `--optimizer Adam`) and kept in the
        // canonical lower case, as the report, summary.json and checkpoints show them.
        for name in [&mut c.activation, &mut c.optimizer, &mut c.init] {
            name.make_ascii_lowercase();
        }
        Ok(c)
    }
}

/// Arguments of `staticgrad plan`.
#[derive(Args, Debug, Clone)]
pub struct PlanArgs {
    /// Layer widths, input first.
    #[arg(long, value_delimiter = ',', value_name = "W,W,…", default_value = "784,100,100,10", action = clap::ArgAction::Set)]
    pub layers: Vec<usize>,
    /// Mini-batch size.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Update rule (decides the optimizer state).
    #[arg(long, default_value = "adam")]
    pub optimizer: String,
    /// Batch-norm after each hidden layer.
    #[arg(long)]
    pub batchnorm: bool,
    /// Dropout ratio after each hidden activation.
    #[arg(long, default_value_t = 0.0)]
    pub dropout: f32,
}

/// Arguments of `staticgrad eval`.
#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// Weights file (model.bin) or a run folder holding one.
    #[arg(long, value_name = "FILE")]
    pub weights: PathBuf,
    /// Rows per forward pass (at most the number of examples scored).
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Memory budget (bytes, or K/M/G/T) [default: a share of this machine's memory; see train].
    #[arg(long, value_name = "SIZE", value_parser = crate::budget::parse_size)]
    pub max_memory: Option<u64>,
    /// Worker threads of a forward pass [default: all cores]. Results do not depend on it.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Data source and splits (the test set is scored).
    #[command(flatten)]
    pub data: DataArgs,
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A Rust source file of `const`s: widths, flags and every parameter (for a firmware's flash).
    Rust,
    /// The core's binary weights format (read without allocation by `staticgrad::weights::parse`).
    Bin,
    /// PyTorch's layout of an `nn.Sequential(Linear, activation, Linear, …)`: `0.weight` [out, in],
    /// `0.bias`, `2.weight`, … as F32 (no batch norm).
    Safetensors,
}

/// Arguments of `staticgrad import`.
#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    /// The safetensors file. Tensors `<name>.weight` [out, in] and `<name>.bias` [out] of each
    /// Linear layer, ordered by the number that ends each name (`0`, `2`, `4` of an nn.Sequential;
    /// `fc1`, `fc2`); F32, or F64, F16, BF16 converted.
    pub file: PathBuf,
    /// Layer widths, input first, classes last: the shapes every tensor is checked against.
    #[arg(long, value_delimiter = ',', value_name = "W,W,…", required = true, action = clap::ArgAction::Set)]
    pub layers: Vec<usize>,
    /// Activation between the Linear layers: relu, sigmoid or tanh.
    #[arg(long, value_name = "NAME", default_value = "relu")]
    pub activation: String,
    /// The Linear layers' names, in order, when the numbering rule does not apply (`fc1,fc2,out`):
    /// layer N reads `<name>.weight` and `<name>.bias`; other tensors are ignored.
    #[arg(long, value_delimiter = ',', value_name = "NAME,…", action = clap::ArgAction::Set)]
    pub names: Option<Vec<String>>,
    /// Output: a folder to hold model.bin (created if needed), or a file name ending in .bin.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace an existing weights file at --out.
    #[arg(long)]
    pub force: bool,
    /// Memory budget (bytes, or K/M/G/T) [default: a share of this machine's memory; see train].
    #[arg(long, value_name = "SIZE", value_parser = crate::budget::parse_size)]
    pub max_memory: Option<u64>,
}

/// Arguments of `staticgrad export`.
#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// Weights file (model.bin) or a run folder holding one.
    #[arg(long, value_name = "FILE")]
    pub weights: PathBuf,
    /// Output format.
    #[arg(long, value_enum)]
    pub format: Format,
    /// Output file [default: the weights file with extension .rs or .bin; `-` for stdout]. A
    /// symlink is written through (the file it names is replaced atomically); a FIFO, device or
    /// other non-regular file is refused.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Memory budget (bytes, or K/M/G/T) [default: a share of this machine's memory; see train].
    #[arg(long, value_name = "SIZE", value_parser = crate::budget::parse_size)]
    pub max_memory: Option<u64>,
    /// With --format rust: mark the lowest K dense layers frozen, their values a `static FROZEN`
    /// for flash and the others a `static TRAINABLE` (a plain MLP only).
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub freeze: usize,
}

/// Parses the process arguments, runs, prints any error as one line; returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return parse_error(&e),
    };
    crate::quiet::set(cli.quiet);
    // The fastest bit-exact matrix kernels this CPU runs (AVX-512, else AVX2, where present):
    // same bits as the portable ones and the Cortex-M, so results do not depend on the machine.
    // `bench --kernels` can choose otherwise.
    use staticgrad::kernels::{Kernels, select};
    if select(Kernels::Avx512) != Kernels::Avx512 {
        select(Kernels::Avx2);
    }
    match run(cli) {
        Ok(()) => 0,
        Err(e) => e.exit(),
    }
}

/// A command line clap refuses: `--help` and `--version` print as usual (exit 0); a mistake is
/// one line, like every other refusal, with exit code 2.
fn parse_error(e: &clap::Error) -> i32 {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
        || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    {
        let _ = e.print();
        return e.exit_code();
    }
    Error::input(format!("{} (see --help)", one_line(&e.render().to_string()))).exit()
}

/// clap's message on one line: its text before `Usage:` (or its closing "For more information"),
/// a list after a colon (missing arguments) joined with commas, a `tip:` after a semicolon.
fn one_line(text: &str) -> String {
    let mut msg = String::new();
    let mut list = false;
    let end = |l: &&str| !l.starts_with("Usage:") && !l.starts_with("For more information");
    let lines = text.lines().take_while(end).map(str::trim);
    for part in lines.filter(|l| !l.is_empty()) {
        if msg.is_empty() {
            msg = part.strip_prefix("error: ").unwrap_or(part).to_string();
            list = msg.ends_with(':');
            continue;
        }
        if part.starts_with("tip:") {
            list = false;
            msg.push_str("; ");
        } else if list && !msg.ends_with(':') {
            msg.push_str(", ");
        } else {
            msg.push(' ');
        }
        msg.push_str(part);
    }
    if msg.is_empty() { "invalid command line".into() } else { msg }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), Error> {
    let quiet = cli.quiet;
    match cli.command {
        None => train_cmd(&TrainArgs::default(), true, quiet),
        Some(Command::Train(a)) => train_cmd(&a, false, quiet),
        Some(Command::Plan(a)) => plan_cmd(&a),
        Some(Command::Eval(a)) => eval_cmd(&a),
        Some(Command::Export(a)) => export_cmd(&a, quiet),
        Some(Command::Import(a)) => import_cmd(&a, quiet),
        Some(Command::Bench(a)) => bench::run(&a).map_err(|e| e.context("bench")),
        Some(Command::Experiment { force, max_memory, threads, mut which }) => {
            if let Some(t) = threads {
                if t == 0 {
                    return Err(Error::input("--threads 0: at least one thread"));
                }
                if let crate::experiments::ExperimentCmd::Hpsearch(a) = &mut which {
                    a.threads = Some(t);
                }
                // The pool every experiment's parallel parts (and their networks' splits) run on.
                rayon::ThreadPoolBuilder::new().num_threads(t).build_global().map_err(|e| {
                    Error::input(format!("--threads {t}: cannot start the worker threads: {e}"))
                })?;
            }
            which.run_claimed(force, max_memory).map_err(|e| e.context("experiment"))?;
            // Quiet, the experiment printed nothing: say where its summary is.
            let summary = match &which {
                crate::experiments::ExperimentCmd::All(a) => Some(a.out.join("report.md")),
                w => w.out_dir().map(|d| d.join("summary.md")),
            };
            if let Some(p) = summary.filter(|p| quiet && p.is_file()) {
                println!("summary: {}", p.display());
            }
            Ok(())
        }
        Some(Command::Web(a)) => crate::web::run(&a).map_err(|e| e.context("web")),
        Some(Command::Completions { shell }) => {
            let mut out = Vec::new();
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "staticgrad",
                &mut out,
            );
            write_stdout(&out)
        }
        Some(Command::Man { out: None }) => {
            let mut page = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
                .render(&mut page)
                .map_err(|e| Error::output(format!("man page: {e}")))?;
            write_stdout(&page)
        }
        Some(Command::Man { out: Some(dir) }) => {
            let fail = |e: std::io::Error| Error::output(format!("{}: {e}", dir.display()));
            std::fs::create_dir_all(&dir).map_err(fail)?;
            clap_mangen::generate_to(<Cli as clap::CommandFactory>::command(), &dir).map_err(fail)?;
            if !quiet {
                println!(
                    "wrote the manual pages into {} (staticgrad.1 and one per subcommand)",
                    dir.display()
                );
            }
            Ok(())
        }
    }
}

/// Writes a command's whole output to stdout; a closed pipe (`| head`) is not an error.
fn write_stdout(bytes: &[u8]) -> Result<(), Error> {
    use std::io::Write as _;
    match std::io::stdout().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::output(format!("stdout: {e}"))),
        _ => Ok(()),
    }
}

/// `runs/2026-01-31_12-00-00` (UTC), made unique with a suffix if it exists.
pub fn default_out_dir() -> PathBuf {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    let base = format!("runs/{y:04}-{m:02}-{d:02}_{:02}-{:02}-{:02}", rem / 3600, rem / 60 % 60, rem % 60);
    let mut p = PathBuf::from(&base);
    let mut i = 2;
    while p.exists() {
        p = PathBuf::from(format!("{base}-{i}"));
        i += 1;
    }
    p
}

fn train_cmd(a: &TrainArgs, default_run: bool, quiet: bool) -> Result<(), Error> {
    // Everything the run will hold is charged to the budget before it is allocated: a
    // checkpoint to resume from, the model, the data, the tape, the metrics.
    let mut budget = match (&a.resume, &a.config) {
        (None, Some(_)) => None,
        _ => Some(Budget::from_flag(a.max_memory)),
    };
    let resume = match (&a.resume, budget.as_mut()) {
        (Some(dir), Some(b)) => {
            // A folder another run is writing: say so, rather than read a checkpoint mid-run.
            if dir.is_dir() {
                crate::runfolder::check(dir, Mode::InPlace)?;
            }
            Some(Checkpoint::load_within(dir, b)?)
        }
        _ => None,
    };
    let cfg = match &resume {
        Some(ck) => {
            let mut c = ck.meta.config.clone();
            if a.max_steps.is_some() {
                c.max_steps = a.max_steps;
            } else {
                c.max_steps = None;
            }
            set(&mut c.checkpoint_every, a.checkpoint_every);
            c.max_memory = a.max_memory;
            c
        }
        None if default_run => TrainConfig { max_memory: a.max_memory, ..TrainConfig::default_run() },
        None => a.config()?,
    };
    // The budget of a --config run may come from its file.
    let mut budget = budget.unwrap_or_else(|| Budget::from_flag(cfg.max_memory));
    // Everything is validated, charged and loaded before the output folder is touched.
    let mut p = train::prepare_within(&cfg, &mut budget)?;
    if let (None, Some(src)) = (&resume, &cfg.init_from) {
        p.init = Some(initial_weights(src, &p.spec, &mut budget)?);
    }
    if let (Some(ck), Some(m)) = (&resume, cfg.max_steps)
        && m <= ck.meta.step
    {
        return Err(Error::input(format!(
            "--max-steps {m}: the checkpoint is already at step {}; give a larger total",
            ck.meta.step
        )));
    }
    let (out_path, mode) = match (&a.resume, &a.out) {
        (Some(dir), None) => (dir.clone(), Mode::InPlace),
        (Some(dir), Some(o)) if same_path(dir, o) => (o.clone(), Mode::InPlace),
        (_, Some(o)) => (o.clone(), if a.force { Mode::Replace } else { Mode::New }),
        (None, None) => (default_out_dir(), Mode::New),
    };
    // A bad --threads is refused before the output folder is touched.
    let pool = Pool::new(a.threads)?;
    let folder = RunFolder::claim(&out_path, mode)?;
    // Ctrl-C stops at the next step boundary with a checkpoint saved (exit code 130).
    crate::interrupt::install();
    if !quiet {
        announce(&p, resume.as_ref(), default_run);
    }
    let mut out = OutDir::new(folder.dir());
    let result = train::train(&p, resume.as_ref(), Some(&mut out), !quiet, &pool)
        .and_then(|o| train::write_outputs(&mut out, &p, &o).map(|()| o));
    match result {
        Ok(o) => {
            let dir = folder.commit()?;
            summarize(&p, &o, &dir);
            Ok(())
        }
        Err(e) => {
            // A checkpoint is work to go back to (divergence, Ctrl-C, a full disk): its folder
            // stays, named in the message. An earlier run's files are never touched.
            folder.abandon(out.path.join(checkpoint::FILE).exists());
            Err(e)
        }
    }
}

/// The values of `--init-from SRC`, checked to be weights of `spec`'s model: the same widths,
/// activation and batch norm (a dropout ratio is a training setting and may differ).
fn initial_weights(src: &Path, spec: &ModelSpec, budget: &mut Budget) -> Result<Vec<f32>, Error> {
    let (desc, values) = checkpoint::load_weights_within(src, budget)?;
    let file = checkpoint::weights_path(src);
    let theirs = ModelSpec::from_desc(&desc)
        .map_err(|e| Error::input(format!("--init-from {}: {}", file.display(), e.message())))?;
    // A layer string is the whole model (the MLP settings do not apply to it).
    let same = match (&theirs.net, &spec.net) {
        (Some(a), Some(b)) => a == b,
        (None, None) => {
            theirs.widths == spec.widths
                && theirs.activation == spec.activation
                && theirs.batchnorm == spec.batchnorm
        }
        _ => false,
    };
    if !same {
        return Err(Error::input(format!(
            "--init-from {}: weights of {desc}, the run's model is {} (--layers, --activation, --no-batchnorm)",
            file.display(),
            spec.desc_string()
        )));
    }
    if values.len() != spec.layout().param_len() {
        return Err(Error::input(format!(
            "--init-from {}: {} parameters, the model {desc} needs {}",
            file.display(),
            values.len(),
            spec.layout().param_len()
        )));
    }
    Ok(values)
}

/// True if `a` and `b` name the same existing folder.
fn same_path(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

fn announce(p: &Prepared, resume: Option<&Checkpoint>, default_run: bool) {
    let s = &p.splits;
    if default_run {
        println!("staticgrad: no subcommand given, so training the default model (see `staticgrad --help`)");
    }
    let what = match resume {
        Some(ck) => format!("resuming at step {}:", ck.meta.step),
        None => match &p.cfg.init_from {
            Some(src) => format!("training from the weights in {},", checkpoint::weights_path(src).display()),
            None => "training".into(),
        },
    };
    if let Some(line) = frozen_line(p) {
        println!("{line}");
    }
    println!(
        "{what} {} on {} ({} train, {} validation, {} test), {} lr {}, batch {}, {} epochs",
        p.spec.desc_string(),
        p.cfg.data_name(),
        s.train.len(),
        s.val.len(),
        s.test.len(),
        p.cfg.optimizer,
        p.lr,
        p.cfg.batch,
        p.cfg.epochs
    );
}

/// `frozen: the lowest 1 weight layer(s), dense100,bn,relu (78,900 values, unchanged)`, if any.
fn frozen_line(p: &Prepared) -> Option<String> {
    let f = p.spec.frozen.as_ref()?;
    Some(format!(
        "frozen: the lowest {} weight layer(s), {} ({} values kept as loaded; evaluation mode)",
        f.weight_layers,
        p.spec.frozen_names().join(","),
        p.spec.model().frozen_len()
    ))
}

fn summarize(p: &Prepared, o: &train::Outcome, out: &Path) {
    let acc = |a: Option<f32>| a.map_or("—".to_string(), |a| format!("{a:.4}"));
    if let Some(e) = o.last() {
        println!(
            "done: {} steps in {:.1} s; accuracy train {}, validation {}, held-out test {}",
            o.steps.len(),
            o.elapsed_s,
            acc(Some(e.train_acc)),
            acc(e.val_acc),
            acc(e.test_acc)
        );
    } else {
        println!(
            "stopped after {} steps ({:.1} s), before the first epoch ended",
            o.steps.len(),
            o.elapsed_s
        );
    }
    if o.stopped {
        println!("stopped by --max-steps; continue with: staticgrad train --resume {}", out.display());
    }
    let pl = &o.plan;
    let kib = |floats: usize| floats as f64 * 4.0 / 1024.0;
    println!(
        "memory plan ({}): {:.1} KiB = parameters {:.1} + gradients {:.1} + optimizer state {:.1} + tape {:.1} KiB ({} nodes); `staticgrad plan` for the table",
        p.cfg.optimizer,
        pl.total_bytes() as f64 / 1024.0,
        kib(pl.param_floats),
        kib(pl.grad_floats),
        kib(pl.state_floats),
        kib(pl.tape_floats),
        pl.tape_nodes,
    );
    if let Some(line) = frozen_line(p) {
        println!("{line}");
    }
    println!("report: {}", out.join("report.md").display());
}

fn plan_cmd(a: &PlanArgs) -> Result<(), Error> {
    let cfg = TrainConfig {
        layers: a.layers.clone(),
        batchnorm: a.batchnorm,
        dropout: a.dropout,
        optimizer: a.optimizer.clone(),
        batch: a.batch,
        ..TrainConfig::default()
    };
    cfg.validate()?;
    let spec = ModelSpec::from_config(&cfg)?;
    let opt = model::optimizer(&cfg)?;
    let pl = train::plan(&spec, a.batch, &opt)?;
    println!("memory plan of {}, batch {}, {} (training step)\n", spec.desc_string(), a.batch, opt.name());
    print!("{}", crate::report::plan::plan_table(&pl));
    println!("\nfor a firmware:");
    println!(
        "    static mut PARAMS: [f32; {}] = [0.0; {}];  // and as many gradient floats",
        pl.param_floats, pl.param_floats
    );
    println!(
        "    static mut TABLE: [ParamEntry; {}] = [ParamEntry::EMPTY; {}];",
        pl.param_tensors, pl.param_tensors
    );
    println!("    static mut STATE: [f32; {}] = [0.0; {}];", pl.state_floats, pl.state_floats);
    println!("    static mut TAPE: [f32; {}] = [0.0; {}];", pl.tape_floats, pl.tape_floats);
    println!("    static mut NODES: [Node; {}] = [Node::EMPTY; {}];", pl.tape_nodes, pl.tape_nodes);
    Ok(())
}

fn eval_cmd(a: &EvalArgs) -> Result<(), Error> {
    let mut cfg = TrainConfig::default();
    a.data.apply(&mut cfg);
    cfg.validate()?;
    if a.batch == 0 {
        return Err(Error::input("--batch 0: the batch size must be at least 1"));
    }
    let mut budget = Budget::from_flag(a.max_memory);
    let (desc, values) = checkpoint::load_weights_within(&a.weights, &mut budget)?;
    let wpath = checkpoint::weights_path(&a.weights);
    let spec = ModelSpec::from_desc(&desc)?;
    // The widths come from the file: every size fits in usize before anything is charged.
    spec.model().validate().map_err(|e| Error::input(format!("{}: model {desc}: {e}", wpath.display())))?;
    train::plan(&spec, 1, &staticgrad::Optimizer::sgd())?;
    let mlp = spec.model();
    let need = budget::sum(&[
        budget::of::<f32>(mlp.param_len()).and_then(|b| b.checked_mul(2)),
        budget::of::<ParamEntry>(mlp.param_tensors()),
    ]);
    budget.charge(&format!("{}: the model {desc}", wpath.display()), need)?;
    let splits = train::load_data_within(&cfg, &mut budget)?;
    train::check_fit(&spec, &splits)
        .map_err(|e| Error::input(format!("{}: {} (weights hold {desc})", wpath.display(), e.message())))?;
    if values.len() != mlp.param_len() {
        return Err(Error::input(format!(
            "{}: {} parameters, the model {desc} needs {}",
            wpath.display(),
            values.len(),
            mlp.param_len()
        )));
    }
    let (set, name) =
        if splits.test.is_empty() { (&splits.train, "training") } else { (&splits.test, "test") };
    // A pass of more rows than the set holds is the whole set: the tape is sized for that.
    let rows = a.batch.min(set.len()).max(1);
    // A trainer of one row (its step is never taken) whose tape also holds an evaluation pass.
    let sgd = staticgrad::Optimizer::sgd();
    let one = mlp.try_plan(1, &sgd).map_err(Error::failed)?;
    let pl = Plan {
        tape_floats: one.tape_floats.max(mlp.eval_tape_floats(rows)),
        tape_nodes: one.tape_nodes.max(mlp.eval_tape_nodes()),
        ..one
    };
    let need = budget::sum(&[
        budget::of::<f32>(pl.tape_floats).filter(|_| pl.tape_floats != usize::MAX),
        budget::of::<Node>(pl.tape_nodes),
        budget::of::<f32>(pl.state_floats),
        rows.checked_mul(set.features).and_then(budget::of::<f32>),
    ]);
    budget
        .charge(&format!("--batch {} ({rows} rows used) with the model {desc}: the tape", a.batch), need)?;
    let mut memory = OwnedMemory::new(&pl);
    let pool = Pool::new(a.threads)?;
    let mut trainer =
        Trainer::new(&mlp, &sgd, 1, memory.memory()).map_err(Error::failed)?.with_parallel(pool.driver());
    trainer.params_mut().values_mut().copy_from_slice(&values);
    let acc = train::accuracy(&mut trainer, set, rows)?.unwrap_or(0.0);
    println!(
        "{desc}: accuracy {acc:.4} ({} of {} {name} examples of {})",
        (acc * set.len() as f32).round() as usize,
        set.len(),
        cfg.data_name()
    );
    Ok(())
}

/// The weights as a Rust source file of `const`s.
pub fn rust_source(
    desc: &staticgrad::weights::ModelDesc,
    params: &[f32],
    from: &str,
) -> Result<String, Error> {
    rust_module(desc, params, from, 0)
}

/// The `Layer` list of a plain MLP (no batch norm, no dropout, no layer string) as Rust source,
/// the lowest `freeze` dense layers frozen; `None` for any other model.
fn rust_layers(desc: &staticgrad::weights::ModelDesc, freeze: usize) -> Option<Vec<String>> {
    if desc.net().is_some() || desc.batchnorm() || desc.dropout != 0.0 {
        return None;
    }
    let act = match desc.activation_name() {
        "relu" => "Relu",
        "sigmoid" => "Sigmoid",
        "tanh" => "Tanh",
        _ => return None,
    };
    let widths = desc.widths();
    let mut layers = Vec::new();
    for (l, &units) in widths.iter().skip(1).enumerate() {
        let frozen = if l < freeze { ".frozen()" } else { "" };
        layers.push(format!("staticgrad::Layer::dense({units}){frozen}"));
        if l + 2 < widths.len() {
            layers.push(format!("staticgrad::Layer::activation(staticgrad::Activation::{act})"));
        }
    }
    Some(layers)
}

fn rust_array(s: &mut String, values: &[f32]) {
    use std::fmt::Write as _;
    for chunk in values.chunks(8) {
        let line: Vec<String> = chunk.iter().map(|v| format!("{v:?}")).collect();
        let _ = writeln!(s, "    {},", line.join(", "));
    }
    s.push_str("];\n");
}

/// The weights as a Rust module a firmware declares (`mod base;`) or `include!`s: besides the
/// description `const`s, a plain MLP's model as a `const` of real `Layer` values (`LAYERS`,
/// `MODEL`), and with `freeze > 0` its lowest `freeze` dense layers marked frozen, their values
/// a `static FROZEN` (flash: `Memory::frozen`) and the others a `static TRAINABLE`.
pub fn rust_module(
    desc: &staticgrad::weights::ModelDesc,
    params: &[f32],
    from: &str,
    freeze: usize,
) -> Result<String, Error> {
    use std::fmt::Write as _;
    if let Some(i) = params.iter().position(|v| !v.is_finite()) {
        return Err(Error::input(format!("{from}: parameter {i} is not finite")));
    }
    let widths: Vec<usize> = desc.widths().iter().map(|&w| w as usize).collect();
    let layers = rust_layers(desc, freeze);
    if freeze > 0 && layers.is_none() {
        return Err(Error::input(format!(
            "--freeze {freeze}: {desc} is not a plain MLP (batch norm, dropout or a layer string): only a plain MLP's layers are exported as `Layer` values"
        )));
    }
    if freeze >= widths.len().saturating_sub(1) && freeze > 0 {
        return Err(Error::input(format!(
            "--freeze {freeze}: {desc} has {} dense layers; at least the top one must stay trainable",
            widths.len().saturating_sub(1)
        )));
    }
    let frozen_len: usize = widths.windows(2).take(freeze).map(|w| w[0] * w[1] + w[1]).sum();
    let mut s = String::new();
    let _ =
        writeln!(s, "//! Trained weights of a {desc} network, exported by `staticgrad export` from {from}.");
    if freeze > 0 {
        let _ = writeln!(
            s,
            "//! Parameter order is the model's `Params` layout: `FROZEN` (flash) then `TRAINABLE`."
        );
    } else {
        let _ = writeln!(
            s,
            "//! Parameter order is the model's `Params` layout; copy `PARAMS` into its value buffer."
        );
    }
    let _ = writeln!(s, "//! Every value is written so that it parses back to the exact trained `f32`.\n");
    let _ = writeln!(s, "/// Layer widths, input first.");
    let _ =
        writeln!(s, "pub const WIDTHS: [usize; {}] = [{}];", widths.len(), join(&widths).replace(',', ", "));
    if let Some(net) = desc.net() {
        let _ =
            writeln!(s, "/// The model as a layer string (the widths are its input features and outputs).");
        let _ = writeln!(s, "pub const NET: &str = {net:?};");
    }
    let _ = writeln!(s, "/// Hidden activation.");
    let _ = writeln!(s, "pub const ACTIVATION: &str = {:?};", desc.activation_name());
    let _ = writeln!(s, "/// Batch-norm after each hidden layer.");
    let _ = writeln!(s, "pub const BATCHNORM: bool = {};", desc.batchnorm());
    let _ = writeln!(s, "/// Dropout ratio used in training (identity at inference).");
    let _ = writeln!(s, "pub const DROPOUT: f32 = {:?};", desc.dropout);
    if let Some(layers) = &layers {
        let _ = writeln!(
            s,
            "/// The model's layers as `staticgrad` values{}.",
            if freeze > 0 { format!(", the lowest {freeze} dense layer(s) frozen") } else { String::new() }
        );
        let _ = writeln!(s, "pub const LAYERS: [staticgrad::Layer; {}] = [", layers.len());
        for l in layers {
            let _ = writeln!(s, "    {l},");
        }
        s.push_str("];\n");
        let _ = writeln!(s, "/// The model (He-normal initialisation, softmax cross-entropy: the runner's).");
        let _ = writeln!(
            s,
            "pub const MODEL: staticgrad::Model<'static> = staticgrad::Model::new({}, &LAYERS);",
            widths.first().copied().unwrap_or(0)
        );
    }
    if freeze > 0 && params.len() > frozen_len {
        let _ =
            writeln!(s, "/// The frozen layers' values, read-only (`MODEL.frozen_len()` floats): a firmware");
        let _ = writeln!(s, "/// keeps them in flash and hands them to its trainer as `Memory::frozen`.");
        let _ = writeln!(s, "pub static FROZEN: [f32; {frozen_len}] = [");
        rust_array(&mut s, &params[..frozen_len]);
        let _ = writeln!(
            s,
            "/// The trainable layers' start values (`MODEL.param_len()` floats): copy them into"
        );
        let _ = writeln!(s, "/// the trainer's parameters.");
        let _ = writeln!(s, "pub static TRAINABLE: [f32; {}] = [", params.len() - frozen_len);
        rust_array(&mut s, &params[frozen_len..]);
        return Ok(s);
    }
    let _ = writeln!(s, "/// Every parameter value (batch-norm running statistics included).");
    let _ = writeln!(s, "pub const PARAMS: [f32; {}] = [", params.len());
    rust_array(&mut s, params);
    Ok(s)
}

/// Where `export --out PATH` writes: PATH itself if it is a regular file or does not exist; the
/// file a symlink points to (written through, the link stays a link); anything else that is not
/// a regular file (a FIFO, a device, a socket, a folder) is refused, never replaced by a rename.
/// `refusal` ends the message of a refusal (who writes only regular files).
fn export_destination(path: &Path, refusal: &str) -> Result<PathBuf, Error> {
    use std::os::unix::fs::FileTypeExt as _;
    let mut p = path.to_path_buf();
    // Follow a chain of symlinks (at most 40, as the kernel does) to what they name.
    for _ in 0..40 {
        let m = match std::fs::symlink_metadata(&p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(p),
            Err(e) => return Err(Error::input(format!("{}: {e}", path.display()))),
            Ok(m) => m,
        };
        let t = m.file_type();
        if t.is_symlink() {
            let target =
                std::fs::read_link(&p).map_err(|e| Error::input(format!("{}: {e}", path.display())))?;
            p = p.parent().map_or(target.clone(), |d| d.join(&target));
            continue;
        }
        if t.is_file() {
            return Ok(p);
        }
        let what = if t.is_dir() {
            "a folder"
        } else if t.is_fifo() {
            "a FIFO"
        } else if t.is_char_device() || t.is_block_device() {
            "a device"
        } else if t.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        let via = if p == path { String::new() } else { format!(" (via symlink to {})", p.display()) };
        return Err(Error::input(format!("{}: is {what}{via}; {refusal}", path.display())));
    }
    Err(Error::input(format!("{}: too many levels of symbolic links", path.display())))
}

/// Bytes of Rust source per parameter, at most: `{v:?}` of an `f32` is at most 15 characters,
/// plus `, ` and its share of a line and of the line's eight formatted strings.
pub const RUST_BYTES_PER_PARAM: u64 = 64;

fn export_cmd(a: &ExportArgs, quiet: bool) -> Result<(), Error> {
    if a.freeze > 0 && !matches!(a.format, Format::Rust) {
        return Err(Error::input(format!("--freeze {}: only with --format rust", a.freeze)));
    }
    let mut budget = Budget::from_flag(a.max_memory);
    let (desc, params) = checkpoint::load_weights_within(&a.weights, &mut budget)?;
    let src = checkpoint::weights_path(&a.weights);
    let need = match a.format {
        Format::Rust => {
            (params.len() as u64).checked_mul(RUST_BYTES_PER_PARAM).and_then(|b| b.checked_add(4096))
        }
        Format::Bin => Some(desc.file_len(params.len(), 0) as u64),
        Format::Safetensors => crate::safetensors::export_len(params.len(), 2 * desc.widths().len()),
    };
    budget.charge(&format!("--format {:?} of {} parameters", a.format, params.len()).to_lowercase(), need)?;
    let bytes = match a.format {
        Format::Rust => rust_module(&desc, &params, &src.display().to_string(), a.freeze)?.into_bytes(),
        Format::Bin => checkpoint::encode_weights(&desc, &params),
        Format::Safetensors => {
            let spec = ModelSpec::from_desc(&desc)?;
            crate::safetensors::export(&spec, &params, &src.display().to_string())?
        }
    };
    let ext = match a.format {
        Format::Rust => "rs",
        Format::Bin => "bin",
        Format::Safetensors => "safetensors",
    };
    let out = a.out.clone().unwrap_or_else(|| src.with_extension(ext));
    if out.as_os_str() == "-" {
        use std::io::Write as _;
        return std::io::stdout().write_all(&bytes).map_err(|e| Error::output(format!("stdout: {e}")));
    }
    let dest = export_destination(&out, "export writes regular files only (--out - writes to stdout)")?;
    crate::report::write_atomic(&dest, &bytes)
        .map_err(|e| Error::input(format!("{}: {e}", out.display())))?;
    if !quiet {
        println!("wrote {} ({} parameters of {desc}, {} bytes)", out.display(), params.len(), bytes.len());
    }
    Ok(())
}

fn import_cmd(a: &ImportArgs, quiet: bool) -> Result<(), Error> {
    let file = a.file.display().to_string();
    let cfg = TrainConfig {
        layers: a.layers.clone(),
        activation: a.activation.clone(),
        batchnorm: false,
        ..TrainConfig::default()
    };
    cfg.validate()?;
    let spec = ModelSpec::from_config(&cfg)?;
    let desc = spec.desc()?;
    let dest = if a.out.extension().is_some_and(|e| e == "bin") {
        a.out.clone()
    } else if a.out.exists() && !a.out.is_dir() {
        return Err(Error::input(format!(
            "--out {}: not a folder; give a folder or a file name ending in .bin",
            a.out.display()
        )));
    } else {
        a.out.join(checkpoint::WEIGHTS)
    };
    // A symlink is written through; a FIFO, device or folder is refused, as for export.
    let dest = export_destination(&dest, "import writes regular files only")?;
    if dest.exists() && !a.force {
        return Err(Error::input(format!("{}: exists; --force replaces it", dest.display())));
    }
    let mut budget = Budget::from_flag(a.max_memory);
    let len = std::fs::metadata(&a.file).map_err(|e| Error::input(format!("{file}: {e}")))?.len();
    budget.charge(&format!("{file}: {len} bytes"), Some(len))?;
    let params = spec.model().param_len();
    // Floats held at once, at most: the values, a gradient buffer as long (unused), one tensor
    // converted, the values returned; then the table and the encoded file.
    let need = budget::sum(&[
        budget::of::<f32>(params).and_then(|b| b.checked_mul(4)),
        budget::of::<ParamEntry>(spec.model().param_tensors()),
        Some(staticgrad::weights::encoded_len(desc.widths().len(), params, 0) as u64),
    ]);
    budget.charge(&format!("--layers {}: the model", join(&a.layers)), need)?;
    let bytes = budget::read_at_most(&a.file, len).map_err(|e| Error::input(format!("{file}: {e}")))?;
    let values = crate::safetensors::import(&bytes, &spec, a.names.as_deref(), &file)?;
    let encoded = checkpoint::encode_weights(&desc, &values);
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::output(format!("{}: {e}", dir.display())))?;
    }
    crate::report::write_atomic(&dest, &encoded)
        .map_err(|e| Error::output(format!("{}: {e}", dest.display())))?;
    if !quiet {
        println!("wrote {} ({} parameters of {desc}, from {file})", dest.display(), values.len());
    }
    Ok(())
}
