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

//!
//! One type over several files, by role (as smoltcp splits its `Interface`), each with its own
//! `impl Tape` block: this file holds the handles ([`Var`], [`NodeIndex`]), the op records
//! ([`Op`], [`Node`]), the [`Tape`] itself with its storage, reset, handle checks and accessors,
//! and [`TapeStorage`]; `record.rs` the forward half (pushing nodes, inputs, parameters, the
//! helpers the ops record with); `backward.rs` the reverse walks ([`Tape::backward`],
//! [`Tape::backward_overwrite`], [`Tape::backward_fused`]) and the view of the gradients an op's
//! backward gets. The ops themselves live one per file in [`crate::ops`].

mod backward;
mod record;

use crate::error::{Error, Region, Result};
use crate::parallel::Par;
#[cfg(feature = "parallel")]
use crate::parallel::Parallel;
use crate::params::ParamId;
use crate::shape::Shape;

pub(crate) use backward::{Grads, OpSet};

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
    #[cfg_attr(not(debug_assertions), inline(always))]
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
    /// 2-D convolution (cross-correlation, zero padding) of a batch of images, with weight and
    /// bias read in place; the geometry sits in scratch right after the output
    /// (see [`crate::ops::window`]).
    Conv2d {
        /// Input, `batch × (C·H·W)`.
        x: NodeIndex,
        /// Weight, `out × (C·kh·kw)`, i.e. `[out, C, kh, kw]` row-major.
        w: ParamId,
        /// Bias, `1 × out`.
        b: ParamId,
    },
    /// 2-D max pooling; geometry in scratch as for [`Op::Conv2d`].
    MaxPool2d(NodeIndex),
    /// 2-D average pooling (global average pooling included); geometry in scratch as for
    /// [`Op::Conv2d`].
    AvgPool2d(NodeIndex),
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
///
/// With the `parallel` feature, a caller's [thread pool](crate::parallel) can share its ops'
/// work ([`with_parallel`](Tape::with_parallel)); that never changes a bit of the results.
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
    /// Who runs the products' chunks (the calling thread unless `with_parallel` said otherwise).
    par: Par<'a>,
}

impl<'a> Tape<'a> {
    /// A tape over `floats` (values and gradients) and `nodes`, with gradients enabled, running
    /// everything on the calling thread.
    pub fn new(floats: &'a mut [f32], nodes: &'a mut [Node]) -> Self {
        // The first node of the storage holds the generation of the last one that recorded
        // anything there (each generation's first op lands on it): start after it, so a `Var` of
        // an earlier tape over this storage is refused here too.
        let generation = nodes.first().map_or(0, |n| n.generation).wrapping_add(1);
        Tape {
            floats,
            nodes,
            used: 0,
            gused: 0,
            len: 0,
            grad_enabled: true,
            generation,
            par: Par::SEQUENTIAL,
        }
    }
}

impl<'a> Tape<'a> {
    /// This tape with its products' output rows shared among `par`'s workers. The results are
    /// the same bits for every driver (only outputs are split, each element is summed by one
    /// worker in the canonical order; see [`parallel`](crate::parallel)). Recorded nodes and
    /// `Var`s stay valid.
    ///
    /// ```
    /// use staticgrad::{Shape, TapeStorage, parallel::Sequential};
    /// let mut storage = TapeStorage::<64, 4>::new();
    /// let mut tape = storage.tape().with_parallel(&Sequential);
    /// let x = tape.input(&[1.0, 2.0], Shape::new(1, 2))?;
    /// assert_eq!(tape.value(x)?, &[1.0, 2.0]);
    /// # Ok::<(), staticgrad::Error>(())
    /// ```
    #[cfg(feature = "parallel")]
    pub fn with_parallel(mut self, par: &'a dyn Parallel) -> Self {
        self.par = Par::new(par);
        self
    }

    /// The parallel driver.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn parallel(&self) -> Par<'a> {
        self.par
    }

    /// Forgets every node and rewinds the arena: O(1), ready for the next step.
    /// Every [`Var`] handed out before becomes invalid: accessors and ops refuse it as
    /// [`Error::InvalidHandle`]. (Leaves [`grad_enabled`](Self::grad_enabled) as it is.)
    // Out of line: a step calls it in several places, and inlined copies tipped LLVM into
    // outlining parts of a firmware's fused step; a call costs a few instructions.
    #[inline(never)]
    pub fn reset(&mut self) {
        self.clear();
    }

    /// [`reset`](Self::reset) inlined, for the direct path's scratch (the whole of its tape
    /// use): a call would take the tape's address, and a local whose address escapes is kept in
    /// memory and copied in and out of the trainer at every step.
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn clear(&mut self) {
        self.used = 0;
        self.gused = 0;
        self.len = 0;
        self.generation = self.generation.wrapping_add(1);
    }

    /// This tape's identity in its `Var`s: the address of its node storage (two live tapes
    /// cannot share it).
    #[cfg_attr(not(debug_assertions), inline(always))]
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
    #[cfg_attr(not(debug_assertions), inline(always))]
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
    #[cfg_attr(not(debug_assertions), inline(always))]
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

    /// The first `floats` floats of the arena as plain scratch, for a step that records no nodes
    /// ([`StepPath::Direct`](crate::model::StepPath::Direct)); resets the tape. Refuses, as [`Error::Capacity`], storage smaller
    /// than `floats` floats or `nodes` nodes, so that such a step needs exactly what the recorded
    /// one would (the planner's promise holds for both).
    pub(crate) fn scratch_arena(&mut self, floats: usize, nodes: usize) -> Result<&mut [f32]> {
        self.clear();
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
