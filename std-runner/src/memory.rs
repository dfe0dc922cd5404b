//! The core's [`Memory`] bundle over `Vec`s: every buffer of a [`Plan`], allocated once. A run
//! charges these bytes to its memory budget before it allocates them
//! ([`OwnedMemory::within`], or [`crate::train::prepare_within`] for a training run).

use crate::Error;
use crate::budget::{self, Budget};
use staticgrad::{Memory, Node, ParamEntry, Plan};

/// The buffers a plan names, owned: [`memory`](Self::memory) lends them to a
/// [`Trainer`](staticgrad::Trainer).
#[derive(Debug, Clone)]
pub struct OwnedMemory {
    values: Vec<f32>,
    grads: Vec<f32>,
    table: Vec<ParamEntry>,
    state: Vec<f32>,
    floats: Vec<f32>,
    nodes: Vec<Node>,
    frozen: Vec<f32>,
}

impl OwnedMemory {
    /// Zeroed buffers of exactly `plan`'s sizes (a plan from `Model::try_plan`, whose counts
    /// fit in memory; charge them first, see [`within`](Self::within)).
    pub fn new(plan: &Plan) -> OwnedMemory {
        OwnedMemory {
            values: vec![0.0; plan.param_floats],
            grads: vec![0.0; plan.grad_floats],
            table: vec![ParamEntry::EMPTY; plan.param_tensors],
            state: vec![0.0; plan.state_floats],
            floats: vec![0.0; plan.tape_floats],
            nodes: vec![Node::EMPTY; plan.tape_nodes],
            frozen: Vec::new(),
        }
    }

    /// [`new`](Self::new), after charging its bytes to `budget` as `what` (refused, with
    /// nothing allocated, if they do not fit).
    pub fn within(plan: &Plan, budget: &mut Budget, what: &str) -> Result<OwnedMemory, Error> {
        budget.charge(what, Self::bytes(plan))?;
        Ok(OwnedMemory::new(plan))
    }

    /// Bytes of the buffers of `plan`, `None` if they overflow.
    pub fn bytes(plan: &Plan) -> Option<u64> {
        budget::sum(&[
            budget::of::<f32>(plan.param_floats),
            budget::of::<f32>(plan.grad_floats),
            budget::of::<ParamEntry>(plan.param_tensors),
            budget::of::<f32>(plan.state_floats),
            budget::of::<f32>(plan.tape_floats),
            budget::of::<Node>(plan.tape_nodes),
        ])
    }

    /// With `frozen` as the read-only values of the model's frozen layers.
    pub fn with_frozen(mut self, frozen: Vec<f32>) -> Self {
        self.frozen = frozen;
        self
    }

    /// The buffers, lent as the core's bundle.
    pub fn memory(&mut self) -> Memory<'_> {
        Memory {
            values: &mut self.values,
            grads: &mut self.grads,
            table: &mut self.table,
            state: &mut self.state,
            floats: &mut self.floats,
            nodes: &mut self.nodes,
            frozen: &self.frozen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use staticgrad::{MlpSpec, Optimizer};

    #[test]
    fn holds_the_plan_and_is_charged() {
        let plan = MlpSpec::new(&[4, 8, 3]).model().plan(2, &Optimizer::adam());
        let mut m = OwnedMemory::new(&plan);
        assert_eq!(m.memory().check(&plan), Ok(()));
        let mut budget = Budget::new(64, "test");
        assert!(OwnedMemory::within(&plan, &mut budget, "the model").is_err());
        let mut budget = Budget::new(1 << 20, "test");
        OwnedMemory::within(&plan, &mut budget, "the model").unwrap();
        assert_eq!(Some(budget.used()), OwnedMemory::bytes(&plan));
    }
}
