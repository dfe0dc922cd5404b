//! Every update rule against the book's reference paths (`std-runner/data/optimizer_paths.json`):
//! f(x, y) = x²/20 + y², gradient (x/10, 2y), start (−7, 2), 30 updates.
//!
//! Two checks per rule:
//! * **f64, bit-exact**: the rule's generic per-element formula (the same function the `f32`
//!   optimizer runs) evaluated in `f64` reproduces every one of the 31 points bit for bit.
//! * **f32, tolerance**: the real `Optimizer::step` over a 1×2 `Weight` tensor in a `Params`,
//!   gradient written into the gradient buffer, stays within f32 rounding of the golden path.
//!   The worst relative error per rule is printed (`cargo test --test optimizer_paths -- --nocapture`).

use serde_json::Value;
use staticgrad::optim::{
    AdamForm, Float, NesterovForm, Optimizer, Rule, adagrad, adam, momentum, nesterov, rmsprop, sgd,
};
use staticgrad::{ParamKind, ParamStorage, Shape};

const GOLDEN: &str = include_str!("../../std-runner/data/optimizer_paths.json");

struct Path {
    lr: f64,
    hyper: Value,
    /// 30 points before each update, then the final point: 31 × (x, y).
    points: Vec<[f64; 2]>,
    bits: Vec<[u64; 2]>,
    lr_t_bits: Option<Vec<u64>>,
}

fn bits(v: &Value) -> u64 {
    let s = v.as_str().expect("bits are strings");
    u64::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex")
}

fn pair(v: &Value) -> [f64; 2] {
    [v[0].as_f64().unwrap(), v[1].as_f64().unwrap()]
}

fn load(name: &str) -> Path {
    let all: Value = serde_json::from_str(GOLDEN).unwrap();
    let e = &all[name];
    let mut points: Vec<[f64; 2]> = e["history"].as_array().unwrap().iter().map(pair).collect();
    points.push(pair(&e["final"]));
    let mut b: Vec<[u64; 2]> =
        e["history_bits"].as_array().unwrap().iter().map(|p| [bits(&p[0]), bits(&p[1])]).collect();
    b.push([bits(&e["final_bits"][0]), bits(&e["final_bits"][1])]);
    assert_eq!(points.len(), 31);
    // float_roundtrip: the decimal data and the bit patterns must agree exactly.
    for (p, q) in points.iter().zip(&b) {
        assert_eq!([p[0].to_bits(), p[1].to_bits()], *q, "{name}: decimal and bits disagree");
    }
    Path {
        lr: e["hyperparams"]["lr"].as_f64().unwrap(),
        hyper: e["hyperparams"].clone(),
        points,
        bits: b,
        lr_t_bits: e.get("lr_t_bits").map(|v| v.as_array().unwrap().iter().map(bits).collect()),
    }
}

/// Runs the f64 formula: `update(x, y, gx, gy, t)` moves the point; returns the 31 points.
fn run_f64(mut update: impl FnMut(&mut [f64; 2], [f64; 2], u32)) -> Vec<[f64; 2]> {
    let mut p = [-7.0f64, 2.0];
    let mut out = vec![p];
    for t in 1..=30 {
        let g = [p[0] / 10.0, 2.0 * p[1]];
        update(&mut p, g, t);
        out.push(p);
    }
    out
}

fn assert_bit_exact(name: &str, got: &[[f64; 2]], want: &Path) {
    for (i, (g, w)) in got.iter().zip(&want.bits).enumerate() {
        assert_eq!(
            [g[0].to_bits(), g[1].to_bits()],
            *w,
            "{name}: f64 point {i} differs: {g:?} vs {:?}",
            want.points[i]
        );
    }
}

/// The real API in f32: a 1×2 Weight, gradient into the grad buffer, `Optimizer::step`.
fn run_f32(opt: Optimizer, lr: f32) -> Vec<[f32; 2]> {
    let mut ps = ParamStorage::<2, 1>::new();
    let mut params = ps.params();
    let id = params.alloc(Shape::new(1, 2), ParamKind::Weight).unwrap();
    params.value_mut(id).unwrap().copy_from_slice(&[-7.0, 2.0]);
    let mut state = [0.0f32; staticgrad::optim::HEADER_LEN + 4];
    assert!(opt.state_len(params.len()) <= state.len());
    let mut out = Vec::new();
    for _ in 0..30 {
        let [x, y] = <[f32; 2]>::try_from(params.value(id).unwrap()).unwrap();
        out.push([x, y]);
        params.zero_grad();
        params.grad_mut(id).unwrap().copy_from_slice(&[x / 10.0, 2.0 * y]);
        opt.step(&mut params, &mut state, lr).unwrap();
    }
    out.push(params.value(id).unwrap().try_into().unwrap());
    out
}

