//! Property tests of the core (issue 9): random op sequences over random shapes, capacities
//! (including too small), labels (including out of range) and values (including NaN, ±Inf and
//! subnormals). Every call must return `Ok` or exactly the `Err` a small reference model
//! predicts — never panic — and a refused call must leave the tape and the parameters as they were.
//!
//! Each property runs `PROPTEST_CASES` cases (default 10,000) and prints how many it ran.
//! Shapes stay tiny so a case costs microseconds; a few degenerate huge shapes (`2⁴⁰ × 0`,
//! `usize::MAX × 2`) check that sizes are never trusted.

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};
use staticgrad::{Error, Node, ParamEntry, ParamId, ParamKind, Params, Region, Shape, Tape, Var};
use std::cell::Cell;
use std::fmt::Debug;

/// Cases per property: `PROPTEST_CASES` or 10,000.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000)
}

/// Runs one property for [`cases`] cases, prints the count, and fails (with proptest's shrunk
/// input) if any case fails or panics.
pub fn run_property<S: Strategy>(
    name: &str,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: Debug,
{
    let config = Config {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        source_file: Some(file!()),
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let ran = Cell::new(0u32);
    let result = runner.run(&strategy, |v| {
        ran.set(ran.get() + 1);
        test(v)
    });
    if let Err(e) = result {
        panic!("property {name} failed: {e}");
    }
    eprintln!("property {name}: {} cases, 0 failures", ran.get());
    assert!(ran.get() >= cases(), "{name}: only {} cases ran", ran.get());
}

// ---------------------------------------------------------------------------------------------
// Generators

/// Ordinary values mostly, and every kind of awkward float often.
fn value() -> impl Strategy<Value = f32> {
    prop_oneof![
        6 => -3.0f32..3.0,
        1 => Just(f32::NAN),
        1 => Just(f32::INFINITY),
        1 => Just(f32::NEG_INFINITY),
        1 => Just(1e-40f32),  // subnormal
        1 => Just(-1e-45f32), // smallest subnormal
        1 => Just(-0.0f32),
        1 => Just(f32::MAX),
        1 => Just(f32::MIN),
        1 => any::<f32>(), // every bit pattern, NaN payloads included
    ]
}

fn small_shape() -> impl Strategy<Value = Shape> {
    (0usize..4, 0usize..4).prop_map(|(r, c)| Shape::new(r, c))
}

/// Small shapes, plus sizes that overflow or are absurd but empty.
fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        12 => small_shape(),
        1 => Just(Shape::new(1 << 40, 0)),
        1 => Just(Shape::new(0, 1 << 40)),
        1 => Just(Shape::new(usize::MAX, 0)),
        1 => Just(Shape::new(usize::MAX, 2)),
        1 => Just(Shape::new(1 << 33, 1 << 33)),
    ]
}

fn label() -> impl Strategy<Value = u32> {
    prop_oneof![8 => 0u32..4, 1 => Just(u32::MAX), 1 => any::<u32>()]
}

fn kind() -> impl Strategy<Value = ParamKind> {
    prop_oneof![
        Just(ParamKind::Weight),
        Just(ParamKind::Bias),
        Just(ParamKind::Gamma),
        Just(ParamKind::Beta),
        Just(ParamKind::RunningMean),
        Just(ParamKind::RunningVar),
    ]
}

/// One call on the tape. `u8` operands index a pool of handles that also holds stale handles
/// (from before a reset) and foreign ones (from another tape or parameter set).
#[derive(Clone, Debug)]
enum Step {
    Input {
        shape: Shape,
        data: Vec<f32>,
        exact: bool,
    },
    Param(u8),
    MatMul(u8, u8),
    Affine(u8, u8, u8),
    Add(u8, u8),
    Mul(u8, u8),
    Scale(u8, f32),
    Relu(u8),
    Sigmoid(u8),
    Tanh(u8),
    SoftmaxCe {
        logits: u8,
        labels: Vec<u32>,
        eps: Option<f32>,
    },
    Mse(u8, u8),
    Sum(u8),
    Mean(u8),
    /// Backward from a var, into the main parameters (`false`) or a different set (`true`).
    Backward(u8, bool),
    SetGradEnabled(bool),
    Reset,
}

