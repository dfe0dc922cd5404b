//! Batch normalisation over the rows (the batch) of a `batch × features` value, per feature.
//!
//! Train mode normalises with the batch mean `μ` and the **biased** batch variance `σ²`
//! (divide by `N`), `y = γ·(x − μ)/√(σ² + eps) + β`, and moves the running statistics
//! `r ← m·r + (1 − m)·batch_stat`. Eval mode uses the running statistics instead. The running
//! variance moves towards the biased `σ²` in the book's form ([`BatchNormConfig::BOOK`]) and
//! towards the unbiased `σ²·N/(N − 1)` in PyTorch's ([`BatchNormConfig::STANDARD`]).
//!
//! Memory: the op keeps only `μ`, `σ²` and `eps` (`2 × features + 1` floats of scratch), not the
//! normalised batch: backward recomputes `x − μ` and `√(σ² + eps)` from the input, which is
//! still on the tape, with the same operations, so it sees the forward's exact bits.
//!
//! Backward (train mode) follows the book's order of evaluation (`dβ = Σ dy`,
//! `dγ = Σ x̂·dy`, `dx̂ = γ·dy`, `dxc = dx̂/std`, `dstd = −Σ dx̂·xc/std²`,
//! `dvar = 0.5·dstd/std`, `dxc += (2/N)·xc·dvar`, `dμ = Σ dxc`, `dx = dxc − dμ/N`), all sums
//! over the batch in row order. In eval mode the statistics are constants: `dx = γ·dy/std`.
//!
//! ```
//! use staticgrad::ops::batchnorm::{BatchNorm, BatchNormConfig};
//! use staticgrad::{Mode, ParamStorage, Shape, TapeStorage};
//! let mut ps = ParamStorage::<16, 4>::new();
//! let mut params = ps.params();
//! let bn = BatchNorm::alloc(&mut params, 2, BatchNormConfig::BOOK)?; // γ = 1, β = 0
//! let mut ts = TapeStorage::<64, 4>::new();
//! let mut tape = ts.tape();
//! let x = tape.input(&[1.0, 10.0, 3.0, 30.0], Shape::new(2, 2))?;
//! let y = tape.batch_norm(x, &mut params, &bn, Mode::Train)?;
//! let out = tape.value(y)?;
//! assert!((out[0] + 1.0).abs() < 1e-5 && (out[3] - 1.0).abs() < 1e-5);
//! // r = 0.9·0 + (1 − 0.9)·μ, with μ = (2, 20)
//! let rm = params.value(bn.running_mean)?;
//! assert!((rm[0] - 0.2).abs() < 1e-6 && (rm[1] - 2.0).abs() < 1e-5);
//! # Ok::<(), staticgrad::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::params::{ParamId, ParamKind, Params};
use crate::shape::Shape;
use crate::tape::{Grads, Mode, Node, NodeIndex, Op, Tape, Var};

/// Batch-norm hyperparameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormConfig {
    /// Weight of the old running statistic: `r ← momentum·r + (1 − momentum)·batch_stat`.
    pub momentum: f32,
    /// Added to the variance under the square root.
    pub eps: f32,
    /// Initial running variance (the running mean starts at 0).
    pub running_var_init: f32,
    /// Move the running variance towards the unbiased batch variance `σ²·N/(N − 1)` (PyTorch's
    /// `BatchNorm1d`) instead of the biased `σ²` the batch is normalised with (the book's). A batch
    /// of one row has no unbiased variance: its factor is 1.
    pub unbiased_running_var: bool,
}

impl BatchNormConfig {
    /// The book's `BatchNormalization`: momentum 0.9, eps 1e-6, running variance starting at 0
    /// (so eval-mode outputs are far too large for the first steps, as in the book).
    /// The running variance moves towards the biased batch variance, as the book's does.
    pub const BOOK: BatchNormConfig =
        BatchNormConfig { momentum: 0.9, eps: 1e-6, running_var_init: 0.0, unbiased_running_var: false };

    /// PyTorch's `BatchNorm1d` defaults in this momentum convention (its `momentum=0.1` is our
    /// 0.9): eps 1e-5, running variance starting at 1 and moving towards the unbiased batch
    /// variance `σ²·N/(N − 1)`.
    pub const STANDARD: BatchNormConfig =
        BatchNormConfig { momentum: 0.9, eps: 1e-5, running_var_init: 1.0, unbiased_running_var: true };

