//! The MNIST experiments on reduced sizes (bundled images, few iterations): each asserts the
//! book's claim its experiment exists to show. Full-size numbers are in each run's summary.md.

use std::path::PathBuf;

use staticgrad_runner::experiments::{
    batchnorm, dropout, hpsearch, init_mnist, init_symmetry, optimizers_mnist, overfit,
};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

#[test]
fn optimizers_mnist_sgd_ends_highest() {
    let dir = tmp();
    let args = optimizers_mnist::Args {
        out: dir.path().join("om"),
        iters: 150,
        batch: 32,
        train: 2000,
        test: 200,
        rules: ["sgd", "momentum", "adagrad", "adam"].map(String::from).to_vec(),
        hidden: 4,
        seed: 0,
    };
    let r = optimizers_mnist::run(&args).unwrap();
    assert!(
        r.sgd_highest,
        "{:?}",
        r.curves.iter().map(|c| (&c.name, c.final_smoothed())).collect::<Vec<_>>()
    );
    assert_eq!(r.curves[0].smoothed.len(), 150);
    for f in ["loss.csv", "curves.json", "loss.svg", "summary.md"] {
        assert!(args.out.join(f).exists(), "{f}");
    }
}

#[test]
fn init_mnist_small_std_stays_at_chance_and_he_beats_xavier() {
    let dir = tmp();
    let args = init_mnist::Args {
        out: dir.path().join("im"),
        iters: 300,
        batch: 32,
        train: 2000,
        test: 100,
        lr: 0.01,
        seed: 0,
    };
    let r = init_mnist::run(&args).unwrap();
    assert!(r.small_stays_at_chance, "std 0.01 mean loss {}", r.curves[0].mean_last(100));
    assert!(r.he_below_xavier, "He {} Xavier {}", r.curves[2].final_smoothed(), r.curves[1].final_smoothed());
}

#[test]
fn batchnorm_wins_most_scales_and_divergence_does_not_panic() {
    let dir = tmp();
    let args = batchnorm::Args {
        out: dir.path().join("bn"),
        samples: 300,
        scales: 16,
        epochs: 6,
        batch: 100,
        lr: 0.01,
        hidden: 5,
        seed: 0,
    };
    let r = batchnorm::run(&args).unwrap();
    assert!(r.bn_wins >= 11, "batch norm wins {} of 16", r.bn_wins);
    // w = 1 overflows the plain net; it is then scored as numpy scores NaN logits: class 0 for all.
    let big = &r.runs[0];
    assert!(big.plain_diverged.is_some());
    let share0 = 34.0 / 300.0; // class 0 among the first 300 bundled images
    assert!((big.plain.last().unwrap() - share0).abs() < 1e-9, "{:?}", big.plain);
    assert!(args.out.join("grid.svg").exists());
}

#[test]
fn overfitting_and_both_regularisers_shrinking_the_gap() {
    use staticgrad::model::{Activation, Loss, MlpSpec};
    use staticgrad::optim::{Optimizer, WeightDecay};
    use staticgrad::{Dropout, Init};
    // 100 images, batch 50, 300 evaluations (600 iterations, as many as the book's 601).
    let (train, test) = overfit::split(100, Some(200)).unwrap();
    let w = overfit::widths(6);
    let spec = MlpSpec::new(&w)
        .with_activation(Activation::Relu)
        .with_init(Init::HeNormal)
        .with_loss(Loss::SoftmaxCrossEntropyBook);
    let sgd = Optimizer::sgd();
    let go = |s, o| overfit::train_curves("run", s, o, &train, &test, 300, 50, 0.01, 0).unwrap();
    let plain = go(spec, sgd);
    let decay = go(spec, sgd.with_weight_decay(WeightDecay::L2(0.1)));
    let drop = go(spec.with_dropout(Dropout::book(0.15)), sgd);
    assert!(plain.final_train() >= 0.99, "{}", plain.final_train());
    assert!(plain.gap() >= 0.15, "{}", plain.gap());
    assert!(decay.gap() < plain.gap(), "weight decay: {} vs {}", decay.gap(), plain.gap());
    assert!(drop.gap() < plain.gap(), "dropout: {} vs {}", drop.gap(), plain.gap());

    // The subcommands themselves, on a few evaluations: they write their files.
    let dir = tmp();
    let o = overfit::Args {
        out: dir.path().join("of"),
        samples: 100,
        test: Some(50),
        epochs: 3,
        batch: 50,
        lr: 0.01,
        lambda: 0.1,
        hidden: 6,
        seed: 0,
    };
    overfit::run(&o).unwrap();
    let d = dropout::Args {
        out: dir.path().join("do"),
        ratio: 0.15,
        inverted: false,
        samples: 100,
        test: Some(50),
        epochs: 3,
        batch: 50,
        lr: 0.01,
        hidden: 6,
        seed: 0,
    };
    dropout::run(&d).unwrap();
    for f in ["accuracy.csv", "curves.json", "summary.md"] {
        assert!(o.out.join(f).exists() && d.out.join(f).exists(), "{f}");
    }
}

