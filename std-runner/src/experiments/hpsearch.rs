//! Experiment 8 (book §6.5, Figs. 6-24 and 6-25): random search of the learning rate and the weight
//! decay on a log scale, judged on a validation split, and a second search narrowed to the box the
//! best trials span.
//!
//! 500 images (the first 500 bundled, shuffled once): the first 20 % validate, the other 400
//! train a 6×100 ReLU network (He init) with SGD, batch 100, 50 epochs (evaluations after
//! iterations 0, 4, …, 196). Each trial draws weight decay = 10^U(−8, −4), then lr = 10^U(−6, −2),
//! as the book does.
//!
//! Every trial's generator is derived from `(seed, stage, trial index)` alone, so trials run in
//! parallel (rayon) in any order and on any number of threads with the same result, `--shard K/N`
//! runs the trials `i ≡ K (mod N)` (for a scheduler's job array), and `hpsearch merge` joins the
//! shards' `trials.jsonl` into exactly the unsharded result.

use std::path::PathBuf;

use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro128PlusPlus;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use staticgrad::init::Init;
use staticgrad::model::{Activation, Loss, MlpSpec};
use staticgrad::optim::{Optimizer, WeightDecay};
use staticgrad::{Dropout, DropoutForm};

use crate::budget::Budget;

use super::overfit::{train_curves, widths};
use super::{Check, Output, Result, fmt, mnist_common, reference};
use crate::Error;
use crate::data::Dataset;
use crate::report::chart::{self, Chart, Series, Style};

/// `staticgrad experiment hpsearch merge`.
#[derive(clap::Subcommand, Clone, Debug)]
pub enum HpCmd {
    /// Join the `trials.jsonl` files of `--shard` runs into one result (same files as an unsharded run).
    Merge {
        /// The shards' `trials.jsonl` files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Output folder of the merged result.
        #[arg(long, default_value = "runs/hpsearch")]
        out: PathBuf,
        /// Best trials drawn in the figure.
        #[arg(long, default_value_t = 20)]
        top: usize,
        /// Write the result even if trials are missing (it says which); without it a missing
        /// trial is an error (exit code 2) and nothing is written.
        #[arg(long)]
        allow_incomplete: bool,
    },
}

/// Settings of `staticgrad experiment hpsearch`.
#[derive(clap::Args, Clone, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    /// Merge shards instead of searching.
    #[command(subcommand)]
    pub cmd: Option<HpCmd>,
    /// Output folder.
    #[arg(long, default_value = "runs/hpsearch")]
    pub out: PathBuf,
    /// Trials per search (the book: 100).
    #[arg(long, default_value_t = 100)]
    pub trials: usize,
    /// Images: the first N bundled, shuffled once (the book: 500).
    #[arg(long, default_value_t = 500)]
    pub samples: usize,
    /// Share of the shuffled images used for validation (the book: 0.2).
    #[arg(long, default_value_t = 0.2)]
    pub val_frac: f64,
    /// Evaluations (epochs of train/batch iterations; the book: 50).
    #[arg(long, default_value_t = 50)]
    pub epochs: usize,
    /// Mini-batch size (the book: 100).
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Hidden layers of 100 units (the book: 6).
    #[arg(long, default_value_t = 6)]
    pub hidden: usize,
    /// log10 range of the learning rate (the book: −6 to −2).
    #[arg(long, num_args = 2, value_names = ["LO", "HI"], allow_negative_numbers = true, action = clap::ArgAction::Set, default_values_t = [-6.0, -2.0])]
    pub lr_exp: Vec<f64>,
    /// log10 range of the weight decay (the book: −8 to −4).
    #[arg(long, num_args = 2, value_names = ["LO", "HI"], allow_negative_numbers = true, action = clap::ArgAction::Set, default_values_t = [-8.0, -4.0])]
    pub wd_exp: Vec<f64>,
    /// Best trials drawn in the figure (the book: 20).
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// After the search, search again in the box (log lr × log wd) spanned by the best `--narrow-top` trials.
    #[arg(long)]
    pub narrow: bool,
    /// Trials that define the narrowed box.
    #[arg(long, default_value_t = 10)]
    pub narrow_top: usize,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Run only the trials i with i mod N = K (K from 0), e.g. `--shard 3/8` for task 3 of a job
    /// array. Without it, K/N come from the scheduler: a Slurm job array (`SLURM_ARRAY_TASK_ID`
    /// minus `SLURM_ARRAY_TASK_MIN`, of `SLURM_ARRAY_TASK_COUNT`) or a Kubernetes Indexed Job
    /// (`JOB_COMPLETION_INDEX`, of `--shards` or `STATICGRAD_SHARDS`).
    #[arg(long, value_parser = parse_shard, help_heading = "Sharding")]
    pub shard: Option<(usize, usize)>,
    /// Number of shards when the index comes from the scheduler: a Kubernetes Indexed Job's
    /// `completions` (or set `STATICGRAD_SHARDS`); for Slurm it replaces `SLURM_ARRAY_TASK_COUNT`.
    #[arg(long, value_name = "N", conflicts_with = "shard", help_heading = "Sharding")]
    pub shards: Option<usize>,
    /// Run every trial even inside a job array (ignore the scheduler's variables).
    #[arg(long, conflicts_with_all = ["shard", "shards"], help_heading = "Sharding")]
    pub no_scheduler_env: bool,
    /// Continue the search in --out (a preempted or requeued task): trials already in its
    /// `trials.done.jsonl` or `trials.jsonl` are kept, not run again. A missing or empty --out
    /// starts the search.
    #[arg(long, help_heading = "Sharding")]
    pub resume: bool,
    /// Search on these MNIST-format files (train-images-idx3-ubyte, train-labels-idx1-ubyte,
    /// plain or .gz) instead of the bundled images; the first --samples are used.
    #[arg(long, value_name = "DIR", conflicts_with = "csv", help_heading = "Data")]
    pub mnist_dir: Option<PathBuf>,
    /// Search on a CSV file (a label column, every other column a feature).
    #[arg(long, value_name = "FILE", help_heading = "Data")]
    pub csv: Option<PathBuf>,
    /// CSV column (0-based) holding the class label.
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = "Data")]
    pub csv_label_col: usize,
    /// The CSV file starts with a header line.
    #[arg(long, help_heading = "Data")]
    pub csv_header: bool,
    /// CSV feature values are divided by this.
    #[arg(long, value_name = "X", default_value_t = 255.0, help_heading = "Data")]
    pub csv_scale: f32,
    /// The network's widths, input to output (e.g. `784,300,100,10`; ReLU, He init), instead of
    /// --hidden layers of 100. The input must equal the data's features.
    #[arg(long, value_name = "WIDTHS", conflicts_with = "hidden", help_heading = "Search space")]
    pub layers: Option<String>,
    /// Also draw the book's dropout ratio, uniformly in [LO, HI] (e.g. `--dropout 0 0.5`).
    #[arg(long, num_args = 2, value_names = ["LO", "HI"], help_heading = "Search space")]
    pub dropout: Option<Vec<f64>>,
    /// Also draw the batch size from these (e.g. `--batch-sizes 32,100,256`; replaces --batch).
    #[arg(long, value_delimiter = ',', value_name = "B,…", help_heading = "Search space")]
    pub batch_sizes: Vec<usize>,
    /// Also draw the update rule from these (e.g. `--optimizers sgd,momentum,adam`; weight decay
    /// is coupled L2, decoupled for adamw).
    #[arg(long, value_delimiter = ',', value_name = "NAME,…", help_heading = "Search space")]
    pub optimizers: Vec<String>,
    /// Seed of the shuffle and of every trial.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Environment variable holding the number of shards of a Kubernetes Indexed Job (its
/// `completions`), which Kubernetes does not pass to the pods itself.
pub const SHARDS_ENV: &str = "STATICGRAD_SHARDS";

