//! Experiment 1 (book §6.1.7, Figs. 6-3 to 6-8): six update rules on f(x, y) = x²/20 + y² from
//! (−7, 2), 30 updates each, drawn over the function's contour lines.
//!
//! The rules are the core's [`Optimizer`]s over a two-float parameter; the gradient (x/10, 2y) is
//! written into the parameter store exactly as the book computes it. The book's float64 paths
//! (`std-runner/data/optimizer_paths.json`, built into the binary) are compared point by point.

use std::path::PathBuf;

use serde_json::{Value, json};
use staticgrad::optim::Optimizer;
use staticgrad::{ParamKind, ParamStorage, Shape};

use crate::budget::Budget;

use super::{Check, Output, Result, fmt};
use crate::report::chart::{self, Chart, Series, Style};

/// The book's float64 reference paths, built in (no file is read at run time).
pub const GOLDEN: &str = include_str!("../../data/optimizer_paths.json");

/// Settings of `staticgrad experiment optimizers-2d`.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Output folder.
    #[arg(long, default_value = "runs/optimizers-2d")]
    pub out: PathBuf,
    /// Number of updates per rule (the book: 30).
    #[arg(long, default_value_t = 30)]
    pub steps: usize,
    /// A rule's learning rate, `RULE=LR` (e.g. `--lr sgd=0.5 --lr adam=0.2`); rules not named keep
    /// the book's (SGD 0.95, Momentum 0.1, Nesterov 0.1, AdaGrad 1.5, RMSprop 0.1, Adam 0.3).
    #[arg(long = "lr", value_name = "RULE=LR", value_parser = parse_rule_lr)]
    pub lrs: Vec<(String, f32)>,
    /// Start point (the book: −7 2).
    #[arg(long, num_args = 2, value_names = ["X", "Y"], allow_negative_numbers = true, default_values_t = [-7.0f32, 2.0])]
    pub start: Vec<f32>,
}

fn parse_rule_lr(s: &str) -> std::result::Result<(String, f32), String> {
    let (name, lr) = s.split_once('=').ok_or_else(|| format!("{s:?} is not RULE=LR (e.g. sgd=0.5)"))?;
    let Some(case) = CASES.iter().find(|c| c.name.eq_ignore_ascii_case(name.trim())) else {
        let names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
        return Err(format!("{name:?}: not a rule here; one of {}", names.join(", ")));
    };
    let lr: f32 = lr.trim().parse().map_err(|_| format!("{lr:?} is not a number"))?;
    if !(lr.is_finite() && lr > 0.0) {
        return Err(format!("{name}={lr}: the learning rate must be finite and positive"));
    }
    Ok((case.name.to_string(), lr))
}

/// The book's start point.
pub const START: (f32, f32) = (-7.0, 2.0);

impl Args {
    /// The learning rate of `case`: `--lr` for it, else the book's.
    pub fn lr_of(&self, case: &Case) -> f32 {
        self.lrs.iter().rev().find(|(n, _)| n == case.name).map_or(case.lr, |&(_, lr)| lr)
    }

    /// The start point.
    pub fn start_point(&self) -> (f32, f32) {
        match self.start.as_slice() {
            &[x, y] => (x, y),
            _ => START,
        }
    }
}

/// One rule as the book runs it.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    /// Name as in the book's figure and the golden file.
    pub name: &'static str,
    /// The update rule.
    pub opt: Optimizer,
    /// Learning rate.
    pub lr: f32,
    /// f after 30 updates in the book's float64 run (EXPERIMENTS.md).
    pub book_f: f64,
    /// In the book's figure (SGD, Momentum, AdaGrad, Adam) or one of the two extra rules.
    pub in_book_figure: bool,
}

