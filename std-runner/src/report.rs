//! Reports: per-step and per-epoch metrics (CSV and JSON lines), SVG plots, `summary.json` and a
//! `report.md` that ties them together. Every file is written atomically (temporary name, fsync,
//! rename), so a reader never sees half a file.

use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

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

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // Make the rename itself durable (best effort: not every platform can open a folder).
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
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

type PlotResult = Result<(), Box<dyn std::error::Error>>;

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

/// Loss curve: every step's mini-batch loss (thin) and each epoch's mean (markers), as SVG text.
pub fn loss_svg(steps: &[StepRecord], epochs: &[EpochRecord], title: &str) -> Result<String, String> {
    let mut svg = String::new();
    draw_loss(&mut svg, steps, epochs, title).map_err(|e| format!("loss plot: {e}"))?;
    Ok(svg)
}

fn draw_loss(svg: &mut String, steps: &[StepRecord], epochs: &[EpochRecord], title: &str) -> PlotResult {
    let root = SVGBackend::with_string(svg, (800, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let max_step = steps.last().map_or(1, |s| s.step).max(1) as f32;
    let (_, hi) = range_of(steps.iter().map(|s| s.loss).chain(epochs.iter().map(|e| e.train_loss)));
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0f32..max_step, 0f32..hi * 1.05)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc("cross-entropy loss")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .axis_desc_style(("sans-serif", 16))
        .label_style(("sans-serif", 13))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    let step_color = RGBColor(120, 160, 220);
    chart
        .draw_series(LineSeries::new(
            steps.iter().map(|s| (s.step as f32, s.loss)),
            step_color.stroke_width(1),
        ))?
        .label("mini-batch loss")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], step_color.stroke_width(2)));
    let ep_color = RGBColor(200, 60, 40);
    chart
        .draw_series(LineSeries::new(
            epochs.iter().map(|e| (e.step as f32, e.train_loss)),
            ep_color.stroke_width(2),
        ))?
        .label("epoch mean")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], ep_color.stroke_width(2)));
    chart.draw_series(
        epochs.iter().map(|e| Circle::new((e.step as f32, e.train_loss), 4, ep_color.filled())),
    )?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 14))
        .draw()?;
    root.present()?;
    Ok(())
}

/// Accuracy per epoch on train, validation and test, as SVG text.
pub fn accuracy_svg(epochs: &[EpochRecord], title: &str) -> Result<String, String> {
    let mut svg = String::new();
    draw_accuracy(&mut svg, epochs, title).map_err(|e| format!("accuracy plot: {e}"))?;
    Ok(svg)
}