fn step() -> impl Strategy<Value = Step> {
    let v = any::<u8>;
    prop_oneof![
        6 => (shape(), prop::collection::vec(value(), 0..12), prop::bool::weighted(0.85))
            .prop_map(|(shape, data, exact)| Step::Input { shape, data, exact }),
        3 => v().prop_map(Step::Param),
        2 => (v(), v()).prop_map(|(a, b)| Step::MatMul(a, b)),
        3 => (v(), v(), v()).prop_map(|(x, w, b)| Step::Affine(x, w, b)),
        2 => (v(), v()).prop_map(|(a, b)| Step::Add(a, b)),
        2 => (v(), v()).prop_map(|(a, b)| Step::Mul(a, b)),
        1 => (v(), value()).prop_map(|(a, k)| Step::Scale(a, k)),
        1 => v().prop_map(Step::Relu),
        1 => v().prop_map(Step::Sigmoid),
        1 => v().prop_map(Step::Tanh),
        2 => (v(), prop::collection::vec(label(), 0..5), prop::option::of(value()))
            .prop_map(|(logits, labels, eps)| Step::SoftmaxCe { logits, labels, eps }),
        2 => (v(), v()).prop_map(|(a, b)| Step::Mse(a, b)),
        1 => v().prop_map(Step::Sum),
        1 => v().prop_map(Step::Mean),
        2 => (v(), prop::bool::weighted(0.2)).prop_map(|(l, f)| Step::Backward(l, f)),
        1 => any::<bool>().prop_map(Step::SetGradEnabled),
        1 => Just(Step::Reset),
    ]
}

/// Storage sizes (often too small) and the parameter tensors to allocate in them.
#[derive(Clone, Debug)]
struct Setup {
    tape_floats: usize,
    tape_nodes: usize,
    param_values: usize,
    param_grads: usize,
    table: usize,
    allocs: Vec<(Shape, ParamKind)>,
    fill: Vec<f32>,
}

fn setup() -> impl Strategy<Value = Setup> {
    let alloc_shape = prop_oneof![10 => small_shape(), 1 => shape()];
    (
        0usize..160,
        0usize..14,
        0usize..40,
        prop_oneof![3 => Just(None), 1 => (0usize..40).prop_map(Some)],
        0usize..7,
        prop::collection::vec((alloc_shape, kind()), 0..7),
        prop::collection::vec(value(), 1..8),
    )
        .prop_map(|(tape_floats, tape_nodes, param_values, grads, table, allocs, fill)| Setup {
            tape_floats,
            tape_nodes,
            param_values,
            param_grads: grads.unwrap_or(param_values),
            table,
            allocs,
            fill,
        })
}

// ---------------------------------------------------------------------------------------------
// Reference model: what each call must return, computed from shapes and counts alone.

/// What the model knows of one parameter set: the shapes of its tensors and its capacities.
#[derive(Clone, Debug, Default)]
struct ParamModel {
    shapes: Vec<Shape>,
    used: usize,
    values: usize,
    grads: usize,
    table: usize,
}

impl ParamModel {
    fn alloc(&mut self, shape: Shape) -> Result<(), Error> {
        let n = shape.checked_len().ok_or(Error::Capacity {
            region: Region::ParamFloats,
            needed: usize::MAX,
            available: self.values,
        })?;
        let needed = self.used.saturating_add(n);
        if needed > self.values {
            return Err(Error::Capacity { region: Region::ParamFloats, needed, available: self.values });
        }
        if needed > self.grads {
            return Err(Error::Capacity { region: Region::ParamGrads, needed, available: self.grads });
        }
        if self.shapes.len() >= self.table {
            return Err(Error::Capacity {
                region: Region::ParamTensors,
                needed: self.shapes.len() + 1,
                available: self.table,
            });
        }
        self.shapes.push(shape);
        self.used = needed;
        Ok(())
    }

    fn entry(&self, id: ParamId) -> Result<Shape, Error> {
        self.shapes.get(id.index()).copied().ok_or(Error::InvalidHandle { what: "param", index: id.index() })
    }
}

#[derive(Clone, Copy, Debug)]
struct MNode {
    shape: Shape,
    needs_grad: bool,
    /// Parameters this node reads, with the shape it recorded them at.
    uses: [Option<(ParamId, Shape)>; 2],
}

/// The tape as the model sees it.
struct TapeModel {
    nodes: Vec<MNode>,
    /// Value floats from the front, gradient floats from the back.
    used: usize,
    gused: usize,
    floats: usize,
    nodes_cap: usize,
    grad_enabled: bool,
}

/// A node the model expects an op to push, with its scratch floats.
struct Push {
    node: MNode,
    scratch: usize,
}

