//! Parameters: one flat value buffer, one flat gradient buffer (same offsets) and a small table
//! of tensors, all owned by the caller. A [`ParamId`] is an index into that table.
//!
//! Keeping every parameter in one flat slice is what lets an update rule be a single loop over
//! `values`, `grads` and its state, and lets a firmware put the whole model in one `static`.

use crate::error::{Error, Region, Result};
use crate::shape::Shape;

/// What a parameter tensor is for; decides, for instance, that weight decay touches weights only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// A weight matrix (decayed by default).
    Weight,
    /// A bias vector.
    Bias,
    /// Batch-norm scale γ.
    Gamma,
    /// Batch-norm shift β.
    Beta,
    /// Batch-norm running mean: a buffer, never touched by an optimizer.
    RunningMean,
    /// Batch-norm running variance: a buffer, never touched by an optimizer.
    RunningVar,
}

impl ParamKind {
    /// True for kinds an optimizer updates (weights, biases, γ, β); false for running statistics.
    pub const fn trainable(self) -> bool {
        !matches!(self, ParamKind::RunningMean | ParamKind::RunningVar)
    }
}

/// Handle to one parameter tensor of a [`Params`]: a small `Copy` index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ParamId(pub(crate) u16);

impl ParamId {
    /// The index of this tensor in its [`Params`] table (allocation order).
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// One row of the parameter table: where a tensor lives in the flat buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamEntry {
    /// Offset of the first element in the value (and gradient) buffer.
    pub offset: usize,
    /// Shape of the tensor.
    pub shape: Shape,
    /// What the tensor is for.
    pub kind: ParamKind,
}

impl ParamEntry {
    /// An unused table slot (for initialising storage arrays).
    pub const EMPTY: ParamEntry = ParamEntry { offset: 0, shape: Shape::new(0, 0), kind: ParamKind::Weight };

    /// The element range of this tensor in the flat buffers.
    pub const fn range(&self) -> core::ops::Range<usize> {
        self.offset..self.offset + self.shape.len()
    }
}

/// Parameter values, their gradients and the tensor table, over caller-owned slices.
///
/// ```
/// use staticgrad::{ParamEntry, ParamKind, Params, Shape};
/// let mut values = [0.0f32; 16];
/// let mut grads = [0.0f32; 16];
/// let mut table = [ParamEntry::EMPTY; 4];
/// let mut params = Params::new(&mut values, &mut grads, &mut table);
/// let w = params.alloc(Shape::new(3, 4), ParamKind::Weight)?;
/// let b = params.alloc(Shape::row(4), ParamKind::Bias)?;
/// assert_eq!(params.len(), 16);
/// assert!(params.alloc(Shape::row(1), ParamKind::Bias).is_err()); // values are full
/// params.value_mut(w)?.fill(0.5);
/// assert_eq!(params.value(b)?.len(), 4);
/// # Ok::<(), staticgrad::Error>(())
/// ```
#[derive(Debug)]
pub struct Params<'a> {
    values: &'a mut [f32],
    grads: &'a mut [f32],
    table: &'a mut [ParamEntry],
    used: usize,
    count: usize,
}

impl<'a> Params<'a> {
    /// Parameters over caller storage. `grads` should be as long as `values`.
    pub fn new(values: &'a mut [f32], grads: &'a mut [f32], table: &'a mut [ParamEntry]) -> Self {
        Params { values, grads, table, used: 0, count: 0 }
    }

    /// Reserves a zero-filled tensor of `shape` and returns its handle.
    pub fn alloc(&mut self, shape: Shape, kind: ParamKind) -> Result<ParamId> {
        let n = shape.checked_len().ok_or(Error::Capacity {
            region: Region::ParamFloats,
            needed: usize::MAX,
            available: self.values.len(),
        })?;
        let needed = self.used.saturating_add(n);
        if needed > self.values.len() {
            return Err(Error::Capacity {
                region: Region::ParamFloats,
                needed,
                available: self.values.len(),
            });
        }
        if needed > self.grads.len() {
            return Err(Error::Capacity { region: Region::ParamGrads, needed, available: self.grads.len() });
        }
        if self.count >= self.table.len() || self.count >= u16::MAX as usize {
            return Err(Error::Capacity {
                region: Region::ParamTensors,
                needed: self.count + 1,
                available: self.table.len(),
            });
        }
        let entry = ParamEntry { offset: self.used, shape, kind };
        self.values[entry.range()].fill(0.0);
        self.grads[entry.range()].fill(0.0);
        self.table[self.count] = entry;
        let id = ParamId(self.count as u16);
        self.count += 1;
        self.used = needed;
        Ok(id)
    }

