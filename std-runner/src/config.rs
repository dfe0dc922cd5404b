//! The configuration of a training run: defaults, a TOML file, then command-line flags, each
//! overriding the one before; and its validation, with one-line errors naming the value.

use crate::data::{Sampling, SplitSize};
use crate::{Error, check};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Learning-rate schedules selectable by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleName {
    /// The same rate at every step.
    Constant,
    /// Cosine annealing from the rate to 0 over all steps of the run.
    Cosine,
}

/// Everything that defines a training run (and can be written in `--config run.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Layer widths, input first, classes last.
    pub layers: Vec<usize>,
    /// A whole model as a layer string (`conv30x5,relu,maxpool2,dense100,relu,dense10`, see
    /// [`crate::net`]) or a preset name (`convnet`); replaces `layers`, `activation`,
    /// `batchnorm` and `dropout` when set.
    pub net: Option<String>,
    /// Hidden activation: relu, sigmoid or tanh.
    pub activation: String,
    /// Weight initialisation: he, he-uniform, xavier, glorot, glorot-uniform, or a number
    /// (the standard deviation of a normal).
    pub init: String,
    /// Batch-norm after each hidden affine layer.
    pub batchnorm: bool,
    /// Dropout ratio after each hidden activation (0 = none).
    pub dropout: f32,
    /// Update rule (sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw, …).
    pub optimizer: String,
    /// Learning rate; `None` takes the optimizer's book default.
    pub lr: Option<f32>,
    /// Learning-rate schedule over the run: constant or cosine (to 0 at the last step).
    pub schedule: ScheduleName,
    /// Weight decay λ (coupled L2; decoupled for adamw).
    pub weight_decay: f32,
    /// Mini-batch size.
    pub batch: usize,
    /// Passes over the training set.
    pub epochs: usize,
    /// Seed of initialisation, data order and dropout.
    pub seed: u64,
    /// How batches are drawn.
    pub sampling: Sampling,
    /// Move each training image by a random offset of up to this many pixels in each direction
    /// (0 = no augmentation); image models only. Written only when set.
    #[serde(skip_serializing_if = "is_zero")]
    pub augment_shift: usize,
    /// Validation split (count or fraction), taken from the end of the training records.
    pub val: SplitSize,
    /// Test split (count or fraction) from the end of the training file, when there is no
    /// separate test file.
    pub test: SplitSize,
    /// Use only the first N records of the training file.
    pub limit: Option<usize>,
    /// A folder with the standard MNIST IDX files (instead of the bundled set).
    pub mnist_dir: Option<PathBuf>,
    /// A CSV training file (instead of the bundled set).
    pub csv: Option<PathBuf>,
    /// A CSV test file.
    pub csv_test: Option<PathBuf>,
    /// CSV column holding the label (0-based).
    pub csv_label_col: usize,
    /// The CSV files start with a header line.
    pub csv_header: bool,
    /// CSV feature values are divided by this.
    pub csv_scale: f32,
    /// Write a checkpoint every N steps (0 = only when stopped by `max_steps`).
    pub checkpoint_every: u64,
    /// Stop after this many steps in total (a checkpoint is written so the run can resume).
    pub max_steps: Option<u64>,
    /// Start from the weights in this file (or run folder holding `model.bin`) instead of drawing
    /// them; the file's model must be the run's. Written to checkpoints and summaries only when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_from: Option<PathBuf>,
    /// Freeze the lowest K weight (dense or conv2d) layers of the `init_from` weights: they keep
    /// their values and only the layers above train (0 = none). Written only when set.
    #[serde(skip_serializing_if = "is_zero")]
    pub freeze: usize,
    /// Memory budget in bytes (TOML: bytes, or a string such as "512M"); `None` takes the
    /// default share of this machine's memory ([`crate::budget`]). A property of the machine,
    /// not of the run: not written to checkpoints or summaries.
    #[serde(skip_serializing, deserialize_with = "de_max_memory")]
    pub max_memory: Option<u64>,
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

/// `max_memory = 536870912` or `max_memory = "512M"`.
fn de_max_memory<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }
    match Size::deserialize(d)? {
        Size::Bytes(0) => {
            Err(serde::de::Error::custom("max_memory: the memory budget must be at least 1 byte"))
        }
        Size::Bytes(b) => Ok(Some(b)),
        Size::Text(t) => crate::budget::parse_size(&t)
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("max_memory {e}"))),
    }
}

impl Default for TrainConfig {
    /// The defaults of `staticgrad train`: 784-100-100-10 ReLU with batch-norm, He init, Adam at
    /// its book rate (0.001) with cosine annealing, batch 100, 8 epochs, on the bundled MNIST
    /// (first 9,000 images to train, last 1,000 held out).
    fn default() -> Self {
        TrainConfig {
            layers: vec![784, 100, 100, 10],
            net: None,
            activation: "relu".into(),
            init: "he".into(),
            batchnorm: true,
            dropout: 0.0,
            optimizer: "adam".into(),
            lr: None,
            schedule: ScheduleName::Cosine,
            weight_decay: 0.0,
            batch: 100,
            epochs: 8,
            seed: 7,
            sampling: Sampling::Shuffle,
            augment_shift: 0,
            val: SplitSize::Count(0),
            test: SplitSize::Fraction(0.1),
            limit: None,
            mnist_dir: None,
            csv: None,
            csv_test: None,
            csv_label_col: 0,
            csv_header: false,
            csv_scale: 255.0,
            checkpoint_every: 0,
            max_steps: None,
            init_from: None,
            freeze: 0,
            max_memory: None,
        }
    }
}