impl TapeModel {
    fn get(&self, v: Var) -> Result<MNode, Error> {
        self.nodes.get(v.index()).copied().ok_or(Error::InvalidHandle { what: "var", index: v.index() })
    }

    fn push(&self, mut p: Push) -> Result<Push, Error> {
        p.node.needs_grad &= self.grad_enabled;
        let end = self.used.saturating_add(p.node.shape.len().saturating_add(p.scratch));
        let gend = self.gused.saturating_add(if p.node.needs_grad { p.node.shape.len() } else { 0 });
        let total = end.saturating_add(gend);
        if total > self.floats {
            return Err(Error::Capacity {
                region: Region::TapeFloats,
                needed: total,
                available: self.floats,
            });
        }
        if self.nodes.len() >= self.nodes_cap {
            return Err(Error::Capacity {
                region: Region::TapeNodes,
                needed: self.nodes.len() + 1,
                available: self.nodes_cap,
            });
        }
        Ok(p)
    }

    fn commit(&mut self, p: Push) {
        self.used += p.node.shape.len() + p.scratch;
        if p.node.needs_grad {
            self.gused += p.node.shape.len();
        }
        self.nodes.push(p.node);
    }

    fn floats_used(&self) -> usize {
        self.used + self.gused
    }
}

fn node(shape: Shape, needs_grad: bool) -> Push {
    Push { node: MNode { shape, needs_grad, uses: [None, None] }, scratch: 0 }
}

fn debug<T: Debug>(x: &T) -> String {
    format!("{x:?}") // compares NaN-carrying errors by their printed form
}

/// Bit patterns, so NaN == NaN and −0 ≠ +0: "unchanged" means unchanged.
fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

fn pick<T: Copy>(pool: &[T], i: u8) -> Option<T> {
    if pool.is_empty() { None } else { Some(pool[i as usize % pool.len()]) }
}

/// Checks a forward call against the model; on success, records the node and pools the handle.
fn check_forward(
    tape: &Tape,
    model: &mut TapeModel,
    pool: &mut Vec<Var>,
    expected: Result<Push, Error>,
    got: Result<Var, Error>,
) -> Result<(), TestCaseError> {
    let expected = expected.and_then(|p| model.push(p));
    match expected {
        Err(e) => {
            prop_assert_eq!(debug(&got), debug(&Err::<Var, _>(e)));
            prop_assert_eq!(tape.nodes_used(), model.nodes.len(), "a refused op recorded a node");
            prop_assert_eq!(tape.floats_used(), model.floats_used(), "a refused op used floats");
        }
        Ok(p) => {
            let v = match got {
                Ok(v) => v,
                Err(e) => return Err(TestCaseError::fail(format!("expected Ok, got {e:?}"))),
            };
            prop_assert_eq!(v.index(), model.nodes.len());
            let n = tape.node(v).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            prop_assert_eq!(n.shape(), p.node.shape);
            prop_assert_eq!(n.needs_grad(), p.node.needs_grad);
            prop_assert_eq!(tape.value(v).map(<[f32]>::len), Ok(p.node.shape.len()));
            model.commit(p);
            prop_assert_eq!(tape.floats_used(), model.floats_used());
            pool.push(v);
        }
    }
    Ok(())
}

/// Allocates `allocs` in `params`, checking each result against the model; fills values.
fn alloc_all(
    params: &mut Params,
    model: &mut ParamModel,
    allocs: &[(Shape, ParamKind)],
    fill: &[f32],
) -> Result<Vec<ParamId>, TestCaseError> {
    let mut ids = Vec::new();
    for &(shape, kind) in allocs {
        let expected = model.alloc(shape);
        let got = params.alloc(shape, kind);
        prop_assert_eq!(debug(&got.map(|_| ())), debug(&expected));
        prop_assert_eq!(params.len(), model.used);
        prop_assert_eq!(params.tensor_count(), model.shapes.len());
        if let Ok(id) = got {
            prop_assert_eq!(params.entry(id).map(|e| e.shape), Ok(shape));
            ids.push(id);
        }
    }
    for (i, v) in params.values_mut().iter_mut().enumerate() {
        *v = fill[i % fill.len()];
    }
    Ok(ids)
}

#[derive(Clone, Debug)]
struct Program {
    setup: Setup,
    other: Vec<(Shape, ParamKind)>,
    steps: Vec<Step>,
}

