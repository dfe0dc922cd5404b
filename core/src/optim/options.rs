//! The optimizer's options: the [`Rule`] with its parameters, [`WeightDecay`], [`DecayScope`],
//! [`Clip`]; their builders, validation and names. Immutable: a step reads them, never writes.

use super::{AdamForm, NesterovForm, adagrad, adam, momentum, nesterov, rmsprop, sgd};
use crate::error::{Error, Result};
use crate::params::ParamKind;

/// An update rule with its options. The learning rate is not here: it is an argument of
/// [`Optimizer::step`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Rule {
    /// `p −= lr·g` ([`sgd`]).
    Sgd,
    /// Heavy-ball momentum, book form ([`momentum`]).
    Momentum {
        /// Velocity decay μ (book 0.9).
        momentum: f32,
    },
    /// Nesterov momentum ([`nesterov`]).
    Nesterov {
        /// Velocity decay μ (book 0.9).
        momentum: f32,
        /// Which ordering.
        form: NesterovForm,
    },
    /// AdaGrad ([`adagrad`]).
    AdaGrad {
        /// Added after the square root (book 1e-7).
        eps: f32,
    },
    /// RMSProp ([`rmsprop`]).
    RmsProp {
        /// Decay of the squared-gradient average (book 0.99).
        decay: f32,
        /// Added after the square root (book 1e-7).
        eps: f32,
        /// Divide by the centred estimate `√(h − ḡ²)` (Graves 2013); two floats of state.
        centered: bool,
        /// PyTorch's momentum μ (0: none): `buf = μ·buf + g/(√h + ε)`, `p −= lr·buf`; one more
        /// float of state.
        momentum: f32,
    },
    /// Adam ([`adam`]).
    Adam {
        /// First-moment decay β₁ (0.9).
        beta1: f32,
        /// Second-moment decay β₂ (0.999).
        beta2: f32,
        /// Added to the denominator (book 1e-7; bias-corrected form customarily 1e-8).
        eps: f32,
        /// Which formula.
        form: AdamForm,
        /// AMSGrad (Reddi et al., 2018; `amsgrad=True` in PyTorch): divide by the running maximum
        /// of `v` instead of `v`; one more float of state.
        amsgrad: bool,
    },
}

/// Weight decay, a config value of every rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WeightDecay {
    /// No decay.
    None,
    /// Coupled L2, as in the book: `λ·W` is added to the gradient before the rule sees it. The
    /// matching loss term `0.5·λ·ΣW²` is [`weight_decay_loss`].
    L2(f32),
    /// Decoupled (AdamW, Loshchilov & Hutter 2019): `W ← W·(1 − lr·λ)` before the rule's step,
    /// independent of the gradient statistics.
    Decoupled(f32),
}

/// Which parameter kinds weight decay touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecayScope {
    /// [`ParamKind::Weight`] only (the book, and the default).
    WeightsOnly,
    /// Every trainable kind: weights, biases, γ and β.
    AllTrainable,
}

impl DecayScope {
    /// Whether a tensor of `kind` is decayed under this scope.
    pub const fn applies_to(self, kind: ParamKind) -> bool {
        match self {
            DecayScope::WeightsOnly => matches!(kind, ParamKind::Weight),
            DecayScope::AllTrainable => kind.trainable(),
        }
    }
}

/// Gradient clipping applied by [`Optimizer::step`] before the rule (and before weight decay).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Clip {
    /// No clipping.
    None,
    /// Scale all trainable gradients together so their global L2 norm is at most this
    /// ([`clip_global_norm`](crate::clip::clip_global_norm)). Only [`Optimizer::step`] can do this.
    GlobalNorm(f32),
    /// Clamp each gradient element to `[−c, c]` ([`clip_value`](crate::clip::clip_value)).
    Value(f32),
}

/// An update rule with its options, weight decay and clipping: a small `Copy` value built with
/// `const fn`s, never changed by a step (the step counter lives in the state buffer, see
/// [`state`](super::state)). Two optimizers are equal when their options are.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Optimizer {
    /// The rule and its options.
    pub rule: Rule,
    /// Weight decay (default none).
    pub weight_decay: WeightDecay,
    /// Which kinds weight decay touches (default weights only).
    pub decay_scope: DecayScope,
    /// Gradient clipping (default none).
    pub clip: Clip,
}

/// Names accepted by [`Optimizer::by_name`], in a stable order (for `--help` texts).
pub const NAMES: &[&str] = &[
    "sgd",
    "momentum",
    "nesterov",
    "nesterov-pre2021",
    "nesterov-sutskever",
    "adagrad",
    "rmsprop",
    "rmsprop-centered",
    "adam",
    "adam-bias-corrected",
    "adamw",
    "rmsprop-momentum",
    "rmsprop-centered-momentum",
    "adam-amsgrad",
    "adam-book-amsgrad",
];

