//! What the demo firmwares share: printing over semihosting (integers only, and without
//! `core::fmt`: lines are assembled by [`Line`]), exiting QEMU with a status, the
//! instruction-count marker, and stack painting to measure the stack's high-water mark. On a
//! Cortex-M a panic goes to `panic-semihosting` (with `exit`), which each Arm firmware links:
//! message over semihosting, QEMU exits with failure. On RISC-V (`riscv32`, built on `riscv-rt`
//! and `riscv-semihosting`) this crate's own panic handler and [`trap_exits!`] do the same.
//! What differs by architecture is in the `arch` module; everything else is shared.
#![no_std]
#![warn(missing_docs)]

#[cfg(target_arch = "arm")]
use cortex_m_semihosting::{debug, hprint};
#[cfg(target_arch = "riscv32")]
use riscv_semihosting::{debug, hprint};
use staticgrad_demos::{EpochReport, Hooks, Outcome, fixed4};

/// One line of output, assembled in a stack buffer from strings and integers and written with
/// one semihosting call. No `core::fmt`: its machinery (padding, `Arguments`, the `Display`
/// impls) is about 3 KB of flash, more than everything the firmware prints needs. A string or
/// number that does not fit in the rest of the buffer is dropped whole, so the buffer always
/// holds whole `&str`s (valid UTF-8). Out of line and small: printing is not the hot path.
pub struct Line {
    buf: [u8; Line::CAP],
    len: usize,
}

impl Default for Line {
    fn default() -> Self {
        Self::new()
    }
}

impl Line {
    const CAP: usize = 128;

    /// An empty line.
    pub const fn new() -> Self {
        Line { buf: [0; Line::CAP], len: 0 }
    }

    /// Appends `s` (if all of it fits).
    #[inline(never)]
    pub fn s(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes());
        self
    }

    /// Appends `b` if all of it fits, keeping the last byte free for the newline: only ever
    /// whole `&str`s or ASCII digits go in.
    fn bytes(&mut self, b: &[u8]) {
        let room = self.buf.get_mut(..Line::CAP - 1).unwrap_or_default();
        if let Some(dst) = room.get_mut(self.len..self.len + b.len()) {
            dst.copy_from_slice(b);
            self.len += b.len();
        }
    }

    /// Appends `v` in decimal.
    #[inline(never)]
    pub fn u(&mut self, v: usize) -> &mut Self {
        let mut digits = [0u8; 20]; // most significant last, written from the end
        let (mut v, mut start) = (v, digits.len());
        for d in digits.iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            start -= 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.bytes(digits.get(start..).unwrap_or_default());
        self
    }

    /// Appends `v` as 8 lowercase hexadecimal digits (`{:08x}`).
    #[inline(never)]
    pub fn hex(&mut self, v: u32) -> &mut Self {
        let mut digits = [0u8; 8];
        for (i, d) in digits.iter_mut().enumerate() {
            let x = ((v >> (28 - 4 * i)) & 0xf) as u8;
            *d = if x < 10 { b'0' + x } else { b'a' + x - 10 };
        }
        self.bytes(&digits);
        self
    }

    /// Writes the line and a newline to the host's standard output.
    #[inline(never)]
    pub fn print(&mut self) {
        let Some(newline) = self.buf.get_mut(self.len) else {
            return;
        };
        *newline = b'\n';
        let line = self.buf.get(..self.len + 1).unwrap_or_default();
        // SAFETY: the buffer holds whole `&str`s and ASCII only (`bytes` appends all or nothing),
        // so it is valid UTF-8.
        let text = unsafe { core::str::from_utf8_unchecked(line) };
        hprint!(text); // one `&str`: no formatting
    }
}

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