    /// Checks `0 ≤ momentum ≤ 1`, `eps > 0` and a finite, non-negative running-variance start.
    /// A `const fn`, so a `const` spec can be checked at compile time.
    pub const fn validate(&self) -> Result<()> {
        if !(self.momentum >= 0.0 && self.momentum <= 1.0) {
            return Err(Error::InvalidArgument { what: "batch-norm momentum", value: self.momentum });
        }
        if !(self.eps > 0.0 && self.eps.is_finite()) {
            return Err(Error::InvalidArgument { what: "batch-norm eps", value: self.eps });
        }
        if !(self.running_var_init >= 0.0 && self.running_var_init.is_finite()) {
            return Err(Error::InvalidArgument {
                what: "batch-norm running variance start",
                value: self.running_var_init,
            });
        }
        Ok(())
    }
}

impl Default for BatchNormConfig {
    /// [`BatchNormConfig::STANDARD`].
    fn default() -> Self {
        Self::STANDARD
    }
}

/// One batch-norm layer: handles of its four `1 × features` tensors and its configuration.
/// `Copy`, so a model can rebuild it from its layout instead of storing it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNorm {
    /// Scale γ (kind [`ParamKind::Gamma`], trained).
    pub gamma: ParamId,
    /// Shift β (kind [`ParamKind::Beta`], trained).
    pub beta: ParamId,
    /// Running mean (kind [`ParamKind::RunningMean`], never touched by an optimizer).
    pub running_mean: ParamId,
    /// Running variance (kind [`ParamKind::RunningVar`], never touched by an optimizer).
    pub running_var: ParamId,
    /// Momentum, eps and running-variance start.
    pub config: BatchNormConfig,
}

impl BatchNorm {
    /// Number of parameter tensors a layer allocates (γ, β, running mean, running variance).
    pub const TENSORS: usize = 4;

    /// Parameter floats a layer over `features` features allocates.
    /// Saturates at `usize::MAX` (never wraps); the MLP planner checks it.
    pub const fn param_len(features: usize) -> usize {
        features.saturating_mul(4)
    }

    /// Tape scratch floats (values only, no gradient) the op reserves after its output: `μ`, `σ²` and `eps`
    /// (kept there rather than in the op record, so every tape node stays small).
    /// Saturates at `usize::MAX` (never wraps); the MLP planner checks it.
    pub const fn scratch_len(features: usize) -> usize {
        features.saturating_mul(2).saturating_add(1)
    }

    /// Allocates γ, β, running mean and running variance (in that order) and initialises them:
    /// γ = 1, β = 0, mean = 0, variance = `config.running_var_init`.
    pub fn alloc(params: &mut Params, features: usize, config: BatchNormConfig) -> Result<BatchNorm> {
        config.validate()?;
        let shape = Shape::row(features);
        let gamma = params.alloc(shape, ParamKind::Gamma)?;
        let beta = params.alloc(shape, ParamKind::Beta)?;
        let running_mean = params.alloc(shape, ParamKind::RunningMean)?;
        let running_var = params.alloc(shape, ParamKind::RunningVar)?;
        let bn = BatchNorm { gamma, beta, running_mean, running_var, config };
        bn.reset(params)?;
        Ok(bn)
    }

    /// Re-initialises the layer: γ = 1, β = 0, running mean 0, running variance
    /// `config.running_var_init`.
    pub fn reset(&self, params: &mut Params) -> Result<()> {
        params.value_mut(self.gamma)?.fill(1.0);
        params.value_mut(self.beta)?.fill(0.0);
        params.value_mut(self.running_mean)?.fill(0.0);
        params.value_mut(self.running_var)?.fill(self.config.running_var_init);
        Ok(())
    }

    /// Moves the running statistics towards the batch statistics recorded by the train-mode
    /// batch-norm node `y` of this layer: `r ← m·r + (1 − m)·batch_stat`. This is what
    /// [`Tape::batch_norm`] does in train mode; call it yourself after
    /// [`Tape::batch_norm_no_update`] to defer the update (e.g. after a whole forward pass).
    pub fn update_running(&self, tape: &Tape<'_>, y: Var, params: &mut Params) -> Result<()> {
        self.update_running_at(tape, tape.check(y)?, params)
    }

