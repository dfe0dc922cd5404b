//! Update rules over the flat parameter buffers, with their state in caller storage.
//!
//! One [`Optimizer`] value (small, `Copy`) holds a [`Rule`] with its options, the
//! [`WeightDecay`], optional [`Clip`]ping and the step counter. Its state is a `&mut [f32]` the
//! caller owns, exactly [`Optimizer::state_len`] floats long (a `const fn`, so a firmware can size a
//! `static` at compile time) and zero at the start. The learning rate is an argument of
//! [`Optimizer::step`], so a [schedule](crate::schedule) never reaches into the optimizer.
//!
//! ```
//! use staticgrad::optim::Optimizer;
//! use staticgrad::{ParamKind, ParamStorage, Shape};
//!
//! const OPT: Optimizer = Optimizer::adam();
//! const N: usize = 2;
//! const _: () = assert!(OPT.state_len(N) == 4); // m and v: checked at compile time
//! let mut ps = ParamStorage::<N, 1>::new();
//! let mut params = ps.params();
//! let p = params.alloc(Shape::row(2), ParamKind::Weight)?;
//! params.value_mut(p)?.copy_from_slice(&[-7.0, 2.0]);
//! let mut state = [0.0f32; OPT.state_len(N)];
//! let mut opt = OPT;
//! for _ in 0..100 {
//!     // f(x, y) = x²/20 + y², gradient (x/10, 2y)
//!     let [x, y] = [params.value(p)?[0], params.value(p)?[1]];
//!     params.grad_mut(p)?.copy_from_slice(&[x / 10.0, 2.0 * y]);
//!     opt.step(&mut params, &mut state, 0.3)?;
//! }
//! assert!(params.value(p)?.iter().all(|v| v.abs() < 0.5));
//! # Ok::<(), staticgrad::Error>(())
//! ```
//!
//! # State layout
//! A rule keeps `k` = [`Optimizer::floats_per_param`] floats per parameter. The state of the tensor
//! whose values start at flat offset `entry.offset` is the slice
//! `state[k * entry.offset .. k * (entry.offset + len)]` ([`Optimizer::state_range`]); inside it, each of the `k` quantities is a
//! run of `len` floats (Adam: `m` then `v`; centred RMSProp: `h` then `ḡ`). Untrainable tensors
//! (batch-norm running statistics) own a slice too, which stays untouched: offsets stay a
//! multiplication.
//!
//! # Fused updates
//! [`Optimizer::step`] is exactly: validate, check every trainable gradient is finite, clip by
//! global norm if asked, [`Optimizer::begin_step`], then the body of [`Optimizer::update_tensor`]
//! on each trainable tensor in table order (without re-checking the gradients). A training loop that wants to update each tensor as soon as
//! its gradient is complete calls `begin_step` once and then `update_tensor` per tensor, and gets
//! the same bits (global-norm clipping needs every gradient first, so it is only done by `step`).
//!
//! ```
//! use staticgrad::optim::Optimizer;
//! use staticgrad::{ParamKind, ParamStorage, Shape};
//! let mut ps = ParamStorage::<6, 2>::new();
//! let mut params = ps.params();
//! params.alloc(Shape::new(2, 2), ParamKind::Weight)?;
//! params.alloc(Shape::row(2), ParamKind::Bias)?;
//! params.grads_mut().copy_from_slice(&[1.0, -1.0, 0.5, 0.0, 2.0, 1.0]);
//! let mut opt = Optimizer::momentum();
//! let mut state = [0.0f32; 6];
//! opt.begin_step();
//! let (values, grads, table) = params.split_mut();
//! for &e in table.iter().rev() {
//!     // e.g. in backward order, as each tensor's gradient becomes final
//!     let (r, s) = (e.range(), opt.state_range(&e));
//!     opt.update_tensor(e, &mut values[r.clone()], &mut grads[r], &mut state[s], 0.1)?;
//! }
//! assert_eq!(params.values()[0], -0.1);
//! # Ok::<(), staticgrad::Error>(())
//! ```
//!
//! # The arithmetic
//! Each rule's per-element formula is a generic function over [`Float`] in its own file
//! ([`sgd`], [`momentum`], [`nesterov`], [`adagrad`], [`rmsprop`], [`adam`]), written in the book's
//! operation order. The optimizer runs them in `f32`; run in `f64` they reproduce the book's
//! reference paths bit for bit (see the `optimizer_paths` test).

pub mod adagrad;
pub mod adam;
pub mod momentum;
pub mod nesterov;
pub mod rmsprop;
pub mod sgd;

pub use adam::AdamForm;
pub use nesterov::NesterovForm;

