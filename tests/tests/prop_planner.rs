//! Property tests of the planner's arithmetic and of tape handle validity (issue 14).
//!
//! **Overflow checks are on here**: these tests run in the dev/test profile, where
//! `overflow-checks` is on for every crate, and the workspace `Cargo.toml` says so explicitly for
//! the core (`[profile.dev.package.staticgrad] overflow-checks = true`, next to its opt-level 3).
//! So an unchecked `+` or `*` in the core that overflows panics the case instead of wrapping;
//! [`overflow_checks_are_on`] fails if someone runs this file without them (e.g. `--release`).
//!
//! - Planner: arbitrary widths (1 … `usize::MAX`, with the edge values weighted up), batch sizes
//!   (0 … `usize::MAX`), batch norm, dropout, loss and optimizer. Every count is compared with the
//!   same count in `u128` arithmetic: it is exact when that fits in `usize`, else the plain
//!   function says `usize::MAX` and `try_plan` / `validate` say `Err(Overflow)` (a count of
//!   exactly `usize::MAX` too: no buffer holds it) — never a wrapped number. Small specs are also run: the plan's storage is enough, one float less is not.
//! - Handles: `Var`s from before a reset, from an earlier tape over the same storage and from
//!   another tape are refused by every accessor and op, which then leave the tape as it was.
//!
//! `PROPTEST_CASES` sets the cases per property (default 10,000 for the planner, a tenth of that
//! for the heavier ones).

use proptest::prelude::*;
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;
use staticgrad::model::{Activation, Layer, LayerKind, Loss, MlpSpec, Model, Targets};
use staticgrad::{
    BatchNorm, BatchNormConfig, Conv2dConfig, Dropout, Error, ImageShape, Mode, Node, Optimizer, ParamEntry,
    ParamKind, Params, Pool2dConfig, Region, Shape, Tape, Var,
};

fn cases(divisor: u32) -> u32 {
    let n = std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000u32);
    (n / divisor).max(1)
}

#[test]
fn overflow_checks_are_on() {
    let r = std::panic::catch_unwind(|| std::hint::black_box(usize::MAX) + std::hint::black_box(1));
    assert!(r.is_err(), "overflow checks are off: run these tests in the dev profile");
}

// ----- planner ------------------------------------------------------------------------------

/// A width or batch: tiny, anything, or an edge (powers of two and their neighbours, `u32::MAX`,
/// `usize::MAX` and its halves).
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        3 => 1..9usize,
        2 => any::<usize>(),
        2 => (0..64u32, -1i8..=1).prop_map(|(k, d)| (1usize << k).wrapping_add_signed(d as isize)),
        1 => prop::sample::select(vec![
            u32::MAX as usize,
            usize::MAX,
            usize::MAX / 2,
            usize::MAX / 2 + 1,
            usize::MAX / 4,
            usize::MAX / 23,
            1usize << 32,
        ]),
    ]
}

#[derive(Clone, Debug)]
struct Case {
    widths: Vec<usize>,
    bn: bool,
    dropout: Option<Dropout>,
    mse: bool,
    opt: Optimizer,
    batch: usize,
    layer: usize,
}

impl Case {
    fn spec(&self) -> Model<'_> {
        let mut s = MlpSpec::new(&self.widths).with_activation(Activation::Tanh);
        if self.bn {
            s = s.with_batch_norm(BatchNormConfig::BOOK);
        }
        if let Some(d) = self.dropout {
            s = s.with_dropout(d);
        }
        if self.mse { s.with_loss(Loss::Mse).model() } else { s.model() }
    }
}

fn case(
    widths: impl Strategy<Value = Vec<usize>>,
    batch: impl Strategy<Value = usize>,
) -> impl Strategy<Value = Case> {
    let dropout =
        prop_oneof![Just(None), Just(Some(Dropout::inverted(0.25))), Just(Some(Dropout::book(0.5)))];
    let opt = prop::sample::select(vec![Optimizer::sgd(), Optimizer::momentum(), Optimizer::adam()]);
    (widths, any::<bool>(), dropout, any::<bool>(), opt, batch, prop_oneof![0..8usize, any::<usize>()])
        .prop_map(|(widths, bn, dropout, mse, opt, batch, layer)| Case {
            widths,
            bn,
            dropout,
            mse,
            opt,
            batch,
            layer,
        })
}

/// Checked `u128` arithmetic: `None` only past `u128::MAX` (far past `usize::MAX`).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Big(Option<u128>);