fn hp(out: PathBuf, trials: usize, epochs: usize, samples: usize) -> hpsearch::Args {
    hpsearch::Args {
        cmd: None,
        out,
        trials,
        samples,
        val_frac: 0.2,
        epochs,
        batch: 100,
        hidden: 6,
        lr_exp: vec![-6.0, -2.0],
        wd_exp: vec![-8.0, -4.0],
        top: 20,
        narrow: false,
        narrow_top: 10,
        threads: None,
        shard: None,
        shards: None,
        no_scheduler_env: true,
        resume: false,
        mnist_dir: None,
        csv: None,
        csv_label_col: 0,
        csv_header: false,
        csv_scale: 255.0,
        layers: None,
        dropout: None,
        batch_sizes: Vec::new(),
        optimizers: Vec::new(),
        seed: 0,
    }
}

#[test]
fn hpsearch_best_learning_rates_lie_in_1e3_to_1e2() {
    let dir = tmp();
    let r = hpsearch::run(&hp(dir.path().join("hp"), 20, 16, 500)).unwrap();
    let c = hpsearch::learners_lr_check(&r.broad);
    assert!(c.holds, "{}", c.detail);
    let c = hpsearch::best_lr_check(&r.broad, 1);
    assert!(c.holds, "{}", c.detail);
}

#[test]
fn hpsearch_is_thread_count_independent_and_shards_merge_to_the_unsharded_run() {
    let dir = tmp();
    let mut a = hp(dir.path().join("t1"), 6, 2, 200);
    a.threads = Some(1);
    let one = hpsearch::run(&a).unwrap().broad;
    a.threads = Some(2);
    a.out = dir.path().join("t2");
    let two = hpsearch::run(&a).unwrap().broad;
    assert_eq!(one, two);
    let t1 = std::fs::read_to_string(dir.path().join("t1/trials.csv")).unwrap();
    assert_eq!(t1, std::fs::read_to_string(dir.path().join("t2/trials.csv")).unwrap());

    let mut files = Vec::new();
    for k in 0..3 {
        let mut s = hp(dir.path().join(format!("shard{k}")), 6, 2, 200);
        s.shard = Some((k, 3));
        let part = hpsearch::run(&s).unwrap().broad;
        assert_eq!(part.len(), 2);
        files.push(s.out.join("trials.jsonl"));
    }
    let merged = hpsearch::merge(&files, &dir.path().join("merged"), 20, false).unwrap().broad;
    assert_eq!(merged, one);
    assert_eq!(std::fs::read_to_string(dir.path().join("merged/trials.csv")).unwrap(), t1);
    // A shard given twice is refused.
    files.push(files[0].clone());
    assert!(hpsearch::merge(&files, &dir.path().join("bad"), 20, false).is_err());
}