use crate::clip;
use crate::error::{Error, Region, Result};
use crate::params::{ParamEntry, ParamKind, Params};
use crate::shape::Shape;
use core::ops::{Add, AddAssign, Div, Mul, MulAssign, Sub, SubAssign};

/// The floating-point operations the update formulas need, so the same code runs in `f32` (the
/// optimizer) and `f64` (checks against the book's float64 reference). Transcendentals go through
/// `libm`, so results do not depend on the platform.
pub trait Float:
    Copy
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// Correctly rounded square root.
    fn sqrt(self) -> Self;
    /// `self` raised to `e` (C `pow`, as Python's `**` on floats).
    fn powf(self, e: Self) -> Self;
    /// The step counter as a float (exact up to 2²⁴ in `f32`).
    fn from_u32(t: u32) -> Self;
}

impl Float for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    #[inline(always)]
    fn sqrt(self) -> Self {
        crate::kernels::sqrt(self) // libm's bits; the FPU's instruction where there is one
    }
    #[inline]
    fn powf(self, e: Self) -> Self {
        libm::powf(self, e)
    }
    #[inline]
    fn from_u32(t: u32) -> Self {
        t as f32
    }
}

impl Float for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    #[inline(always)]
    fn sqrt(self) -> Self {
        libm::sqrt(self)
    }
    #[inline]
    fn powf(self, e: Self) -> Self {
        libm::pow(self, e)
    }
    #[inline]
    fn from_u32(t: u32) -> Self {
        t as f64
    }
}

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
    /// ([`clip::clip_global_norm`]). Only [`Optimizer::step`] can do this.
    GlobalNorm(f32),
    /// Clamp each gradient element to `[−c, c]` ([`clip::clip_value`]).
    Value(f32),
}

/// An update rule, its weight decay and clipping, and the step counter: a small `Copy` value
/// built with `const fn`s. See the [module documentation](self) for state layout and fused updates.
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
    t: u32,
    pows: Powers,
}

/// β₁ᵗ and β₂ᵗ with the `t` and betas they belong to: Adam's bias correction, computed once per
/// step by [`Optimizer::begin_step`] (two `powf`) rather than for every tensor, or for every row
/// of the fused update. Used only while `t` and the betas still match; same bits either way.
#[derive(Clone, Copy, Debug)]
struct Powers {
    t: u32,
    beta1: f32,
    beta2: f32,
    b1t: f32,
    b2t: f32,
}

impl Powers {
    const NONE: Powers = Powers { t: 0, beta1: 0.0, beta2: 0.0, b1t: 1.0, b2t: 1.0 };
}

/// A cache, not part of an optimizer's identity: optimizers equal in rule, options and `t` are
/// equal whether or not their powers were computed yet.
impl PartialEq for Powers {
    fn eq(&self, _: &Self) -> bool {
        true
    }
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
];

impl Optimizer {
    /// An optimizer for `rule`, without weight decay or clipping, at step 0.
    pub const fn new(rule: Rule) -> Self {
        Optimizer {
            rule,
            weight_decay: WeightDecay::None,
            decay_scope: DecayScope::WeightsOnly,
            clip: Clip::None,
            t: 0,
            pows: Powers::NONE,
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
        Self::new(Rule::RmsProp { decay: 0.99, eps: 1e-7, centered: false })
    }

    /// The book's Adam: β = (0.9, 0.999), ε = 1e-7, folded bias correction (book default lr 0.001).
    pub const fn adam() -> Self {
        Self::new(Rule::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-7, form: AdamForm::BookFolded })
    }

    /// Adam as in the paper and PyTorch: β = (0.9, 0.999), ε = 1e-8, bias-corrected `m̂`, `v̂`.
    pub const fn adam_bias_corrected() -> Self {
        Self::new(Rule::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8, form: AdamForm::BiasCorrected })
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
            Rule::RmsProp { centered: false, .. } => "rmsprop",
            Rule::RmsProp { centered: true, .. } => "rmsprop-centered",
            Rule::Adam { form: AdamForm::BookFolded, .. } => "adam",
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

    /// Sets μ of Momentum or Nesterov; no effect on other rules.
    pub const fn with_momentum(mut self, mu: f32) -> Self {
        match self.rule {
            Rule::Momentum { .. } => self.rule = Rule::Momentum { momentum: mu },
            Rule::Nesterov { form, .. } => self.rule = Rule::Nesterov { momentum: mu, form },
            _ => {}
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
            Rule::RmsProp { decay, centered, .. } => self.rule = Rule::RmsProp { decay, eps, centered },
            Rule::Adam { beta1, beta2, form, .. } => self.rule = Rule::Adam { beta1, beta2, eps, form },
            _ => {}
        }
        self
    }

