//! One optimizer step: [`Optimizer::step`] over every tensor, or [`Optimizer::begin_step`] then
//! [`Optimizer::update_tensor`] per tensor (or [`Optimizer::update_part`] per part of one, what
//! the fused update calls), down to the per-element formula of each rule's file.
//!
//! Every entry point takes the whole state buffer: the step's progress (counter, Adam's powers)
//! is in its header, each tensor's quantities at [`Optimizer::state_range`] (see
//! [`state`](super::state)).

use super::state::Progress;
use super::{AdamForm, Clip, NesterovForm, Optimizer, Rule, WeightDecay};
use super::{adagrad, adam, momentum, nesterov, rmsprop, sgd};
use crate::clip;
use crate::error::{Error, Region, Result};
use crate::parallel::{Par, rows_per_chunk};
use crate::params::{ParamEntry, ParamKind, Params};
use crate::shape::Shape;

impl Optimizer {
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
    /// (`Capacity` of `OptimizerState`), its step counter valid (`InvalidArgument`), every
    /// trainable gradient finite (`NonFinite` with `what: "gradient"` and the flat index). Then
    /// the counter advances, and clipping, weight decay and the rule are applied; the gradient
    /// buffer is left holding the clipped gradient.
    pub fn step(&self, params: &mut Params, state: &mut [f32], lr: f32) -> Result<()> {
        self.check(lr)?; // learning rate first, then the options
        self.step_valid(&Par::SEQUENTIAL, params, state, lr)
    }

