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
//! * `cnn` (the book's SimpleConvNet, ch. 7): layer 0 is the convolution 1→30, 5×5, stride 1, no
//!   padding, then ReLU and 2×2 max-pooling (28×28 → 24×24 → 12×12, flattened in C, H, W order);
//!   its weight `[out, in, kh, kw]` row-major (our own layout) from stream 1 with fan-in `in·kh·kw`
//!   = 25; the dense layers 4320→100→10 are layers 1 and 2 (streams 2 and 3); each input row is
//!   one image in C, H, W order.
//! * step: forward, mean softmax cross-entropy, backward, plain SGD `w −= lr·g` with lr 0.01.
//! * timing: 3 warm-up steps, then steps until ≥ `BENCH_WARM_S` (0.5 s) to estimate the rate;
//!   `n = rate·BENCH_RUN_S` (0.5 s, at least 3); `BENCH_RUNS` (7) timed runs of `n` steps; the
//!   median steps/s is reported.
//!
//! Only the training step is timed. All buffers are allocated once, before timing.

use std::time::Instant;

use crate::memory::OwnedMemory;
use crate::threads::{Driver, Pool};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;
use staticgrad::kernels::{self, Kernels};
use staticgrad::model::Layer;
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

/// The convolution stage of the `cnn` workload (its layer 0): a `k × k` convolution (stride 1,
/// no padding) of `in_ch × hw × hw` images into `out_ch` channels, ReLU, `pool × pool` max-pooling
/// (stride `pool`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvStage {
    /// Input channels.
    pub in_ch: usize,
    /// Input side.
    pub hw: usize,
    /// Filters.
    pub out_ch: usize,
    /// Kernel side.
    pub k: usize,
    /// Pooling window and stride.
    pub pool: usize,
}

impl ConvStage {
    /// Side of the convolution's output.
    pub const fn out_hw(&self) -> usize {
        self.hw - self.k + 1
    }
}

/// One benchmark workload: an MLP (or the `cnn`'s dense part after its convolution stage), its
/// batch size and activation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    /// Name on the command line and in the output line.
    pub name: &'static str,
    /// Layer widths, input first (`cnn`: the image's `C·H·W`, then the flattened pooled map).
    pub sizes: &'static [usize],
    /// Rows per step.
    pub batch: usize,
    /// Activation between layers.
    pub act: Act,
    /// `Some` for `cnn`: layer 0 is this convolution stage, the dense layers are `1..`.
    pub conv: Option<ConvStage>,
}

/// The `cnn` workload's layers: SimpleConvNet.
const CNN_LAYERS: [Layer; 7] = [
    Layer::conv2d(30, 5, 1, 0),
    Layer::relu(),
    Layer::max_pool2d(2, 2),
    Layer::flatten(),
    Layer::dense(100),
    Layer::relu(),
    Layer::dense(10),
];

