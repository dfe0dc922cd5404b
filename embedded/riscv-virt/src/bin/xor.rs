//! XOR, 2-3-1 sigmoid, MSE, batch 4, SGD, on RISC-V (rv32imac: software floats; rv32imafc:
//! hardware single precision). The same demo code as the Cortex-M builds, and the same bits.
#![no_std]
#![no_main]

use staticgrad::{Memory, Node, ParamEntry};
use staticgrad_demos::xor::{self, PLAN};
use staticgrad_fw::{Firmware, finish, stack};

staticgrad_fw::trap_exits!();

const _: () = assert!(PLAN.total_bytes() <= 1024, "XOR trains in a kilobyte");

static mut VALUES: [f32; PLAN.param_floats] = [0.0; PLAN.param_floats];
static mut GRADS: [f32; PLAN.grad_floats] = [0.0; PLAN.grad_floats];
static mut TABLE: [ParamEntry; PLAN.param_tensors] = [ParamEntry::EMPTY; PLAN.param_tensors];
static mut STATE: [f32; PLAN.state_floats] = [0.0; PLAN.state_floats];
static mut FLOATS: [f32; PLAN.tape_floats] = [0.0; PLAN.tape_floats];
static mut NODES: [Node; PLAN.tape_nodes] = [Node::EMPTY; PLAN.tape_nodes];

#[riscv_rt::entry]
fn main() -> ! {
    stack::paint();
    staticgrad_fw::announce("xor", &PLAN, xor::MEASURE.1);
    // SAFETY: `main` runs once and never returns, and nothing else names these statics: each
    // reference is the only one for the rest of the program (what cortex-m-rt's `#[entry]` does
    // for the Arm builds' `static mut`s).
    #[allow(clippy::deref_addrof)] // `&mut *(&raw mut S)`, not `&mut S`: a `static mut`
    let memory = unsafe {
        Memory {
            values: &mut *(&raw mut VALUES),
            grads: &mut *(&raw mut GRADS),
            table: &mut *(&raw mut TABLE),
            state: &mut *(&raw mut STATE),
            floats: &mut *(&raw mut FLOATS),
            nodes: &mut *(&raw mut NODES),
            frozen: &[],
        }
    };
    let outcome = xor::train(memory, &mut Firmware("xor"));
    finish("xor", outcome, stack::used(), 4 * 1024)
}