/// This task's shard `(K, N)` and where it came from: `--shard`, else the scheduler's variables
/// read through `env` (a Slurm job array, then a Kubernetes Indexed Job), else `None` (every
/// trial). `shards` is `--shards`. A variable that is set but unusable is an error naming it.
pub fn resolve_shard(
    flag: Option<(usize, usize)>,
    shards: Option<usize>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<((usize, usize), String)>> {
    if let Some(s) = flag {
        return Ok(Some((s, format!("--shard {}/{}", s.0, s.1))));
    }
    let num = |name: &str| -> Result<Option<usize>> {
        match env(name) {
            None => Ok(None),
            Some(v) if v.trim().is_empty() => Ok(None),
            Some(v) => v
                .trim()
                .parse::<usize>()
                .map(Some)
                .map_err(|_| Error::Input(format!("{name}={v:?}: not a whole number ≥ 0"))),
        }
    };
    let within = |k: usize, n: usize, from: String| -> Result<Option<((usize, usize), String)>> {
        if n == 0 || k >= n {
            return Err(Error::Input(format!("{from}: shard {k} of {n} is out of range (need 0 ≤ K < N)")));
        }
        Ok(Some(((k, n), from)))
    };
    if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
        // Arrays are often 1-based (`--array=1-8`): the shard is the offset from the first task.
        let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        if let Some(step) = num("SLURM_ARRAY_TASK_STEP")?
            && step != 1
        {
            return Err(Error::Input(format!(
                "SLURM_ARRAY_TASK_STEP={step}: an array with a step leaves gaps between shards; use --array=LO-HI, or give --shard K/N"
            )));
        }
        let count = match (shards, num("SLURM_ARRAY_TASK_COUNT")?, num("SLURM_ARRAY_TASK_MAX")?) {
            (Some(n), _, _) | (None, Some(n), _) => n,
            (None, None, Some(max)) => max.saturating_sub(min).saturating_add(1),
            (None, None, None) => {
                return Err(Error::Input(format!(
                    "SLURM_ARRAY_TASK_ID={id} but neither SLURM_ARRAY_TASK_COUNT nor SLURM_ARRAY_TASK_MAX is set: give --shards N"
                )));
            }
        };
        let Some(k) = id.checked_sub(min) else {
            return Err(Error::Input(format!(
                "SLURM_ARRAY_TASK_ID={id} is below SLURM_ARRAY_TASK_MIN={min}"
            )));
        };
        return within(k, count, format!("Slurm array task {id} (first {min}, {count} tasks)"));
    }
    if let Some(k) = num("JOB_COMPLETION_INDEX")? {
        let Some(n) = shards.or(num(SHARDS_ENV)?) else {
            return Err(Error::Input(format!(
                "JOB_COMPLETION_INDEX={k} (a Kubernetes Indexed Job) but the number of shards is unknown: give --shards N (the Job's completions) or set {SHARDS_ENV}"
            )));
        };
        return within(k, n, format!("Kubernetes completion index {k} of {n}"));
    }
    if let Some(n) = shards {
        return Err(Error::Input(format!(
            "--shards {n}: no shard index (SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX is not set); give --shard K/{n}"
        )));
    }
    Ok(None)
}

fn parse_shard(s: &str) -> std::result::Result<(usize, usize), String> {
    let (k, n) = s.split_once('/').ok_or_else(|| format!("{s:?} is not K/N"))?;
    let k: usize = k.trim().parse().map_err(|_| format!("{k:?} is not a number"))?;
    let n: usize = n.trim().parse().map_err(|_| format!("{n:?} is not a number"))?;
    if n == 0 || k >= n {
        return Err(format!("shard {k}/{n}: need 0 ≤ K < N"));
    }
    Ok((k, n))
}

/// The settings that define a search: shards must agree on them to be merged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Search {
    /// Seed.
    pub seed: u64,
    /// Trials in the search.
    pub trials: usize,
    /// Images.
    pub samples: usize,
    /// Validation share.
    pub val_frac: f64,
    /// Evaluations.
    pub epochs: usize,
    /// Batch size.
    pub batch: usize,
    /// Hidden layers.
    pub hidden: usize,
    /// log10 range of the learning rate.
    pub lr_exp: [f64; 2],
    /// log10 range of the weight decay.
    pub wd_exp: [f64; 2],
    /// "broad" or "narrow".
    pub stage: String,
    /// The user's data (absent: the bundled images).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<UserData>,
    /// The network's widths (absent: 784, `hidden` × 100, 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<usize>>,
    /// Range of the book's dropout ratio, if searched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropout: Option<[f64; 2]>,
    /// Batch sizes to draw from, if searched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batch_sizes: Vec<usize>,
    /// Update rules to draw from, if searched (names of [`staticgrad::optim::NAMES`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub optimizers: Vec<String>,
}

/// Data of the user's (`--mnist-dir` or `--csv`), recorded in the search so shards agree on it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserData {
    /// An MNIST-format folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mnist_dir: Option<PathBuf>,
    /// A CSV file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<PathBuf>,
    /// CSV label column.
    pub csv_label_col: usize,
    /// CSV header line.
    pub csv_header: bool,
    /// CSV feature scale.
    pub csv_scale: f32,
}

impl Search {
    /// True for the book's search: bundled images, its network, only lr and weight decay drawn.
    pub fn is_book(&self) -> bool {
        self.data.is_none()
            && self.layers.is_none()
            && self.dropout.is_none()
            && self.batch_sizes.is_empty()
            && self.optimizers.is_empty()
    }
}

/// One trial: one line of `trials.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// Index within its search.
    pub trial: usize,
    /// Learning rate.
    pub lr: f32,
    /// Weight decay λ (coupled L2).
    pub weight_decay: f32,
    /// Validation accuracy at the last evaluation.
    pub val_acc: f64,
    /// Training accuracy at the last evaluation.
    pub train_acc: f64,
    /// Validation accuracy per evaluation.
    pub val_curve: Vec<f64>,
    /// Training accuracy per evaluation.
    pub train_curve: Vec<f64>,
    /// Dropout ratio drawn (book form), if the search draws one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropout: Option<f32>,
    /// Batch size drawn, if the search draws one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    /// Update rule drawn, if the search draws one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimizer: Option<String>,
    /// The search it belongs to.
    pub search: Search,
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The generator of trial `i` of `stage` (0 broad, 1 narrow): a function of the seed and the
/// index only.
pub fn trial_rng(seed: u64, stage: u64, i: usize) -> Xoshiro128PlusPlus {
    Xoshiro128PlusPlus::seed_from_u64(mix(mix(seed ^ 0x6A09_E667_F3BC_C908)
        ^ mix(stage.wrapping_add(1))
        ^ i as u64))
}

