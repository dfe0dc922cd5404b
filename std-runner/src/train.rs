//! The training loop: data prepared and validated up front, then epochs of seeded mini-batches,
//! evaluation after each epoch, checkpoints, and a progress bar on a terminal.
//!
//! Everything random is derived from `(seed, purpose, index)` ([`crate::data::stream`]): the
//! initial weights, each epoch's data order and each step's dropout masks. A checkpoint therefore
//! only needs the step counter besides the parameters and optimizer state, and a resumed run
//! replays exactly the batches and masks an uninterrupted one would have used.

use crate::budget::{self, Budget};
use crate::checkpoint::{self, Checkpoint, CheckpointMeta};
use crate::config::{ScheduleName, TrainConfig, join};
use crate::data::{self, CsvFormat, Dataset, Splits, purpose, stream};
use crate::memory::OwnedMemory;
use crate::model::{self, ModelSpec};
use crate::report::{EpochRecord, OutDir, StepRecord};
use crate::threads::Pool;
use crate::{Error, interrupt};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use staticgrad::model::Targets;
use staticgrad::schedule::Schedule;
use staticgrad::{ImageShape, Node, Optimizer, ParamEntry, Plan, Trainer};
use std::time::Instant;

/// A run ready to train: validated configuration, data and model spec.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The configuration.
    pub cfg: TrainConfig,
    /// The data.
    pub splits: Splits,
    /// The model.
    pub spec: ModelSpec,
    /// The update rule (with weight decay), at step 0.
    pub opt: Optimizer,
    /// Learning rate in use.
    pub lr: f32,
    /// Initial parameter values (`--init-from`), used instead of drawn ones when not resuming.
    pub init: Option<Vec<f32>>,
}

/// The memory plan of a training run: the core planner's numbers, with the tape also large
/// enough for evaluation in chunks of `batch` rows. A size that does not fit in `usize` is bad
/// input (exit 2) naming `--layers` (if even a batch of 1 overflows) or `--batch`.
pub fn plan(spec: &ModelSpec, batch: usize, opt: &Optimizer) -> Result<Plan, Error> {
    let m = spec.model();
    let mut p = m.try_plan(batch, opt).map_err(|e| {
        let setting = if m.try_plan(1, opt).is_err() {
            format!("--layers {}", join(&spec.widths))
        } else {
            format!("--batch {batch}")
        };
        Error::input(format!("{setting}: {e} (model {}, {})", spec.desc_string(), opt.name()))
    })?;
    // Exact: `try_plan` being Ok bounds every eval-mode count at this batch.
    p.tape_floats = p.tape_floats.max(m.eval_tape_floats(batch));
    p.tape_nodes = p.tape_nodes.max(m.eval_tape_nodes());
    Ok(p)
}

/// Loads the data a configuration names: the training pool and, if the source has one, a test set.
/// No memory budget; see [`load_data_within`].
pub fn load_data(cfg: &TrainConfig) -> Result<Splits, Error> {
    load_data_within(cfg, &mut Budget::unlimited())
}

/// [`load_data`], charging every file's data (from its header, before reading it) and the
/// held-out copies of the splits to `budget`.
pub fn load_data_within(cfg: &TrainConfig, budget: &mut Budget) -> Result<Splits, Error> {
    let (mut pool, test) = if let Some(dir) = &cfg.mnist_dir {
        data::read_mnist_dir(dir, budget)?
    } else if let Some(csv) = &cfg.csv {
        let fmt = CsvFormat { label_col: cfg.csv_label_col, header: cfg.csv_header, scale: cfg.csv_scale };
        let mut train = data::read_csv_within(csv, &fmt, budget)?;
        train.source = csv.display().to_string();
        let test = match &cfg.csv_test {
            Some(t) => {
                let mut d = data::read_csv_within(t, &fmt, budget)?;
                d.source = t.display().to_string();
                if d.features != train.features {
                    return Err(Error::input(format!(
                        "{}: {} features per row, the training file has {}",
                        t.display(),
                        d.features,
                        train.features
                    )));
                }
                Some(d)
            }
            None => None,
        };
        (train, test)
    } else {
        (data::bundled_within(budget)?, None)
    };
    if let Some(n) = cfg.limit {
        pool.truncate(n);
    }
    // A split that leaves nothing to train on is refused by `split` itself, with its message.
    if let Some(rows) = data::split_copy_rows(pool.len(), test.is_some(), cfg.val, cfg.test) {
        let need = Dataset::bytes_for(rows, pool.features, pool.x.value_bytes());
        budget.charge(
            &format!("{}: {rows} held-out examples (--val {}, --test {})", pool.source, cfg.val, cfg.test),
            need,
        )?;
    }
    data::split(pool, test, cfg.val, cfg.test)
}