fn draw_accuracy(svg: &mut String, epochs: &[EpochRecord], title: &str) -> PlotResult {
    let root = SVGBackend::with_string(svg, (800, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let last = epochs.last().map_or(1, |e| e.epoch).max(1) as f32;
    let all = epochs.iter().flat_map(|e| [Some(e.train_acc), e.val_acc, e.test_acc]).flatten();
    let (lo, _) = range_of(all);
    let lo = ((lo * 20.0).floor() / 20.0).clamp(0.0, 0.95);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0.5f32..last + 0.5, lo..1.0f32)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("accuracy")
        .x_labels((last as usize).clamp(2, 20))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .axis_desc_style(("sans-serif", 16))
        .label_style(("sans-serif", 13))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    type Series = (&'static str, RGBColor, fn(&EpochRecord) -> Option<f32>);
    let series: [Series; 3] = [
        ("train", RGBColor(40, 90, 200), |e| Some(e.train_acc)),
        ("validation", RGBColor(230, 140, 20), |e| e.val_acc),
        ("test (held out)", RGBColor(30, 150, 60), |e| e.test_acc),
    ];
    for (name, color, get) in series {
        let pts: Vec<(f32, f32)> =
            epochs.iter().filter_map(|e| get(e).map(|a| (e.epoch as f32, a))).collect();
        if pts.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 14))
        .draw()?;
    root.present()?;
    Ok(())
}

/// A folder of outputs (claimed with [`crate::runfolder::RunFolder`]): single files written
/// atomically, and a run's final files written all or none.
#[derive(Debug)]
pub struct OutDir {
    /// The folder.
    pub path: PathBuf,
}

impl OutDir {
    /// Writes into `path`, which exists (the work folder of a claimed run).
    pub fn new(path: &Path) -> OutDir {
        OutDir { path: path.to_path_buf() }
    }

    /// Atomically writes `name` in the folder.
    pub fn write(&mut self, name: &str, bytes: &[u8]) -> Result<PathBuf, String> {
        let p = self.path.join(name);
        write_atomic(&p, bytes).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(p)
    }

    /// Writes every file or none: each to a temporary name (fsync), then all renamed into place.
    /// A failure (a full disk) removes the temporary files and leaves the folder's files as they
    /// were, so a report never links files of another run.
    pub fn write_all(&mut self, files: &[(&str, &[u8])]) -> Result<(), String> {
        let tmp = |name: &str| self.path.join(format!(".{name}.tmp"));
        let mut done: Vec<PathBuf> = Vec::new();
        let mut staged = || -> Result<(), String> {
            for (name, bytes) in files {
                let t = tmp(name);
                done.push(t.clone());
                let res = (|| {
                    let mut f = std::fs::File::create(&t)?;
                    f.write_all(bytes)?;
                    f.sync_all()
                })();
                res.map_err(|e| format!("{}: {e}", self.path.join(name).display()))?;
            }
            Ok(())
        };
        if let Err(e) = staged() {
            for t in &done {
                let _ = std::fs::remove_file(t);
            }
            return Err(e);
        }
        for (name, _) in files {
            let p = self.path.join(name);
            std::fs::rename(tmp(name), &p).map_err(|e| format!("{}: {e}", p.display()))?;
        }
        if let Ok(d) = std::fs::File::open(&self.path) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// A `key | value` table in Markdown.
pub fn md_table(rows: &[(&str, String)]) -> String {
    let mut s = String::from("| | |\n|---|---|\n");
    for (k, v) in rows {
        let _ = writeln!(s, "| {k} | {v} |");
    }
    s
}

#[cfg(test)]
mod tests {
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
        let svg = loss_svg(&s, &e, "loss").unwrap();
        for t in ["step", "cross-entropy loss", "mini-batch loss", "epoch mean"] {
            assert!(svg.contains(t), "loss plot lacks {t:?}");
        }
        let svg = accuracy_svg(&e, "acc").unwrap();
        for t in ["epoch", "accuracy", "train", "test (held out)"] {
            assert!(svg.contains(t), "accuracy plot lacks {t:?}");
        }
        assert!(!svg.contains("validation"), "no validation set, no validation series");
    }

    #[test]
    fn atomic_write_leaves_no_temp_and_write_all_is_all_or_none() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = OutDir::new(dir.path());
        out.write("a.txt", b"hello").unwrap();
        let names = |p: &Path| {
            let mut v: Vec<_> = std::fs::read_dir(p).unwrap().map(|e| e.unwrap().file_name()).collect();
            v.sort();
            v
        };
        assert_eq!(names(&out.path), vec![std::ffi::OsString::from("a.txt")]);
        out.write_all(&[("a.txt", b"new"), ("b.txt", b"b")]).unwrap();
        assert_eq!(std::fs::read(dir.path().join("a.txt")).unwrap(), b"new");
        // A name that cannot be written (its folder does not exist): nothing changes.
        let err = out.write_all(&[("a.txt", b"newer"), ("no/c.txt", b"c")]).unwrap_err();
        assert!(err.contains("c.txt"), "{err}");
        assert_eq!(std::fs::read(dir.path().join("a.txt")).unwrap(), b"new");
        assert_eq!(names(&out.path).len(), 2, "no temporary file left");
    }
}
