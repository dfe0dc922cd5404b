//! The chapter's experiments on reduced sizes: each asserts the book's claim the experiment exists
//! to show (the full-size numbers are in each run's summary.md).

use staticgrad_runner::experiments::{activations, optimizers_2d};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

#[test]
fn optimizers_2d_orders_as_the_book_and_follows_the_golden_paths() {
    let dir = tmp();
    let args = optimizers_2d::Args { out: dir.path().join("o2d"), steps: 30 };
    let r = optimizers_2d::run(&args).unwrap();
    assert!(r.ordering_as_book, "{:?}", r.rules.iter().map(|r| (r.name, r.f_final)).collect::<Vec<_>>());
    assert!(r.adagrad_lowest);
    // Every rule (the four of the book's figure, Nesterov and RMSProp) against its float64 path.
    for rule in &r.rules {
        let golden = optimizers_2d::golden_path(rule.name).expect("golden path");
        assert_eq!(golden.len(), 31);
        for (i, (g, p)) in golden.iter().zip(&rule.path).enumerate() {
            for (gv, pv) in [(g.0, p.0), (g.1, p.1)] {
                let tol = 1e-5 + 1e-5 * gv.abs();
                assert!((gv - pv as f64).abs() <= tol, "{} point {i}: book {gv}, ours {pv}", rule.name);
            }
        }
    }
    for f in ["paths.csv", "results.json", "paths.svg", "summary.md"] {
        assert!(args.out.join(f).exists(), "{f}");
    }
}

fn act_args(samples: usize, repeats: usize, out: std::path::PathBuf) -> activations::Args {
    activations::Args { out, samples, width: 100, layers: 5, bins: 30, seed: 0, repeats }
}

#[test]
fn activations_show_saturation_vanishing_and_he_keeping_relu_spread() {
    use activations::Act;
    use staticgrad::init::Init;
    let dir = tmp();
    let a = act_args(200, 4, dir.path().join("unused"));
    let sig1 = activations::run_stack(&a, Act::Sigmoid, Init::Normal { std: 1.0 }, 0).unwrap();
    for (l, s) in sig1.iter().enumerate() {
        assert!(s.frac_lt_005 + s.frac_gt_095 >= 0.6, "layer {}: {s:?}", l + 1);
    }
    let sig001 = activations::run_stack(&a, Act::Sigmoid, Init::Normal { std: 0.01 }, 1).unwrap();
    // Layer 1 sees the raw N(0,1) input (std 0.1·0.25 = 0.025, as in the book's own run);
    // from layer 2 on everything sits at 0.5.
    assert!((0.02..0.03).contains(&sig001[0].std), "{:?}", sig001[0]);
    for s in &sig001[1..] {
        assert!(s.std < 0.02, "{s:?}");
    }
    let std_ratio = |v: &[activations::LayerStats]| {
        let stds: Vec<f64> = v.iter().map(|s| s.std).collect();
        stds.iter().cloned().fold(0.0, f64::max) / stds.iter().cloned().fold(f64::INFINITY, f64::min)
    };
    let he = activations::run_stack(&a, Act::Relu, Init::HeNormal, 2).unwrap();
    let xa = activations::run_stack(&a, Act::Relu, Init::XavierBook, 3).unwrap();
    assert!(std_ratio(&he) < 1.5, "{he:?}");
    assert!(std_ratio(&xa) > 2.0, "Xavier shrinks ReLU activations: {xa:?}");

    // The whole experiment on a tiny input writes its files.
    let out = dir.path().join("act");
    activations::run(&act_args(20, 1, out.clone())).unwrap();
    for f in [
        "layer_stats.csv",
        "layer_stats.json",
        "hist_sigmoid.svg",
        "hist_tanh.svg",
        "hist_relu.svg",
        "summary.md",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
}