    /// The table row of `id`.
    pub fn entry(&self, id: ParamId) -> Result<ParamEntry> {
        self.entries()
            .get(id.index())
            .copied()
            .ok_or(Error::InvalidHandle { what: "param", index: id.index() })
    }

    /// All allocated tensors, in allocation order.
    pub fn entries(&self) -> &[ParamEntry] {
        &self.table[..self.count]
    }

    /// Handles of all allocated tensors, in allocation order.
    pub fn ids(&self) -> impl Iterator<Item = ParamId> + use<> {
        (0..self.count as u16).map(ParamId)
    }

    /// Number of parameter floats in use (the length an optimizer's state is sized for).
    pub fn len(&self) -> usize {
        self.used
    }

    /// True if no tensor has been allocated.
    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// Number of tensors allocated.
    pub fn tensor_count(&self) -> usize {
        self.count
    }

    /// Values of one tensor.
    pub fn value(&self, id: ParamId) -> Result<&[f32]> {
        let e = self.entry(id)?;
        Ok(&self.values[e.range()])
    }

    /// Values of one tensor, writable (initialisation, loading weights).
    pub fn value_mut(&mut self, id: ParamId) -> Result<&mut [f32]> {
        let e = self.entry(id)?;
        Ok(&mut self.values[e.range()])
    }

    /// Accumulated gradient of one tensor.
    pub fn grad(&self, id: ParamId) -> Result<&[f32]> {
        let e = self.entry(id)?;
        Ok(&self.grads[e.range()])
    }

    /// Accumulated gradient of one tensor, writable.
    pub fn grad_mut(&mut self, id: ParamId) -> Result<&mut [f32]> {
        let e = self.entry(id)?;
        Ok(&mut self.grads[e.range()])
    }

    /// All parameter values in use, flat.
    pub fn values(&self) -> &[f32] {
        &self.values[..self.used]
    }

    /// All parameter values in use, flat and writable.
    pub fn values_mut(&mut self) -> &mut [f32] {
        &mut self.values[..self.used]
    }

    /// All gradients in use, flat.
    pub fn grads(&self) -> &[f32] {
        &self.grads[..self.used]
    }

    /// All gradients in use, flat and writable (clipping, coupled weight decay).
    pub fn grads_mut(&mut self) -> &mut [f32] {
        &mut self.grads[..self.used]
    }

    /// Values (writable), gradients and the tensor table at once: what an update rule needs.
    pub fn split_mut(&mut self) -> (&mut [f32], &mut [f32], &[ParamEntry]) {
        (&mut self.values[..self.used], &mut self.grads[..self.used], &self.table[..self.count])
    }

    /// Sets every gradient to zero (call before each backward unless accumulating on purpose).
    pub fn zero_grad(&mut self) {
        self.grads[..self.used].fill(0.0);
    }

    /// Value buffer for a tensor, read-only, plus its gradient writable: what an op's backward needs.
    pub(crate) fn value_and_grad_mut(&mut self, id: ParamId) -> Result<(&[f32], &mut [f32])> {
        let e = self.entry(id)?;
        Ok((&self.values[e.range()], &mut self.grads[e.range()]))
    }
}

/// Const-generic owned parameter storage: `FLOATS` values, `FLOATS` gradients, `TENSORS` table rows.
///
/// ```
/// use staticgrad::{ParamKind, ParamStorage, Shape};
/// let mut storage = ParamStorage::<32, 4>::new();
/// let mut params = storage.params();
/// let w = params.alloc(Shape::new(2, 3), ParamKind::Weight)?;
/// assert_eq!(params.entry(w)?.shape, Shape::new(2, 3));
/// # Ok::<(), staticgrad::Error>(())
/// ```
#[derive(Debug)]
pub struct ParamStorage<const FLOATS: usize, const TENSORS: usize> {
    /// Parameter values.
    pub values: [f32; FLOATS],
    /// Parameter gradients.
    pub grads: [f32; FLOATS],
    /// Tensor table.
    pub table: [ParamEntry; TENSORS],
}

impl<const FLOATS: usize, const TENSORS: usize> ParamStorage<FLOATS, TENSORS> {
    /// Zeroed storage; `const` so it can initialise a `static`.
    pub const fn new() -> Self {
        ParamStorage { values: [0.0; FLOATS], grads: [0.0; FLOATS], table: [ParamEntry::EMPTY; TENSORS] }
    }

    /// An empty [`Params`] over this storage.
    pub fn params(&mut self) -> Params<'_> {
        Params::new(&mut self.values, &mut self.grads, &mut self.table)
    }
}

impl<const FLOATS: usize, const TENSORS: usize> Default for ParamStorage<FLOATS, TENSORS> {
    fn default() -> Self {
        Self::new()
    }
}
