//! Experiment 2 (book §6.1.8, Fig. 6-9): SGD, Momentum, AdaGrad and Adam, each with the book's
//! default learning rate, train the same 4×100 ReLU network (He init) on the same mini-batches of
//! 128 for 2,000 iterations; the loss after each update, smoothed as the book does.

use std::path::PathBuf;

use staticgrad::init::Init;
use staticgrad::model::{Activation, Loss, MlpSpec};
use staticgrad::optim::Optimizer;

use crate::budget::Budget;

use super::curves::{self, BookRow, Contender};
use super::{Check, Output, Result, fmt, mnist_common};
use crate::Error;

/// Settings of `staticgrad experiment optimizers-mnist`.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Output folder.
    #[arg(long, default_value = "runs/optimizers-mnist")]
    pub out: PathBuf,
    /// Iterations (the book: 2,000).
    #[arg(long, default_value_t = 2000)]
    pub iters: usize,
    /// Mini-batch size (the book: 128).
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Training images: the first N bundled images (the book: all 60,000 of the full set).
    #[arg(long, default_value_t = 9000)]
    pub train: usize,
    /// Held-out images: the last N bundled images.
    #[arg(long, default_value_t = 1000)]
    pub test: usize,
    /// Update rules, by name, each with its book default learning rate (the book: these four;
    /// rmsprop and nesterov may be added).
    #[arg(long, value_delimiter = ',', default_value = "sgd,momentum,adagrad,adam", action = clap::ArgAction::Set)]
    pub rules: Vec<String>,
    /// Hidden layers of 100 units (the book: 4).
    #[arg(long, default_value_t = 4)]
    pub hidden: usize,
    /// Seed of the initial weights (the same for every rule) and of the batch draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

const BOOK: [BookRow; 4] = [
    BookRow {
        name: "SGD",
        mean_last100: 0.206,
        test_acc: 0.933,
        first_below_half: Some(285),
        notebook_1900: 0.150,
    },
    BookRow {
        name: "Momentum",
        mean_last100: 0.066,
        test_acc: 0.971,
        first_below_half: Some(58),
        notebook_1900: 0.050,
    },
    BookRow {
        name: "AdaGrad",
        mean_last100: 0.032,
        test_acc: 0.972,
        first_below_half: Some(19),
        notebook_1900: 0.016,
    },
    BookRow {
        name: "Adam",
        mean_last100: 0.041,
        test_acc: 0.971,
        first_below_half: Some(30),
        notebook_1900: 0.032,
    },
];

/// Display name of a rule.
pub fn display(name: &str) -> String {
    match name.to_ascii_lowercase().as_str() {
        "sgd" => "SGD".into(),
        "momentum" => "Momentum".into(),
        "nesterov" => "Nesterov".into(),
        "adagrad" => "AdaGrad".into(),
        "rmsprop" => "RMSprop".into(),
        "adam" => "Adam".into(),
        other => other.into(),
    }
}

/// The measured curves.
#[derive(Clone, Debug)]
pub struct Report {
    /// One per rule, in the order given.
    pub curves: Vec<curves::Curve>,
    /// SGD's smoothed loss at the end is the highest of all rules.
    pub sgd_highest: bool,
}

impl Args {
    /// Refuses a setting that cannot run (before anything is created).
    pub fn validate(&self) -> Result<()> {
        crate::check::nonzero(&[("--iters", self.iters), ("--batch", self.batch), ("--train", self.train)])?;
        if self.rules.is_empty() {
            return Err(Error::Input("--rules: name at least one update rule".into()));
        }
        if let Some(r) = self.rules.iter().find(|r| Optimizer::by_name(r).is_none()) {
            return Err(Error::Input(format!("--rules {}: unknown update rule {r:?}", self.rules.join(","))));
        }
        Ok(())
    }
}

/// Charges the bundled images, one network per rule (`--hidden`, `--batch`) and the curves of
/// `--iters` iterations.
pub fn charge(args: &Args, budget: &mut Budget) -> Result<()> {
    let widths = curves::widths_within(args.hidden, budget)?;
    let spec = MlpSpec::new(&widths);
    let mut nets = Vec::new();
    for r in &args.rules {
        let opt = Optimizer::by_name(r)
            .ok_or_else(|| Error::Input(format!("--rules: unknown update rule {r:?}")))?;
        nets.push((spec, opt));
    }
    let rows = args.train.saturating_add(args.test);
    curves::charge(&nets, args.batch, args.iters, rows, &format!("--hidden {}", args.hidden), budget)
}

/// Runs the experiment and writes its files.
pub fn run(args: &Args) -> Result<Report> {
    args.validate()?;
    let data = mnist_common::load()?;
    let (train, test) = mnist_common::split_head_tail(&data, args.train, args.test)?;
    let mut widths = vec![784];
    widths.extend(std::iter::repeat_n(100, args.hidden));
    widths.push(10);
    let spec = MlpSpec::new(&widths)
        .with_activation(Activation::Relu)
        .with_init(Init::HeNormal)
        .with_loss(Loss::SoftmaxCrossEntropyBook);
    let names: Vec<String> = args.rules.iter().map(|r| display(r)).collect();
    let mut contenders = Vec::new();
    for (r, name) in args.rules.iter().zip(&names) {
        let opt = Optimizer::by_name(r)
            .ok_or_else(|| Error::Input(format!("--rules: unknown update rule {r:?}")))?;
        contenders.push(Contender { name, spec, opt, lr: opt.default_lr() });
    }
    let cs = curves::compare(&contenders, &train, &test, args.iters, args.batch, args.seed)?;
    let sgd = cs.iter().find(|c| c.name == "SGD").map(|c| c.final_smoothed());
    let others =
        cs.iter().filter(|c| c.name != "SGD").map(|c| c.final_smoothed()).fold(f64::NEG_INFINITY, f64::max);
    let sgd_highest = sgd.is_some_and(|s| s > others);

    let mut out = Output::new(&args.out)?;
    out.line(format!(
        "{}×100 ReLU network (784-{}-10, He init, the book's cross-entropy with +1e-7), batch {}, {} iterations, \
         batches drawn with replacement, the same batches and the same initial weights for every rule; \
         each rule at its book default learning rate. Loss = eval-mode loss on the iteration's batch after the \
         update (as the book logs it); smoothed with the book's `smooth_curve` (Kaiser window 11, β 2).\n",
        args.hidden,
        vec!["100"; args.hidden].join("-"),
        args.batch,
        args.iters
    ));
    out.line(mnist_common::scale_note(
        args.train,
        args.test,
        "the book trains on all 60,000 MNIST training images",
    ));
    out.line("");
    curves::write(&mut out, &cs, "Optimizers on MNIST (smoothed loss)", &BOOK)?;
    out.line("\nBook: SGD learns slowest; the other three are similar, AdaGrad slightly fastest.");
    let finals: Vec<String> = cs.iter().map(|c| format!("{} {}", c.name, fmt(c.final_smoothed()))).collect();
    out.check(Check::new("SGD's smoothed loss at the end is the highest", sgd_highest, finals.join(", ")));
    let text = out.finish("Update rules on MNIST (book §6.1.8)")?;
    super::emit(&text);
    Ok(Report { curves: cs, sgd_highest })
}
