/// One MNIST firmware (the MLP or the CNN): every buffer a `static` sized by the planner for
/// variant `$cfg` ([`staticgrad_demos::mnist::MnistConfig::plan`], the model's const planner).
macro_rules! mnist_firmware {
    ($cfg:path) => {
        use cortex_m_rt::entry;
        use panic_semihosting as _;
        use staticgrad::model::Plan;
        use staticgrad::{Memory, Node, ParamEntry};
        use staticgrad_demos::mnist;
        use staticgrad_fw::{Firmware, finish, stack};

        staticgrad_fw::hardfault_exits!();
        include!("../vectors.rs"); // relative to the invoking src/bin/*.rs

        const CFG: mnist::MnistConfig = $cfg;
        const PLAN: Plan = CFG.plan();
        const B: usize = CFG.batch;
        // Checked at compile time: the planned statics leave room for the stack in the variant's
        // RAM budget (64 KiB for batch 1 with a gradient buffer, 36 KiB fused, …).
        const _: () = assert!(CFG.static_bytes() + staticgrad_fw::STACK_RESERVE <= CFG.ram_budget);
        const _: () = assert!(
            !CFG.fused || PLAN.grad_floats == CFG.model().fused_grad_floats(),
            "fused: a row scratch, no gradient buffer"
        );

        #[entry]
        #[allow(clippy::too_many_arguments)] // `#[entry]` turns each `static mut` into an argument
        fn main() -> ! {
            // `static mut` in `#[entry]` become safe `&'static mut` references.
            static mut VALUES: [f32; PLAN.param_floats] = [0.0; PLAN.param_floats];
            static mut GRADS: [f32; PLAN.grad_floats] = [0.0; PLAN.grad_floats];
            static mut TABLE: [ParamEntry; PLAN.param_tensors] = [ParamEntry::EMPTY; PLAN.param_tensors];
            static mut STATE: [f32; PLAN.state_floats] = [0.0; PLAN.state_floats];
            static mut FLOATS: [f32; PLAN.tape_floats] = [0.0; PLAN.tape_floats];
            static mut NODES: [Node; PLAN.tape_nodes] = [Node::EMPTY; PLAN.tape_nodes];
            static mut X: [f32; B * mnist::INPUTS] = [0.0; B * mnist::INPUTS];
            static mut LABELS: [u32; B] = [0; B];
            stack::paint();
            staticgrad_fw::announce(CFG.name, &PLAN, CFG.measure.1);
            // Adam's square root is the FPU's (`arm-fpu-sqrt` feature): it must give libm's bits.
            if matches!(CFG.optimizer.rule, staticgrad::optim::Rule::Adam { .. }) {
                staticgrad_fw::check_sqrt(CFG.name);
            }
            let memory = Memory {
                values: VALUES,
                grads: GRADS,
                table: TABLE,
                state: STATE,
                floats: FLOATS,
                nodes: NODES,
                frozen: &[],
            };
            let outcome = mnist::train(&CFG, &PLAN, memory, X, LABELS, &mut Firmware(CFG.name));
            finish(CFG.name, outcome, stack::used(), CFG.ram_budget)
        }
    };
}
