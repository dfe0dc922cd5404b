//! Initialisers: for each scheme and several fan-ins, 100 000 draws have the mean and standard
//! deviation of the formula within 1 %, the right shape (normal vs uniform), and the same seed
//! gives the same draws.

use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro128PlusPlus;
use staticgrad::init::Init;

const N: usize = 100_000;

fn draw(init: Init, fan_in: usize, fan_out: usize, seed: u64) -> Vec<f32> {
    let mut v = vec![0.0f32; N];
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed);
    init.fill(&mut v, fan_in, fan_out, &mut rng).unwrap();
    v
}

struct Stats {
    mean: f64,
    std: f64,
    /// Share of draws with |x − mean| < std.
    within_1sd: f64,
    max_abs: f64,
}

fn stats(v: &[f32]) -> Stats {
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    let std = var.sqrt();
    let within_1sd = v.iter().filter(|&&x| (x as f64 - mean).abs() < std).count() as f64 / n;
    let max_abs = v.iter().map(|&x| (x as f64).abs()).fold(0.0, f64::max);
    Stats { mean, std, within_1sd, max_abs }
}

enum Kind {
    Normal,
    /// Uniform with this half-width around the mean.
    Uniform(f64),
}

/// Expected (mean, std, kind) straight from the published formulas.
fn formula(init: Init, fi: usize, fo: usize) -> (f64, f64, Kind) {
    let (fi, fo) = (fi as f64, fo as f64);
    let u = |a: f64| (0.0, a / 3f64.sqrt(), Kind::Uniform(a));
    match init {
        Init::Normal { std } => (0.0, std as f64, Kind::Normal),
        Init::Uniform { low, high } => {
            let (l, h) = (low as f64, high as f64);
            ((l + h) / 2.0, (h - l) / 12f64.sqrt(), Kind::Uniform((h - l) / 2.0))
        }
        Init::XavierBook => (0.0, (1.0 / fi).sqrt(), Kind::Normal),
        Init::GlorotNormal => (0.0, (2.0 / (fi + fo)).sqrt(), Kind::Normal),
        Init::GlorotUniform => u((6.0 / (fi + fo)).sqrt()),
        Init::HeNormal => (0.0, (2.0 / fi).sqrt(), Kind::Normal),
        Init::HeUniform => u((6.0 / fi).sqrt()),
        Init::Zeros | Init::Constant(_) => unreachable!(),
    }
}

#[test]
fn sample_moments_match_the_formulas() {
    let schemes = [
        Init::Normal { std: 0.01 },
        Init::Normal { std: 1.0 },
        Init::Uniform { low: 0.5, high: 1.5 },
        Init::XavierBook,
        Init::GlorotNormal,
        Init::GlorotUniform,
        Init::HeNormal,
        Init::HeUniform,
    ];
    let mut seed = 0;
    let (mut worst_mean, mut worst_std) = (0.0f64, 0.0f64);
    for init in schemes {
        for (fi, fo) in [(1, 1), (20, 50), (100, 100), (784, 100)] {
            seed += 1;
            let v = draw(init, fi, fo, seed);
            let s = stats(&v);
            let (mean, std, kind) = formula(init, fi, fo);
            let what = format!("{init:?} fan_in {fi} fan_out {fo}");
            // Mean within 1 % of the formula; for zero-mean schemes, within 1 % of the std.
            let mean_scale = if mean == 0.0 { std } else { mean.abs() };
            assert!((s.mean - mean).abs() <= 0.01 * mean_scale, "{what}: mean {} vs {mean}", s.mean);
            assert!((s.std / std - 1.0).abs() <= 0.01, "{what}: std {} vs {std}", s.std);
            worst_mean = worst_mean.max((s.mean - mean).abs() / mean_scale);
            worst_std = worst_std.max((s.std / std - 1.0).abs());
            match kind {
                // Normal: 68.27 % within one σ; Box–Muller truncates at 5.77σ.
                Kind::Normal => {
                    assert!((s.within_1sd - 0.6827).abs() < 0.005, "{what}: {} within 1 sd", s.within_1sd);
                    assert!(s.max_abs <= 5.78 * std, "{what}: max {}", s.max_abs);
                    assert!(s.max_abs > 3.5 * std, "{what}: no tails, max {}", s.max_abs);
                }
                // Uniform: 1/√3 = 57.7 % within one σ, bounded by the half-width.
                Kind::Uniform(a) => {
                    assert!((s.within_1sd - 0.5774).abs() < 0.005, "{what}: {} within 1 sd", s.within_1sd);
                    assert!(v.iter().all(|&x| ((x as f64) - mean).abs() <= a * (1.0 + 1e-6)), "{what}");
                }
            }
        }
    }
    println!(
        "32 scheme/fan cases: worst mean deviation {worst_mean:.2e} (of scale), worst std deviation {worst_std:.2e}"
    );
}

#[test]
fn same_seed_same_draws_other_seed_other_draws() {
    for init in [Init::HeNormal, Init::GlorotUniform, Init::Normal { std: 0.3 }] {
        let a = draw(init, 100, 50, 42);
        let b = draw(init, 100, 50, 42);
        assert_eq!(
            a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            b.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        let c = draw(init, 100, 50, 43);
        assert!(a.iter().zip(&c).filter(|(x, y)| x == y).count() < 10);
    }
}

#[test]
fn normal_draws_follow_the_documented_box_muller() {
    // Recompute the documented transform in f64 from the same u32 stream:
    // u1 = ((x1 >> 8) + 1)·2⁻²⁴, u2 = (x2 >> 8)·2⁻²⁴, r = √(−2 ln u1), (r cos 2πu2, r sin 2πu2).
    let mut v = [0.0f32; 101];
    Init::Normal { std: 2.0 }.fill(&mut v, 1, 1, &mut Xoshiro128PlusPlus::seed_from_u64(5)).unwrap();
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(5);
    for pair in v.chunks(2) {
        let u1 = ((rng.next_u32() >> 8) + 1) as f64 / 16_777_216.0;
        let u2 = (rng.next_u32() >> 8) as f64 / 16_777_216.0;
        let r = (-2.0 * u1.ln()).sqrt();
        let th = std::f64::consts::TAU * u2;
        for (got, want) in pair.iter().zip([r * th.cos(), r * th.sin()]) {
            assert!((*got as f64 - 2.0 * want).abs() < 1e-5, "{got} vs {}", 2.0 * want);
        }
    }
}

#[test]
fn constants() {
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(0);
    let mut v = [1.0f32; 7];
    Init::Zeros.fill(&mut v, 3, 3, &mut rng).unwrap();
    assert_eq!(v, [0.0; 7]);
    Init::Constant(0.25).fill(&mut v, 3, 3, &mut rng).unwrap();
    assert_eq!(v, [0.25; 7]);
}
