//! The memory plan as a report: the planner's regions as a text table (`staticgrad plan`, the
//! run's `report.md`) and as JSON (`summary.json`).

use staticgrad::{Node, ParamEntry, Plan};

/// The planner's table (regions, elements, bytes): the numbers a firmware copies into `static`s.
pub fn plan_table(p: &Plan) -> String {
    let row = |name: &str, n: usize, bytes: usize| format!("{name:<20}{n:>12}{bytes:>14}\n");
    let entry = size_of::<ParamEntry>();
    let node = size_of::<Node>();
    let mut s = format!("{:<20}{:>12}{:>14}\n", "region", "elements", "bytes");
    s += &row("parameter floats", p.param_floats, 4 * p.param_floats);
    s += &row("parameter tensors", p.param_tensors, entry * p.param_tensors);
    s += &row("gradient floats", p.grad_floats, p.grad_bytes());
    s += &row("optimizer state", p.state_floats, p.state_bytes());
    s += &row("tape floats", p.tape_floats, 4 * p.tape_floats);
    s += &row("tape nodes", p.tape_nodes, node * p.tape_nodes);
    s += &format!("{:<20}{:>12}{:>14}\n", "total", "", p.total_bytes());
    s
}

/// The plan as JSON (floats per region and total bytes).
pub fn plan_json(p: &Plan) -> serde_json::Value {
    serde_json::json!({
        "param_floats": p.param_floats, "param_tensors": p.param_tensors, "grad_floats": p.grad_floats,
        "state_floats": p.state_floats, "tape_floats": p.tape_floats, "tape_nodes": p.tape_nodes,
        "total_bytes": p.total_bytes(),
    })
}
