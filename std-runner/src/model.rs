//! From settings (names and numbers on a command line or in a config file) to the core's
//! [`Model`] (an [`MlpSpec`], or a layer list from a layer string, [`crate::net`]) and
//! [`Optimizer`], and from a weights file's stored spec back to the model.

use crate::Error;
use crate::config::{TrainConfig, join};
use crate::net::{self, Net};
use staticgrad::model::{Layer, LayerKind};
use staticgrad::optim::{NAMES, WeightDecay};
use staticgrad::weights::{FLAG_BATCHNORM, ModelDesc};
use staticgrad::{Activation, BatchNormConfig, Dropout, Init, MlpSpec, Model, Optimizer};

/// Batch-norm settings of every model the runner builds (running variance starts at 1, so
/// eval-mode outputs are sensible from the first epoch).
pub const BATCH_NORM: BatchNormConfig = BatchNormConfig::STANDARD;

/// An owned model definition; [`ModelSpec::mlp`] lends it to the core as an [`MlpSpec`].
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// Widths, input first, classes last.
    pub widths: Vec<usize>,
    /// Hidden activation.
    pub activation: Activation,
    /// Batch-norm after each hidden affine.
    pub batchnorm: bool,
    /// Inverted dropout ratio after each hidden activation (0 = none).
    pub dropout: f32,
    /// Weight initialisation.
    pub init: Init,
    /// A layer list from a layer string (a CNN): then it is the model, `widths` are its input
    /// features and outputs, and activation, batch norm and dropout do not apply.
    pub net: Option<Net>,
    /// The lowest weight layers frozen (`--freeze K`, [`ModelSpec::with_freeze`]); `None`
    /// trains every layer.
    pub frozen: Option<Frozen>,
}

/// The frozen base of a fine-tuning run (`--freeze K`): the lowest `weight_layers` dense or
/// convolution layers, and every batch norm above one of them (below the next weight layer),
/// read their values from the weights the run starts from and never change. The core runs them
/// forward-only in evaluation mode (batch norm on its running statistics, no dropout), with no
/// gradient, no optimizer state and no RAM beyond their values (`Layer::frozen`).
#[derive(Debug, Clone, PartialEq)]
pub struct Frozen {
    /// K: dense and convolution layers frozen, counted from the input.
    pub weight_layers: usize,
    /// The model's layer list with those layers marked [`frozen`](Layer::frozen).
    pub layers: Vec<Layer>,
}

/// Parses an activation name (any case: `relu`, `ReLU`, `RELU`, as `--optimizer` takes `ADAM`).
pub fn parse_activation(a: &str) -> Result<Activation, Error> {
    Ok(match a.to_ascii_lowercase().as_str() {
        "relu" => Activation::Relu,
        "sigmoid" => Activation::Sigmoid,
        "tanh" => Activation::Tanh,
        _ => return Err(Error::input(format!("--activation {a}: unknown; one of relu, sigmoid, tanh"))),
    })
}

/// Parses an initialisation name (any case) or a standard deviation.
pub fn parse_init(s: &str) -> Result<Init, Error> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "he" | "he-normal" => Init::HeNormal,
        "he-uniform" => Init::HeUniform,
        "xavier" => Init::XavierBook,
        "glorot" | "glorot-normal" => Init::GlorotNormal,
        "glorot-uniform" => Init::GlorotUniform,
        _ => match s.parse::<f32>() {
            Ok(std) if std.is_finite() && std >= 0.0 => Init::Normal { std },
            _ => {
                return Err(Error::input(format!(
                    "--init {s}: unknown; one of he, he-uniform, xavier, glorot, glorot-uniform, or a std such as 0.01"
                )));
            }
        },
    })
}

/// The optimizer named in `cfg`, with its weight decay: decoupled for `adamw`, coupled L2 otherwise.
pub fn optimizer(cfg: &TrainConfig) -> Result<Optimizer, Error> {
    let name = cfg.optimizer.as_str();
    let opt = Optimizer::by_name(name)
        .ok_or_else(|| Error::input(format!("--optimizer {name}: unknown; one of {}", NAMES.join(", "))))?;
    let wd = cfg.weight_decay;
    let opt = if name.eq_ignore_ascii_case("adamw") {
        opt.with_weight_decay(WeightDecay::Decoupled(wd))
    } else if wd > 0.0 {
        opt.with_weight_decay(WeightDecay::L2(wd))
    } else {
        opt
    };
    opt.validate().map_err(|e| Error::input(format!("--optimizer {name}: {e}")))?;
    Ok(opt)
}

