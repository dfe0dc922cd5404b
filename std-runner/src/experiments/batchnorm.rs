//! Experiment 5 (book §6.3.2, Figs. 6-18 and 6-19): a 5×100 ReLU network with and without batch
//! normalisation, for 16 weight scales `logspace(0, −4, 16)`, trained with SGD (lr 0.01) on the
//! first 1,000 images, batch 100, 20 evaluations of the training accuracy (every 10 iterations,
//! the first after one step), the batch-norm network in eval mode (running statistics).
//!
//! The plain network overflows at large scales; it is then scored as the book's numpy code scores
//! it (NaN logits → class 0), see [`super::net`].

use std::path::PathBuf;

use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;
use rayon::prelude::*;
use serde_json::json;
use staticgrad::BatchNormConfig;
use staticgrad::init::Init;
use staticgrad::model::{Activation, Loss, MlpSpec};
use staticgrad::optim::Optimizer;

use super::net::{Net, NetStorage};
use super::{Check, Output, Result, f64s, fmt, mnist_common, reference};
use crate::budget::Budget;
use crate::data::below;
use crate::report::chart::{self, Chart, Series, Style};

/// Settings of `staticgrad experiment batchnorm`.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Output folder.
    #[arg(long, default_value = "runs/batchnorm")]
    pub out: PathBuf,
    /// Training images: the first N bundled images (the book: 1,000).
    #[arg(long, default_value_t = 1000)]
    pub samples: usize,
    /// Number of weight scales, log-spaced from 1 down to 1e-4 (the book: 16).
    #[arg(long, default_value_t = 16)]
    pub scales: usize,
    /// Evaluations ("epochs" of samples/batch iterations; the book: 20).
    #[arg(long, default_value_t = 20)]
    pub epochs: usize,
    /// Mini-batch size (the book: 100).
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// SGD learning rate (the book: 0.01).
    #[arg(long, default_value_t = 0.01)]
    pub lr: f32,
    /// Hidden layers of 100 units (the book: 5).
    #[arg(long, default_value_t = 5)]
    pub hidden: usize,
    /// Seed of weights and batches (scale `i` uses `seed + i`).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// One weight scale.
#[derive(Clone, Debug)]
pub struct ScaleRun {
    /// Weight std.
    pub w: f64,
    /// Training accuracy per evaluation, with batch norm.
    pub bn: Vec<f64>,
    /// Training accuracy per evaluation, without.
    pub plain: Vec<f64>,
    /// Step at which the plain network diverged.
    pub plain_diverged: Option<usize>,
    /// Step at which the batch-norm network diverged.
    pub bn_diverged: Option<usize>,
}

/// Everything measured.
#[derive(Clone, Debug)]
pub struct Report {
    /// One per scale, largest first.
    pub runs: Vec<ScaleRun>,
    /// Scales where batch norm ends with the higher training accuracy.
    pub bn_wins: usize,
}

/// `logspace(0, −4, n)`.
pub fn scales(n: usize) -> Vec<f64> {
    if n == 1 {
        return vec![1.0];
    }
    (0..n).map(|i| 10f64.powf(-4.0 * i as f64 / (n - 1) as f64)).collect()
}

fn run_scale(
    args: &Args,
    train: &crate::data::Dataset,
    i: usize,
    w: f64,
    widths: &[usize],
) -> Result<ScaleRun> {
    let base = MlpSpec::new(widths)
        .with_activation(Activation::Relu)
        .with_init(Init::Normal { std: w as f32 })
        .with_loss(Loss::SoftmaxCrossEntropyBook);
    let bn_spec = base.with_batch_norm(BatchNormConfig::BOOK);
    let opt = Optimizer::sgd();
    let seed = args.seed.wrapping_add(i as u64);
    let (mut s1, mut s2) = (
        NetStorage::new(&bn_spec.model(), &opt, args.batch),
        NetStorage::new(&base.model(), &opt, args.batch),
    );
    // The same initial weights for both (batch norm's γ, β draw nothing).
    let mut bn = Net::new(&mut s1, seed.wrapping_mul(31).wrapping_add(7), 0)?;
    let mut plain = Net::new(&mut s2, seed.wrapping_mul(31).wrapping_add(7), 0)?;
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed);
    let per_epoch = (args.samples / args.batch).max(1);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let mut idx = vec![0; args.batch];
    let (mut acc_bn, mut acc_plain) = (Vec::new(), Vec::new());
    // The book's loop: step, and after steps 0, per_epoch, 2·per_epoch, … evaluate, until
    // `epochs` evaluations are done.
    let mut it = 0usize;
    while acc_bn.len() < args.epochs {
        for k in idx.iter_mut() {
            *k = below(&mut rng, train.len());
        }
        train.gather(&idx, &mut x, &mut y);
        bn.step(&x, &y, args.lr)?;
        plain.step(&x, &y, args.lr)?;
        if it.is_multiple_of(per_epoch) {
            acc_bn.push(bn.accuracy(train)?);
            acc_plain.push(plain.accuracy(train)?);
        }
        it += 1;
    }
    Ok(ScaleRun { w, bn: acc_bn, plain: acc_plain, plain_diverged: plain.diverged, bn_diverged: bn.diverged })
}