fn program() -> impl Strategy<Value = Program> {
    (setup(), prop::collection::vec((small_shape(), kind()), 0..5), prop::collection::vec(step(), 0..24))
        .prop_map(|(setup, other, steps)| Program { setup, other, steps })
}

/// The main property: run a random program, checking every call.
fn run_program(p: Program) -> Result<(), TestCaseError> {
    let s = &p.setup;
    // Foreign handles first: vars of another tape and ids of another parameter set.
    let mut pool: Vec<Var> = Vec::new();
    {
        let mut floats = vec![0.0f32; 64];
        let mut nodes = vec![Node::EMPTY; 20];
        let mut other = Tape::new(&mut floats, &mut nodes);
        let mut all = Vec::new();
        for _ in 0..20 {
            all.push(other.input(&[1.0], Shape::SCALAR).map_err(|e| TestCaseError::fail(format!("{e:?}")))?);
        }
        // Low indices alias nodes of the main tape; high ones are past its end.
        pool.extend([all[0], all[1], all[5], all[19]]);
    }

    let (mut ov, mut og, mut ot) = (vec![0.0f32; 64], vec![0.0f32; 64], vec![ParamEntry::EMPTY; 8]);
    let mut other_params = Params::new(&mut ov, &mut og, &mut ot);
    let mut other_model = ParamModel { values: 64, grads: 64, table: 8, ..Default::default() };
    let mut pids = alloc_all(&mut other_params, &mut other_model, &p.other, &s.fill)?;

    let mut values = vec![0.0f32; s.param_values];
    let mut grads = vec![0.0f32; s.param_grads];
    let mut table = vec![ParamEntry::EMPTY; s.table];
    let mut params = Params::new(&mut values, &mut grads, &mut table);
    let mut pmodel =
        ParamModel { values: s.param_values, grads: s.param_grads, table: s.table, ..Default::default() };
    pids.extend(alloc_all(&mut params, &mut pmodel, &s.allocs, &s.fill)?);

    let mut floats = vec![0.0f32; s.tape_floats];
    let mut nodes = vec![Node::EMPTY; s.tape_nodes];
    let mut tape = Tape::new(&mut floats, &mut nodes);
    let mut model = TapeModel {
        nodes: Vec::new(),
        used: 0,
        gused: 0,
        floats: s.tape_floats,
        nodes_cap: s.tape_nodes,
        grad_enabled: true,
    };

    for st in &p.steps {
        let var = |i: u8| pick(&pool, i);
        match st.clone() {
            Step::Input { shape, data, exact } => {
                let data: Vec<f32> = match (exact, shape.checked_len()) {
                    (true, Some(n)) if n <= 64 => {
                        (0..n).map(|i| data.get(i).copied().unwrap_or(0.5)).collect()
                    }
                    _ => data,
                };
                let expected = if data.len() != shape.len() {
                    Err(Error::Shape { op: "input", expected: shape, found: Shape::new(1, data.len()) })
                } else {
                    Ok(node(shape, false))
                };
                let got = tape.input(&data, shape);
                check_forward(&tape, &mut model, &mut pool, expected, got)?;
                if let Ok(v) = got {
                    prop_assert_eq!(bits(tape.value(v).unwrap()), bits(&data), "input copies its data");
                }
            }
            Step::Param(i) => {
                let Some(id) = pick(&pids, i) else { continue };
                let expected = pmodel.entry(id).map(|shape| Push {
                    node: MNode { shape, needs_grad: true, uses: [Some((id, shape)), None] },
                    scratch: 0,
                });
                let got = tape.param(&params, id);
                check_forward(&tape, &mut model, &mut pool, expected, got)?;
            }
            Step::MatMul(a, b) => {
                let (Some(a), Some(b)) = (var(a), var(b)) else { continue };
                let expected = (|| {
                    let (an, bn) = (model.get(a)?, model.get(b)?);
                    if an.shape.cols != bn.shape.rows {
                        return Err(Error::Shape {
                            op: "matmul",
                            expected: Shape::new(an.shape.cols, bn.shape.cols),
                            found: bn.shape,
                        });
                    }
                    Ok(node(Shape::new(an.shape.rows, bn.shape.cols), an.needs_grad || bn.needs_grad))
                })();
                let got = tape.matmul(a, b);
                check_forward(&tape, &mut model, &mut pool, expected, got)?;
            }
            Step::Affine(x, w, b) => {
                let (Some(x), Some(w), Some(b)) = (var(x), pick(&pids, w), pick(&pids, b)) else { continue };
                let expected = (|| {
                    let xn = model.get(x)?;
                    let (ws, bs) = (pmodel.entry(w)?, pmodel.entry(b)?);
                    if ws.rows != xn.shape.cols {
                        return Err(Error::Shape {
                            op: "affine weight",
                            expected: Shape::new(xn.shape.cols, ws.cols),
                            found: ws,
                        });
                    }
                    if bs != Shape::row(ws.cols) {
                        return Err(Error::Shape {
                            op: "affine bias",
                            expected: Shape::row(ws.cols),
                            found: bs,
                        });
                    }
                    Ok(Push {
                        node: MNode {
                            shape: Shape::new(xn.shape.rows, ws.cols),
                            needs_grad: true,
                            uses: [Some((w, ws)), Some((b, bs))],
                        },
                        scratch: 0,
                    })
                })();
                let got = tape.affine(x, &params, w, b);
                check_forward(&tape, &mut model, &mut pool, expected, got)?;
            }
            Step::Add(a, b) => {
                let (Some(a), Some(b)) = (var(a), var(b)) else { continue };
                let expected = (|| {
                    let (an, bn) = (model.get(a)?, model.get(b)?);
                    let broadcast = bn.shape.rows == 1 && bn.shape.cols == an.shape.cols;
                    if bn.shape != an.shape && !broadcast {
                        return Err(Error::Shape { op: "add", expected: an.shape, found: bn.shape });
                    }
                    Ok(node(an.shape, an.needs_grad || bn.needs_grad))
                })();
                let got = tape.add(a, b);
                check_forward(&tape, &mut model, &mut pool, expected, got)?;
            }
            Step::Mul(a, b) => {
                let (Some(a), Some(b)) = (var(a), var(b)) else { continue };
                let expected = (|| {
                    let (an, bn) = (model.get(a)?, model.get(b)?);
                    if bn.shape != an.shape {
                        return Err(Error::Shape { op: "mul", expected: an.shape, found: bn.shape });
                    }
                    Ok(node(an.shape, an.needs_grad || bn.needs_grad))
                })();
                let got = tape.mul(a, b);
                check_forward(&tape, &mut model, &mut pool, expected, got)?;
            }
            Step::Scale(a, _) | Step::Relu(a) | Step::Sigmoid(a) | Step::Tanh(a) => {
                let Some(a) = var(a) else { continue };
                let expected = model.get(a).map(|an| node(an.shape, an.needs_grad));
                let got = match st {
                    Step::Scale(_, k) => tape.scale(a, *k),
                    Step::Relu(_) => tape.relu(a),
                    Step::Sigmoid(_) => tape.sigmoid(a),
                    _ => tape.tanh(a),
                };
                check_forward(&tape, &mut model, &mut pool, expected, got)?;
            }
            Step::SoftmaxCe { logits, labels, eps } => {
                let Some(l) = var(logits) else { continue };
                let expected = (|| {
                    let ln = model.get(l)?;
                    let (rows, classes) = (ln.shape.rows, ln.shape.cols);
                    if labels.len() != rows || rows == 0 || classes == 0 {
                        return Err(Error::Shape {
                            op: "softmax_cross_entropy labels",
                            expected: Shape::new(rows.max(1), 1),
                            found: Shape::new(labels.len(), 1),
                        });
                    }
                    if let Some((row, &label)) =
                        labels.iter().enumerate().find(|&(_, &t)| t as usize >= classes)
                    {
                        return Err(Error::Label { row, label: label as usize, classes });
                    }
                    let mut p = node(Shape::SCALAR, ln.needs_grad);
                    p.scratch = rows * classes;
                    Ok(p)
                })();
                let got = match eps {
                    None => tape.softmax_cross_entropy(l, &labels),
                    Some(e) => tape.softmax_cross_entropy_eps(l, &labels, e),
                };
                check_forward(&tape, &mut model, &mut pool, expected, got)?;
            }
            Step::Mse(a, t) => {
                let (Some(a), Some(t)) = (var(a), var(t)) else { continue };
                let expected = (|| {
                    let (an, tn) = (model.get(a)?, model.get(t)?);
                    if an.shape != tn.shape || an.shape.is_empty() {
                        return Err(Error::Shape { op: "mse", expected: an.shape, found: tn.shape });
                    }
                    Ok(node(Shape::SCALAR, an.needs_grad || tn.needs_grad))
                })();
                let got = tape.mse(a, t);
                check_forward(&tape, &mut model, &mut pool, expected, got)?;
            }
            Step::Sum(a) => {
                let Some(a) = var(a) else { continue };
                let expected = model.get(a).map(|an| node(Shape::SCALAR, an.needs_grad));
                let got = tape.sum(a);
                check_forward(&tape, &mut model, &mut pool, expected, got)?;
            }
            Step::Mean(a) => {
                let Some(a) = var(a) else { continue };
                let expected = model.get(a).and_then(|an| {
                    if an.shape.is_empty() {
                        Err(Error::Shape { op: "mean", expected: Shape::SCALAR, found: an.shape })
                    } else {
                        Ok(node(Shape::SCALAR, an.needs_grad))
                    }
                });
                let got = tape.mean(a);
                check_forward(&tape, &mut model, &mut pool, expected, got)?;
            }
            Step::Backward(l, foreign) => {
                let Some(loss) = var(l) else { continue };
                let (target, tmodel) =
                    if foreign { (&mut other_params, &other_model) } else { (&mut params, &pmodel) };
                check_backward(&mut tape, &model, target, tmodel, loss)?;
            }
            Step::SetGradEnabled(on) => {
                tape.set_grad_enabled(on);
                model.grad_enabled = on;
            }
            Step::Reset => {
                tape.reset();
                model.nodes.clear();
                model.used = 0;
                model.gused = 0;
                prop_assert_eq!(tape.nodes_used(), 0);
            }
        }
        // Every handle, stale or foreign, reads without panicking.
        for &v in &pool {
            let (val, grad) = (tape.value(v), tape.grad(v));
            match model.get(v) {
                Ok(n) => {
                    prop_assert_eq!(val.map(<[f32]>::len), Ok(n.shape.len()));
                    if n.needs_grad {
                        prop_assert_eq!(grad.map(<[f32]>::len), Ok(n.shape.len()));
                    } else {
                        prop_assert_eq!(
                            grad,
                            Err(Error::InvalidHandle { what: "var without gradient", index: v.index() })
                        );
                    }
                }
                Err(e) => {
                    prop_assert_eq!(val, Err(e));
                    prop_assert_eq!(grad, Err(e));
                }
            }
        }
    }
    Ok(())
}