/// The six rules with the book's learning rates (Nesterov and RMSProp: 0.1, as the golden paths).
pub const CASES: [Case; 6] = [
    Case { name: "SGD", opt: Optimizer::sgd(), lr: 0.95, book_f: 0.0133, in_book_figure: true },
    Case { name: "Momentum", opt: Optimizer::momentum(), lr: 0.1, book_f: 0.048, in_book_figure: true },
    Case { name: "Nesterov", opt: Optimizer::nesterov(), lr: 0.1, book_f: 0.0238, in_book_figure: false },
    Case { name: "AdaGrad", opt: Optimizer::adagrad(), lr: 1.5, book_f: 7.2e-4, in_book_figure: true },
    Case { name: "RMSprop", opt: Optimizer::rmsprop(), lr: 0.1, book_f: 0.0243, in_book_figure: false },
    Case { name: "Adam", opt: Optimizer::adam(), lr: 0.3, book_f: 0.102, in_book_figure: true },
];

/// f(x, y) = x²/20 + y².
pub fn f(x: f64, y: f64) -> f64 {
    x * x / 20.0 + y * y
}

/// The path of one rule: `steps + 1` points, the start and the point after each update.
pub fn path(case: &Case, steps: usize) -> Result<Vec<(f32, f32)>> {
    path_from(case, case.lr, START, steps)
}

/// [`path`] with learning rate `lr` from `start`.
pub fn path_from(case: &Case, lr: f32, start: (f32, f32), steps: usize) -> Result<Vec<(f32, f32)>> {
    let mut ps = ParamStorage::<2, 1>::new();
    let mut params = ps.params();
    let p = params.alloc(Shape::row(2), ParamKind::Weight)?;
    params.value_mut(p)?.copy_from_slice(&[start.0, start.1]);
    let opt = case.opt;
    let mut state = vec![0.0f32; opt.state_len(2)];
    let mut out = Vec::with_capacity(steps + 1);
    for _ in 0..steps {
        let (x, y) = (params.value(p)?[0], params.value(p)?[1]);
        out.push((x, y));
        params.grad_mut(p)?.copy_from_slice(&[x / 10.0, 2.0 * y]);
        opt.step(&mut params, &mut state, lr)?;
    }
    out.push((params.value(p)?[0], params.value(p)?[1]));
    Ok(out)
}

/// The measured outcome of one rule.
#[derive(Clone, Debug)]
pub struct RuleResult {
    /// Rule name.
    pub name: &'static str,
    /// Points: start, then after each update.
    pub path: Vec<(f32, f32)>,
    /// f at the last point.
    pub f_final: f64,
    /// Largest |ours − book| over the golden points (history and final), when the golden has this rule
    /// and the run has 30 steps.
    pub max_abs_dev: Option<f64>,
}

/// Everything the experiment measured.
#[derive(Clone, Debug)]
pub struct Report {
    /// One entry per rule, in [`CASES`] order.
    pub rules: Vec<RuleResult>,
    /// The book's ordering of the final f values holds (all six rules).
    pub ordering_as_book: bool,
    /// AdaGrad has the lowest final f of the four rules of the book's figure.
    pub adagrad_lowest: bool,
}

/// The golden path of `name` (30 points before each update, then the final point), if present.
pub fn golden_path(name: &str) -> Option<Vec<(f64, f64)>> {
    let v: Value = serde_json::from_str(GOLDEN).ok()?;
    let r = v.get(name)?;
    let pt = |p: &Value| Some((p.get(0)?.as_f64()?, p.get(1)?.as_f64()?));
    let mut out: Vec<(f64, f64)> = r.get("history")?.as_array()?.iter().map(pt).collect::<Option<_>>()?;
    out.push(pt(r.get("final")?)?);
    Some(out)
}

impl Args {
    /// Refuses a setting that cannot run (before anything is created).
    pub fn validate(&self) -> Result<()> {
        crate::check::nonzero(&[("--steps", self.steps)])?;
        let (x, y) = self.start_point();
        if !(x.is_finite() && y.is_finite() && x.abs() <= 1e6 && y.abs() <= 1e6) {
            return Err(crate::Error::Input(format!("--start {x} {y}: need two finite numbers within ±1e6")));
        }
        Ok(())
    }
}