impl Args {
    /// Refuses a setting that cannot run (before anything is created).
    pub fn validate(&self) -> Result<()> {
        use crate::check::{nonzero, positive};
        nonzero(&[
            ("--samples", self.samples),
            ("--scales", self.scales),
            ("--epochs", self.epochs),
            ("--batch", self.batch),
        ])?;
        positive("--lr", self.lr)?;
        Ok(())
    }
}

/// Bytes one evaluation of one weight scale leaves behind, at most: two accuracies, their CSV
/// row and JSON numbers, and two points in the figure.
pub const EVAL_BYTES: u64 = 256;

/// Charges the bundled images, two networks per weight scale running at once (`--hidden`,
/// `--batch`; as many scales at once as rayon has threads), and `--epochs` evaluations of every
/// one of the `--scales`.
pub fn charge(args: &Args, budget: &mut Budget) -> Result<()> {
    budget.charge("the bundled images", super::bundled_bytes(args.samples))?;
    let widths = super::curves::widths_within(args.hidden, budget)?;
    let base = MlpSpec::new(&widths);
    let opt = Optimizer::sgd();
    let pair =
        super::net::storage_bytes(&base.with_batch_norm(BatchNormConfig::BOOK).model(), &opt, args.batch)
            .zip(super::net::storage_bytes(&base.model(), &opt, args.batch))
            .and_then(|(a, b)| a.checked_add(b));
    let at_once = args.scales.min(super::parallel()) as u64;
    budget.charge(
        &format!("--batch {} --hidden {}: {at_once} pairs of networks at once", args.batch, args.hidden),
        pair.and_then(|p| p.checked_mul(at_once)),
    )?;
    let evals = args.epochs.checked_mul(args.scales);
    let need = evals.and_then(|e| super::records(e, EVAL_BYTES));
    Ok(budget
        .charge(&format!("--epochs {} --scales {}: the accuracy curves", args.epochs, args.scales), need)?)
}

