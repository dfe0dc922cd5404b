//! The tape: a bump-allocated float arena and a list of plain op records, both caller-owned.
//!
//! Forward: every op appends one [`Node`] (the op and its operand handles) and reserves its
//! output (plus any scratch it needs) in the value arena. Backward: walk the nodes in reverse and
//! let each op add its contribution to its operands' gradients. That is the whole of reverse
//! mode; the rest is bookkeeping.
//!
//! Memory: one float arena holds values, bump-allocated from the front, and gradients,
//! bump-allocated from the back — and only for values that need one (something trainable is
//! upstream). Data inputs, op scratch (masks, statistics) and everything recorded while
//! gradients are switched off ([`Tape::set_grad_enabled`], for evaluation) cost their values only.
//!
//! ```
//! use staticgrad::{ParamKind, ParamStorage, Shape, TapeStorage};
//! let mut ps = ParamStorage::<8, 2>::new();
//! let mut params = ps.params();
//! let w = params.alloc(Shape::new(2, 1), ParamKind::Weight)?;
//! let b = params.alloc(Shape::row(1), ParamKind::Bias)?;
//! params.value_mut(w)?.copy_from_slice(&[0.5, -1.0]);
//!
//! let mut ts = TapeStorage::<64, 8>::new();
//! let mut tape = ts.tape();
//! let x = tape.input(&[1.0, 2.0], Shape::new(1, 2))?;
//! let y = tape.affine(x, &params, w, b)?;        // 0.5·1 − 1·2 + 0 = −1.5
//! let t = tape.input(&[0.5], Shape::SCALAR)?;
//! let loss = tape.mse(y, t)?;                     // (−1.5 − 0.5)² = 4
//! assert_eq!(tape.scalar(loss)?, 4.0);
//! params.zero_grad();
//! tape.backward(loss, &mut params)?;
//! assert_eq!(params.grad(w)?, &[-4.0, -8.0]);     // 2·(y − t)·x
//! tape.reset();
//! # Ok::<(), staticgrad::Error>(())
//! ```

use crate::error::{Error, Region, Result};
use crate::fused::{FusedChunk, FusedUpdate};
use crate::kernels::Rows;
use crate::ops;
use crate::params::{ParamId, Params};
use crate::shape::Shape;

/// Handle to a value on the tape: the index of the node that produced it, tagged with the tape
/// that made it and that tape's generation (bumped by [`Tape::reset`]). Every tape accessor and
/// op refuses, as [`Error::InvalidHandle`], a `Var` from another tape or from before a reset —
/// it would name some other value. (A tape is told apart by the address of its node storage;
/// a new [`Tape`] over storage an earlier one used continues that one's generations, so the
/// earlier `Var`s stay refused. Generations are 32-bit: only a `Var` kept over 2³² resets of
/// its tape could be taken for a new one.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Var {
    index: u32,
    generation: u32,
    tape: usize,
}

impl Var {
    /// Index of the producing node on its tape.
    pub const fn index(self) -> usize {
        self.index as usize
    }

    /// The operand reference an op record keeps (checked when the op was recorded).
    #[inline(always)]
    pub(crate) const fn at(self) -> NodeIndex {
        NodeIndex(self.index)
    }
}

/// An operand in an op record ([`Op`]): the index of the node that produced it on the same
/// tape. Checked when the op was recorded, so a record stays small (no tape tag).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeIndex(pub(crate) u32);

impl NodeIndex {
    /// Index of the producing node on its tape.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// `goff` of a node without a gradient.
const NO_GRAD: u32 = u32::MAX;

/// Forward-pass mode for ops that behave differently in training and evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Training: batch statistics, sampled dropout masks, running statistics updated.
    Train,
    /// Evaluation: running statistics, no dropout.
    Eval,
}

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

    #[inline(always)]
    pub(crate) const fn contains(self, kind: u32) -> bool {
        self.0 & kind != 0
    }

    /// The kernels' [`Rows`] hint for this set.
    #[inline(always)]
    pub(crate) const fn rows(self) -> Rows {
        if self.contains(OpSet::MANY_ROWS) { Rows::Any } else { Rows::One }
    }
}

