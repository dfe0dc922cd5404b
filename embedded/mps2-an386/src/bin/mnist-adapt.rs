//! On-device adaptation (issue 16): a 196-32-10 ReLU network pretrained on the host on digits
//! 0–7 (`staticgrad_demos::adapt_base`, exported with `--freeze 1`) keeps its 196×32 layer in
//! flash, frozen, and learns digits 8 and 9 from a stream of all ten digits by training its top
//! layer only, in under 4 KiB of RAM.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use panic_semihosting as _;
use staticgrad::{Memory, Node, ParamEntry};
use staticgrad_demos::adapt::{self, ADAPT, PLAN, PerDigit};
use staticgrad_demos::adapt_base::{FROZEN, TRAINABLE};
use staticgrad_fw::{Firmware, Line, finish, stack};

staticgrad_fw::hardfault_exits!();
include!("../vectors.rs");

// The planned statics alone leave room for a stack in the budget (`finish` checks the stack).
const _: () = assert!(PLAN.total_bytes() <= ADAPT.ram_budget);

/// `digits <name> <when> d:correct/total …`
#[inline(never)]
fn per_digit(when: &str, p: &PerDigit) {
    let mut l = Line::new();
    l.s("digits ").s(ADAPT.name).s(" ").s(when);
    for d in 0..10 {
        l.s(" ").u(d).s(":").u(p.correct[d] as usize).s("/").u(p.total[d] as usize);
    }
    l.print();
}

#[entry]
fn main() -> ! {
    // Only the trained top layer, its row of scratch and one example's tape are in RAM; the
    // frozen layer is `FROZEN`, a `static` in flash.
    static mut VALUES: [f32; PLAN.param_floats] = [0.0; PLAN.param_floats];
    static mut GRADS: [f32; PLAN.grad_floats] = [0.0; PLAN.grad_floats];
    static mut TABLE: [ParamEntry; PLAN.param_tensors] = [ParamEntry::EMPTY; PLAN.param_tensors];
    static mut STATE: [f32; PLAN.state_floats] = [0.0; PLAN.state_floats];
    static mut FLOATS: [f32; PLAN.tape_floats] = [0.0; PLAN.tape_floats];
    static mut NODES: [Node; PLAN.tape_nodes] = [Node::EMPTY; PLAN.tape_nodes];
    stack::paint();
    staticgrad_fw::announce(ADAPT.name, &PLAN, ADAPT.measure.1);
    let memory = Memory {
        values: VALUES,
        grads: GRADS,
        table: TABLE,
        state: STATE,
        floats: FLOATS,
        nodes: NODES,
        frozen: &FROZEN,
    };
    let outcome = adapt::adapt(&ADAPT, memory, &TRAINABLE, &mut Firmware(ADAPT.name)).map(|r| {
        per_digit("before", &r.before);
        per_digit("after", &r.after);
        r.outcome
    });
    finish(ADAPT.name, outcome, stack::used(), ADAPT.ram_budget)
}
