//! Every op against central differences on random shapes and values (seeded), with the worst
//! relative error per op printed (`cargo test --test gradcheck_ops -- --nocapture`).

use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro128PlusPlus;
use staticgrad::gradcheck::{GradcheckConfig, gradcheck};
use staticgrad::{ParamId, ParamKind, Result, Shape, Tape, Var};
use staticgrad_tests::HostStorage;

const TRIALS: usize = 8;

fn dim(rng: &mut Xoshiro128PlusPlus) -> usize {
    1 + (rng.next_u32() % 6) as usize
}

fn fill(rng: &mut Xoshiro128PlusPlus, v: &mut [f32], min_abs: f32) {
    for x in v.iter_mut() {
        loop {
            let u = (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32 * 4.0 - 2.0;
            if u.abs() >= min_abs {
                *x = u;
                break;
            }
        }
    }
}

/// Weighted sum so that every output element has its own gradient.
fn weighted(t: &mut Tape, y: Var, weights: &[f32]) -> Result<Var> {
    let s = t.shape(y)?;
    if s == Shape::SCALAR {
        return Ok(y);
    }
    let c = t.input(&weights[..s.len()], s)?;
    let p = t.mul(y, c)?;
    t.sum(p)
}

type Build = fn(&mut Tape, &staticgrad::Params, &[ParamId], &[u32]) -> Result<Var>;

/// Checks `build` over TRIALS random problems; `shapes` draws operand shapes from (m, k, n).
fn check(
    name: &str,
    min_abs: f32,
    shapes: fn(usize, usize, usize) -> Vec<(Shape, ParamKind)>,
    build: Build,
) -> f32 {
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(name.len() as u64 * 7919);
    let mut worst = 0.0f32;
    for _ in 0..TRIALS {
        let (m, k, n) = (dim(&mut rng), dim(&mut rng), dim(&mut rng));
        let mut s = HostStorage::new(1 << 14, 64, 1 << 10, 8);
        let (mut tape, mut params) = s.split();
        let ids: Vec<ParamId> = shapes(m, k, n)
            .into_iter()
            .map(|(shape, kind)| {
                let id = params.alloc(shape, kind).unwrap();
                fill(&mut rng, params.value_mut(id).unwrap(), min_abs);
                id
            })
            .collect();
        let labels: Vec<u32> = (0..m).map(|_| rng.next_u32() % n as u32).collect();
        let mut weights = vec![0.0; 64];
        fill(&mut rng, &mut weights, 0.0);
        let report = gradcheck(&mut tape, &mut params, GradcheckConfig::default(), |t, p| {
            let y = build(t, p, &ids, &labels)?;
            weighted(t, y, &weights)
        })
        .unwrap();
        assert!(report.worst_rel_error < 1e-2, "{name} ({m},{k},{n}): {report:?}");
        worst = worst.max(report.worst_rel_error);
    }
    worst
}

fn mk(m: usize, k: usize) -> Vec<(Shape, ParamKind)> {
    vec![(Shape::new(m, k), ParamKind::Weight)]
}
fn two(m: usize, k: usize) -> Vec<(Shape, ParamKind)> {
    vec![(Shape::new(m, k), ParamKind::Weight), (Shape::new(m, k), ParamKind::Weight)]
}

#[test]
fn every_op_passes_gradcheck() {
    let results = [
        (
            "matmul",
            check(
                "matmul",
                0.0,
                |m, k, n| vec![(Shape::new(m, k), ParamKind::Weight), (Shape::new(k, n), ParamKind::Weight)],
                |t, p, id, _| {
                    let (a, b) = (t.param(p, id[0])?, t.param(p, id[1])?);
                    t.matmul(a, b)
                },
            ),
        ),
        (
            "affine",
            check(
                "affine",
                0.0,
                |m, k, n| {
                    vec![
                        (Shape::new(m, k), ParamKind::Weight),
                        (Shape::new(k, n), ParamKind::Weight),
                        (Shape::row(n), ParamKind::Bias),
                    ]
                },
                |t, p, id, _| {
                    let x = t.param(p, id[0])?;
                    t.affine(x, p, id[1], id[2])
                },
            ),
        ),
        (
            "add",
            check(
                "add",
                0.0,
                |m, k, _| two(m, k),
                |t, p, id, _| {
                    let (a, b) = (t.param(p, id[0])?, t.param(p, id[1])?);
                    t.add(a, b)
                },
            ),
        ),
        (
            "add (row broadcast)",
            check(
                "add (row broadcast)",
                0.0,
                |m, k, _| vec![(Shape::new(m, k), ParamKind::Weight), (Shape::row(k), ParamKind::Weight)],
                |t, p, id, _| {
                    let (a, b) = (t.param(p, id[0])?, t.param(p, id[1])?);
                    t.add(a, b)
                },
            ),
        ),
        (
            "mul",
            check(
                "mul",
                0.0,
                |m, k, _| two(m, k),
                |t, p, id, _| {
                    let (a, b) = (t.param(p, id[0])?, t.param(p, id[1])?);
                    t.mul(a, b)
                },
            ),
        ),
        (
            "scale",
            check(
                "scale",
                0.0,
                |m, k, _| mk(m, k),
                |t, p, id, _| {
                    let a = t.param(p, id[0])?;
                    t.scale(a, -1.75)
                },
            ),
        ),
        (
            "relu",
            check(
                "relu",
                0.05,
                |m, k, _| mk(m, k),
                |t, p, id, _| {
                    let a = t.param(p, id[0])?;
                    t.relu(a)
                },
            ),
        ),
        (
            "sigmoid",
            check(
                "sigmoid",
                0.0,
                |m, k, _| mk(m, k),
                |t, p, id, _| {
                    let a = t.param(p, id[0])?;
                    t.sigmoid(a)
                },
            ),
        ),
        (
            "tanh",
            check(
                "tanh",
                0.0,
                |m, k, _| mk(m, k),
                |t, p, id, _| {
                    let a = t.param(p, id[0])?;
                    t.tanh(a)
                },
            ),
        ),
        (
            "softmax_cross_entropy",
            check(
                "softmax_cross_entropy",
                0.0,
                |m, _, n| mk(m, n),
                |t, p, id, labels| {
                    let a = t.param(p, id[0])?;
                    t.softmax_cross_entropy(a, labels)
                },
            ),
        ),
        (
            "mse",
            check(
                "mse",
                0.0,
                |m, k, _| two(m, k),
                |t, p, id, _| {
                    let (a, b) = (t.param(p, id[0])?, t.param(p, id[1])?);
                    t.mse(a, b)
                },
            ),
        ),
        (
            "sum",
            check(
                "sum",
                0.0,
                |m, k, _| mk(m, k),
                |t, p, id, _| {
                    let a = t.param(p, id[0])?;
                    t.sum(a)
                },
            ),
        ),
        (
            "mean",
            check(
                "mean",
                0.0,
                |m, k, _| mk(m, k),
                |t, p, id, _| {
                    let a = t.param(p, id[0])?;
                    t.mean(a)
                },
            ),
        ),
    ];
    eprintln!("| op | worst relative error ({TRIALS} random shapes up to 6×6×6) |\n|---|---|");
    for (name, worst) in results {
        eprintln!("| {name} | {worst:.2e} |");
    }
}