/// What a node computed, with its operand handles. Plain data: no closures, no pointers.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Op {
    /// Data copied in by [`Tape::input`]; gets no gradient.
    Input,
    /// A parameter copied in by [`Tape::param`]; its gradient goes to the parameter store.
    Param(ParamId),
    /// `a · b` (matrix product).
    MatMul {
        /// Left operand, `m × k`.
        a: NodeIndex,
        /// Right operand, `k × n`.
        b: NodeIndex,
    },
    /// `x · W + b` with parameters read in place.
    Affine {
        /// Input, `batch × in`.
        x: NodeIndex,
        /// Weight, `in × out`.
        w: ParamId,
        /// Bias, `1 × out`.
        b: ParamId,
    },
    /// `a + b`; `b` may be a `1 × cols` row broadcast over the rows of `a`.
    Add {
        /// Left operand.
        a: NodeIndex,
        /// Right operand (same shape or a row).
        b: NodeIndex,
    },
    /// Element-wise `a ⊙ b`.
    Mul {
        /// Left operand.
        a: NodeIndex,
        /// Right operand, same shape.
        b: NodeIndex,
    },
    /// `k · a`.
    Scale {
        /// Operand.
        a: NodeIndex,
        /// Constant factor.
        k: f32,
    },
    /// `max(a, 0)`, with gradient 0 at 0 (as the book).
    Relu(NodeIndex),
    /// `1 / (1 + e^−a)`.
    Sigmoid(NodeIndex),
    /// `tanh a`.
    Tanh(NodeIndex),
    /// Fused softmax + cross-entropy with class-index labels, mean over the batch.
    SoftmaxCrossEntropy {
        /// Logits, `batch × classes`.
        logits: NodeIndex,
        /// Scratch offset of `(softmax − onehot) / batch`, the gradient for a unit upstream.
        dlogits: usize,
    },
    /// Mean squared error `Σ (a − t)² / n` over all elements.
    Mse {
        /// Prediction.
        a: NodeIndex,
        /// Target (no gradient).
        target: NodeIndex,
    },
    /// Sum of all elements.
    Sum(NodeIndex),
    /// Mean of all elements.
    Mean(NodeIndex),
    /// Train-mode batch normalisation (batch statistics); `μ`, `σ²` and `eps` sit in scratch
    /// right after the output.
    BatchNorm {
        /// Input, `batch × features`.
        x: NodeIndex,
        /// Scale γ.
        gamma: ParamId,
        /// Shift β.
        beta: ParamId,
    },
    /// Eval-mode batch normalisation (running statistics, constants for backward); scratch as
    /// for [`Op::BatchNorm`].
    BatchNormEval {
        /// Input, `batch × features`.
        x: NodeIndex,
        /// Scale γ.
        gamma: ParamId,
        /// Shift β.
        beta: ParamId,
    },
    /// Train-mode dropout; the keep-mask sits in scratch right after the output, as bits.
    Dropout {
        /// Input.
        x: NodeIndex,
        /// Factor applied to kept elements.
        scale: f32,
    },
}

/// One record of the tape: the op, where its output (and its gradient) lives and its shape.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Node {
    pub(crate) op: Op,
    pub(crate) off: usize,
    pub(crate) shape: Shape,
    /// Arena offset of the gradient, [`NO_GRAD`] for a node without one.
    pub(crate) goff: u32,
    /// The tape generation that recorded it (a new tape over this storage starts after it).
    pub(crate) generation: u32,
}

impl Node {
    /// An unused record (for initialising storage arrays).
    pub const EMPTY: Node =
        Node { op: Op::Input, off: 0, shape: Shape::new(0, 0), goff: NO_GRAD, generation: 0 };

    /// The op this node recorded.
    pub const fn op(&self) -> Op {
        self.op
    }

    /// Shape of the node's output.
    pub const fn shape(&self) -> Shape {
        self.shape
    }

