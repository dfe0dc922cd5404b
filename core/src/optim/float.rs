//! The float type the update formulas are generic over, so the same rule code runs in `f32` (the
//! optimizer) and in `f64` (the checks against the book's float64 reference paths).

use core::ops::{Add, AddAssign, Div, Mul, MulAssign, Sub, SubAssign};

/// The floating-point operations the update formulas need, so the same code runs in `f32` (the
/// optimizer) and `f64` (checks against the book's float64 reference). Transcendentals go through
/// `libm`, so results do not depend on the platform.
pub trait Float:
    Copy
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// Correctly rounded square root.
    fn sqrt(self) -> Self;
    /// `self` raised to `e` (C `pow`, as Python's `**` on floats).
    fn powf(self, e: Self) -> Self;
    /// The step counter as a float (exact up to 2²⁴ in `f32`).
    fn from_u32(t: u32) -> Self;
}

impl Float for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn sqrt(self) -> Self {
        crate::kernels::sqrt(self) // libm's bits; the FPU's instruction where there is one
    }
    #[inline]
    fn powf(self, e: Self) -> Self {
        libm::powf(self, e)
    }
    #[inline]
    fn from_u32(t: u32) -> Self {
        t as f32
    }
}

impl Float for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn sqrt(self) -> Self {
        libm::sqrt(self)
    }
    #[inline]
    fn powf(self, e: Self) -> Self {
        libm::pow(self, e)
    }
    #[inline]
    fn from_u32(t: u32) -> Self {
        t as f64
    }
}
