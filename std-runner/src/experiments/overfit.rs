//! Experiment 6 (book §6.4.1–6.4.2, Figs. 6-20 and 6-21): overfitting a 6×100 ReLU network (He
//! init) on 300 images, SGD lr 0.01, batch 100, 201 evaluations (one per 3 iterations), without
//! and with weight decay λ = 0.1 (coupled L2: λ·W added to the gradient, 0.5·λ·ΣW² in the loss).
//! Train accuracy on the 300 images against test accuracy on bundled images never trained on.

use std::path::PathBuf;

use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;
use serde_json::json;
use staticgrad::init::Init;
use staticgrad::model::{Activation, Loss, MlpSpec};
use staticgrad::optim::{Optimizer, WeightDecay};

use super::net::{Net, NetStorage};
use super::{Check, Output, Result, f64s, fmt, mnist_common, reference};
use crate::Error;
use crate::budget::{self, Budget};
use crate::data::Dataset;
use crate::data::below;
use crate::report::chart::{self, Chart, Series, Style};

/// Settings of `staticgrad experiment overfit`.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Output folder.
    #[arg(long, default_value = "runs/overfit")]
    pub out: PathBuf,
    /// Training images: the first N bundled images (the book: 300).
    #[arg(long, default_value_t = 300)]
    pub samples: usize,
    /// Test images: the last N bundled images (default: every bundled image not trained on,
    /// 9,700 with 300 training images; the book uses the 10,000 official test images).
    #[arg(long)]
    pub test: Option<usize>,
    /// Evaluations, one per epoch of samples/batch iterations (the book: 201).
    #[arg(long, default_value_t = 201)]
    pub epochs: usize,
    /// Mini-batch size (the book: 100).
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// SGD learning rate (the book: 0.01).
    #[arg(long, default_value_t = 0.01)]
    pub lr: f32,
    /// Weight decay λ of the regularised run (the book: 0.1); the other run uses λ = 0.
    #[arg(long, default_value_t = 0.1)]
    pub lambda: f32,
    /// Hidden layers of 100 units (the book: 6).
    #[arg(long, default_value_t = 6)]
    pub hidden: usize,
    /// Seed of weights, batches and dropout masks.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Train and test accuracy per evaluation of one run.
#[derive(Clone, Debug)]
pub struct AccCurves {
    /// Label.
    pub name: String,
    /// Training accuracy after iterations 0, per_epoch, 2·per_epoch, …
    pub train: Vec<f64>,
    /// Test accuracy at the same points.
    pub test: Vec<f64>,
    /// Loss of every training step (before its update, with the L2 term).
    pub loss: Vec<f64>,
}

impl AccCurves {
    /// Final train accuracy.
    pub fn final_train(&self) -> f64 {
        self.train.last().copied().unwrap_or(f64::NAN)
    }
    /// Final test accuracy.
    pub fn final_test(&self) -> f64 {
        self.test.last().copied().unwrap_or(f64::NAN)
    }
    /// Final train − test.
    pub fn gap(&self) -> f64 {
        self.final_train() - self.final_test()
    }
}

/// The training/test images of an overfitting run: the first `samples`, and the last `test` (all
/// the others by default).
pub fn split(samples: usize, test: Option<usize>) -> Result<(Dataset, Dataset)> {
    let data = mnist_common::load()?;
    let t = test.unwrap_or(data.len().saturating_sub(samples));
    mnist_common::split_head_tail(&data, samples, t)
}

/// The network of §6.4: `hidden` layers of 100 ReLU units, He init, book cross-entropy.
pub fn widths(hidden: usize) -> Vec<usize> {
    let mut w = vec![784];
    w.extend(std::iter::repeat_n(100, hidden));
    w.push(10);
    w
}

/// Trains `spec` with `opt` (batches with replacement) and evaluates train and test accuracy after
/// iterations 0, k, 2k, … (k = samples/batch) until `epochs` evaluations are done — the loop of
/// the book's scripts and of its `Trainer`.
#[allow(clippy::too_many_arguments)]
pub fn train_curves(
    name: &str,
    spec: MlpSpec,
    opt: Optimizer,
    train: &Dataset,
    test: &Dataset,
    epochs: usize,
    batch: usize,
    lr: f32,
    seed: u64,
) -> Result<AccCurves> {
    if epochs == 0 || batch == 0 {
        return Err(Error::Input("--epochs and --batch must be positive".into()));
    }
    let mut st = NetStorage::new(&spec.model(), &opt, batch);
    let mut net = Net::new(&mut st, seed.wrapping_add(1), seed.wrapping_add(2))?;
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed);
    let per_epoch = (train.len() / batch).max(1);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let mut idx = vec![0; batch];
    let mut c = AccCurves { name: name.to_string(), train: Vec::new(), test: Vec::new(), loss: Vec::new() };
    let mut it = 0usize;
    while c.train.len() < epochs {
        for k in idx.iter_mut() {
            *k = below(&mut rng, train.len());
        }
        train.gather(&idx, &mut x, &mut y);
        c.loss.push(net.step(&x, &y, lr)? as f64);
        if it.is_multiple_of(per_epoch) {
            c.train.push(net.accuracy(train)?);
            c.test.push(net.accuracy(test)?);
        }
        it += 1;
    }
    Ok(c)
}

