//! An application on current `rand` (0.10, on `rand_core` 0.10) passes its own generators to the
//! core: this is what failed with E0277 ("multiple different versions of crate `rand_core`") while
//! the core was on `rand_core` 0.6.

use rand::SeedableRng;
use rand::rngs::{SmallRng, StdRng};
use staticgrad::model::{MlpSpec, Model};
use staticgrad::{ParamEntry, Params};

const SPEC: Model = MlpSpec::new(&[2, 3, 2]).model();

fn init_with(rng: &mut impl rand_core::Rng) -> [f32; SPEC.param_len()] {
    let mut values = [0.0; SPEC.param_len()];
    let mut grads = [0.0; SPEC.param_len()];
    let mut table = [ParamEntry::EMPTY; SPEC.param_tensors()];
    let mut params = Params::new(&mut values, &mut grads, &mut table);
    SPEC.alloc(&mut params).unwrap();
    SPEC.init(&mut params, rng).unwrap();
    values
}

#[test]
fn rand_0_10_generators_initialise_a_model() {
    let mut std_rng = StdRng::seed_from_u64(1);
    let mut small_rng = SmallRng::seed_from_u64(1);
    // Passed directly to `Model::init`, with no adapter.
    for values in [init_with(&mut std_rng), init_with(&mut small_rng)] {
        assert!(values.iter().all(|v| v.is_finite()));
        assert!(values.iter().any(|&v| v != 0.0), "weights drawn");
    }
}

#[test]
fn the_reexport_is_the_rand_core_rand_uses() {
    fn takes_core_rng<R: rand_core::Rng>(_: &mut R) {}
    takes_core_rng(&mut StdRng::seed_from_u64(0));
    takes_core_rng(&mut SmallRng::seed_from_u64(0));
}
