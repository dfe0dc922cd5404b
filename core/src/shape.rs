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

/// Channels × height × width of one image. A batch of images travels on the tape as a
/// [`Shape`] of `batch × (channels·height·width)` rows, each row one image in C, H, W order
/// (NCHW); the convolution and pooling ops ([`crate::ops::conv2d`], [`crate::ops::max_pool2d`],
/// [`crate::ops::avg_pool2d`]) take the image dims as an argument and check them against the row
/// length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ImageShape {
    /// Channels (feature maps).
    pub channels: usize,
    /// Rows of each channel.
    pub height: usize,
    /// Columns of each channel.
    pub width: usize,
}

impl ImageShape {
    /// A `channels × height × width` image.
    pub const fn new(channels: usize, height: usize, width: usize) -> Self {
        ImageShape { channels, height, width }
    }

    /// Floats of one image (`channels·height·width`, the row length on the tape), or `None` if
    /// that overflows.
    pub const fn checked_len(&self) -> Option<usize> {
        match self.channels.checked_mul(self.height) {
            Some(ch) => ch.checked_mul(self.width),
            None => None,
        }
    }
}

impl fmt::Display for ImageShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}", self.channels, self.height, self.width)
    }
}