impl Big {
    fn n(x: usize) -> Big {
        Big(Some(x as u128))
    }
    fn fit(self) -> Option<usize> {
        self.0.and_then(|x| usize::try_from(x).ok())
    }
    /// What `try_plan` takes: a count below `usize::MAX` (a count of `usize::MAX` itself is
    /// indistinguishable from a saturated one, and no buffer can hold it anyway).
    fn below_max(self) -> bool {
        self.fit().is_some_and(|x| x < usize::MAX)
    }
    /// What the plain planner functions return: the count, or `usize::MAX` past it.
    fn sat(self) -> usize {
        self.fit().unwrap_or(usize::MAX)
    }
}

impl std::ops::Add for Big {
    type Output = Big;
    fn add(self, o: Big) -> Big {
        Big(self.0.zip(o.0).and_then(|(a, b)| a.checked_add(b)))
    }
}

impl std::ops::Mul for Big {
    type Output = Big;
    fn mul(self, o: Big) -> Big {
        match (self.0, o.0) {
            (Some(0), _) | (_, Some(0)) => Big(Some(0)), // however large the other factor
            (a, b) => Big(a.zip(b).and_then(|(a, b)| a.checked_mul(b))),
        }
    }
}

/// The reference counts, written from the layout and the ops' documented storage (not from the
/// planner's code): (parameter floats, tensors, tape floats, tape nodes).
struct Reference {
    params: Big,
    tensors: Big,
}

fn reference(c: &Case) -> Reference {
    let w = &c.widths;
    let hidden = w.len().saturating_sub(2);
    let mut params = Big::n(0);
    for l in 0..w.len().saturating_sub(1) {
        let (i, o) = (Big::n(w[l]), Big::n(w[l + 1]));
        params = params + i * o + o;
        if c.bn && l < hidden {
            params = params + Big::n(4) * o; // γ, β, running mean and variance
        }
    }
    let per = if c.bn { 6 } else { 2 };
    let tensors = if w.len() < 2 { Big::n(0) } else { Big::n(hidden) * Big::n(per) + Big::n(2) };
    Reference { params, tensors }
}

/// (floats, nodes) of a training step (`train`, with the loss) or an eval forward pass.
fn tape_reference(c: &Case, batch: usize, train: bool) -> (Big, Big) {
    let w = &c.widths;
    let b = Big::n(batch);
    let one = Big::n(1);
    let (mut v, mut g, mut nodes) = (b * Big::n(w[0]), Big::n(0), Big::n(1));
    let layers = w.len() - 1;
    for l in 0..layers {
        let o = Big::n(w[l + 1]);
        let act = b * o;
        let mut record = |values: Big| {
            v = v + values;
            g = g + act;
            nodes = nodes + one;
        };
        record(act); // affine
        if l + 1 < layers {
            if c.bn {
                record(act + Big::n(2) * o + one); // output, μ, σ², eps
            }
            record(act); // activation
            match c.dropout {
                // the keep-mask: 23 bits per float
                Some(_) if train => record(act + Big(act.0.map(|a| a.div_ceil(23)))),
                Some(d) if d.eval_nodes() == 1 => record(act), // the book form's eval-mode scale
                _ => {}
            }
        }
    }
    if train {
        v = v + one + b * Big::n(*w.last().unwrap()); // the loss and its scratch / the MSE target
        g = g + one;
        nodes = nodes + Big::n(if c.mse { 2 } else { 1 });
        (v + g, nodes)
    } else {
        (v, nodes)
    }
}

fn bytes(params: Big, tensors: Big, grads: Big, state: Big, floats: Big, nodes: Big) -> Big {
    let f = Big::n(4);
    params * f
        + tensors * Big::n(size_of::<ParamEntry>())
        + grads * f
        + state * f
        + floats * f
        + nodes * Big::n(size_of::<Node>())
}