#[test]
fn hpsearch_runs_on_a_csv_with_its_network_and_draws_dropout_batch_and_update_rule() {
    let dir = tmp();
    // 120 rows, 6 features, 3 classes that a small network separates.
    let mut s = String::new();
    for i in 0..120u32 {
        let c = i % 3;
        s += &c.to_string();
        for j in 0..6u32 {
            s += &format!(",{}", (c * 80 + (i * 7 + j * 13) % 50) as f32);
        }
        s += "\n";
    }
    let csv = dir.path().join("d.csv");
    std::fs::write(&csv, s).unwrap();
    let mut a = hp(dir.path().join("whole"), 6, 3, 100);
    a.csv = Some(csv.clone());
    a.layers = Some("6,16,3".into());
    a.dropout = Some(vec![0.0, 0.4]);
    a.batch_sizes = vec![10, 20];
    a.optimizers = vec!["sgd".into(), "momentum".into(), "adam".into()];
    a.lr_exp = vec![-3.0, -1.0];
    let whole = hpsearch::run(&a).unwrap().broad;
    assert_eq!(whole.len(), 6);
    for t in &whole {
        assert!(t.dropout.is_some_and(|d| (0.0..=0.4).contains(&d)), "{t:?}");
        assert!(matches!(t.batch, Some(10 | 20)), "{t:?}");
        assert!(t.optimizer.as_deref().is_some_and(|o| ["sgd", "momentum", "adam"].contains(&o)), "{t:?}");
        assert_eq!(t.search.layers.as_deref(), Some(&[6, 16, 3][..]));
    }
    let csv_out = std::fs::read_to_string(dir.path().join("whole/trials.csv")).unwrap();
    assert!(
        csv_out.starts_with("rank,trial,lr,weight_decay,val_acc,train_acc,dropout,batch,optimizer\n"),
        "{csv_out}"
    );
    // Not the book's search: its claims are not checked, the summary says what was drawn.
    let summary = std::fs::read_to_string(dir.path().join("whole/summary.md")).unwrap();
    assert!(
        summary.contains("update rule from sgd, momentum, adam") && !summary.contains("book's claims"),
        "{summary}"
    );
    // Its shards merge to it, and a shard of another network is refused.
    let mut files = Vec::new();
    for k in 0..2 {
        let mut s = a.clone();
        s.shard = Some((k, 2));
        s.out = dir.path().join(format!("s{k}"));
        hpsearch::run(&s).unwrap();
        files.push(s.out.join("trials.jsonl"));
    }
    assert_eq!(hpsearch::merge(&files, &dir.path().join("merged"), 20, false).unwrap().broad, whole);
    let mut b = a.clone();
    b.layers = Some("6,8,3".into());
    b.shard = Some((1, 2));
    b.out = dir.path().join("other");
    hpsearch::run(&b).unwrap();
    let e =
        hpsearch::merge(&[files[0].clone(), b.out.join("trials.jsonl")], &dir.path().join("bad"), 20, false)
            .unwrap_err()
            .to_string();
    assert!(e.contains("different search (layers"), "{e}");
    // A network whose input is not the data's width is refused.
    let mut c = a.clone();
    c.layers = Some("784,10".into());
    c.out = dir.path().join("wrong");
    assert!(hpsearch::run(&c).unwrap_err().to_string().contains("6 features"));
}

#[test]
fn hpsearch_resume_keeps_finished_trials_and_runs_only_the_others() {
    let dir = tmp();
    let a = hp(dir.path().join("whole"), 4, 2, 100);
    let whole = hpsearch::run(&a).unwrap().broad;
    let search = a.search().unwrap();
    // A log that holds trial 2 with a marked accuracy and a torn last line.
    let mut marked = whole[2].clone();
    marked.val_acc = 0.125;
    let out = dir.path().join("resumed");
    std::fs::create_dir_all(&out).unwrap();
    let torn = serde_json::to_string(&whole[3]).unwrap();
    std::fs::write(
        out.join("trials.done.jsonl"),
        format!("{}\n{}", serde_json::to_string(&marked).unwrap(), &torn[..torn.len() / 2]),
    )
    .unwrap();
    let finished = hpsearch::finished_in(&out, &search).unwrap();
    assert_eq!(finished, vec![marked.clone()]);
    let (all, interrupted) =
        hpsearch::run_search_resuming(&search, None, Some(1), Some(&out.join("trials.done.jsonl")), finished)
            .unwrap();
    assert!(!interrupted);
    // Trial 2 was not run again (its marked accuracy stays); the others equal the unbroken run.
    assert_eq!(all[2], marked);
    for i in [0, 1, 3] {
        assert_eq!(all[i], whole[i]);
    }
    // A log of another search is refused, naming the setting.
    let mut other = search.clone();
    other.seed = 9;
    let e = hpsearch::finished_in(&out, &other).unwrap_err().to_string();
    assert!(e.contains("different search (seed 0 vs 9)"), "{e}");
}

#[test]
fn init_symmetry_equal_starts_keep_the_hidden_units_identical() {
    let dir = tmp();
    let a = init_symmetry::Args {
        out: dir.path().join("sym"),
        iters: 300,
        batch: 50,
        hidden: 2,
        equal: 0.01,
        train: 2000,
        test: 500,
        lr: 0.05,
        seed: 0,
    };
    let r = init_symmetry::run(&a).unwrap();
    let [zero, equal, he] = &r.runs[..] else { panic!("three runs") };
    for run in [zero, equal] {
        assert_eq!(run.spread, vec![0.0, 0.0], "{}", run.name);
    }
    // The random start's units differ before and after, and it learns; the equal starts do not
    // get near it.
    assert!(he.spread_at_start.iter().chain(&he.spread).all(|&s| s > 0.0), "{:?}", he.spread);
    assert!(he.test_acc > 0.8 && he.test_acc > equal.test_acc + 0.1 && he.test_acc > zero.test_acc + 0.1);
    let summary = std::fs::read_to_string(a.out.join("summary.md")).unwrap();
    assert!(summary.contains("0 (exactly)") && !summary.contains("**no**"), "{summary}");
    assert!(a.out.join("symmetry.svg").exists());
}
