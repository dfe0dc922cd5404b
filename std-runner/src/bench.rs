//! `staticgrad bench WORKLOAD [--check]`: the training-step benchmark of the peer harness.
//!
//! It reproduces, bit for bit, the data, initial weights and timing protocol of the peers that
//! implement the same workloads in numpy, JAX, dfdx and candle (the harness lives outside this
//! repository; this file restates everything it needs):
//!
//! * generator: `u01(stream, i)` = top 24 bits of splitmix64-mix(`SEED + stream·GOLDEN + i`) / 2²⁴;
//!   weights of layer `l` from stream `1 + l`, `[in, out]` row-major, `w = (2u − 1)·√(6/in)`
//!   (He-uniform), biases 0; inputs from stream 100 (`[POOL·B, in]`, `x = u`); labels from stream 101
//!   (`(mix(key) >> 32) % classes`). Step `s` trains on batch `s % POOL`.
//! * step: forward, mean softmax cross-entropy, backward, plain SGD `w −= lr·g` with lr 0.01.
//! * timing: 3 warm-up steps, then steps until ≥ `BENCH_WARM_S` (0.5 s) to estimate the rate;
//!   `n = rate·BENCH_RUN_S` (0.5 s, at least 3); `BENCH_RUNS` (7) timed runs of `n` steps; the
//!   median steps/s is reported.
//!
//! Only the training step is timed. All buffers are allocated once, before timing.

use std::time::Instant;

use crate::memory::OwnedMemory;
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;
use staticgrad::kernels::{self, Kernels};
use staticgrad::{Activation, Error, MlpSpec, Model, Optimizer, Plan, Targets, Trainer};

const SEED: u64 = 42;
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
/// Number of distinct batches the steps cycle through.
pub const POOL: usize = 8;
/// SGD learning rate of every peer.
pub const LR: f32 = 0.01;
/// Plain SGD, every peer's rule.
const SGD: Optimizer = Optimizer::sgd();

/// Hidden-layer activation of a workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    /// `max(x, 0)`.
    Relu,
    /// Logistic sigmoid.
    Sigmoid,
}

/// One benchmark workload: an MLP, its batch size and activation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    /// Name on the command line and in the output line.
    pub name: &'static str,
    /// Layer widths, input first.
    pub sizes: &'static [usize],
    /// Rows per step.
    pub batch: usize,
    /// Activation between layers.
    pub act: Act,
}

/// The three workloads of the harness.
pub const WORKLOADS: [Workload; 3] = [
    Workload { name: "tiny", sizes: &[4, 16, 3], batch: 8, act: Act::Relu },
    Workload { name: "book", sizes: &[784, 100, 100, 100, 100, 10], batch: 128, act: Act::Relu },
    Workload { name: "twolayer", sizes: &[784, 50, 10], batch: 100, act: Act::Sigmoid },
];

impl Workload {
    /// The workload called `name`, if any.
    pub fn by_name(name: &str) -> Option<Workload> {
        WORKLOADS.iter().find(|w| w.name == name).cloned()
    }

    fn n_in(&self) -> usize {
        self.sizes[0]
    }

    fn n_out(&self) -> usize {
        self.sizes[self.sizes.len() - 1]
    }

    fn n_layers(&self) -> usize {
        self.sizes.len() - 1
    }

    /// Weight of layer `l`, `[in, out]` row-major, He-uniform.
    pub fn weight(&self, l: usize) -> Vec<f32> {
        let (fi, fo) = (self.sizes[l], self.sizes[l + 1]);
        let a = (6.0f64 / fi as f64).sqrt() as f32;
        (0..fi * fo).map(|i| (2.0 * u01(1 + l as u64, i as u64) - 1.0) * a).collect()
    }

    /// Input batch `b`: `[batch, in]` row-major.
    pub fn inputs(&self, b: usize) -> Vec<f32> {
        let n = self.batch * self.n_in();
        let off = (b * n) as u64;
        (0..n as u64).map(|i| u01(100, off + i)).collect()
    }

