//! Parameters: one flat value buffer, one flat gradient buffer (same offsets) and a small table
//! of tensors, all owned by the caller. A [`ParamId`] is an index into that table.
//!
//! Keeping every parameter in one flat slice is what lets an update rule be a single loop over
//! `values`, `grads` and its state, and lets a firmware put the whole model in one `static`.
//!
//! **Frozen tensors** ([`Params::alloc_frozen`]) read their values from a second, read-only
//! slice ([`Params::with_frozen`]: a `static` in flash on a device) and have no gradient and no
//! optimizer state. They come first in the table (a model's frozen layers are the lowest), and
//! their table offsets continue past the end of the value buffer: an offset at or past
//! `values.len()` addresses the frozen slice, so reading a trainable tensor costs nothing more.

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
        self.offset..self.offset.saturating_add(self.shape.len()) // saturates: the fields are public
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
    /// `grads` is a row scratch for [`Tape::backward_fused`](crate::Tape::backward_fused), not a
    /// gradient buffer.
    fused: bool,
    /// Rows of the table that are frozen (a prefix).
    frozen_tensors: u16,
    /// Values of the frozen tensors, read-only.
    frozen: &'a [f32],
}

impl<'a> Params<'a> {
    /// Parameters over caller storage. `grads` should be as long as `values`.
    pub fn new(values: &'a mut [f32], grads: &'a mut [f32], table: &'a mut [ParamEntry]) -> Self {
        Params { values, grads, table, used: 0, count: 0, fused: false, frozen_tensors: 0, frozen: &[] }
    }

    /// Parameters with **no gradient buffer**, for training with
    /// [`Tape::backward_fused`](crate::Tape::backward_fused) only: each tensor is updated as soon
    /// as its gradient is known, one row at a time, so instead of `len()` gradient floats the
    /// caller hands in `row_scratch`, as long as the widest tensor's row (`cols`), e.g. 32 floats
    /// instead of 6,634 for a 196-32-10 MLP.
    ///
    /// Such a set has no per-tensor gradients: [`grad`](Self::grad) is an error,
    /// [`grads`](Self::grads) is empty and [`Tape::backward`](crate::Tape::backward) refuses it.
    ///
    /// ```
    /// use staticgrad::{Error, ParamEntry, ParamKind, Params, Region, Shape};
    /// let (mut values, mut scratch, mut table) = ([0.0f32; 16], [0.0f32; 4], [ParamEntry::EMPTY; 2]);
    /// let mut params = Params::fused(&mut values, &mut scratch, &mut table);
    /// let w = params.alloc(Shape::new(3, 4), ParamKind::Weight)?; // rows of 4 fit the scratch
    /// assert!(params.is_fused() && params.grads().is_empty());
    /// assert!(matches!(params.grad(w), Err(Error::Capacity { region: Region::ParamGrads, .. })));
    /// assert!(params.alloc(Shape::row(5), ParamKind::Bias).is_err()); // a row of 5 does not
    /// # Ok::<(), staticgrad::Error>(())
    /// ```
    pub fn fused(values: &'a mut [f32], row_scratch: &'a mut [f32], table: &'a mut [ParamEntry]) -> Self {
        Params {
            values,
            grads: row_scratch,
            table,
            used: 0,
            count: 0,
            fused: true,

            frozen_tensors: 0,
            frozen: &[],
        }
    }

    /// True if this set was made by [`Params::fused`] (no gradient buffer).
    pub fn is_fused(&self) -> bool {
        self.fused
    }

    /// This set with `frozen` as the read-only values of its frozen tensors
    /// ([`alloc_frozen`](Self::alloc_frozen) takes them in order). On a device `frozen` is a
    /// `static` in flash: a frozen tensor needs no RAM, no gradient and no optimizer state.
    pub fn with_frozen(mut self, frozen: &'a [f32]) -> Self {
        self.frozen = frozen;
        self
    }

    /// Parameters that are **all frozen**: `values` read-only (a `static` in flash), no gradient
    /// buffer, no RAM but the `table`. For inference only:
    /// [`Model::alloc_read_only`](crate::Model::alloc_read_only) lays every tensor out frozen,
    /// then [`Model::predict`](crate::Model::predict) and the other evaluations read the weights
    /// in place.
    ///
    /// ```
    /// use staticgrad::model::{Layer, Model};
    /// use staticgrad::{Node, ParamEntry, Params, Tape};
    /// const NET: Model = Model::new(2, &[Layer::dense(2), Layer::relu(), Layer::dense(2)]);
    /// static WEIGHTS: [f32; 12] = [1., 0., 0., 1., 0., 0., 1., -1., -1., 1., 0., 0.];
    /// let mut table = [ParamEntry::EMPTY; NET.param_tensors()];
    /// let mut params = Params::read_only(&WEIGHTS, &mut table);
    /// NET.alloc_read_only(&mut params)?;
    /// assert_eq!((params.len(), params.frozen_len()), (0, 12)); // no parameter in RAM
    /// let mut floats = [0.0; NET.eval_tape_floats(1)];
    /// let mut nodes = [Node::EMPTY; NET.eval_tape_nodes()];
    /// let mut tape = Tape::new(&mut floats, &mut nodes);
    /// let mut class = [0];
    /// NET.predict(&mut tape, &params, &[3.0, 1.0], &mut class)?;
    /// assert_eq!(class, [0]);
    /// # Ok::<(), staticgrad::Error>(())
    /// ```
    pub fn read_only(values: &'a [f32], table: &'a mut [ParamEntry]) -> Self {
        Params::new(&mut [], &mut [], table).with_frozen(values)
    }