    /// [`update_running`](Self::update_running) from node `y` (the core's own path).
    pub(crate) fn update_running_at(&self, tape: &Tape<'_>, y: NodeIndex, params: &mut Params) -> Result<()> {
        let node = tape.node_at(y)?;
        match node.op {
            Op::BatchNorm { gamma, .. } if gamma == self.gamma => {}
            _ => return Err(Error::InvalidHandle { what: "var", index: y.index() }),
        }
        let d = node.shape.cols;
        let (mean, var) = tape.scratch(node, 2 * d).split_at(d);
        let m = self.config.momentum;
        let w = 1.0 - m;
        for (r, &b) in params.value_mut(self.running_mean)?.iter_mut().zip(mean) {
            *r = m * *r + w * b;
        }
        let n = node.shape.rows;
        // PyTorch: `running_var = (1 − momentum)·running_var + momentum·var·N/(N − 1)`, the
        // correction applied to the batch variance before the blend.
        let bessel = if self.config.unbiased_running_var && n > 1 { n as f32 / (n - 1) as f32 } else { 1.0 };
        for (r, &b) in params.value_mut(self.running_var)?.iter_mut().zip(var) {
            let b = if self.config.unbiased_running_var { b * bessel } else { b };
            *r = m * *r + w * b;
        }
        Ok(())
    }

    /// Number of features, checking that the four tensors are `1 × features` rows.
    fn features(&self, params: &Params) -> Result<usize> {
        let d = params.entry(self.gamma)?.shape.cols;
        for id in [self.gamma, self.beta, self.running_mean, self.running_var] {
            let s = params.entry(id)?.shape;
            if s != Shape::row(d) {
                return Err(Error::Shape { op: "batch_norm parameter", expected: Shape::row(d), found: s });
            }
        }
        Ok(d)
    }
}

impl Tape<'_> {
    /// Batch normalisation of `x: batch × features`. [`Mode::Train`]: batch statistics, and the
    /// running statistics in `params` are updated; [`Mode::Eval`]: running statistics.
    pub fn batch_norm(&mut self, x: Var, params: &mut Params, bn: &BatchNorm, mode: Mode) -> Result<Var> {
        bn.config.validate()?; // refused before the handle, as in `batch_norm_at`
        let y = self.batch_norm_at(self.check(x)?, params, bn, mode)?;
        if mode == Mode::Train {
            bn.update_running_at(self, y, params)?;
        }
        Ok(self.var(y))
    }

    /// [`batch_norm`](Self::batch_norm) without updating the running statistics (so it only
    /// needs `&Params`): for gradient checks, or to look at train-mode outputs without side effects.
    pub fn batch_norm_no_update(
        &mut self,
        x: Var,
        params: &Params,
        bn: &BatchNorm,
        mode: Mode,
    ) -> Result<Var> {
        bn.config.validate()?; // refused before the handle, as in `batch_norm_at`
        let y = self.batch_norm_at(self.check(x)?, params, bn, mode)?;
        Ok(self.var(y))
    }

    /// [`batch_norm_no_update`](Self::batch_norm_no_update) of node `x` (the core's own
    /// recording path).
    pub(crate) fn batch_norm_at(
        &mut self,
        x: NodeIndex,
        params: &Params,
        bn: &BatchNorm,
        mode: Mode,
    ) -> Result<NodeIndex> {
        bn.config.validate()?;
        let xn = self.node_at(x)?;
        let d = bn.features(params)?;
        let n = xn.shape.rows;
        if xn.shape.cols != d || n == 0 || d == 0 {
            return Err(Error::Shape {
                op: "batch_norm",
                expected: Shape::new(n.max(1), d),
                found: xn.shape,
            });
        }
        let eps = bn.config.eps;
        let batch_stats = mode == Mode::Train;
        let (gamma, beta) = (bn.gamma, bn.beta);
        let op =
            if batch_stats { Op::BatchNorm { x, gamma, beta } } else { Op::BatchNormEval { x, gamma, beta } };
        let (v, off) = self.push(op, xn.shape, BatchNorm::scratch_len(d), true)?;
        let (lo, out) = self.split_for_write(off);
        let x = &lo[xn.range()];
        let (y, stats) = out.split_at_mut(n * d);
        let (mean, rest) = stats.split_at_mut(d);
        let (var, eps_slot) = rest.split_at_mut(d);
        eps_slot[0] = eps;
        if batch_stats {
            // Column sums row by row (the canonical order), then divide: the book's mean.
            mean.fill(0.0);
            for row in x.chunks_exact(d) {
                for (m, &v) in mean.iter_mut().zip(row) {
                    *m += v;
                }
            }
            let inv = n as f32;
            for m in mean.iter_mut() {
                *m /= inv;
            }
            var.fill(0.0);
            for row in x.chunks_exact(d) {
                for ((s, &v), &m) in var.iter_mut().zip(row).zip(mean.iter()) {
                    let c = v - m;
                    *s += c * c;
                }
            }
            for s in var.iter_mut() {
                *s /= inv;
            }
        } else {
            mean.copy_from_slice(params.value(bn.running_mean)?);
            var.copy_from_slice(params.value(bn.running_var)?);
        }
        let (gamma, beta) = (params.value(bn.gamma)?, params.value(bn.beta)?);
        for (yrow, xrow) in y.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
            for j in 0..d {
                let std = libm::sqrtf(var[j] + eps);
                let xhat = (xrow[j] - mean[j]) / std;
                yrow[j] = gamma[j] * xhat + beta[j];
            }
        }
        Ok(v)
    }
}