/// Writes `accuracy.csv`, `curves.json` and one figure per run (train solid, test dashed).
pub fn write_curves(out: &mut Output, runs: &[AccCurves], fig_prefix: &str) -> Result<()> {
    let n = runs.iter().map(|r| r.train.len()).max().unwrap_or(0);
    let mut header = vec!["epoch".to_string()];
    for r in runs {
        header.push(format!("{}_train_acc", r.name));
        header.push(format!("{}_test_acc", r.name));
    }
    let h: Vec<&str> = header.iter().map(String::as_str).collect();
    out.csv(
        "accuracy.csv",
        &h,
        (0..n).map(|e| {
            let mut row = vec![e.to_string()];
            for r in runs {
                row.push(r.train.get(e).map_or(String::new(), |v| format!("{v:.4}")));
                row.push(r.test.get(e).map_or(String::new(), |v| format!("{v:.4}")));
            }
            row
        }),
    )?;
    let js: Vec<_> = runs
        .iter()
        .map(|r| {
            json!({"name": r.name, "train_acc": r.train, "test_acc": r.test, "final_train_acc": r.final_train(),
                   "final_test_acc": r.final_test(), "gap": r.gap(), "step_loss": r.loss})
        })
        .collect();
    out.json("curves.json", &json!({ "runs": js }))?;
    for r in runs {
        let mut ch = Chart::new(format!("{} — train vs test accuracy", r.name), "epochs", "accuracy");
        ch.y_range = Some((0.0, 1.0));
        ch.legend_lower = true;
        let pts = |v: &[f64]| v.iter().enumerate().map(|(e, &a)| (e as f64, a)).collect();
        ch.series.push(Series::line("train", pts(&r.train), chart::color(0)));
        ch.series.push(Series::line("test", pts(&r.test), chart::color(1)).styled(Style::Dashed));
        let slug: String =
            r.name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '_' }).collect();
        let p = out.path(&format!("{fig_prefix}{slug}.svg"));
        chart::save_chart(&p, &ch, (640, 440))?;
    }
    Ok(())
}

/// The book's seed-0 final (train, test) of a reference run key.
pub fn book_final(key: &str) -> Option<(f64, f64)> {
    let r = reference::get();
    let t = f64s(&r[key]["train_acc_per_eval"]);
    let s = f64s(&r[key]["test_acc_per_eval"]);
    Some((*t.last()?, *s.last()?))
}

/// The measured runs.
#[derive(Clone, Debug)]
pub struct Report {
    /// λ = 0.
    pub plain: AccCurves,
    /// λ = `args.lambda`.
    pub decay: AccCurves,
}

impl Args {
    /// Refuses a setting that cannot run (before anything is created).
    pub fn validate(&self) -> Result<()> {
        use crate::check::{non_negative, nonzero, positive};
        nonzero(&[("--samples", self.samples), ("--epochs", self.epochs), ("--batch", self.batch)])?;
        positive("--lr", self.lr)?;
        non_negative("--lambda", self.lambda)?;
        Ok(())
    }
}

/// Bytes one evaluation of one run leaves behind, at most (two accuracies, CSV cells, JSON
/// numbers, figure points).
pub const EVAL_BYTES: u64 = 256;
/// Bytes one training iteration of one run leaves behind: its loss and its JSON number.
pub const ITER_BYTES: u64 = 40;