impl ModelSpec {
    /// From a configuration (names parsed, values checked by the core).
    pub fn from_config(cfg: &TrainConfig) -> Result<ModelSpec, Error> {
        let mut s = ModelSpec {
            widths: cfg.layers.clone(),
            activation: parse_activation(&cfg.activation)?,
            batchnorm: cfg.batchnorm,
            dropout: cfg.dropout,
            init: parse_init(&cfg.init)?,
            net: None,
            frozen: None,
        };
        if let Some(text) = &cfg.net {
            s.set_net(net::parse("--layers", net::preset(text).map_or(text.as_str(), |p| p.1))?, "--layers")?;
        } else {
            s.model().validate().map_err(|e| match e {
                // The widths multiply past usize: name the flag that set them.
                staticgrad::Error::Overflow { .. } => {
                    Error::input(format!("--layers {}: {e}", join(&s.widths)))
                }
                e => Error::input(format!("model {}: {e}", s.desc_string())),
            })?;
        }
        if cfg.freeze > 0 {
            s = s.with_freeze(cfg.freeze)?;
        }
        Ok(s)
    }

    /// This model with its lowest `k` weight (dense or convolution) layers frozen, and each
    /// batch norm above a frozen layer (before the next weight layer) with it: a batch norm is
    /// part of its dense layer's block, and the core trains nothing directly above a frozen
    /// layer but a weight layer. Errors name `--freeze k`: `k` past the model's weight layers,
    /// `k` leaving none to train, or a boundary the core refuses.
    pub fn with_freeze(mut self, k: usize) -> Result<ModelSpec, Error> {
        self.frozen = None;
        let full = self.model();
        let weight = |l: &Layer| matches!(l.kind(), LayerKind::Dense { .. } | LayerKind::Conv2d { .. });
        let layers: Vec<Layer> = (0..full.layer_count()).filter_map(|i| full.layer(i)).collect();
        let n = layers.iter().filter(|l| weight(l)).count();
        let desc = self.desc_string();
        if k > n {
            return Err(Error::input(format!(
                "--freeze {k}: the model {desc} has {n} weight layers (dense or conv2d)"
            )));
        }
        if k == n && k > 0 {
            return Err(Error::input(format!(
                "--freeze {k}: would freeze every weight layer of {desc}, leaving none to train (at most {})",
                n - 1
            )));
        }
        let mut seen = 0;
        let marked: Vec<Layer> = layers
            .iter()
            .map(|&l| {
                seen += usize::from(weight(&l));
                let below = seen > 0 && seen <= k;
                let frozen = below && (weight(&l) || matches!(l.kind(), LayerKind::BatchNorm(_)));
                if frozen { l.frozen() } else { l }
            })
            .collect();
        let frozen = Frozen { weight_layers: k, layers: marked };
        let m = match &self.net {
            Some(n) => Model::image(n.image.channels, n.image.height, n.image.width, &frozen.layers),
            None => Model::new(self.widths[0], &frozen.layers),
        };
        m.with_init(full.init)
            .with_loss(full.loss)
            .validate()
            .map_err(|e| Error::input(format!("--freeze {k}: {desc}: {e}")))?;
        if k > 0 {
            self.frozen = Some(frozen);
        }
        Ok(self)
    }

    /// Layers of the frozen base (`Model::frozen_layers`: the frozen layers and those without
    /// parameters between them), by name (`dense100`, `bn`, `relu`); empty without `--freeze`.
    pub fn frozen_names(&self) -> Vec<String> {
        let m = self.model();
        let tokens: Vec<String> = match &self.net {
            // A layer string's tokens name its layers, one each, after the input token.
            Some(n) => n.text.split(',').skip(1).map(str::to_string).collect(),
            None => (0..m.layer_count()).filter_map(|i| m.layer(i)).map(|l| layer_name(&l)).collect(),
        };
        tokens.into_iter().take(m.frozen_layers()).collect()
    }

    /// Makes `net` the model (checked by the core; errors name `flag`).
    fn set_net(&mut self, n: Net, flag: &str) -> Result<(), Error> {
        let m = Model::image(n.image.channels, n.image.height, n.image.width, &n.layers).with_init(self.init);
        m.validate().map_err(|e| Error::input(format!("{flag} {}: {e}", n.text)))?;
        self.widths = vec![m.inputs(), m.outputs()];
        self.net = Some(n);
        Ok(())
    }