    /// Class labels of batch `b`.
    pub fn labels(&self, b: usize) -> Vec<u32> {
        let off = (b * self.batch) as u64;
        (0..self.batch as u64)
            .map(|i| ((mix(key(101, off + i)) >> 32) % self.n_out() as u64) as u32)
            .collect()
    }

    /// Modelled FLOPs of one training step: `6·B·Σ in·out`.
    pub fn flops(&self) -> f64 {
        let s: usize = self.sizes.windows(2).map(|w| w[0] * w[1]).sum();
        6.0 * self.batch as f64 * s as f64
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn key(stream: u64, i: u64) -> u64 {
    SEED.wrapping_add(stream.wrapping_mul(GOLDEN)).wrapping_add(i)
}

fn u01(stream: u64, i: u64) -> f32 {
    (mix(key(stream, i)) >> 40) as f32 / 16_777_216.0
}

impl Workload {
    /// The workload as a core model: its widths and activation, softmax cross-entropy.
    pub fn model(&self) -> Model<'static> {
        let act = match self.act {
            Act::Relu => Activation::Relu,
            Act::Sigmoid => Activation::Sigmoid,
        };
        MlpSpec::new(self.sizes).with_activation(act).model()
    }

    /// What a step needs: the planner's numbers for the batch and plain SGD.
    pub fn plan(&self) -> Plan {
        self.model().plan(self.batch, &Optimizer::sgd())
    }
}

/// The model and buffers of one workload (parameters, tape), allocated once.
pub struct Storage {
    model: Model<'static>,
    memory: OwnedMemory,
}

impl Storage {
    /// Bytes [`Storage::new`] and the data pool of [`Storage::split`] take for `w` (the
    /// workloads are fixed, so this cannot overflow; checked anyway).
    pub fn bytes(w: &Workload) -> Option<u64> {
        crate::budget::sum(&[
            OwnedMemory::bytes(&w.plan()),
            crate::budget::of::<f32>(POOL * w.batch * w.n_in()),
            crate::budget::of::<u32>(POOL * w.batch),
        ])
    }

    /// Sizes every buffer for `w`.
    pub fn new(w: &Workload) -> Storage {
        Storage { model: w.model(), memory: OwnedMemory::new(&w.plan()) }
    }

    /// The core's trainer (plain SGD) with the harness' initial weights, and the data pool.
    pub fn split(&mut self, w: &Workload) -> Result<Harness<'_>, Error> {
        let model = &self.model;
        let mut trainer = Trainer::new(model, &SGD, w.batch, self.memory.memory())?;
        let params = trainer.params_mut();
        for l in 0..w.n_layers() {
            let id =
                model.weight(l).ok_or(Error::InvalidArgument { what: "bench layer", value: l as f32 })?;
            params.value_mut(id)?.copy_from_slice(&w.weight(l));
        }
        Ok(Harness {
            trainer,
            xs: (0..POOL).map(|b| w.inputs(b)).collect(),
            ys: (0..POOL).map(|b| w.labels(b)).collect(),
            // Nothing is drawn (no dropout); `step` takes a generator all the same.
            rng: Xoshiro128PlusPlus::seed_from_u64(SEED),
        })
    }
}

/// The core's [`Trainer`] of a workload and its data pool.
pub struct Harness<'m> {
    trainer: Trainer<'m, 'm>,
    xs: Vec<Vec<f32>>,
    ys: Vec<Vec<u32>>,
    rng: Xoshiro128PlusPlus,
}

impl Harness<'_> {
    /// One training step on batch `s % POOL` (forward, mean softmax cross-entropy, backward,
    /// `w −= lr·g`); returns the loss before the update.
    pub fn step(&mut self, s: usize) -> Result<f32, Error> {
        let b = s % POOL;
        self.trainer.step(&self.xs[b], Targets::Labels(&self.ys[b]), LR, &mut self.rng)
    }
}

fn env_f64(name: &str, d: f64) -> f64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

