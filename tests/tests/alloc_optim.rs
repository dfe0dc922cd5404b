//! Zero allocation: 100 steps of every update rule (and its weight-decay and clipping variants),
//! the fused per-tensor path, schedules and initialisation, under a counting global allocator.

use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;
use staticgrad::init::Init;
use staticgrad::optim::{Clip, NAMES, Optimizer, WeightDecay};
use staticgrad::schedule::Schedule;
use staticgrad::{ParamKind, Shape, clip};
use staticgrad_tests::HostStorage;
use staticgrad_tests::counting::{CountingAlloc, count_allocations};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

#[test]
fn hundred_steps_of_every_rule_allocate_nothing() {
    // The counter works in this binary: a Vec is seen.
    let ((), a, bytes) = count_allocations(|| drop(std::hint::black_box(vec![1u8; 10])));
    assert_eq!((a, bytes), (1, 10));
    let mut s = HostStorage::new(0, 0, 64 * 32 + 32 + 32, 4);
    let (_, mut params) = s.split();
    let w = params.alloc(Shape::new(64, 32), ParamKind::Weight).unwrap();
    let b = params.alloc(Shape::row(32), ParamKind::Bias).unwrap();
    let r = params.alloc(Shape::row(32), ParamKind::RunningMean).unwrap();
    // The largest rules (AMSGrad, centred RMSProp with momentum) need 3 floats per parameter,
    // after the header.
    let mut state = vec![0.0f32; staticgrad::optim::HEADER_LEN + 3 * params.len()];
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(3);
    let schedule = Schedule::cosine(0.01, 100, 0.0).with_warmup(5);
    let mut report = Vec::new();
    for name in NAMES {
        let base = Optimizer::by_name(name).unwrap();
        for opt in [
            base,
            base.with_weight_decay(WeightDecay::L2(1e-3)),
            base.with_weight_decay(WeightDecay::Decoupled(1e-3)),
            base.with_clip(Clip::GlobalNorm(1.0)),
            base.with_clip(Clip::Value(0.1)),
        ] {
            let ((), allocations, bytes) = count_allocations(|| {
                Init::HeNormal.fill_param(&mut params, w, &mut rng).unwrap();
                Init::Zeros.fill_param(&mut params, b, &mut rng).unwrap();
                Init::Constant(0.0).fill_param(&mut params, r, &mut rng).unwrap();
                state.fill(0.0); // a fresh start
                for t in 0..100u32 {
                    let (v, g, _) = params.split_mut();
                    for (g, v) in g.iter_mut().zip(v.iter()) {
                        *g = 0.5 * v + 0.01; // gradient of a quadratic
                    }
                    let lr = schedule.lr(t);
                    if t % 2 == 0 {
                        opt.step(&mut params, &mut state, lr).unwrap();
                    } else {
                        // The fused path.
                        opt.begin_step(&mut state).unwrap();
                        let (values, grads, table) = params.split_mut();
                        for &e in table {
                            let r = e.range();
                            opt.update_tensor(e, &mut values[r.clone()], &mut grads[r], &mut state, lr)
                                .unwrap();
                        }
                    }
                }
                clip::global_norm(&params).unwrap();
                staticgrad::weight_decay_loss(&params, 0.1);
            });
            report.push((opt, allocations, bytes));
        }
    }
    for (opt, allocations, bytes) in &report {
        assert_eq!((*allocations, *bytes), (0, 0), "{opt:?} allocated");
    }
    println!("{} optimizer configurations x 100 steps: 0 allocations, 0 bytes", report.len());
}
