//! # staticgrad
//!
//! Reverse-mode automatic differentiation and neural-network training in static memory.
//! `#![no_std]`, no `alloc`: every buffer — parameters, gradients, optimizer state, the tape — is
//! storage the caller hands in, so a microcontroller can learn on the device.
//!
//! * [`Tape`] records ops ([`Node`]s) over a caller-owned float arena; [`Tape::backward`] walks
//!   them in reverse. Values are [`Var`] handles, parameters [`ParamId`] handles.
//! * [`Params`] holds all parameter values and gradients in two flat slices.
//! * Ops live one per file under [`ops`], forward and backward side by side.
//! * [`gradcheck`] compares any graph's backward with central differences, on a host or a device.
//! * Arithmetic is deterministic: `libm` for transcendentals (the initialisation's `cos`/`sin` are
//!   plain `f32` polynomials, [`init::cos_sin_turn`]), no FMA, and every reduction in the
//!   canonical order documented in [`kernels`], so x86-64 and Cortex-M give the same bits.
//!
//! Training XOR with plain gradient descent:
//!
//! ```
//! use staticgrad::{ParamKind, ParamStorage, Shape, TapeStorage};
//! let mut ps = ParamStorage::<32, 4>::new();
//! let mut params = ps.params();
//! let w1 = params.alloc(Shape::new(2, 4), ParamKind::Weight)?;
//! let b1 = params.alloc(Shape::row(4), ParamKind::Bias)?;
//! let w2 = params.alloc(Shape::new(4, 1), ParamKind::Weight)?;
//! let b2 = params.alloc(Shape::row(1), ParamKind::Bias)?;
//! params.value_mut(w1)?.copy_from_slice(&[0.8, -0.6, 0.5, 0.3, -0.7, 0.9, 0.4, -0.2]);
//! params.value_mut(w2)?.copy_from_slice(&[0.6, -0.8, 0.7, 0.2]);
//!
//! let (x, y) = ([0., 0., 0., 1., 1., 0., 1., 1.], [0., 1., 1., 0.]);
//! let mut ts = TapeStorage::<128, 16>::new();
//! let mut tape = ts.tape();
//! let mut last = 1.0;
//! for _ in 0..3000 {
//!     let xv = tape.input(&x, Shape::new(4, 2))?;
//!     let h = tape.affine(xv, &params, w1, b1)?;
//!     let h = tape.tanh(h)?;
//!     let o = tape.affine(h, &params, w2, b2)?;
//!     let o = tape.sigmoid(o)?;
//!     let t = tape.input(&y, Shape::new(4, 1))?;
//!     let loss = tape.mse(o, t)?;
//!     last = tape.scalar(loss)?;
//!     params.zero_grad();
//!     tape.backward(loss, &mut params)?;
//!     let (v, g, _) = params.split_mut();
//!     for (v, g) in v.iter_mut().zip(g.iter()) {
//!         *v -= 2.0 * g;
//!     }
//!     tape.reset();
//! }
//! assert!(last < 0.01);
//! # Ok::<(), staticgrad::Error>(())
//! ```
#![no_std]
// No `unsafe` anywhere, except the fenced module of each opt-in feature: `kernels/x86.rs`
// (`x86-simd`) and `kernels/arm.rs` (`arm-fpu-sqrt`).
#![cfg_attr(not(any(feature = "x86-simd", feature = "arm-fpu-sqrt")), forbid(unsafe_code))]
#![cfg_attr(any(feature = "x86-simd", feature = "arm-fpu-sqrt"), deny(unsafe_code))]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

pub mod clip;
pub mod error;
pub mod fused;
pub mod gradcheck;
pub mod init;
pub mod kernels;
pub mod memory;
pub mod model;
pub mod ops;
pub mod optim;
pub mod parallel;
pub mod params;
pub mod sampling;
pub mod schedule;
pub mod shape;
pub mod tape;
#[cfg(test)]
mod testutil;
pub mod train;
pub mod weights;

pub use error::{Error, Region, Result};
pub use fused::{FusedChunk, FusedUpdate};
pub use init::Init;
pub use memory::Memory;
pub use model::{Activation, Layer, LayerKind, Loss, MlpSpec, Model, Plan, StepPath, Targets};
pub use ops::batchnorm::{BatchNorm, BatchNormConfig};
pub use ops::conv2d::Conv2dConfig;
pub use ops::dropout::{Dropout, DropoutForm};
pub use ops::window::Pool2dConfig;
pub use optim::{Optimizer, WeightDecay, weight_decay_loss};
pub use params::{ParamEntry, ParamId, ParamKind, ParamStorage, Params};
pub use shape::{ImageShape, Shape};
pub use tape::{Mode, Node, NodeIndex, Op, Tape, TapeStorage, Var};
pub use train::Trainer;

/// The `rand_core` this crate draws from (0.10, the one `rand` 0.10 uses): every `rng` argument is
/// an `impl rand_core::Rng`. Name the traits through this path to get exactly this version.
pub use rand_core;