/// Checks that the model fits the data: input width = features, every label < classes.
pub fn check_fit(spec: &ModelSpec, splits: &Splits) -> Result<(), Error> {
    let features = splits.train.features;
    if spec.widths[0] != features {
        return Err(Error::input(format!(
            "--layers {}: the first width ({}) must equal the data's {features} features per example ({})",
            join(&spec.widths),
            spec.widths[0],
            splits.train.source
        )));
    }
    let classes = spec.classes();
    for d in [&splits.train, &splits.val, &splits.test] {
        d.check_labels(classes)?;
    }
    Ok(())
}

/// The input image that `--augment-shift` moves (`None` when it is 0): only a model with an
/// image input has one, and a shift must leave some of the image in view.
pub fn augment_image(cfg: &TrainConfig, spec: &ModelSpec) -> Result<Option<ImageShape>, Error> {
    let px = cfg.augment_shift;
    if px == 0 {
        return Ok(None);
    }
    let Some(net) = &spec.net else {
        return Err(Error::input(format!(
            "--augment-shift {px}: needs an image model (--layers with conv/pool layers, or --model convnet); --layers {} has no image input",
            join(&spec.widths)
        )));
    };
    let img = net.image;
    if px >= img.height.min(img.width) {
        return Err(Error::input(format!(
            "--augment-shift {px}: must be less than the input image's height and width ({img})"
        )));
    }
    Ok(Some(img))
}

/// Validates the configuration, loads the data and checks the model fits it, within the memory
/// budget of `cfg.max_memory` (or the default); see [`prepare_within`].
pub fn prepare(cfg: &TrainConfig) -> Result<Prepared, Error> {
    prepare_within(cfg, &mut Budget::from_flag(cfg.max_memory))
}

/// Validates the configuration, charges the model (parameters, gradients, optimizer state) to
/// `budget`, loads the data (each file charged from its header before it is read), checks the
/// model fits it, and charges everything training will allocate ([`charge_training`]). Nothing
/// is allocated beyond what was charged, and nothing is written.
pub fn prepare_within(cfg: &TrainConfig, budget: &mut Budget) -> Result<Prepared, Error> {
    cfg.validate()?;
    let spec = ModelSpec::from_config(cfg)?;
    augment_image(cfg, &spec)?;
    let opt = model::optimizer(cfg)?;
    plan(&spec, 1, &opt)?; // every width-only size fits in usize before anything is charged
    charge_model(&spec, &opt, budget)?;
    let splits = load_data_within(cfg, budget)?;
    check_fit(&spec, &splits)?;
    if splits.train.is_empty() {
        return Err(Error::input(format!("{}: no training examples", splits.train.source)));
    }
    let lr = cfg.lr.unwrap_or(opt.default_lr());
    let p = Prepared { cfg: cfg.clone(), splits, spec, opt, lr, init: None };
    charge_training(&p, budget)?;
    Ok(p)
}

/// Bytes a step's records take, at most: the [`StepRecord`] itself, its rows in `metrics.csv`
/// and `metrics.jsonl`, its entry in a checkpoint's JSON and its point in `loss.svg` (each well
/// under 128 bytes; epochs likewise).
pub const RECORD_BYTES: u64 = 512;

