//! Reverse mode, the backward half of the tape: [`Tape::backward`] (gradients added to the
//! parameters' buffer), [`Tape::backward_overwrite`] (written where one affine layer is the
//! only reader) and [`Tape::backward_fused`] (each parameter updated as soon as its gradient is
//! complete), with the checks they share, the walk over the nodes that hands each node to its
//! op's backward, and [`Grads`], the view of the arena an op's backward works on.

use super::{Node, NodeIndex, Op, Tape, Var};
use crate::error::{Error, Region, Result};
use crate::fused::{FusedChunk, FusedUpdate};
use crate::kernels::Rows;
use crate::ops;
use crate::ops::window::Geometry;
use crate::params::{ParamId, Params};
use crate::shape::Shape;

/// The kinds of op a backward walk may meet, one bit each ([`Tape::backward`] allows all).
/// Affine, inputs and parameters are always allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OpSet(pub(crate) u32);

impl OpSet {
    pub(crate) const ALL: OpSet = OpSet(u32::MAX);
    /// The general graph ops: matmul, add, mul, scale, sum, mean.
    pub(crate) const GRAPH: u32 = 1;
    pub(crate) const RELU: u32 = 1 << 1;
    pub(crate) const SIGMOID: u32 = 1 << 2;
    pub(crate) const TANH: u32 = 1 << 3;
    pub(crate) const SOFTMAX_CE: u32 = 1 << 4;
    pub(crate) const MSE: u32 = 1 << 5;
    pub(crate) const BATCH_NORM: u32 = 1 << 6;
    pub(crate) const DROPOUT: u32 = 1 << 7;
    /// Batches of more than one row (without it: batch 1, [`Rows::One`]).
    pub(crate) const MANY_ROWS: u32 = 1 << 8;
    pub(crate) const CONV2D: u32 = 1 << 9;
    pub(crate) const MAX_POOL2D: u32 = 1 << 10;
    pub(crate) const AVG_POOL2D: u32 = 1 << 11;

    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) const fn contains(self, kind: u32) -> bool {
        self.0 & kind != 0
    }

    /// The kernels' [`Rows`] hint for this set.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) const fn rows(self) -> Rows {
        if self.contains(OpSet::MANY_ROWS) { Rows::Any } else { Rows::One }
    }
}

