//! XOR, 2-3-1 sigmoid, MSE, batch 4, SGD, on a Cortex-M0 (no FPU: software floats) with 16 KiB
//! of RAM. The same demo code as the Cortex-M4F build, and the same bits.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use panic_semihosting as _;
use staticgrad::{Memory, Node, ParamEntry};
use staticgrad_demos::xor::{self, PLAN};
use staticgrad_fw::{Firmware, finish, stack};

staticgrad_fw::hardfault_exits!();

const _: () = assert!(PLAN.total_bytes() <= 1024, "XOR trains in a kilobyte");

#[entry]
fn main() -> ! {
    // `static mut` in `#[entry]` become safe `&'static mut` references: all memory is static,
    // sized by the planner.
    static mut VALUES: [f32; PLAN.param_floats] = [0.0; PLAN.param_floats];
    static mut GRADS: [f32; PLAN.grad_floats] = [0.0; PLAN.grad_floats];
    static mut TABLE: [ParamEntry; PLAN.param_tensors] = [ParamEntry::EMPTY; PLAN.param_tensors];
    static mut STATE: [f32; PLAN.state_floats] = [0.0; PLAN.state_floats];
    static mut FLOATS: [f32; PLAN.tape_floats] = [0.0; PLAN.tape_floats];
    static mut NODES: [Node; PLAN.tape_nodes] = [Node::EMPTY; PLAN.tape_nodes];
    stack::paint();
    staticgrad_fw::announce("xor-m0", &PLAN, xor::MEASURE.1);
    let memory =
        Memory { values: VALUES, grads: GRADS, table: TABLE, state: STATE, floats: FLOATS, nodes: NODES, frozen: &[] };
    let outcome = xor::train(memory, &mut Firmware("xor-m0"));
    finish("xor-m0", outcome, stack::used(), 16 * 1024)
}
