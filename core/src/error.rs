//! The one error type of the core: small, `Copy`, and carrying the numbers that explain it.

use crate::shape::Shape;
use core::fmt;

/// The storage region a [`Error::Capacity`] refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Region {
    /// The tape's float arena (values and gradients of tape values, plus op scratch).
    TapeFloats,
    /// The tape's list of op records.
    TapeNodes,
    /// The parameter value buffer.
    ParamFloats,
    /// The parameter gradient buffer.
    ParamGrads,
    /// The table of parameter tensors (one entry per [`ParamId`](crate::ParamId)).
    ParamTensors,
    /// An update rule's state buffer.
    OptimizerState,
    /// The read-only values of frozen parameters ([`Params::with_frozen`](crate::Params::with_frozen)).
    FrozenFloats,
}

/// Everything a caller can get wrong, as a value: the core never panics on caller input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Error {
    /// A buffer is too small: `needed` elements of `region`, only `available` given.
    Capacity {
        /// Which storage ran out.
        region: Region,
        /// How many elements the operation needs in total.
        needed: usize,
        /// How many the caller handed in.
        available: usize,
    },
    /// Operand shapes do not fit the op.
    Shape {
        /// The op that refused its operands.
        op: &'static str,
        /// The shape the op needed.
        expected: Shape,
        /// The shape it was given.
        found: Shape,
    },
    /// A class label is not below the number of classes.
    Label {
        /// Row of the batch that holds the label.
        row: usize,
        /// The label given.
        label: usize,
        /// Number of classes (columns of the logits).
        classes: usize,
    },
    /// A value that must be finite is NaN or infinite.
    NonFinite {
        /// What was being checked (e.g. `"loss"`, `"gradient"`).
        what: &'static str,
        /// Flat index of the first offending element.
        index: usize,
    },
    /// A [`Var`](crate::Var) or [`ParamId`](crate::ParamId) that does not belong to this tape or
    /// parameter set (or was invalidated by [`Tape::reset`](crate::Tape::reset)).
    InvalidHandle {
        /// `"var"` or `"param"`.
        what: &'static str,
        /// The handle's index.
        index: usize,
    },
    /// A combination the core cannot do, e.g. a fused update of a parameter used by two nodes, or
    /// global-norm clipping (which needs every gradient at once) in a fused update.
    Unsupported {
        /// What was asked for.
        what: &'static str,
    },
    /// A size computed from the caller's settings does not fit in `usize` (e.g. an MLP whose
    /// widths multiply past it, or a batch that large): refused before anything is sized.
    Overflow {
        /// Which size (e.g. `"MLP parameter floats"`, `"MLP tape floats"`).
        what: &'static str,
        /// The batch rows the size was planned for (0 for the parameters, which do not depend
        /// on it).
        batch: usize,
    },
    /// A scalar argument outside its domain (negative learning rate, dropout ratio ≥ 1, …).
    InvalidArgument {
        /// Which argument.
        what: &'static str,
        /// The value given.
        value: f32,
    },
}

/// Shorthand used throughout the crate.
pub type Result<T> = core::result::Result<T, Error>;

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Region::TapeFloats => "tape floats",
            Region::TapeNodes => "tape nodes",
            Region::ParamFloats => "parameter floats",
            Region::ParamGrads => "parameter gradient floats",
            Region::ParamTensors => "parameter tensors",
            Region::OptimizerState => "optimizer state floats",
            Region::FrozenFloats => "frozen parameter floats",
        })
    }
}

/// The `what` of the [`Error::InvalidArgument`] a model returns when the [`Params`](crate::Params)
/// it is given do not hold its tensors (`value`: how many they hold); the literal in
/// `Model::check_layout`, the pair pinned by `tests/tests/errors.rs`.
const LAYOUT: &str = "parameter tensors do not match the model";

impl fmt::Display for Error {
    /// One line naming the numbers. A few common mistakes are spelt out with their fix, from the
    /// same variants (so a firmware's error paths do not change): parameters never allocated for
    /// the model, and a model input that is not whole rows.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Capacity { region, needed, available } => {
                write!(f, "not enough {region}: need {needed}, have {available}")
            }
            // `Model::rows`: the input is one row of all its floats.
            Error::Shape { op: "model input", expected, found } if expected.cols > 0 => write!(
                f,
                "model input: {} floats are not whole rows of {} features (give a non-zero multiple of {})",
                found.len(),
                expected.cols,
                expected.cols
            ),
            Error::Shape { op, expected, found } => {
                write!(f, "{op}: expected shape {expected}, found {found}")
            }
            Error::Label { row, label, classes } => {
                write!(f, "label {label} in row {row} is out of range for {classes} classes")
            }
            Error::NonFinite { what, index } => write!(f, "non-finite {what} at index {index}"),
            // Handle 0 is refused only by a set that holds no tensor at all.
            Error::InvalidHandle { what: "param", index: 0 } => f.write_str(
                "param handle 0 is not valid here: the parameters hold no tensors (never allocated? \
                 call `Model::alloc` on them first, or let `Trainer::new` lay them out)",
            ),
            Error::InvalidHandle { what, index } => write!(f, "{what} handle {index} is not valid here"),
            Error::InvalidArgument { what: LAYOUT, value: 0.0 } => f.write_str(
                "the parameters were never allocated for this model: they hold no tensors (call \
                 `Model::alloc` on them first, or let `Trainer::new` lay them out)",
            ),
            Error::InvalidArgument { what: LAYOUT, value } => write!(
                f,
                "the parameters hold {value} tensors, not this model's layout (allocated for another model?)"
            ),
            Error::InvalidArgument { what, value } => write!(f, "invalid {what}: {value}"),
            Error::Overflow { what, batch } => {
                write!(f, "{what} do not fit in {}-bit sizes", usize::BITS)?;
                if batch > 0 { write!(f, " (planned for a batch of {batch})") } else { Ok(()) }
            }
            Error::Unsupported { what } => write!(f, "unsupported: {what}"),
        }
    }
}

impl core::error::Error for Error {}