fn check_planner(c: Case) -> Result<(), TestCaseError> {
    let spec = c.spec();
    let r = reference(&c);
    let k = Big::n(c.opt.floats_per_param());
    let state = Big::n(staticgrad::optim::HEADER_LEN) + r.params * k;
    prop_assert_eq!(spec.param_len(), r.params.sat());
    prop_assert_eq!(spec.param_tensors(), r.tensors.sat());
    prop_assert_eq!(spec.state_len(&c.opt), state.sat());
    prop_assert_eq!(
        spec.loss_tape_floats(c.batch),
        (Big::n(1) + Big::n(c.batch) * Big::n(spec.outputs())).sat()
    );

    let (floats, nodes) = tape_reference(&c, c.batch, true);
    let (eval_floats, eval_nodes) = tape_reference(&c, c.batch, false);
    prop_assert_eq!(spec.tape_floats(c.batch), floats.sat());
    prop_assert_eq!(spec.tape_nodes(), nodes.sat());
    prop_assert_eq!(spec.eval_tape_floats(c.batch), eval_floats.sat());
    prop_assert_eq!(spec.eval_tape_nodes(), eval_nodes.sat());

    // The plain plan: every field exact or usize::MAX, the bytes too.
    let total = bytes(r.params, r.tensors, r.params, state, floats, nodes);
    let plan = spec.plan(c.batch, &c.opt);
    prop_assert_eq!(
        (plan.param_floats, plan.param_tensors, plan.grad_floats, plan.state_floats),
        (r.params.sat(), r.tensors.sat(), r.params.sat(), state.sat())
    );
    prop_assert_eq!((plan.tape_floats, plan.tape_nodes), (floats.sat(), nodes.sat()));
    prop_assert_eq!(plan.total_bytes(), total.sat());

    // The checked plan: Ok with exactly these numbers when all of them (and the bytes) fit.
    let fits =
        [r.params, r.tensors, state, floats, nodes].iter().all(|b| b.below_max()) && total.fit().is_some();
    match spec.try_plan(c.batch, &c.opt) {
        Ok(p) => {
            prop_assert!(fits, "try_plan accepted sizes past usize: {:?}", p);
            prop_assert_eq!(p, plan);
            prop_assert_eq!(p.total_bytes(), total.fit().unwrap());
            // Eval-mode counts are below the training step's: exact too.
            prop_assert!(eval_floats.fit().is_some() && eval_nodes.fit().is_some());
            let fused = spec.try_plan_fused(c.batch, &c.opt).unwrap();
            prop_assert_eq!(fused.grad_floats, *c.widths[1..].iter().max().unwrap());
            prop_assert!(fused.total_bytes() <= p.total_bytes());
        }
        Err(Error::Overflow { batch, .. }) => {
            prop_assert!(!fits, "try_plan refused sizes that fit");
            prop_assert_eq!(batch, c.batch);
            let fused = spec.try_plan_fused(c.batch, &c.opt);
            prop_assert!(matches!(fused, Err(Error::Overflow { .. })), "{:?}", fused);
        }
        Err(e) => return Err(TestCaseError::fail(format!("try_plan: unexpected {e:?}"))),
    }

    // validate: the spec's own sizes (parameter values and gradients, and the table) fit, and
    // at most 65535 tensors.
    let param_bytes = Big::n(8) * r.params + Big::n(size_of::<ParamEntry>()) * r.tensors;
    let sizes_fit = r.params.below_max() && param_bytes.fit().is_some();
    let v = spec.validate();
    if c.widths[0] == 0 {
        prop_assert!(
            matches!(v, Err(Error::InvalidArgument { what: "model inputs (need at least one feature)", .. })),
            "{:?}",
            v
        );
    } else if c.widths.contains(&0) {
        prop_assert!(matches!(v, Err(Error::InvalidArgument { what: "dense layer units", .. })), "{:?}", v);
    } else if !sizes_fit {
        prop_assert!(matches!(v, Err(Error::Overflow { batch: 0, .. })), "{:?}", v);
    } else if r.tensors.sat() > u16::MAX as usize {
        prop_assert!(
            matches!(v, Err(Error::InvalidArgument { what: "model parameter tensors (at most 65535)", .. })),
            "{:?}",
            v
        );
    } else {
        prop_assert_eq!(v, Ok(()));
    }

    // Handles of layer `l`: a function of the index for a layer of the spec, else none.
    let layers = c.widths.len() - 1;
    let per = if c.bn { 6 } else { 2 };
    let l = c.layer;
    let index = |k: usize| (l < layers).then(|| l * per + k).filter(|&i| i <= u16::MAX as usize);
    prop_assert_eq!(spec.weight(l).map(|id| id.index()), index(0));
    prop_assert_eq!(spec.bias(l).map(|id| id.index()), index(1));
    let bn = spec
        .batch_norm_layer(l)
        .map(|b| [b.gamma, b.beta, b.running_mean, b.running_var].map(|id| id.index()));
    let expected = (c.bn && l + 1 < layers).then(|| [2, 3, 4, 5].map(index)).and_then(|ids| {
        let [a, b, m, v] = ids;
        Some([a?, b?, m?, v?])
    });
    prop_assert_eq!(bn, expected);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(1), ..ProptestConfig::default() })]

    /// Arbitrary widths and batches: exact or refused, never wrapped.
    #[test]
    fn planner_is_exact_or_refuses(c in case(prop::collection::vec(size(), 2..6), size())) {
        check_planner(c)?;
    }

    /// Zero widths and single-width specs among the arbitrary ones.
    #[test]
    fn planner_degenerate_specs(c in case(prop::collection::vec(prop_oneof![Just(0usize), size()], 2..4), size())) {
        check_planner(c)?;
    }
}

