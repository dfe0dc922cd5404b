//! The report of a training run (`staticgrad train`): `metrics.csv`, `metrics.jsonl`, `loss.svg`,
//! `accuracy.svg`, `summary.json` and `report.md`, built from the prepared run and its outcome.
//! `train::write_outputs` writes them, with the weights, all or none.

use super::chart::chart_svg;
use super::markdown::{key_value, pct, row, table_head_right};
use super::metrics::{accuracy_chart, loss_chart, metrics_csv, metrics_jsonl};
use super::plan::{plan_json, plan_table};
use crate::Error;
use crate::config::{ScheduleName, TrainConfig, join};
use crate::train::{Outcome, Prepared};
use serde::Serialize;

/// Size in pixels of `loss.svg` and `accuracy.svg`.
pub const FIGURE_SIZE: (u32, u32) = (800, 480);

/// The report files of a run, `(name, text)` in the order they are written. `model` names the
/// model in titles and `summary.json` (the weights file's description).
pub fn files(p: &Prepared, o: &Outcome, model: &str) -> Result<Vec<(&'static str, String)>, Error> {
    let sched = match p.cfg.schedule {
        ScheduleName::Constant => "",
        ScheduleName::Cosine => " cosine",
    };
    let title = format!("{model}, {} lr {}{sched}", p.cfg.optimizer, p.lr);
    let figure = |name: &str, chart| {
        chart_svg(&chart, FIGURE_SIZE).map_err(|e| Error::failed(format!("{name} plot: {e}")))
    };
    let loss = figure("loss", loss_chart(&o.steps, &o.epochs, &format!("Training loss — {title}")))?;
    let acc = figure("accuracy", accuracy_chart(&o.epochs, &format!("Accuracy — {title}")))?;
    Ok(vec![
        ("metrics.csv", metrics_csv(&o.steps, &o.epochs)),
        ("metrics.jsonl", metrics_jsonl(&o.steps, &o.epochs)),
        ("loss.svg", loss),
        ("accuracy.svg", acc),
        ("summary.json", summary_json(p, o, model)?),
        ("report.md", report_md(p, o)),
    ])
}

/// `summary.json`: the outcome, the memory plan and the configuration, machine-readable.
///
/// Serialized from typed fields, not through a `serde_json::Value` (which holds every number as
/// an `f64`): an `f32` is written as its shortest decimal (`0.002`, not `0.0020000000949949026`)
/// and reads back to the same bits. The configuration's `lr` is the rate the run used (the
/// optimizer's default when none was given), never `null`.
pub fn summary_json(p: &Prepared, o: &Outcome, model: &str) -> Result<String, Error> {
    #[derive(Serialize)]
    struct Examples {
        train: usize,
        validation: usize,
        test: usize,
    }
    #[derive(Serialize)]
    struct Final {
        train_loss: f32,
        train_acc: f32,
        val_acc: Option<f32>,
        test_acc: Option<f32>,
    }
    #[derive(Serialize)]
    struct Summary<'a> {
        model: &'a str,
        data: String,
        examples: Examples,
        steps: usize,
        epochs_completed: usize,
        stopped_early: bool,
        #[serde(rename = "final")]
        last: Option<Final>,
        best_test_acc: Option<f32>,
        train_seconds: f64,
        memory_plan: serde_json::Value,
        #[serde(skip_serializing_if = "Option::is_none")]
        frozen: Option<FrozenBase>,
        config: TrainConfig,
        files: [&'a str; 6],
    }
    /// The layers `--freeze` kept as loaded.
    #[derive(Serialize)]
    struct FrozenBase {
        weight_layers: usize,
        layers: Vec<String>,
        values: usize,
    }
    let s = &p.splits;
    let summary = Summary {
        model,
        data: p.cfg.data_name(),
        examples: Examples { train: s.train.len(), validation: s.val.len(), test: s.test.len() },
        steps: o.steps.len(),
        epochs_completed: o.epochs.len(),
        stopped_early: o.stopped,
        last: o.last().map(|e| Final {
            train_loss: e.train_loss,
            train_acc: e.train_acc,
            val_acc: e.val_acc,
            test_acc: e.test_acc,
        }),
        best_test_acc: o.epochs.iter().filter_map(|e| e.test_acc).reduce(f32::max),
        train_seconds: o.elapsed_s,
        memory_plan: plan_json(&o.plan),
        frozen: p.spec.frozen.as_ref().map(|f| FrozenBase {
            weight_layers: f.weight_layers,
            layers: p.spec.frozen_names(),
            values: p.spec.model().frozen_len(),
        }),
        config: TrainConfig { lr: Some(p.lr), ..p.cfg.clone() },
        files: ["model.bin", "metrics.csv", "metrics.jsonl", "loss.svg", "accuracy.svg", "report.md"],
    };
    Ok(serde_json::to_string_pretty(&summary)? + "\n")
}

