//! Criterion benchmarks of the core's kernels and of whole training steps, so a kernel change
//! shows its effect: `cargo bench -p staticgrad-tests --bench kernels [-- FILTER]`.
//!
//! Shapes are the peer harness' workloads: book (784-100×4-10, batch 128), twolayer
//! (784-50-10, batch 100) and tiny (4-16-3, batch 8). With the core's `x86-simd` feature on, every
//! matrix kernel is measured once per available kernel family (`portable`, `avx2`, `avx2fma`,
//! `avx512`, `avx512fma`).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro128PlusPlus;
use staticgrad::kernels::{self, Dims, Kernels};
use staticgrad::{
    BatchNorm, BatchNormConfig, Mode, Node, Optimizer, ParamEntry, ParamKind, Params, Shape, Tape,
};
use std::hint::black_box;

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed);
    (0..n).map(|_| (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0).collect()
}

/// The kernel families this build and CPU can run.
fn families() -> Vec<(&'static str, Kernels)> {
    let mut out = vec![("portable", Kernels::Portable)];
    for (name, k) in [
        ("avx2", Kernels::Avx2),
        ("avx2fma", Kernels::Avx2Fma),
        ("avx512", Kernels::Avx512),
        ("avx512fma", Kernels::Avx512Fma),
    ] {
        if kernels::select(k) == k {
            out.push((name, k));
        }
    }
    kernels::select(Kernels::Portable);
    out
}

/// (name, m = batch, k = in, n = out) of the layers worth timing.
const LAYERS: [(&str, usize, usize, usize); 5] = [
    ("book-784x100", 128, 784, 100),
    ("book-100x100", 128, 100, 100),
    ("book-100x10", 128, 100, 10),
    ("twolayer-784x50", 100, 784, 50),
    ("tiny-4x16", 8, 4, 16),
];

fn matmuls(c: &mut Criterion) {
    for (fam, kern) in families() {
        kernels::select(kern);
        for (name, m, k, n) in LAYERS {
            let x = random(m * k, 1);
            let w = random(k * n, 2);
            let dy = random(m * n, 3);
            let mut y = vec![0.0; m * n];
            let mut dw = vec![0.0; k * n];
            let mut dx = vec![0.0; m * k];
            let mut g = c.benchmark_group(format!("matmul/{fam}"));
            g.throughput(Throughput::Elements((2 * m * k * n) as u64)); // FLOPs
            g.bench_function(BenchmarkId::new("forward x·W", name), |bch| {
                bch.iter(|| {
                    kernels::matmul(black_box(&x), black_box(&w), &mut y, Dims { rows: m, inner: k, cols: n })
                        .unwrap()
                })
            });
            g.bench_function(BenchmarkId::new("weight grad xᵀ·dy", name), |bch| {
                bch.iter(|| {
                    kernels::matmul_tn_acc(
                        black_box(&x),
                        black_box(&dy),
                        &mut dw,
                        Dims { rows: k, inner: m, cols: n },
                    )
                    .unwrap()
                })
            });
            g.bench_function(BenchmarkId::new("input grad dy·Wᵀ", name), |bch| {
                bch.iter(|| {
                    kernels::matmul_nt_acc(
                        black_box(&dy),
                        black_box(&w),
                        &mut dx,
                        Dims { rows: m, inner: n, cols: k },
                    )
                    .unwrap()
                })
            });
            g.finish();
        }
    }
    kernels::select(Kernels::Portable);
}

/// Forward + backward of one activation on a book-sized hidden layer (128×100).
fn activations(c: &mut Criterion) {
    let (rows, cols) = (128, 100);
    let mut floats = vec![0.0f32; 8 * rows * cols];
    let mut nodes = vec![Node::EMPTY; 8];
    let n = rows * cols;
    let (mut pv, mut pg, mut table) = (vec![0.0f32; n], vec![0.0f32; n], vec![ParamEntry::EMPTY; 1]);
    let mut params = Params::new(&mut pv, &mut pg, &mut table);
    // The input is a parameter, so backward visits the activation.
    let x = params.alloc(Shape::new(rows, cols), ParamKind::Weight).unwrap();
    params.value_mut(x).unwrap().copy_from_slice(&random(n, 4));
    let mut g = c.benchmark_group("activation");
    g.throughput(Throughput::Elements(n as u64));
    type Act = fn(&mut Tape, staticgrad::Var) -> staticgrad::Result<staticgrad::Var>;
    let acts: [(&str, Act); 3] =
        [("relu", |t, v| t.relu(v)), ("sigmoid", |t, v| t.sigmoid(v)), ("tanh", |t, v| t.tanh(v))];
    for (name, f) in acts {
        g.bench_function(BenchmarkId::new("forward+backward", name), |bch| {
            let mut tape = Tape::new(&mut floats, &mut nodes);
            bch.iter(|| {
                tape.reset();
                let v = tape.param(&params, x).unwrap();
                let v = f(&mut tape, v).unwrap();
                let s = tape.sum(v).unwrap();
                tape.backward(s, &mut params).unwrap();
            })
        });
    }
    g.finish();
}