/// The examples of the issue, and a `const` spec that overflows: checked at compile time.
#[test]
fn planner_issue_examples_and_const_context() {
    let huge = MlpSpec::new(&[usize::MAX / 2, usize::MAX / 2, 10]).model();
    assert!(matches!(huge.validate(), Err(Error::Overflow { batch: 0, .. })));
    assert!(matches!(huge.try_plan(1, &Optimizer::sgd()), Err(Error::Overflow { .. })));
    assert_eq!(huge.plan(1, &Optimizer::sgd()).total_bytes(), usize::MAX); // was 352 in release
    let runner = MlpSpec::new(&[784, 4294967295, 4294967295, 10]).model();
    assert!(matches!(runner.try_plan(usize::MAX, &Optimizer::adam()), Err(Error::Overflow { .. })));
    let small = MlpSpec::new(&[784, 100, 10]).model();
    assert!(matches!(
        small.try_plan(usize::MAX, &Optimizer::sgd()),
        Err(Error::Overflow { batch: usize::MAX, .. })
    ));
    assert_eq!(small.tape_floats(usize::MAX), usize::MAX);
    assert!(small.try_plan(1 << 20, &Optimizer::adam()).is_ok());

    const HUGE: Model = MlpSpec::new(&[usize::MAX / 2, usize::MAX / 2, 10]).model();
    const _: () = assert!(HUGE.validate().is_err());
    const _: () = assert!(matches!(HUGE.try_plan(1, &Optimizer::sgd()), Err(Error::Overflow { .. })));
    const _: () = assert!(HUGE.param_len() == usize::MAX); // a `[f32; HUGE.param_len()]` fails to compile
    const SPEC: Model = MlpSpec::new(&[196, 32, 10]).model();
    const _: () = assert!(SPEC.validate().is_ok());
    const PLAN: staticgrad::Plan = match SPEC.try_plan(8, &Optimizer::adam()) {
        Ok(p) => p,
        Err(_) => panic!("fits"),
    };
    let params = [0.0f32; SPEC.param_len()];
    assert_eq!(params.len(), PLAN.param_floats);
    for l in [2, 3, usize::MAX] {
        assert_eq!((SPEC.weight(l), SPEC.bias(l)), (None, None));
    }
}

// ----- the plan is enough, one float less is not --------------------------------------------

fn small_case() -> impl Strategy<Value = Case> {
    case(prop::collection::vec(1..6usize, 2..5), 1..5usize)
}

/// One `gradient` step of `c` with tape storage of `floats` floats and `nodes` nodes.
fn step(c: &Case, floats: usize, nodes: usize) -> Result<(), Error> {
    let spec = c.spec();
    let plan = spec.try_plan(c.batch, &c.opt)?;
    let (mut v, mut g, mut t) = (
        vec![0.0; plan.param_floats],
        vec![0.0; plan.grad_floats],
        vec![ParamEntry::EMPTY; plan.param_tensors],
    );
    let mut params = Params::new(&mut v, &mut g, &mut t);
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(7);
    spec.alloc(&mut params)?;
    spec.init(&mut params, &mut rng)?;
    let (mut f, mut n) = (vec![0.0; floats], vec![Node::EMPTY; nodes]);
    let mut tape = Tape::new(&mut f, &mut n);
    let x: Vec<f32> = (0..c.batch * spec.inputs()).map(|i| (i % 5) as f32 / 4.0 - 0.5).collect();
    let labels: Vec<u32> = (0..c.batch).map(|i| (i % spec.outputs()) as u32).collect();
    let values = vec![0.25; c.batch * spec.outputs()];
    let targets = if c.mse { Targets::Values(&values) } else { Targets::Labels(&labels) };
    spec.gradient(&mut tape, &mut params, &x, targets, &mut rng).map(|_| ())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(10), ..ProptestConfig::default() })]

    #[test]
    fn planned_storage_is_exact(c in small_case()) {
        let p = c.spec().try_plan(c.batch, &c.opt).unwrap();
        prop_assert_eq!(step(&c, p.tape_floats, p.tape_nodes), Ok(()));
        let fewer = step(&c, p.tape_floats - 1, p.tape_nodes);
        prop_assert!(matches!(fewer, Err(Error::Capacity { region: Region::TapeFloats, .. })), "{:?}", fewer);
        let fewer = step(&c, p.tape_floats, p.tape_nodes - 1);
        prop_assert!(matches!(fewer, Err(Error::Capacity { region: Region::TapeNodes, .. })), "{:?}", fewer);
    }
}

// ----- random layer lists: the plan is enough, one float or node less is not ---------------------

/// A random layer list: dense layers of 1–5 units, each followed by up to three of: an activation
/// (any of the three), batch norm (at most one per dense layer), dropout (either form) — so
/// mixed activations, and batch norm and dropout in any position after a dense layer.
#[derive(Clone, Debug)]
struct ListCase {
    inputs: usize,
    /// An image input (C, H, W) of `inputs` values, for the CNN cases.
    image: Option<(usize, usize, usize)>,
    layers: Vec<Layer>,
    mse: bool,
    opt: Optimizer,
    batch: usize,
}

