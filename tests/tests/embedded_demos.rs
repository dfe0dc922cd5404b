//! The bit-identical promise (docs/DESIGN.md §9), host side: runs the firmware's demos
//! (`embedded/demos`, the same code, data, seeds and steps) on this machine, checks each meets its
//! bar, and — when `STATICGRAD_FIRMWARE_LOG` names a log of the firmware runs under QEMU
//! (`embedded/run-all.sh` writes one) — that every demo's final-weight checksum equals the
//! firmware's line `checksum <name> <hex>`: every such line, as several targets (Cortex-M4F,
//! rv32imac, rv32imafc) run a demo under the same name.
//!
//! Also the fused update's promise: bit-identical to the gradient-buffer path (SGD at batch 1
//! and 8, Adam), over thousands of steps of real training.

use staticgrad_demos::cnn;
use staticgrad_demos::mnist::{self, MnistConfig};
use staticgrad_demos::xor;
use staticgrad_demos::{EpochReport, Hooks, Outcome};
use staticgrad_tests::HostMemory;
use std::collections::BTreeMap;

struct Print(&'static str);
impl Hooks for Print {
    fn epoch(&mut self, r: &EpochReport) {
        println!("{} epoch {} loss {:.4} held-out {}/{}", self.0, r.epoch, r.mean_loss, r.correct, r.total);
    }
}

fn run_xor() -> Outcome {
    let mut memory = HostMemory::new(&xor::PLAN);
    xor::train(memory.memory(), &mut Print("xor")).unwrap()
}

fn run_mnist(cfg: &MnistConfig) -> Outcome {
    let mut memory = HostMemory::new(&cfg.plan());
    let (mut x, mut labels) = (vec![0.0; cfg.batch * mnist::INPUTS], vec![0; cfg.batch]);
    mnist::train(cfg, &cfg.plan(), memory.memory(), &mut x, &mut labels, &mut Print(cfg.name)).unwrap()
}

/// Every `checksum <name> <hex>` line of the firmware log, by name, if a log was given.
fn firmware_checksums() -> Option<BTreeMap<String, Vec<u32>>> {
    let path = std::env::var("STATICGRAD_FIRMWARE_LOG").ok()?;
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut out = BTreeMap::<String, Vec<u32>>::new();
    for line in text.lines() {
        let mut w = line.split_whitespace();
        if let (Some("checksum"), Some(name), Some(hex)) = (w.next(), w.next(), w.next()) {
            out.entry(name.to_string()).or_default().push(u32::from_str_radix(hex, 16).unwrap());
        }
    }
    Some(out)
}

/// Checks the host run met its bar and, given a firmware log, that each firmware in `firmwares`
/// printed a checksum, and every checksum it printed (one per target it ran on) is the host's.
fn check(name: &str, firmwares: &[&str], o: &Outcome) {
    println!("checksum {name} {:08x}", o.checksum);
    assert!(o.passed, "{name} missed its bar: {:?}", o.last);
    if let Some(fw) = firmware_checksums() {
        for f in firmwares {
            let got = fw.get(*f).unwrap_or_else(|| panic!("firmware log has no checksum for {f}"));
            for g in got {
                assert_eq!(*g, o.checksum, "{f}: firmware {g:08x} != host {:08x}", o.checksum);
            }
            println!("  equal to the firmware's: {f} x{}", got.len());
        }
    }
}

#[test]
fn xor_matches_firmware() {
    // The same demo on the Cortex-M4F (hardware float) and the Cortex-M0 (software float); the
    // RISC-V firmware prints `xor` too, once per build (rv32imac, rv32imafc).
    check("xor", &["xor", "xor-m0"], &run_xor());
}

#[test]
fn mnist_matches_firmware_and_fused_matches_unfused() {
    let mut seen = BTreeMap::new();
    for cfg in &mnist::ALL {
        let o = run_mnist(cfg);
        check(cfg.name, &[cfg.name], &o);
        seen.insert(cfg.name, o.checksum);
    }
    // Fused and gradient-buffer paths: the same bits.
    assert_eq!(seen[mnist::SGD_B1.name], seen[mnist::SGD_B1_FUSED.name]);
    assert_eq!(seen[mnist::SGD_B8.name], seen[mnist::SGD_B8_FUSED.name]);
    assert_eq!(seen[mnist::ADAM_B1.name], seen[mnist::ADAM_B1_FUSED.name]);
}

/// Digits 0–7 pretrained on the host, frozen into flash; the top layer learns 8 and 9 on the
/// device. The committed base is what `pretrain` gives (checked in std-runner's export tests).
#[test]
fn mnist_adapt_matches_firmware() {
    use staticgrad_demos::{adapt, adapt_base};
    let mut memory = HostMemory::new(&adapt::PLAN).with_frozen(adapt_base::FROZEN.to_vec());
    let r = adapt::adapt(&adapt::ADAPT, memory.memory(), &adapt_base::TRAINABLE, &mut Print("mnist-adapt"))
        .unwrap();
    for (what, p) in [("before", r.before), ("after", r.after)] {
        let per: Vec<String> = (0..10).map(|d| format!("{d}:{}/{}", p.correct[d], p.total[d])).collect();
        let ((c07, t07), (c, t)) = (p.sum(0, 8), p.sum(0, 10));
        println!("mnist-adapt {what}: {} | 0-7 {c07}/{t07} | all {c}/{t}", per.join(" "));
    }
    check(adapt::ADAPT.name, &[adapt::ADAPT.name], &r.outcome);
}

/// Exploration helper: pretrain here and adapt (run with --ignored --nocapture).
#[test]
#[ignore]
fn mnist_adapt_from_a_fresh_pretraining() {
    use staticgrad_demos::{adapt, mnist};
    let plan = mnist::SPEC.plan(1, &adapt::PRETRAIN_OPT);
    let mut m = HostMemory::new(&plan);
    let mut all = vec![0.0; plan.param_floats];
    adapt::pretrain(m.memory(), &mut all).unwrap();
    let k = adapt::MODEL.frozen_len();
    let mut memory = HostMemory::new(&adapt::PLAN).with_frozen(all[..k].to_vec());
    let r = adapt::adapt(&adapt::ADAPT, memory.memory(), &all[k..], &mut Print("fresh")).unwrap();
    for (what, p) in [("before", r.before), ("after", r.after)] {
        let per: Vec<String> = (0..10).map(|d| format!("{d}:{}/{}", p.correct[d], p.total[d])).collect();
        let ((c07, t07), (c, t)) = (p.sum(0, 8), p.sum(0, 10));
        println!("{what}: {} | 0-7 {c07}/{t07} | all {c}/{t}", per.join(" "));
    }
    println!("passed {}", r.outcome.passed);
}

#[test]
fn cnn_matches_firmware_and_fused_matches_unfused() {
    let mut seen = BTreeMap::new();
    for cfg in &cnn::ALL {
        let p = cfg.plan();
        println!("{} plan {:?} total {} B", cfg.name, p, p.total_bytes());
        let o = run_mnist(cfg);
        check(cfg.name, &[cfg.name], &o);
        seen.insert(cfg.name, o.checksum);
    }
    assert_eq!(seen[cnn::SGD_B1.name], seen[cnn::SGD_B1_FUSED.name]);
}