    /// Number of frozen tensors (the first rows of the table).
    pub fn frozen_tensors(&self) -> usize {
        usize::from(self.frozen_tensors)
    }

    /// Frozen floats in use (of the slice given to [`with_frozen`](Self::with_frozen)).
    pub fn frozen_len(&self) -> usize {
        match self.frozen_tensors().checked_sub(1).and_then(|i| self.table.get(i)) {
            Some(e) => e.range().end.saturating_sub(self.values.len()),
            None => 0,
        }
    }

    /// True if tensor `id` is frozen (read-only, no gradient).
    pub fn is_frozen(&self, id: ParamId) -> bool {
        id.index() < self.frozen_tensors()
    }

    /// The values of the frozen tensors in use, flat (what a firmware keeps in flash).
    pub fn frozen_values(&self) -> &[f32] {
        self.frozen.get(..self.frozen_len()).unwrap_or_default()
    }

    /// Reserves a **frozen** tensor of `shape`: its values are the next `shape.len()` floats of
    /// the frozen slice ([`with_frozen`](Self::with_frozen)), read in place and never written;
    /// it has no gradient ([`grad`](Self::grad) is an error) and an optimizer skips it. Frozen
    /// tensors come before every trainable one ([`Error::InvalidArgument`] otherwise);
    /// [`Error::Capacity`] (region [`FrozenFloats`](Region::FrozenFloats)) if the slice is short.
    ///
    /// ```
    /// use staticgrad::{ParamEntry, ParamKind, Params, Shape};
    /// static BASE: [f32; 6] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    /// let (mut values, mut grads, mut table) = ([0.0f32; 2], [0.0f32; 2], [ParamEntry::EMPTY; 2]);
    /// let mut params = Params::new(&mut values, &mut grads, &mut table).with_frozen(&BASE);
    /// let w = params.alloc_frozen(Shape::new(2, 3), ParamKind::Weight)?;
    /// let b = params.alloc(Shape::row(2), ParamKind::Bias)?;
    /// assert_eq!(params.value(w)?, &BASE[..]);
    /// assert!(params.grad(w).is_err() && params.value_mut(w).is_err());
    /// assert_eq!((params.len(), params.grad(b)?.len()), (2, 2)); // only `b` in RAM
    /// # Ok::<(), staticgrad::Error>(())
    /// ```
    pub fn alloc_frozen(&mut self, shape: Shape, kind: ParamKind) -> Result<ParamId> {
        if self.count != self.frozen_tensors() {
            return Err(Error::InvalidArgument {
                what: "frozen tensor after a trainable one (frozen tensors come first)",
                value: self.count as f32,
            });
        }
        let start = self.frozen_len();
        let needed = shape.checked_len().map_or(usize::MAX, |n| start.saturating_add(n));
        if needed > self.frozen.len() {
            return Err(Error::Capacity {
                region: Region::FrozenFloats,
                needed,
                available: self.frozen.len(),
            });
        }
        if self.count >= self.table.len() || self.count >= u16::MAX as usize {
            return Err(Error::Capacity {
                region: Region::ParamTensors,
                needed: self.count + 1,
                available: self.table.len(),
            });
        }
        // Past the value buffer: `value` finds it in the frozen slice (see the module docs).
        let offset = self.values.len().checked_add(start).ok_or(Error::Capacity {
            region: Region::FrozenFloats,
            needed: usize::MAX,
            available: self.frozen.len(),
        })?;
        if let Some(slot) = self.table.get_mut(self.count) {
            *slot = ParamEntry { offset, shape, kind };
        }
        let id = ParamId(self.count as u16);
        self.count += 1;
        self.frozen_tensors += 1;
        Ok(id)
    }

    /// The values of frozen tensor `e` (out of line: a trainable tensor never gets here).
    #[cold]
    #[inline(never)]
    fn frozen_value(&self, e: &ParamEntry, id: ParamId) -> Result<&[f32]> {
        let start = e.offset.wrapping_sub(self.values.len());
        let range = start..start.saturating_add(e.shape.len());
        match (self.is_frozen(id), e.offset >= self.values.len()) {
            (true, true) => {
                self.frozen.get(range).ok_or(Error::InvalidHandle { what: "param", index: id.index() })
            }
            _ => Err(Error::InvalidHandle { what: "param", index: id.index() }),
        }
    }

    /// Gradient floats in use: `len()` normally, 0 for a fused set.
    fn grad_len(&self) -> usize {
        if self.fused { 0 } else { self.used }
    }

