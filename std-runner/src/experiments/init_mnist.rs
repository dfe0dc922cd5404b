//! Experiment 4 (book §6.2.4, Fig. 6-15): the same 4×100 ReLU network initialised with std 0.01,
//! the book's Xavier (√(1/n)) and He (√(2/n)), trained with SGD (lr 0.01) on the same batches of
//! 128 for 2,000 iterations.

use std::path::PathBuf;

use staticgrad::init::Init;
use staticgrad::model::{Activation, Loss, MlpSpec};
use staticgrad::optim::Optimizer;

use crate::budget::Budget;

use super::curves::{self, BookRow, Contender};
use super::{Check, Output, Result, fmt, mnist_common};

/// Settings of `staticgrad experiment init-mnist`.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Output folder.
    #[arg(long, default_value = "runs/init-mnist")]
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
    /// SGD learning rate (the book: 0.01).
    #[arg(long, default_value_t = 0.01)]
    pub lr: f32,
    /// Seed of the initial weights and of the batch draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

const BOOK: [BookRow; 3] = [
    BookRow {
        name: "std=0.01",
        mean_last100: 2.301,
        test_acc: 0.114,
        first_below_half: None,
        notebook_1900: 2.305,
    },
    BookRow {
        name: "Xavier",
        mean_last100: 0.281,
        test_acc: 0.914,
        first_below_half: Some(743),
        notebook_1900: 0.377,
    },
    BookRow {
        name: "He",
        mean_last100: 0.198,
        test_acc: 0.935,
        first_below_half: Some(327),
        notebook_1900: 0.286,
    },
];

/// The measured curves.
#[derive(Clone, Debug)]
pub struct Report {
    /// std 0.01, Xavier, He.
    pub curves: Vec<curves::Curve>,
    /// std 0.01's mean loss over the last 100 iterations is within 0.02 of 2.30 (it does not learn).
    pub small_stays_at_chance: bool,
    /// He's smoothed loss at the end is below Xavier's.
    pub he_below_xavier: bool,
}

impl Args {
    /// Refuses a setting that cannot run (before anything is created).
    pub fn validate(&self) -> Result<()> {
        use crate::check::{nonzero, positive};
        nonzero(&[("--iters", self.iters), ("--batch", self.batch), ("--train", self.train)])?;
        positive("--lr", self.lr)?;
        Ok(())
    }
}

/// Charges the bundled images, the three networks (`--batch`) and the curves of `--iters`
/// iterations.
pub fn charge(args: &Args, budget: &mut Budget) -> Result<()> {
    let widths = [784, 100, 100, 100, 100, 10];
    let spec = MlpSpec::new(&widths);
    let nets = [(spec, Optimizer::sgd()); 3];
    curves::charge(&nets, args.batch, args.iters, args.train.saturating_add(args.test), "", budget)
}

/// Runs the experiment and writes its files.
pub fn run(args: &Args) -> Result<Report> {
    args.validate()?;
    let data = mnist_common::load()?;
    let (train, test) = mnist_common::split_head_tail(&data, args.train, args.test)?;
    let widths = [784, 100, 100, 100, 100, 10];
    let base =
        MlpSpec::new(&widths).with_activation(Activation::Relu).with_loss(Loss::SoftmaxCrossEntropyBook);
    let opt = Optimizer::sgd();
    let contenders = [
        Contender { name: "std=0.01", spec: base.with_init(Init::Normal { std: 0.01 }), opt, lr: args.lr },
        Contender { name: "Xavier", spec: base.with_init(Init::XavierBook), opt, lr: args.lr },
        Contender { name: "He", spec: base.with_init(Init::HeNormal), opt, lr: args.lr },
    ];
    let cs = curves::compare(&contenders, &train, &test, args.iters, args.batch, args.seed)?;
    let chance = cs[0].mean_last(100);
    let small_stays_at_chance = (chance - 2.30).abs() < 0.02;
    let he_below_xavier = cs[2].final_smoothed() < cs[1].final_smoothed();

    let mut out = Output::new(&args.out)?;
    out.line(format!(
        "784-100-100-100-100-10 ReLU network, SGD lr {}, batch {}, {} iterations, batches drawn with replacement, \
         the same batches for the three initialisations (std 0.01; the book's Xavier √(1/fan_in); He √(2/fan_in)). \
         Loss logged after each update on its batch, smoothed with the book's `smooth_curve`.\n",
        args.lr, args.batch, args.iters
    ));
    out.line(mnist_common::scale_note(
        args.train,
        args.test,
        "the book trains on all 60,000 MNIST training images",
    ));
    out.line("");
    curves::write(&mut out, &cs, "Weight initialisation on MNIST (smoothed loss)", &BOOK)?;
    out.line(
        "\nBook: std 0.01 does not learn at all (loss stays ≈ 2.30); He learns fastest, Xavier more slowly.",
    );
    out.check(Check::new(
        "std 0.01 does not learn: mean loss of the last 100 iterations within 0.02 of 2.30",
        small_stays_at_chance,
        fmt(chance),
    ));
    out.check(Check::new(
        "He ends below Xavier (smoothed loss at the end)",
        he_below_xavier,
        format!("He {}, Xavier {}", fmt(cs[2].final_smoothed()), fmt(cs[1].final_smoothed())),
    ));
    let text = out.finish("Weight initialisation on MNIST (book §6.2.4)")?;
    super::emit(&text);
    Ok(Report { curves: cs, small_stays_at_chance, he_below_xavier })
}