/// Charges the model's parameters (frozen ones too), gradients, parameter table and optimizer
/// state, three copies of the parameters and state (the outcome, a checkpoint and its bytes, the
/// weights file), and refuses a model whose sizes overflow.
pub fn charge_model(spec: &ModelSpec, opt: &Optimizer, budget: &mut Budget) -> Result<(), Error> {
    let m = spec.model();
    let pl = m.plan(1, opt);
    let frozen = m.frozen_len();
    let floats = pl.param_floats.checked_add(pl.state_floats).and_then(|f| f.checked_add(frozen));
    let need = budget::sum(&[
        budget::of::<f32>(frozen).filter(|_| frozen != usize::MAX),
        budget::of::<f32>(pl.param_floats),
        budget::of::<f32>(pl.grad_floats),
        budget::of::<ParamEntry>(pl.param_tensors),
        budget::of::<f32>(pl.state_floats),
        floats.and_then(budget::of::<f32>).and_then(|b| b.checked_mul(3)),
    ]);
    // A width that saturated the core's planner (usize::MAX) overflows here too.
    let need = need.filter(|_| pl.param_floats != usize::MAX && pl.state_floats != usize::MAX);
    budget.charge(
        &format!(
            "--layers {}: {} parameters with {} optimizer state",
            join(&spec.widths),
            pl.param_floats,
            opt.name()
        ),
        need,
    )?;
    Ok(())
}

/// Rows of the training batch actually used: `--batch`, or the whole training set if smaller.
pub fn batch_rows(p: &Prepared) -> usize {
    p.cfg.batch.min(p.splits.train.len()).max(1)
}

/// Rows of an evaluation pass: `--batch`, or the largest set if smaller.
pub fn eval_rows(p: &Prepared) -> usize {
    let s = &p.splits;
    p.cfg.batch.min(s.train.len().max(s.val.len()).max(s.test.len())).max(1)
}

/// The steps a run takes in all (`epochs × steps per epoch`), refused when it overflows or
/// exceeds the schedules' step counter (a `u32`).
pub fn total_steps(p: &Prepared) -> Result<u64, Error> {
    let spe = data::steps_per_epoch(p.splits.train.len(), batch_rows(p)) as u64;
    spe.checked_mul(p.cfg.epochs as u64).filter(|&t| t <= u64::from(u32::MAX)).ok_or_else(|| {
        Error::input(format!(
            "--epochs {}: {} epochs of {spe} steps exceed {} steps in total",
            p.cfg.epochs,
            p.cfg.epochs,
            u32::MAX
        ))
    })
}

/// The memory plan of a prepared run: the training step for the rows actually used, the tape also
/// large enough for evaluation passes of [`eval_rows`].
pub fn run_plan(p: &Prepared) -> Result<Plan, Error> {
    let m = p.spec.model();
    let mut pl = plan(&p.spec, batch_rows(p), &p.opt)?;
    // Saturates rather than wraps; `charge_training` refuses a saturated count.
    pl.tape_floats = pl.tape_floats.max(m.eval_tape_floats(eval_rows(p)));
    Ok(pl)
}