/// The harness' timing protocol; prints the peer line and returns the median steps/s.
pub fn time_steps(peer: &str, w: &Workload, mut step: impl FnMut(usize)) -> f64 {
    let warm_s = env_f64("BENCH_WARM_S", 0.5);
    let run_s = env_f64("BENCH_RUN_S", 0.5);
    let runs = (env_f64("BENCH_RUNS", 7.0) as usize).max(1);
    for s in 0..3 {
        step(s);
    }
    let t0 = Instant::now();
    let mut s = 0usize;
    let mut el;
    loop {
        step(s);
        s += 1;
        el = t0.elapsed().as_secs_f64();
        if el >= warm_s && s >= 3 {
            break;
        }
    }
    let n = ((s as f64 / el) * run_s).max(3.0) as usize;
    let mut rates = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        for i in 0..n {
            step(i);
        }
        rates.push(n as f64 / t.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    let med = rates[rates.len() / 2];
    println!(
        "peer={} workload={} steps_per_s={:.1} samples_per_s={:.1} min_steps_per_s={:.1} max_steps_per_s={:.1} steps_per_run={} runs={}",
        peer,
        w.name,
        med,
        med * w.batch as f64,
        rates[0],
        rates[rates.len() - 1],
        n,
        runs
    );
    med
}

/// Arguments of `staticgrad bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Workload: tiny (4-16-3 ReLU, batch 8), book (784-100x4-10 ReLU, batch 128) or
    /// twolayer (784-50-10 sigmoid, batch 100).
    pub workload: String,
    /// Print the losses of steps 0 and 9 instead of timing (the cross-peer correctness check).
    #[arg(long)]
    pub check: bool,
    /// Matrix kernels: `exact` (the default: the fastest bit-exact family this CPU runs,
    /// AVX-512 or else AVX2 on x86-64, same bits as the portable kernels and the Cortex-M),
    /// `portable` (plain safe Rust, SSE2 on x86-64) or `fast` (AVX-512 or AVX2 with FMA: fewer
    /// roundings, so not bit-identical; reported as peer `staticgrad-fast`); `avx2` and
    /// `avx2-fast` force the AVX2 families (for comparison). The environment variable
    /// `STATICGRAD_KERNELS` sets the default.
    #[arg(long, value_enum)]
    pub kernels: Option<KernelChoice>,
    /// Memory budget (bytes, or K/M/G/T) [default: a share of this machine's memory; see train].
    #[arg(long, value_name = "SIZE", value_parser = crate::budget::parse_size)]
    pub max_memory: Option<u64>,
}

/// The `--kernels` choice.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelChoice {
    /// Best bit-exact family available.
    Exact,
    /// Portable safe Rust only.
    Portable,
    /// AVX-512 or AVX2, with FMA (not bit-exact).
    Fast,
    /// AVX2 only, bit-exact.
    Avx2,
    /// AVX2 + FMA only (not bit-exact).
    Avx2Fast,
}

impl KernelChoice {
    fn from_env() -> Result<KernelChoice, String> {
        match std::env::var("STATICGRAD_KERNELS").as_deref() {
            Err(_) | Ok("") | Ok("exact") => Ok(KernelChoice::Exact),
            Ok("portable") => Ok(KernelChoice::Portable),
            Ok("fast") => Ok(KernelChoice::Fast),
            Ok("avx2") => Ok(KernelChoice::Avx2),
            Ok("avx2-fast") => Ok(KernelChoice::Avx2Fast),
            Ok(other) => Err(format!(
                "STATICGRAD_KERNELS={other:?}: expected exact, portable, fast, avx2 or avx2-fast"
            )),
        }
    }

    /// Selects the kernels for this process; returns what runs.
    pub fn apply(self) -> Kernels {
        match self {
            KernelChoice::Portable => kernels::select(Kernels::Portable),
            KernelChoice::Exact => best(&[Kernels::Avx512, Kernels::Avx2]),
            KernelChoice::Fast => best(&[Kernels::Avx512Fma, Kernels::Avx2Fma]),
            KernelChoice::Avx2 => kernels::select(Kernels::Avx2),
            KernelChoice::Avx2Fast => kernels::select(Kernels::Avx2Fma),
        }
    }
}