    /// [`step`](Self::step) for options already [validated](Self::validate) (a
    /// [`Trainer`](crate::train::Trainer) does it once when it is made): every other check stays.
    /// Inlined, so that with a `const` optimizer the clipping, weight decay and rules it does not
    /// use (and Adam's `powf`) are left out of a firmware. Plain SGD's update (no state, no
    /// clipping in place) is shared among `par`'s workers by element ranges: each element's
    /// update is its own, so the same bits.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn step_valid(
        &self,
        par: &Par<'_>,
        params: &mut Params,
        state: &mut [f32],
        lr: f32,
    ) -> Result<()> {
        if !(lr >= 0.0 && lr.is_finite()) {
            return Err(Error::InvalidArgument { what: "learning rate", value: lr });
        }
        let needed = self.state_len(params.len());
        if state.len() < needed {
            return Err(Error::Capacity { region: Region::OptimizerState, needed, available: state.len() });
        }
        let p = self.next_progress(state)?;
        clip::check_finite(params)?;
        if let Clip::GlobalNorm(max) = self.clip {
            clip::clip_global_norm(params, max)?;
        }
        self.store_progress(state, p);
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
            if par.threads() > 1 && matches!((self.rule, self.clip), (Rule::Sgd, Clip::None)) {
                if let Some(per) = rows_per_chunk(par, v.len(), 1, 16) {
                    let g: &[f32] = g;
                    par.for_each_chunk(v, per, |i, v| {
                        self.apply_sgd(e.kind, v, g.get(i * per..).unwrap_or_default(), lr);
                    });
                    continue;
                }
            }
            let s = state.get_mut(self.state_range(&e)).unwrap_or(&mut []);
            self.update(p, e, v, g, s, lr, true)?;
        }
        Ok(())
    }

    /// Starts a step: advances the step counter in `state`'s header (saturating at
    /// [`MAX_STEPS`](super::MAX_STEPS)) and, for Adam, stores `β₁ᵗ` and `β₂ᵗ` there. Call once per
    /// step before [`update_tensor`](Self::update_tensor) or [`update_part`](Self::update_part),
    /// with the same optimizer; [`step`](Self::step) does it for you.
    ///
    /// `Capacity` if `state` is shorter than the [header](super::HEADER_LEN), `InvalidArgument`
    /// if its counter is not a valid count; nothing is written then.
    // Adam's `powf` folds away for a `const` optimizer of another rule
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn begin_step(&self, state: &mut [f32]) -> Result<()> {
        let p = self.next_progress(state)?;
        self.store_progress(state, p);
        Ok(())
    }

    /// Applies the rule to one tensor: `values` and `grads` are its slices (length
    /// `entry.shape.len()`), `state` the **whole** state buffer, whose header holds the step
    /// [`begin_step`](Self::begin_step) began and whose [`state_range`](Self::state_range)
    /// holds the tensor's quantities.
    ///
    /// Untrainable kinds are left alone. Order: check (lr, options, lengths, for Adam a begun
    /// step, gradient finite — before any write), clip by value in place, decoupled decay, then
    /// the rule on the gradient plus the coupled L2 term `λ·W`. Global-norm clipping is not done
    /// here. Only Adam reads the header (its bias correction needs `t ≥ 1` and the powers
    /// `begin_step` stored); the other rules' arithmetic does not depend on the counter.
    pub fn update_tensor(
        &self,
        entry: ParamEntry,
        values: &mut [f32],
        grads: &mut [f32],
        state: &mut [f32],
        lr: f32,
    ) -> Result<()> {
        self.check(lr)?;
        let r = self.state_range(&entry);
        if state.len() < r.end {
            return Err(Error::Capacity {
                region: Region::OptimizerState,
                needed: r.end,
                available: state.len(),
            });
        }
        let p = self.begun(state)?;
        let s = state.get_mut(r).unwrap_or_default(); // checked above
        self.update(p, entry, values, grads, s, lr, false)
    }

    /// [`Optimizer::update_tensor`] on the tensor's state slice `state`, at step `p`; `step`
    /// passes `grads_checked = true` because it has already checked every gradient, which saves
    /// a pass over the gradients. Same arithmetic either way.
    // for `step_valid`'s sake: see there
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[allow(clippy::too_many_arguments)]
    fn update(
        &self,
        p: Progress,
        entry: ParamEntry,
        values: &mut [f32],
        grads: &mut [f32],
        state: &mut [f32],
        lr: f32,
        grads_checked: bool,
    ) -> Result<()> {
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
        let needed = self.floats_per_param().saturating_mul(n);
        if state.len() < needed {
            return Err(Error::Capacity { region: Region::OptimizerState, needed, available: state.len() });
        }
        if !entry.kind.trainable() {
            return Ok(());
        }
        if !grads_checked {
            if let Some(i) = grads.iter().position(|g| !g.is_finite()) {
                return Err(Error::NonFinite { what: "gradient", index: entry.offset + i });
            }
        }
        if let Clip::Value(c) = self.clip {
            clip::clamp_slice(grads, c);
        }
        let k = self.floats_per_param();
        let state = state.get_mut(..needed).unwrap_or_default(); // checked above
        // One run of `n` floats per state slot: s0, then s1, then (three slots) s2.
        if k == 3 {
            let (s0, s1) = state.split_at_mut(n.min(state.len()));
            let (s1, s2) = s1.split_at_mut(n.min(s1.len()));
            self.apply_three(p, entry.kind, values, grads, s0, s1, s2, lr);
            return Ok(());
        }
        let (s0, s1) = state.split_at_mut(if k == 2 { n } else { needed }.min(state.len()));
        self.apply_whole(p, entry.kind, values, grads, s0, s1, lr);
        Ok(())
    }

    /// Applies the rule to elements `start .. start + values.len()` of tensor `entry`, given their
    /// complete gradient: what [`Tape::backward_fused`](crate::Tape::backward_fused) calls row by
    /// row (through [`FusedUpdate`](crate::FusedUpdate)), so no tensor-sized gradient buffer is
    /// needed. `state` is the whole state buffer, as for [`Optimizer::update_tensor`]; the part
    /// reads and writes each of the tensor's state runs at `start`. Same arithmetic, so the same
    /// bits, as `update_tensor` on the whole tensor.
    ///
    /// Checked: lengths, `lr`, and for Adam a begun step (as `update_tensor`). Not done here (see [`FusedUpdate`](crate::FusedUpdate)):
    /// option validation (once per step), the finiteness scan of the gradient (a second pass over
    /// every parameter; a finite loss was checked) and global-norm clipping (refused).
    #[allow(clippy::too_many_arguments)]
    // for the fused step's sake: a `const` optimizer keeps its own rule's loop only
    #[cfg_attr(not(debug_assertions), inline(always))]
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
        let r = self.state_range(&entry);
        // A rule without per-parameter state needs only the header, which `begun` checks.
        if k > 0 && state.len() < r.end {
            return Err(Error::Capacity {
                region: Region::OptimizerState,
                needed: r.end,
                available: state.len(),
            });
        }
        if !entry.kind.trainable() {
            return Ok(());
        }
        let p = self.begun(state)?;
        if let Clip::Value(cv) = self.clip {
            clip::clamp_slice(grads, cv);
        }
        let state = state.get_mut(r).unwrap_or_default(); // checked above
        if k == 3 {
            let (s0, s1) = state.split_at_mut(n.min(state.len()));
            let (s1, s2) = s1.split_at_mut(n.min(s1.len()));
            let s0 = s0.get_mut(start..start + c).unwrap_or_default();
            let s1 = s1.get_mut(start..start + c).unwrap_or_default();
            let s2 = s2.get_mut(start..start + c).unwrap_or_default();
            self.apply_three(p, entry.kind, values, grads, s0, s1, s2, lr);
            return Ok(());
        }
        let (s0, s1) = state.split_at_mut(if k == 2 { n } else { state.len() }.min(state.len()));
        let (s0, s1): (&mut [f32], &mut [f32]) = match k {
            0 => (&mut [], &mut []),
            1 => (s0.get_mut(start..start + c).unwrap_or_default(), &mut []),
            _ => (
                s0.get_mut(start..start + c).unwrap_or_default(),
                s1.get_mut(start..start + c).unwrap_or_default(),
            ),
        };
        self.apply_whole(p, entry.kind, values, grads, s0, s1, lr);
        Ok(())
    }

    /// [`apply`](Self::apply) for a whole tensor (from `step`) or a part of one (the fused
    /// update): an inlined test for SGD, then
    /// loops kept out of line (inlined into the step's loop over tensors, LLVM compiles the rule
    /// loops worse). With a `const` SGD optimizer without weight decay only SGD's plain loop is
    /// compiled in; so with the book's Adam without weight decay, whose run (`adam::update_book_run`) is one loop with the
    /// FPU's square root inside on a Cortex-M4F (compiled alone, the Rust loop ran slower than
    /// inside the shared one: docs/PERFORMANCE.md §3).
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[allow(clippy::too_many_arguments)]
    fn apply_whole(
        &self,
        p: Progress,
        kind: ParamKind,
        values: &mut [f32],
        grads: &[f32],
        s0: &mut [f32],
        s1: &mut [f32],
        lr: f32,
    ) {
        let plain = matches!(self.weight_decay, WeightDecay::None) || !self.decay_scope.applies_to(kind);
        match self.rule {
            Rule::Sgd if plain => sgd_run(values, grads, lr),
            Rule::Sgd => self.apply_sgd(kind, values, grads, lr),
            Rule::Adam { beta1, beta2, eps, form: AdamForm::BookFolded, amsgrad: false } if plain => {
                let lr_t = adam::book_lr_t_from_powers(lr, p.b1t, p.b2t);
                adam::update_book_run(values, grads, s0, s1, lr_t, beta1, beta2, eps);
            }
            _ => self.apply_other(kind, values, grads, s0, s1, lr, (p.b1t, p.b2t)),
        }
    }

    /// The rules with three state slots (centred RMSProp with momentum, AMSGrad), out of line:
    /// the callers branch here on the slot count they already know, so the other rules' path is
    /// the two-slot one unchanged.
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn apply_three(
        &self,
        p: Progress,
        kind: ParamKind,
        values: &mut [f32],
        grads: &[f32],
        s0: &mut [f32],
        s1: &mut [f32],
        s2: &mut [f32],
        lr: f32,
    ) {
        self.apply_rule(self.rule, kind, values, grads, s0, s1, s2, lr, (p.b1t, p.b2t));
    }

    /// [`apply`](Self::apply) with the rule known to be SGD.
    #[inline(never)]
    fn apply_sgd(&self, kind: ParamKind, values: &mut [f32], grads: &[f32], lr: f32) {
        self.apply_rule(Rule::Sgd, kind, values, grads, &mut [], &mut [], &mut [], lr, (1.0, 1.0));
    }

    /// [`apply`](Self::apply) for every other rule (the rule matched at run time).
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn apply_other(
        &self,
        kind: ParamKind,
        values: &mut [f32],
        grads: &[f32],
        s0: &mut [f32],
        s1: &mut [f32],
        lr: f32,
        powers: (f32, f32),
    ) {
        self.apply(kind, values, grads, s0, s1, lr, powers);
    }

    /// The rule's arithmetic over one run of elements: `s0` is the first state quantity of these
    /// elements (momentum's `v`, Adam's `m`, …), `s1` the second (Adam's `v`, centred RMSProp's
    /// `ḡ`), each empty if the rule has none; `powers` are Adam's `(β₁ᵗ, β₂ᵗ)` for this step.
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &self,
        kind: ParamKind,
        values: &mut [f32],
        grads: &[f32],
        s0: &mut [f32],
        s1: &mut [f32],
        lr: f32,
        powers: (f32, f32),
    ) {
        // Three-slot rules never come here (see `apply_three`): their third slot is empty.
        self.apply_rule(self.rule, kind, values, grads, s0, s1, &mut [], lr, powers);
    }

    /// [`apply`](Self::apply) with the rule given (a constant where the caller knows it).
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[allow(clippy::too_many_arguments)]
    fn apply_rule(
        &self,
        rule: Rule,
        kind: ParamKind,
        values: &mut [f32],
        grads: &[f32],
        s0: &mut [f32],
        s1: &mut [f32],
        s2: &mut [f32],
        lr: f32,
        (b1t, b2t): (f32, f32),
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
            Rule::RmsProp { decay, eps, centered: false, momentum: 0.0 } => {
                for ((p, &g), h) in values.iter_mut().zip(grads.iter()).zip(s0.iter_mut()) {
                    rmsprop::update(p, h, eff(g, *p), lr, decay, eps);
                }
            }
            Rule::RmsProp { decay, eps, centered: true, momentum: 0.0 } => {
                for (((p, &g), h), gb) in values.iter_mut().zip(grads.iter()).zip(s0).zip(s1) {
                    rmsprop::update_centered(p, h, gb, eff(g, *p), lr, decay, eps);
                }
            }
            // The rules PyTorch users reach for beyond the book's, out of line: a firmware whose
            // optimizer is matched at run time carries one call here, not their loops.
            Rule::RmsProp { .. } | Rule::Adam { amsgrad: true, .. } => {
                extra_rules(rule, l2, values, grads, s0, s1, s2, lr, (b1t, b2t))
            }
            Rule::Adam { beta1, beta2, eps, form, amsgrad: false } => {
                let it = values.iter_mut().zip(grads.iter()).zip(s0).zip(s1);
                match form {
                    AdamForm::BookFolded => {
                        let lr_t = adam::book_lr_t_from_powers(lr, b1t, b2t);
                        for (((p, &g), m), v) in it {
                            adam::update_book(p, m, v, eff(g, *p), lr_t, beta1, beta2, eps);
                        }
                    }
                    AdamForm::BiasCorrected => {
                        let (bc1, bc2) = (1.0 - b1t, 1.0 - b2t); // `bias_corrections`, same order
                        for (((p, &g), m), v) in it {
                            adam::update_bias_corrected(p, m, v, eff(g, *p), lr, beta1, beta2, eps, bc1, bc2);
                        }
                    }
                }
            }
        }
    }
}