/// Backward from `loss` into `params`: the right error, or Ok; parameter values never change,
/// and a refused backward leaves the gradients as they were too.
fn check_backward(
    tape: &mut Tape,
    model: &TapeModel,
    params: &mut Params,
    pmodel: &ParamModel,
    loss: Var,
) -> Result<(), TestCaseError> {
    let (v0, g0) = (bits(params.values()), bits(params.grads()));
    let used = tape.nodes_used();
    let got = tape.backward(loss, params);
    prop_assert_eq!(bits(params.values()), v0.clone(), "backward changed parameter values");
    prop_assert_eq!(tape.nodes_used(), used);
    let ln = match model.get(loss) {
        Ok(n) => n,
        Err(e) => {
            prop_assert_eq!(got, Err(e));
            prop_assert_eq!(bits(params.grads()), g0);
            return Ok(());
        }
    };
    if ln.shape != Shape::SCALAR {
        prop_assert_eq!(got, Err(Error::Shape { op: "backward", expected: Shape::SCALAR, found: ln.shape }));
        prop_assert_eq!(bits(params.grads()), g0);
        return Ok(());
    }
    let value = tape.scalar(loss).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
    if !value.is_finite() {
        prop_assert_eq!(got, Err(Error::NonFinite { what: "loss", index: 0 }));
        prop_assert_eq!(bits(params.grads()), g0, "backward on a non-finite loss touched gradients");
        return Ok(());
    }
    // Every parameter read by a node up to the loss must still exist with the recorded shape.
    let mismatch = model.nodes[..=loss.index()]
        .iter()
        .flat_map(|n| n.uses.iter().flatten())
        .any(|&(id, shape)| pmodel.entry(id) != Ok(shape));
    if mismatch {
        let named_a_param = matches!(
            got,
            Err(Error::InvalidHandle { what: "param", .. }) | Err(Error::Shape { op: "backward params", .. })
        );
        prop_assert!(named_a_param, "backward into mismatched parameters returned {:?}", got);
        prop_assert_eq!(bits(params.grads()), g0, "a refused backward touched gradients");
    } else {
        prop_assert_eq!(got, Ok(()));
    }
    Ok(())
}

#[test]
fn random_programs_never_panic_and_fail_right() {
    run_property("random_programs", program(), run_program);
}