/// Selects the first family of `prefs` the CPU runs (or the portable kernels).
fn best(prefs: &[Kernels]) -> Kernels {
    for &k in prefs {
        if kernels::select(k) == k {
            return k;
        }
    }
    Kernels::Portable
}

/// Runs the benchmark (or, with `--check`, prints the losses of steps 0 and 9).
pub fn run(args: &BenchArgs) -> Result<(), crate::Error> {
    let (workload, check) = (args.workload.as_str(), args.check);
    let w = Workload::by_name(workload)
        .ok_or_else(|| crate::Error::input(format!("unknown workload {workload:?} (tiny|book|twolayer)")))?;
    let choice = match args.kernels {
        Some(k) => k,
        None => KernelChoice::from_env().map_err(crate::Error::input)?,
    };
    let running = choice.apply();
    if matches!(choice, KernelChoice::Fast | KernelChoice::Avx2Fast) && running.bit_exact() {
        return Err(crate::Error::input("--kernels fast needs an x86-64 CPU with AVX2 and FMA"));
    }
    crate::budget::Budget::from_flag(args.max_memory)
        .charge(&format!("bench {}: parameters, tape and data", w.name), Storage::bytes(&w))?;
    if !crate::quiet::on() {
        eprintln!("# kernels: {running:?} (bit-exact: {})", running.bit_exact());
    }
    let mut storage = Storage::new(&w);
    let mut t = storage.split(&w)?;
    let peer = if running.bit_exact() { "staticgrad" } else { "staticgrad-fast" };
    if check {
        let mut losses = [0f32; 10];
        for (s, l) in losses.iter_mut().enumerate() {
            *l = t.step(s)?;
        }
        println!("peer={peer} workload={} check_loss0={:.6} check_loss9={:.6}", w.name, losses[0], losses[9]);
        return Ok(());
    }
    let mut err = None;
    let rate = time_steps(peer, &w, |s| {
        if let Err(e) = t.step(s) {
            err.get_or_insert(e);
        }
    });
    if !crate::quiet::on() {
        eprintln!(
            "# {:.2} GFLOP/s (modelled 6·B·Σ in·out = {} FLOPs per step)",
            rate * w.flops() / 1e9,
            w.flops()
        );
    }
    match err {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_matches_the_harness() {
        // splitmix64 of SEED + 1·GOLDEN + 0, top 24 bits: fixed by the harness' definition.
        let w = Workload::by_name("tiny").unwrap();
        let u = u01(1, 0);
        assert!((0.0..1.0).contains(&u));
        let w0 = w.weight(0);
        let a = (6.0f64 / 4.0).sqrt() as f32;
        assert_eq!(w0[0], (2.0 * u - 1.0) * a);
        assert!(w0.iter().all(|v| v.abs() <= a));
        assert!(w.labels(3).iter().all(|&y| y < 3));
        assert_eq!(w.flops(), 5376.0);
    }

    /// Losses of steps 0 and 9 printed by the harness' numpy peer (`run.sh W --check`), an
    /// independent float32 implementation: same data, same weights, same updates.
    #[test]
    fn check_losses_agree_with_the_numpy_peer() {
        for (name, want0, want9) in [("tiny", 1.182342f32, 1.502887f32), ("twolayer", 2.596188, 2.517327)] {
            let w = Workload::by_name(name).unwrap();
            let mut storage = Storage::new(&w);
            let mut t = storage.split(&w).unwrap();
            let losses: Vec<f32> = (0..10).map(|s| t.step(s).unwrap()).collect();
            assert!((losses[0] - want0).abs() < 1e-5, "{name} step 0: {} vs {want0}", losses[0]);
            assert!((losses[9] - want9).abs() < 1e-5, "{name} step 9: {} vs {want9}", losses[9]);
        }
    }

    #[test]
    fn training_lowers_the_loss_on_a_batch() {
        let w = Workload::by_name("tiny").unwrap();
        let mut storage = Storage::new(&w);
        let mut t = storage.split(&w).unwrap();
        let first = t.step(0).unwrap();
        let mut last = first;
        for _ in 0..200 {
            last = t.step(0).unwrap();
        }
        assert!(last < first, "{last} !< {first}");
    }
}