    /// From the spec stored in a weights file.
    pub fn from_desc(d: &ModelDesc) -> Result<ModelSpec, Error> {
        if let Some(text) = d.net() {
            let mut s = ModelSpec {
                widths: Vec::new(),
                activation: Activation::Relu,
                batchnorm: false,
                dropout: 0.0,
                init: Init::HeNormal,
                net: None,
                frozen: None,
            };
            s.set_net(net::parse("weights file layer string", text)?, "weights file layer string")?;
            return Ok(s);
        }
        let activation = match d.activation {
            0 => Activation::Relu,
            1 => Activation::Sigmoid,
            2 => Activation::Tanh,
            a => return Err(Error::input(format!("activation code {a} is not supported by this runner"))),
        };
        Ok(ModelSpec {
            widths: d.widths().iter().map(|&w| w as usize).collect(),
            activation,
            batchnorm: d.batchnorm(),
            dropout: d.dropout,
            init: Init::HeNormal,
            net: None,
            frozen: None,
        })
    }

    /// The core's view of this model.
    pub fn mlp(&self) -> MlpSpec<'_> {
        let mut m = MlpSpec::new(&self.widths).with_activation(self.activation).with_init(self.init);
        if self.batchnorm {
            m = m.with_batch_norm(BATCH_NORM);
        }
        if self.dropout > 0.0 {
            m = m.with_dropout(Dropout::inverted(self.dropout));
        }
        m
    }

    /// The core's model of this spec, as it trains: the layer string's list, or the layer list
    /// of [`mlp`](Self::mlp); with [`frozen`](Self::frozen) layers, that list with them marked
    /// (its `param_len` counts the trainable parameters only). The weights file's layout is
    /// [`layout`](Self::layout).
    pub fn model(&self) -> Model<'_> {
        let full = self.layout();
        match (&self.frozen, &self.net) {
            (None, _) => full,
            (Some(f), Some(n)) => Model::image(n.image.channels, n.image.height, n.image.width, &f.layers)
                .with_init(full.init)
                .with_loss(full.loss),
            (Some(f), None) => {
                Model::new(self.widths[0], &f.layers).with_init(full.init).with_loss(full.loss)
            }
        }
    }

    /// The model with nothing frozen: the layout of its weights file (the frozen values first,
    /// then the trained ones) and of `--init-from`.
    pub fn layout(&self) -> Model<'_> {
        match &self.net {
            Some(n) => {
                Model::image(n.image.channels, n.image.height, n.image.width, &n.layers).with_init(self.init)
            }
            None => self.mlp().model(),
        }
    }

    /// The spec as stored in weights files.
    pub fn desc(&self) -> Result<ModelDesc, Error> {
        let w: Vec<u32> = self.widths.iter().map(|&w| w as u32).collect();
        if let Some(n) = &self.net {
            let d = ModelDesc::new(&w, 0, 0, 0.0).map_err(Error::input)?;
            return d.with_net(&n.text).map_err(Error::input);
        }
        let code = match self.activation {
            Activation::Relu => 0,
            Activation::Sigmoid => 1,
            Activation::Tanh => 2,
        };
        let flags = if self.batchnorm { FLAG_BATCHNORM } else { 0 };
        ModelDesc::new(&w, code, flags, self.dropout).map_err(Error::input)
    }

    /// `784-100-10 relu batchnorm`, or the layer string (or the widths alone if the spec
    /// cannot be stored).
    pub fn desc_string(&self) -> String {
        if let Some(n) = &self.net {
            return n.text.clone();
        }
        self.desc().map_or_else(|_| join(&self.widths), |d| d.to_string())
    }

    /// Number of classes (the last width).
    pub fn classes(&self) -> usize {
        self.widths.last().copied().unwrap_or(0)
    }
}