/// Errors of an f32 path against the golden one over all 62 coordinates.
struct Errs {
    /// Worst `|f32 − golden| / max(|golden|, 7e-3)`: relative, with the denominator floored at
    /// 1e-3 of the path's scale (start |x| = 7) so a coordinate passing near 0 (AdaGrad's y reaches
    /// 2e-17) is judged at that absolute precision rather than relative to its own tiny value.
    rel: f64,
    /// (point index, coordinate) of `rel`.
    at: (usize, usize),
    /// Worst absolute error.
    abs: f64,
}

fn errs(got: &[[f32; 2]], want: &Path) -> Errs {
    let floor = 7e-3;
    let mut e = Errs { rel: 0.0, at: (0, 0), abs: 0.0 };
    for (i, (g, w)) in got.iter().zip(&want.points).enumerate() {
        for k in 0..2 {
            let d = (g[k] as f64 - w[k]).abs();
            e.abs = e.abs.max(d);
            let r = d / w[k].abs().max(floor);
            if r > e.rel {
                e.rel = r;
                e.at = (i, k);
            }
        }
    }
    e
}

fn worst_rel(got: &[[f32; 2]], want: &Path) -> f64 {
    errs(got, want).rel
}

/// f32 tolerance: 1e-4 relative. A single f32 rounding is 6e-8; 30 steps of a rule whose state
/// feeds back (momentum amplifies a perturbation up to 1/(1 − μ) = 10×) accumulate a few hundred
/// roundings at most. A wrong formula misses by percent (see the Nesterov cross-check).
const TOL_F32: f64 = 1e-4;

fn check_f32(name: &str, opt: Optimizer, want: &Path) {
    let got = run_f32(opt, want.lr as f32);
    assert_eq!(got.len(), 31);
    let e = errs(&got, want);
    println!(
        "{name:<18} f32 vs golden: worst rel {:.3e} (point {}, {}), worst abs {:.3e}",
        e.rel,
        e.at.0,
        ["x", "y"][e.at.1],
        e.abs
    );
    assert!(e.rel < TOL_F32, "{name}: worst relative error {:e} ≥ {TOL_F32:e}", e.rel);
}

fn h(p: &Path, key: &str) -> f64 {
    p.hyper[key].as_f64().unwrap()
}

#[test]
fn sgd_path() {
    let want = load("SGD");
    let got = run_f64(|p, g, _| {
        for k in 0..2 {
            sgd::update(&mut p[k], g[k], want.lr);
        }
    });
    assert_bit_exact("SGD", &got, &want);
    check_f32("SGD", Optimizer::sgd(), &want);
}

#[test]
fn momentum_path() {
    let want = load("Momentum");
    let mu = h(&want, "momentum");
    let mut v = [0.0f64; 2];
    let got = run_f64(|p, g, _| {
        for k in 0..2 {
            momentum::update(&mut p[k], &mut v[k], g[k], want.lr, mu);
        }
    });
    assert_bit_exact("Momentum", &got, &want);
    check_f32("Momentum", Optimizer::momentum().with_momentum(mu as f32), &want);
}

#[test]
fn nesterov_paths_each_match_their_own_ordering() {
    let book = load("Nesterov");
    let pre = load("Nesterov_pre2021");
    for (name, want, f, form) in [
        (
            "Nesterov",
            &book,
            nesterov::update_book::<f64> as fn(&mut f64, &mut f64, f64, f64, f64),
            NesterovForm::Book,
        ),
        ("Nesterov_pre2021", &pre, nesterov::update_book_pre2021::<f64>, NesterovForm::BookPre2021),
    ] {
        let mu = h(want, "momentum");
        let mut v = [0.0f64; 2];
        let got = run_f64(|p, g, _| {
            for k in 0..2 {
                f(&mut p[k], &mut v[k], g[k], want.lr, mu);
            }
        });
        assert_bit_exact(name, &got, want);
        let opt = Optimizer::nesterov().with_momentum(mu as f32).with_nesterov_form(form);
        check_f32(name, opt, want);
    }
    // The two orderings really are different paths, and each f32 run is closer to its own.
    let a = run_f32(Optimizer::nesterov(), 0.1);
    let b = run_f32(Optimizer::nesterov().with_nesterov_form(NesterovForm::BookPre2021), 0.1);
    assert!(worst_rel(&a, &pre) > 1e-2 && worst_rel(&b, &book) > 1e-2);
}

