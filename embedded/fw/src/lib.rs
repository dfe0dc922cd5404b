//! What the demo firmwares share: printing over semihosting (integers only, no float
//! formatting), exiting QEMU with a status, the instruction-count marker, and stack painting to
//! measure the stack's high-water mark.
#![no_std]
#![warn(missing_docs)]

use cortex_m_semihosting::{debug, hprintln};
use staticgrad_demos::{EpochReport, Hooks, Outcome, fixed4};

pub use cortex_m_semihosting::hprintln as println;

/// Stack a firmware keeps free in its compile-time RAM check (the measured use is ~1 KiB).
pub const STACK_RESERVE: usize = 2 * 1024;

unsafe extern "C" {
    static __sdata: u32;
    static __edata: u32;
    static __sbss: u32;
    static __ebss: u32;
}

/// Bytes of static RAM in use: `.data` plus `.bss` (from the linker's symbols).
pub fn static_ram() -> usize {
    let a = |p: *const u32| p as usize;
    (a(&raw const __edata) - a(&raw const __sdata)) + (a(&raw const __ebss) - a(&raw const __sbss))
}

/// Ends the QEMU run: exit status 0 if `ok`, 1 otherwise.
pub fn exit(ok: bool) -> ! {
    debug::exit(if ok { debug::EXIT_SUCCESS } else { debug::EXIT_FAILURE });
    #[allow(clippy::empty_loop)]
    loop {}
}

/// The marker `embedded/tools/insns-per-step.sh` counts instructions between: `mov r12, r12`
/// (Thumb 0x46E4), a no-op.
#[inline(always)]
pub fn marker() {
    // SAFETY: moves a register onto itself; touches no memory, flags or other registers.
    unsafe { core::arch::asm!("mov r12, r12", options(nomem, nostack, preserves_flags)) }
}

/// Hooks that print each epoch and execute the marker around the measured steps.
pub struct Firmware(pub &'static str);

impl Hooks for Firmware {
    fn mark(&mut self) {
        marker();
    }
    fn epoch(&mut self, r: &EpochReport) {
        hprintln!("{} epoch {} loss_e4 {} held-out {}/{}", self.0, r.epoch, fixed4(r.mean_loss), r.correct, r.total);
    }
}

/// Prints what the planner asked for, by region in bytes (`plan <name> params … total …`), and
/// how many training steps the instruction-count markers enclose (`measure <name> steps <n>`):
/// what `embedded/measure.sh` reads.
pub fn announce(name: &str, plan: &staticgrad::mlp::Plan, measured_steps: u32) {
    hprintln!(
        "plan {} params {} grads {} state {} tape {} total {}",
        name,
        plan.param_bytes(),
        plan.grad_bytes(),
        plan.state_bytes(),
        plan.tape_bytes(),
        plan.total_bytes()
    );
    hprintln!("measure {} steps {}", name, measured_steps);
}

/// Prints the result lines (`checksum <name> <hex>`, RAM use, pass/fail) and exits with the
/// verdict: pass if training met its bar and static RAM plus the stack's high-water mark fit
/// `ram_budget` bytes.
pub fn finish(name: &str, outcome: Result<Outcome, staticgrad::Error>, stack_used: usize, ram_budget: usize) -> ! {
    match outcome {
        Ok(o) => {
            let ram = static_ram() + stack_used;
            hprintln!("checksum {} {:08x}", name, o.checksum);
            hprintln!("ram {} static {} stack {} total {} budget {}", name, static_ram(), stack_used, ram, ram_budget);
            let ok = o.passed && ram <= ram_budget;
            hprintln!("result {} {} after {} steps", name, if ok { "PASS" } else { "FAIL" }, o.steps);
            exit(ok)
        }
        Err(e) => {
            print_error(name, &e);
            exit(false)
        }
    }
}

/// Prints an error with integers only: `Error`'s `Display` would link float formatting (~25 KB
/// of flash) for the one variant that carries an `f32`, printed here as its bit pattern.
fn print_error(name: &str, e: &staticgrad::Error) {
    use staticgrad::Error as E;
    match *e {
        E::Capacity { region, needed, available } => {
            hprintln!("error {}: not enough {}: need {}, have {}", name, region, needed, available)
        }
        E::Shape { op, expected, found } => hprintln!("error {}: {}: expected {}, found {}", name, op, expected, found),
        E::Label { row, label, classes } => hprintln!("error {}: label {} in row {} of {} classes", name, label, row, classes),
        E::NonFinite { what, index } => hprintln!("error {}: non-finite {} at {}", name, what, index),
        E::InvalidHandle { what, index } => hprintln!("error {}: invalid {} handle {}", name, what, index),
        E::InvalidArgument { what, value } => {
            hprintln!("error {}: invalid {} (f32 bits {:#010x})", name, what, value.to_bits())
        }
        E::Unsupported { what } => hprintln!("error {}: unsupported: {}", name, what),
    }
}

/// Stack painting: fill the unused stack with a pattern at boot, find the deepest overwritten
/// word after the work.
pub mod stack {
    const PAINT: u32 = 0x5AC3_5AC3;
    /// At most this much of the stack is painted and measured.
    pub const WINDOW: usize = 64 * 1024;

    unsafe extern "C" {
        static mut __sheap: u32;
        static _stack_start: u32;
    }

    fn bounds() -> (usize, usize) {
        let top = core::ptr::addr_of!(_stack_start) as usize;
        let heap = core::ptr::addr_of_mut!(__sheap) as usize;
        (heap.max(top.saturating_sub(WINDOW)), top)
    }

    /// Paints the stack below the current frame (call first thing in `main`).
    #[inline(never)]
    pub fn paint() {
        let (lo, _) = bounds();
        let sp = cortex_m::register::msp::read() as usize - 64;
        let mut p = lo;
        while p < sp {
            // SAFETY: [lo, sp − 64) lies between the end of .bss/.uninit and the live stack:
            // memory nothing else uses yet.
            unsafe { core::ptr::write_volatile(p as *mut u32, PAINT) };
            p += 4;
        }
    }

    /// Bytes of stack used since [`paint`] (deepest overwritten word up to the stack top).
    pub fn used() -> usize {
        let (lo, top) = bounds();
        let mut p = lo;
        // SAFETY: reads words of the painted region, which stays mapped RAM.
        while p < top && unsafe { core::ptr::read_volatile(p as *const u32) } == PAINT {
            p += 4;
        }
        top - p
    }
}

/// Defines a `HardFault` handler that reports and exits with failure (use once per binary).
#[macro_export]
macro_rules! hardfault_exits {
    () => {
        #[cortex_m_rt::exception]
        unsafe fn HardFault(ef: &cortex_m_rt::ExceptionFrame) -> ! {
            $crate::println!("HardFault at pc {:#010x}", ef.pc());
            $crate::exit(false)
        }
    };
}

/// Exits with failure unless the square root the update rules use gives libm's bits
/// ([`staticgrad_demos::sqrt_mismatch`]; on this target the FPU's `vsqrt.f32`). Out of line, so
/// a firmware's `main` and what it inlines stay as they are.
#[inline(never)]
pub fn check_sqrt(name: &str) {
    if let Some(bits) = staticgrad_demos::sqrt_mismatch() {
        hprintln!("error {}: sqrt of bits {} differs from libm", name, bits);
        exit(false);
    }
}