/// Charges what training allocates besides the model: the tape for the rows actually used and for
/// evaluation, the batch buffers, an epoch's example order, and the per-step and per-epoch records
/// ([`RECORD_BYTES`] each) up to the last step of the run.
pub fn charge_training(p: &Prepared, budget: &mut Budget) -> Result<(), Error> {
    let (rows, eval) = (batch_rows(p), eval_rows(p));
    let features = p.splits.train.features;
    let pl = run_plan(p)?;
    let need = budget::sum(&[
        budget::of::<f32>(pl.tape_floats).filter(|_| pl.tape_floats != usize::MAX),
        budget::of::<Node>(pl.tape_nodes),
        rows.checked_mul(features).and_then(budget::of::<f32>),
        budget::of::<u32>(rows),
        eval.checked_mul(features).and_then(budget::of::<f32>),
    ]);
    budget.charge(
        &format!(
            "--batch {} ({rows} rows used, {eval} per evaluation) with --layers {}: the tape and batch buffers",
            p.cfg.batch,
            join(&p.spec.widths)
        ),
        need,
    )?;
    let n = p.splits.train.len();
    budget.charge(
        &format!("{}: the order of {n} training examples", p.splits.train.source),
        budget::of::<usize>(n),
    )?;
    let total = total_steps(p)?;
    let steps = p.cfg.max_steps.map_or(total, |m| m.min(total));
    let need = steps.checked_add(p.cfg.epochs as u64).and_then(|r| r.checked_mul(RECORD_BYTES));
    let stop = match p.cfg.max_steps {
        Some(m) if m < total => format!(", stopped at --max-steps {m}"),
        _ => String::new(),
    };
    budget.charge(
        &format!("--epochs {} ({total} steps{stop}): the metrics of every step", p.cfg.epochs),
        need,
    )?;
    Ok(())
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Per-step metrics.
    pub steps: Vec<StepRecord>,
    /// Per-epoch metrics.
    pub epochs: Vec<EpochRecord>,
    /// Final parameter values.
    pub params: Vec<f32>,
    /// Seconds of training (across resumes).
    pub elapsed_s: f64,
    /// True if `max_steps` stopped the run before its last epoch ended.
    pub stopped: bool,
    /// The memory plan.
    pub plan: Plan,
}

impl Outcome {
    /// The last epoch's record, if any epoch finished.
    pub fn last(&self) -> Option<&EpochRecord> {
        self.epochs.last()
    }
}

/// Accuracy of the trainer's model on `data` in evaluation mode, `batch` rows at a time; `None`
/// if empty.
pub fn accuracy(trainer: &mut Trainer<'_, '_>, data: &Dataset, batch: usize) -> Result<Option<f32>, Error> {
    if data.is_empty() {
        return Ok(None);
    }
    let hits = data.correct(trainer, batch).map_err(Error::failed)?;
    Ok(Some(hits as f32 / data.len() as f32))
}

/// The last checkpoint a run can go back to: where it is and the step it holds.
type LastGood = Option<(String, u64)>;

/// The error for a refused step. A non-finite loss or gradient is divergence (exit code 3): the
/// message names the step and the last good checkpoint, which stays on disk.
fn step_error(e: staticgrad::Error, step: u64, last: &LastGood) -> Error {
    match e {
        staticgrad::Error::NonFinite { what, .. } => diverged(&format!("non-finite {what}"), step, last),
        e => Error::failed(format!("step {step}: {e}")),
    }
}

fn diverged(what: &str, step: u64, last: &LastGood) -> Error {
    let last = match last {
        Some((file, at)) => format!("last good checkpoint: {file} (step {at})"),
        None => "no checkpoint was written (--checkpoint-every N keeps one)".into(),
    };
    Error::diverged(format!("training diverged: {what} at step {step} (try a smaller --lr); {last}"))
}

/// Everything a checkpoint holds, borrowed from the loop.
struct Snapshot<'a> {
    cfg: &'a TrainConfig,
    step: u64,
    /// The frozen base's values (`--freeze`; empty without), then the trained ones.
    frozen: &'a [f32],
    params: &'a [f32],
    state: &'a [f32],
    elapsed_s: f64,
    steps: &'a [StepRecord],
    epochs: &'a [EpochRecord],
}