impl ListCase {
    fn model(&self) -> Model<'_> {
        let m = match self.image {
            Some((c, h, w)) => Model::image(c, h, w, &self.layers),
            None => Model::new(self.inputs, &self.layers),
        };
        if self.mse { m.with_loss(Loss::Mse) } else { m }
    }
}

fn list_case() -> impl Strategy<Value = ListCase> {
    let extra = prop_oneof![
        Just(Layer::relu()),
        Just(Layer::sigmoid()),
        Just(Layer::tanh()),
        Just(Layer::batch_norm(BatchNormConfig::STANDARD)),
        Just(Layer::dropout(Dropout::inverted(0.25))),
        Just(Layer::dropout(Dropout::book(0.5))),
    ];
    let block = (1..6usize, prop::collection::vec(extra, 0..4));
    let opt = prop::sample::select(vec![Optimizer::sgd(), Optimizer::momentum(), Optimizer::adam()]);
    (1..6usize, prop::collection::vec(block, 1..4), any::<bool>(), opt, 1..5usize).prop_map(
        |(inputs, blocks, mse, opt, batch)| {
            let mut layers = Vec::new();
            for (units, extras) in blocks {
                layers.push(Layer::dense(units));
                let mut bn = false;
                for e in extras {
                    if let LayerKind::BatchNorm(_) = e.kind()
                        && std::mem::replace(&mut bn, true)
                    {
                        continue; // a second batch norm for one dense layer is refused
                    }
                    layers.push(e);
                }
            }
            ListCase { inputs, image: None, layers, mse, opt, batch }
        },
    )
}

/// A random CNN: a 1–2 channel image of 3–7 × 3–7, one to three convolutions (1–4 filters,
/// kernels 1–3 × 1–3, stride 1–2, padding 0–1, kept only where they fit), each followed by up to
/// an activation and a pooling (max or average, window and stride 1–2, or global), then an
/// optional flatten and the dense blocks of [`list_case`] (batch norm and dropout included).
fn cnn_case() -> impl Strategy<Value = ListCase> {
    let conv = (1..5usize, 1..4usize, 1..4usize, 1..3usize, 0..2usize);
    let act =
        prop::sample::select(vec![None, Some(Layer::relu()), Some(Layer::tanh()), Some(Layer::sigmoid())]);
    let pool = (0..4u8, 1..3usize, 1..3usize);
    let block = (conv, act, pool);
    (1..3usize, 3..8usize, 3..8usize, prop::collection::vec(block, 1..4), any::<bool>(), list_case())
        .prop_map(|(c, h, w, blocks, flatten, tail)| {
            let mut layers = Vec::new();
            let mut img = ImageShape::new(c, h, w);
            for ((out, kh, kw, stride, pad), act, (pool, win, pstride)) in blocks {
                let config = Conv2dConfig::new(kh, kw, stride, pad);
                let Ok(next) = config.output(img, out) else { continue };
                layers.push(Layer::conv2d_with(out, config));
                img = next;
                layers.extend(act);
                let p = Pool2dConfig::new(win, win, pstride);
                match pool {
                    0 => {}
                    3 => {
                        layers.push(Layer::global_avg_pool2d());
                        img = ImageShape::new(img.channels, 1, 1);
                    }
                    k => {
                        if let Ok(next) = p.output(img) {
                            layers.push(if k == 1 {
                                Layer::max_pool2d_with(p)
                            } else {
                                Layer::avg_pool2d_with(p)
                            });
                            img = next;
                        }
                    }
                }
            }
            if layers.is_empty() {
                layers.push(Layer::conv2d(2, 1, 1, 0)); // every kernel drawn was too large
            }
            if flatten {
                layers.push(Layer::flatten());
            }
            layers.extend(tail.layers);
            ListCase { inputs: c * h * w, image: Some((c, h, w)), layers, ..tail }
        })
}

