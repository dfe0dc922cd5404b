//! The math functions of the kernels, one per file as libm lays them out. Each gives
//! `libm`'s bits for every input, so a result does not depend on the target: [`sqrt()`] may be
//! the FPU's instruction, [`expf()`] a branchless rewrite, `logf` libm's own.

mod expf;
mod logf;
mod sqrt;

pub use expf::expf;
pub(crate) use logf::logf;
pub use sqrt::sqrt;