impl Optimizer {
    /// An optimizer for `rule`, without weight decay or clipping.
    pub const fn new(rule: Rule) -> Self {
        Optimizer {
            rule,
            weight_decay: WeightDecay::None,
            decay_scope: DecayScope::WeightsOnly,
            clip: Clip::None,
        }
    }

    /// Plain SGD (book default lr 0.01).
    pub const fn sgd() -> Self {
        Self::new(Rule::Sgd)
    }

    /// Momentum, μ = 0.9 (book default lr 0.01).
    pub const fn momentum() -> Self {
        Self::new(Rule::Momentum { momentum: 0.9 })
    }

    /// Nesterov, μ = 0.9, the book's (JP 2021) ordering (book default lr 0.01).
    pub const fn nesterov() -> Self {
        Self::new(Rule::Nesterov { momentum: 0.9, form: NesterovForm::Book })
    }

    /// AdaGrad, ε = 1e-7 after the square root (book default lr 0.01).
    pub const fn adagrad() -> Self {
        Self::new(Rule::AdaGrad { eps: 1e-7 })
    }

    /// RMSProp, decay 0.99, ε = 1e-7 after the square root (book default lr 0.01).
    pub const fn rmsprop() -> Self {
        Self::new(Rule::RmsProp { decay: 0.99, eps: 1e-7, centered: false, momentum: 0.0 })
    }