    /// Offset of the node's output in the tape's float arena.
    pub const fn offset(&self) -> usize {
        self.off
    }

    /// Offset of the node's gradient in the tape's float arena, if it has one.
    pub const fn grad_offset(&self) -> Option<usize> {
        if self.needs_grad() { Some(self.goff as usize) } else { None }
    }

    /// True if some parameter is upstream of this node, so backward visits it.
    pub const fn needs_grad(&self) -> bool {
        self.goff != NO_GRAD
    }

    pub(crate) fn range(&self) -> core::ops::Range<usize> {
        self.off..self.off + self.shape.len()
    }

    /// Arena range of the gradient, if the node has one.
    pub(crate) fn grad_range(&self) -> Option<core::ops::Range<usize>> {
        let s = self.goff as usize;
        if self.needs_grad() { Some(s..s + self.shape.len()) } else { None }
    }
}

/// A reverse-mode tape over caller-owned storage.
///
/// `floats` holds values (from the front) and gradients of the values that need one (from the
/// back); `nodes` holds one record per op. Nothing is allocated; running out of either is an
/// [`Error::Capacity`].
#[derive(Debug)]
pub struct Tape<'a> {
    floats: &'a mut [f32],
    nodes: &'a mut [Node],
    /// Value floats in use, from the front.
    used: usize,
    /// Gradient floats in use, from the back.
    gused: usize,
    len: usize,
    grad_enabled: bool,
    /// Bumped by every reset: `Var`s carry it, so older ones are refused.
    generation: u32,
}

impl<'a> Tape<'a> {
    /// A tape over `floats` (values and gradients) and `nodes`, with gradients enabled.
    pub fn new(floats: &'a mut [f32], nodes: &'a mut [Node]) -> Self {
        // The first node of the storage holds the generation of the last one that recorded
        // anything there (each generation's first op lands on it): start after it, so a `Var` of
        // an earlier tape over this storage is refused here too.
        let generation = nodes.first().map_or(0, |n| n.generation).wrapping_add(1);
        Tape { floats, nodes, used: 0, gused: 0, len: 0, grad_enabled: true, generation }
    }

    /// Forgets every node and rewinds the arena: O(1), ready for the next step.
    /// Every [`Var`] handed out before becomes invalid: accessors and ops refuse it as
    /// [`Error::InvalidHandle`]. (Leaves [`grad_enabled`](Self::grad_enabled) as it is.)
    // Out of line: a step calls it in several places, and inlined copies tipped LLVM into
    // outlining parts of a firmware's fused step; a call costs a few instructions.
    #[inline(never)]
    pub fn reset(&mut self) {
        self.used = 0;
        self.gused = 0;
        self.len = 0;
        self.generation = self.generation.wrapping_add(1);
    }

    /// This tape's identity in its `Var`s: the address of its node storage (two live tapes
    /// cannot share it).
    #[inline(always)]
    fn id(&self) -> usize {
        self.nodes.as_ptr() as usize
    }

    /// The index of a caller's `v` on this tape: [`Error::InvalidHandle`] for a `Var` of another
    /// tape, from before the last [`reset`](Self::reset), or past the nodes recorded. The one
    /// check at the public boundary: the core's own paths (an MLP step, backward's walk) pass
    /// the [`NodeIndex`] they just recorded, so the check costs neither them nor the firmware.
    #[inline]
    pub(crate) fn check(&self, v: Var) -> Result<NodeIndex> {
        if v.generation == self.generation && v.tape == self.id() && v.index() < self.len {
            Ok(v.at())
        } else {
            Err(Error::InvalidHandle { what: "var", index: v.index() })
        }
    }

    /// The caller's handle of node `i`, recorded since the last reset (what a public op returns).
    #[inline(always)]
    pub(crate) fn var(&self, i: NodeIndex) -> Var {
        Var { index: i.0, generation: self.generation, tape: self.id() }
    }

