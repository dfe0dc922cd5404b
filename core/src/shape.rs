//! 2-D shapes: every tape value is a `rows × cols` matrix in row-major order.
//! A batch is rows, features are columns; a scalar is `1 × 1`.

use core::fmt;

/// The shape of a tape value or parameter: `rows × cols`, row-major.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Shape {
    /// Number of rows (the batch dimension for activations, fan-in for weights).
    pub rows: usize,
    /// Number of columns (features; fan-out for weights).
    pub cols: usize,
}

impl Shape {
    /// A `rows × cols` shape.
    pub const fn new(rows: usize, cols: usize) -> Self {
        Shape { rows, cols }
    }

    /// The `1 × 1` shape of a loss.
    pub const SCALAR: Shape = Shape::new(1, 1);

    /// A `1 × n` row vector (biases, batch-norm γ and β).
    pub const fn row(n: usize) -> Self {
        Shape::new(1, n)
    }

    /// Number of elements, or `None` if `rows * cols` overflows.
    pub const fn checked_len(&self) -> Option<usize> {
        self.rows.checked_mul(self.cols)
    }

    /// Number of elements (saturating: an overflowing shape never fits any buffer).
    pub const fn len(&self) -> usize {
        match self.checked_len() {
            Some(n) => n,
            None => usize::MAX,
        }
    }

    /// True if the shape holds no element.
    pub const fn is_empty(&self) -> bool {
        self.rows == 0 || self.cols == 0
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.rows, self.cols)
    }
}
