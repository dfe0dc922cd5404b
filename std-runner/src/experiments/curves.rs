//! Several networks trained side by side on the same mini-batches, the loss of each logged after
//! every update (the shape of the book's `optimizer_compare_mnist.py` and
//! `weight_init_compare.py`), then smoothed with the book's `smooth_curve`.

use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;
use rayon::prelude::*;
use staticgrad::model::MlpSpec;
use staticgrad::optim::Optimizer;

use super::Result;
use super::net::{Net, NetStorage};
use super::smooth::smooth_curve;
use crate::Error;
use crate::data::Dataset;

/// One network of a comparison.
#[derive(Clone, Copy, Debug)]
pub struct Contender<'a> {
    /// Name in tables and legends.
    pub name: &'a str,
    /// The model.
    pub spec: MlpSpec<'a>,
    /// The update rule.
    pub opt: Optimizer,
    /// Its learning rate.
    pub lr: f32,
}

/// What one contender did.
#[derive(Clone, Debug)]
pub struct Curve {
    /// Name.
    pub name: String,
    /// Learning rate.
    pub lr: f32,
    /// Eval-mode loss on each iteration's batch, after that iteration's update.
    pub loss: Vec<f64>,
    /// `smooth_curve(loss)`.
    pub smoothed: Vec<f64>,
    /// Accuracy on the held-out images after the last iteration.
    pub test_acc: f64,
    /// Step at which the run diverged, if it did.
    pub diverged: Option<usize>,
}

impl Curve {
    /// Mean raw loss over the last `k` iterations.
    pub fn mean_last(&self, k: usize) -> f64 {
        let s = &self.loss[self.loss.len().saturating_sub(k)..];
        s.iter().sum::<f64>() / s.len().max(1) as f64
    }

    /// Last smoothed value.
    pub fn final_smoothed(&self) -> f64 {
        self.smoothed.last().copied().unwrap_or(f64::NAN)
    }

    /// First iteration whose smoothed loss is below `v`.
    pub fn first_below(&self, v: f64) -> Option<usize> {
        self.smoothed.iter().position(|&l| l < v)
    }
}

/// Trains every contender for `iters` iterations on batches of `batch` images drawn with
/// replacement from `train` (the book's `np.random.choice`), the same batch for all, and
/// evaluates each on `test` at the end. Contender `i` starts from weights drawn with
/// `seed + 1` (the same starting weights for all when the specs match).
pub fn compare(
    contenders: &[Contender],
    train: &Dataset,
    test: &Dataset,
    iters: usize,
    batch: usize,
    seed: u64,
) -> Result<Vec<Curve>> {
    if train.is_empty() || batch == 0 || iters == 0 {
        return Err(Error::Input("need training images, a positive batch size and iterations".into()));
    }
    let mut stores: Vec<NetStorage> =
        contenders.iter().map(|c| NetStorage::new(&c.spec.model(), &c.opt, batch)).collect();
    let mut nets: Vec<(Net, f32, Vec<f64>)> = Vec::new();
    for (c, st) in contenders.iter().zip(stores.iter_mut()) {
        nets.push((
            Net::new(st, seed.wrapping_add(1), seed.wrapping_add(2))?,
            c.lr,
            Vec::with_capacity(iters),
        ));
    }
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let mut idx = vec![0usize; batch];
    for _ in 0..iters {
        for i in idx.iter_mut() {
            *i = crate::data::below(&mut rng, train.len());
        }
        train.gather(&idx, &mut x, &mut y);
        nets.par_iter_mut().try_for_each(|(net, lr, losses)| -> Result<()> {
            net.step(&x, &y, *lr)?;
            losses.push(net.eval_loss(&x, &y)? as f64);
            Ok(())
        })?;
    }
    let mut out = Vec::new();
    for (c, (mut net, lr, loss)) in contenders.iter().zip(nets) {
        let test_acc = net.accuracy(test)?;
        let smoothed = smooth_curve(&loss);
        out.push(Curve { name: c.name.to_string(), lr, loss, smoothed, test_acc, diverged: net.diverged });
    }
    Ok(out)
}

/// Bytes one iteration of one contender leaves behind, at most: its raw and smoothed loss, its
/// `loss.csv` cells and its point in the figure.
pub const ITER_BYTES: u64 = 128;

