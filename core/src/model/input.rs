//! The example a step or an evaluation reads: a caller's slice, copied onto the tape as its
//! input node, or a [`Fill`] that writes the example straight into that node
//! ([`Trainer::step_with`](crate::Trainer::step_with)), so that it is held once. The step and
//! evaluation internals are generic over the two ([`Example`]): one path, the slice's compiled
//! exactly as before.

use super::Model;
use crate::error::{Error, Region, Result};
use crate::shape::Shape;
use crate::tape::{NodeIndex, Tape};

/// Where a step's example comes from.
pub(crate) trait Example {
    /// Rows of the example for `model` (whole rows of its inputs; at least one).
    fn rows(&self, model: &Model) -> Result<usize>;

    /// The example as the tape's input node of `shape` (`rows × inputs`).
    fn record(self, tape: &mut Tape<'_>, shape: Shape) -> Result<NodeIndex>;

    /// Floats the example takes in the direct path's arena (`inputs` per row).
    fn arena_floats(&self, inputs: usize) -> usize;

    /// For the direct path, which reads the example as a slice beside its scratch: the scratch
    /// and the example. A slice stays where it is and leaves `arena` whole; a fill is written
    /// into the arena's last [`arena_floats`](Self::arena_floats), which are then not scratch.
    fn place<'a>(self, arena: &'a mut [f32], inputs: usize) -> Result<(&'a mut [f32], &'a [f32])>
    where
        Self: 'a;
}

impl Example for &[f32] {
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn rows(&self, model: &Model) -> Result<usize> {
        model.rows(self)
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    fn record(self, tape: &mut Tape<'_>, shape: Shape) -> Result<NodeIndex> {
        tape.input_at(self, shape)
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    fn arena_floats(&self, _: usize) -> usize {
        0
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    fn place<'a>(self, arena: &'a mut [f32], _: usize) -> Result<(&'a mut [f32], &'a [f32])>
    where
        Self: 'a,
    {
        Ok((arena, self))
    }
}

/// An example of `rows` rows written in place by `fill`, which gets the whole `rows × inputs`
/// slice zeroed: whatever it leaves unwritten is 0, never a value of an earlier example.
pub(crate) struct Fill<F> {
    /// Rows the caller declares.
    pub(crate) rows: usize,
    /// Writes the example.
    pub(crate) fill: F,
}

impl<F: FnOnce(&mut [f32])> Fill<F> {
    /// Zeroes `slot` and lets the caller write it.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn write(self, slot: &mut [f32]) {
        slot.fill(0.0);
        (self.fill)(slot);
    }
}

impl<F: FnOnce(&mut [f32])> Example for Fill<F> {
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn rows(&self, model: &Model) -> Result<usize> {
        let inputs = model.inputs();
        if self.rows == 0 || inputs == 0 || self.rows.checked_mul(inputs).is_none() {
            return Err(Error::InvalidArgument { what: "example rows", value: self.rows as f32 });
        }
        Ok(self.rows)
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    fn record(self, tape: &mut Tape<'_>, shape: Shape) -> Result<NodeIndex> {
        tape.input_with_at(shape, |slot| self.write(slot))
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    fn arena_floats(&self, inputs: usize) -> usize {
        self.rows.saturating_mul(inputs)
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    fn place<'a>(self, arena: &'a mut [f32], inputs: usize) -> Result<(&'a mut [f32], &'a [f32])>
    where
        Self: 'a,
    {
        let (len, available) = (self.arena_floats(inputs), arena.len());
        let Some(at) = available.checked_sub(len) else {
            return Err(Error::Capacity { region: Region::TapeFloats, needed: len, available });
        };
        let (scratch, slot) = arena.split_at_mut(at);
        self.write(slot);
        Ok((scratch, slot))
    }
}
