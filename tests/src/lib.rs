//! Shared helpers for the cross-crate tests: golden-file access, heap-backed storage for host
//! tests, and float comparison with a tolerance.

pub mod counting;

use serde_json::Value;
use staticgrad::{Node, ParamEntry, Params, Shape, Tape};

/// Parses `tests/golden/<name>` (copied from the book reference; see tests/golden/README.md).
pub fn golden(name: &str) -> Value {
    let path = format!("{}/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A golden array `{shape, data}` as f64 values and a 2-D shape (1-D arrays become one row).
pub fn array(v: &Value) -> (Vec<f64>, Shape) {
    let shape: Vec<usize> =
        v["shape"].as_array().expect("shape").iter().map(|d| d.as_u64().expect("dim") as usize).collect();
    let data: Vec<f64> =
        v["data"].as_array().expect("data").iter().map(|x| x.as_f64().expect("f64")).collect();
    let shape = match shape.as_slice() {
        [n] => Shape::row(*n),
        [r, c] => Shape::new(*r, *c),
        other => panic!("unsupported golden shape {other:?}"),
    };
    (data, shape)
}

/// A golden array converted to f32.
pub fn array_f32(v: &Value) -> (Vec<f32>, Shape) {
    let (d, s) = array(v);
    (d.into_iter().map(|x| x as f32).collect(), s)
}

/// Asserts `|got − want| ≤ atol + rtol·|want|` element-wise, naming the first offender.
pub fn assert_close(what: &str, got: &[f32], want: &[f64], rtol: f64, atol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g as f64 - w).abs();
        assert!(err <= atol + rtol * w.abs(), "{what}[{i}]: got {g}, want {w} (error {err:.3e})");
    }
}

/// Worst relative error `|g − w| / max(|w|, floor)` of `got` against `want`.
pub fn worst_rel(got: &[f32], want: &[f64], floor: f64) -> f64 {
    got.iter().zip(want).map(|(&g, &w)| (g as f64 - w).abs() / w.abs().max(floor)).fold(0.0, f64::max)
}

/// Heap-backed storage for host tests (the core never allocates; the test decides where memory lives).
pub struct HostStorage {
    /// Tape float arena.
    pub floats: Vec<f32>,
    /// Tape node records.
    pub nodes: Vec<Node>,
    /// Parameter values.
    pub values: Vec<f32>,
    /// Parameter gradients.
    pub grads: Vec<f32>,
    /// Parameter table.
    pub table: Vec<ParamEntry>,
}

impl HostStorage {
    /// Storage with the given tape floats, tape nodes, parameter floats and parameter tensors.
    pub fn new(tape_floats: usize, nodes: usize, param_floats: usize, tensors: usize) -> Self {
        HostStorage {
            floats: vec![0.0; tape_floats],
            nodes: vec![Node::EMPTY; nodes],
            values: vec![0.0; param_floats],
            grads: vec![0.0; param_floats],
            table: vec![ParamEntry::EMPTY; tensors],
        }
    }

    /// A tape and an empty parameter set over this storage.
    pub fn split(&mut self) -> (Tape<'_>, Params<'_>) {
        (
            Tape::new(&mut self.floats, &mut self.nodes),
            Params::new(&mut self.values, &mut self.grads, &mut self.table),
        )
    }
}

/// Heap buffers of a [`Plan`](staticgrad::Plan), lent as the core's [`Memory`](staticgrad::Memory)
/// bundle (what the runner's `OwnedMemory` is; the tests do not depend on the runner).
pub struct HostMemory {
    values: Vec<f32>,
    grads: Vec<f32>,
    table: Vec<ParamEntry>,
    state: Vec<f32>,
    floats: Vec<f32>,
    nodes: Vec<Node>,
    frozen: Vec<f32>,
}

impl HostMemory {
    /// Zeroed buffers of exactly `plan`'s sizes.
    pub fn new(plan: &staticgrad::Plan) -> Self {
        HostMemory {
            values: vec![0.0; plan.param_floats],
            grads: vec![0.0; plan.grad_floats],
            table: vec![ParamEntry::EMPTY; plan.param_tensors],
            state: vec![0.0; plan.state_floats],
            floats: vec![0.0; plan.tape_floats],
            nodes: vec![Node::EMPTY; plan.tape_nodes],
            frozen: Vec::new(),
        }
    }

    /// With `frozen` as the read-only values of the model's frozen layers.
    pub fn with_frozen(mut self, frozen: Vec<f32>) -> Self {
        self.frozen = frozen;
        self
    }

    /// The buffers as the core's bundle.
    pub fn memory(&mut self) -> staticgrad::Memory<'_> {
        staticgrad::Memory {
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
