//! Helpers for the op tests: heap-backed storage (tests only), seeded random values, and
//! gradient checks of one op with a random weighting of its output.

use crate::gradcheck::{GradcheckConfig, GradcheckReport, gradcheck};
use crate::{Node, ParamEntry, ParamKind, Params, Result, Shape, Tape, Var};
use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro128PlusPlus;
use std::vec;
use std::vec::Vec;

pub struct Storage {
    floats: Vec<f32>,
    nodes: Vec<Node>,
    pv: Vec<f32>,
    pg: Vec<f32>,
    table: Vec<ParamEntry>,
}

impl Storage {
    pub fn new() -> Self {
        Storage {
            floats: vec![0.0; 1 << 14],
            nodes: vec![Node::EMPTY; 64],
            pv: vec![0.0; 1 << 12],
            pg: vec![0.0; 1 << 12],
            table: vec![ParamEntry::EMPTY; 16],
        }
    }
    pub fn split(&mut self) -> (Tape<'_>, Params<'_>) {
        (
            Tape::new(&mut self.floats, &mut self.nodes),
            Params::new(&mut self.pv, &mut self.pg, &mut self.table),
        )
    }
}

/// Uniform values in [-2, 2) with |x| >= min_abs, from a fixed seed.
pub fn random_values(n: usize, min_abs: f32, seed: u64) -> Vec<f32> {
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let x = (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32 * 4.0 - 2.0;
        if x.abs() >= min_abs {
            out.push(x);
        }
    }
    out
}

pub fn forward_unary(data: &[f32], f: impl Fn(&mut Tape, Var) -> Result<Var>) -> Vec<f32> {
    let mut s = Storage::new();
    let (mut tape, _) = s.split();
    let x = tape.input(data, Shape::row(data.len())).unwrap();
    let y = f(&mut tape, x).unwrap();
    tape.value(y).unwrap().to_vec()
}

pub fn forward_binary(
    a: (&[f32], Shape),
    b: (&[f32], Shape),
    f: impl Fn(&mut Tape, Var, Var) -> Result<Var>,
) -> Vec<f32> {
    let mut s = Storage::new();
    let (mut tape, _) = s.split();
    let x = tape.input(a.0, a.1).unwrap();
    let y = tape.input(b.0, b.1).unwrap();
    let z = f(&mut tape, x, y).unwrap();
    tape.value(z).unwrap().to_vec()
}

pub fn try_binary(sa: Shape, sb: Shape, f: impl Fn(&mut Tape, Var, Var) -> Result<Var>) -> Result<Var> {
    let mut s = Storage::new();
    let (mut tape, _) = s.split();
    let x = tape.input(&vec![0.0; sa.len()], sa).unwrap();
    let y = tape.input(&vec![0.0; sb.len()], sb).unwrap();
    f(&mut tape, x, y)
}

/// Gradient of sum(f(a)) with respect to a, where f uses a twice.
pub fn grad_of_self_binary(data: &[f32], f: impl Fn(&mut Tape, Var) -> Result<Var>) -> Vec<f32> {
    let mut s = Storage::new();
    let (mut tape, mut params) = s.split();
    let a = params.alloc(Shape::row(data.len()), ParamKind::Weight).unwrap();
    params.value_mut(a).unwrap().copy_from_slice(data);
    let v = tape.param(&params, a).unwrap();
    let y = f(&mut tape, v).unwrap();
    let l = tape.sum(y).unwrap();
    tape.backward(l, &mut params).unwrap();
    params.grad(a).unwrap().to_vec()
}

/// Reduces a non-scalar output to a loss with a fixed random weighting, so every element's
/// gradient differs (a plain sum would hide a transposed or shifted gradient).
pub fn weighted_loss(t: &mut Tape, y: Var) -> Result<Var> {
    let shape = t.shape(y)?;
    if shape == Shape::SCALAR {
        return Ok(y);
    }
    let c = random_values(shape.len(), 0.0, 99);
    let c = t.input(&c, shape)?;
    let p = t.mul(y, c)?;
    t.sum(p)
}

pub fn assert_report(name: &str, r: GradcheckReport) {
    std::eprintln!("gradcheck {name}: worst rel error {:.2e} over {} elements", r.worst_rel_error, r.checked);
    assert!(r.worst_rel_error < 1e-2, "{name}: {r:?}");
}

pub fn config() -> GradcheckConfig {
    GradcheckConfig { step: 1e-2, floor: 1e-2 }
}

pub fn check_unary(f: impl Fn(&mut Tape, Var) -> Result<Var>, min_abs: f32) {
    let mut s = Storage::new();
    let (mut tape, mut params) = s.split();
    let shape = Shape::new(3, 4);
    let a = params.alloc(shape, ParamKind::Weight).unwrap();
    params.value_mut(a).unwrap().copy_from_slice(&random_values(shape.len(), min_abs, 1));
    let r = gradcheck(&mut tape, &mut params, config(), |t, p| {
        let v = t.param(p, a)?;
        let y = f(t, v)?;
        weighted_loss(t, y)
    })
    .unwrap();
    assert_report("unary", r);
}

pub fn check_reduce(f: impl Fn(&mut Tape, Var) -> Result<Var>) {
    check_unary(f, 0.0);
}

pub fn check_binary(sa: Shape, sb: Shape, f: impl Fn(&mut Tape, Var, Var) -> Result<Var>) {
    let mut s = Storage::new();
    let (mut tape, mut params) = s.split();
    let a = params.alloc(sa, ParamKind::Weight).unwrap();
    let b = params.alloc(sb, ParamKind::Weight).unwrap();
    params.value_mut(a).unwrap().copy_from_slice(&random_values(sa.len(), 0.0, 2));
    params.value_mut(b).unwrap().copy_from_slice(&random_values(sb.len(), 0.0, 3));
    let r = gradcheck(&mut tape, &mut params, config(), |t, p| {
        let (x, y) = (t.param(p, a)?, t.param(p, b)?);
        let z = f(t, x, y)?;
        weighted_loss(t, z)
    })
    .unwrap();
    assert_report("binary", r);
}

pub fn check_affine(m: usize, k: usize, n: usize) {
    let mut s = Storage::new();
    let (mut tape, mut params) = s.split();
    let x = params.alloc(Shape::new(m, k), ParamKind::Weight).unwrap();
    let w = params.alloc(Shape::new(k, n), ParamKind::Weight).unwrap();
    let b = params.alloc(Shape::row(n), ParamKind::Bias).unwrap();
    for (i, id) in [x, w, b].into_iter().enumerate() {
        let len = params.entry(id).unwrap().shape.len();
        params.value_mut(id).unwrap().copy_from_slice(&random_values(len, 0.0, 10 + i as u64));
    }
    let r = gradcheck(&mut tape, &mut params, config(), |t, p| {
        let xv = t.param(p, x)?;
        let y = t.affine(xv, p, w, b)?;
        weighted_loss(t, y)
    })
    .unwrap();
    assert_report("affine", r);
}

pub fn check_loss(shape: Shape, f: impl Fn(&mut Tape, Var) -> Result<Var>) {
    let mut s = Storage::new();
    let (mut tape, mut params) = s.split();
    let a = params.alloc(shape, ParamKind::Weight).unwrap();
    params.value_mut(a).unwrap().copy_from_slice(&random_values(shape.len(), 0.0, 4));
    let r = gradcheck(&mut tape, &mut params, config(), |t, p| {
        let v = t.param(p, a)?;
        f(t, v)
    })
    .unwrap();
    assert_report("loss", r);
}