/// Charges `runs` networks of `spec` trained at once on `batch` rows, and `epochs` evaluations
/// (each `samples / batch` iterations) of each.
pub fn charge_runs(
    spec: &MlpSpec,
    runs: usize,
    samples: usize,
    epochs: usize,
    batch: usize,
    what: &str,
    budget: &mut Budget,
) -> Result<()> {
    let net = super::net::storage_bytes(&spec.model(), &Optimizer::sgd(), batch);
    budget.charge(
        &format!("--batch {batch} {what}: {runs} networks at once"),
        net.and_then(|n| n.checked_mul(runs as u64)),
    )?;
    let per_epoch = (samples / batch.max(1)).max(1);
    let iters = epochs.saturating_sub(1).checked_mul(per_epoch).and_then(|i| i.checked_add(1));
    let need = budget::sum(&[
        epochs.checked_mul(runs).and_then(|e| super::records(e, EVAL_BYTES)),
        iters.and_then(|i| i.checked_mul(runs)).and_then(|i| super::records(i, ITER_BYTES)),
    ]);
    Ok(budget.charge(&format!("--epochs {epochs} (of {per_epoch} iterations): the curves"), need)?)
}

/// Charges the bundled images and the two runs (λ = 0 and λ = `--lambda`) at once.
pub fn charge(args: &Args, budget: &mut Budget) -> Result<()> {
    budget.charge("the bundled images", super::bundled_bytes(crate::data::BUNDLED_COUNT))?;
    let w = super::curves::widths_within(args.hidden, budget)?;
    let what = format!("--hidden {}", args.hidden);
    charge_runs(&MlpSpec::new(&w), 2, args.samples, args.epochs, args.batch, &what, budget)
}

/// Runs the experiment and writes its files.
pub fn run(args: &Args) -> Result<Report> {
    args.validate()?;
    let (train, test) = split(args.samples, args.test)?;
    let w = widths(args.hidden);
    let spec = MlpSpec::new(&w)
        .with_activation(Activation::Relu)
        .with_init(Init::HeNormal)
        .with_loss(Loss::SoftmaxCrossEntropyBook);
    let sgd = Optimizer::sgd();
    let go = |name: &str, opt| {
        train_curves(name, spec, opt, &train, &test, args.epochs, args.batch, args.lr, args.seed)
    };
    let (plain, decay) = rayon::join(
        || go("lambda=0", sgd),
        || go(&format!("lambda={}", args.lambda), sgd.with_weight_decay(WeightDecay::L2(args.lambda))),
    );
    let (plain, decay) = (plain?, decay?);

    let mut out = Output::new(&args.out)?;
    write_curves(&mut out, &[plain.clone(), decay.clone()], "accuracy_")?;
    out.line(format!(
        "784-{}-10 ReLU network (He init), SGD lr {}, batch {} drawn with replacement from the first {} bundled \
         images, {} evaluations (after iterations 0, {k}, {}, …); λ = 0 and λ = {} (coupled L2, weights only), both \
         from the same initial weights on the same batches.\n",
        vec!["100"; args.hidden].join("-"),
        args.lr,
        args.batch,
        args.samples,
        args.epochs,
        2 * (args.samples / args.batch).max(1),
        args.lambda,
        k = (args.samples / args.batch).max(1),
    ));
    out.line(format!(
        "**Test images:** the last {} bundled images (never trained on); the book tests on the 10,000 official \
         test images.\n",
        test.len()
    ));
    out.table_head(&["run", "final train acc", "final test acc", "gap", "book seed-0 train / test / gap"]);
    for (r, key) in [(&plain, "overfit_wd0"), (&decay, "overfit_wd01")] {
        let b = book_final(key)
            .map_or("—".into(), |(t, s)| format!("{} / {} / {}", fmt(t), fmt(s), fmt(t - s)));
        out.row(&[r.name.to_string(), fmt(r.final_train()), fmt(r.final_test()), fmt(r.gap()), b]);
    }
    let first_one = plain.train.iter().position(|&a| a >= 1.0);
    out.line(format!(
        "\nλ = 0: train accuracy first reaches 1.0 at evaluation {} (book seed-0: 124). Book: λ = 0 reaches ~100 % \
         train accuracy after about 100 epochs with test far below; λ = 0.1 shrinks the gap and train accuracy no \
         longer reaches 100 %.",
        first_one.map_or("never".into(), |e| e.to_string())
    ));
    out.check(Check::new(
        "λ = 0 overfits: train accuracy ≥ 0.99 with a gap to test ≥ 0.15",
        plain.final_train() >= 0.99 && plain.gap() >= 0.15,
        format!(
            "train {}, test {}, gap {}",
            fmt(plain.final_train()),
            fmt(plain.final_test()),
            fmt(plain.gap())
        ),
    ));
    out.check(Check::new(
        format!("λ = {} shrinks the gap", args.lambda),
        decay.gap() < plain.gap(),
        format!("gap {} vs {}", fmt(decay.gap()), fmt(plain.gap())),
    ));
    let text = out.finish("Overfitting and weight decay (book §6.4.1–6.4.2)")?;
    super::emit(&text);
    Ok(Report { plain, decay })
}