/// A layer of an MLP by its layer-string token (`dense100`, `relu`, `bn`, `dropout0.5`).
fn layer_name(l: &Layer) -> String {
    match l.kind() {
        LayerKind::Dense { units } => format!("dense{units}"),
        LayerKind::Activation(Activation::Relu) => "relu".into(),
        LayerKind::Activation(Activation::Sigmoid) => "sigmoid".into(),
        LayerKind::Activation(Activation::Tanh) => "tanh".into(),
        LayerKind::BatchNorm(_) => "bn".into(),
        LayerKind::Dropout(d) => format!("dropout{}", d.ratio),
        LayerKind::Conv2d { out_channels, config } => {
            format!("conv{out_channels}x{}x{}", config.kernel_h, config.kernel_w)
        }
        LayerKind::MaxPool2d(_) => "maxpool".into(),
        LayerKind::AvgPool2d(_) => "avgpool".into(),
        LayerKind::GlobalAvgPool2d => "gap".into(),
        LayerKind::Flatten => "flatten".into(),
        _ => "layer".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_round_trip_through_the_weights_spec() {
        let cfg = TrainConfig { dropout: 0.15, activation: "tanh".into(), ..TrainConfig::default() };
        let s = ModelSpec::from_config(&cfg).unwrap();
        let d = s.desc().unwrap();
        assert_eq!(d.to_string(), "784-100-100-10 tanh batchnorm dropout 0.15");
        let back = ModelSpec::from_desc(&d).unwrap();
        assert_eq!(back.model().param_len(), s.model().param_len());
        assert_eq!(parse_init("0.01").unwrap(), Init::Normal { std: 0.01 });
        assert!(parse_init("lecun").is_err());
        assert!(parse_activation("gelu").is_err());
        let e = optimizer(&TrainConfig { optimizer: "adamax".into(), ..TrainConfig::default() }).unwrap_err();
        assert!(e.message().starts_with("--optimizer adamax: unknown; one of sgd,"), "{}", e.message());
    }

    #[test]
    fn freeze_marks_the_lowest_weight_layers_and_their_batch_norm() {
        let cfg = TrainConfig { layers: vec![784, 32, 16, 10], dropout: 0.1, ..TrainConfig::default() };
        let full = ModelSpec::from_config(&cfg).unwrap();
        let s = full.clone().with_freeze(2).unwrap();
        let m = s.model();
        let frozen: Vec<bool> = (0..m.layer_count()).map(|i| m.layer(i).unwrap().is_frozen()).collect();
        // dense, bn, relu, dropout, dense, bn, relu, dropout, dense
        assert_eq!(frozen, [true, true, false, false, true, true, false, false, false]);
        assert_eq!(
            s.frozen_names(),
            ["dense32", "bn", "relu", "dropout0.1", "dense16", "bn", "relu", "dropout0.1"]
        );
        assert_eq!(m.frozen_len() + m.param_len(), full.model().param_len());
        assert_eq!(m.param_len(), 16 * 10 + 10);
        assert_eq!(s.layout(), full.model());
        assert_eq!(full.clone().with_freeze(0).unwrap(), full);
        let e = full.clone().with_freeze(3).unwrap_err();
        assert!(e.message().starts_with("--freeze 3: would freeze every weight layer"), "{}", e.message());
        let cfg = TrainConfig { net: Some("conv4x5,relu,maxpool2,dense8,bn,dense10".into()), ..cfg };
        let s = ModelSpec::from_config(&cfg).unwrap().with_freeze(2).unwrap();
        assert_eq!(s.frozen_names(), ["conv4x5", "relu", "maxpool2", "dense8", "bn"]);
        assert_eq!(s.model().param_len(), 8 * 10 + 10);
    }

    #[test]
    fn a_layer_string_round_trips_through_the_weights_spec() {
        let cfg = TrainConfig { net: Some("convnet".into()), init: "0.01".into(), ..TrainConfig::default() };
        let s = ModelSpec::from_config(&cfg).unwrap();
        assert_eq!((s.widths.as_slice(), s.classes()), (&[784, 10][..], 10));
        assert_eq!(s.model().param_len(), 30 * 25 + 30 + 4320 * 100 + 100 + 100 * 10 + 10);
        let d = s.desc().unwrap();
        assert_eq!((d.version(), d.to_string()), (2, net::CONVNET.to_string()));
        let back = ModelSpec::from_desc(&d).unwrap();
        assert_eq!(back.model().param_len(), s.model().param_len());
        assert_eq!(back.net.as_ref().map(|n| &n.layers), s.net.as_ref().map(|n| &n.layers));
        let cfg =
            TrainConfig { net: Some("conv8x3,maxpool2,dense10,conv2x2".into()), ..TrainConfig::default() };
        let e = ModelSpec::from_config(&cfg).unwrap_err();
        assert!(
            e.message().starts_with("--layers in1x28x28,conv8x3,maxpool2,dense10,conv2x2: "),
            "{}",
            e.message()
        );
    }
}