    /// Switches gradient recording on or off (like `torch.no_grad`). While off, new nodes get no
    /// gradient and cost only their values: an evaluation pass needs about half the floats.
    pub fn set_grad_enabled(&mut self, enabled: bool) {
        self.grad_enabled = enabled;
    }

    /// Whether new nodes record gradients (the default).
    pub fn grad_enabled(&self) -> bool {
        self.grad_enabled
    }

    /// Floats in use: values plus gradients (what the planner's `tape_floats` counts).
    pub fn floats_used(&self) -> usize {
        self.used + self.gused
    }

    /// Nodes recorded since the last reset.
    pub fn nodes_used(&self) -> usize {
        self.len
    }

    /// The recorded nodes, oldest first.
    pub fn nodes(&self) -> &[Node] {
        self.nodes.get(..self.len).unwrap_or_default()
    }

    /// The node that produced `v`; [`Error::InvalidHandle`] for a `Var` of another tape, from
    /// before the last [`reset`](Self::reset), or past the nodes recorded.
    pub fn node(&self, v: Var) -> Result<Node> {
        self.node_at(self.check(v)?)
    }

    /// The node at `i` (an index the core recorded; refused past the nodes recorded).
    #[inline(always)]
    pub(crate) fn node_at(&self, i: NodeIndex) -> Result<Node> {
        self.nodes().get(i.index()).copied().ok_or(Error::InvalidHandle { what: "var", index: i.index() })
    }

    /// Shape of `v`.
    pub fn shape(&self, v: Var) -> Result<Shape> {
        Ok(self.node(v)?.shape)
    }

    /// Values of `v`, row-major.
    pub fn value(&self, v: Var) -> Result<&[f32]> {
        self.value_at(self.check(v)?)
    }

    /// [`value`](Self::value) of node `i`.
    pub(crate) fn value_at(&self, i: NodeIndex) -> Result<&[f32]> {
        let n = self.node_at(i)?;
        self.floats.get(n.range()).ok_or(Error::InvalidHandle { what: "var", index: i.index() })
    }

    /// Gradient of the last [`backward`](Self::backward) loss with respect to `v`. Values that
    /// need no gradient (data, or anything recorded with gradients off) have none:
    /// `Err(InvalidHandle { what: "var without gradient", .. })`.
    pub fn grad(&self, v: Var) -> Result<&[f32]> {
        let n = self.node(v)?;
        match n.grad_range() {
            Some(r) => self.floats.get(r).ok_or(Error::InvalidHandle { what: "var", index: v.index() }),
            None => Err(Error::InvalidHandle { what: "var without gradient", index: v.index() }),
        }
    }

    /// The single value of a `1 × 1` var (a loss).
    pub fn scalar(&self, v: Var) -> Result<f32> {
        self.scalar_at(self.check(v)?)
    }

    /// [`scalar`](Self::scalar) of node `i`.
    pub(crate) fn scalar_at(&self, i: NodeIndex) -> Result<f32> {
        let n = self.node_at(i)?;
        if n.shape != Shape::SCALAR {
            return Err(Error::Shape { op: "scalar", expected: Shape::SCALAR, found: n.shape });
        }
        self.floats.get(n.off).copied().ok_or(Error::InvalidHandle { what: "var", index: i.index() })
    }

    /// Copies `data` onto the tape as a `shape` value that receives no gradient.
    pub fn input(&mut self, data: &[f32], shape: Shape) -> Result<Var> {
        let v = self.input_at(data, shape)?;
        Ok(self.var(v))
    }

    /// [`input`](Self::input), returning the node's index.
    pub(crate) fn input_at(&mut self, data: &[f32], shape: Shape) -> Result<NodeIndex> {
        if data.len() != shape.len() {
            return Err(Error::Shape { op: "input", expected: shape, found: Shape::new(1, data.len()) });
        }
        let (v, off) = self.push(Op::Input, shape, 0, false)?;
        if let Some(out) = self.floats.get_mut(off..off + data.len()) {
            out.copy_from_slice(data); // reserved by `push`
        }
        Ok(v)
    }