fn uniform(rng: &mut impl Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * ((rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
}

/// The 500 images shuffled once with `seed`: (train, validation).
pub fn data(samples: usize, val_frac: f64, seed: u64) -> Result<(Dataset, Dataset)> {
    data_from(None, samples, val_frac, seed)
}

/// The first `samples` examples of `source` (the bundled images if `None`) shuffled once with
/// `seed`: (train, validation). The user's files are charged to this process's default budget
/// as they are read.
pub fn data_from(
    source: Option<&UserData>,
    samples: usize,
    val_frac: f64,
    seed: u64,
) -> Result<(Dataset, Dataset)> {
    if !(0.0..1.0).contains(&val_frac) {
        return Err(Error::Input(format!("--val-frac {val_frac} is not in [0, 1)")));
    }
    let all = match source {
        None => {
            let all = mnist_common::load()?;
            mnist_common::split_head_tail(&all, samples, 0)?.0
        }
        Some(u) => {
            let mut budget = Budget::default_for_this_process();
            if let Some(dir) = &u.mnist_dir {
                crate::data::read_mnist_dir(dir, &mut budget)?.0
            } else if let Some(csv) = &u.csv {
                let fmt = crate::data::CsvFormat {
                    label_col: u.csv_label_col,
                    header: u.csv_header,
                    scale: u.csv_scale,
                };
                let mut d = crate::data::read_csv_within(csv, &fmt, &mut budget)?;
                d.source = csv.display().to_string();
                d
            } else {
                mnist_common::load()?
            }
        }
    };
    if all.len() < samples {
        return Err(Error::Input(format!(
            "--samples {samples}: {} holds {} examples",
            all.source,
            all.len()
        )));
    }
    let pool = all.slice(0..samples);
    let mut order: Vec<usize> = (0..samples).collect();
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(mix(seed ^ 0x5EED));
    for i in (1..samples).rev() {
        order.swap(i, crate::data::below(&mut rng, i + 1));
    }
    let shuffled = pool.select(&order);
    let nval = (samples as f64 * val_frac) as usize;
    if nval == 0 || nval >= samples {
        return Err(Error::Input(format!("--val-frac {val_frac} of {samples} images leaves an empty split")));
    }
    Ok((shuffled.slice(nval..samples), shuffled.slice(0..nval)))
}

/// The network of a search on data with `features` inputs and labels below `classes`: `--layers`,
/// else `hidden` layers of 100 between them; refused if it does not fit the data.
pub fn search_widths(search: &Search, features: usize, classes: usize) -> Result<Vec<usize>> {
    let w = match &search.layers {
        Some(l) => l.clone(),
        None => {
            let mut w = widths(search.hidden);
            w[0] = features;
            if let Some(last) = w.last_mut() {
                *last = classes.max(2);
            }
            w
        }
    };
    let shown = w.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",");
    if w.first() != Some(&features) {
        return Err(Error::Input(format!(
            "--layers {shown}: the first width must equal the data's {features} features per example"
        )));
    }
    if w.last().is_none_or(|&o| o < classes) {
        return Err(Error::Input(format!(
            "--layers {shown}: the last width must be at least the {classes} classes"
        )));
    }
    Ok(w)
}

/// Runs trial `i` of `search`.
pub fn run_trial(search: &Search, train: &Dataset, val: &Dataset, i: usize) -> Result<Trial> {
    let stage = u64::from(search.stage == "narrow");
    let mut rng = trial_rng(search.seed, stage, i);
    // The book draws the weight decay first, then the learning rate; the other settings a search
    // may draw come after them, so the book's search draws exactly what the book draws.
    let wd = 10f64.powf(uniform(&mut rng, search.wd_exp[0], search.wd_exp[1])) as f32;
    let lr = 10f64.powf(uniform(&mut rng, search.lr_exp[0], search.lr_exp[1])) as f32;
    let dropout = search.dropout.map(|[lo, hi]| uniform(&mut rng, lo, hi) as f32);
    let mut pick = |n: usize| crate::data::below(&mut rng, n);
    let batch = (!search.batch_sizes.is_empty()).then(|| search.batch_sizes[pick(search.batch_sizes.len())]);
    let optimizer =
        (!search.optimizers.is_empty()).then(|| search.optimizers[pick(search.optimizers.len())].clone());
    let classes = train.y.iter().chain(&val.y).map(|&l| l as usize + 1).max().unwrap_or(2);
    let w = search_widths(search, train.features, classes)?;
    let mut spec = MlpSpec::new(&w)
        .with_activation(Activation::Relu)
        .with_init(Init::HeNormal)
        .with_loss(Loss::SoftmaxCrossEntropyBook);
    if let Some(r) = dropout {
        spec = spec.with_dropout(Dropout { ratio: r, form: DropoutForm::Book });
    }
    let opt = match &optimizer {
        None => Optimizer::sgd().with_weight_decay(WeightDecay::L2(wd)),
        Some(name) => {
            let o = Optimizer::by_name(name)
                .ok_or_else(|| Error::Input(format!("--optimizers {name}: unknown")))?;
            if name.eq_ignore_ascii_case("adamw") {
                o.with_weight_decay(WeightDecay::Decoupled(wd))
            } else {
                o.with_weight_decay(WeightDecay::L2(wd))
            }
        }
    };
    let b = batch.unwrap_or(search.batch);
    let c = train_curves("trial", spec, opt, train, val, search.epochs, b, lr, rng.next_u64())?;
    Ok(Trial {
        trial: i,
        lr,
        weight_decay: wd,
        val_acc: c.final_test(),
        train_acc: c.final_train(),
        val_curve: c.test,
        train_curve: c.train,
        dropout,
        batch,
        optimizer,
        search: search.clone(),
    })
}

/// Runs the trials of `search` this shard owns, in parallel on `threads` threads; sorted by index.
pub fn run_search(
    search: &Search,
    shard: Option<(usize, usize)>,
    threads: Option<usize>,
) -> Result<Vec<Trial>> {
    run_search_saving(search, shard, threads, None).map(|(t, _)| t)
}

/// [`run_search`], appending each trial to `done` (one JSON line, flushed) the moment it ends,
/// so a killed search keeps its finished trials. After Ctrl-C no new trial starts: the running
/// ones finish and the result says `true` (interrupted).
pub fn run_search_saving(
    search: &Search,
    shard: Option<(usize, usize)>,
    threads: Option<usize>,
    done: Option<&std::path::Path>,
) -> Result<(Vec<Trial>, bool)> {
    run_search_resuming(search, shard, threads, done, Vec::new())
}

/// [`run_search_saving`] after a preemption: the trials in `finished` (this shard's, of this
/// search) are kept and not run again; `done` is rewritten to hold them before the others start.
pub fn run_search_resuming(
    search: &Search,
    shard: Option<(usize, usize)>,
    threads: Option<usize>,
    done: Option<&std::path::Path>,
    finished: Vec<Trial>,
) -> Result<(Vec<Trial>, bool)> {
    let (k, n) = shard.unwrap_or((0, 1));
    let mut kept: std::collections::BTreeMap<usize, Trial> = std::collections::BTreeMap::new();
    for t in finished {
        if t.search == *search && t.trial < search.trials && t.trial % n == k {
            kept.entry(t.trial).or_insert(t);
        }
    }
    let mine: Vec<usize> = (0..search.trials).filter(|i| i % n == k && !kept.contains_key(i)).collect();
    if let Some(p) = done {
        // A line torn by a kill is dropped here, and the next one starts on a fresh line.
        let kept: Vec<Trial> = kept.values().cloned().collect();
        crate::report::write_atomic(p, jsonl(&kept)?.as_bytes())?;
    }
    if mine.is_empty() {
        return Ok((kept.into_values().collect(), false));
    }
    let (train, val) = data_from(search.data.as_ref(), search.samples, search.val_frac, search.seed)?;
    let mut b = rayon::ThreadPoolBuilder::new();
    if let Some(t) = threads {
        b = b.num_threads(t.max(1));
    }
    let shown = threads.map_or("(all cores)".to_string(), |t| t.to_string());
    let pool = b
        .build()
        .map_err(|e| Error::Input(format!("--threads {shown}: cannot start the worker threads: {e}")))?;
    let sink = match done {
        Some(p) => {
            Some(std::sync::Mutex::new(std::fs::OpenOptions::new().create(true).append(true).open(p)?))
        }
        None => None,
    };
    let trials: Vec<Option<Trial>> = pool.install(|| {
        mine.par_iter()
            .map(|&i| {
                if crate::interrupt::requested() {
                    return Ok(None);
                }
                let t = run_trial(search, &train, &val, i)?;
                if let Some(f) = &sink {
                    use std::io::Write;
                    let line = format!("{}\n", serde_json::to_string(&t)?);
                    let mut f = f.lock().map_err(|_| Error::output("trial log lock"))?;
                    f.write_all(line.as_bytes())?;
                    f.flush()?;
                }
                Ok(Some(t))
            })
            .collect::<Result<_>>()
    })?;
    let interrupted = trials.iter().any(Option::is_none);
    let mut all: Vec<Trial> = kept.into_values().chain(trials.into_iter().flatten()).collect();
    all.sort_by_key(|t| t.trial);
    Ok((all, interrupted))
}

/// The trials a run left in `dir` (`trials.done.jsonl`, then `trials.jsonl`), for `--resume`:
/// only those of `search` count; a file of another search is refused, naming the setting. A last
/// line torn by a kill is skipped.
pub fn finished_in(dir: &std::path::Path, search: &Search) -> Result<Vec<Trial>> {
    let mut out = Vec::new();
    for name in ["trials.done.jsonl", "trials.jsonl"] {
        let p = dir.join(name);
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::Input(format!("{}: {e}", p.display()))),
        };
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        for (ln, line) in lines.iter().enumerate() {
            let t: Trial = match serde_json::from_str(line) {
                Ok(t) => t,
                Err(_) if ln + 1 == lines.len() && !text.ends_with('\n') => continue,
                Err(e) => {
                    return Err(Error::Input(format!("{}:{}: not a trial line: {e}", p.display(), ln + 1)));
                }
            };
            let (a, b) = (&t.search, search);
            // The narrowed stage of a finished run is not resumed (it is redrawn from the broad one).
            if a.stage != b.stage {
                continue;
            }
            if a != b {
                return Err(Error::Input(format!(
                    "--resume: {} holds trials of a different search ({}); choose another --out",
                    p.display(),
                    differing(a, b)
                )));
            }
            out.push(t);
        }
    }
    Ok(out)
}

