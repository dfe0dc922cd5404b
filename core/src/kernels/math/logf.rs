//! `logf`: the natural logarithm of the cross-entropy and of Box–Muller's draws.

/// `ln x`: `libm::logf`, called out of line, so that its callers (the cross-entropy once per row,
/// Box–Muller's draws) share one copy in a firmware.
#[inline(never)]
pub(crate) fn logf(x: f32) -> f32 {
    libm::logf(x)
}
