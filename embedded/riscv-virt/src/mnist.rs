/// One MNIST firmware: every buffer a `static` sized by the planner for variant `$cfg`
/// ([`staticgrad_demos::mnist::MnistConfig::plan`], the model's const planner), as the
/// Cortex-M4F build's `src/mnist.rs`.
macro_rules! mnist_firmware {
    ($cfg:path) => {
        use staticgrad::model::Plan;
        use staticgrad::{Memory, Node, ParamEntry};
        use staticgrad_demos::mnist;
        use staticgrad_fw::{Firmware, finish, stack};

        staticgrad_fw::trap_exits!();

        const CFG: mnist::MnistConfig = $cfg;
        const PLAN: Plan = CFG.plan();
        const B: usize = CFG.batch;
        // Checked at compile time: the planned statics leave room for the stack in the variant's
        // RAM budget.
        const _: () = assert!(CFG.static_bytes() + staticgrad_fw::STACK_RESERVE <= CFG.ram_budget);

        static mut VALUES: [f32; PLAN.param_floats] = [0.0; PLAN.param_floats];
        static mut GRADS: [f32; PLAN.grad_floats] = [0.0; PLAN.grad_floats];
        static mut TABLE: [ParamEntry; PLAN.param_tensors] = [ParamEntry::EMPTY; PLAN.param_tensors];
        static mut STATE: [f32; PLAN.state_floats] = [0.0; PLAN.state_floats];
        static mut FLOATS: [f32; PLAN.tape_floats] = [0.0; PLAN.tape_floats];
        static mut NODES: [Node; PLAN.tape_nodes] = [Node::EMPTY; PLAN.tape_nodes];
        static mut X: [f32; B * mnist::INPUTS] = [0.0; B * mnist::INPUTS];
        static mut LABELS: [u32; B] = [0; B];

        #[riscv_rt::entry]
        fn main() -> ! {
            stack::paint();
            staticgrad_fw::announce(CFG.name, &PLAN, CFG.measure.1);
            // Adam's square root: on rv32imafc `fsqrt.s` may be used; it must give libm's bits.
            if matches!(CFG.optimizer.rule, staticgrad::optim::Rule::Adam { .. }) {
                staticgrad_fw::check_sqrt(CFG.name);
            }
            // SAFETY: `main` runs once and never returns, and nothing else names these statics:
            // each reference is the only one for the rest of the program (what cortex-m-rt's
            // `#[entry]` does for the Arm builds' `static mut`s).
            #[allow(clippy::deref_addrof)] // `&mut *(&raw mut S)`, not `&mut S`: a `static mut`
            let (memory, x, labels) = unsafe {
                (
                    Memory {
                        values: &mut *(&raw mut VALUES),
                        grads: &mut *(&raw mut GRADS),
                        table: &mut *(&raw mut TABLE),
                        state: &mut *(&raw mut STATE),
                        floats: &mut *(&raw mut FLOATS),
                        nodes: &mut *(&raw mut NODES),
                        frozen: &[],
                    },
                    &mut *(&raw mut X),
                    &mut *(&raw mut LABELS),
                )
            };
            let outcome = mnist::train(&CFG, &PLAN, memory, x, labels, &mut Firmware(CFG.name));
            finish(CFG.name, outcome, stack::used(), CFG.ram_budget)
        }
    };
}