/// One update of each rule over the book network's 109,386 parameters (10 tensors).
fn update_rules(c: &mut Criterion) {
    let sizes = [784usize, 100, 100, 100, 100, 10];
    let n: usize = sizes.windows(2).map(|s| s[0] * s[1] + s[1]).sum();
    let (mut pv, mut pg) = (random(n, 6), random(n, 7));
    let mut table = vec![ParamEntry::EMPTY; 2 * sizes.len()];
    let mut params = Params::new(&mut pv, &mut pg, &mut table);
    for s in sizes.windows(2) {
        params.alloc(Shape::new(s[0], s[1]), ParamKind::Weight).unwrap();
        params.alloc(Shape::row(s[1]), ParamKind::Bias).unwrap();
    }
    params.values_mut().copy_from_slice(&random(n, 6));
    params.grads_mut().copy_from_slice(&random(n, 7));
    let mut g = c.benchmark_group("update");
    g.throughput(Throughput::Elements(n as u64));
    let rules = [
        Optimizer::sgd(),
        Optimizer::momentum(),
        Optimizer::nesterov(),
        Optimizer::adagrad(),
        Optimizer::rmsprop(),
        Optimizer::adam(),
        Optimizer::adamw(0.01),
    ];
    for rule in rules {
        let mut state = vec![0.0f32; rule.state_len(n)];
        g.bench_function(rule.name(), |bch| bch.iter(|| rule.step(&mut params, &mut state, 1e-6).unwrap()));
    }
    g.finish();
}

/// Batch-norm forward (training mode) + backward on a book-sized hidden layer (128×100).
fn batch_norm(c: &mut Criterion) {
    let (rows, cols) = (128, 100);
    let x = random(rows * cols, 8);
    let mut floats = vec![0.0f32; 8 * rows * cols + 8 * cols];
    let mut nodes = vec![Node::EMPTY; 8];
    let n = BatchNorm::param_len(cols);
    let (mut pv, mut pg, mut table) = (vec![0.0f32; n], vec![0.0f32; n], vec![ParamEntry::EMPTY; 4]);
    let mut params = Params::new(&mut pv, &mut pg, &mut table);
    let bn = BatchNorm::alloc(&mut params, cols, BatchNormConfig::BOOK).unwrap();
    let mut g = c.benchmark_group("batch-norm");
    g.throughput(Throughput::Elements((rows * cols) as u64));
    g.bench_function("train forward+backward 128x100", |bch| {
        let mut tape = Tape::new(&mut floats, &mut nodes);
        bch.iter(|| {
            tape.reset();
            let v = tape.input(black_box(&x), Shape::new(rows, cols)).unwrap();
            let v = tape.batch_norm(v, &mut params, &bn, Mode::Train).unwrap();
            let s = tape.sum(v).unwrap();
            params.zero_grad();
            tape.backward(s, &mut params).unwrap();
        })
    });
    g.finish();
}

/// One whole SGD training step of each harness workload (forward, loss, backward, update).
fn steps(c: &mut Criterion) {
    let workloads: [(&str, &[usize], usize, bool); 3] = [
        ("tiny", &[4, 16, 3], 8, true),
        ("book", &[784, 100, 100, 100, 100, 10], 128, true),
        ("twolayer", &[784, 50, 10], 100, false),
    ];
    for (fam, kern) in families() {
        kernels::select(kern);
        let mut g = c.benchmark_group(format!("train-step/{fam}"));
        for (name, sizes, batch, relu) in workloads {
            let n_params: usize = sizes.windows(2).map(|s| s[0] * s[1] + s[1]).sum();
            let (mut pv, mut pg) = (vec![0.0f32; n_params], vec![0.0f32; n_params]);
            let mut table = vec![ParamEntry::EMPTY; 2 * sizes.len()];
            let mut params = Params::new(&mut pv, &mut pg, &mut table);
            let mut layers = Vec::new();
            for (l, s) in sizes.windows(2).enumerate() {
                let w = params.alloc(Shape::new(s[0], s[1]), ParamKind::Weight).unwrap();
                let b = params.alloc(Shape::row(s[1]), ParamKind::Bias).unwrap();
                let scale = (6.0 / s[0] as f32).sqrt();
                for (v, r) in params.value_mut(w).unwrap().iter_mut().zip(random(s[0] * s[1], 10 + l as u64))
                {
                    *v = r * scale;
                }
                layers.push((w, b));
            }
            let x = random(batch * sizes[0], 5);
            let classes = *sizes.last().unwrap() as u32;
            let labels: Vec<u32> = (0..batch as u32).map(|i| i % classes).collect();
            let mut floats =
                vec![0.0f32; 2 * (batch * sizes.iter().sum::<usize>() * 2 + batch * classes as usize + 1)];
            let mut nodes = vec![Node::EMPTY; 2 * sizes.len() + 2];
            let mut tape = Tape::new(&mut floats, &mut nodes);
            g.bench_function(name, |bch| {
                bch.iter(|| {
                    tape.reset();
                    let mut h = tape.input(black_box(&x), Shape::new(batch, sizes[0])).unwrap();
                    for (l, &(w, b)) in layers.iter().enumerate() {
                        h = tape.affine(h, &params, w, b).unwrap();
                        if l + 1 < layers.len() {
                            h = if relu { tape.relu(h).unwrap() } else { tape.sigmoid(h).unwrap() };
                        }
                    }
                    let loss = tape.softmax_cross_entropy(h, &labels).unwrap();
                    params.zero_grad();
                    tape.backward(loss, &mut params).unwrap();
                    let (v, g, _) = params.split_mut();
                    for (v, g) in v.iter_mut().zip(g.iter()) {
                        *v -= 0.01 * *g;
                    }
                })
            });
        }
        g.finish();
    }
    kernels::select(Kernels::Portable);
}

// In a private module: `criterion_group!` makes an undocumented `pub fn`.
mod group {
    use super::*;
    criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = matmuls, activations, update_rules, batch_norm, steps
    }
}
criterion_main!(group::benches);
