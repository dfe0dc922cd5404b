//! The demos of `staticgrad_demos` (the firmware's: the same code, data, seeds and steps), built
//! for `wasm32-unknown-unknown` as a `no_std` module with no imports, and run by Node.js
//! (`run.mjs`). Every buffer is a `static`, sized by the planner, as on the firmware.
//!
//! Exports: `demo_count()`, `demo_name_ptr(i)` / `demo_name_len(i)` (the name the firmware and the
//! host test use) and `demo_run(i)`, which trains demo `i` and returns its final-weight checksum
//! in the low 32 bits, bit 32 set if it met its bar and bit 33 set if it failed with an error.
#![no_std]
#![warn(missing_docs)]

use staticgrad::model::Plan;
use staticgrad::{Memory, Node, ParamEntry, Result};
use staticgrad_demos::{NoHooks, Outcome, adapt, adapt_base, cnn, mnist, xor};

/// A panic (none is expected: the demos return errors) traps the module; Node.js reports it.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

/// Every buffer of one plan, as `static mut`s, handed to `$body` as a [`Memory`] (with `$frozen`).
macro_rules! with_memory {
    ($plan:expr, $frozen:expr, |$memory:ident| $body:expr) => {{
        const P: Plan = $plan;
        static mut VALUES: [f32; P.param_floats] = [0.0; P.param_floats];
        static mut GRADS: [f32; P.grad_floats] = [0.0; P.grad_floats];
        static mut TABLE: [ParamEntry; P.param_tensors] = [ParamEntry::EMPTY; P.param_tensors];
        static mut STATE: [f32; P.state_floats] = [0.0; P.state_floats];
        static mut FLOATS: [f32; P.tape_floats] = [0.0; P.tape_floats];
        static mut NODES: [Node; P.tape_nodes] = [Node::EMPTY; P.tape_nodes];
        // SAFETY: wasm32-unknown-unknown runs one thread and these statics are named only here;
        // the references live for this one call, which nothing re-enters.
        #[allow(clippy::deref_addrof)] // `&mut *(&raw mut S)`, not `&mut S`: a `static mut`
        let $memory = unsafe {
            Memory {
                values: &mut *(&raw mut VALUES),
                grads: &mut *(&raw mut GRADS),
                table: &mut *(&raw mut TABLE),
                state: &mut *(&raw mut STATE),
                floats: &mut *(&raw mut FLOATS),
                nodes: &mut *(&raw mut NODES),
                frozen: $frozen,
            }
        };
        $body
    }};
}

/// One MNIST-data demo (the MLP or the CNN), variant `$cfg`.
macro_rules! mnist_demo {
    ($cfg:expr) => {{
        const CFG: mnist::MnistConfig = $cfg;
        const B: usize = CFG.batch;
        static mut X: [f32; B * mnist::INPUTS] = [0.0; B * mnist::INPUTS];
        static mut LABELS: [u32; B] = [0; B];
        with_memory!(CFG.plan(), &[], |memory| {
            // SAFETY: as in `with_memory!`: one thread, named only here, one call.
            #[allow(clippy::deref_addrof)] // `&mut *(&raw mut S)`, not `&mut S`: a `static mut`
            let (x, labels) = unsafe { (&mut *(&raw mut X), &mut *(&raw mut LABELS)) };
            mnist::train(&CFG, &CFG.plan(), memory, x, labels, &mut NoHooks)
        })
    }};
}

/// A demo: its name and how to run it.
type Demo = (&'static str, fn() -> Result<Outcome>);

/// The demos, in the host test's order.
const DEMOS: [Demo; 11] = [
    ("xor", || with_memory!(xor::PLAN, &[], |memory| xor::train(memory, &mut NoHooks))),
    (mnist::SGD_B1.name, || mnist_demo!(mnist::SGD_B1)),
    (mnist::SGD_B1_FUSED.name, || mnist_demo!(mnist::SGD_B1_FUSED)),
    (mnist::SGD_B8.name, || mnist_demo!(mnist::SGD_B8)),
    (mnist::SGD_B8_FUSED.name, || mnist_demo!(mnist::SGD_B8_FUSED)),
    (mnist::ADAM_B1.name, || mnist_demo!(mnist::ADAM_B1)),
    (mnist::ADAM_B1_FUSED.name, || mnist_demo!(mnist::ADAM_B1_FUSED)),
    (cnn::SGD_B1.name, || mnist_demo!(cnn::SGD_B1)),
    (cnn::SGD_B1_FUSED.name, || mnist_demo!(cnn::SGD_B1_FUSED)),
    (cnn::ADAM_B1_FUSED.name, || mnist_demo!(cnn::ADAM_B1_FUSED)),
    (adapt::ADAPT.name, || {
        with_memory!(adapt::PLAN, &adapt_base::FROZEN, |memory| {
            adapt::adapt(&adapt::ADAPT, memory, &adapt_base::TRAINABLE, &mut NoHooks).map(|r| r.outcome)
        })
    }),
];

// Every variant of the demos' lists is here (a new one fails this until added).
const _: () = assert!(DEMOS.len() == 1 + mnist::ALL.len() + cnn::ALL.len() + 1);

/// How many demos [`demo_run`] knows.
#[unsafe(no_mangle)]
pub extern "C" fn demo_count() -> u32 {
    DEMOS.len() as u32
}

/// Address of demo `i`'s name (UTF-8, [`demo_name_len`] bytes) in the module's memory; 0 past the end.
#[unsafe(no_mangle)]
pub extern "C" fn demo_name_ptr(i: u32) -> u32 {
    DEMOS.get(i as usize).map_or(0, |d| d.0.as_ptr() as u32)
}

/// Length in bytes of demo `i`'s name; 0 past the end.
#[unsafe(no_mangle)]
pub extern "C" fn demo_name_len(i: u32) -> u32 {
    DEMOS.get(i as usize).map_or(0, |d| d.0.len() as u32)
}

/// Trains demo `i` (call each once): its checksum in bits 0–31, bit 32 set if it met its bar,
/// bit 33 set if it returned an error (or `i` is past the end).
#[unsafe(no_mangle)]
pub extern "C" fn demo_run(i: u32) -> u64 {
    match DEMOS.get(i as usize).map(|d| (d.1)()) {
        Some(Ok(o)) => o.checksum as u64 | (o.passed as u64) << 32,
        _ => 1 << 33,
    }
}