/// Bytes one update of one rule leaves behind, at most: its point in the path, in the figure and
/// its `paths.csv` row and SVG text.
pub const STEP_BYTES: u64 = 256;

/// Charges the paths, table rows and figure points of `--steps` updates of the six rules.
pub fn charge(args: &Args, budget: &mut Budget) -> Result<()> {
    let points = args.steps.checked_add(1).and_then(|p| p.checked_mul(CASES.len()));
    let need = points.and_then(|p| super::records(p, STEP_BYTES));
    Ok(budget.charge(&format!("--steps {}: the paths of {} rules", args.steps, CASES.len()), need)?)
}

/// Runs the experiment and writes its files.
pub fn run(args: &Args) -> Result<Report> {
    args.validate()?;
    let mut out = Output::new(&args.out)?;
    let mut rules = Vec::new();
    let start = args.start_point();
    // The book's paths and claims are for its start point and learning rates.
    let as_book = |c: &Case| start == START && args.lr_of(c) == c.lr;
    let all_book = CASES.iter().all(as_book);
    for c in &CASES {
        let p = path_from(c, args.lr_of(c), start, args.steps)?;
        let golden = golden_path(c.name).filter(|_| as_book(c));
        let (x, y) = p[p.len() - 1];
        let max_abs_dev = golden.filter(|g| g.len() == p.len()).map(|g| {
            g.iter()
                .zip(&p)
                .map(|(a, b)| (a.0 - b.0 as f64).abs().max((a.1 - b.1 as f64).abs()))
                .fold(0.0, f64::max)
        });
        rules.push(RuleResult { name: c.name, path: p, f_final: f(x as f64, y as f64), max_abs_dev });
    }
    let mut by_f: Vec<usize> = (0..rules.len()).collect();
    by_f.sort_by(|&a, &b| rules[a].f_final.total_cmp(&rules[b].f_final));
    let mut book_order: Vec<usize> = (0..CASES.len()).collect();
    book_order.sort_by(|&a, &b| CASES[a].book_f.total_cmp(&CASES[b].book_f));
    let ordering_as_book = by_f == book_order;
    let fig4 = (0..CASES.len()).filter(|&i| CASES[i].in_book_figure);
    let lowest = fig4.min_by(|&a, &b| rules[a].f_final.total_cmp(&rules[b].f_final));
    let adagrad_lowest = lowest.is_some_and(|i| rules[i].name == "AdaGrad");

    out.csv(
        "paths.csv",
        &["optimizer", "lr", "step", "x", "y", "f"],
        CASES.iter().zip(&rules).flat_map(|(c, r)| {
            r.path.iter().enumerate().map(move |(i, &(x, y))| {
                vec![
                    c.name.to_string(),
                    args.lr_of(c).to_string(),
                    i.to_string(),
                    x.to_string(),
                    y.to_string(),
                    f(x as f64, y as f64).to_string(),
                ]
            })
        }),
    )?;
    let results: Vec<Value> = CASES
        .iter()
        .zip(&rules)
        .map(|(c, r)| {
            json!({"optimizer": c.name, "lr": args.lr_of(c), "f_final": r.f_final, "book_f_final": c.book_f,
                   "final": [r.path[r.path.len() - 1].0, r.path[r.path.len() - 1].1],
                   "max_abs_deviation_from_book_path": r.max_abs_dev})
        })
        .collect();
    out.json(
        "results.json",
        &json!({"function": "x^2/20 + y^2", "start": [start.0, start.1], "steps": args.steps,
                "rules": results, "ordering_as_book": ordering_as_book, "adagrad_lowest_of_book_four": adagrad_lowest}),
    )?;

    // Figure: one panel per rule, the book's 30 plotted points over contour ellipses.
    let contours: Vec<Series> = [0.1, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
        .iter()
        .map(|&c: &f64| {
            let (a, b) = ((20.0 * c).sqrt(), c.sqrt());
            let pts = (0..=200)
                .map(|i| {
                    let t = i as f64 / 200.0 * std::f64::consts::TAU;
                    let (x, y) = (a * t.cos(), b * t.sin());
                    if x.abs() <= 10.0 { (x, y) } else { (f64::NAN, f64::NAN) }
                })
                .collect();
            Series::line("", pts, chart::RGBColor(190, 190, 190)).unlabelled()
        })
        .collect();
    let charts: Vec<Chart> = CASES
        .iter()
        .zip(&rules)
        .map(|(c, r)| {
            let mut ch = Chart::new(format!("{} (lr {})", c.name, args.lr_of(c)), "x", "y");
            ch.x_range = Some((-10.0, 10.0));
            ch.y_range = Some((-5.0, 5.0));
            ch.series.extend(contours.iter().cloned());
            let shown = r.path[..r.path.len().saturating_sub(1).max(1)].iter();
            let pts = shown.map(|&(x, y)| (x as f64, y as f64)).collect();
            ch.series.push(
                Series::line(format!("f after {} = {}", args.steps, fmt(r.f_final)), pts, chart::color(3))
                    .styled(Style::LineDots),
            );
            ch.series.push(
                Series::line("minimum", vec![(0.0, 0.0)], chart::RGBColor(0, 0, 0)).styled(Style::Dots),
            );
            ch
        })
        .collect();
    let svg = out.path("paths.svg");
    let title = format!("Update rules on f(x,y) = x²/20 + y² from ({}, {})", start.0, start.1);
    chart::save_grid(&svg, &title, 2, 3, &charts, (440, 320))?;

    out.line(format!(
        "Each rule runs {} updates from ({}, {}) on f(x, y) = x²/20 + y² (gradient (x/10, 2y)), in f32 with the \
         core's optimizers. The figure shows the points before each update, as the book does.\n",
        args.steps, start.0, start.1
    ));
    if !all_book {
        out.line(
            "Settings differ from the book's (start (−7, 2) and its learning rates): the book's claims are checked \
             only where they apply (the path comparison for the rules left as the book has them).\n",
        );
    }
    out.table_head(&[
        "rule",
        "lr",
        "f after the last update",
        "book (float64)",
        "max abs deviation from the book's path",
    ]);
    for (c, r) in CASES.iter().zip(&rules) {
        let dev = r.max_abs_dev.map_or("—".to_string(), |d| format!("{d:.2e}"));
        out.row(&[c.name.to_string(), args.lr_of(c).to_string(), fmt(r.f_final), fmt(c.book_f), dev]);
    }
    let order: Vec<&str> = by_f.iter().map(|&i| rules[i].name).collect();
    out.line(format!("\nOrder of the final f values here: {}.", order.join(" < ")));
    out.line("Book order: AdaGrad < SGD < Nesterov < RMSprop < Momentum < Adam.");
    if all_book {
        out.check(Check::new("Final f values order as in the book", ordering_as_book, order.join(" < ")));
    }
    let four: Vec<String> = CASES
        .iter()
        .zip(&rules)
        .filter(|(c, _)| c.in_book_figure)
        .map(|(c, r)| format!("{} {}", c.name, fmt(r.f_final)))
        .collect();
    if all_book {
        out.check(Check::new(
            "AdaGrad ends lowest of the book's four rules",
            adagrad_lowest,
            four.join(", "),
        ));
    }
    let worst = rules.iter().filter_map(|r| r.max_abs_dev).fold(0.0, f64::max);
    if args.steps == 30 && rules.iter().any(|r| r.max_abs_dev.is_some()) {
        out.check(Check::new(
            "Paths equal the book's float64 paths within f32 tolerance (1e-4)",
            worst < 1e-4,
            format!("worst abs deviation {worst:.2e}"),
        ));
    }
    let report = Report { rules, ordering_as_book, adagrad_lowest };
    let text = out.finish("Optimizer paths on x²/20 + y² (book §6.1.7)")?;
    super::emit(&text);
    Ok(report)
}