/// Writes `checkpoint.bin` atomically, unless a parameter is not finite (then the previous
/// checkpoint stays the last good one and this is divergence).
fn save(out: &mut OutDir, s: &Snapshot, last: &mut LastGood) -> Result<(), Error> {
    if let Some(i) = s.params.iter().position(|v| !v.is_finite()) {
        return Err(diverged(&format!("non-finite parameter (index {i})"), s.step, last));
    }
    let ck = Checkpoint {
        meta: CheckpointMeta {
            config: s.cfg.clone(),
            step: s.step,
            param_len: s.frozen.len() + s.params.len(),
            state_len: s.state.len(),
            elapsed_s: s.elapsed_s,
            steps: s.steps.to_vec(),
            epochs: s.epochs.to_vec(),
        },
        params: [s.frozen, s.params].concat(),
        state: s.state.to_vec(),
    };
    let path = out.write(checkpoint::FILE, &ck.to_bytes())?;
    *last = Some((path.display().to_string(), s.step));
    Ok(())
}

/// Runs training. With `resume`, continues from that checkpoint; with `out`, writes checkpoints
/// there. `progress` shows a bar on stderr (hidden anyway when stderr is not a terminal). The
/// steps and evaluations run on `pool`'s threads (the same bits for every thread count).
pub fn train(
    p: &Prepared,
    resume: Option<&Checkpoint>,
    mut out: Option<&mut OutDir>,
    progress: bool,
    pool: &Pool,
) -> Result<Outcome, Error> {
    let cfg = &p.cfg;
    let mlp = p.spec.model();
    let train = &p.splits.train;
    let batch = batch_rows(p);
    let spe = data::steps_per_epoch(train.len(), batch) as u64;
    let total = total_steps(p)?;
    let stop_at = cfg.max_steps.map_or(total, |m| m.min(total));
    let opt = p.opt;
    let sched = match cfg.schedule {
        ScheduleName::Constant => Schedule::constant(p.lr),
        ScheduleName::Cosine => Schedule::cosine(p.lr, total.min(u32::MAX as u64) as u32, 0.0),
    };
    // Sized for the rows actually used (a batch larger than the set is the whole set), which
    // `prepare` charged to the memory budget.
    let pl = run_plan(p)?;

    // The values a run starts from, in the weights file's layout: a frozen base's values come
    // first (`--freeze`), read-only, then the trained ones. A checkpoint holds them all, so a
    // run resumes without its --init-from file.
    let start: Option<&[f32]> = match resume {
        Some(ck) => Some(&ck.params),
        None => p.init.as_deref(),
    };
    let frozen_len = mlp.frozen_len();
    let frozen = match start {
        Some(w) if w.len() >= frozen_len => w[..frozen_len].to_vec(),
        _ if frozen_len == 0 => Vec::new(),
        _ => {
            return Err(Error::input(format!(
                "--freeze {}: the frozen layers need {frozen_len} values from --init-from",
                cfg.freeze
            )));
        }
    };

    // Caller-owned storage, sized by the core's planner, allocated once (charged by `prepare`).
    let mut memory = OwnedMemory::new(&pl).with_frozen(frozen);
    let mut trainer =
        Trainer::new(&mlp, &opt, batch, memory.memory()).map_err(Error::failed)?.with_parallel(pool.driver());
    trainer.init(&mut stream(cfg.seed, purpose::INIT, 0)).map_err(Error::failed)?;
    if let (None, Some(w)) = (resume, &p.init) {
        let needed = trainer.params().len();
        if w.len() != frozen_len + needed {
            return Err(Error::input(format!(
                "--init-from: {} parameters, the model needs {}",
                w.len(),
                frozen_len + needed
            )));
        }
        trainer.params_mut().values_mut().copy_from_slice(&w[frozen_len..]);
    }

    let (mut step, mut steps, mut epochs, mut elapsed0) = (0u64, Vec::new(), Vec::new(), 0.0);
    if let Some(ck) = resume {
        let trained = ck.params.get(frozen_len..).unwrap_or_default();
        trainer.load(trained, &ck.state).map_err(|e| Error::input(format!("checkpoint: {e}")))?;
        step = ck.meta.step;
        steps = ck.meta.steps.clone();
        epochs = ck.meta.epochs.clone();
        elapsed0 = ck.meta.elapsed_s;
    }

    let bar = if progress && stop_at > step { ProgressBar::new(stop_at) } else { ProgressBar::hidden() };
    if !bar.is_hidden() {
        bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(8));
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:24}] {pos}/{len}  {msg}  ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_position(step);
        bar.reset_eta();
    }
    let t0 = Instant::now();
    let start_step = step;
    let elapsed = |t0: &Instant| elapsed0 + t0.elapsed().as_secs_f64();
    let (mut xb, mut yb) = (Vec::with_capacity(batch * train.features), Vec::with_capacity(batch));
    // Evaluation passes of at most `eval` rows: the same chunks as `--batch` rows whenever a set
    // has more examples than that, so the same results.
    let eval = eval_rows(p);
    let augment = augment_image(cfg, &p.spec)?;
    let mut order: Option<(u64, Vec<usize>)> = None;
    // Loss sum of the current epoch so far (non-zero only when resuming mid-epoch).
    let mut epoch_loss: f64 = steps.iter().filter(|s| s.epoch == step / spe + 1).map(|s| s.loss as f64).sum();

    let mut last_good: LastGood = resume.map(|ck| ("the checkpoint resumed from".to_string(), ck.meta.step));
    while step < stop_at {
        if interrupt::requested() {
            bar.finish_and_clear();
            let Some(out) = out.as_deref_mut() else {
                return Err(Error::interrupted(format!(
                    "interrupted at step {step}; nothing saved (no output folder)"
                )));
            };
            if last_good.as_ref().is_none_or(|(_, at)| *at != step) {
                let snap = Snapshot {
                    cfg,
                    step,
                    frozen: trainer.params().frozen_values(),
                    params: trainer.params().values(),
                    state: trainer.state(),
                    elapsed_s: elapsed(&t0),
                    steps: &steps,
                    epochs: &epochs,
                };
                save(out, &snap, &mut last_good)?;
            }
            return Err(Error::interrupted(format!(
                "interrupted at step {step}; checkpoint saved in {}, continue with: staticgrad train --resume {}",
                out.path.join(checkpoint::FILE).display(),
                out.path.display()
            )));
        }
        let epoch = step / spe;
        let pos = (step % spe) as usize;
        if order.as_ref().is_none_or(|(e, _)| *e != epoch) {
            order = Some((epoch, data::epoch_order(train.len(), batch, cfg.sampling, cfg.seed, epoch)));
        }
        let idx = order.as_ref().map_or(&[][..], |(_, o)| &o[pos * batch..(pos + 1) * batch]);
        train.gather(idx, &mut xb, &mut yb);
        if let Some(img) = augment {
            data::shift_batch(&mut xb, img, cfg.augment_shift, cfg.seed, step);
        }

        let lr = sched.lr(step.min(u32::MAX as u64) as u32);
        let lv = trainer
            .step(&xb, Targets::Labels(&yb), lr, &mut stream(cfg.seed, purpose::DROPOUT, step))
            .map_err(|e| step_error(e, step + 1, &last_good))?;
        step += 1;
        steps.push(StepRecord { step, epoch: epoch + 1, loss: lv, lr });
        epoch_loss += lv as f64;
        bar.set_prefix(format!("epoch {}/{}", epoch + 1, cfg.epochs));
        let rate = (step - start_step) as f64 / t0.elapsed().as_secs_f64().max(1e-9);
        bar.set_message(format!("loss {lv:.4}  {rate:.0} steps/s"));
        bar.set_position(step);

        if step % spe == 0 {
            let rec = EpochRecord {
                epoch: epoch + 1,
                step,
                train_loss: (epoch_loss / spe as f64) as f32,
                train_acc: accuracy(&mut trainer, train, eval)?.unwrap_or(0.0),
                val_acc: accuracy(&mut trainer, &p.splits.val, eval)?,
                test_acc: accuracy(&mut trainer, &p.splits.test, eval)?,
                elapsed_s: elapsed(&t0),
            };
            epoch_loss = 0.0;
            if progress {
                let line = epoch_line(&rec, cfg.epochs);
                if bar.is_hidden() { println!("{line}") } else { bar.println(line) }
            }
            epochs.push(rec);
        }
        let every = cfg.checkpoint_every;
        let stopping = step == stop_at && stop_at < total;
        if let Some(out) = out.as_deref_mut()
            && ((every > 0 && step % every == 0) || stopping)
        {
            let snap = Snapshot {
                cfg,
                step,
                frozen: trainer.params().frozen_values(),
                params: trainer.params().values(),
                state: trainer.state(),
                elapsed_s: elapsed(&t0),
                steps: &steps,
                epochs: &epochs,
            };
            save(out, &snap, &mut last_good)?;
        }
    }
    bar.finish_and_clear();
    Ok(Outcome {
        steps,
        epochs,
        params: [trainer.params().frozen_values(), trainer.params().values()].concat(),
        elapsed_s: elapsed(&t0),
        stopped: stop_at < total,
        plan: pl,
    })
}

