//! The book's question in §6.2.1, "what if the initial weights are all 0?", as an experiment: the
//! same ReLU network trained from all-zero weights, from all-equal weights and from He's random
//! ones, on the same batches.
//!
//! Backpropagation gives every unit of a layer the same update when the units start equal, so
//! they stay equal: a layer of 100 units behaves like one unit. The experiment measures that
//! exactly — for every hidden layer, the largest difference between two units' weight vectors
//! (incoming weights and bias) after training, which is exactly 0 for both equal starts — and what
//! it does to the accuracy.

use std::path::PathBuf;

use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;
use rayon::prelude::*;
use serde_json::json;
use staticgrad::Params;
use staticgrad::init::Init;
use staticgrad::model::{Activation, Loss, MlpSpec};
use staticgrad::optim::Optimizer;

use crate::budget::Budget;
use crate::data::{Dataset, below};

use super::net::{Net, NetStorage};
use super::{Check, Output, Result, fmt, mnist_common};
use crate::report::chart::{self, Chart, Series, Style};

/// Settings of `staticgrad experiment init-symmetry`.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Output folder.
    #[arg(long, default_value = "runs/init-symmetry")]
    pub out: PathBuf,
    /// Iterations.
    #[arg(long, default_value_t = 1000)]
    pub iters: usize,
    /// Mini-batch size.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Hidden layers of 100 ReLU units.
    #[arg(long, default_value_t = 2)]
    pub hidden: usize,
    /// The value every weight starts at in the all-equal run.
    #[arg(long, default_value_t = 0.01, allow_negative_numbers = true)]
    pub equal: f32,
    /// Training images: the first N bundled images.
    #[arg(long, default_value_t = 9000)]
    pub train: usize,
    /// Held-out images: the last N bundled images.
    #[arg(long, default_value_t = 1000)]
    pub test: usize,
    /// SGD learning rate (the book's 0.01).
    #[arg(long, default_value_t = 0.01)]
    pub lr: f32,
    /// Seed of the random weights and of the batch draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// One initialisation's outcome.
#[derive(Clone, Debug)]
pub struct Run {
    /// Name ("all zero", "all equal", "He random").
    pub name: String,
    /// For each hidden layer, the largest difference between two of its units' weight vectors
    /// (incoming weights and bias), after training.
    pub spread: Vec<f64>,
    /// The same before training.
    pub spread_at_start: Vec<f64>,
    /// Held-out accuracy after every `iters / 10` iterations and at the end.
    pub test_curve: Vec<(usize, f64)>,
    /// Held-out accuracy at the end.
    pub test_acc: f64,
}

/// What the experiment measured: all zero, all equal, He random.
#[derive(Clone, Debug)]
pub struct Report {
    /// The three runs.
    pub runs: Vec<Run>,
}

/// The largest difference between two units' weight vectors in each hidden dense layer of
/// `spec`: over every input `i`, `max_j W[i][j] − min_j W[i][j]`, and the same over the biases
/// (units are the columns of the `in × out` weight).
pub fn unit_spread(spec: &MlpSpec, params: &Params, hidden: usize) -> Result<Vec<f64>> {
    let model = spec.model();
    let mut out = Vec::with_capacity(hidden);
    for l in 0..hidden {
        let (Some(w), Some(b)) = (model.weight(l), model.bias(l)) else { break };
        let units = params.entry(w)?.shape.cols;
        let rows = params.value(w)?.chunks(units.max(1)).chain([params.value(b)?]);
        let spread = rows
            .map(|r| {
                let hi = r.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let lo = r.iter().copied().fold(f32::INFINITY, f32::min);
                hi as f64 - lo as f64
            })
            .fold(0.0, f64::max);
        out.push(spread);
    }
    Ok(out)
}

impl Args {
    /// Refuses a setting that cannot run (before anything is created).
    pub fn validate(&self) -> Result<()> {
        use crate::check::{nonzero, positive};
        nonzero(&[
            ("--iters", self.iters),
            ("--batch", self.batch),
            ("--train", self.train),
            ("--hidden", self.hidden),
        ])?;
        positive("--lr", self.lr)?;
        if !self.equal.is_finite() || self.equal.abs() > 1.0 {
            return Err(crate::Error::Input(format!(
                "--equal {}: need a finite value within ±1",
                self.equal
            )));
        }
        Ok(())
    }
}

/// Charges the bundled images, the three networks and their curves.
pub fn charge(args: &Args, budget: &mut Budget) -> Result<()> {
    let w = super::curves::widths_within(args.hidden, budget)?;
    let spec = MlpSpec::new(&w);
    let nets = [(spec, Optimizer::sgd()); 3];
    super::curves::charge(&nets, args.batch, args.iters, args.train.saturating_add(args.test), "", budget)
}

fn train_one(args: &Args, name: &str, spec: MlpSpec, train: &Dataset, test: &Dataset) -> Result<Run> {
    let opt = Optimizer::sgd();
    let mut st = NetStorage::new(&spec.model(), &opt, args.batch);
    let mut net = Net::new(&mut st, args.seed.wrapping_add(1), args.seed.wrapping_add(2))?;
    let spread_at_start = unit_spread(&spec, net.params(), args.hidden)?;
    // The same batches for every initialisation.
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(args.seed);
    let (mut x, mut y, mut idx) = (Vec::new(), Vec::new(), vec![0; args.batch]);
    let every = (args.iters / 10).max(1);
    let mut test_curve = vec![(0, net.accuracy(test)?)];
    for it in 1..=args.iters {
        for k in idx.iter_mut() {
            *k = below(&mut rng, train.len());
        }
        train.gather(&idx, &mut x, &mut y);
        net.step(&x, &y, args.lr)?;
        if it % every == 0 || it == args.iters {
            test_curve.push((it, net.accuracy(test)?));
        }
    }
    let spread = unit_spread(&spec, net.params(), args.hidden)?;
    let test_acc = test_curve.last().map_or(0.0, |c| c.1);
    Ok(Run { name: name.into(), spread, spread_at_start, test_curve, test_acc })
}