    /// Sets the RMSProp decay; no effect on other rules.
    pub const fn with_decay(mut self, decay: f32) -> Self {
        if let Rule::RmsProp { eps, centered, .. } = self.rule {
            self.rule = Rule::RmsProp { decay, eps, centered };
        }
        self
    }

    /// Makes RMSProp centred (or not); no effect on other rules.
    pub const fn centered(mut self, centered: bool) -> Self {
        if let Rule::RmsProp { decay, eps, .. } = self.rule {
            self.rule = Rule::RmsProp { decay, eps, centered };
        }
        self
    }

    /// Sets Adam's β₁ and β₂; no effect on other rules.
    pub const fn with_betas(mut self, beta1: f32, beta2: f32) -> Self {
        if let Rule::Adam { eps, form, .. } = self.rule {
            self.rule = Rule::Adam { beta1, beta2, eps, form };
        }
        self
    }

    /// Sets Adam's formula; no effect on other rules.
    pub const fn with_adam_form(mut self, form: AdamForm) -> Self {
        if let Rule::Adam { beta1, beta2, eps, .. } = self.rule {
            self.rule = Rule::Adam { beta1, beta2, eps, form };
        }
        self
    }

    /// Floats of state per parameter: 0 (SGD), 1 (Momentum, Nesterov, AdaGrad, RMSProp),
    /// 2 (centred RMSProp, Adam).
    pub const fn floats_per_param(&self) -> usize {
        match self.rule {
            Rule::Sgd => sgd::STATE_PER_PARAM,
            Rule::Momentum { .. } => momentum::STATE_PER_PARAM,
            Rule::Nesterov { .. } => nesterov::STATE_PER_PARAM,
            Rule::AdaGrad { .. } => adagrad::STATE_PER_PARAM,
            Rule::RmsProp { centered, .. } => rmsprop::state_per_param(centered),
            Rule::Adam { .. } => adam::STATE_PER_PARAM,
        }
    }

    /// Floats of caller state needed for `param_len` parameter floats ([`Params::len`]);
    /// saturates, so an absurd size never fits instead of wrapping.
    pub const fn state_len(&self, param_len: usize) -> usize {
        self.floats_per_param().saturating_mul(param_len)
    }

    /// Where the state of tensor `entry` lives in the whole state buffer:
    /// `k * entry.offset .. k * (entry.offset + len)` with `k` = [`Optimizer::floats_per_param`]
    /// (saturating). This is the `state` slice to hand to [`Optimizer::update_tensor`].
    pub const fn state_range(&self, entry: &ParamEntry) -> core::ops::Range<usize> {
        let k = self.floats_per_param();
        let end = entry.offset.saturating_add(entry.shape.len());
        k.saturating_mul(entry.offset)..k.saturating_mul(end)
    }

    /// Number of steps begun so far (Adam's `t`).
    pub const fn steps(&self) -> u32 {
        self.t
    }

    /// The same optimizer with its step counter set to `t`: what resuming from a checkpoint that
    /// saved [`steps`](Self::steps) and the state buffer needs (Adam's bias correction depends on `t`).
    pub const fn with_steps(mut self, t: u32) -> Self {
        self.t = t;
        self
    }

    /// Back to step 0 and zero state: ready to train a fresh model.
    pub fn reset(&mut self, state: &mut [f32]) {
        self.t = 0;
        state.fill(0.0);
    }