/// Charges a comparison of `contenders` networks of `widths` (784 inputs, `hidden` layers),
/// trained together on `batch` rows for `iters` iterations, with `rows` bundled images copied
/// out as train and test sets.
pub fn charge(
    contenders: &[(MlpSpec, Optimizer)],
    batch: usize,
    iters: usize,
    rows: usize,
    what: &str,
    budget: &mut crate::budget::Budget,
) -> Result<()> {
    budget.charge("the bundled images", super::bundled_bytes(rows))?;
    let nets = contenders
        .iter()
        .try_fold(0u64, |acc, (s, o)| acc.checked_add(super::net::storage_bytes(&s.model(), o, batch)?));
    budget.charge(&format!("--batch {batch} {what}: {} networks", contenders.len()), nets)?;
    let need = iters.checked_mul(contenders.len()).and_then(|n| super::records(n, ITER_BYTES));
    Ok(budget.charge(&format!("--iters {iters}: the loss curves"), need)?)
}

/// `784, 100 × hidden, 10`, with the `usize`s it takes charged first (`--hidden` can be huge).
pub fn widths_within(hidden: usize, budget: &mut crate::budget::Budget) -> Result<Vec<usize>> {
    budget.charge(
        &format!("--hidden {hidden}: the layer widths"),
        hidden.checked_add(2).and_then(crate::budget::of::<usize>),
    )?;
    let mut widths = vec![784];
    widths.extend(std::iter::repeat_n(100, hidden));
    widths.push(10);
    Ok(widths)
}

/// The seed-0 rerun of the book's script for one contender: mean loss over the last 100
/// iterations, test accuracy after training, first iteration with smoothed loss below 0.5.
#[derive(Clone, Copy, Debug)]
pub struct BookRow {
    /// Contender name.
    pub name: &'static str,
    /// Mean raw loss over the last 100 iterations.
    pub mean_last100: f64,
    /// Test accuracy after the last iteration.
    pub test_acc: f64,
    /// First iteration with smoothed loss below 0.5.
    pub first_below_half: Option<usize>,
    /// The publisher's notebook: loss at iteration 1900.
    pub notebook_1900: f64,
}

/// Writes `loss.csv`, `curves.json`, `loss.svg` (smoothed curves, y in 0..1 as the book's
/// figure) and the comparison table into `out`'s summary.
pub fn write(out: &mut super::Output, curves: &[Curve], title: &str, book: &[BookRow]) -> Result<()> {
    use super::fmt;
    use crate::report::chart::{self, Chart, Series};
    use serde_json::json;

    let n = curves.first().map_or(0, |c| c.loss.len());
    let mut header = vec!["iteration".to_string()];
    for c in curves {
        header.push(format!("{}_loss", c.name));
        header.push(format!("{}_smoothed", c.name));
    }
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    out.csv(
        "loss.csv",
        &header_refs,
        (0..n).map(|i| {
            let mut r = vec![i.to_string()];
            for c in curves {
                r.push(format!("{:.6}", c.loss[i]));
                r.push(format!("{:.6}", c.smoothed[i]));
            }
            r
        }),
    )?;
    let js: Vec<_> = curves
        .iter()
        .map(|c| {
            json!({"name": c.name, "lr": c.lr, "mean_loss_last_100": c.mean_last(100),
                   "final_smoothed_loss": c.final_smoothed(), "first_iter_smoothed_below_0.5": c.first_below(0.5),
                   "test_acc": c.test_acc, "diverged_at_step": c.diverged})
        })
        .collect();
    out.json("curves.json", &json!({ "contenders": js }))?;

    let mut ch = Chart::new(title, "iterations", "loss (smoothed)");
    ch.y_range = Some((0.0, 1.0));
    ch.x_range = Some((0.0, n.max(1) as f64));
    for (i, c) in curves.iter().enumerate() {
        let pts = c.smoothed.iter().enumerate().map(|(k, &v)| (k as f64, v.min(1.0))).collect();
        ch.series.push(Series::line(&c.name, pts, chart::color(i)));
    }
    let p = out.path("loss.svg");
    chart::save_chart(&p, &ch, (800, 520))?;

    out.table_head(&[
        "contender",
        "lr",
        "mean loss, last 100 it.",
        "smoothed loss at the end",
        "first it. smoothed < 0.5",
        "held-out accuracy",
        "book seed-0: mean last 100 / accuracy / first < 0.5",
        "notebook loss at it. 1900",
    ]);
    for c in curves {
        let b = book.iter().find(|b| b.name == c.name);
        let bs = b.map_or("—".into(), |b| {
            format!(
                "{} / {} / {}",
                fmt(b.mean_last100),
                fmt(b.test_acc),
                b.first_below_half.map_or("never".into(), |v| v.to_string())
            )
        });
        let nb = b.map_or("—".into(), |b| fmt(b.notebook_1900));
        out.row(&[
            c.name.clone(),
            c.lr.to_string(),
            fmt(c.mean_last(100)),
            fmt(c.final_smoothed()),
            c.first_below(0.5).map_or("never".into(), |v| v.to_string()),
            fmt(c.test_acc),
            bs,
            nb,
        ]);
    }
    Ok(())
}