/// Plain SGD without weight decay over a run, out of line (see [`Optimizer::apply_whole`]; on a
/// Cortex-M4F the run is itself a call).
#[cfg_attr(all(feature = "arm-fpu-sqrt", target_arch = "arm", target_abi = "eabihf"), inline(always))]
#[cfg_attr(not(all(feature = "arm-fpu-sqrt", target_arch = "arm", target_abi = "eabihf")), inline(never))]
fn sgd_run(values: &mut [f32], grads: &[f32], lr: f32) {
    sgd::update_run(values, grads, lr);
}

/// `g + λ·w` under coupled L2 (`l2`), else `g`.
#[cfg_attr(not(debug_assertions), inline(always))]
fn eff(g: f32, w: f32, l2: Option<f32>) -> f32 {
    match l2 {
        Some(l) => g + l * w,
        None => g,
    }
}

/// RMSProp with momentum (two or three slots) and AMSGrad (three slots): `s2` is the third slot.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn extra_rules(
    rule: Rule,
    l2: Option<f32>,
    values: &mut [f32],
    grads: &[f32],
    s0: &mut [f32],
    s1: &mut [f32],
    s2: &mut [f32],
    lr: f32,
    (b1t, b2t): (f32, f32),
) {
    match rule {
        Rule::RmsProp { decay, eps, centered: false, momentum: mu } => {
            for (((p, &g), h), buf) in values.iter_mut().zip(grads.iter()).zip(s0).zip(s1) {
                rmsprop::update_momentum(p, h, buf, eff(g, *p, l2), lr, decay, eps, mu);
            }
        }
        Rule::RmsProp { decay, eps, centered: true, momentum: mu } => {
            let it = values.iter_mut().zip(grads.iter()).zip(s0).zip(s1).zip(s2);
            for ((((p, &g), h), gb), buf) in it {
                rmsprop::update_centered_momentum(p, h, gb, buf, eff(g, *p, l2), lr, decay, eps, mu);
            }
        }
        Rule::Adam { beta1, beta2, eps, form, amsgrad: true } => {
            let it = values.iter_mut().zip(grads.iter()).zip(s0).zip(s1).zip(s2);
            match form {
                AdamForm::BookFolded => {
                    let lr_t = adam::book_lr_t_from_powers(lr, b1t, b2t);
                    for ((((p, &g), m), v), vmax) in it {
                        adam::update_book_amsgrad(p, m, v, vmax, eff(g, *p, l2), lr_t, beta1, beta2, eps);
                    }
                }
                AdamForm::BiasCorrected => {
                    let (bc1, bc2) = (1.0 - b1t, 1.0 - b2t);
                    for ((((p, &g), m), v), vmax) in it {
                        let g = eff(g, *p, l2);
                        adam::update_bias_corrected_amsgrad(
                            p, m, v, vmax, g, lr, beta1, beta2, eps, bc1, bc2,
                        );
                    }
                }
            }
        }
        // `apply_rule` passes only the rules above.
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DecayScope, HEADER_LEN, NAMES, steps};
    use super::*;
    use crate::ParamStorage;
    use crate::testutil::random_values;
    use std::vec;
    use std::vec::Vec;

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
    fn running_stats_untouched_and_bias_not_decayed() {
        let mut ps = ParamStorage::<8, 4>::new();
        let (mut p, [w, b, r]) = setup(&mut ps);
        let opt = Optimizer::sgd().with_weight_decay(WeightDecay::L2(0.5));
        let mut state = [0.0; HEADER_LEN];
        opt.step(&mut p, &mut state, 0.1).unwrap();
        assert_eq!(p.value(r).unwrap(), &[9.0, 9.0]);
        assert_eq!(p.value(b).unwrap(), &[0.5 - 0.1, 0.5 - 0.1]);
        // w − lr·(g + λw)
        assert_eq!(p.value(w).unwrap()[0], 1.0 - 0.1 * (1.0 + 0.5 * 1.0));
        let mut ps = ParamStorage::<8, 4>::new();
        let (mut p, [_, b, _]) = setup(&mut ps);
        let opt = opt.with_decay_scope(DecayScope::AllTrainable);
        opt.step(&mut p, &mut [0.0; HEADER_LEN], 0.1).unwrap();
        assert_eq!(p.value(b).unwrap()[0], 0.5 - 0.1 * (1.0 + 0.5 * 0.5));
    }

    #[test]
    fn errors_before_writes() {
        let mut ps = ParamStorage::<8, 4>::new();
        let (mut p, [w, ..]) = setup(&mut ps);
        let before: [f32; 7] = p.values().try_into().unwrap();
        let opt = Optimizer::adam();
        let mut state = [0.0f32; HEADER_LEN + 14];
        assert_eq!(
            opt.step(&mut p, &mut state[..HEADER_LEN + 13], 0.1),
            Err(Error::Capacity {
                region: Region::OptimizerState,
                needed: HEADER_LEN + 14,
                available: HEADER_LEN + 13
            })
        );
        assert!(matches!(opt.step(&mut p, &mut state, -0.1), Err(Error::InvalidArgument { .. })));
        assert!(matches!(opt.step(&mut p, &mut state, f32::NAN), Err(Error::InvalidArgument { .. })));
        p.grad_mut(w).unwrap()[2] = f32::INFINITY;
        // The bias comes after the weight in the table but the check runs over everything first.
        assert_eq!(opt.step(&mut p, &mut state, 0.1), Err(Error::NonFinite { what: "gradient", index: 2 }));
        assert_eq!(p.values(), &before);
        assert!(state.iter().all(|&s| s == 0.0), "the counter did not move");
        // A state whose counter is not a count (e.g. laid out for another version) is refused.
        p.grad_mut(w).unwrap()[2] = 0.0;
        let mut bad = state;
        bad[0] = -1.0;
        assert!(matches!(opt.step(&mut p, &mut bad, 0.1), Err(Error::InvalidArgument { .. })));
        assert_eq!(p.values(), &before);
        // A NaN in a running statistic's gradient is not the optimizer's business.
        p.grads_mut()[6] = f32::NAN;
        assert!(opt.step(&mut p, &mut state, 0.1).is_ok());
        assert_eq!(steps(&state), Ok(1));
    }

    #[test]
    fn invalid_options_rejected() {
        let mut ps = ParamStorage::<8, 4>::new();
        let (mut p, _) = setup(&mut ps);
        for o in [
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
        let e = ParamEntry { offset: 0, shape: Shape::row(2), kind: ParamKind::Weight };
        // Adam's bias correction needs a begun step.
        let adam = Optimizer::adam();
        let (mut v, mut g, mut s) = ([1.0f32; 2], [1.0f32; 2], [0.0f32; HEADER_LEN + 4]);
        assert!(matches!(
            adam.update_tensor(e, &mut v, &mut g, &mut s, 0.1),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            adam.update_part(e, 0, &mut v, &mut g, &mut s, 0.1),
            Err(Error::InvalidArgument { .. })
        ));
        assert_eq!((v, s), ([1.0; 2], [0.0; HEADER_LEN + 4]), "nothing written");
        adam.begin_step(&mut s).unwrap();
        adam.update_part(e, 1, &mut v[1..], &mut g[1..], &mut s, 0.1).unwrap(); // the second element only
        assert_eq!(v[0], 1.0);
        assert!(v[1] < 1.0);
        let opt = Optimizer::momentum();
        let (mut v, mut g, mut s) = ([1.0f32; 2], [1.0f32; 2], [0.0f32; HEADER_LEN + 2]);
        assert!(matches!(opt.begin_step(&mut s[..2]), Err(Error::Capacity { .. })));
        opt.begin_step(&mut s).unwrap();
        assert!(matches!(
            opt.update_tensor(e, &mut v, &mut g, &mut s[..HEADER_LEN + 1], 0.1),
            Err(Error::Capacity { .. })
        ));
        assert!(matches!(opt.update_tensor(e, &mut v[..1], &mut g, &mut s, 0.1), Err(Error::Shape { .. })));
        opt.update_tensor(e, &mut v, &mut g, &mut s, 0.1).unwrap();
        assert_eq!(v, [0.9, 0.9]);
        assert_eq!(s, [f32::from_bits(1), 0.0, 0.0, -0.1, -0.1]); // t = 1, then the velocity
    }

    /// Every rule, 2 tensors, `n` steps from a zero state: the values and the state.
    fn train(opt: Optimizer, values: &mut [f32], state: &mut [f32], from: usize, to: usize) {
        let mut ps = ParamStorage::<12, 2>::new();
        let mut p = ps.params();
        p.alloc(Shape::new(2, 4), ParamKind::Weight).unwrap();
        p.alloc(Shape::row(4), ParamKind::Bias).unwrap();
        p.values_mut().copy_from_slice(values);
        for s in from..to {
            p.grads_mut().copy_from_slice(&random_values(12, 0.0, 100 + s as u64));
            opt.step(&mut p, state, 0.05).unwrap();
        }
        values.copy_from_slice(p.values());
    }

    #[test]
    fn resume_from_values_and_state_is_bit_identical() {
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for &name in NAMES {
            for opt in [
                Optimizer::by_name(name).unwrap(),
                Optimizer::by_name(name).unwrap().with_clip(Clip::GlobalNorm(0.5)),
            ] {
                let (n, k) = (9, 4);
                let start = random_values(12, 0.0, 1);
                let (mut straight, mut s_straight) = (start.clone(), vec![0.0; opt.state_len(12)]);
                train(opt, &mut straight, &mut s_straight, 0, n);
                // K steps, then a "checkpoint": copies of the values and the state floats only.
                let (mut first, mut s_first) = (start.clone(), vec![0.0; opt.state_len(12)]);
                train(opt, &mut first, &mut s_first, 0, k);
                let (saved_values, saved_state) = (first.clone(), s_first.clone());
                drop((first, s_first));
                // A fresh optimizer value (options only) and fresh buffers, loaded from the save.
                let fresh = Optimizer::by_name(name).unwrap().with_clip(opt.clip);
                let (mut resumed, mut s_resumed) = (vec![0.0; 12], vec![0.0; fresh.state_len(12)]);
                resumed.copy_from_slice(&saved_values);
                s_resumed.copy_from_slice(&saved_state);
                assert_eq!(steps(&s_resumed), Ok(k as u32));
                train(fresh, &mut resumed, &mut s_resumed, k, n);
                assert_eq!(bits(&resumed), bits(&straight), "{name} {:?}", opt.clip);
                assert_eq!(bits(&s_resumed), bits(&s_straight), "{name} {:?}", opt.clip);
                assert_eq!(steps(&s_resumed), Ok(n as u32));
                // Adam's bias correction depends on t: resuming as if from scratch differs.
                if let Rule::Adam { .. } = opt.rule {
                    let mut restarted = saved_values.clone();
                    let mut s = saved_state.clone();
                    s[0] = 0.0;
                    train(fresh, &mut restarted, &mut s, k, n);
                    assert_ne!(bits(&restarted), bits(&straight), "{name}");
                }
            }
        }
    }
}