/// One training step (`Trainer::step`, so every path: direct, recorded, overwrite) of `c` with
/// exactly the given storage (a trainer checks it against the plan when it is made; that the
/// step really fills the tape is `tests/tests/mlp.rs`'s check).
fn list_step(
    c: &ListCase,
    floats: usize,
    nodes: usize,
    param_floats: usize,
    tensors: usize,
) -> Result<f32, Error> {
    let m = c.model();
    let plan = staticgrad::Plan {
        param_floats,
        grad_floats: param_floats,
        param_tensors: tensors,
        state_floats: m.state_len(&c.opt),
        tape_floats: floats,
        tape_nodes: nodes,
    };
    let mut memory = staticgrad_tests::HostMemory::new(&plan);
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(5);
    let mut trainer = staticgrad::Trainer::new(&m, &c.opt, c.batch, memory.memory())?;
    trainer.init(&mut rng)?;
    let x: Vec<f32> = (0..c.batch * c.inputs).map(|i| (i % 5) as f32 / 4.0 - 0.5).collect();
    let labels: Vec<u32> = (0..c.batch).map(|i| (i % m.outputs()) as u32).collect();
    let values = vec![0.25; c.batch * m.outputs()];
    let targets = if c.mse { Targets::Values(&values) } else { Targets::Labels(&labels) };
    trainer.step(&x, targets, 0.01, &mut rng)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(10), ..ProptestConfig::default() })]

    #[test]
    fn random_layer_lists_plan_exactly(c in list_case()) {
        check_list(&c)?;
    }

    #[test]
    fn random_cnn_lists_plan_exactly(c in cnn_case()) {
        check_list(&c)?;
    }
}

/// The planner's counts of `c` are exactly what a step needs (one less of any is refused), the
/// fused row scratch is the widest parameter row, and handles count along the walk.
fn check_list(c: &ListCase) -> Result<(), TestCaseError> {
    let m = c.model();
    prop_assert_eq!(m.validate(), Ok(()));
    let p = m.try_plan(c.batch, &c.opt).unwrap();
    let ok = list_step(c, p.tape_floats, p.tape_nodes, p.param_floats, p.param_tensors);
    prop_assert!(ok.is_ok_and(f32::is_finite), "{:?}", ok);
    let fewer = list_step(c, p.tape_floats - 1, p.tape_nodes, p.param_floats, p.param_tensors);
    prop_assert!(matches!(fewer, Err(Error::Capacity { region: Region::TapeFloats, .. })), "{:?}", fewer);
    let fewer = list_step(c, p.tape_floats, p.tape_nodes - 1, p.param_floats, p.param_tensors);
    prop_assert!(matches!(fewer, Err(Error::Capacity { region: Region::TapeNodes, .. })), "{:?}", fewer);
    let fewer = list_step(c, p.tape_floats, p.tape_nodes, p.param_floats - 1, p.param_tensors);
    prop_assert!(matches!(fewer, Err(Error::Capacity { .. })), "{:?}", fewer);
    let fewer = list_step(c, p.tape_floats, p.tape_nodes, p.param_floats, p.param_tensors - 1);
    prop_assert!(matches!(fewer, Err(Error::Capacity { .. })), "{:?}", fewer);
    // The fused update needs one row of gradients: the widest tensor row (a convolution's
    // filter row is C·kh·kw, its bias as wide as its filters).
    let mut channels = c.image.map_or(1, |i| i.0);
    let mut widest = 0;
    for l in &c.layers {
        match l.kind() {
            LayerKind::Dense { units } => widest = widest.max(units),
            LayerKind::Conv2d { out_channels, config } => {
                widest = widest.max(channels * config.kernel_h * config.kernel_w).max(out_channels);
                channels = out_channels;
            }
            _ => {}
        }
    }
    prop_assert_eq!(m.fused_grad_floats(), widest);
    // Handles count along the walk: dense `l`'s weight is the table row after every tensor
    // of the layers before it.
    let mut tensor = 0;
    let mut dense = 0;
    let mut conv = 0;
    for layer in &c.layers {
        match layer.kind() {
            LayerKind::Dense { .. } => {
                prop_assert_eq!(m.weight(dense).map(|w| w.index()), Some(tensor));
                prop_assert_eq!(m.bias(dense).map(|b| b.index()), Some(tensor + 1));
                tensor += 2;
                dense += 1;
            }
            LayerKind::Conv2d { .. } => {
                prop_assert_eq!(m.conv_weight(conv).map(|w| w.index()), Some(tensor));
                prop_assert_eq!(m.conv_bias(conv).map(|b| b.index()), Some(tensor + 1));
                tensor += 2;
                conv += 1;
            }
            LayerKind::BatchNorm(_) => {
                prop_assert_eq!(m.batch_norm_layer(dense - 1).map(|b| b.gamma.index()), Some(tensor));
                tensor += 4;
            }
            _ => {}
        }
    }
    prop_assert_eq!((m.weight(dense), m.conv_weight(conv), m.param_tensors()), (None, None, tensor));
    Ok(())
}

// ----- handle validity ----------------------------------------------------------------------

/// Where a `Var` was made: which tape (0 = the one re-made over the same storage, 1 = another),
/// which incarnation of it, and how many resets before.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Made {
    tape: u8,
    incarnation: usize,
    resets: usize,
}

