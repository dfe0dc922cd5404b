//! The memory bundle: every buffer a [`Plan`] names, in one value a [`Trainer`](crate::Trainer)
//! is made from. A firmware builds it from its `static`s, a host from `Vec`s (the runner's
//! `OwnedMemory`), a test or an example from stack arrays with [`memory!`](crate::memory!).
//! [`Memory::check`] compares it with the plan once, naming the first region that is short.

use crate::error::{Error, Region, Result};
use crate::model::Plan;
use crate::params::ParamEntry;
use crate::tape::Node;

/// Caller storage for training one model: each field is at least the matching [`Plan`] count.
///
/// ```
/// use staticgrad::model::{MlpSpec, Model, Plan};
/// use staticgrad::optim::Optimizer;
/// use staticgrad::{Error, Region};
/// const NET: Model = MlpSpec::new(&[2, 3, 1]).model();
/// const PLAN: Plan = NET.plan(4, &Optimizer::sgd());
/// let memory = staticgrad::memory!(PLAN); // six zeroed arrays on the stack
/// assert_eq!(memory.check(&PLAN), Ok(()));
/// let bigger = Plan { tape_nodes: PLAN.tape_nodes + 1, ..PLAN };
/// let short = Error::Capacity { region: Region::TapeNodes, needed: bigger.tape_nodes, available: PLAN.tape_nodes };
/// assert_eq!(memory.check(&bigger), Err(short));
/// ```
#[derive(Debug)]
pub struct Memory<'m> {
    /// Parameter values ([`Plan::param_floats`]).
    pub values: &'m mut [f32],
    /// Parameter gradients, or the fused update's one-row scratch ([`Plan::grad_floats`] of the
    /// plan in use: [`Model::plan`](crate::Model::plan) or
    /// [`Model::plan_fused`](crate::Model::plan_fused)).
    pub grads: &'m mut [f32],
    /// The parameter table ([`Plan::param_tensors`]).
    pub table: &'m mut [ParamEntry],
    /// Optimizer state, step counter included ([`Plan::state_floats`]).
    pub state: &'m mut [f32],
    /// The tape's float arena ([`Plan::tape_floats`]).
    pub floats: &'m mut [f32],
    /// The tape's op records ([`Plan::tape_nodes`]).
    pub nodes: &'m mut [Node],
    /// The read-only values of the model's [frozen](crate::model::Layer::frozen) layers
    /// ([`Model::frozen_len`](crate::Model::frozen_len) floats, in layout order): a `static` in
    /// flash on a device; empty for a model without frozen layers.
    pub frozen: &'m [f32],
}

impl Memory<'_> {
    /// `Ok` if every region holds at least what `plan` counts, else
    /// [`Error::Capacity`] naming the first short one (values, gradients, table, state, tape
    /// floats, tape nodes).
    // for a `const` plan and `static` buffers, the comparisons fold away
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn check(&self, plan: &Plan) -> Result<()> {
        let regions = [
            (Region::ParamFloats, plan.param_floats, self.values.len()),
            (Region::ParamGrads, plan.grad_floats, self.grads.len()),
            (Region::ParamTensors, plan.param_tensors, self.table.len()),
            (Region::OptimizerState, plan.state_floats, self.state.len()),
            (Region::TapeFloats, plan.tape_floats, self.floats.len()),
            (Region::TapeNodes, plan.tape_nodes, self.nodes.len()),
        ];
        for (region, needed, available) in regions {
            if available < needed {
                return Err(Error::Capacity { region, needed, available });
            }
        }
        Ok(())
    }
}

/// A [`Memory`] over fresh zeroed arrays, sized by a `const` [`Plan`]: one line of setup for a
/// test, an example or a firmware's stack. The arrays live as long as the `let` that binds the
/// result (temporary lifetime extension of a struct literal's borrows). A model with frozen
/// layers names their values: `memory!(PLAN, frozen = &BASE)`.
///
/// ```
/// use staticgrad::model::{MlpSpec, Model, Plan};
/// use staticgrad::optim::Optimizer;
/// const PLAN: Plan = MlpSpec::new(&[4, 8, 3]).model().plan(2, &Optimizer::adam());
/// let memory = staticgrad::memory!(PLAN);
/// assert_eq!(memory.values.len(), PLAN.param_floats);
/// ```
#[macro_export]
macro_rules! memory {
    ($plan:expr) => {
        $crate::Memory {
            values: &mut [0.0f32; $plan.param_floats],
            grads: &mut [0.0f32; $plan.grad_floats],
            table: &mut [$crate::ParamEntry::EMPTY; $plan.param_tensors],
            state: &mut [0.0f32; $plan.state_floats],
            floats: &mut [0.0f32; $plan.tape_floats],
            nodes: &mut [$crate::Node::EMPTY; $plan.tape_nodes],
            frozen: &[],
        }
    };
    ($plan:expr, frozen = $frozen:expr) => {
        $crate::Memory {
            values: &mut [0.0f32; $plan.param_floats],
            grads: &mut [0.0f32; $plan.grad_floats],
            table: &mut [$crate::ParamEntry::EMPTY; $plan.param_tensors],
            state: &mut [0.0f32; $plan.state_floats],
            floats: &mut [0.0f32; $plan.tape_floats],
            nodes: &mut [$crate::Node::EMPTY; $plan.tape_nodes],
            frozen: $frozen,
        }
    };
}