/// `epoch 2/5  loss 0.2113  train 0.9571  test 0.9480  (3.1 s)`.
pub fn epoch_line(r: &EpochRecord, of: usize) -> String {
    let mut s = format!("epoch {}/{of}  loss {:.4}  train {:.4}", r.epoch, r.train_loss, r.train_acc);
    if let Some(v) = r.val_acc {
        s += &format!("  validation {v:.4}");
    }
    if let Some(t) = r.test_acc {
        s += &format!("  test {t:.4}");
    }
    s + &format!("  ({:.1} s)", r.elapsed_s)
}

/// Writes the run's outputs into `out`, all or none: the weights and the report
/// ([`crate::report::run::files`]).
pub fn write_outputs(out: &mut OutDir, p: &Prepared, o: &Outcome) -> Result<(), Error> {
    let desc = p.spec.desc()?;
    let weights = checkpoint::encode_weights(&desc, &o.params);
    let report = crate::report::run::files(p, o, &desc.to_string())?;
    let mut files: Vec<(&str, &[u8])> = vec![(checkpoint::WEIGHTS, &weights)];
    files.extend(report.iter().map(|(name, text)| (*name, text.as_bytes())));
    // All or none: a full disk halfway leaves no report linking files of another run.
    out.write_all(&files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tape_is_sized_for_the_rows_actually_used() {
        // 2 training rows with the default batch of 100: the plan is for 2 rows, not 100.
        let cfg = TrainConfig { limit: Some(3), test: data::SplitSize::Count(1), ..TrainConfig::default() };
        let mut budget = Budget::new(64 << 20, "test");
        let p = prepare_within(&cfg, &mut budget).unwrap();
        assert_eq!((p.splits.train.len(), batch_rows(&p), eval_rows(&p)), (2, 2, 2));
        let m = p.spec.model();
        assert_eq!(run_plan(&p).unwrap().tape_floats, m.tape_floats(2).max(m.eval_tape_floats(2)));
        assert!(run_plan(&p).unwrap().tape_floats < m.tape_floats(100));
        assert!(budget.used() > 0);
        // The training itself runs on those buffers.
        let o = train(&p, None, None, false, &Pool::new(Some(1)).unwrap()).unwrap();
        assert_eq!(o.steps.len(), cfg.epochs);
    }

    #[test]
    fn the_step_total_is_checked() {
        let cfg = TrainConfig { epochs: 1 << 60, ..TrainConfig::default() };
        let e = prepare_within(&cfg, &mut Budget::unlimited()).unwrap_err();
        assert_eq!(e.code(), 2);
        assert!(
            e.message().starts_with("--epochs 1152921504606846976:")
                && e.message().contains("steps in total"),
            "{}",
            e.message()
        );
    }
}