    /// The book's Adam: β = (0.9, 0.999), ε = 1e-7, folded bias correction (book default lr 0.001).
    pub const fn adam() -> Self {
        Self::new(Rule::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
            form: AdamForm::BookFolded,
            amsgrad: false,
        })
    }

    /// Adam as in the paper and PyTorch: β = (0.9, 0.999), ε = 1e-8, bias-corrected `m̂`, `v̂`.
    pub const fn adam_bias_corrected() -> Self {
        Self::new(Rule::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            form: AdamForm::BiasCorrected,
            amsgrad: false,
        })
    }

    /// RMSProp with PyTorch's momentum μ (`RMSprop(momentum=μ)`): decay 0.99, ε = 1e-7 after the
    /// square root, as [`Optimizer::rmsprop`].
    pub const fn rmsprop_momentum(mu: f32) -> Self {
        Self::rmsprop().with_momentum(mu)
    }

    /// Adam's AMSGrad variant as PyTorch writes it (`Adam(amsgrad=True)`): the bias-corrected
    /// form dividing by the running maximum of `v`.
    pub const fn adam_amsgrad() -> Self {
        Self::adam_bias_corrected().with_amsgrad(true)
    }

    /// AdamW: [`Optimizer::adam_bias_corrected`] with decoupled weight decay `wd` (PyTorch's
    /// default is 0.01).
    pub const fn adamw(wd: f32) -> Self {
        Self::adam_bias_corrected().with_weight_decay(WeightDecay::Decoupled(wd))
    }

    /// The optimizer a name from [`NAMES`] stands for (ASCII case ignored), with its defaults;
    /// `"adamw"` gets λ = 0.01.
    pub fn by_name(name: &str) -> Option<Self> {
        let is = |s: &str| name.eq_ignore_ascii_case(s);
        Some(if is("sgd") {
            Self::sgd()
        } else if is("momentum") {
            Self::momentum()
        } else if is("nesterov") {
            Self::nesterov()
        } else if is("nesterov-pre2021") {
            Self::nesterov().with_nesterov_form(NesterovForm::BookPre2021)
        } else if is("nesterov-sutskever") {
            Self::nesterov().with_nesterov_form(NesterovForm::Sutskever)
        } else if is("adagrad") {
            Self::adagrad()
        } else if is("rmsprop") {
            Self::rmsprop()
        } else if is("rmsprop-centered") {
            Self::rmsprop().centered(true)
        } else if is("adam") {
            Self::adam()
        } else if is("adam-bias-corrected") {
            Self::adam_bias_corrected()
        } else if is("adamw") {
            Self::adamw(0.01)
        } else if is("rmsprop-momentum") {
            Self::rmsprop_momentum(0.9)
        } else if is("rmsprop-centered-momentum") {
            Self::rmsprop_momentum(0.9).centered(true)
        } else if is("adam-amsgrad") {
            Self::adam_amsgrad()
        } else if is("adam-book-amsgrad") {
            Self::adam().with_amsgrad(true)
        } else {
            return None;
        })
    }

    /// A short name for this rule and form, one of [`NAMES`] (weight decay and clipping aside:
    /// bias-corrected Adam with decoupled decay is `"adamw"`).
    pub const fn name(&self) -> &'static str {
        match self.rule {
            Rule::Sgd => "sgd",
            Rule::Momentum { .. } => "momentum",
            Rule::Nesterov { form: NesterovForm::Book, .. } => "nesterov",
            Rule::Nesterov { form: NesterovForm::BookPre2021, .. } => "nesterov-pre2021",
            Rule::Nesterov { form: NesterovForm::Sutskever, .. } => "nesterov-sutskever",
            Rule::AdaGrad { .. } => "adagrad",
            Rule::RmsProp { centered, momentum, .. } => match (centered, momentum != 0.0) {
                (false, false) => "rmsprop",
                (true, false) => "rmsprop-centered",
                (false, true) => "rmsprop-momentum",
                (true, true) => "rmsprop-centered-momentum",
            },
            Rule::Adam { form: AdamForm::BookFolded, amsgrad: false, .. } => "adam",
            Rule::Adam { form: AdamForm::BookFolded, amsgrad: true, .. } => "adam-book-amsgrad",
            Rule::Adam { form: AdamForm::BiasCorrected, amsgrad: true, .. } => match self.weight_decay {
                WeightDecay::Decoupled(_) => "adamw",
                _ => "adam-amsgrad",
            },
            Rule::Adam { form: AdamForm::BiasCorrected, .. } => match self.weight_decay {
                WeightDecay::Decoupled(_) => "adamw",
                _ => "adam-bias-corrected",
            },
        }
    }

    /// The book's default learning rate for this rule: 0.001 for Adam, 0.01 otherwise.
    pub const fn default_lr(&self) -> f32 {
        match self.rule {
            Rule::Adam { .. } => 0.001,
            _ => 0.01,
        }
    }

    /// Sets the weight decay.
    pub const fn with_weight_decay(mut self, wd: WeightDecay) -> Self {
        self.weight_decay = wd;
        self
    }

    /// Sets which parameter kinds weight decay touches.
    pub const fn with_decay_scope(mut self, scope: DecayScope) -> Self {
        self.decay_scope = scope;
        self
    }

    /// Sets gradient clipping.
    pub const fn with_clip(mut self, clip: Clip) -> Self {
        self.clip = clip;
        self
    }

    /// Sets μ of Momentum, Nesterov or RMSProp (PyTorch's `RMSprop(momentum=μ)`, 0 for none);
    /// no effect on other rules.
    pub const fn with_momentum(mut self, mu: f32) -> Self {
        match self.rule {
            Rule::Momentum { .. } => self.rule = Rule::Momentum { momentum: mu },
            Rule::Nesterov { form, .. } => self.rule = Rule::Nesterov { momentum: mu, form },
            Rule::RmsProp { decay, eps, centered, .. } => {
                self.rule = Rule::RmsProp { decay, eps, centered, momentum: mu }
            }
            _ => {}
        }
        self
    }

    /// Makes Adam AMSGrad (or not); no effect on other rules.
    pub const fn with_amsgrad(mut self, amsgrad: bool) -> Self {
        if let Rule::Adam { beta1, beta2, eps, form, .. } = self.rule {
            self.rule = Rule::Adam { beta1, beta2, eps, form, amsgrad };
        }
        self
    }

    /// Sets the Nesterov ordering; no effect on other rules.
    pub const fn with_nesterov_form(mut self, form: NesterovForm) -> Self {
        if let Rule::Nesterov { momentum, .. } = self.rule {
            self.rule = Rule::Nesterov { momentum, form };
        }
        self
    }

    /// Sets ε of AdaGrad, RMSProp or Adam; no effect on other rules.
    pub const fn with_eps(mut self, eps: f32) -> Self {
        match self.rule {
            Rule::AdaGrad { .. } => self.rule = Rule::AdaGrad { eps },
            Rule::RmsProp { decay, centered, momentum, .. } => {
                self.rule = Rule::RmsProp { decay, eps, centered, momentum }
            }
            Rule::Adam { beta1, beta2, form, amsgrad, .. } => {
                self.rule = Rule::Adam { beta1, beta2, eps, form, amsgrad }
            }
            _ => {}
        }
        self
    }

    /// Sets the RMSProp decay; no effect on other rules.
    pub const fn with_decay(mut self, decay: f32) -> Self {
        if let Rule::RmsProp { eps, centered, momentum, .. } = self.rule {
            self.rule = Rule::RmsProp { decay, eps, centered, momentum };
        }
        self
    }

    /// Makes RMSProp centred (or not); no effect on other rules.
    pub const fn centered(mut self, centered: bool) -> Self {
        if let Rule::RmsProp { decay, eps, momentum, .. } = self.rule {
            self.rule = Rule::RmsProp { decay, eps, centered, momentum };
        }
        self
    }

    /// Sets Adam's β₁ and β₂; no effect on other rules.
    pub const fn with_betas(mut self, beta1: f32, beta2: f32) -> Self {
        if let Rule::Adam { eps, form, amsgrad, .. } = self.rule {
            self.rule = Rule::Adam { beta1, beta2, eps, form, amsgrad };
        }
        self
    }

    /// Sets Adam's formula; no effect on other rules.
    pub const fn with_adam_form(mut self, form: AdamForm) -> Self {
        if let Rule::Adam { beta1, beta2, eps, amsgrad, .. } = self.rule {
            self.rule = Rule::Adam { beta1, beta2, eps, form, amsgrad };
        }
        self
    }

    /// Floats of state per parameter: 0 (SGD), 1 (Momentum, Nesterov, AdaGrad, RMSProp),
    /// 2 (centred RMSProp, RMSProp with momentum, Adam), 3 (centred RMSProp with momentum,
    /// AMSGrad).
    pub const fn floats_per_param(&self) -> usize {
        match self.rule {
            Rule::Sgd => sgd::STATE_PER_PARAM,
            Rule::Momentum { .. } => momentum::STATE_PER_PARAM,
            Rule::Nesterov { .. } => nesterov::STATE_PER_PARAM,
            Rule::AdaGrad { .. } => adagrad::STATE_PER_PARAM,
            Rule::RmsProp { centered, momentum, .. } => {
                rmsprop::state_per_param(centered) + if momentum != 0.0 { 1 } else { 0 }
            }
            Rule::Adam { amsgrad, .. } => adam::STATE_PER_PARAM + if amsgrad { 1 } else { 0 },
        }
    }

    /// Checks every option: rates in `[0, 1)`, ε > 0, λ ≥ 0, clip limits > 0, all finite.
    // a `const` optimizer's checks fold away (a firmware keeps none of them)
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn validate(&self) -> Result<()> {
        let unit = |what, v: f32| {
            if (0.0..1.0).contains(&v) { Ok(()) } else { Err(Error::InvalidArgument { what, value: v }) }
        };
        let pos = |what, v: f32| {
            if v > 0.0 && v.is_finite() { Ok(()) } else { Err(Error::InvalidArgument { what, value: v }) }
        };
        match self.rule {
            Rule::Sgd => {}
            Rule::Momentum { momentum } | Rule::Nesterov { momentum, .. } => unit("momentum", momentum)?,
            Rule::AdaGrad { eps } => pos("eps", eps)?,
            Rule::RmsProp { decay, eps, momentum, .. } => {
                unit("rmsprop decay", decay)?;
                pos("eps", eps)?;
                unit("momentum", momentum)?;
            }
            Rule::Adam { beta1, beta2, eps, .. } => {
                unit("beta1", beta1)?;
                unit("beta2", beta2)?;
                pos("eps", eps)?;
            }
        }
        match self.weight_decay {
            WeightDecay::None => {}
            WeightDecay::L2(l) | WeightDecay::Decoupled(l) => {
                if !(l >= 0.0 && l.is_finite()) {
                    return Err(Error::InvalidArgument { what: "weight decay", value: l });
                }
            }
        }
        match self.clip {
            Clip::None => Ok(()),
            Clip::GlobalNorm(c) => pos("clip norm", c),
            Clip::Value(c) => pos("clip value", c),
        }
    }
}

