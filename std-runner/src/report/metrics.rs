//! A training run's metrics: the per-step and per-epoch records, their rows in `metrics.csv` and
//! `metrics.jsonl`, and their figures (`loss.svg`, `accuracy.svg`) drawn with [`super::chart`].

use super::chart::{Chart, RGBColor, Series, Style};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// One optimisation step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Global step, from 1.
    pub step: u64,
    /// Epoch the step belongs to, from 1.
    pub epoch: u64,
    /// Mini-batch loss.
    pub loss: f32,
    /// Learning rate used.
    pub lr: f32,
}

/// The end of one epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch, from 1.
    pub epoch: u64,
    /// Global step at its end.
    pub step: u64,
    /// Mean mini-batch loss over the epoch.
    pub train_loss: f32,
    /// Accuracy on the training set (evaluation mode).
    pub train_acc: f32,
    /// Accuracy on the validation set, if there is one.
    pub val_acc: Option<f32>,
    /// Accuracy on the test set, if there is one.
    pub test_acc: Option<f32>,
    /// Seconds of training so far.
    pub elapsed_s: f64,
}

fn opt(v: Option<f32>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// `metrics.csv`: one row per step (`kind = step`) and per epoch (`kind = epoch`); empty cells
/// where a column does not apply.
pub fn metrics_csv(steps: &[StepRecord], epochs: &[EpochRecord]) -> String {
    let mut s = String::from("kind,epoch,step,loss,lr,train_acc,val_acc,test_acc,elapsed_s\n");
    let mut e = epochs.iter().peekable();
    for r in steps {
        let _ = writeln!(s, "step,{},{},{},{},,,,", r.epoch, r.step, r.loss, r.lr);
        while let Some(ep) = e.next_if(|ep| ep.step <= r.step) {
            epoch_row(&mut s, ep);
        }
    }
    for ep in e {
        epoch_row(&mut s, ep);
    }
    s
}

fn epoch_row(s: &mut String, ep: &EpochRecord) {
    let _ = writeln!(
        s,
        "epoch,{},{},{},,{},{},{},{:.3}",
        ep.epoch,
        ep.step,
        ep.train_loss,
        ep.train_acc,
        opt(ep.val_acc),
        opt(ep.test_acc),
        ep.elapsed_s
    );
}

/// `metrics.jsonl`: the same rows as [`metrics_csv`], one JSON object per line with a `kind`.
pub fn metrics_jsonl(steps: &[StepRecord], epochs: &[EpochRecord]) -> String {
    #[derive(Serialize)]
    #[serde(tag = "kind", rename_all = "lowercase")]
    enum Row<'a> {
        Step(&'a StepRecord),
        Epoch(&'a EpochRecord),
    }
    let mut s = String::new();
    let mut e = epochs.iter().peekable();
    let mut push = |row: Row| {
        s.push_str(&serde_json::to_string(&row).unwrap_or_default());
        s.push('\n');
    };
    for r in steps {
        push(Row::Step(r));
        while let Some(ep) = e.next_if(|ep| ep.step <= r.step) {
            push(Row::Epoch(ep));
        }
    }
    for ep in e {
        push(Row::Epoch(ep));
    }
    s
}

/// `(lo, hi)` of the finite values; `(0, 1)` if there is none, widened by ½ each way if flat.
fn range_of(vals: impl Iterator<Item = f32>) -> (f32, f32) {
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    for v in vals.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-6 {
        return (lo - 0.5, hi + 0.5);
    }
    (lo, hi)
}

/// Colour of every step's loss.
const STEP_COLOR: RGBColor = RGBColor(120, 160, 220);
/// Colour of the epoch means.
const EPOCH_COLOR: RGBColor = RGBColor(200, 60, 40);

/// `loss.svg`: every step's mini-batch loss (thin) and each epoch's mean (line and markers), from 0.
pub fn loss_chart(steps: &[StepRecord], epochs: &[EpochRecord], title: &str) -> Chart {
    let max_step = steps.last().map_or(1, |s| s.step).max(1) as f64;
    let (_, hi) = range_of(steps.iter().map(|s| s.loss).chain(epochs.iter().map(|e| e.train_loss)));
    let mut c = Chart::new(title, "step", "cross-entropy loss");
    c.x_range = Some((0.0, max_step));
    c.y_range = Some((0.0, f64::from(hi) * 1.05));
    let step_pts = steps.iter().map(|s| (s.step as f64, f64::from(s.loss))).collect();
    c.series.push(Series::line("mini-batch loss", step_pts, STEP_COLOR).styled(Style::Thin));
    let epoch_pts = epochs.iter().map(|e| (e.step as f64, f64::from(e.train_loss))).collect();
    c.series.push(Series::line("epoch mean", epoch_pts, EPOCH_COLOR).styled(Style::LineDots));
    c
}

/// `accuracy.svg`: accuracy per epoch on train, validation and test; a set the run does not have
/// draws no series (and no legend entry).
pub fn accuracy_chart(epochs: &[EpochRecord], title: &str) -> Chart {
    let last = epochs.last().map_or(1, |e| e.epoch).max(1) as f64;
    let all = epochs.iter().flat_map(|e| [Some(e.train_acc), e.val_acc, e.test_acc]).flatten();
    let (lo, _) = range_of(all);
    let lo = ((lo * 20.0).floor() / 20.0).clamp(0.0, 0.95);
    let mut c = Chart::new(title, "epoch", "accuracy");
    c.x_range = Some((0.5, last + 0.5));
    c.y_range = Some((f64::from(lo), 1.0));
    c.legend_lower = true;
    type Get = fn(&EpochRecord) -> Option<f32>;
    let sets: [(&str, RGBColor, Get); 3] = [
        ("train", RGBColor(40, 90, 200), |e| Some(e.train_acc)),
        ("validation", RGBColor(230, 140, 20), |e| e.val_acc),
        ("test (held out)", RGBColor(30, 150, 60), |e| e.test_acc),
    ];
    for (name, color, get) in sets {
        let pts: Vec<(f64, f64)> =
            epochs.iter().filter_map(|e| get(e).map(|a| (e.epoch as f64, f64::from(a)))).collect();
        if !pts.is_empty() {
            c.series.push(Series::line(name, pts, color).styled(Style::LineDots));
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::super::chart::chart_svg;
    use super::*;

    fn sample() -> (Vec<StepRecord>, Vec<EpochRecord>) {
        let steps: Vec<StepRecord> = (1..=6)
            .map(|s| StepRecord { step: s, epoch: s.div_ceil(3), loss: 2.0 / s as f32, lr: 0.1 })
            .collect();
        let ep = |e: u64, acc| EpochRecord {
            epoch: e,
            step: 3 * e,
            train_loss: 1.0 / e as f32,
            train_acc: acc,
            val_acc: None,
            test_acc: Some(acc - 0.01),
            elapsed_s: e as f64,
        };
        (steps, vec![ep(1, 0.8), ep(2, 0.9)])
    }

    #[test]
    fn csv_and_jsonl_interleave_epochs_after_their_last_step() {
        let (s, e) = sample();
        let csv = metrics_csv(&s, &e);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 1 + 6 + 2);
        assert!(lines[4].starts_with("epoch,1,3,1,,0.8,,0.79"), "{}", lines[4]);
        let jl = metrics_jsonl(&s, &e);
        let rows: Vec<serde_json::Value> = jl.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(rows.len(), 8);
        assert_eq!(rows[3]["kind"], "epoch");
        assert_eq!(rows[3]["val_acc"], serde_json::Value::Null);
    }

    #[test]
    fn plots_have_axes_labels_and_legend() {
        let (s, e) = sample();
        let svg = chart_svg(&loss_chart(&s, &e, "loss"), (800, 480)).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        for t in ["step", "cross-entropy loss", "mini-batch loss", "epoch mean"] {
            assert!(svg.contains(&format!(">\n{t}\n</text>")), "loss plot lacks {t:?}");
        }
        let svg = chart_svg(&accuracy_chart(&e, "acc"), (800, 480)).unwrap();
        for t in ["epoch", "accuracy", "train", "test (held out)"] {
            assert!(svg.contains(&format!(">\n{t}\n</text>")), "accuracy plot lacks {t:?}");
        }
        assert!(!svg.contains("validation"), "no validation set, no validation series");
    }

    #[test]
    fn the_charts_hold_the_records() {
        let (s, e) = sample();
        let c = loss_chart(&s, &e, "loss");
        assert_eq!(c.series[0].points.len(), 6);
        assert_eq!(c.series[1].points, vec![(3.0, 1.0), (6.0, 0.5)]);
        assert_eq!(c.y_range, Some((0.0, 2.0 * 1.05)));
        let c = accuracy_chart(&e, "acc");
        let names: Vec<_> = c.series.iter().map(|s| s.label.as_deref().unwrap_or("")).collect();
        assert_eq!(names, ["train", "test (held out)"]);
        assert_eq!(c.x_range, Some((0.5, 2.5)));
    }
}
