//! `export --format rust --freeze K` output, compiled and used: the on-device adaptation demo's
//! base (`embedded/demos/src/adapt_base.rs`, a module of the demos crate that its firmware and
//! `tests/tests/embedded_demos.rs` run) is exactly this export of the demo's host pretraining.
//! Regenerate it with `STATICGRAD_REGENERATE=1 cargo test -p staticgrad-runner --test adapt_base`.

use staticgrad::weights::ModelDesc;
use staticgrad_demos::{adapt, adapt_base, mnist};
use staticgrad_runner::cli::rust_module;
use staticgrad_runner::memory::OwnedMemory;

#[test]
fn the_committed_adaptation_base_is_the_export_of_its_pretraining() {
    let plan = mnist::SPEC.plan(1, &adapt::PRETRAIN_OPT);
    let mut memory = OwnedMemory::new(&plan);
    let mut values = vec![0.0; plan.param_floats];
    adapt::pretrain(memory.memory(), &mut values).unwrap();
    let desc = ModelDesc::new(&[196, 32, 10], 0, 0, 0.0).unwrap();
    let from = "the host pretraining on digits 0-7 (staticgrad_demos::adapt::pretrain)";
    let src = rust_module(&desc, &values, from, 1).unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../embedded/demos/src/adapt_base.rs");
    if std::env::var_os("STATICGRAD_REGENERATE").is_some() {
        std::fs::write(path, &src).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap();
    assert!(
        committed == src,
        "{path} is not the export of the pretraining: STATICGRAD_REGENERATE=1 cargo test -p staticgrad-runner --test adapt_base"
    );
    // What the module holds is the model and the values it was made from.
    assert_eq!(adapt_base::MODEL.frozen_layers(), 2);
    assert_eq!(adapt_base::FROZEN.len(), adapt_base::MODEL.frozen_len());
    assert_eq!(adapt_base::TRAINABLE.len(), adapt_base::MODEL.param_len());
    let k = adapt_base::FROZEN.len();
    assert_eq!(
        adapt_base::FROZEN.map(f32::to_bits)[..],
        values[..k].iter().map(|v| v.to_bits()).collect::<Vec<_>>()[..]
    );
    assert_eq!(
        adapt_base::TRAINABLE.map(f32::to_bits)[..],
        values[k..].iter().map(|v| v.to_bits()).collect::<Vec<_>>()[..]
    );
}

#[test]
fn freeze_is_refused_where_it_cannot_apply() {
    let desc = ModelDesc::new(&[4, 3, 2], 0, 0, 0.0).unwrap();
    let values = vec![0.5; 4 * 3 + 3 + 3 * 2 + 2];
    assert!(rust_module(&desc, &values, "x", 2).is_err(), "every dense layer frozen");
    let bn = ModelDesc::new(&[4, 3, 2], 0, staticgrad::weights::FLAG_BATCHNORM, 0.0).unwrap();
    assert!(rust_module(&bn, &values, "x", 1).is_err(), "batch norm is not exported as layers");
    let src = rust_module(&desc, &values, "x", 1).unwrap();
    assert!(
        src.contains("staticgrad::Layer::dense(3).frozen()") && src.contains("pub static FROZEN: [f32; 15]")
    );
    assert!(src.contains("pub static TRAINABLE: [f32; 8]") && !src.contains("PARAMS"));
    let plain = rust_module(&desc, &values, "x", 0).unwrap();
    assert!(plain.contains("pub const MODEL") && plain.contains("pub const PARAMS: [f32; 23]"));
}