/// An unknown name given to `Optimizer::from_str`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownOptimizer;

impl core::fmt::Display for UnknownOptimizer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("unknown optimizer; expected one of: ")?;
        for (i, n) in NAMES.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(n)?;
        }
        Ok(())
    }
}

impl core::error::Error for UnknownOptimizer {}

impl core::str::FromStr for Optimizer {
    type Err = UnknownOptimizer;
    /// As [`Optimizer::by_name`].
    fn from_str(s: &str) -> core::result::Result<Self, Self::Err> {
        Optimizer::by_name(s).ok_or(UnknownOptimizer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for &n in NAMES {
            let o: Optimizer = n.parse().unwrap();
            assert_eq!(o.name(), n);
        }
        assert_eq!(Optimizer::by_name("ADAM"), Some(Optimizer::adam()));
        assert!("adamax".parse::<Optimizer>().is_err());
    }

    #[test]
    fn equal_exactly_when_the_options_are() {
        assert_eq!(
            Optimizer::adam(),
            Optimizer::new(Rule::Adam {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-7,
                form: AdamForm::BookFolded,
                amsgrad: false
            })
        );
        assert_ne!(Optimizer::adam(), Optimizer::adam().with_betas(0.9, 0.99));
        assert_ne!(Optimizer::sgd(), Optimizer::sgd().with_clip(Clip::Value(1.0)));
        assert_ne!(Optimizer::adam_bias_corrected(), Optimizer::adamw(0.01));
    }
}
