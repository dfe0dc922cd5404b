//! Panel 2: activation histograms of a stack of layers without bias, `a = z·W`, `z = act(a)`,
//! fed samples of N(0, 1), as `staticgrad experiment activations` computes them
//! (`std-runner/src/experiments/activations.rs`, `run_stack_once` and `stats`): the same seeds,
//! the same core calls (`Init::fill`, the tape's `matmul` and activation), the same statistics.

use rand_xoshiro::Xoshiro128PlusPlus;
use staticgrad::rand_core::SeedableRng;
use staticgrad::{Init, Node, Shape, Tape};

/// The runner's four weight scales, in its order (`INITS`): std 1, std 0.01, Xavier, He.
pub const INITS: [Init; 4] =
    [Init::Normal { std: 1.0 }, Init::Normal { std: 0.01 }, Init::XavierBook, Init::HeNormal];

/// Statistics of one layer: mean, std, share < 0.05, share > 0.95, share exactly 0, then the
/// histogram counts over the activation's range (sigmoid and ReLU (0, 1), tanh (−1, 1)).
fn stats(v: &[f32], range: (f64, f64), bins: usize, out: &mut Vec<f64>) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    let share = |p: &dyn Fn(f64) -> bool| v.iter().filter(|&&x| p(x as f64)).count() as f64 / n;
    let mut hist = vec![0u64; bins];
    let (lo, hi) = range;
    for &x in v {
        let x = x as f64;
        if (lo..=hi).contains(&x) {
            let b = (((x - lo) / (hi - lo)) * bins as f64) as usize;
            hist[b.min(bins - 1)] += 1;
        }
    }
    out.extend([mean, var.sqrt(), share(&|x| x < 0.05), share(&|x| x > 0.95), share(&|x| x == 0.0)]);
    out.extend(hist.iter().map(|&h| h as f64));
}

/// One draw: `layers` statistics records (5 + `bins` values each).
#[allow(clippy::too_many_arguments)]
pub fn stack(
    act: u32,
    init: Init,
    combo: u64,
    seed: u64,
    samples: usize,
    width: usize,
    layers: usize,
    bins: usize,
) -> staticgrad::Result<Vec<f64>> {
    let (n, d) = (samples, width);
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed);
    let mut x = vec![0.0f32; n * d];
    Init::Normal { std: 1.0 }.fill(&mut x, d, d, &mut rng)?;
    let mut wrng = Xoshiro128PlusPlus::seed_from_u64(seed.wrapping_add(1 + combo));
    let per_layer = d * d + 2 * n * d;
    let mut floats = vec![0.0f32; 2 * (n * d + layers * per_layer)];
    let mut nodes = vec![Node::EMPTY; 1 + 3 * layers];
    let mut tape = Tape::new(&mut floats, &mut nodes);
    let mut z = tape.input(&x, Shape::new(n, d))?;
    let mut w = vec![0.0f32; d * d];
    let range = if act == 1 { (-1.0, 1.0) } else { (0.0, 1.0) };
    let mut out = Vec::with_capacity(layers * (5 + bins));
    for _ in 0..layers {
        init.fill(&mut w, d, d, &mut wrng)?;
        let wv = tape.input(&w, Shape::new(d, d))?;
        let a = tape.matmul(z, wv)?;
        z = match act {
            0 => tape.sigmoid(a)?,
            1 => tape.tanh(a)?,
            _ => tape.relu(a)?,
        };
        stats(tape.value(z)?, range, bins, &mut out);
    }
    Ok(out)
}

/// The histograms of activation `act` (0 sigmoid, 1 tanh, 2 ReLU) under weight scale `init`
/// (an index into [`INITS`]) for one draw with `seed` (the runner's `--repeats 1 --seed`):
/// `layers` records of 5 + `bins` little-endian `f64` each (mean, std, the shares below 0.05,
/// above 0.95 and exactly 0, then the counts). The runner's draw of this combination uses weight seed
/// `seed + 1 + act·4 + init`.
#[unsafe(no_mangle)]
pub extern "C" fn sg_activations(
    act: u32,
    init: u32,
    seed: u32,
    samples: u32,
    width: u32,
    layers: u32,
    bins: u32,
) -> i32 {
    let run = || {
        let bad = |what, v: u32| Err(staticgrad::Error::InvalidArgument { what, value: v as f32 });
        if act > 2 {
            return bad("activation (0 sigmoid, 1 tanh, 2 relu)", act);
        }
        let Some(&scheme) = INITS.get(init as usize) else { return bad("init (0..4)", init) };
        if !(1..=4000).contains(&samples) || !(1..=400).contains(&width) {
            return bad("samples (1..4000) and width (1..400)", samples.max(width));
        }
        if !(1..=20).contains(&layers) || !(1..=200).contains(&bins) {
            return bad("layers (1..20) and bins (1..200)", layers.max(bins));
        }
        let combo = (act * INITS.len() as u32 + init) as u64;
        stack(
            act,
            scheme,
            combo,
            seed as u64,
            samples as usize,
            width as usize,
            layers as usize,
            bins as usize,
        )
    };
    crate::finish(run(), f64::to_le_bytes)
}