/// The workloads of the harness.
pub const WORKLOADS: [Workload; 4] = [
    Workload { name: "tiny", sizes: &[4, 16, 3], batch: 8, act: Act::Relu, conv: None },
    Workload { name: "book", sizes: &[784, 100, 100, 100, 100, 10], batch: 128, act: Act::Relu, conv: None },
    Workload { name: "twolayer", sizes: &[784, 50, 10], batch: 100, act: Act::Sigmoid, conv: None },
    Workload {
        name: "cnn",
        sizes: &[784, 4320, 100, 10],
        batch: 100,
        act: Act::Relu,
        conv: Some(ConvStage { in_ch: 1, hw: 28, out_ch: 30, k: 5, pool: 2 }),
    },
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

    /// Weight of dense layer `l`, `[in, out]` row-major, He-uniform (for `cnn`, `l ≥ 1`).
    pub fn weight(&self, l: usize) -> Vec<f32> {
        let (fi, fo) = (self.sizes[l], self.sizes[l + 1]);
        let a = (6.0f64 / fi as f64).sqrt() as f32;
        (0..fi * fo).map(|i| (2.0 * u01(1 + l as u64, i as u64) - 1.0) * a).collect()
    }

    /// The `cnn` convolution's weight (layer 0, stream 1): `[out, in, kh, kw]` row-major,
    /// `(2u − 1)·√(6/fan_in)` with `fan_in = in·kh·kw`; empty for the MLP workloads.
    pub fn conv_weight(&self) -> Vec<f32> {
        let Some(c) = self.conv else { return Vec::new() };
        let fi = c.in_ch * c.k * c.k;
        let a = (6.0f64 / fi as f64).sqrt() as f32;
        (0..c.out_ch * fi).map(|i| (2.0 * u01(1, i as u64) - 1.0) * a).collect()
    }

    /// Input batch `b`: `[batch, in]` row-major (`cnn`: one image per row, C, H, W order).
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

    /// Modelled FLOPs of one training step: `6·B·Σ in·out` over the dense layers (forward 2×,
    /// backward 4×); `cnn` adds `2·B·out·OH·OW·in·kh·kw` each for the convolution's forward and
    /// its weight gradient (its input gradient is not needed).
    pub fn flops(&self) -> f64 {
        let dense = if self.conv.is_some() { &self.sizes[1..] } else { self.sizes };
        let s: usize = dense.windows(2).map(|w| w[0] * w[1]).sum();
        let mut f = 6.0 * self.batch as f64 * s as f64;
        if let Some(c) = self.conv {
            let o = c.out_hw();
            f += 4.0 * (self.batch * c.out_ch * o * o * c.in_ch * c.k * c.k) as f64;
        }
        f
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
    /// The workload as a core model: its widths and activation (`cnn`: SimpleConvNet's layer
    /// list), softmax cross-entropy.
    pub fn model(&self) -> Model<'static> {
        if let Some(c) = self.conv {
            return Model::image(c.in_ch, c.hw, c.hw, &CNN_LAYERS);
        }
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

    /// The core's trainer (plain SGD) with the harness' initial weights, and the data pool; the
    /// trainer's products run on `driver`'s threads.
    pub fn split<'m>(&'m mut self, w: &Workload, driver: Driver<'m>) -> Result<Harness<'m>, Error> {
        let model = &self.model;
        let mut trainer = Trainer::new(model, &SGD, w.batch, self.memory.memory())?.with_parallel(driver);
        let params = trainer.params_mut();
        // The `cnn`'s dense layers are the harness' layers 1 and 2, after the convolution.
        let first = usize::from(w.conv.is_some());
        for l in first..w.n_layers() {
            let id = model
                .weight(l - first)
                .ok_or(Error::InvalidArgument { what: "bench layer", value: l as f32 })?;
            params.value_mut(id)?.copy_from_slice(&w.weight(l));
        }
        if w.conv.is_some() {
            let id = model.conv_weight(0).ok_or(Error::InvalidArgument { what: "bench conv", value: 0.0 })?;
            params.value_mut(id)?.copy_from_slice(&w.conv_weight());
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
    /// Workload: tiny (4-16-3 ReLU, batch 8), book (784-100x4-10 ReLU, batch 128),
    /// twolayer (784-50-10 sigmoid, batch 100) or cnn (the book's SimpleConvNet: conv 30×5×5,
    /// ReLU, max-pool 2, 4320-100-10 ReLU, batch 100).
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
    /// Worker threads of a step (each product's output rows shared among them; the same bits
    /// for every count). One by default, so that the single-core figures stay comparable; the
    /// peer harness passes its `BENCH_THREADS`.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub threads: usize,
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
    let w = Workload::by_name(workload).ok_or_else(|| {
        crate::Error::input(format!("unknown workload {workload:?} (tiny|book|twolayer|cnn)"))
    })?;
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
    let pool = Pool::new(Some(args.threads))?;
    if !crate::quiet::on() && pool.threads() > 1 {
        eprintln!("# threads: {}", pool.threads());
    }
    let mut storage = Storage::new(&w);
    let mut t = storage.split(&w, pool.driver())?;
    timed(&w, check, peer_name(running), &mut t)
}

fn peer_name(running: Kernels) -> &'static str {
    if running.bit_exact() { "staticgrad" } else { "staticgrad-fast" }
}

/// The check or the timing of `t`, on the calling thread (the team's caller).
fn timed(w: &Workload, check: bool, peer: &str, t: &mut Harness) -> Result<(), crate::Error> {
    if check {
        let mut losses = [0f32; 10];
        for (s, l) in losses.iter_mut().enumerate() {
            *l = t.step(s)?;
        }
        println!("peer={peer} workload={} check_loss0={:.6} check_loss9={:.6}", w.name, losses[0], losses[9]);
        return Ok(());
    }
    let mut err = None;
    let rate = time_steps(peer, w, |s| {
        if let Err(e) = t.step(s) {
            err.get_or_insert(e);
        }
    });
    if !crate::quiet::on() {
        eprintln!(
            "# {:.2} GFLOP/s (modelled: {} FLOPs per step, see Workload::flops)",
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
        let cnn = Workload::by_name("cnn").unwrap();
        assert_eq!(cnn.flops(), 432_600_000.0);
        let a = (6.0f64 / 25.0).sqrt() as f32;
        assert_eq!(cnn.conv_weight()[3], (2.0 * u01(1, 3) - 1.0) * a);
        assert_eq!(cnn.conv_weight().len(), 750);
    }

    /// Losses of steps 0 and 9 printed by the harness' numpy peer (`run.sh W --check`), an
    /// independent float32 implementation: same data, same weights, same updates.
    #[test]
    fn check_losses_agree_with_the_numpy_peer() {
        for (name, want0, want9) in [("tiny", 1.182342f32, 1.502887f32), ("twolayer", 2.596188, 2.517327)] {
            let w = Workload::by_name(name).unwrap();
            let mut storage = Storage::new(&w);
            let mut t = storage.split(&w, Pool::sequential()).unwrap();
            let losses: Vec<f32> = (0..10).map(|s| t.step(s).unwrap()).collect();
            assert!((losses[0] - want0).abs() < 1e-5, "{name} step 0: {} vs {want0}", losses[0]);
            assert!((losses[9] - want9).abs() < 1e-5, "{name} step 9: {} vs {want9}", losses[9]);
        }
    }

    /// The `cnn` losses of steps 0 and 9 printed by the numpy, JAX and candle peers (the
    /// harness' README: 2.543009 / 2.375575).
    #[test]
    fn cnn_check_losses_agree_with_the_peers() {
        let w = Workload::by_name("cnn").unwrap();
        let mut storage = Storage::new(&w);
        let mut t = storage.split(&w, Pool::sequential()).unwrap();
        let losses: Vec<f32> = (0..10).map(|s| t.step(s).unwrap()).collect();
        assert!((losses[0] - 2.543009).abs() < 1e-5, "cnn step 0: {}", losses[0]);
        assert!((losses[9] - 2.375575).abs() < 1e-5, "cnn step 9: {}", losses[9]);
    }

    #[test]
    fn training_lowers_the_loss_on_a_batch() {
        let w = Workload::by_name("tiny").unwrap();
        let mut storage = Storage::new(&w);
        let mut t = storage.split(&w, Pool::sequential()).unwrap();
        let first = t.step(0).unwrap();
        let mut last = first;
        for _ in 0..200 {
            last = t.step(0).unwrap();
        }
        assert!(last < first, "{last} !< {first}");
    }
}