/// Runs the experiment and writes its files.
pub fn run(args: &Args) -> Result<Report> {
    args.validate()?;
    let data = mnist_common::load()?;
    let (train, _) = mnist_common::split_head_tail(&data, args.samples, 0)?;
    let mut widths = vec![784];
    widths.extend(std::iter::repeat_n(100, args.hidden));
    widths.push(10);
    let ws = scales(args.scales);
    let runs: Vec<ScaleRun> = ws
        .par_iter()
        .enumerate()
        .map(|(i, &w)| run_scale(args, &train, i, w, &widths))
        .collect::<Result<_>>()?;
    let last = |v: &[f64]| v.last().copied().unwrap_or(0.0);
    let bn_wins = runs.iter().filter(|r| last(&r.bn) > last(&r.plain)).count();

    let mut out = Output::new(&args.out)?;
    out.csv(
        "accuracy.csv",
        &["scale_index", "w_std", "evaluation", "iteration", "bn_train_acc", "plain_train_acc"],
        runs.iter().enumerate().flat_map(|(i, r)| {
            let per = (args.samples / args.batch).max(1);
            (0..r.bn.len()).map(move |e| {
                vec![
                    i.to_string(),
                    format!("{:.6e}", r.w),
                    e.to_string(),
                    (e * per).to_string(),
                    format!("{:.4}", r.bn[e]),
                    format!("{:.4}", r.plain[e]),
                ]
            })
        }),
    )?;
    let refs = reference::get();
    let book_runs = refs["batch_norm_test"]["runs"].as_array().cloned().unwrap_or_default();
    let book_for = |w: f64| {
        book_runs.iter().find(|r| r["w_std"].as_f64().is_some_and(|b| (b / w - 1.0).abs() < 1e-3)).map(|r| {
            (
                f64s(&r["plain_train_acc"]).last().copied().unwrap_or(f64::NAN),
                f64s(&r["bn_train_acc"]).last().copied().unwrap_or(f64::NAN),
            )
        })
    };
    let js: Vec<_> = runs
        .iter()
        .map(|r| {
            json!({"w_std": r.w, "bn_train_acc": r.bn, "plain_train_acc": r.plain,
                   "plain_diverged_at_step": r.plain_diverged, "bn_diverged_at_step": r.bn_diverged})
        })
        .collect();
    out.json("results.json", &json!({"runs": js, "bn_wins": bn_wins, "scales": runs.len()}))?;

    let charts: Vec<Chart> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            // A diverged run's weights are NaN (it scores class 0 from then on): the panel says so.
            let nan = |who: &str, d: Option<usize>| {
                d.map_or(String::new(), |s| format!(" · {who} NaN at step {s}"))
            };
            let title = format!(
                "{}: W std {}{}{}",
                i + 1,
                fmt(r.w),
                nan("plain", r.plain_diverged),
                nan("BN", r.bn_diverged)
            );
            let mut c = Chart::new(title, "epochs", "accuracy");
            c.y_range = Some((0.0, 1.0));
            c.x_range = Some((0.0, r.bn.len().saturating_sub(1).max(1) as f64));
            c.legend = i == 0;
            let pts = |v: &[f64]| v.iter().enumerate().map(|(e, &a)| (e as f64, a)).collect();
            c.series.push(Series::line("Batch Normalization", pts(&r.bn), chart::color(0)));
            c.series.push(
                Series::line("Normal (without BatchNorm)", pts(&r.plain), chart::color(1))
                    .styled(Style::Dashed),
            );
            c
        })
        .collect();
    let cols = 4.min(runs.len()).max(1);
    let rows = runs.len().div_ceil(cols);
    let p = out.path("grid.svg");
    chart::save_grid(
        &p,
        "Training accuracy vs epochs, with (solid) and without (dashed) batch norm, per weight scale (NaN: diverged)",
        rows,
        cols,
        &charts,
        (300, 240),
    )?;

    out.line(format!(
        "784-{}-10 ReLU network, initial weights N(0, w²) for each w in logspace(0, −4, {}), with and without batch \
         norm (the book's: momentum 0.9, eps 1e-6, running variance starting at 0), SGD lr {}, batch {} drawn with \
         replacement from the first {} bundled images (the book: the first 1,000 MNIST training images, the same \
         images), {} evaluations every {} iterations of the accuracy on those {} images; both networks start from \
         the same weights and see the same batches.\n",
        vec!["100"; args.hidden].join("-"),
        args.scales,
        args.lr,
        args.batch,
        args.samples,
        args.epochs,
        (args.samples / args.batch).max(1),
        args.samples
    ));
    out.table_head(&["#", "W std", "no batch norm", "batch norm", "book seed-0 (no BN / BN)"]);
    for (i, r) in runs.iter().enumerate() {
        let b = book_for(r.w).map_or("—".to_string(), |(p, b)| format!("{} / {}", fmt(p), fmt(b)));
        let div =
            r.plain_diverged.map_or(String::new(), |s| format!(" (diverged at step {s}: NaN → class 0)"));
        out.row(&[
            (i + 1).to_string(),
            fmt(r.w),
            format!("{}{div}", fmt(last(&r.plain))),
            fmt(last(&r.bn)),
            b,
        ]);
    }
    let book_wins = book_runs
        .iter()
        .filter(|r| {
            f64s(&r["bn_train_acc"]).last().copied().unwrap_or(0.0)
                > f64s(&r["plain_train_acc"]).last().copied().unwrap_or(0.0)
        })
        .count();
    out.line(format!(
        "\nBatch norm ends higher in {bn_wins} of {} scales here; in the book's seed-0 run {book_wins} of {}. \
         Book: batch norm learns faster in almost every cell; without it many scales do not learn at all, and \
         large scales overflow (the book's run scores those 0.097, the share of class 0).",
        runs.len(),
        book_runs.len()
    ));
    let need = (runs.len() * 11).div_ceil(16);
    out.check(Check::new(
        format!(
            "Batch norm reaches higher accuracy than no batch norm in at least {need} of {} scales",
            runs.len()
        ),
        bn_wins >= need,
        format!("{bn_wins} of {}", runs.len()),
    ));
    let text = out.finish("Batch normalisation over 16 weight scales (book §6.3.2)")?;
    super::emit(&text);
    Ok(Report { runs, bn_wins })
}