/// The marker `embedded/tools/insns-per-step.sh` counts instructions between, a no-op: on a
/// Cortex-M `mov r12, r12` (Thumb 0x46E4), on RISC-V `addi x0, x0, 0x5a` (0x05a00013, a HINT
/// encoding, kept 32 bits wide), neither of which a compiler emits.
#[cfg_attr(not(debug_assertions), inline(always))]
pub fn marker() {
    // SAFETY: moves a register onto itself; touches no memory, flags or other registers.
    #[cfg(target_arch = "arm")]
    unsafe {
        core::arch::asm!("mov r12, r12", options(nomem, nostack, preserves_flags))
    }
    // SAFETY: writes the zero register, i.e. nothing; touches no memory or other registers.
    #[cfg(target_arch = "riscv32")]
    unsafe {
        core::arch::asm!(
            ".option push",
            ".option norvc",
            "addi x0, x0, 0x5a",
            ".option pop",
            options(nomem, nostack, preserves_flags)
        )
    }
}

/// Hooks that print each epoch and execute the marker around the measured steps.
pub struct Firmware(pub &'static str);

impl Hooks for Firmware {
    fn mark(&mut self) {
        marker();
    }
    #[inline(never)]
    fn epoch(&mut self, r: &EpochReport) {
        Line::new()
            .s(self.0)
            .s(" epoch ")
            .u(r.epoch as usize)
            .s(" loss_e4 ")
            .u(fixed4(r.mean_loss) as usize)
            .s(" held-out ")
            .u(r.correct as usize)
            .s("/")
            .u(r.total as usize)
            .print();
    }
}

/// Prints what the planner asked for, by region in bytes (`plan <name> params … total …`), and
/// how many training steps the instruction-count markers enclose (`measure <name> steps <n>`):
/// what `embedded/measure.sh` reads.
#[inline(never)]
pub fn announce(name: &str, plan: &staticgrad::model::Plan, measured_steps: u32) {
    Line::new()
        .s("plan ")
        .s(name)
        .s(" params ")
        .u(plan.param_bytes())
        .s(" grads ")
        .u(plan.grad_bytes())
        .s(" state ")
        .u(plan.state_bytes())
        .s(" tape ")
        .u(plan.tape_bytes())
        .s(" total ")
        .u(plan.total_bytes())
        .print();
    Line::new().s("measure ").s(name).s(" steps ").u(measured_steps as usize).print();
}

/// Prints the result lines (`checksum <name> <hex>`, RAM use, pass/fail) and exits with the
/// verdict: pass if training met its bar and static RAM plus the stack's high-water mark fit
/// `ram_budget` bytes.
pub fn finish(
    name: &str,
    outcome: Result<Outcome, staticgrad::Error>,
    stack_used: usize,
    ram_budget: usize,
) -> ! {
    match outcome {
        Ok(o) => {
            let ram = static_ram() + stack_used;
            Line::new().s("checksum ").s(name).s(" ").hex(o.checksum).print();
            Line::new()
                .s("ram ")
                .s(name)
                .s(" static ")
                .u(static_ram())
                .s(" stack ")
                .u(stack_used)
                .s(" total ")
                .u(ram)
                .s(" budget ")
                .u(ram_budget)
                .print();
            let ok = o.passed && ram <= ram_budget;
            let verdict = if ok { " PASS after " } else { " FAIL after " };
            Line::new().s("result ").s(name).s(verdict).u(o.steps as usize).s(" steps").print();
            exit(ok)
        }
        Err(e) => {
            print_error(name, &e);
            exit(false)
        }
    }
}

/// Prints an error with integers only (`Error`'s `Display` would link `core::fmt`, and float
/// formatting for the one variant that carries an `f32`, printed here as its bit pattern).
#[inline(never)]
fn print_error(name: &str, e: &staticgrad::Error) {
    use staticgrad::{Error as E, Region as R, Shape};
    fn shape(l: &mut Line, s: Shape) {
        l.u(s.rows).s("x").u(s.cols);
    }
    let mut l = Line::new();
    l.s("error ").s(name).s(": ");
    match *e {
        E::Capacity { region, needed, available } => {
            let region = match region {
                R::TapeFloats => "tape floats",
                R::TapeNodes => "tape nodes",
                R::ParamFloats => "parameter floats",
                R::ParamGrads => "parameter gradient floats",
                R::ParamTensors => "parameter tensors",
                R::OptimizerState => "optimizer state floats",
                R::FrozenFloats => "frozen parameter floats",
            };
            l.s("not enough ").s(region).s(": need ").u(needed).s(", have ").u(available);
        }
        E::Shape { op, expected, found } => {
            l.s(op).s(": expected ");
            shape(&mut l, expected);
            l.s(", found ");
            shape(&mut l, found);
        }
        E::Label { row, label, classes } => {
            l.s("label ").u(label).s(" in row ").u(row).s(" of ").u(classes).s(" classes");
        }
        E::NonFinite { what, index } => {
            l.s("non-finite ").s(what).s(" at ").u(index);
        }
        E::InvalidHandle { what, index } => {
            l.s("invalid ").s(what).s(" handle ").u(index);
        }
        E::InvalidArgument { what, value } => {
            l.s("invalid ").s(what).s(" (f32 bits 0x").hex(value.to_bits()).s(")");
        }
        E::Unsupported { what } => {
            l.s("unsupported: ").s(what);
        }
        E::Overflow { what, batch } => {
            l.s(what).s(" overflow usize at batch ").u(batch);
        }
    }
    l.print();
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
        let sp = super::arch::stack_pointer() - 64;
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

/// Defines a `HardFault` handler that reports and exits with failure (use once per Cortex-M
/// binary).
#[macro_export]
macro_rules! hardfault_exits {
    () => {
        #[cortex_m_rt::exception]
        unsafe fn HardFault(ef: &cortex_m_rt::ExceptionFrame) -> ! {
            $crate::Line::new().s("HardFault at pc 0x").hex(ef.pc()).print();
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
        Line::new().s("error ").s(name).s(": sqrt of bits ").u(bits as usize).s(" differs from libm").print();
        exit(false);
    }
}

/// Defines riscv-rt's `ExceptionHandler` so that a trap (illegal instruction, misaligned or
/// faulting access, …) reports its cause and address and exits with failure instead of spinning
/// until QEMU's timeout (use once per RISC-V binary).
#[macro_export]
macro_rules! trap_exits {
    () => {
        #[unsafe(export_name = "ExceptionHandler")]
        fn exception_handler(_frame: &riscv_rt::TrapFrame) -> ! {
            $crate::arch::report_trap()
        }
    };
}

/// What differs between the architectures the firmwares run on.
#[doc(hidden)]
pub mod arch {
    /// The stack pointer (Cortex-M: the main stack pointer, the one the firmware runs on).
    #[cfg(target_arch = "arm")]
    #[inline(always)]
    pub fn stack_pointer() -> usize {
        cortex_m::register::msp::read() as usize
    }

    /// The stack pointer.
    #[cfg(target_arch = "riscv32")]
    #[inline(always)]
    pub fn stack_pointer() -> usize {
        let sp: usize;
        // SAFETY: copies the stack pointer into a register; touches no memory.
        unsafe { core::arch::asm!("mv {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
        sp
    }

    /// Prints `trap mcause 0x… mepc 0x… mtval 0x…` and exits with failure.
    #[cfg(target_arch = "riscv32")]
    #[inline(never)]
    pub fn report_trap() -> ! {
        let (cause, pc, val): (u32, u32, u32);
        // SAFETY: reads three machine-mode CSRs (the firmware runs in machine mode); no side effects.
        unsafe {
            core::arch::asm!(
                "csrr {0}, mcause",
                "csrr {1}, mepc",
                "csrr {2}, mtval",
                out(reg) cause,
                out(reg) pc,
                out(reg) val,
                options(nomem, nostack, preserves_flags)
            )
        };
        super::Line::new()
            .s("trap mcause 0x")
            .hex(cause)
            .s(" mepc 0x")
            .hex(pc)
            .s(" mtval 0x")
            .hex(val)
            .print();
        super::exit(false)
    }

    /// A panic prints where it happened (`panic at file:line`; the message would link
    /// `core::fmt`) and exits with failure.
    #[cfg(target_arch = "riscv32")]
    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
        let mut l = super::Line::new();
        l.s("panic");
        if let Some(loc) = info.location() {
            l.s(" at ").s(loc.file()).s(":").u(loc.line() as usize);
        }
        l.print();
        super::exit(false)
    }
}