/// `report.md`: the result, the figures, a row per epoch, the configuration and the memory plan.
pub fn report_md(p: &Prepared, o: &Outcome) -> String {
    let desc = p.spec.desc_string();
    let last = o.last();
    let s = &p.splits;
    let mut md = format!("# Training report: {desc}\n\n");
    md += &format!(
        "{} on {}: {} steps in {:.1} s{}.\n\n",
        p.cfg.optimizer,
        p.cfg.data_name(),
        o.steps.len(),
        o.elapsed_s,
        if o.stopped { " (stopped early by --max-steps; resume with --resume)" } else { "" }
    );
    md += "## Result\n\n";
    md += &key_value(&[
        ("train accuracy", pct(last.map(|e| e.train_acc))),
        ("validation accuracy", pct(last.and_then(|e| e.val_acc))),
        ("test (held-out) accuracy", pct(last.and_then(|e| e.test_acc))),
        ("final epoch mean loss", last.map_or("—".into(), |e| format!("{:.4}", e.train_loss))),
        (
            "examples train / validation / test",
            format!("{} / {} / {}", s.train.len(), s.val.len(), s.test.len()),
        ),
    ]);
    md += "\n![loss](loss.svg)\n\n![accuracy](accuracy.svg)\n\n## Per epoch\n\n";
    md += &table_head_right(&["epoch", "step", "mean loss", "train", "validation", "test", "seconds"]);
    for e in &o.epochs {
        md += &row(&[
            e.epoch.to_string(),
            e.step.to_string(),
            format!("{:.4}", e.train_loss),
            pct(Some(e.train_acc)),
            pct(e.val_acc),
            pct(e.test_acc),
            format!("{:.1}", e.elapsed_s),
        ]);
    }
    let c = &p.cfg;
    md += "\n## Configuration\n\n";
    let mut rows = vec![
        ("layers", c.net.clone().unwrap_or_else(|| join(&c.layers))),
        ("activation", c.activation.clone()),
        ("init", c.init.clone()),
        ("batch-norm", c.batchnorm.to_string()),
        ("dropout", c.dropout.to_string()),
        ("optimizer", c.optimizer.clone()),
        ("learning rate", p.lr.to_string()),
        ("schedule", format!("{:?}", c.schedule).to_lowercase()),
        ("weight decay", c.weight_decay.to_string()),
        ("batch", c.batch.to_string()),
        ("epochs", c.epochs.to_string()),
        ("sampling", format!("{:?}", c.sampling).to_lowercase()),
        (
            "augment shift",
            if c.augment_shift == 0 { "none".into() } else { format!("{} px", c.augment_shift) },
        ),
        ("seed", c.seed.to_string()),
    ];
    if let Some(src) = &c.init_from {
        rows.push(("initial weights", crate::checkpoint::weights_path(src).display().to_string()));
    }
    if let Some(f) = &p.spec.frozen {
        rows.push((
            "frozen (--freeze)",
            format!(
                "the lowest {} weight layer(s): {} — {} values kept as loaded, run in evaluation mode",
                f.weight_layers,
                p.spec.frozen_names().join(", "),
                p.spec.model().frozen_len()
            ),
        ));
    }
    md += &key_value(&rows);
    md +=
        &format!("\n## Memory plan (what a firmware puts in `static`s)\n\n```\n{}```\n", plan_table(&o.plan));
    md += "\n## Files\n\n";
    md += "- `model.bin`: the weights in the core's format (`staticgrad::weights::parse`)\n";
    md += "- `metrics.csv`, `metrics.jsonl`: one row per step and per epoch\n";
    md += "- `summary.json`: the numbers above, machine-readable\n";
    md += "- `loss.svg`, `accuracy.svg`: the plots\n";
    md
}