    /// Copies parameter `id` onto the tape so any op can use it; backward sends its gradient
    /// to the parameter store. ([`affine`](Self::affine) reads parameters in place instead.)
    pub fn param(&mut self, params: &Params, id: ParamId) -> Result<Var> {
        let e = params.entry(id)?;
        let (v, off) = self.push(Op::Param(id), e.shape, 0, true)?;
        let value = params.value(id)?;
        if let Some(out) = self.floats.get_mut(off..off + value.len()) {
            out.copy_from_slice(value); // reserved by `push`
        }
        Ok(self.var(v))
    }

    /// The first `len` scratch floats of `node` (they start right after its output).
    pub(crate) fn scratch(&self, node: Node, len: usize) -> &[f32] {
        let s = node.off + node.shape.len();
        self.floats.get(s..s + len).unwrap_or_default()
    }

    /// Offset the next pushed node's output will get (so an op can record its scratch offset).
    pub(crate) fn next_offset(&self) -> usize {
        self.used
    }

    /// Reserves `shape.len() + scratch` value floats, `shape.len()` gradient floats if
    /// `needs_grad` (and gradients are enabled), and one node; returns the handle and the output
    /// offset. Scratch, if any, starts right after the output and has no gradient.
    pub(crate) fn push(
        &mut self,
        op: Op,
        shape: Shape,
        scratch: usize,
        needs_grad: bool,
    ) -> Result<(NodeIndex, usize)> {
        let needs_grad = needs_grad && self.grad_enabled;
        let end = self.used.saturating_add(shape.len().saturating_add(scratch));
        let gend = self.gused.saturating_add(if needs_grad { shape.len() } else { 0 });
        let total = end.saturating_add(gend);
        let cap = self.floats.len();
        if total > cap {
            return Err(Error::Capacity { region: Region::TapeFloats, needed: total, available: cap });
        }
        let goff = cap - gend;
        if goff >= NO_GRAD as usize {
            // Gradient offsets are stored as u32: an arena beyond 2³² floats is not usable.
            return Err(Error::Capacity {
                region: Region::TapeFloats,
                needed: total,
                available: u32::MAX as usize,
            });
        }
        if self.len >= self.nodes.len() || self.len >= u32::MAX as usize {
            return Err(Error::Capacity {
                region: Region::TapeNodes,
                needed: self.len + 1,
                available: self.nodes.len(),
            });
        }
        let off = self.used;
        if let Some(slot) = self.nodes.get_mut(self.len) {
            // `goff` is below NO_GRAD (checked above)
            let goff = if needs_grad { goff as u32 } else { NO_GRAD };
            *slot = Node { op, off, shape, goff, generation: self.generation };
        }
        let v = NodeIndex(self.len as u32); // below u32::MAX (checked above)
        self.len += 1;
        self.used = end;
        self.gused = gend;
        Ok((v, off))
    }

    /// The first `floats` floats of the arena as plain scratch, for a step that records no nodes
    /// ([`crate::direct`]); resets the tape. Refuses, as [`Error::Capacity`], storage smaller
    /// than `floats` floats or `nodes` nodes, so that such a step needs exactly what the recorded
    /// one would (the planner's promise holds for both).
    pub(crate) fn scratch_arena(&mut self, floats: usize, nodes: usize) -> Result<&mut [f32]> {
        self.reset();
        if nodes > self.nodes.len() {
            return Err(Error::Capacity {
                region: Region::TapeNodes,
                needed: nodes,
                available: self.nodes.len(),
            });
        }
        let available = self.floats.len();
        self.floats.get_mut(..floats).ok_or(Error::Capacity {
            region: Region::TapeFloats,
            needed: floats,
            available,
        })
    }