/// Runs the experiment and writes its files.
pub fn run(args: &Args) -> Result<Report> {
    args.validate()?;
    let data = mnist_common::load()?;
    let (train, test) = mnist_common::split_head_tail(&data, args.train, args.test)?;
    let w = super::overfit::widths(args.hidden);
    let base = MlpSpec::new(&w).with_activation(Activation::Relu).with_loss(Loss::SoftmaxCrossEntropyBook);
    let equal = format!("all {}", args.equal);
    let cases = [
        ("all zero".to_string(), base.with_init(Init::Zeros)),
        (equal, base.with_init(Init::Constant(args.equal))),
        ("He random".to_string(), base.with_init(Init::HeNormal)),
    ];
    let runs: Vec<Run> =
        cases.par_iter().map(|(n, s)| train_one(args, n, *s, &train, &test)).collect::<Result<_>>()?;

    let mut out = Output::new(&args.out)?;
    let net = w.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("-");
    out.line(format!(
        "{net} ReLU network, SGD lr {}, batch {}, {} iterations on the first {} bundled images (the same batches \
         for the three starts), accuracy on the last {}. Biases start at 0. A unit's weight vector is its column of \
         incoming weights and its bias; a layer's spread is the largest difference between two of its units, \
         element by element.\n",
        args.lr, args.batch, args.iters, args.train, args.test
    ));
    let layer_cols: Vec<String> = (1..=args.hidden).map(|l| format!("spread, hidden layer {l}")).collect();
    let mut head = vec!["start", "test accuracy"];
    head.extend(layer_cols.iter().map(String::as_str));
    out.table_head(&head);
    for r in &runs {
        let mut row = vec![r.name.clone(), fmt(r.test_acc)];
        row.extend(r.spread.iter().map(|&s| if s == 0.0 { "0 (exactly)".to_string() } else { fmt(s) }));
        out.row(&row);
    }
    out.line(
        "\nBook (§6.2.1): with all-equal initial weights every unit of a layer receives the same update, so the \
         units stay equal and the layer acts as one unit; the weights must start random to break the symmetry.",
    );
    for r in &runs[..2] {
        out.check(Check::new(
            format!(
                "{}: the hidden units stay identical (largest difference between two units: exactly 0)",
                r.name
            ),
            r.spread.iter().all(|&s| s == 0.0),
            r.spread.iter().map(|&s| fmt(s)).collect::<Vec<_>>().join(", "),
        ));
    }
    let he = &runs[2];
    out.check(Check::new(
        "He random: the units differ, and it learns far better than either equal start",
        he.spread.iter().all(|&s| s > 0.0) && runs[..2].iter().all(|r| he.test_acc > r.test_acc + 0.1),
        format!("accuracy {} vs {} and {}", fmt(he.test_acc), fmt(runs[0].test_acc), fmt(runs[1].test_acc)),
    ));

    out.csv(
        "spread.csv",
        &["start", "layer", "spread_at_start", "spread_after", "test_acc"],
        runs.iter().flat_map(|r| {
            r.spread.iter().zip(&r.spread_at_start).enumerate().map(|(l, (a, s))| {
                vec![
                    r.name.clone(),
                    (l + 1).to_string(),
                    format!("{s:e}"),
                    format!("{a:e}"),
                    format!("{:.4}", r.test_acc),
                ]
            })
        }),
    )?;
    out.json(
        "results.json",
        &json!({"runs": runs.iter().map(|r| json!({"start": r.name, "test_acc": r.test_acc, "spread": r.spread,
            "spread_at_start": r.spread_at_start, "test_curve": r.test_curve})).collect::<Vec<_>>()}),
    )?;
    let mut acc = Chart::new("Held-out accuracy", "iteration", "accuracy");
    acc.y_range = Some((0.0, 1.0));
    acc.legend_lower = true;
    let mut sp =
        Chart::new("Largest difference between two units", "hidden layer", "max |w_a − w_b| after training");
    sp.x_range = Some((0.5, args.hidden as f64 + 0.5));
    for (k, r) in runs.iter().enumerate() {
        let pts = r.test_curve.iter().map(|&(i, a)| (i as f64, a)).collect();
        acc.series.push(Series::line(r.name.clone(), pts, chart::color(k)).styled(Style::LineDots));
        let pts = r.spread.iter().enumerate().map(|(l, &s)| ((l + 1) as f64, s)).collect();
        sp.series.push(Series::line(r.name.clone(), pts, chart::color(k)).styled(Style::Dots));
    }
    let p = out.path("symmetry.svg");
    chart::save_grid(&p, "Equal initial weights stay equal (book §6.2.1)", 1, 2, &[acc, sp], (520, 380))?;
    let text = out.finish("Equal initial weights (book §6.2.1)")?;
    super::emit(&text);
    Ok(Report { runs })
}