impl Tape<'_> {
    /// Runs reverse mode from the `1 × 1` value `loss`: gradients of tape values are recomputed
    /// from zero, gradients of parameters are **added** to `params`' gradient buffer (call
    /// [`Params::zero_grad`] first unless accumulating on purpose).
    ///
    /// A non-finite loss is refused before anything is touched.
    pub fn backward(&mut self, loss: Var, params: &mut Params) -> Result<()> {
        let loss = self.check(loss)?;
        self.backward_ops(loss, params, OpSet::ALL, false)
    }

    /// [`backward`](Self::backward) over a graph made of the ops in `ops` only (meeting another
    /// is an [`Error::Unsupported`]). Inlined with a constant set (a
    /// [`Model`](crate::model::Model) `const`'s ops), the other ops' backward code is left out
    /// of the binary: a firmware then carries the backward of its own model only.
    ///
    /// `recorded_with` says that the caller recorded the graph with this very `params` in this
    /// step (an MLP step holding `&mut Params` throughout): the ops checked the parameter shapes
    /// then, so [`check_params`](Self::check_params) is skipped.
    #[inline]
    pub(crate) fn backward_ops(
        &mut self,
        loss: NodeIndex,
        params: &mut Params,
        ops: OpSet,
        recorded_with: bool,
    ) -> Result<()> {
        self.check_backward(loss, params, recorded_with)?;
        if !self.seed_gradients(loss)? {
            return Ok(()); // nothing trainable upstream of the loss
        }
        for i in (0..=loss.index()).rev() {
            let Some(&node) = self.nodes.get(i) else { break };
            if node.needs_grad() {
                self.backward_node(node, params, ops)?;
            }
        }
        Ok(())
    }

    /// [`Params::zero_grad`] then [`backward`](Self::backward), bit for bit, with less work: a
    /// parameter that exactly one affine layer reads gets its gradient **written** by that layer
    /// (`0.0 + Σ…`, the same additions in the same order) instead of added to a zeroed buffer, so
    /// its part of the buffer is neither zeroed first nor read back. Every other parameter's
    /// gradient is zeroed and accumulated as usual. What a training step with a gradient buffer
    /// wants ([`Model::gradient`](crate::model::Model::gradient) uses it).
    ///
    /// Refuses what `backward` refuses, before anything is touched.
    ///
    /// ```
    /// # use staticgrad::{ParamKind, ParamStorage, Shape, TapeStorage};
    /// # let mut ps = ParamStorage::<8, 2>::new();
    /// # let mut params = ps.params();
    /// # let w = params.alloc(Shape::new(2, 1), ParamKind::Weight)?;
    /// # let b = params.alloc(Shape::row(1), ParamKind::Bias)?;
    /// # params.value_mut(w)?.copy_from_slice(&[0.5, -1.0]);
    /// # let mut ts = TapeStorage::<64, 8>::new();
    /// # let mut tape = ts.tape();
    /// let x = tape.input(&[1.0, 2.0], Shape::new(1, 2))?;
    /// let y = tape.affine(x, &params, w, b)?;
    /// let t = tape.input(&[0.5], Shape::SCALAR)?;
    /// let loss = tape.mse(y, t)?;
    /// params.grads_mut().fill(f32::NAN); // whatever was there
    /// tape.backward_overwrite(loss, &mut params)?;
    /// assert_eq!(params.grad(w)?, &[-4.0, -8.0]);
    /// assert_eq!(params.grad(b)?, &[-4.0]);
    /// # Ok::<(), staticgrad::Error>(())
    /// ```
    pub fn backward_overwrite(&mut self, loss: Var, params: &mut Params) -> Result<()> {
        let loss = self.check(loss)?;
        self.backward_overwrite_ops(loss, params, OpSet::ALL, false)
    }

    /// [`backward_overwrite`](Self::backward_overwrite) over a graph of the ops in `ops` only
    /// (see [`backward_ops`](Self::backward_ops)).
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn backward_overwrite_ops(
        &mut self,
        loss: NodeIndex,
        params: &mut Params,
        ops: OpSet,
        recorded_with: bool,
    ) -> Result<()> {
        self.check_backward(loss, params, recorded_with)?;
        let seeded = self.node_at(loss)?.needs_grad();
        let written =
            if seeded { written_by_affine(self.nodes.get(..=loss.index()).unwrap_or_default()) } else { 0 };
        let writes = |id: ParamId| id.index() < 64 && written & (1 << id.index()) != 0;
        let ids = params.ids().skip(params.frozen_tensors()); // `split_mut`'s rows: the trainable ones
        let (_, grads, table) = params.split_mut();
        for (id, e) in ids.zip(table) {
            if !writes(id) {
                if let Some(g) = grads.get_mut(e.range()) {
                    g.fill(0.0);
                }
            }
        }
        if !self.seed_gradients(loss)? {
            return Ok(()); // nothing trainable upstream of the loss: all zeroed above
        }
        for i in (0..=loss.index()).rev() {
            let Some(&node) = self.nodes.get(i) else { break };
            if !node.needs_grad() {
                continue;
            }
            match node.op {
                Op::Affine { x, w, b } => {
                    let write = [writes(w), writes(b)];
                    let par = self.par;
                    let g = self.grads_view();
                    ops::affine::backward_into(&par, g, node, x, w, b, params, write, ops.rows())?;
                }
                _ => self.backward_node(node, params, ops)?,
            }
        }
        Ok(())
    }

    /// Reverse mode with the **fused update** (see [`crate::fused`]): like
    /// [`backward`](Self::backward), but each parameter tensor is updated by `rule` (with its
    /// `state` and `lr`) as soon as its gradient is complete, so no gradient buffer is needed.
    /// Bit-identical to `zero_grad` + `backward` + the same element-wise step.
    ///
    /// `params` is normally made by [`Params::fused`]; a set with a gradient buffer also works,
    /// the buffer then serving as scratch (its contents are unspecified afterwards).
    ///
    /// Refused before anything is touched: what [`backward`](Self::backward) refuses, a
    /// parameter used by two nodes ([`Error::Unsupported`]: its gradient would be complete only
    /// at the last use), batch norm's γ and β (not updated fused yet), and whatever
    /// `rule.begin_step` refuses (e.g. global-norm clipping).
    pub fn backward_fused<U: FusedUpdate + ?Sized>(
        &mut self,
        loss: Var,
        params: &mut Params,
        rule: &U,
        state: &mut [f32],
        lr: f32,
    ) -> Result<()> {
        let loss = self.check(loss)?;
        self.backward_fused_ops(loss, params, rule, state, lr, OpSet::ALL, false)
    }

    /// [`backward_fused`](Self::backward_fused) over a graph of the ops in `ops` only (see
    /// [`backward_ops`](Self::backward_ops)).
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backward_fused_ops<U: FusedUpdate + ?Sized>(
        &mut self,
        loss: NodeIndex,
        params: &mut Params,
        rule: &U,
        state: &mut [f32],
        lr: f32,
        ops: OpSet,
        recorded_with: bool,
    ) -> Result<()> {
        self.check_loss(loss, "backward_fused")?;
        if !recorded_with {
            self.check_params(loss, params)?;
        }
        let walked = self.nodes.get(..=loss.index()).unwrap_or_default();
        for (i, node) in walked.iter().enumerate() {
            if let Op::BatchNorm { .. } | Op::BatchNormEval { .. } = node.op {
                if node.needs_grad() {
                    return Err(Error::Unsupported { what: "fused update of batch-norm parameters" });
                }
            }
            for id in param_refs(node.op).into_iter().flatten() {
                let earlier = walked.get(..i).unwrap_or_default();
                if earlier.iter().any(|e| param_refs(e.op).contains(&Some(id))) {
                    return Err(Error::Unsupported { what: "fused update of a parameter used by two nodes" });
                }
            }
        }
        rule.begin_step(state, lr)?;
        if !self.seed_gradients(loss)? {
            return Ok(()); // nothing trainable upstream of the loss
        }
        for i in (0..=loss.index()).rev() {
            let Some(&node) = self.nodes.get(i) else { break };
            if !node.needs_grad() {
                continue;
            }
            match node.op {
                Op::Param(id) => {
                    let e = params.entry(id)?;
                    if e.kind.trainable() {
                        let (pv, _, _) = params.split_fused();
                        let mut g = self.grads_view();
                        let at = FusedChunk { entry: e, start: 0 };
                        let pv = pv.get_mut(e.range()).unwrap_or_default();
                        rule.update(at, pv, g.out_mut(node), state, lr)?;
                    }
                }
                Op::Affine { x, w, b } => {
                    let g = self.grads_view();
                    ops::affine::backward_fused(g, node, x, w, b, params, rule, state, lr, ops.rows())?;
                }
                Op::Conv2d { x, w, b } if ops.contains(OpSet::CONV2D) => {
                    let g = self.grads_view();
                    ops::conv2d::backward_fused(g, node, x, w, b, params, rule, state, lr)?;
                }
                _ => self.backward_node(node, params, ops)?,
            }
        }
        Ok(())
    }

    /// What `backward` and `backward_overwrite` refuse before anything is touched: a loss that
    /// is not a finite `1 × 1` value, a parameter set without a gradient buffer, and (unless
    /// `recorded_with`, see [`backward_ops`](Self::backward_ops)) parameters other than the
    /// graph's.
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn check_backward(&self, loss: NodeIndex, params: &Params, recorded_with: bool) -> Result<()> {
        self.check_loss(loss, "backward")?;
        if params.is_fused() {
            let needed = params.len();
            return Err(Error::Capacity { region: Region::ParamGrads, needed, available: 0 });
        }
        if !recorded_with {
            self.check_params(loss, params)?;
        }
        Ok(())
    }

    /// Refuses a loss that is not a finite `1 × 1` value (`op` names the caller in the error).
    pub(crate) fn check_loss(&self, loss: NodeIndex, op: &'static str) -> Result<()> {
        let n = self.node_at(loss)?;
        if n.shape != Shape::SCALAR {
            return Err(Error::Shape { op, expected: Shape::SCALAR, found: n.shape });
        }
        if !self.floats.get(n.off).is_some_and(|l| l.is_finite()) {
            return Err(Error::NonFinite { what: "loss", index: 0 });
        }
        Ok(())
    }

    /// Refuses, before any gradient is touched, a parameter set other than the one the nodes up to
    /// `loss` were recorded with: every parameter they read must exist with the recorded shape
    /// (op backwards index the parameter buffers by those shapes).
    pub(crate) fn check_params(&self, loss: NodeIndex, params: &Params) -> Result<()> {
        let check = |id: ParamId, expected: Shape| {
            let found = params.entry(id)?.shape;
            if found == expected {
                Ok(())
            } else {
                Err(Error::Shape { op: "backward params", expected, found })
            }
        };
        for node in self.nodes.get(..=loss.index()).unwrap_or_default() {
            match node.op {
                Op::Param(id) => check(id, node.shape)?,
                Op::Affine { x, w, b } => {
                    let k = self.nodes().get(x.index()).map_or(0, |n| n.shape.cols); // recorded below it
                    check(w, Shape::new(k, node.shape.cols))?;
                    check(b, Shape::row(node.shape.cols))?;
                }
                Op::BatchNorm { gamma, beta, .. } | Op::BatchNormEval { gamma, beta, .. } => {
                    check(gamma, Shape::row(node.shape.cols))?;
                    check(beta, Shape::row(node.shape.cols))?;
                }
                Op::Conv2d { w, b, .. } => {
                    let g = Geometry::load(self.floats.get(..self.used).unwrap_or_default(), *node);
                    let out = g.oh.saturating_mul(g.ow).max(1);
                    let o = node.shape.cols / out; // recorded as out·OH·OW: exact
                    check(w, Shape::new(o, g.c.saturating_mul(g.kh).saturating_mul(g.kw)))?;
                    check(b, Shape::row(o))?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Zeroes every tape gradient and sets d loss/d loss = 1. Returns false (and touches
    /// nothing) if the loss has no gradient, i.e. nothing trainable is upstream.
    pub(crate) fn seed_gradients(&mut self, loss: NodeIndex) -> Result<bool> {
        let Some(seed) = self.node_at(loss)?.grad_range() else {
            return Ok(false);
        };
        let base = self.floats.len() - self.gused;
        if let Some(g) = self.floats.get_mut(base..) {
            crate::kernels::zero_par(&self.par, g);
        }
        if let Some(s) = self.floats.get_mut(seed.start) {
            *s = 1.0;
        }
        Ok(true)
    }

    /// The backward view of the arena: values, gradients, nodes.
    pub(crate) fn grads_view(&mut self) -> Grads<'_> {
        let base = self.floats.len() - self.gused;
        let (front, back) = self.floats.split_at_mut(base.min(self.floats.len()));
        let vals = front.get(..self.used).unwrap_or_default();
        Grads { vals, grads: back, base, nodes: self.nodes.get(..self.len).unwrap_or_default() }
    }

    // Always inlined, so that a constant `ops` leaves only its own arms.
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn backward_node(&mut self, node: Node, params: &mut Params, ops: OpSet) -> Result<()> {
        let par = self.par;
        let g = self.grads_view();
        let has = |kind| ops.contains(kind);
        match node.op {
            Op::Input => Ok(()),
            Op::Param(id) => {
                let (_, pg) = params.value_and_grad_mut(id)?;
                for (p, d) in pg.iter_mut().zip(g.out(node)) {
                    *p += *d;
                }
                Ok(())
            }
            Op::MatMul { a, b } if has(OpSet::GRAPH) => ops::matmul::backward(g, node, a, b),
            Op::Affine { x, w, b } => ops::affine::backward(&par, g, node, x, w, b, params, ops.rows()),
            Op::Add { a, b } if has(OpSet::GRAPH) => ops::add::backward(g, node, a, b),
            Op::Mul { a, b } if has(OpSet::GRAPH) => ops::mul::backward(g, node, a, b),
            Op::Scale { a, k } if has(OpSet::GRAPH) => ops::scale::backward(g, node, a, k),
            Op::Relu(a) if has(OpSet::RELU) => ops::relu::backward(&par, g, node, a),
            Op::Sigmoid(a) if has(OpSet::SIGMOID) => ops::sigmoid::backward(&par, g, node, a),
            Op::Tanh(a) if has(OpSet::TANH) => ops::tanh::backward(&par, g, node, a),
            Op::SoftmaxCrossEntropy { logits, dlogits } if has(OpSet::SOFTMAX_CE) => {
                ops::softmax_cross_entropy::backward(g, node, logits, dlogits)
            }
            Op::Mse { a, target } if has(OpSet::MSE) => ops::mse::backward(g, node, a, target),
            Op::Sum(a) if has(OpSet::GRAPH) => ops::sum::backward(g, node, a),
            Op::Mean(a) if has(OpSet::GRAPH) => ops::mean::backward(g, node, a),
            Op::BatchNorm { x, gamma, beta } if has(OpSet::BATCH_NORM) => {
                ops::batchnorm::backward(g, node, x, (gamma, beta), true, params)
            }
            Op::BatchNormEval { x, gamma, beta } if has(OpSet::BATCH_NORM) => {
                ops::batchnorm::backward(g, node, x, (gamma, beta), false, params)
            }
            Op::Dropout { x, scale } if has(OpSet::DROPOUT) => ops::dropout::backward(g, node, x, scale),
            Op::Conv2d { x, w, b } if has(OpSet::CONV2D) => {
                ops::conv2d::backward(&par, g, node, x, w, b, params)
            }
            Op::MaxPool2d(x) if has(OpSet::MAX_POOL2D) => ops::max_pool2d::backward(&par, g, node, x),
            Op::AvgPool2d(x) if has(OpSet::AVG_POOL2D) => ops::avg_pool2d::backward(&par, g, node, x),
            _ => Err(Error::Unsupported { what: "backward of an op outside the graph's op set" }),
        }
    }
}

/// The parameters (of the first 64) that the nodes `walked` read exactly once, by an affine node
/// that backward visits, as a bit set: [`Tape::backward_overwrite`] lets that node write their
/// gradients. One pass over the nodes.
fn written_by_affine(walked: &[Node]) -> u64 {
    let (mut seen, mut other) = (0u64, 0u64);
    for n in walked {
        let by_affine = n.needs_grad() && matches!(n.op, Op::Affine { .. });
        for id in param_refs(n.op).into_iter().flatten() {
            let bit = if id.index() < 64 { 1u64 << id.index() } else { 0 };
            // A second read, or a read by anything else, rules the tensor out.
            if seen & bit != 0 || !by_affine {
                other |= bit;
            }
            seen |= bit;
        }
    }
    seen & !other
}

/// The parameters an op reads (for the fused update's one-use check).
fn param_refs(op: Op) -> [Option<ParamId>; 2] {
    match op {
        Op::Param(id) => [Some(id), None],
        Op::Affine { w, b, .. } | Op::Conv2d { w, b, .. } => [Some(w), Some(b)],
        Op::BatchNorm { gamma, beta, .. } | Op::BatchNormEval { gamma, beta, .. } => {
            [Some(gamma), Some(beta)]
        }
        _ => [None, None],
    }
}

/// What an op's backward sees: all values (read-only), all gradients of tape values (writable;
/// arena offset `base` is index 0) and the node list to find operands. Operands were recorded
/// before the node being visited, so their gradients sit above its gradient.
pub(crate) struct Grads<'t> {
    pub(crate) vals: &'t [f32],
    pub(crate) grads: &'t mut [f32],
    pub(crate) base: usize,
    pub(crate) nodes: &'t [Node],
}

impl Grads<'_> {
    /// The operand's node (handles were validated when the op was recorded).
    pub(crate) fn node(&self, v: NodeIndex) -> Node {
        self.nodes.get(v.index()).copied().unwrap_or(Node::EMPTY)
    }

    /// Index range of `node`'s gradient in `grads` (the node must need a gradient).
    fn range_of(&self, node: Node) -> core::ops::Range<usize> {
        let s = node.goff as usize - self.base;
        s..s + node.shape.len()
    }

    /// The upstream gradient of `node`.
    pub(crate) fn out(&self, node: Node) -> &[f32] {
        self.grads.get(self.range_of(node)).unwrap_or_default()
    }

    /// The upstream gradient of `node`, writable (a fused update may clip it in place).
    pub(crate) fn out_mut(&mut self, node: Node) -> &mut [f32] {
        let r = self.range_of(node);
        self.grads.get_mut(r).unwrap_or_default()
    }

    /// The upstream gradient of `node` and the writable gradient of operand `v` — empty if `v`
    /// needs no gradient (a data input).
    pub(crate) fn out_and(&mut self, node: Node, v: NodeIndex) -> (&[f32], &mut [f32]) {
        let vn = self.node(v);
        let r = self.range_of(node);
        if !vn.needs_grad() {
            return (self.grads.get(r).unwrap_or_default(), &mut []);
        }
        // Operands were recorded first, so their gradients sit above the node's.
        let rv = self.range_of(vn);
        let (lo, hi) = self.grads.split_at_mut(rv.start.min(self.grads.len()));
        (lo.get(r).unwrap_or_default(), hi.get_mut(..rv.len()).unwrap_or_default())
    }
}
