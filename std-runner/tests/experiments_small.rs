//! The chapter's experiments on reduced sizes: each asserts the book's claim the experiment exists
//! to show (the full-size numbers are in each run's summary.md).

use staticgrad_runner::experiments::{activations, optimizers_2d};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

#[test]
fn optimizers_2d_orders_as_the_book_and_follows_the_golden_paths() {
    let dir = tmp();
    let args = optimizers_2d::Args {
        out: dir.path().join("o2d"),
        steps: 30,
        lrs: Vec::new(),
        start: vec![-7.0, 2.0],
    };
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

#[test]
fn optimizers_2d_takes_a_learning_rate_per_rule_and_a_start_point() {
    let dir = tmp();
    let args = optimizers_2d::Args {
        out: dir.path().join("o2d"),
        steps: 5,
        lrs: vec![("SGD".into(), 0.1), ("Adam".into(), 0.05)],
        start: vec![3.0, -1.0],
    };
    let r = optimizers_2d::run(&args).unwrap();
    // SGD by hand from (3, −1), lr 0.1: x ← x − 0.1·x/10 = 0.99x, y ← y − 0.1·2y = 0.8y.
    let sgd = &r.rules[0];
    assert_eq!(sgd.path[0], (3.0, -1.0));
    let (mut x, mut y) = (3.0f32, -1.0f32);
    for p in &sgd.path[1..] {
        x -= 0.1 * (x / 10.0);
        y -= 0.1 * (2.0 * y);
        assert_eq!(*p, (x, y));
    }
    // Rules not named keep the book's rates; nothing is compared with the book's paths.
    let adam = optimizers_2d::path_from(&optimizers_2d::CASES[5], 0.05, (3.0, -1.0), 5).unwrap();
    assert_eq!(r.rules[5].path, adam);
    let momentum = optimizers_2d::path_from(&optimizers_2d::CASES[1], 0.1, (3.0, -1.0), 5).unwrap();
    assert_eq!(r.rules[1].path, momentum);
    assert!(r.rules.iter().all(|r| r.max_abs_dev.is_none()));
    let summary = std::fs::read_to_string(args.out.join("summary.md")).unwrap();
    assert!(summary.contains("from (3, -1)") && summary.contains("Settings differ"), "{summary}");
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
