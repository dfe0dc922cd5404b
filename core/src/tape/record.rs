//! Recording, the forward half of the tape: every op appends one [`Node`] and reserves its
//! output (plus any scratch) in the value arena — and a gradient at the back of the arena if
//! something trainable is upstream and gradients are enabled. Here: data inputs, parameters
//! copied onto the tape, and the helpers the ops in [`crate::ops`] record with (`push`, the
//! offset of the next output, scratch, the split of the arena a forward kernel writes into).

use super::{NO_GRAD, Node, NodeIndex, Op, Tape, Var};
use crate::error::{Error, Region, Result};
use crate::params::{ParamId, Params};
use crate::shape::Shape;

impl Tape<'_> {
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

    /// A `shape` input that receives no gradient, written in place by `fill`, which gets it
    /// zeroed (what it leaves unwritten is 0): an example held once, on the tape, rather than
    /// built in a buffer of the caller's and copied ([`input`](Self::input)).
    ///
    /// ```
    /// use staticgrad::{Shape, TapeStorage};
    /// let mut storage = TapeStorage::<16, 2>::new();
    /// let mut tape = storage.tape();
    /// let pixels = [0u8, 128, 255];
    /// let x = tape.input_with(Shape::new(1, 3), |x| {
    ///     for (x, &p) in x.iter_mut().zip(&pixels) {
    ///         *x = p as f32 / 255.0;
    ///     }
    /// })?;
    /// assert_eq!(tape.value(x)?, &[0.0, 128.0 / 255.0, 1.0]);
    /// # Ok::<(), staticgrad::Error>(())
    /// ```
    pub fn input_with(&mut self, shape: Shape, fill: impl FnOnce(&mut [f32])) -> Result<Var> {
        let v = self.input_with_at(shape, |slot| {
            slot.fill(0.0);
            fill(slot)
        })?;
        Ok(self.var(v))
    }

    /// An input node of `shape` whose values `fill` writes as they are (not zeroed first: the
    /// core's callers zero them), returning the node's index.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn input_with_at(&mut self, shape: Shape, fill: impl FnOnce(&mut [f32])) -> Result<NodeIndex> {
        let (v, off) = self.push(Op::Input, shape, 0, false)?;
        if let Some(slot) = self.floats.get_mut(off..off + shape.len()) {
            fill(slot); // reserved by `push`
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

    /// Output values of the node just pushed (and its scratch) plus all values below it,
    /// read-only: what a forward kernel writes into and reads from.
    pub(crate) fn split_for_write(&mut self, off: usize) -> (&[f32], &mut [f32]) {
        // `off` is the offset `push` just returned, within the values in use.
        let used = self.floats.get_mut(..self.used).unwrap_or_default();
        let (lo, hi) = used.split_at_mut(off.min(used.len()));
        (lo, hi)
    }
}