/// Trials best first (validation accuracy, then training accuracy, then index).
pub fn ranked(trials: &[Trial]) -> Vec<Trial> {
    let mut v = trials.to_vec();
    v.sort_by(|a, b| {
        b.val_acc.total_cmp(&a.val_acc).then(b.train_acc.total_cmp(&a.train_acc)).then(a.trial.cmp(&b.trial))
    });
    v
}

/// The log10 box (lr, wd) spanned by the best `k` trials.
pub fn narrowed_box(trials: &[Trial], k: usize) -> ([f64; 2], [f64; 2]) {
    let best = ranked(trials);
    let best = &best[..k.min(best.len()).max(1).min(best.len())];
    let span = |f: &dyn Fn(&Trial) -> f32| {
        let v: Vec<f64> = best.iter().map(|t| (f(t) as f64).log10()).collect();
        [v.iter().cloned().fold(f64::INFINITY, f64::min), v.iter().cloned().fold(f64::NEG_INFINITY, f64::max)]
    };
    (span(&|t| t.lr), span(&|t| t.weight_decay))
}

fn jsonl(trials: &[Trial]) -> Result<String> {
    let mut s = String::new();
    for t in trials {
        s.push_str(&serde_json::to_string(t)?);
        s.push('\n');
    }
    Ok(s)
}

/// Reads `trials.jsonl` files.
pub fn read_jsonl(files: &[PathBuf]) -> Result<Vec<Trial>> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| Error::Input(format!("{}: {e}", f.display())))?;
        for (ln, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let t: Trial = serde_json::from_str(line)
                .map_err(|e| Error::Input(format!("{}:{}: not a trial line: {e}", f.display(), ln + 1)))?;
            out.push(t);
        }
    }
    Ok(out)
}

