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
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;
use staticgrad::ops::batchnorm::{BatchNorm, BatchNormConfig};
use staticgrad::ops::dropout::Dropout;
use staticgrad::optim;
use staticgrad::{Error, Mode, Node, ParamEntry, ParamId, ParamKind, Params, Region, Shape, Tape, Var};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// What the cases exercised (outcome → count), printed after each property so a reader can see
/// that errors and successes were both covered.
static COVERAGE: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());

fn covered(what: impl Into<String>) {
    *COVERAGE.lock().unwrap().entry(what.into()).or_default() += 1;
}

/// The outcome's name: `Ok` or the error variant.
fn outcome<T>(r: &Result<T, Error>) -> &'static str {
    match r {
        Ok(_) => "Ok",
        Err(Error::Capacity { .. }) => "Capacity",
        Err(Error::Shape { .. }) => "Shape",
        Err(Error::Label { .. }) => "Label",
        Err(Error::NonFinite { .. }) => "NonFinite",
        Err(Error::InvalidHandle { .. }) => "InvalidHandle",
        Err(Error::InvalidArgument { .. }) => "InvalidArgument",
        Err(Error::Unsupported { .. }) => "Unsupported",
        Err(Error::Overflow { .. }) => "Overflow",
    }
}
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
    let mut cov = COVERAGE.lock().unwrap();
    let summary: Vec<String> = cov
        .iter()
        .filter(|(k, _)| k.starts_with(name))
        .map(|(k, v)| format!("{}={v}", &k[name.len() + 1..]))
        .collect();
    eprintln!("  outcomes: {}", summary.join(" "));
    cov.retain(|k, _| !k.starts_with(name));
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