    /// Checks every option: rates in `[0, 1)`, ε > 0, λ ≥ 0, clip limits > 0, all finite.
    #[inline(always)] // a `const` optimizer's checks fold away (a firmware keeps none of them)
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
            Rule::RmsProp { decay, eps, .. } => {
                unit("rmsprop decay", decay)?;
                pos("eps", eps)?;
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

    fn check(&self, lr: f32) -> Result<()> {
        if !(lr >= 0.0 && lr.is_finite()) {
            return Err(Error::InvalidArgument { what: "learning rate", value: lr });
        }
        self.validate()
    }

    /// One optimizer step over every trainable tensor of `params`, with learning rate `lr`.
    ///
    /// Nothing is written unless every check passes: `lr` finite and ≥ 0 and the options valid
    /// (`InvalidArgument`), `state` at least [`Optimizer::state_len`]`(params.len())` long
    /// (`Capacity` of `OptimizerState`), every trainable gradient finite (`NonFinite` with
    /// `what: "gradient"` and the flat index). Then clipping, weight decay and the rule are
    /// applied; the gradient buffer is left holding the clipped gradient.
    pub fn step(&mut self, params: &mut Params, state: &mut [f32], lr: f32) -> Result<()> {
        self.check(lr)?; // learning rate first, then the options
        self.step_valid(params, state, lr)
    }

    /// [`step`](Self::step) for options already [validated](Self::validate) (a
    /// [`Trainer`](crate::train::Trainer) does it once when it is made): every other check stays.
    /// Inlined, so that with a `const` optimizer the clipping, weight decay and rules it does not
    /// use (and Adam's `powf`) are left out of a firmware.
    #[inline(always)]
    pub(crate) fn step_valid(&mut self, params: &mut Params, state: &mut [f32], lr: f32) -> Result<()> {
        if !(lr >= 0.0 && lr.is_finite()) {
            return Err(Error::InvalidArgument { what: "learning rate", value: lr });
        }
        let needed = self.state_len(params.len());
        if state.len() < needed {
            return Err(Error::Capacity { region: Region::OptimizerState, needed, available: state.len() });
        }
        clip::check_finite(params)?;
        if let Clip::GlobalNorm(max) = self.clip {
            clip::clip_global_norm(params, max)?;
        }
        self.begin_step();
        let (values, grads, table) = params.split_mut();
        for &e in table.iter().filter(|e| e.kind.trainable()) {
            let r = e.range();
            let (Some(v), Some(g)) = (values.get_mut(r.clone()), grads.get_mut(r.clone())) else {
                return Err(Error::Capacity {
                    region: Region::ParamFloats,
                    needed: r.end,
                    available: values.len(),
                });
            };
            let s = state.get_mut(self.state_range(&e)).unwrap_or(&mut []);
            self.update(e, v, g, s, lr, true)?;
        }
        Ok(())
    }

    /// Takes over what a step changes (the step counter and Adam's cached powers) from `stepped`,
    /// a copy of this optimizer that took the step: the options are never written back, so with
    /// a `const` optimizer the compiler keeps seeing them as constants across a training loop.
    #[inline(always)]
    pub(crate) fn take_progress(&mut self, stepped: &Optimizer) {
        self.t = stepped.t;
        self.pows = stepped.pows;
    }

    /// Starts a step: advances the step counter `t` (saturating). Call once per step before
    /// [`Optimizer::update_tensor`]; [`Optimizer::step`] does it for you.
    #[inline(always)] // Adam's `powf` folds away for a `const` optimizer of another rule
    pub fn begin_step(&mut self) {
        self.t = self.t.saturating_add(1);
        if let Rule::Adam { beta1, beta2, .. } = self.rule {
            let (b1t, b2t) = adam::powers(beta1, beta2, self.t);
            self.pows = Powers { t: self.t, beta1, beta2, b1t, b2t };
        }
    }

    /// `(β₁ᵗ, β₂ᵗ)` for the current step: cached by `begin_step`, recomputed (same bits) if the
    /// counter or the betas were changed since.
    fn powers(&self, beta1: f32, beta2: f32) -> (f32, f32) {
        let p = self.pows;
        if p.t == self.t && p.beta1.to_bits() == beta1.to_bits() && p.beta2.to_bits() == beta2.to_bits() {
            (p.b1t, p.b2t)
        } else {
            adam::powers(beta1, beta2, self.t)
        }
    }

    /// Applies the rule to one tensor: `values` and `grads` are its slices (length
    /// `entry.shape.len()`), `state` its state slice (see the module's *State layout*:
    /// `state[k * entry.offset ..]` of the whole state buffer, at least `k * len` long).
    ///
    /// Untrainable kinds are left alone. Order: check (lr, options, lengths, `t ≥ 1`, gradient
    /// finite — before any write), clip by value in place, decoupled decay, then the rule on the
    /// gradient plus the coupled L2 term `λ·W`. Global-norm clipping is not done here.
    pub fn update_tensor(
        &self,
        entry: ParamEntry,
        values: &mut [f32],
        grads: &mut [f32],
        state: &mut [f32],
        lr: f32,
    ) -> Result<()> {
        self.update(entry, values, grads, state, lr, false)
    }

    /// [`Optimizer::update_tensor`]; `step` passes `grads_checked = true` because it has already
    /// checked every gradient, the learning rate and the options, which saves a pass over the
    /// gradients and a check per tensor. Same arithmetic either way.
    #[inline(always)] // for `step_valid`'s sake: see there
    fn update(
        &self,
        entry: ParamEntry,
        values: &mut [f32],
        grads: &mut [f32],
        state: &mut [f32],
        lr: f32,
        grads_checked: bool,
    ) -> Result<()> {
        if !grads_checked {
            self.check(lr)?;
        }
        let n = entry.shape.len();
        for len in [values.len(), grads.len()] {
            if len != n {
                return Err(Error::Shape {
                    op: "update_tensor",
                    expected: entry.shape,
                    found: Shape::row(len),
                });
            }
        }
        let needed = self.state_len(n);
        if state.len() < needed {
            return Err(Error::Capacity { region: Region::OptimizerState, needed, available: state.len() });
        }
        if !entry.kind.trainable() {
            return Ok(());
        }
        if self.t == 0 {
            return Err(Error::InvalidArgument { what: "step counter (call begin_step first)", value: 0.0 });
        }
        if !grads_checked {
            if let Some(i) = grads.iter().position(|g| !g.is_finite()) {
                return Err(Error::NonFinite { what: "gradient", index: entry.offset + i });
            }
        }
        if let Clip::Value(c) = self.clip {
            clip::clamp_slice(grads, c);
        }
        let split = if self.floats_per_param() == 2 { n } else { needed };
        let state = state.get_mut(..needed).unwrap_or_default(); // checked above
        let (s0, s1) = state.split_at_mut(split.min(state.len()));
        self.apply_whole(entry.kind, values, grads, s0, s1, lr);
        Ok(())
    }

    /// Applies the rule to elements `start .. start + values.len()` of tensor `entry`, given their
    /// complete gradient: what [`Tape::backward_fused`](crate::Tape::backward_fused) calls row by
    /// row (through [`FusedUpdate`](crate::FusedUpdate)), so no tensor-sized gradient buffer is
    /// needed. `state` is the tensor's state slice as for [`Optimizer::update_tensor`]; the part
    /// reads and writes each state run at `start`. Same arithmetic, so the same bits, as
    /// `update_tensor` on the whole tensor.
    ///
    /// Checked: lengths, `lr`, `t ≥ 1`. Not done here (see [`FusedUpdate`](crate::FusedUpdate)):
    /// option validation (once per step), the finiteness scan of the gradient (a second pass over
    /// every parameter; a finite loss was checked) and global-norm clipping (refused).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)] // for the fused step's sake: a `const` optimizer keeps its own rule's loop only
    pub fn update_part(
        &self,
        entry: ParamEntry,
        start: usize,
        values: &mut [f32],
        grads: &mut [f32],
        state: &mut [f32],
        lr: f32,
    ) -> Result<()> {
        if !(lr >= 0.0 && lr.is_finite()) {
            return Err(Error::InvalidArgument { what: "learning rate", value: lr });
        }
        let (n, c, k) = (entry.shape.len(), values.len(), self.floats_per_param());
        if grads.len() != c || start.saturating_add(c) > n {
            return Err(Error::Shape {
                op: "update_part",
                expected: entry.shape,
                found: Shape::row(start + c),
            });
        }
        let needed = self.state_len(n);
        if state.len() < needed {
            return Err(Error::Capacity { region: Region::OptimizerState, needed, available: state.len() });
        }
        if !entry.kind.trainable() {
            return Ok(());
        }
        if self.t == 0 {
            return Err(Error::InvalidArgument { what: "step counter (call begin_step first)", value: 0.0 });
        }
        if let Clip::Value(cv) = self.clip {
            clip::clamp_slice(grads, cv);
        }
        let state = state.get_mut(..needed).unwrap_or_default(); // checked above
        let (s0, s1) = state.split_at_mut(if k == 2 { n } else { needed }.min(state.len()));
        let (s0, s1): (&mut [f32], &mut [f32]) = match k {
            0 => (&mut [], &mut []),
            1 => (s0.get_mut(start..start + c).unwrap_or_default(), &mut []),
            _ => (
                s0.get_mut(start..start + c).unwrap_or_default(),
                s1.get_mut(start..start + c).unwrap_or_default(),
            ),
        };
        self.apply_whole(entry.kind, values, grads, s0, s1, lr);
        Ok(())
    }

    /// [`apply`](Self::apply) for a whole tensor (from `step`) or a part of one (the fused
    /// update): an inlined test for SGD, then
    /// loops kept out of line (inlined into the step's loop over tensors, LLVM compiles the rule
    /// loops worse). With a `const` SGD optimizer only SGD's loop is compiled in; Adam stays on
    /// the shared loop, which ran faster than one specialised like SGD's (docs/PERFORMANCE.md §3).
    #[inline(always)]
    fn apply_whole(
        &self,
        kind: ParamKind,
        values: &mut [f32],
        grads: &[f32],
        s0: &mut [f32],
        s1: &mut [f32],
        lr: f32,
    ) {
        match self.rule {
            Rule::Sgd => self.apply_sgd(kind, values, grads, lr),
            _ => self.apply_other(kind, values, grads, s0, s1, lr),
        }
    }

    /// [`apply`](Self::apply) with the rule known to be SGD.
    #[inline(never)]
    fn apply_sgd(&self, kind: ParamKind, values: &mut [f32], grads: &[f32], lr: f32) {
        self.apply_rule(Rule::Sgd, kind, values, grads, &mut [], &mut [], lr);
    }

    /// [`apply`](Self::apply) for every other rule (the rule matched at run time).
    #[inline(never)]
    fn apply_other(
        &self,
        kind: ParamKind,
        values: &mut [f32],
        grads: &[f32],
        s0: &mut [f32],
        s1: &mut [f32],
        lr: f32,
    ) {
        self.apply(kind, values, grads, s0, s1, lr);
    }

    /// The rule's arithmetic over one run of elements: `s0` is the first state quantity of these
    /// elements (momentum's `v`, Adam's `m`, …), `s1` the second (Adam's `v`, centred RMSProp's
    /// `ḡ`), each empty if the rule has none.
    fn apply(
        &self,
        kind: ParamKind,
        values: &mut [f32],
        grads: &[f32],
        s0: &mut [f32],
        s1: &mut [f32],
        lr: f32,
    ) {
        self.apply_rule(self.rule, kind, values, grads, s0, s1, lr);
    }

    /// [`apply`](Self::apply) with the rule given (a constant where the caller knows it).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn apply_rule(
        &self,
        rule: Rule,
        kind: ParamKind,
        values: &mut [f32],
        grads: &[f32],
        s0: &mut [f32],
        s1: &mut [f32],
        lr: f32,
    ) {
        let decay = if self.decay_scope.applies_to(kind) { self.weight_decay } else { WeightDecay::None };
        let l2 = match decay {
            WeightDecay::L2(l) => Some(l),
            WeightDecay::Decoupled(l) => {
                let keep = 1.0 - lr * l;
                for p in values.iter_mut() {
                    *p *= keep;
                }
                None
            }
            WeightDecay::None => None,
        };
        // The gradient the rule sees: coupled L2 adds λ·W (book: dW + λ·W).
        let eff = |g: f32, w: f32| match l2 {
            Some(l) => g + l * w,
            None => g,
        };
        match rule {
            Rule::Sgd if l2.is_none() => sgd::update_run(values, grads, lr),
            Rule::Sgd => {
                for (p, &g) in values.iter_mut().zip(grads.iter()) {
                    sgd::update(p, eff(g, *p), lr);
                }
            }
            Rule::Momentum { momentum: mu } => {
                for ((p, &g), v) in values.iter_mut().zip(grads.iter()).zip(s0.iter_mut()) {
                    momentum::update(p, v, eff(g, *p), lr, mu);
                }
            }
            Rule::Nesterov { momentum: mu, form } => {
                let f = match form {
                    NesterovForm::Book => nesterov::update_book::<f32>,
                    NesterovForm::BookPre2021 => nesterov::update_book_pre2021::<f32>,
                    NesterovForm::Sutskever => nesterov::update_sutskever::<f32>,
                };
                for ((p, &g), v) in values.iter_mut().zip(grads.iter()).zip(s0.iter_mut()) {
                    f(p, v, eff(g, *p), lr, mu);
                }
            }
            Rule::AdaGrad { eps } => {
                for ((p, &g), h) in values.iter_mut().zip(grads.iter()).zip(s0.iter_mut()) {
                    adagrad::update(p, h, eff(g, *p), lr, eps);
                }
            }
            Rule::RmsProp { decay, eps, centered: false } => {
                for ((p, &g), h) in values.iter_mut().zip(grads.iter()).zip(s0.iter_mut()) {
                    rmsprop::update(p, h, eff(g, *p), lr, decay, eps);
                }
            }
            Rule::RmsProp { decay, eps, centered: true } => {
                for (((p, &g), h), gb) in values.iter_mut().zip(grads.iter()).zip(s0).zip(s1) {
                    rmsprop::update_centered(p, h, gb, eff(g, *p), lr, decay, eps);
                }
            }
            Rule::Adam { beta1, beta2, eps, form } => {
                let it = values.iter_mut().zip(grads.iter()).zip(s0).zip(s1);
                match form {
                    AdamForm::BookFolded => {
                        let (b1t, b2t) = self.powers(beta1, beta2);
                        let lr_t = adam::book_lr_t_from_powers(lr, b1t, b2t);
                        for (((p, &g), m), v) in it {
                            adam::update_book(p, m, v, eff(g, *p), lr_t, beta1, beta2, eps);
                        }
                    }
                    AdamForm::BiasCorrected => {
                        let (b1t, b2t) = self.powers(beta1, beta2);
                        let (bc1, bc2) = (1.0 - b1t, 1.0 - b2t); // `bias_corrections`, same order
                        for (((p, &g), m), v) in it {
                            adam::update_bias_corrected(p, m, v, eff(g, *p), lr, beta1, beta2, eps, bc1, bc2);
                        }
                    }
                }
            }
        }
    }