    /// Output values of the node just pushed (and its scratch) plus all values below it,
    /// read-only: what a forward kernel writes into and reads from.
    pub(crate) fn split_for_write(&mut self, off: usize) -> (&[f32], &mut [f32]) {
        // `off` is the offset `push` just returned, within the values in use.
        let used = self.floats.get_mut(..self.used).unwrap_or_default();
        let (lo, hi) = used.split_at_mut(off.min(used.len()));
        (lo, hi)
    }

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
    /// is an [`Error::Unsupported`]). Inlined with a constant set (an
    /// [`MlpSpec`](crate::mlp::MlpSpec) `const`'s ops), the other ops' backward code is left out
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
    /// wants ([`MlpSpec::gradient`](crate::mlp::MlpSpec::gradient) uses it).
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
    #[inline(always)]
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
        let ids = params.ids();
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
                    let g = self.grads_view();
                    ops::affine::backward_into(g, node, x, w, b, params, write, ops.rows())?;
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
        rule: &mut U,
        state: &mut [f32],
        lr: f32,
    ) -> Result<()> {
        let loss = self.check(loss)?;
        self.backward_fused_ops(loss, params, rule, state, lr, OpSet::ALL, false)
    }

    /// [`backward_fused`](Self::backward_fused) over a graph of the ops in `ops` only (see
    /// [`backward_ops`](Self::backward_ops)).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backward_fused_ops<U: FusedUpdate + ?Sized>(
        &mut self,
        loss: NodeIndex,
        params: &mut Params,
        rule: &mut U,
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
        rule.begin_step(lr)?;
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
                _ => self.backward_node(node, params, ops)?,
            }
        }
        Ok(())
    }

    /// What `backward` and `backward_overwrite` refuse before anything is touched: a loss that
    /// is not a finite `1 × 1` value, a parameter set without a gradient buffer, and (unless
    /// `recorded_with`, see [`backward_ops`](Self::backward_ops)) parameters other than the
    /// graph's.
    #[inline(always)]
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
            g.fill(0.0);
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
    #[inline(always)]
    fn backward_node(&mut self, node: Node, params: &mut Params, ops: OpSet) -> Result<()> {
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
            Op::Affine { x, w, b } => ops::affine::backward(g, node, x, w, b, params, ops.rows()),
            Op::Add { a, b } if has(OpSet::GRAPH) => ops::add::backward(g, node, a, b),
            Op::Mul { a, b } if has(OpSet::GRAPH) => ops::mul::backward(g, node, a, b),
            Op::Scale { a, k } if has(OpSet::GRAPH) => ops::scale::backward(g, node, a, k),
            Op::Relu(a) if has(OpSet::RELU) => ops::relu::backward(g, node, a),
            Op::Sigmoid(a) if has(OpSet::SIGMOID) => ops::sigmoid::backward(g, node, a),
            Op::Tanh(a) if has(OpSet::TANH) => ops::tanh::backward(g, node, a),
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
        Op::Affine { w, b, .. } => [Some(w), Some(b)],
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

/// Const-generic owned tape storage: `FLOATS` floats (values and gradients), `NODES` records.
///
/// ```
/// use staticgrad::TapeStorage;
/// let mut storage = TapeStorage::<1024, 16>::new();
/// let tape = storage.tape();
/// assert_eq!(tape.nodes_used(), 0);
/// ```
#[derive(Debug)]
pub struct TapeStorage<const FLOATS: usize, const NODES: usize> {
    /// The float arena (values from the front, gradients from the back).
    pub floats: [f32; FLOATS],
    /// The op records.
    pub nodes: [Node; NODES],
}

impl<const FLOATS: usize, const NODES: usize> TapeStorage<FLOATS, NODES> {
    /// Zeroed storage; `const` so it can initialise a `static`.
    pub const fn new() -> Self {
        TapeStorage { floats: [0.0; FLOATS], nodes: [Node::EMPTY; NODES] }
    }

    /// An empty tape over this storage.
    pub fn tape(&mut self) -> Tape<'_> {
        Tape::new(&mut self.floats, &mut self.nodes)
    }
}

impl<const FLOATS: usize, const NODES: usize> Default for TapeStorage<FLOATS, NODES> {
    fn default() -> Self {
        Self::new()
    }
}