/// Dropout ratios: valid ones mostly, and 1, negatives, NaN.
fn ratio() -> impl Strategy<Value = f32> {
    prop_oneof![6 => 0.0f32..1.0, 1 => Just(1.0f32), 1 => Just(0.0f32), 1 => value()]
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
    /// Batch norm through an allocated layer (`ids: None`) or one made of arbitrary handles.
    BatchNorm {
        x: u8,
        layer: u8,
        ids: Option<[u8; 4]>,
        config: Option<[f32; 3]>,
        train: bool,
        update: bool,
    },
    Dropout {
        x: u8,
        ratio: f32,
        book: bool,
        train: bool,
        seed: u64,
    },
    DropoutUniform {
        x: u8,
        ratio: f32,
        u: Vec<f32>,
    },
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
        3 => (v(), v(), prop::option::weighted(0.3, any::<[u8; 4]>()),
              prop::option::weighted(0.3, [value(), value(), value()]), any::<bool>(), any::<bool>())
            .prop_map(|(x, layer, ids, config, train, update)| Step::BatchNorm { x, layer, ids, config, train, update }),
        2 => (v(), ratio(), any::<bool>(), any::<bool>(), any::<u64>())
            .prop_map(|(x, ratio, book, train, seed)| Step::Dropout { x, ratio, book, train, seed }),
        1 => (v(), ratio(), prop::collection::vec(value(), 0..10))
            .prop_map(|(x, ratio, u)| Step::DropoutUniform { x, ratio, u }),
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
    /// Batch-norm layers (features, book config?) allocated after `allocs`.
    bn: Vec<(usize, bool)>,
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
        prop::collection::vec((0usize..4, any::<bool>()), 0..3),
    )
        .prop_map(|(tape_floats, tape_nodes, param_values, grads, table, allocs, fill, bn)| Setup {
            bn,
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
    /// The handles recorded since the last reset: every other `Var` is refused.
    live: Vec<Var>,
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
        let invalid = Error::InvalidHandle { what: "var", index: v.index() };
        if !self.live.contains(&v) {
            return Err(invalid); // stale (before a reset) or foreign (another tape)
        }
        self.nodes.get(v.index()).copied().ok_or(invalid)
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
    covered(format!("random_programs forward:{}", outcome(&expected)));
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
            model.live.push(v);
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
    // Foreign handles first: vars of another tape and ids of another parameter set. The other
    // tape's storage lives as long as this one's (a tape is told apart by its storage's address,
    // which a freed buffer may hand on to a new one).
    let mut pool: Vec<Var> = Vec::new();
    let (mut other_floats, mut other_nodes) = (vec![0.0f32; 64], vec![Node::EMPTY; 20]);
    {
        let mut other = Tape::new(&mut other_floats, &mut other_nodes);
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
    let mut layers = Vec::new();
    for &(features, book) in &s.bn {
        let config = if book { BatchNormConfig::BOOK } else { BatchNormConfig::STANDARD };
        // The model: four `1 × features` tensors in order, stopping at the first refusal.
        let expected = (0..4).try_for_each(|_| pmodel.alloc(Shape::row(features)));
        let got = BatchNorm::alloc(&mut params, features, config);
        prop_assert_eq!(debug(&got.map(|_| ())), debug(&expected));
        prop_assert_eq!(params.tensor_count(), pmodel.shapes.len());
        if let Ok(bn) = got {
            pids.extend([bn.gamma, bn.beta, bn.running_mean, bn.running_var]);
            layers.push(bn);
        }
    }

    let mut floats = vec![0.0f32; s.tape_floats];
    let mut nodes = vec![Node::EMPTY; s.tape_nodes];
    let mut tape = Tape::new(&mut floats, &mut nodes);
    let mut model = TapeModel {
        nodes: Vec::new(),
        live: Vec::new(),
        used: 0,
        gused: 0,
        floats: s.tape_floats,
        nodes_cap: s.tape_nodes,
        grad_enabled: true,
    };

    let mut live_from = pool.len();
    for st in &p.steps {
        // Mostly handles recorded since the last reset; one in eight from the whole pool (stale,
        // foreign or live).
        let live = &pool[live_from.min(pool.len())..];
        let var =
            |i: u8| if !i.is_multiple_of(8) && !live.is_empty() { pick(live, i / 8) } else { pick(&pool, i) };
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
                let scalars: Vec<Var> =
                    live.iter().copied().filter(|&v| tape.shape(v) == Ok(Shape::SCALAR)).collect();
                let loss = if l % 4 != 0 && !scalars.is_empty() { pick(&scalars, l / 4) } else { var(l) };
                let Some(loss) = loss else { continue };
                let (target, tmodel) =
                    if foreign { (&mut other_params, &other_model) } else { (&mut params, &pmodel) };
                check_backward(&mut tape, &model, target, tmodel, loss)?;
            }
            Step::BatchNorm { x, layer, ids, config, train, update } => {
                let Some(x) = var(x) else { continue };
                let mut bn = match (ids, pick(&layers, layer)) {
                    (None, Some(bn)) => bn,
                    (ids, _) => {
                        let ids = ids.unwrap_or([layer; 4]);
                        let [Some(gamma), Some(beta), Some(running_mean), Some(running_var)] =
                            ids.map(|i| pick(&pids, i))
                        else {
                            continue;
                        };
                        BatchNorm {
                            gamma,
                            beta,
                            running_mean,
                            running_var,
                            config: BatchNormConfig::STANDARD,
                        }
                    }
                };
                if let Some([momentum, eps, running_var_init]) = config {
                    bn.config = BatchNormConfig {
                        momentum,
                        eps,
                        running_var_init,
                        unbiased_running_var: bn.config.unbiased_running_var,
                    };
                }
                let expected = (|| {
                    bn.config.validate()?;
                    let xn = model.get(x)?;
                    let d = pmodel.entry(bn.gamma)?.cols;
                    for id in [bn.gamma, bn.beta, bn.running_mean, bn.running_var] {
                        let s = pmodel.entry(id)?;
                        if s != Shape::row(d) {
                            return Err(Error::Shape {
                                op: "batch_norm parameter",
                                expected: Shape::row(d),
                                found: s,
                            });
                        }
                    }
                    let n = xn.shape.rows;
                    if xn.shape.cols != d || n == 0 || d == 0 {
                        return Err(Error::Shape {
                            op: "batch_norm",
                            expected: Shape::new(n.max(1), d),
                            found: xn.shape,
                        });
                    }
                    Ok(Push {
                        node: MNode {
                            shape: xn.shape,
                            needs_grad: true,
                            uses: [Some((bn.gamma, Shape::row(d))), Some((bn.beta, Shape::row(d)))],
                        },
                        scratch: 2 * d + 1,
                    })
                })();
                let mode = if train { Mode::Train } else { Mode::Eval };
                let got = if update {
                    tape.batch_norm(x, &mut params, &bn, mode)
                } else {
                    tape.batch_norm_no_update(x, &params, &bn, mode)
                };
                check_forward(&tape, &mut model, &mut pool, expected, got)?;
            }
            Step::Dropout { x, ratio, book, train, seed } => {
                let Some(x) = var(x) else { continue };
                let cfg = if book { Dropout::book(ratio) } else { Dropout::inverted(ratio) };
                let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed);
                let expected = cfg.validate().and_then(|_| model.get(x));
                let got = tape.dropout(x, cfg, if train { Mode::Train } else { Mode::Eval }, &mut rng);
                match expected {
                    // Eval-mode inverted dropout is the identity: the same handle, nothing recorded.
                    Ok(_) if !train && !book => {
                        prop_assert_eq!(got, Ok(x));
                        prop_assert_eq!(tape.nodes_used(), model.nodes.len());
                    }
                    _ => {
                        let expected = expected.map(|xn| {
                            let n = xn.shape.len();
                            let scratch = if train { Dropout::scratch_len(n) } else { 0 };
                            Push {
                                node: MNode {
                                    shape: xn.shape,
                                    needs_grad: xn.needs_grad,
                                    uses: [None, None],
                                },
                                scratch,
                            }
                        });
                        check_forward(&tape, &mut model, &mut pool, expected, got)?;
                    }
                }
            }
            Step::DropoutUniform { x, ratio, u } => {
                let Some(x) = var(x) else { continue };
                let cfg = Dropout::inverted(ratio);
                let expected = (|| {
                    cfg.validate()?;
                    let xn = model.get(x)?;
                    if u.len() != xn.shape.len() {
                        return Err(Error::Shape {
                            op: "dropout uniform draws",
                            expected: xn.shape,
                            found: Shape::row(u.len()),
                        });
                    }
                    let scratch = Dropout::scratch_len(xn.shape.len());
                    Ok(Push {
                        node: MNode { shape: xn.shape, needs_grad: xn.needs_grad, uses: [None, None] },
                        scratch,
                    })
                })();
                let got = tape.dropout_with_uniform(x, cfg, &u);
                check_forward(&tape, &mut model, &mut pool, expected, got)?;
            }
            Step::SetGradEnabled(on) => {
                tape.set_grad_enabled(on);
                model.grad_enabled = on;
            }
            Step::Reset => {
                live_from = pool.len();
                tape.reset();
                model.nodes.clear();
                model.live.clear();
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
    covered(format!("random_programs backward:{}", outcome(&got)));
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

// ---------------------------------------------------------------------------------------------
// Backward on a non-finite loss

#[derive(Clone, Debug)]
struct Net {
    dims: (usize, usize, usize, usize), // batch, in, hidden, out
    x: Vec<f32>,
    w: Vec<f32>,
    grads: Vec<f32>,
    act: u8,
    batch_norm: bool,
    dropout: Option<(f32, u64)>,
    loss: u8,
    labels: Vec<u32>,
    targets: Vec<f32>,
}

fn net() -> impl Strategy<Value = Net> {
    (1usize..4, 1usize..4, 1usize..4, 1usize..4)
        .prop_flat_map(|(b, i, h, o)| {
            let n = i * h + h + h * o + o;
            // Mostly ordinary values: one special value somewhere is what makes a loss non-finite.
            let sparse = || prop_oneof![12 => -2.0f32..2.0, 1 => value()];
            (
                Just((b, i, h, o)),
                prop::collection::vec(sparse(), b * i),
                prop::collection::vec(sparse(), n),
                prop::collection::vec(value(), n),
                0u8..3,
                any::<bool>(),
                prop::option::of((0.0f32..0.9, any::<u64>())),
                0u8..5,
                prop::collection::vec(0u32..o as u32, b),
                prop::collection::vec(sparse(), b * o),
            )
        })
        .prop_map(|(dims, x, w, grads, act, batch_norm, dropout, loss, labels, targets)| Net {
            dims,
            x,
            w,
            grads,
            act,
            batch_norm,
            dropout,
            loss,
            labels,
            targets,
        })
}

/// A valid two-layer network over awkward values: forward must succeed; backward must succeed on
/// a finite loss and, on a non-finite one, return `NonFinite` and leave every parameter value and
/// gradient bit as it was.
fn run_net(n: Net) -> Result<(), TestCaseError> {
    let (b, i, h, o) = n.dims;
    let mut s = staticgrad_tests::HostStorage::new(1024, 32, 128, 16);
    let (mut tape, mut params) = s.split();
    let e = |e: Error| TestCaseError::fail(format!("{e:?}"));
    let w1 = params.alloc(Shape::new(i, h), ParamKind::Weight).map_err(e)?;
    let b1 = params.alloc(Shape::row(h), ParamKind::Bias).map_err(e)?;
    let bn = BatchNorm::alloc(&mut params, h, BatchNormConfig::STANDARD).map_err(e)?;
    let w2 = params.alloc(Shape::new(h, o), ParamKind::Weight).map_err(e)?;
    let b2 = params.alloc(Shape::row(o), ParamKind::Bias).map_err(e)?;
    let mut k = 0;
    for id in [w1, b1, w2, b2] {
        for v in params.value_mut(id).map_err(e)? {
            *v = n.w[k];
            k += 1;
        }
    }
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(n.dropout.map_or(0, |d| d.1));
    let mut forward = |tape: &mut Tape, params: &mut Params| -> Result<Var, Error> {
        let x = tape.input(&n.x, Shape::new(b, i))?;
        let mut y = tape.affine(x, params, w1, b1)?;
        if n.batch_norm && b > 0 {
            y = tape.batch_norm(y, params, &bn, Mode::Train)?;
        }
        y = match n.act {
            0 => tape.relu(y)?,
            1 => tape.sigmoid(y)?,
            _ => tape.tanh(y)?,
        };
        if let Some((ratio, _)) = n.dropout {
            y = tape.dropout(y, Dropout::inverted(ratio), Mode::Train, &mut rng)?;
        }
        let z = tape.affine(y, params, w2, b2)?;
        match n.loss {
            0 => tape.softmax_cross_entropy(z, &n.labels),
            1 => tape.softmax_cross_entropy_eps(z, &n.labels, 1e-7),
            2 => {
                let t = tape.input(&n.targets, Shape::new(b, o))?;
                tape.mse(z, t)
            }
            3 => tape.sum(z),
            _ => tape.mean(z),
        }
    };
    let loss = forward(&mut tape, &mut params).map_err(e)?;
    params.grads_mut().iter_mut().zip(n.grads.iter().cycle()).for_each(|(g, &v)| *g = v);
    let (v0, g0) = (bits(params.values()), bits(params.grads()));
    let value = tape.scalar(loss).map_err(e)?;
    let got = tape.backward(loss, &mut params);
    prop_assert_eq!(bits(params.values()), v0, "backward changed parameter values");
    if value.is_finite() {
        covered("nonfinite_loss finite loss: backward Ok");
        prop_assert_eq!(got, Ok(()));
    } else {
        covered("nonfinite_loss non-finite loss: backward refused, parameters unchanged");
        prop_assert_eq!(got, Err(Error::NonFinite { what: "loss", index: 0 }));
        prop_assert_eq!(bits(params.grads()), g0, "backward on a non-finite loss touched gradients");
    }
    Ok(())
}

#[test]
fn backward_on_nonfinite_loss_changes_nothing() {
    run_property("nonfinite_loss", net(), run_net);
}

// ---------------------------------------------------------------------------------------------
// Update rules

#[derive(Clone, Debug)]
struct OptCase {
    tensors: Vec<(Shape, ParamKind)>,
    values: Vec<f32>,
    /// One gradient fill per step.
    grads: Vec<Vec<f32>>,
    name: usize,
    decay: u8,
    clip: u8,
    option: f32,
    lrs: Vec<f32>,
    state_short: usize,
}

fn opt_case() -> impl Strategy<Value = OptCase> {
    let lr = prop_oneof![8 => 0.0f32..1.0, 1 => value()];
    let grad = prop_oneof![5 => -3.0f32..3.0, 1 => value()];
    (
        prop::collection::vec((small_shape(), kind()), 1..4),
        prop::collection::vec(prop_oneof![10 => -3.0f32..3.0, 1 => value()], 1..12),
        prop::collection::vec(prop::collection::vec(grad, 1..12), 1..4),
        0..optim::NAMES.len(),
        0u8..3,
        0u8..3,
        prop_oneof![4 => 0.0f32..1.0, 1 => value()],
        prop::collection::vec(lr, 1..4),
        prop_oneof![6 => Just(0usize), 1 => 1usize..4],
    )
        .prop_map(|(tensors, values, grads, name, decay, clip, option, lrs, state_short)| OptCase {
            tensors,
            values,
            grads,
            name,
            decay,
            clip,
            option,
            lrs,
            state_short,
        })
}

/// `Optimizer::step`: the right error (bad lr or option, short state, NaN/∞ gradient) with
/// nothing written — values, state and step counter — or Ok with untrainable tensors untouched.
fn run_opt(c: OptCase) -> Result<(), TestCaseError> {
    use staticgrad::optim::{Clip, NAMES, Optimizer, WeightDecay};
    let mut s = staticgrad_tests::HostStorage::new(0, 0, 64, 8);
    let (_, mut params) = s.split();
    for &(shape, kind) in &c.tensors {
        params.alloc(shape, kind).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
    }
    params.values_mut().iter_mut().zip(c.values.iter().cycle()).for_each(|(v, &x)| *v = x);
    let mut opt = Optimizer::by_name(NAMES[c.name]).ok_or_else(|| TestCaseError::fail("name"))?;
    opt = match c.decay {
        0 => opt,
        1 => opt.with_weight_decay(WeightDecay::L2(c.option)),
        _ => opt.with_weight_decay(WeightDecay::Decoupled(c.option)),
    };
    opt = match c.clip {
        0 => opt,
        1 => opt.with_clip(Clip::GlobalNorm(c.option)),
        _ => opt.with_clip(Clip::Value(c.option)),
    };
    let needed = opt.state_len(params.len());
    let mut state = vec![0.0f32; needed.saturating_sub(c.state_short)];
    for (k, g) in c.grads.iter().enumerate() {
        let lr = c.lrs[k % c.lrs.len()];
        params.grads_mut().iter_mut().zip(g.iter().cycle()).for_each(|(d, &x)| *d = x);
        let (v0, s0, t0) = (bits(params.values()), bits(&state), optim::steps(&state).ok());
        let frozen: Vec<u32> = params
            .entries()
            .iter()
            .filter(|e| !e.kind.trainable())
            .flat_map(|e| bits(&params.values()[e.range()]))
            .collect();
        // What must be refused, in the documented order.
        let bad_grad = params
            .entries()
            .iter()
            .filter(|e| e.kind.trainable())
            .flat_map(|e| e.range())
            .find(|&j| !params.grads()[j].is_finite());
        let expected = if !(lr >= 0.0 && lr.is_finite()) {
            Err(Error::InvalidArgument { what: "learning rate", value: lr })
        } else if let Err(e) = opt.validate() {
            Err(e)
        } else if state.len() < needed {
            Err(Error::Capacity { region: Region::OptimizerState, needed, available: state.len() })
        } else if let Some(index) = bad_grad {
            Err(Error::NonFinite { what: "gradient", index })
        } else {
            Ok(())
        };
        let got = opt.step(&mut params, &mut state, lr);
        covered(format!("optimizer step:{}", outcome(&got)));
        prop_assert_eq!(debug(&got), debug(&expected));
        if got.is_err() {
            prop_assert_eq!(bits(params.values()), v0, "a refused step changed parameters");
            prop_assert_eq!(bits(&state), s0, "a refused step changed the state");
            prop_assert_eq!(optim::steps(&state).ok(), t0, "a refused step advanced the counter");
        } else {
            prop_assert_eq!(optim::steps(&state).ok(), t0.map(|t| t + 1));
        }
        let frozen_after: Vec<u32> = params
            .entries()
            .iter()
            .filter(|e| !e.kind.trainable())
            .flat_map(|e| bits(&params.values()[e.range()]))
            .collect();
        prop_assert_eq!(frozen_after, frozen, "running statistics are never updated");
    }
    Ok(())
}

#[test]
fn optimizer_step_refuses_nan_gradient_and_changes_nothing() {
    run_property("optimizer", opt_case(), run_opt);
}

// ---------------------------------------------------------------------------------------------
// MlpSpec + Trainer

#[derive(Clone, Debug)]
struct TrainCase {
    widths: Vec<usize>,
    act: u8,
    batch_norm: bool,
    dropout: Option<f32>,
    loss: u8,
    batch: usize,
    /// Shortfall of each storage region below the planner's numbers (mostly 0).
    short: [usize; 5],
    x: Vec<f32>,
    labels: Vec<u32>,
    targets: Vec<f32>,
    lr: f32,
    seed: u64,
}

fn train_case() -> impl Strategy<Value = TrainCase> {
    let short = prop_oneof![12 => Just(0usize), 1 => 1usize..3];
    let width = prop_oneof![40 => 1usize..4, 1 => Just(0usize)];
    (
        prop_oneof![9 => prop::collection::vec(width.clone(), 2..5), 1 => prop::collection::vec(width, 0..2)],
        0u8..3,
        any::<bool>(),
        prop::option::of(prop_oneof![12 => 0.0f32..0.9, 1 => value()]),
        0u8..4,
        prop_oneof![8 => 1usize..4, 1 => Just(0usize)],
        [short.clone(), short.clone(), short.clone(), short.clone(), short],
        prop::collection::vec(prop_oneof![10 => -2.0f32..2.0, 1 => value()], 0..16),
        prop::collection::vec(label(), 0..5),
        prop::collection::vec(prop_oneof![10 => -2.0f32..2.0, 1 => value()], 0..16),
        prop_oneof![6 => 0.0f32..1.0, 1 => value()],
        any::<u64>(),
    )
        .prop_map(
            |(widths, act, batch_norm, dropout, loss, batch, short, x, labels, targets, lr, seed)| {
                TrainCase {
                    widths,
                    act,
                    batch_norm,
                    dropout,
                    loss,
                    batch,
                    short,
                    x,
                    labels,
                    targets,
                    lr,
                    seed,
                }
            },
        )
}

/// `Trainer::step` on a random spec over planner-sized storage (sometimes a little short) and
/// random data: Ok with a finite loss, or an error with every trainable parameter unchanged; with
/// exactly the planned storage it never runs out of room.
fn run_train(c: TrainCase) -> Result<(), TestCaseError> {
    use staticgrad::model::{Activation, Loss, MlpSpec, Targets};
    use staticgrad::optim::Optimizer;
    use staticgrad::train::Trainer;
    let mut spec = MlpSpec::new(&c.widths).with_activation(match c.act {
        0 => Activation::Relu,
        1 => Activation::Sigmoid,
        _ => Activation::Tanh,
    });
    spec = spec.with_loss(match c.loss {
        0 | 3 => Loss::SoftmaxCrossEntropy,
        1 => Loss::SoftmaxCrossEntropyBook,
        _ => Loss::Mse,
    });
    if c.batch_norm {
        spec = spec.with_batch_norm(BatchNormConfig::STANDARD);
    }
    if let Some(r) = c.dropout {
        spec = spec.with_dropout(Dropout::inverted(r));
    }
    let spec = spec.model();
    let opt = Optimizer::adam();
    let plan = spec.plan(c.batch, &opt);
    let sub = |n: usize, k: usize| n.saturating_sub(c.short[k]);
    let short = staticgrad::Plan {
        tape_floats: sub(plan.tape_floats, 0),
        tape_nodes: sub(plan.tape_nodes, 1),
        param_floats: sub(plan.param_floats, 2),
        grad_floats: sub(plan.param_floats, 2),
        param_tensors: sub(plan.param_tensors, 3),
        state_floats: sub(plan.state_floats, 4),
    };
    let mut memory = staticgrad_tests::HostMemory::new(&short);
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(c.seed);
    let built = Trainer::new(&spec, &opt, c.batch, memory.memory());
    if spec.validate().is_ok() && c.batch > 0 && c.short == [0; 5] {
        prop_assert!(built.is_ok(), "planned storage must suffice: {:?}", built.err());
    }
    let mut trainer = match built.and_then(|mut t| t.init(&mut rng).map(|_| t)) {
        Ok(t) => t,
        t => {
            covered(format!("trainer setup:{}", outcome(&t)));
            return Ok(());
        }
    };
    // Inputs: a whole batch (padded from `x`) unless the case's batch is 0.
    let inputs = c.widths[0];
    let x: Vec<f32> = (0..c.batch * inputs).map(|k| c.x.get(k).copied().unwrap_or(0.25)).collect();
    let outputs = *c.widths.last().unwrap_or(&0);
    let labels: Vec<u32> = if c.loss == 3 {
        c.labels.clone() // any length, any value
    } else {
        (0..c.batch).map(|k| c.labels.get(k).copied().unwrap_or(0) % outputs.max(1) as u32).collect()
    };
    let targets: Vec<f32> =
        (0..c.batch * outputs).map(|k| c.targets.get(k).copied().unwrap_or(0.0)).collect();
    let t = if c.loss == 2 { Targets::Values(&targets) } else { Targets::Labels(&labels) };
    let trainable = |p: &Params| -> Vec<u32> {
        p.entries().iter().filter(|e| e.kind.trainable()).flat_map(|e| bits(&p.values()[e.range()])).collect()
    };
    let before = trainable(trainer.params());
    let got = trainer.step(&x, t, c.lr, &mut rng);
    covered(format!("trainer step:{}", outcome(&got)));
    prop_assert_eq!(trainer.tape().nodes_used(), 0, "the tape is reset either way");
    match got {
        Ok(loss) => prop_assert!(loss.is_finite(), "a step returned a non-finite loss {}", loss),
        Err(e) => {
            prop_assert_eq!(
                trainable(trainer.params()),
                before,
                "a refused step changed parameters ({:?})",
                e
            );
            if c.short[0..2] == [0, 0] {
                prop_assert!(
                    !matches!(e, Error::Capacity { region: Region::TapeFloats | Region::TapeNodes, .. }),
                    "planned tape storage ran out: {:?}",
                    e
                );
            }
        }
    }
    Ok(())
}

#[test]
fn trainer_step_never_panics_and_refusals_change_nothing() {
    run_property("trainer", train_case(), run_train);
}