    fn no_grad(&self, e: &ParamEntry) -> Error {
        Error::Capacity { region: Region::ParamGrads, needed: e.range().end, available: self.grad_len() }
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
        if self.fused && shape.cols > self.grads.len() {
            let (needed, available) = (shape.cols, self.grads.len());
            return Err(Error::Capacity { region: Region::ParamGrads, needed, available });
        }
        if !self.fused && needed > self.grads.len() {
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
        // Room for all three was checked above.
        self.values.get_mut(entry.range()).unwrap_or_default().fill(0.0);
        if !self.fused {
            self.grads.get_mut(entry.range()).unwrap_or_default().fill(0.0);
        }
        if let Some(slot) = self.table.get_mut(self.count) {
            *slot = entry;
        }
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
        self.table.get(..self.count).unwrap_or_default()
    }

    /// Handles of all allocated tensors, in allocation order.
    pub fn ids(&self) -> impl Iterator<Item = ParamId> + use<> {
        (0..self.count as u16).map(ParamId)
    }

    /// Number of parameter floats in use in RAM (the trainable ones: the length an optimizer's
    /// state is sized for; frozen floats are [`frozen_len`](Self::frozen_len)).
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

    /// Values of one tensor (a frozen one's from the frozen slice).
    pub fn value(&self, id: ParamId) -> Result<&[f32]> {
        let e = self.entry(id)?;
        match self.values.get(e.range()) {
            Some(v) => Ok(v),
            None => self.frozen_value(&e, id),
        }
    }

    /// Values of one tensor, writable (initialisation, loading weights); an error for a frozen
    /// tensor.
    pub fn value_mut(&mut self, id: ParamId) -> Result<&mut [f32]> {
        let e = self.entry(id)?;
        self.values.get_mut(e.range()).ok_or(Error::InvalidHandle { what: "param", index: id.index() })
    }

    /// Accumulated gradient of one tensor (an error for a [`fused`](Self::fused) set).
    pub fn grad(&self, id: ParamId) -> Result<&[f32]> {
        let e = self.entry(id)?;
        let n = self.grad_len();
        self.grads.get(..n).unwrap_or_default().get(e.range()).ok_or(self.no_grad(&e))
    }

    /// Accumulated gradient of one tensor, writable (an error for a [`fused`](Self::fused) set).
    pub fn grad_mut(&mut self, id: ParamId) -> Result<&mut [f32]> {
        let e = self.entry(id)?;
        let (n, err) = (self.grad_len(), self.no_grad(&e));
        self.grads.get_mut(..n).unwrap_or_default().get_mut(e.range()).ok_or(err)
    }

    /// All parameter values in use, flat.
    #[inline] // a trainer's checksum and checkpoint read it through `Trainer::params`
    pub fn values(&self) -> &[f32] {
        self.values.get(..self.used).unwrap_or_default()
    }

    /// All parameter values in use, flat and writable.
    pub fn values_mut(&mut self) -> &mut [f32] {
        self.values.get_mut(..self.used).unwrap_or_default()
    }

    /// All gradients in use, flat (empty for a [`fused`](Self::fused) set).
    pub fn grads(&self) -> &[f32] {
        self.grads.get(..self.grad_len()).unwrap_or_default()
    }

    /// All gradients in use, flat and writable (clipping, coupled weight decay); empty for a
    /// [`fused`](Self::fused) set.
    pub fn grads_mut(&mut self) -> &mut [f32] {
        let n = self.grad_len();
        self.grads.get_mut(..n).unwrap_or_default()
    }

    /// Values (writable), gradients and the table of the trainable tensors at once: what an
    /// update rule needs. The gradients are empty for a [`fused`](Self::fused) set; the rows of
    /// frozen tensors (the first [`frozen_tensors`](Self::frozen_tensors)) are left out.
    pub fn split_mut(&mut self) -> (&mut [f32], &mut [f32], &[ParamEntry]) {
        let (n, frozen) = (self.grad_len(), self.frozen_tensors());
        (
            self.values.get_mut(..self.used).unwrap_or_default(),
            self.grads.get_mut(..n).unwrap_or_default(),
            self.table.get(frozen..self.count).unwrap_or_default(),
        )
    }

    /// Values (writable), the row scratch and the table: what a fused backward needs.
    pub(crate) fn split_fused(&mut self) -> (&mut [f32], &mut [f32], &[ParamEntry]) {
        (
            self.values.get_mut(..self.used).unwrap_or_default(),
            &mut *self.grads,
            self.table.get(..self.count).unwrap_or_default(),
        )
    }

    /// Sets every gradient to zero (call before each backward unless accumulating on purpose).
    pub fn zero_grad(&mut self) {
        let n = self.grad_len();
        self.grads.get_mut(..n).unwrap_or_default().fill(0.0);
    }

    /// Value buffer for a tensor, read-only, plus its gradient writable: what an op's backward needs.
    pub(crate) fn value_and_grad_mut(&mut self, id: ParamId) -> Result<(&[f32], &mut [f32])> {
        let e = self.entry(id)?;
        let (n, err) = (self.grad_len(), self.no_grad(&e));
        let g = self.grads.get_mut(..n).unwrap_or_default().get_mut(e.range()).ok_or(err)?;
        Ok((self.values.get(e.range()).unwrap_or_default(), g))
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