#[test]
fn adagrad_path() {
    let want = load("AdaGrad");
    let mut hs = [0.0f64; 2];
    let got = run_f64(|p, g, _| {
        for k in 0..2 {
            adagrad::update(&mut p[k], &mut hs[k], g[k], want.lr, 1e-7);
        }
    });
    assert_bit_exact("AdaGrad", &got, &want);
    assert_eq!(Optimizer::adagrad().rule, Rule::AdaGrad { eps: 1e-7 });
    check_f32("AdaGrad", Optimizer::adagrad(), &want);
}

#[test]
fn rmsprop_path() {
    let want = load("RMSprop");
    let decay = h(&want, "decay_rate");
    let mut hs = [0.0f64; 2];
    let got = run_f64(|p, g, _| {
        for k in 0..2 {
            rmsprop::update(&mut p[k], &mut hs[k], g[k], want.lr, decay, 1e-7);
        }
    });
    assert_bit_exact("RMSprop", &got, &want);
    assert_eq!(
        Optimizer::rmsprop().rule,
        Rule::RmsProp { decay: 0.99, eps: 1e-7, centered: false, momentum: 0.0 }
    );
    check_f32("RMSprop", Optimizer::rmsprop(), &want);
}

/// `f64` whose `powf` is the platform's (`std`, glibc on Linux: the C `pow` Python's `**` calls)
/// instead of `libm`'s. `libm::pow` is within 1 ULP but not correctly rounded: of β₁ᵗ, β₂ᵗ for
/// t = 1..30 it rounds 4 of 60 the other way (0.9⁴, 0.9²³, 0.9²⁹, 0.999¹⁶), which moves the book's
/// `lr_t` by an ULP. With the platform `pow` the same generic Adam code is bit-exact.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
struct PlatformPow(f64);

macro_rules! binop {
    ($tr:ident, $f:ident, $op:tt, $tra:ident, $fa:ident) => {
        impl std::ops::$tr for PlatformPow {
            type Output = Self;
            fn $f(self, o: Self) -> Self {
                PlatformPow(self.0 $op o.0)
            }
        }
        impl std::ops::$tra for PlatformPow {
            fn $fa(&mut self, o: Self) {
                self.0 = self.0 $op o.0;
            }
        }
    };
}
binop!(Add, add, +, AddAssign, add_assign);
binop!(Sub, sub, -, SubAssign, sub_assign);
binop!(Mul, mul, *, MulAssign, mul_assign);
binop!(Div, div, /, DivAssign, div_assign);

impl Float for PlatformPow {
    const ZERO: Self = PlatformPow(0.0);
    const ONE: Self = PlatformPow(1.0);
    fn sqrt(self) -> Self {
        PlatformPow(self.0.sqrt())
    }
    fn powf(self, e: Self) -> Self {
        PlatformPow(self.0.powf(e.0))
    }
    fn from_u32(t: u32) -> Self {
        PlatformPow(t as f64)
    }
}

#[test]
fn adam_book_path_and_lr_t() {
    let want = load("Adam");
    let [lr, b1, b2, eps] = [want.lr, h(&want, "beta1"), h(&want, "beta2"), 1e-7].map(PlatformPow);
    let lr_t_bits = want.lr_t_bits.as_ref().unwrap();
    assert_eq!(lr_t_bits.len(), 30);
    let (mut libm_off, mut libm_rel) = (0, 0.0f64);
    for (t, &bits) in (1..=30).zip(lr_t_bits) {
        assert_eq!(adam::book_lr_t(lr, b1, b2, t).0.to_bits(), bits, "lr_t at t = {t}");
        // The core's own f64 (libm pow): an ULP in βᵗ becomes ~1e-13 relative in 1 − βᵗ.
        let with_libm = adam::book_lr_t(lr.0, b1.0, b2.0, t);
        let golden = f64::from_bits(bits);
        libm_rel = libm_rel.max((with_libm - golden).abs() / golden);
        libm_off += usize::from(with_libm.to_bits() != bits);
    }
    println!(
        "Adam: with libm pow, lr_t differs from the golden in {libm_off} of 30, worst rel {libm_rel:.2e}"
    );
    assert!(libm_rel < 1e-12);
    let (mut m, mut v) = ([PlatformPow(0.0); 2], [PlatformPow(0.0); 2]);
    let got = run_f64(|p, g, t| {
        let lr_t = adam::book_lr_t(lr, b1, b2, t);
        for k in 0..2 {
            let mut pk = PlatformPow(p[k]);
            adam::update_book(&mut pk, &mut m[k], &mut v[k], PlatformPow(g[k]), lr_t, b1, b2, eps);
            p[k] = pk.0;
        }
    });
    assert_bit_exact("Adam", &got, &want);
    assert_eq!(
        Optimizer::adam().rule,
        Rule::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-7, form: AdamForm::BookFolded, amsgrad: false }
    );
    check_f32("Adam", Optimizer::adam(), &want);
}