#[derive(Clone, Copy, Debug)]
enum Act {
    /// A `rows × cols` input on tape 0 or 1.
    Input(u8, usize, usize),
    /// `relu` of the `k`-th handle of the pool (mod its length) on tape 0.
    Relu(usize),
    Reset(u8),
    /// Drop tape 0 and make a new one over the same storage.
    Remake,
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        4 => (0..2u8, 1..3usize, 1..4usize).prop_map(|(t, r, c)| Act::Input(t, r, c)),
        2 => any::<usize>().prop_map(Act::Relu),
        2 => (0..2u8).prop_map(Act::Reset),
        1 => Just(Act::Remake),
    ]
}

/// Every accessor and op that takes a `Var`, applied to `v` (with `live`, a valid handle of the
/// same tape, as the other operand of binary ops, in both orders).
fn every_use(
    tape: &mut Tape,
    v: Var,
    live: Option<Var>,
    params: &mut Params,
    (w, b, bn): (staticgrad::ParamId, staticgrad::ParamId, &BatchNorm),
) -> Vec<(&'static str, Result<(), Error>)> {
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(3);
    let opt = Optimizer::sgd();
    let mut state = [0.0f32; staticgrad::optim::HEADER_LEN];
    let u = [0.5f32; 64];
    let mut r: Vec<(&'static str, Result<(), Error>)> = vec![
        ("node", tape.node(v).map(drop)),
        ("shape", tape.shape(v).map(drop)),
        ("value", tape.value(v).map(drop)),
        ("grad", tape.grad(v).map(drop)),
        ("scalar", tape.scalar(v).map(drop)),
        ("relu", tape.relu(v).map(drop)),
        ("sigmoid", tape.sigmoid(v).map(drop)),
        ("tanh", tape.tanh(v).map(drop)),
        ("scale", tape.scale(v, 2.0).map(drop)),
        ("sum", tape.sum(v).map(drop)),
        ("mean", tape.mean(v).map(drop)),
        ("dropout", tape.dropout(v, Dropout::inverted(0.5), Mode::Train, &mut rng).map(drop)),
        ("dropout_with_uniform", tape.dropout_with_uniform(v, Dropout::inverted(0.5), &u).map(drop)),
        ("softmax_cross_entropy", tape.softmax_cross_entropy(v, &[0]).map(drop)),
        ("affine", tape.affine(v, params, w, b).map(drop)),
        ("batch_norm", tape.batch_norm(v, params, bn, Mode::Train).map(drop)),
        ("batch_norm_no_update", tape.batch_norm_no_update(v, params, bn, Mode::Eval).map(drop)),
        ("update_running", bn.update_running(tape, v, params)),
        ("backward", tape.backward(v, params)),
        ("backward_overwrite", tape.backward_overwrite(v, params)),
        ("backward_fused", tape.backward_fused(v, params, &opt, &mut state, 0.1)),
    ];
    if let Some(l) = live {
        r.extend([
            ("add(v, live)", tape.add(v, l).map(drop)),
            ("add(live, v)", tape.add(l, v).map(drop)),
            ("mul(v, live)", tape.mul(v, l).map(drop)),
            ("mul(live, v)", tape.mul(l, v).map(drop)),
            ("matmul(v, live)", tape.matmul(v, l).map(drop)),
            ("matmul(live, v)", tape.matmul(l, v).map(drop)),
            ("mse(v, live)", tape.mse(v, l).map(drop)),
            ("mse(live, v)", tape.mse(l, v).map(drop)),
        ]);
    }
    r
}

/// Checks every handle of the pool against tape `t`: valid ones are never refused as handles,
/// the others always are, and a refusal leaves the tape as it was.
fn check_pool(
    tape: &mut Tape,
    t: u8,
    now: Made,
    pool: &[(Var, Made)],
    params: &mut Params,
    ids: (staticgrad::ParamId, staticgrad::ParamId, &BatchNorm),
) -> Result<(), TestCaseError> {
    let live = pool.iter().find(|(_, m)| *m == now).map(|&(v, _)| v);
    for &(v, made) in pool {
        let valid = made == now;
        if valid {
            prop_assert!(tape.node(v).is_ok(), "tape {} refused its own {:?} ({:?})", t, v, made);
            // Shape, capacity, label … errors are fine; a handle error is not (but for
            // update_running, whose handle must be a batch-norm node of its layer).
            for (what, r) in every_use(tape, v, live, params, ids) {
                if what != "update_running" {
                    prop_assert!(
                        !matches!(r, Err(Error::InvalidHandle { what: "var", .. })),
                        "{}: tape {} refused its own {:?} ({:?})",
                        what,
                        t,
                        v,
                        made
                    );
                }
            }
        } else {
            let before = (tape.nodes_used(), tape.floats_used());
            for (what, r) in every_use(tape, v, live, params, ids) {
                prop_assert!(
                    matches!(r, Err(Error::InvalidHandle { what: "var", .. })),
                    "{}: tape {} (now {:?}) took {:?} made {:?}: {:?}",
                    what,
                    t,
                    now,
                    v,
                    made,
                    r
                );
            }
            prop_assert_eq!(
                (tape.nodes_used(), tape.floats_used()),
                before,
                "a refused handle changed the tape"
            );
        }
    }
    Ok(())
}