/// Writes the files and summary section of one stage; returns the check of the book's claim.
fn report_stage(out: &mut Output, trials: &[Trial], top: usize, tag: &str) -> Result<()> {
    let r = ranked(trials);
    let stage = r.first().map_or("broad".to_string(), |t| t.search.stage.clone());
    let p = out.path(&format!("trials{tag}.jsonl"));
    let mut by_index = trials.to_vec();
    by_index.sort_by_key(|t| t.trial);
    std::fs::write(p, jsonl(&by_index)?)?;
    // The settings a search draws besides lr and weight decay get a column each.
    type Column = (&'static str, fn(&Trial) -> Option<String>);
    let extra: Vec<Column> = vec![
        ("dropout", |t| t.dropout.map(|d| format!("{d}"))),
        ("batch", |t| t.batch.map(|b| b.to_string())),
        ("optimizer", |t| t.optimizer.clone()),
    ];
    let extra: Vec<_> = extra.into_iter().filter(|(_, f)| r.iter().any(|t| f(t).is_some())).collect();
    let mut header = vec!["rank", "trial", "lr", "weight_decay", "val_acc", "train_acc"];
    header.extend(extra.iter().map(|e| e.0));
    out.csv(
        &format!("trials{tag}.csv"),
        &header,
        r.iter().enumerate().map(|(k, t)| {
            let mut row = vec![
                (k + 1).to_string(),
                t.trial.to_string(),
                format!("{:e}", t.lr),
                format!("{:e}", t.weight_decay),
                format!("{:.4}", t.val_acc),
                format!("{:.4}", t.train_acc),
            ];
            row.extend(extra.iter().map(|(_, f)| f(t).unwrap_or_default()));
            row
        }),
    )?;
    // Figure 6-24: the best `top` trials, validation solid, training dashed.
    let shown = &r[..top.min(r.len())];
    let charts: Vec<Chart> = shown
        .iter()
        .enumerate()
        .map(|(k, t)| {
            let mut c = Chart::new(
                format!("Best-{} val {} lr {:.1e} wd {:.1e}", k + 1, fmt(t.val_acc), t.lr, t.weight_decay),
                "evaluation",
                "accuracy",
            );
            c.y_range = Some((0.0, 1.0));
            // Accuracy rises: the lower right corner is free of the curves.
            c.legend = k == 0;
            c.legend_lower = true;
            let pts = |v: &[f64]| v.iter().enumerate().map(|(e, &a)| (e as f64, a)).collect();
            c.series.push(Series::line("validation", pts(&t.val_curve), chart::color(0)));
            c.series.push(Series::line("train", pts(&t.train_curve), chart::color(1)).styled(Style::Dashed));
            c
        })
        .collect();
    if !charts.is_empty() {
        let cols = 5.min(charts.len());
        let p = out.path(&format!("top{tag}.svg"));
        chart::save_grid(
            &p,
            &format!(
                "{stage} search: best {} of {} trials (validation solid, train dashed)",
                charts.len(),
                r.len()
            ),
            charts.len().div_ceil(cols),
            cols,
            &charts,
            (300, 210),
        )?;
    }
    // Where the good trials are: validation accuracy against log10 lr, and the (lr, wd) plane.
    let mut sc = Chart::new(
        format!("{stage} search: validation accuracy by learning rate"),
        "log10(lr)",
        "validation accuracy",
    );
    sc.y_range = Some((0.0, 1.0));
    if let Some(s) = r.first().map(|t| &t.search) {
        let pad = 0.03 * (s.lr_exp[1] - s.lr_exp[0]);
        sc.x_range = Some((s.lr_exp[0] - pad, s.lr_exp[1] + pad));
    }
    sc.series.push(
        Series::line(
            "trial",
            r.iter().map(|t| ((t.lr as f64).log10(), t.val_acc)).collect(),
            chart::color(0),
        )
        .styled(Style::Dots),
    );
    sc.series.push(
        Series::line(
            format!("best {}", top.min(r.len())),
            shown.iter().map(|t| ((t.lr as f64).log10(), t.val_acc)).collect(),
            chart::color(3),
        )
        .styled(Style::Dots),
    );
    let mut pl = Chart::new(
        format!("{stage} search: trials in the (lr, weight decay) plane"),
        "log10(lr)",
        "log10(weight decay)",
    );
    if let Some(s) = r.first().map(|t| &t.search) {
        let xpad = 0.03 * (s.lr_exp[1] - s.lr_exp[0]);
        pl.x_range = Some((s.lr_exp[0] - xpad, s.lr_exp[1] + xpad));
        let pad = 0.03 * (s.wd_exp[1] - s.wd_exp[0]);
        pl.y_range = Some((s.wd_exp[0] - pad, s.wd_exp[1] + 4.0 * pad));
    }
    let pt = |t: &Trial| ((t.lr as f64).log10(), (t.weight_decay as f64).log10());
    pl.series.push(Series::line("trial", r.iter().map(pt).collect(), chart::color(7)).styled(Style::Dots));
    pl.series.push(
        Series::line("val ≥ 0.6", r.iter().filter(|t| t.val_acc >= 0.6).map(pt).collect(), chart::color(3))
            .styled(Style::Dots),
    );
    let p = out.path(&format!("scatter{tag}.svg"));
    chart::save_grid(&p, &format!("{stage} search over {} trials", r.len()), 1, 2, &[sc, pl], (560, 420))?;

    out.line(format!("\n## {} search: {} trials\n", stage, r.len()));
    if let Some(s) = r.first().map(|t| &t.search) {
        out.line(format!(
            "lr = 10^U({:.3}, {:.3}), weight decay = 10^U({:.3}, {:.3}), seed {}.\n",
            s.lr_exp[0], s.lr_exp[1], s.wd_exp[0], s.wd_exp[1], s.seed
        ));
    }
    let mut head = vec!["rank", "trial", "val acc", "train acc", "lr", "weight decay"];
    head.extend(extra.iter().map(|e| e.0));
    out.table_head(&head);
    for (k, t) in r.iter().take(10).enumerate() {
        let mut row = vec![
            (k + 1).to_string(),
            t.trial.to_string(),
            fmt(t.val_acc),
            fmt(t.train_acc),
            format!("{:.3e}", t.lr),
            format!("{:.3e}", t.weight_decay),
        ];
        row.extend(extra.iter().map(|(_, f)| f(t).unwrap_or_default()));
        out.row(&row);
    }
    let good: Vec<&Trial> = r.iter().filter(|t| t.val_acc >= 0.6).collect();
    let lr_lo = good.iter().map(|t| t.lr).fold(f32::INFINITY, f32::min);
    let lr_hi = good.iter().map(|t| t.lr).fold(0.0, f32::max);
    let below = r.iter().filter(|t| t.lr < 1e-3).map(|t| t.val_acc).reduce(f64::max);
    out.line(format!(
        "\n{} trials reach val ≥ 0.6{}; {}.",
        good.len(),
        if good.is_empty() { String::new() } else { format!(", with lr in {lr_lo:.2e}…{lr_hi:.2e}") },
        below.map_or("no trial has lr < 1e-3".to_string(), |b| format!(
            "the best trial with lr < 1e-3 reaches {}",
            fmt(b)
        ))
    ));
    Ok(())
}

fn book_lines(out: &mut Output) {
    let r = reference::get();
    let h = &r["hyperparameter_optimization"];
    let best = &h["top10"][0];
    out.line(format!(
        "\nBook: good results around lr 0.001–0.01 and weight decay 1e-8–1e-6; narrow the ranges and repeat. Book \
         Best-1 (recalled) val ≈ 0.83 at lr ≈ 0.0092, wd ≈ 3.9e-7; notebook Best-1 0.84 (lr 0.0094, wd 2.8e-6); \
         seed-0 rerun Best-1 {} (lr {:.2e}, wd {:.2e}), {} trials with val ≥ 0.6, all with lr in 3.8e-3…9.7e-3; \
         no trial with lr < 1e-3 above {}.",
        fmt(best["val_acc"].as_f64().unwrap_or(f64::NAN)),
        best["lr"].as_f64().unwrap_or(f64::NAN),
        best["weight_decay"].as_f64().unwrap_or(f64::NAN),
        h["n_trials_val_ge_0.6"].as_u64().unwrap_or(0),
        fmt(h["best_val_among_lr_below_1e-3"].as_f64().unwrap_or(f64::NAN)),
    ));
}

/// The book's claim on a finished broad search, on its best `k` trials: their learning rates lie
/// in 1e-3…1e-2.
pub fn best_lr_check(trials: &[Trial], k: usize) -> Check {
    let r = ranked(trials);
    let best = &r[..k.min(r.len())];
    let lrs: Vec<String> = best.iter().map(|t| format!("{:.2e}", t.lr)).collect();
    Check::new(
        format!("The best {} trials' learning rates lie in 1e-3…1e-2", best.len()),
        !best.is_empty() && best.iter().all(|t| (1e-3..=1e-2).contains(&t.lr)),
        lrs.join(", "),
    )
}

/// The same claim on every trial that learned (validation accuracy at least 0.3, well above the
/// ≈ 0.1–0.2 of a network that predicts one class, and at least half the best): all of them have
/// a learning rate in 1e-3…1e-2. Robust to how many trials the draw put in that range.
pub fn learners_lr_check(trials: &[Trial]) -> Check {
    let best = trials.iter().map(|t| t.val_acc).fold(0.0, f64::max);
    let bar = (0.5 * best).max(0.3);
    let learned: Vec<&Trial> = trials.iter().filter(|t| t.val_acc >= bar).collect();
    let lo = learned.iter().map(|t| t.lr).fold(f32::INFINITY, f32::min);
    let hi = learned.iter().map(|t| t.lr).fold(0.0, f32::max);
    Check::new(
        "Every trial that learned (val ≥ 0.3 and ≥ half the best) has lr in 1e-3…1e-2",
        !learned.is_empty() && learned.iter().all(|t| (1e-3..=1e-2).contains(&t.lr)),
        format!("{} trials with val ≥ {}, lr {lo:.2e}…{hi:.2e}", learned.len(), fmt(bar)),
    )
}

/// What the search found.
#[derive(Clone, Debug)]
pub struct Report {
    /// The broad search (this shard's trials), by index.
    pub broad: Vec<Trial>,
    /// The narrowed search, if asked.
    pub narrow: Vec<Trial>,
}

fn summarize(
    out: &mut Output,
    broad: &[Trial],
    narrow: &[Trial],
    top: usize,
    expected: Option<usize>,
) -> Result<String> {
    let book = broad.first().is_none_or(|t| t.search.is_book());
    if let (Some(s), Some(n), false) = (broad.first().map(|t| &t.search), expected, book) {
        let nval = (s.samples as f64 * s.val_frac) as usize;
        let source = s.data.as_ref().map_or("the bundled images".to_string(), |u| {
            u.mnist_dir.as_ref().or(u.csv.as_ref()).map_or(String::new(), |p| p.display().to_string())
        });
        let net = s.layers.as_ref().map_or(format!("{} hidden layers of 100", s.hidden), |l| {
            l.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("-")
        });
        let mut drawn = vec!["weight decay".to_string(), "lr (log scale)".into()];
        if let Some([lo, hi]) = s.dropout {
            drawn.push(format!("the book's dropout ratio in [{lo}, {hi}]"));
        }
        if !s.batch_sizes.is_empty() {
            drawn.push(format!("batch size from {:?}", s.batch_sizes));
        }
        if !s.optimizers.is_empty() {
            drawn.push(format!("update rule from {}", s.optimizers.join(", ")));
        }
        out.line(format!(
            "The first {} examples of {source} shuffled once (seed {}): {nval} validate, {} train a ReLU network \
             ({net}, He init), batch {}, {} evaluations; each trial draws {}. Trials: {} of {n}.",
            s.samples,
            s.seed,
            s.samples - nval,
            s.batch,
            s.epochs,
            drawn.join(", "),
            broad.len(),
        ));
    }
    if let (Some(s), Some(n), true) = (broad.first().map(|t| &t.search), expected, book) {
        let nval = (s.samples as f64 * s.val_frac) as usize;
        out.line(format!(
            "The first {} bundled images shuffled once (seed {}): {} validate, {} train a 784-{}-10 ReLU network (He \
             init) with SGD and coupled L2 weight decay, batch {}, {} evaluations; each trial draws weight decay, \
             then lr, on a log scale. Trials: {} of {}. Same images as the book (its `x_train[:500]`).",
            s.samples,
            s.seed,
            nval,
            s.samples - nval,
            vec!["100"; s.hidden].join("-"),
            s.batch,
            s.epochs,
            broad.len(),
            n
        ));
    }
    report_stage(out, broad, top, "")?;
    if book {
        book_lines(out);
        out.check(best_lr_check(broad, 5));
        out.check(learners_lr_check(broad));
    }
    if !narrow.is_empty() {
        report_stage(out, narrow, top, "_narrow")?;
        let (b, n) = (ranked(broad), ranked(narrow));
        let mean =
            |v: &[Trial]| v.iter().take(10).map(|t| t.val_acc).sum::<f64>() / v.len().clamp(1, 10) as f64;
        out.line(format!(
            "\nNarrowing: mean val of the top 10 {} (broad) → {} (narrow); best {} → {}.",
            fmt(mean(&b)),
            fmt(mean(&n)),
            fmt(b.first().map_or(0.0, |t| t.val_acc)),
            fmt(n.first().map_or(0.0, |t| t.val_acc))
        ));
    }
    out.finish("Hyperparameter random search (book §6.5)")
}

/// The log10 range a learning rate or weight decay may be drawn from: every value is a normal,
/// finite f32 (10^-30 … 100).
pub const EXP_RANGE: (f64, f64) = (-30.0, 2.0);

impl Args {
    /// Refuses a setting that cannot run (before anything is created).
    pub fn validate(&self) -> Result<()> {
        use crate::check::{MAX_THREADS, count, exponents, fraction, nonzero};
        if let Some(HpCmd::Merge { top, .. }) = &self.cmd {
            return Ok(nonzero(&[("--top", *top)])?);
        }
        nonzero(&[
            ("--trials", self.trials),
            ("--samples", self.samples),
            ("--epochs", self.epochs),
            ("--batch", self.batch),
            ("--top", self.top),
            ("--narrow-top", self.narrow_top),
        ])?;
        fraction("--val-frac", self.val_frac)?;
        exponents("--lr-exp", &self.lr_exp, EXP_RANGE.0, EXP_RANGE.1)?;
        exponents("--wd-exp", &self.wd_exp, EXP_RANGE.0, EXP_RANGE.1)?;
        if let Some(t) = self.threads {
            count("--threads", t, 1, MAX_THREADS)?;
        }
        if let Some(l) = &self.layers {
            parse_layers(l)?;
        }
        if let Some(d) = &self.dropout {
            let shown = d.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(" ");
            if !(d.len() == 2 && d[0] >= 0.0 && d[0] <= d[1] && d[1] < 1.0) {
                return Err(Error::Input(format!("--dropout {shown}: need 0 ≤ LO ≤ HI < 1")));
            }
        }
        for &b in &self.batch_sizes {
            count("--batch-sizes", b, 1, usize::MAX)?;
        }
        for name in &self.optimizers {
            if Optimizer::by_name(name).is_none() {
                return Err(Error::Input(format!(
                    "--optimizers {name}: unknown; one of {}",
                    staticgrad::optim::NAMES.join(", ")
                )));
            }
        }
        if !(self.csv_scale.is_finite() && self.csv_scale > 0.0) {
            return Err(Error::Input(format!("--csv-scale {}: must be finite and positive", self.csv_scale)));
        }
        if self.narrow && self.shard_now()?.is_some() {
            return Err(Error::Input(
                "--narrow needs every broad trial: merge the shards first, then run the narrowed box with --lr-exp/--wd-exp".into(),
            ));
        }
        Ok(())
    }
}

/// Parses `--layers` widths (`784,100,10`).
pub fn parse_layers(l: &str) -> Result<Vec<usize>> {
    let w: std::result::Result<Vec<usize>, _> = l.split(',').map(|w| w.trim().parse::<usize>()).collect();
    match w {
        Ok(w) if w.len() >= 2 && w.iter().all(|&x| x > 0) && w.len() <= staticgrad::weights::MAX_WIDTHS => {
            Ok(w)
        }
        _ => Err(Error::Input(format!(
            "--layers {l}: need 2 to {} positive widths, input to output (e.g. 784,100,10)",
            staticgrad::weights::MAX_WIDTHS
        ))),
    }
}

impl Args {
    /// This task's shard: `--shard`, else the scheduler's variables (unless
    /// `--no-scheduler-env`), with where it came from.
    pub fn shard_now(&self) -> Result<Option<((usize, usize), String)>> {
        let env = |k: &str| if self.no_scheduler_env { None } else { std::env::var(k).ok() };
        resolve_shard(self.shard, self.shards, &env)
    }

    /// The search these settings define (broad stage).
    pub fn search(&self) -> Result<Search> {
        let data = (self.mnist_dir.is_some() || self.csv.is_some()).then(|| UserData {
            mnist_dir: self.mnist_dir.clone(),
            csv: self.csv.clone(),
            csv_label_col: self.csv_label_col,
            csv_header: self.csv_header,
            csv_scale: self.csv_scale,
        });
        Ok(Search {
            seed: self.seed,
            trials: self.trials,
            samples: self.samples,
            val_frac: self.val_frac,
            epochs: self.epochs,
            batch: self.batch,
            hidden: self.hidden,
            lr_exp: [self.lr_exp[0], self.lr_exp[1]],
            wd_exp: [self.wd_exp[0], self.wd_exp[1]],
            stage: "broad".into(),
            data,
            layers: self.layers.as_deref().map(parse_layers).transpose()?,
            dropout: self.dropout.as_ref().map(|d| [d[0], d[1]]),
            batch_sizes: self.batch_sizes.clone(),
            optimizers: self.optimizers.iter().map(|o| o.to_ascii_lowercase()).collect(),
        })
    }
}

/// Bytes of one evaluation in a kept trial, at most: two accuracies in the trial, in its JSON
/// line, and in the copies the report ranks and sorts (four in all).
pub const EVAL_BYTES: u64 = 256;
/// Bytes of one trial besides its curves (its fields, its JSON line, its CSV row, the copies).
pub const TRIAL_BYTES: u64 = 4096;
/// Bytes a merge holds per byte of the `trials.jsonl` it reads: the text, the trials it parses
/// into (a number of 2 characters becomes 8 bytes) and the copies the report ranks and sorts.
pub const MERGE_FACTOR: u64 = 20;

/// Charges the images, the networks of the trials running at once (`--hidden`, `--batch`, one
/// per thread), and the kept results of `--trials` trials of `--epochs` evaluations (twice with
/// `--narrow`); for `merge`, the files read.
pub fn charge(args: &Args, budget: &mut Budget) -> Result<()> {
    if let Some(HpCmd::Merge { files, .. }) = &args.cmd {
        let mut total = Some(0u64);
        for f in files {
            let len = std::fs::metadata(f).map_err(|e| Error::Input(format!("{}: {e}", f.display())))?.len();
            total = total.and_then(|t| t.checked_add(len));
        }
        let need = total.and_then(|t| t.checked_mul(MERGE_FACTOR));
        return Ok(
            budget.charge(&format!("hpsearch merge: {} bytes of trials", total.unwrap_or(u64::MAX)), need)?
        );
    }
    let rows = args.samples.min(crate::data::BUNDLED_COUNT);
    let images = super::bundled_bytes(rows).zip(Dataset::bytes_for(rows, 784, 1));
    let need = images
        .and_then(|(a, b)| a.checked_add(b.checked_mul(2)?))
        .and_then(|b| b.checked_add(8 * rows as u64));
    budget.charge("the bundled images", need)?;
    // The user's files are charged as they are read (their sizes are known only from their headers).
    let w = match &args.layers {
        Some(l) => parse_layers(l)?,
        None => super::curves::widths_within(args.hidden, budget)?,
    };
    let spec = MlpSpec::new(&w);
    let threads = args.threads.map_or_else(super::parallel, |t| t.max(1));
    let (k, n) = args.shard_now()?.map_or((0, 1), |s| s.0);
    let mine = args.trials.saturating_sub(k).div_ceil(n.max(1));
    let at_once = mine.min(threads).max(1);
    // The largest network any trial may build: the largest batch, the largest optimizer state.
    let batch = args.batch_sizes.iter().copied().max().unwrap_or(args.batch);
    let mut net = Some(0u64);
    for name in args.optimizers.iter().map(String::as_str).chain(["sgd"]) {
        let opt =
            Optimizer::by_name(name).unwrap_or_else(Optimizer::sgd).with_weight_decay(WeightDecay::L2(1e-6));
        let spec = if args.dropout.is_some() { spec.with_dropout(Dropout::book(0.5)) } else { spec };
        let b = super::net::storage_bytes(&spec.model(), &opt, batch);
        net = net.zip(b).map(|(a, b)| a.max(b));
    }
    budget.charge(
        &format!(
            "--batch {batch} {}: {at_once} trials at once",
            args.layers.as_ref().map_or(format!("--hidden {}", args.hidden), |l| format!("--layers {l}"))
        ),
        net.and_then(|b| b.checked_mul(at_once as u64)),
    )?;
    let stages = if args.narrow { 2 } else { 1 };
    let per_trial = args
        .epochs
        .checked_mul(2)
        .and_then(|e| super::records(e, EVAL_BYTES))
        .and_then(|b| b.checked_add(TRIAL_BYTES));
    let need = per_trial.and_then(|p| p.checked_mul(mine as u64)).and_then(|b| b.checked_mul(stages));
    Ok(budget
        .charge(&format!("--trials {} --epochs {}: the trials' results", args.trials, args.epochs), need)?)
}

/// Runs the search (or the merge) and writes its files.
pub fn run(args: &Args) -> Result<Report> {
    if let Some(HpCmd::Merge { files, out, top, allow_incomplete }) = &args.cmd {
        args.validate()?;
        return merge(files, out, *top, *allow_incomplete);
    }
    args.validate()?;
    let search = args.search()?;
    let shard = args.shard_now()?;
    let mut out = Output::new(&args.out)?;
    // Finished trials go to disk as they end; Ctrl-C lets the running ones finish, then saves.
    crate::interrupt::install();
    let done = out.dir().join("trials.done.jsonl");
    let finished = if args.resume { finished_in(out.dir(), &search)? } else { Vec::new() };
    let resumed = finished.len();
    let shard = shard.map(|(s, from)| {
        if from != format!("--shard {}/{}", s.0, s.1) {
            super::emit(&format!("hpsearch: shard {}/{} from the {from}", s.0, s.1));
        }
        s
    });
    let (broad, interrupted) = run_search_resuming(&search, shard, args.threads, Some(&done), finished)?;
    if resumed > 0 {
        super::emit(&format!(
            "hpsearch --resume: {resumed} finished trials kept from {}",
            out.dir().display()
        ));
    }
    if interrupted {
        // The log stays too: `--resume` continues from it.
        let p = out.path("trials.jsonl");
        crate::report::write_atomic(&p, jsonl(&broad)?.as_bytes())?;
        return Err(Error::Interrupted(format!(
            "hpsearch interrupted: {} of {} trials finished, saved in {} (a shard's format: join runs with `staticgrad experiment hpsearch merge`)",
            broad.len(),
            search.trials,
            p.display()
        )));
    }
    if let Some((k, n)) = shard {
        let p = out.path("trials.jsonl");
        crate::report::write_atomic(&p, jsonl(&broad)?.as_bytes())?;
        let _ = std::fs::remove_file(&done);
        super::emit(&format!(
            "hpsearch shard {k}/{n}: {} trials written to {}; join the shards with `staticgrad experiment hpsearch merge`.",
            broad.len(),
            p.display()
        ));
        return Ok(Report { broad, narrow: Vec::new() });
    }
    let narrow = if args.narrow {
        let (lr, wd) = narrowed_box(&broad, args.narrow_top);
        let s = Search { lr_exp: lr, wd_exp: wd, stage: "narrow".into(), ..search.clone() };
        run_search(&s, None, args.threads)?
    } else {
        Vec::new()
    };
    let text = summarize(&mut out, &broad, &narrow, args.top, Some(args.trials))?;
    let _ = std::fs::remove_file(&done);
    super::emit(&text);
    Ok(Report { broad, narrow })
}

/// The first setting in which two searches differ, as `name a vs b`.
fn differing(a: &Search, b: &Search) -> String {
    let pair = |x: &[f64; 2]| format!("{} {}", x[0], x[1]);
    let rows = [
        ("seed", a.seed.to_string(), b.seed.to_string()),
        ("trials", a.trials.to_string(), b.trials.to_string()),
        ("samples", a.samples.to_string(), b.samples.to_string()),
        ("val_frac", a.val_frac.to_string(), b.val_frac.to_string()),
        ("epochs", a.epochs.to_string(), b.epochs.to_string()),
        ("batch", a.batch.to_string(), b.batch.to_string()),
        ("hidden", a.hidden.to_string(), b.hidden.to_string()),
        ("lr_exp", pair(&a.lr_exp), pair(&b.lr_exp)),
        ("wd_exp", pair(&a.wd_exp), pair(&b.wd_exp)),
        ("stage", a.stage.clone(), b.stage.clone()),
        ("data", format!("{:?}", a.data), format!("{:?}", b.data)),
        ("layers", format!("{:?}", a.layers), format!("{:?}", b.layers)),
        ("dropout", format!("{:?}", a.dropout), format!("{:?}", b.dropout)),
        ("batch_sizes", format!("{:?}", a.batch_sizes), format!("{:?}", b.batch_sizes)),
        ("optimizers", format!("{:?}", a.optimizers), format!("{:?}", b.optimizers)),
    ];
    rows.iter()
        .find(|(_, x, y)| x != y)
        .map_or_else(|| "settings".into(), |(n, x, y)| format!("{n} {x} vs {y}"))
}

/// `hpsearch merge`: joins shards (same search settings, no trial twice, every index and
/// accuracy in range) and writes the unsharded run's files. Missing trials are an error unless
/// `allow_incomplete`, and then the summary says how many are missing.
pub fn merge(
    files: &[PathBuf],
    out_dir: &std::path::Path,
    top: usize,
    allow_incomplete: bool,
) -> Result<Report> {
    let mut trials = read_jsonl(files)?;
    let Some(first) = trials.first().map(|t| t.search.clone()) else {
        return Err(Error::Input("hpsearch merge: the files hold no trials".into()));
    };
    if let Some(t) = trials.iter().find(|t| t.search != first) {
        return Err(Error::Input(format!(
            "hpsearch merge: trial {} comes from a different search ({})",
            t.trial,
            differing(&first, &t.search)
        )));
    }
    for t in &trials {
        if t.trial >= first.trials {
            return Err(Error::Input(format!(
                "hpsearch merge: trial index {} is out of range for a search of {} trials",
                t.trial, first.trials
            )));
        }
        for (what, v) in [("val_acc", t.val_acc), ("train_acc", t.train_acc)]
            .into_iter()
            .chain(t.val_curve.iter().map(|&v| ("val_curve", v)))
            .chain(t.train_curve.iter().map(|&v| ("train_curve", v)))
        {
            if !(0.0..=1.0).contains(&v) {
                return Err(Error::Input(format!(
                    "hpsearch merge: trial {}: {what} {v} is not an accuracy in [0, 1]",
                    t.trial
                )));
            }
        }
        if !(t.lr.is_finite() && t.lr > 0.0 && t.weight_decay.is_finite() && t.weight_decay >= 0.0) {
            return Err(Error::Input(format!(
                "hpsearch merge: trial {}: lr {} and weight decay {} must be finite and positive",
                t.trial, t.lr, t.weight_decay
            )));
        }
    }
    trials.sort_by_key(|t| t.trial);
    if let Some(w) = trials.windows(2).find(|w| w[0].trial == w[1].trial) {
        return Err(Error::Input(format!("hpsearch merge: trial {} appears twice", w[0].trial)));
    }
    let (broad, narrow): (Vec<Trial>, Vec<Trial>) =
        trials.into_iter().partition(|t| t.search.stage != "narrow");
    let missing: Vec<usize> = {
        let have: std::collections::BTreeSet<usize> = broad.iter().chain(&narrow).map(|t| t.trial).collect();
        (0..first.trials).filter(|i| !have.contains(i)).collect()
    };
    let shown = |m: &[usize]| {
        let head: Vec<String> = m.iter().take(8).map(|i| i.to_string()).collect();
        format!("{}{}", head.join(", "), if m.len() > 8 { ", …" } else { "" })
    };
    if !missing.is_empty() && !allow_incomplete {
        return Err(Error::Input(format!(
            "hpsearch merge: {} of {} trials missing (trials {}; a shard not given?); --allow-incomplete merges what there is",
            missing.len(),
            first.trials,
            shown(&missing)
        )));
    }
    let mut out = Output::new(out_dir)?;
    if !missing.is_empty() {
        out.line(format!(
            "**Incomplete:** {} of {} trials present; missing trials {} (missing shards?).\n",
            first.trials - missing.len(),
            first.trials,
            shown(&missing)
        ));
    }
    let text = summarize(&mut out, &broad, &narrow, top, Some(first.trials))?;
    super::emit(&text);
    Ok(Report { broad, narrow })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(i: usize, lr: f32, wd: f32, val: f64) -> Trial {
        Trial {
            trial: i,
            lr,
            weight_decay: wd,
            val_acc: val,
            train_acc: val,
            val_curve: vec![val],
            train_curve: vec![val],
            dropout: None,
            batch: None,
            optimizer: None,
            search: Search {
                seed: 0,
                trials: 4,
                samples: 500,
                val_frac: 0.2,
                epochs: 1,
                batch: 100,
                hidden: 1,
                lr_exp: [-6.0, -2.0],
                wd_exp: [-8.0, -4.0],
                stage: "broad".into(),
                data: None,
                layers: None,
                dropout: None,
                batch_sizes: Vec::new(),
                optimizers: Vec::new(),
            },
        }
    }

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn shards_from_slurm_and_kubernetes_variables() {
        let shard = |flag, shards, vars: &[(&str, &str)]| {
            resolve_shard(flag, shards, &env(vars)).map(|s| s.map(|s| s.0))
        };
        // --shard wins over everything.
        assert_eq!(shard(Some((1, 4)), None, &[("SLURM_ARRAY_TASK_ID", "7")]).unwrap(), Some((1, 4)));
        // Slurm, 1-based array of 8: task 1 is shard 0, task 8 is shard 7.
        let slurm = |id| {
            [("SLURM_ARRAY_TASK_ID", id), ("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_COUNT", "8")]
        };
        assert_eq!(shard(None, None, &slurm("1")).unwrap(), Some((0, 8)));
        assert_eq!(shard(None, None, &slurm("8")).unwrap(), Some((7, 8)));
        assert!(shard(None, None, &slurm("9")).is_err());
        // 0-based, count from MAX when COUNT is missing; --shards replaces the count.
        let max =
            [("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_MIN", "0"), ("SLURM_ARRAY_TASK_MAX", "4")];
        assert_eq!(shard(None, None, &max).unwrap(), Some((3, 5)));
        assert_eq!(shard(None, Some(10), &max).unwrap(), Some((3, 10)));
        assert!(shard(None, None, &[("SLURM_ARRAY_TASK_ID", "3")]).is_err());
        assert!(
            shard(
                None,
                None,
                &[
                    ("SLURM_ARRAY_TASK_ID", "0"),
                    ("SLURM_ARRAY_TASK_MIN", "1"),
                    ("SLURM_ARRAY_TASK_COUNT", "2")
                ]
            )
            .is_err()
        );
        let step =
            [("SLURM_ARRAY_TASK_ID", "2"), ("SLURM_ARRAY_TASK_COUNT", "4"), ("SLURM_ARRAY_TASK_STEP", "2")];
        assert!(shard(None, None, &step).is_err());
        // Kubernetes: the index, the count from --shards or STATICGRAD_SHARDS.
        assert_eq!(shard(None, Some(4), &[("JOB_COMPLETION_INDEX", "3")]).unwrap(), Some((3, 4)));
        assert_eq!(
            shard(None, None, &[("JOB_COMPLETION_INDEX", "0"), (SHARDS_ENV, "2")]).unwrap(),
            Some((0, 2))
        );
        assert!(shard(None, None, &[("JOB_COMPLETION_INDEX", "0")]).is_err());
        assert!(shard(None, Some(3), &[("JOB_COMPLETION_INDEX", "3")]).is_err());
        assert!(shard(None, None, &[("JOB_COMPLETION_INDEX", "-1"), (SHARDS_ENV, "2")]).is_err());
        // Nothing set: every trial; --shards alone has no index.
        assert_eq!(shard(None, None, &[]).unwrap(), None);
        assert!(shard(None, Some(4), &[]).is_err());
    }

    #[test]
    fn shard_syntax() {
        assert_eq!(parse_shard("3/8"), Ok((3, 8)));
        assert_eq!(parse_shard(" 0 / 1 "), Ok((0, 1)));
        for bad in ["8/8", "1/0", "3", "a/2", "-1/2"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranking_box_and_checks() {
        let t = [
            trial(0, 1e-5, 1e-7, 0.1),
            trial(1, 5e-3, 1e-6, 0.8),
            trial(2, 2e-3, 1e-5, 0.7),
            trial(3, 9e-3, 1e-8, 0.8),
        ];
        let r: Vec<usize> = ranked(&t).iter().map(|t| t.trial).collect();
        assert_eq!(r, [1, 3, 2, 0]); // ties broken by train accuracy, then index
        let (lr, wd) = narrowed_box(&t, 3);
        assert!(
            (lr[0] - 2e-3f32.log10() as f64).abs() < 1e-6 && (lr[1] - 9e-3f32.log10() as f64).abs() < 1e-6
        );
        assert!((wd[0] + 8.0).abs() < 1e-6 && (wd[1] + 5.0).abs() < 1e-6);
        assert!(best_lr_check(&t, 3).holds);
        assert!(!best_lr_check(&t, 4).holds);
        assert!(learners_lr_check(&t).holds);
        let mut t2 = t.to_vec();
        t2[0].val_acc = 0.5; // a tiny learning rate that "learned" breaks the claim
        assert!(!learners_lr_check(&t2).holds);
    }

    #[test]
    fn trial_generators_depend_on_seed_stage_and_index_only() {
        let a = trial_rng(0, 0, 5).next_u64();
        assert_eq!(a, trial_rng(0, 0, 5).next_u64());
        assert_ne!(a, trial_rng(0, 0, 6).next_u64());
        assert_ne!(a, trial_rng(0, 1, 5).next_u64());
        assert_ne!(a, trial_rng(1, 0, 5).next_u64());
    }
}