pub(crate) fn backward(
    mut g: Grads,
    node: Node,
    x: NodeIndex,
    (gamma, beta): (ParamId, ParamId),
    batch_stats: bool,
    params: &mut Params,
) -> Result<()> {
    let xnode = g.node(x);
    let (n, d) = (node.shape.rows, node.shape.cols);
    let s = node.off + n * d;
    let vals = g.vals;
    let (xs, mean, var) = (&vals[xnode.range()], &vals[s..s + d], &vals[s + d..s + 2 * d]);
    let eps = vals[s + 2 * d];
    let (ge, be) = (params.entry(gamma)?, params.entry(beta)?);
    let (pv, pg, _) = params.split_mut();
    let gam = &pv[ge.range()];
    // dx is empty when x needs no gradient (batch norm straight on data).
    let (dy, dx) = g.out_and(node, x);
    let std = |j: usize| libm::sqrtf(var[j] + eps);

    // dβ = Σ dy and dγ = Σ x̂·dy, row by row.
    {
        let dbeta = &mut pg[be.range()];
        for row in dy.chunks_exact(d) {
            for (b, &v) in dbeta.iter_mut().zip(row) {
                *b += v;
            }
        }
    }
    {
        let dgamma = &mut pg[ge.range()];
        for (yrow, xrow) in dy.chunks_exact(d).zip(xs.chunks_exact(d)) {
            for j in 0..d {
                dgamma[j] += ((xrow[j] - mean[j]) / std(j)) * yrow[j];
            }
        }
    }
    if dx.is_empty() {
        return Ok(());
    }
    let nf = n as f32;
    let two_over_n = 2.0 / nf;
    // Feature by feature (each sum still runs over the rows in order), so no temporary is needed.
    for j in 0..d {
        let (sd, m, gj) = (std(j), mean[j], gam[j]);
        if !batch_stats {
            for i in 0..n {
                dx[i * d + j] += (gj * dy[i * d + j]) / sd;
            }
            continue;
        }
        let mut dstd_sum = 0.0f32;
        for i in 0..n {
            let xc = xs[i * d + j] - m;
            dstd_sum += ((gj * dy[i * d + j]) * xc) / (sd * sd);
        }
        let dvar = (0.5 * -dstd_sum) / sd;
        // dxc = dx̂/std + ((2/N)·xc)·dvar, recomputed identically in both passes.
        let dxc = |i: usize| (gj * dy[i * d + j]) / sd + (two_over_n * (xs[i * d + j] - m)) * dvar;
        let mut dmu = 0.0f32;
        for i in 0..n {
            dmu += dxc(i);
        }
        for i in 0..n {
            dx[i * d + j] += dxc(i) - dmu / nf;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{BatchNorm, BatchNormConfig};
    use crate::gradcheck::{GradcheckConfig, gradcheck};
    use crate::testutil::*;
    use crate::{Error, Mode, ParamKind, Shape};

    #[test]
    fn train_normalises_columns_and_updates_running_stats() {
        let mut s = Storage::new();
        let (mut tape, mut params) = s.split();
        let bn = BatchNorm::alloc(&mut params, 2, BatchNormConfig::STANDARD).unwrap();
        let x = tape.input(&[1.0, -2.0, 3.0, 2.0, 5.0, 6.0], Shape::new(3, 2)).unwrap();
        let y = tape.batch_norm(x, &mut params, &bn, Mode::Train).unwrap();
        let y = tape.value(y).unwrap();
        for j in 0..2 {
            let col: std::vec::Vec<f32> = (0..3).map(|i| y[i * 2 + j]).collect();
            let mean = col.iter().sum::<f32>() / 3.0;
            let var = col.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / 3.0;
            assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-4, "column {j}: {mean} {var}");
        }
        // means 3 and 2, biased variances 8/3 and 32/3, unbiased (× 3/2) 4 and 16
        let rm = params.value(bn.running_mean).unwrap();
        assert!((rm[0] - 0.3).abs() < 1e-6 && (rm[1] - 0.2).abs() < 1e-6);
        let rv = params.value(bn.running_var).unwrap();
        assert!((rv[0] - (0.9 + 0.1 * 4.0)).abs() < 1e-6, "{rv:?}");
        assert!((rv[1] - (0.9 + 0.1 * 16.0)).abs() < 1e-5, "{rv:?}");
    }

    /// The issue's case, worked by hand with PyTorch's documented update
    /// (`running_var ← (1 − 0.1)·running_var + 0.1·var_unbiased`): a batch of 8 rows 1…8 has mean
    /// 4.5, biased variance 42/8 = 5.25 and unbiased variance 42/7 = 6.
    #[test]
    fn running_variance_is_unbiased_in_the_standard_form_and_biased_in_the_book_form() {
        let x: std::vec::Vec<f32> = (1..=8).map(|v| v as f32).collect();
        for (config, want_var) in [
            (BatchNormConfig::STANDARD, 0.9 * 1.0 + 0.1 * 6.0),
            (BatchNormConfig::BOOK, 0.9 * 0.0 + 0.1 * 5.25),
            (BatchNormConfig { unbiased_running_var: true, ..BatchNormConfig::BOOK }, 0.1 * 6.0),
            (BatchNormConfig { unbiased_running_var: false, ..BatchNormConfig::STANDARD }, 0.9 + 0.1 * 5.25),
        ] {
            let mut s = Storage::new();
            let (mut tape, mut params) = s.split();
            let bn = BatchNorm::alloc(&mut params, 1, config).unwrap();
            let xv = tape.input(&x, Shape::new(8, 1)).unwrap();
            let y = tape.batch_norm(xv, &mut params, &bn, Mode::Train).unwrap();
            // The batch itself is normalised with the biased variance in both forms.
            let want_y0 = (1.0 - 4.5) / (5.25f32 + config.eps).sqrt();
            assert!((tape.value(y).unwrap()[0] - want_y0).abs() < 1e-6, "{config:?}");
            assert!((params.value(bn.running_mean).unwrap()[0] - 0.45).abs() < 1e-6);
            let rv = params.value(bn.running_var).unwrap()[0];
            assert!((rv - want_var).abs() < 1e-6, "{config:?}: running variance {rv}, want {want_var}");
            // Eval uses it: x = 4.5 → (4.5 − 0.45)/√(running_var + eps).
            let e = tape.input(&[4.5], Shape::new(1, 1)).unwrap();
            let ye = tape.batch_norm(e, &mut params, &bn, Mode::Eval).unwrap();
            let want = (4.5 - 0.45) / (want_var + config.eps).sqrt();
            assert!((tape.value(ye).unwrap()[0] - want).abs() < 1e-5, "{config:?}");
        }
        // A batch of one row: no unbiased variance, factor 1 (its variance is 0).
        let mut s = Storage::new();
        let (mut tape, mut params) = s.split();
        let bn = BatchNorm::alloc(&mut params, 1, BatchNormConfig::STANDARD).unwrap();
        let xv = tape.input(&[3.0], Shape::new(1, 1)).unwrap();
        tape.batch_norm(xv, &mut params, &bn, Mode::Train).unwrap();
        assert_eq!(params.value(bn.running_var).unwrap()[0], 0.9);
    }

    #[test]
    fn eval_uses_running_stats_and_leaves_them() {
        let mut s = Storage::new();
        let (mut tape, mut params) = s.split();
        let bn = BatchNorm::alloc(&mut params, 1, BatchNormConfig::STANDARD).unwrap();
        params.value_mut(bn.running_mean).unwrap()[0] = 2.0;
        params.value_mut(bn.running_var).unwrap()[0] = 4.0 - 1e-5;
        params.value_mut(bn.gamma).unwrap()[0] = 3.0;
        params.value_mut(bn.beta).unwrap()[0] = 1.0;
        let x = tape.input(&[2.0, 4.0], Shape::new(2, 1)).unwrap();
        let y = tape.batch_norm(x, &mut params, &bn, Mode::Eval).unwrap();
        assert_eq!(tape.value(y).unwrap(), &[1.0, 4.0]);
        assert_eq!(params.value(bn.running_mean).unwrap(), &[2.0]);
    }

    #[test]
    fn refuses_bad_shapes_and_config() {
        let mut s = Storage::new();
        let (mut tape, mut params) = s.split();
        let bn = BatchNorm::alloc(&mut params, 3, BatchNormConfig::BOOK).unwrap();
        let x = tape.input(&[0.0; 4], Shape::new(2, 2)).unwrap();
        assert!(matches!(tape.batch_norm(x, &mut params, &bn, Mode::Train), Err(Error::Shape { .. })));
        let x = tape.input(&[], Shape::new(0, 3)).unwrap();
        assert!(matches!(tape.batch_norm(x, &mut params, &bn, Mode::Train), Err(Error::Shape { .. })));
        let empty = BatchNorm::alloc(&mut params, 0, BatchNormConfig::BOOK).unwrap();
        let x = tape.input(&[], Shape::new(2, 0)).unwrap();
        assert!(matches!(tape.batch_norm(x, &mut params, &empty, Mode::Train), Err(Error::Shape { .. })));
        let bad = BatchNormConfig { eps: 0.0, ..BatchNormConfig::BOOK };
        assert!(matches!(BatchNorm::alloc(&mut params, 3, bad), Err(Error::InvalidArgument { .. })));
        let bad = BatchNormConfig { momentum: 1.5, ..BatchNormConfig::BOOK };
        assert!(matches!(BatchNorm::alloc(&mut params, 3, bad), Err(Error::InvalidArgument { .. })));
        assert_eq!(tape.nodes_used(), 3, "a refused op records nothing");
    }

    fn check(mode: Mode, n: usize, d: usize) -> f32 {
        let mut s = Storage::new();
        let (mut tape, mut params) = s.split();
        let x = params.alloc(Shape::new(n, d), ParamKind::Weight).unwrap();
        let bn = BatchNorm::alloc(&mut params, d, BatchNormConfig::BOOK).unwrap();
        params.value_mut(x).unwrap().copy_from_slice(&random_values(n * d, 0.0, 5));
        params.value_mut(bn.gamma).unwrap().copy_from_slice(&random_values(d, 0.3, 6));
        params.value_mut(bn.beta).unwrap().copy_from_slice(&random_values(d, 0.0, 7));
        params.value_mut(bn.running_mean).unwrap().copy_from_slice(&random_values(d, 0.0, 8));
        for v in params.value_mut(bn.running_var).unwrap() {
            *v = 0.5;
        }
        let weights = random_values(n * d, 0.0, 9);
        let cfg = GradcheckConfig { step: 1e-2, floor: 1e-2 };
        let r = gradcheck(&mut tape, &mut params, cfg, |t, p| {
            let xv = t.param(p, x)?;
            let y = t.batch_norm_no_update(xv, p, &bn, mode)?;
            let c = t.input(&weights, Shape::new(n, d))?;
            let prod = t.mul(y, c)?;
            if mode == Mode::Eval {
                return t.sum(prod);
            }
            // A weighted sum of a normalised column is insensitive to a shift of x; square it
            // so the gradient through the statistics is exercised.
            let sq = t.mul(prod, prod)?;
            t.sum(sq)
        })
        .unwrap();
        std::eprintln!(
            "gradcheck batch_norm {mode:?} {n}x{d}: worst rel error {:.2e} ({r:?})",
            r.worst_rel_error
        );
        assert!(r.worst_rel_error < 1e-2, "{r:?}");
        r.worst_rel_error
    }

    #[test]
    fn gradcheck_train_and_eval() {
        check(Mode::Train, 4, 3);
        check(Mode::Train, 6, 2);
        check(Mode::Eval, 3, 4);
    }
}