impl TrainConfig {
    /// The run of `staticgrad` with no subcommand (`cargo run --release`): the defaults with
    /// Adam at lr 0.002, which reaches about 95.5 % on the held-out 1,000 images in 720 steps.
    pub fn default_run() -> TrainConfig {
        TrainConfig { lr: Some(0.002), ..TrainConfig::default() }
    }

    /// Reads a TOML file; unknown keys are errors.
    pub fn from_toml_file(path: &Path) -> Result<TrainConfig, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            let cause =
                if e.kind() == std::io::ErrorKind::NotFound { "no such file".into() } else { e.to_string() };
            Error::input(format!("{}: {cause}", path.display()))
        })?;
        toml::from_str(&text).map_err(|e| {
            let msg = e.message().replace('\n', " ");
            let at =
                e.span().map(|s| line_of(&text, s.start)).map(|l| format!("line {l}: ")).unwrap_or_default();
            Error::input(format!("{}: {at}{msg}", path.display()))
        })
    }

    /// Checks every value that does not depend on the data; errors name the setting and value.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |what: &str, v: &dyn std::fmt::Display, why: &str| {
            Err(Error::input(format!("{what} {v}: {why}")))
        };
        if self.layers.len() < 2 || self.layers.len() > staticgrad::weights::MAX_WIDTHS {
            return bad(
                "--layers",
                &join(&self.layers),
                &format!("need 2 to {} widths (input, hidden…, classes)", staticgrad::weights::MAX_WIDTHS),
            );
        }
        if self.layers.iter().any(|&w| w == 0 || w > u32::MAX as usize) {
            return bad("--layers", &join(&self.layers), "every width must be from 1 to 4294967295");
        }
        if let Some(lr) = self.lr {
            check::positive("--lr", lr)?;
        }
        check::non_negative("--weight-decay", self.weight_decay)?;
        check::fraction("--dropout", self.dropout)?;
        check::nonzero(&[("--batch", self.batch), ("--epochs", self.epochs)])?;
        check::positive("--csv-scale", self.csv_scale)?;
        // A TOML file is checked as strictly as the flags (`val = -3` parses as a fraction).
        for (flag, s) in [("--val", self.val), ("--test", self.test)] {
            if let SplitSize::Fraction(f) = s {
                check::fraction(flag, f)?;
            }
        }
        if let Some(m) = self.max_steps {
            // 0 steps would save a checkpoint at step 0 and advise a --resume with nothing to do.
            check::count("--max-steps", m, 1, u64::MAX)?;
        }
        if self.mnist_dir.is_some() && self.csv.is_some() {
            return Err(Error::input("--mnist-dir and --csv: choose one data source"));
        }
        if self.csv_test.is_some() && self.csv.is_none() {
            return Err(Error::input("--csv-test: needs --csv for the training data"));
        }
        if self.freeze > 0 && self.init_from.is_none() {
            return bad(
                "--freeze",
                &self.freeze,
                "needs --init-from (frozen layers keep the values of the weights a run starts from)",
            );
        }
        Ok(())
    }

    /// The data source in words.
    pub fn data_name(&self) -> String {
        match (&self.mnist_dir, &self.csv) {
            (Some(d), _) => format!("MNIST IDX files in {}", d.display()),
            (_, Some(c)) => format!("CSV {}", c.display()),
            _ => "the bundled MNIST subset".into(),
        }
    }
}

fn line_of(text: &str, byte: usize) -> usize {
    text.get(..byte).map_or(1, |t| t.matches('\n').count() + 1)
}

/// `784,100,10` from widths.
pub fn join(w: &[usize]) -> String {
    w.iter().map(|w| w.to_string()).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_overrides_defaults_and_rejects_unknown_keys() {
        let c: TrainConfig =
            toml::from_str("layers = [4, 8, 3]\nlr = 0.5\nval = 0.2\nsampling = \"replace\"").unwrap();
        assert_eq!(c.layers, vec![4, 8, 3]);
        assert_eq!(c.lr, Some(0.5));
        assert_eq!(c.val, SplitSize::Fraction(0.2));
        assert_eq!(c.sampling, Sampling::Replace);
        assert_eq!(c.batch, 100);
        assert_eq!(c.max_memory, None);
        assert!(toml::from_str::<TrainConfig>("learning_rate = 1").is_err());
        let c: TrainConfig = toml::from_str("max_memory = \"512M\"").unwrap();
        assert_eq!(c.max_memory, Some(512 << 20));
        let c: TrainConfig = toml::from_str("max_memory = 4096").unwrap();
        assert_eq!(c.max_memory, Some(4096));
        for bad in ["max_memory = \"lots\"", "max_memory = 0", "max_memory = -1"] {
            assert!(toml::from_str::<TrainConfig>(bad).is_err(), "{bad}");
        }
        // A machine's budget is not part of the run: not written, so a checkpoint reads back.
        let c = TrainConfig { max_memory: Some(1 << 30), ..TrainConfig::default() };
        assert!(!serde_json::to_string(&c).unwrap().contains("max_memory"));
    }

    #[test]
    fn validation_names_the_value() {
        let c = TrainConfig { lr: Some(-0.1), ..TrainConfig::default() };
        assert_eq!(c.validate().unwrap_err().message(), "--lr -0.1: must be a positive number");
        let c: TrainConfig = toml::from_str("val = -3").unwrap();
        assert_eq!(c.validate().unwrap_err().message(), "--val -3: must be in [0, 1)");
        let c = TrainConfig { layers: vec![784], ..TrainConfig::default() };
        assert!(c.validate().unwrap_err().message().starts_with("--layers 784:"));
        assert!(TrainConfig::default().validate().is_ok());
    }
}