fn run_handles(acts: Vec<Act>) -> Result<(), TestCaseError> {
    let (mut values, mut grads, mut table) = (vec![0.0f32; 64], vec![0.0f32; 64], vec![ParamEntry::EMPTY; 8]);
    let mut params = Params::new(&mut values, &mut grads, &mut table);
    let w = params.alloc(Shape::new(3, 2), ParamKind::Weight).unwrap();
    let b = params.alloc(Shape::row(2), ParamKind::Bias).unwrap();
    let bn = BatchNorm::alloc(&mut params, 3, BatchNormConfig::BOOK).unwrap();
    let ids = (w, b, &bn);
    let (mut f0, mut n0) = (vec![0.0f32; 2048], vec![Node::EMPTY; 128]);
    let (mut f1, mut n1) = (vec![0.0f32; 2048], vec![Node::EMPTY; 128]);
    let mut t1 = Tape::new(&mut f1, &mut n1); // lives throughout: its handles are foreign to tape 0
    let mut pool: Vec<(Var, Made)> = Vec::new();
    let mut resets1 = 0;
    let mut acts = acts.into_iter();
    for incarnation in 0.. {
        // A new tape over the storage the previous one used: that one's handles are stale here.
        let mut t0 = Tape::new(&mut f0, &mut n0);
        let mut resets0 = 0;
        let mut remade = false;
        for a in acts.by_ref() {
            let now0 = Made { tape: 0, incarnation, resets: resets0 };
            match a {
                Act::Input(t, rows, cols) => {
                    // (Two arms, not one `&mut Tape` of either: that would tie the two tapes'
                    // lifetimes together.)
                    let (data, shape) = (vec![0.5; rows * cols], Shape::new(rows, cols));
                    let made = if t == 0 { now0 } else { Made { tape: 1, incarnation: 0, resets: resets1 } };
                    let v = if t == 0 { t0.input(&data, shape) } else { t1.input(&data, shape) };
                    if let Ok(v) = v {
                        pool.push((v, made));
                    }
                }
                Act::Relu(k) if !pool.is_empty() => {
                    let (v, made) = pool[k % pool.len()];
                    match t0.relu(v) {
                        Ok(y) => {
                            prop_assert_eq!(made, now0, "relu took a handle not of this tape");
                            pool.push((y, now0));
                        }
                        Err(Error::InvalidHandle { .. }) => prop_assert_ne!(made, now0),
                        Err(e) => prop_assert!(matches!(e, Error::Capacity { .. }), "{:?}", e),
                    }
                }
                Act::Relu(_) => {}
                Act::Reset(0) => {
                    t0.reset();
                    resets0 += 1;
                }
                Act::Reset(_) => {
                    t1.reset();
                    resets1 += 1;
                }
                Act::Remake => {
                    remade = true;
                    break;
                }
            }
            let now0 = Made { tape: 0, incarnation, resets: resets0 };
            let now1 = Made { tape: 1, incarnation: 0, resets: resets1 };
            check_pool(&mut t0, 0, now0, &pool, &mut params, ids)?;
            check_pool(&mut t1, 1, now1, &pool, &mut params, ids)?;
        }
        if !remade {
            break;
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(10), ..ProptestConfig::default() })]

    /// Stale (before a reset, or of an earlier tape over the same storage) and foreign handles
    /// are refused by every accessor and op; the tape's own are not.
    #[test]
    fn stale_and_foreign_vars_are_refused_everywhere(acts in prop::collection::vec(act(), 1..14)) {
        run_handles(acts)?;
    }
}

#[test]
fn a_var_from_before_reset_no_longer_reads_the_new_node() {
    let mut ts = staticgrad::TapeStorage::<64, 8>::new();
    let mut tape = ts.tape();
    let old = tape.input(&[1.0, 2.0], Shape::new(1, 2)).unwrap();
    tape.reset();
    let new = tape.input(&[3.0, 4.0], Shape::new(1, 2)).unwrap();
    assert_eq!(old.index(), new.index());
    assert_eq!(tape.value(old), Err(Error::InvalidHandle { what: "var", index: 0 }));
    assert_eq!(tape.value(new), Ok(&[3.0, 4.0][..]));
    // A second tape over the same storage refuses the first tape's handles too.
    let mut again = ts.tape();
    let third = again.input(&[5.0, 6.0], Shape::new(1, 2)).unwrap();
    assert!(again.value(new).is_err() && again.value(old).is_err());
    assert_eq!(again.value(third), Ok(&[5.0, 6.0][..]));
}
