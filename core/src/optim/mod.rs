//! Update rules over the flat parameter buffers, with their state in caller storage.
//!
//! An [`Optimizer`] (small, `Copy`, built by `const fn`s) holds a [`Rule`] with its options, the
//! [`WeightDecay`] and optional [`Clip`]ping — options only, never changed by a step. Everything
//! a step changes is in the state, a `&mut [f32]` the caller owns, exactly
//! [`Optimizer::state_len`] floats long (a `const fn`, so a firmware can size a `static` at
//! compile time): a header with the step counter, then the rule's per-parameter quantities
//! ([`state`]). All zeros is a fresh start; **a checkpoint is the parameter values plus the state
//! floats**. The learning rate is an argument of [`Optimizer::step`], so a
//! [schedule](crate::schedule) never reaches into the optimizer.
//!
//! ```
//! use staticgrad::optim::{self, Optimizer};
//! use staticgrad::{ParamKind, ParamStorage, Shape};
//!
//! const OPT: Optimizer = Optimizer::adam();
//! const N: usize = 2;
//! const _: () = assert!(OPT.state_len(N) == optim::HEADER_LEN + 4); // m and v: checked at compile time
//! let mut ps = ParamStorage::<N, 1>::new();
//! let mut params = ps.params();
//! let p = params.alloc(Shape::row(2), ParamKind::Weight)?;
//! params.value_mut(p)?.copy_from_slice(&[-7.0, 2.0]);
//! let mut state = [0.0f32; OPT.state_len(N)];
//! for _ in 0..100 {
//!     // f(x, y) = x²/20 + y², gradient (x/10, 2y)
//!     let [x, y] = [params.value(p)?[0], params.value(p)?[1]];
//!     params.grad_mut(p)?.copy_from_slice(&[x / 10.0, 2.0 * y]);
//!     OPT.step(&mut params, &mut state, 0.3)?;
//! }
//! assert!(params.value(p)?.iter().all(|v| v.abs() < 0.5));
//! assert_eq!(optim::steps(&state)?, 100);
//! # Ok::<(), staticgrad::Error>(())
//! ```
//!
//! # Files
//! `options.rs` (the rule, its parameters, builders, validation, names), `state.rs` (the
//! buffer's layout and the step counter, [`state`]), `step.rs` (a step, whole, per tensor or per
//! part of one), `decay.rs` (weight decay's loss term), `float.rs` (the float type the formulas
//! are generic over), and one file per rule with its per-element formula.
//!
//! # Fused updates
//! [`Optimizer::step`] is exactly: validate, check every trainable gradient is finite, clip by
//! global norm if asked, [`Optimizer::begin_step`], then the body of [`Optimizer::update_tensor`]
//! on each trainable tensor in table order (without re-checking the gradients). A training loop
//! that wants to update each tensor as soon as its gradient is complete calls `begin_step` once
//! and then `update_tensor` per tensor, and gets the same bits (global-norm clipping needs every
//! gradient first, so it is only done by `step`).
//!
//! ```
//! use staticgrad::optim::Optimizer;
//! use staticgrad::{ParamKind, ParamStorage, Shape};
//! let mut ps = ParamStorage::<6, 2>::new();
//! let mut params = ps.params();
//! params.alloc(Shape::new(2, 2), ParamKind::Weight)?;
//! params.alloc(Shape::row(2), ParamKind::Bias)?;
//! params.grads_mut().copy_from_slice(&[1.0, -1.0, 0.5, 0.0, 2.0, 1.0]);
//! let opt = Optimizer::momentum();
//! let mut state = [0.0f32; Optimizer::momentum().state_len(6)];
//! opt.begin_step(&mut state)?;
//! let (values, grads, table) = params.split_mut();
//! for &e in table.iter().rev() {
//!     // e.g. in backward order, as each tensor's gradient becomes final
//!     let r = e.range();
//!     opt.update_tensor(e, &mut values[r.clone()], &mut grads[r], &mut state, 0.1)?;
//! }
//! assert_eq!(params.values()[0], -0.1);
//! # Ok::<(), staticgrad::Error>(())
//! ```
//!
//! # The arithmetic
//! Each rule's per-element formula is a generic function over [`Float`] in its own file
//! ([`sgd`], [`momentum`], [`nesterov`], [`adagrad`], [`rmsprop`], [`adam`]), written in the book's
//! operation order. The optimizer runs them in `f32`; run in `f64` they reproduce the book's
//! reference paths bit for bit (see the `optimizer_paths` test).

pub mod adagrad;
pub mod adam;
mod decay;
mod float;
pub mod momentum;
pub mod nesterov;
mod options;
pub mod rmsprop;
pub mod sgd;
pub mod state;
mod step;

pub use adam::AdamForm;
pub use decay::weight_decay_loss;
pub use float::Float;
pub use nesterov::NesterovForm;
pub use options::{Clip, DecayScope, NAMES, Optimizer, Rule, UnknownOptimizer, WeightDecay};
pub use state::{HEADER_LEN, MAX_STEPS, steps};