    /// The coupled-L2 loss term for this optimizer's decay and scope: `0.5·λ·ΣW²` if the decay is
    /// [`WeightDecay::L2`], else 0. Add it to the reported loss to match the book.
    #[inline(always)] // nothing to compile for a `const` optimizer without L2 decay
    pub fn decay_loss(&self, params: &Params) -> f32 {
        match self.weight_decay {
            WeightDecay::L2(l) => decay_loss_scoped(params, l, self.decay_scope),
            _ => 0.0,
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

/// The book's weight-decay loss term `0.5·λ·ΣW²` over the [`ParamKind::Weight`] tensors: per
/// tensor `0.5·λ·Σ w²` (sum in index order from 0), added up in allocation order, as the book's
/// `weight_decay += 0.5 * lambda * np.sum(W ** 2)` loop does.
pub fn weight_decay_loss(params: &Params, lambda: f32) -> f32 {
    decay_loss_scoped(params, lambda, DecayScope::WeightsOnly)
}

fn decay_loss_scoped(params: &Params, lambda: f32, scope: DecayScope) -> f32 {
    let values = params.values();
    let mut total = 0.0f32;
    for e in params.entries().iter().filter(|e| scope.applies_to(e.kind)) {
        let mut s = 0.0f32;
        for &w in values.get(e.range()).unwrap_or(&[]) {
            s += w * w;
        }
        total += 0.5 * lambda * s;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ParamStorage;

    fn setup(ps: &mut ParamStorage<8, 4>) -> (Params<'_>, [crate::ParamId; 3]) {
        let mut p = ps.params();
        let w = p.alloc(Shape::new(1, 3), ParamKind::Weight).unwrap();
        let b = p.alloc(Shape::row(2), ParamKind::Bias).unwrap();
        let r = p.alloc(Shape::row(2), ParamKind::RunningMean).unwrap();
        p.value_mut(w).unwrap().copy_from_slice(&[1.0, -2.0, 3.0]);
        p.value_mut(b).unwrap().copy_from_slice(&[0.5, 0.5]);
        p.value_mut(r).unwrap().copy_from_slice(&[9.0, 9.0]);
        for g in p.grads_mut() {
            *g = 1.0;
        }
        (p, [w, b, r])
    }

    #[test]
    fn state_len_is_const() {
        const N: usize = Optimizer::adam().state_len(10);
        assert_eq!(N, 20);
        assert_eq!(Optimizer::sgd().state_len(10), 0);
        assert_eq!(Optimizer::rmsprop().centered(true).state_len(3), 6);
        assert_eq!(Optimizer::adam().state_len(usize::MAX), usize::MAX);
    }

    #[test]
    fn running_stats_untouched_and_bias_not_decayed() {
        let mut ps = ParamStorage::<8, 4>::new();
        let (mut p, [w, b, r]) = setup(&mut ps);
        let mut opt = Optimizer::sgd().with_weight_decay(WeightDecay::L2(0.5));
        opt.step(&mut p, &mut [], 0.1).unwrap();
        assert_eq!(p.value(r).unwrap(), &[9.0, 9.0]);
        assert_eq!(p.value(b).unwrap(), &[0.5 - 0.1, 0.5 - 0.1]);
        // w − lr·(g + λw)
        assert_eq!(p.value(w).unwrap()[0], 1.0 - 0.1 * (1.0 + 0.5 * 1.0));
        let mut ps = ParamStorage::<8, 4>::new();
        let (mut p, [_, b, _]) = setup(&mut ps);
        let mut opt = opt.with_decay_scope(DecayScope::AllTrainable);
        opt.step(&mut p, &mut [], 0.1).unwrap();
        assert_eq!(p.value(b).unwrap()[0], 0.5 - 0.1 * (1.0 + 0.5 * 0.5));
    }

    #[test]
    fn errors_before_writes() {
        let mut ps = ParamStorage::<8, 4>::new();
        let (mut p, [w, ..]) = setup(&mut ps);
        let before: [f32; 7] = p.values().try_into().unwrap();
        let mut opt = Optimizer::adam();
        let mut state = [0.0f32; 16];
        assert_eq!(
            opt.step(&mut p, &mut state[..13], 0.1),
            Err(Error::Capacity { region: Region::OptimizerState, needed: 14, available: 13 })
        );
        assert!(matches!(opt.step(&mut p, &mut state, -0.1), Err(Error::InvalidArgument { .. })));
        assert!(matches!(opt.step(&mut p, &mut state, f32::NAN), Err(Error::InvalidArgument { .. })));
        p.grad_mut(w).unwrap()[2] = f32::INFINITY;
        // The bias comes after the weight in the table but the check runs over everything first.
        assert_eq!(opt.step(&mut p, &mut state, 0.1), Err(Error::NonFinite { what: "gradient", index: 2 }));
        assert_eq!(p.values(), &before);
        assert_eq!(opt.steps(), 0);
        assert!(state.iter().all(|&s| s == 0.0));
        // A NaN in a running statistic's gradient is not the optimizer's business.
        p.grad_mut(w).unwrap()[2] = 0.0;
        p.grads_mut()[6] = f32::NAN;
        assert!(opt.step(&mut p, &mut state, 0.1).is_ok());
    }

    #[test]
    fn invalid_options_rejected() {
        let mut ps = ParamStorage::<8, 4>::new();
        let (mut p, _) = setup(&mut ps);
        for mut o in [
            Optimizer::momentum().with_momentum(1.0),
            Optimizer::adam().with_betas(0.9, -0.1),
            Optimizer::adagrad().with_eps(0.0),
            Optimizer::rmsprop().with_decay(f32::NAN),
            Optimizer::sgd().with_weight_decay(WeightDecay::L2(-1.0)),
            Optimizer::sgd().with_clip(Clip::Value(0.0)),
        ] {
            assert!(
                matches!(o.step(&mut p, &mut [0.0; 32], 0.1), Err(Error::InvalidArgument { .. })),
                "{o:?}"
            );
        }
    }

    #[test]
    fn update_tensor_needs_begin_step_and_checks_lengths() {
        let opt = Optimizer::momentum();
        let e = ParamEntry { offset: 0, shape: Shape::row(2), kind: ParamKind::Weight };
        let (mut v, mut g, mut s) = ([1.0f32; 2], [1.0f32; 2], [0.0f32; 2]);
        assert!(opt.update_tensor(e, &mut v, &mut g, &mut s, 0.1).is_err());
        let mut opt = opt;
        opt.begin_step();
        assert!(matches!(
            opt.update_tensor(e, &mut v, &mut g, &mut s[..1], 0.1),
            Err(Error::Capacity { .. })
        ));
        assert!(matches!(opt.update_tensor(e, &mut v[..1], &mut g, &mut s, 0.1), Err(Error::Shape { .. })));
        opt.update_tensor(e, &mut v, &mut g, &mut s, 0.1).unwrap();
        assert_eq!(v, [0.9, 0.9]);
    }

    #[test]
    fn adam_powers_cached_or_not_give_the_same_bits() {
        let e = ParamEntry { offset: 0, shape: Shape::row(3), kind: ParamKind::Weight };
        let run = |opt: Optimizer| {
            let (mut v, mut g, mut s) = ([1.0f32, -2.0, 0.5], [0.3f32, -0.1, 2.0], [0.1f32; 6]);
            opt.update_tensor(e, &mut v, &mut g, &mut s, 0.01).unwrap();
            v.map(f32::to_bits)
        };
        for base in [Optimizer::adam(), Optimizer::adam_bias_corrected()] {
            let mut cached = base.with_steps(6);
            cached.begin_step(); // t = 7, powers computed here
            let fresh = base.with_steps(7); // t = 7, powers computed per call
            assert_eq!(cached, fresh);
            assert_eq!(run(cached), run(fresh));
            // Betas changed through the public field after begin_step: the stale powers are not used.
            let mut changed = cached;
            if let Rule::Adam { eps, form, .. } = base.rule {
                changed.rule = Rule::Adam { beta1: 0.5, beta2: 0.9, eps, form };
            }
            let mut want = base.with_betas(0.5, 0.9).with_steps(6);
            want.begin_step();
            assert_eq!(run(changed), run(want));
            assert_ne!(run(changed), run(cached));
        }
    }

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
    fn decay_loss_book_case() {
        // layer_grads.json WeightDecay: W = [-1.25, -0.75, -0.25, 0.25, 0.75, 1.25], λ = 0.1 → 0.21875.
        let mut ps = ParamStorage::<8, 4>::new();
        let mut p = ps.params();
        let w = p.alloc(Shape::new(2, 3), ParamKind::Weight).unwrap();
        let b = p.alloc(Shape::row(2), ParamKind::Bias).unwrap();
        p.value_mut(w).unwrap().copy_from_slice(&[-1.25, -0.75, -0.25, 0.25, 0.75, 1.25]);
        p.value_mut(b).unwrap().copy_from_slice(&[10.0, 10.0]);
        assert_eq!(weight_decay_loss(&p, 0.1), 0.21875);
        let o = Optimizer::sgd().with_weight_decay(WeightDecay::L2(0.1));
        assert_eq!(o.decay_loss(&p), 0.21875);
        assert_eq!(o.with_decay_scope(DecayScope::AllTrainable).decay_loss(&p), 0.21875 + 0.5 * 0.1 * 200.0);
    }
}
