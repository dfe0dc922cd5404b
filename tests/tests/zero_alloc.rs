//! Proof that the core never allocates: building the graph, forward, backward and reset of a
//! 3-layer MLP, and of a small CNN (convolution, max and average pooling, plain and fused
//! updates), under a counting global allocator make zero allocations.

use staticgrad::{Conv2dConfig, ImageShape, Optimizer, ParamKind, Params, Pool2dConfig, Shape};
use staticgrad_tests::HostStorage;
use staticgrad_tests::counting::{CountingAlloc, count_allocations};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

#[test]
fn mlp_step_allocates_nothing() {
    // Storage is allocated here, by the test, before counting starts: that is the caller's choice.
    let mut s = HostStorage::new(1 << 16, 64, 1 << 16, 16);
    let (mut tape, mut params) = s.split();
    let x: Vec<f32> = (0..8 * 20).map(|i| (i % 7) as f32 * 0.1).collect();
    let labels: Vec<u32> = (0..8).map(|i| i % 5).collect();
    let (_, allocations, bytes) = count_allocations(|| {
        let dims = [20, 32, 16, 5];
        let mut layers = [(None, None); 3];
        for (l, pair) in layers.iter_mut().enumerate() {
            let w = params.alloc(Shape::new(dims[l], dims[l + 1]), ParamKind::Weight).unwrap();
            let b = params.alloc(Shape::row(dims[l + 1]), ParamKind::Bias).unwrap();
            params.value_mut(w).unwrap().fill(0.05);
            *pair = (Some(w), Some(b));
        }
        for _ in 0..10 {
            let mut h = tape.input(&x, Shape::new(8, 20)).unwrap();
            for (l, &(w, b)) in layers.iter().enumerate() {
                h = tape.affine(h, &params, w.unwrap(), b.unwrap()).unwrap();
                if l < 2 {
                    h = tape.relu(h).unwrap();
                }
            }
            let loss = tape.softmax_cross_entropy(h, &labels).unwrap();
            params.zero_grad();
            tape.backward(loss, &mut params).unwrap();
            let (v, g, _) = params.split_mut();
            for (v, g) in v.iter_mut().zip(g.iter()) {
                *v -= 0.1 * g;
            }
            tape.reset();
        }
    });
    assert_eq!((allocations, bytes), (0, 0), "the training loop allocated");
}

#[test]
fn a_trainer_on_examples_written_in_place_allocates_nothing() {
    use rand_core::SeedableRng;
    use staticgrad::{MlpSpec, Model, StepPath, Targets, Trainer};
    use staticgrad_tests::HostMemory;
    const TINY: Model = MlpSpec::new(&[4, 3, 2]).model();
    const WIDE: Model = MlpSpec::new(&[40, 30, 2]).model();
    let opt = Optimizer::sgd();
    for (spec, fused, path) in
        [(TINY, false, StepPath::Direct), (WIDE, false, StepPath::Overwrite), (WIDE, true, StepPath::Fused)]
    {
        assert_eq!(spec.step_path(1, fused), path);
        let plan = if fused { spec.plan_fused(1, &opt) } else { spec.plan(1, &opt) };
        let mut memory = HostMemory::new(&plan);
        let mut trainer = if fused {
            Trainer::fused(&spec, &opt, 1, memory.memory()).unwrap()
        } else {
            Trainer::new(&spec, &opt, 1, memory.memory()).unwrap()
        };
        let mut rng = rand_xoshiro::Xoshiro128PlusPlus::seed_from_u64(1);
        trainer.init(&mut rng).unwrap();
        let pixels: Vec<u8> = (0..spec.inputs()).map(|i| (i * 37 % 256) as u8).collect();
        let fill = || |x: &mut [f32]| x.iter_mut().zip(&pixels).for_each(|(x, &p)| *x = p as f32 / 255.0);
        let (mut predicted, mut logits) = ([0u32], [0.0f32; 2]);
        let (_, allocations, bytes) = count_allocations(|| {
            for s in 0..10u32 {
                trainer.step_with(1, fill(), Targets::Labels(&[s % 2]), 0.05, &mut rng).unwrap();
                trainer.predict_with(1, fill(), &mut predicted).unwrap();
                trainer.logits_with(1, fill(), &mut logits).unwrap();
            }
        });
        assert_eq!((allocations, bytes), (0, 0), "{path:?}: a step or evaluation allocated");
    }
}

#[test]
fn cnn_training_loop_allocates_nothing() {
    let mut s = HostStorage::new(1 << 16, 64, 1 << 12, 16);
    let mut scratch = vec![0.0f32; 64];
    let mut state = vec![0.0f32; 1 << 13];
    let x: Vec<f32> = (0..4 * 2 * 12 * 12).map(|i| (i % 11) as f32 * 0.1 - 0.5).collect();
    let labels: Vec<u32> = (0..4).map(|i| i % 3).collect();
    let (_, allocations, bytes) = count_allocations(|| {
        for fused in [false, true] {
            let mut tape = staticgrad::Tape::new(&mut s.floats, &mut s.nodes);
            let mut params = if fused {
                Params::fused(&mut s.values, &mut scratch, &mut s.table)
            } else {
                Params::new(&mut s.values, &mut s.grads, &mut s.table)
            };
            let shapes = [
                (Shape::new(6, 2 * 9), ParamKind::Weight),
                (Shape::row(6), ParamKind::Bias),
                (Shape::new(8, 6 * 4), ParamKind::Weight),
                (Shape::row(8), ParamKind::Bias),
                (Shape::new(8, 3), ParamKind::Weight),
                (Shape::row(3), ParamKind::Bias),
            ];
            let ids = shapes.map(|(s, k)| params.alloc(s, k).unwrap());
            params.values_mut().iter_mut().enumerate().for_each(|(i, v)| *v = ((i % 13) as f32 - 6.0) * 0.02);
            let adam = Optimizer::adam();
            state.fill(0.0);
            for _ in 0..5 {
                let h = tape.input(&x, Shape::new(4, 2 * 144)).unwrap();
                let h = tape
                    .conv2d(
                        h,
                        &params,
                        ids[0],
                        ids[1],
                        ImageShape::new(2, 12, 12),
                        Conv2dConfig::new(3, 3, 1, 1),
                    )
                    .unwrap();
                let h = tape.relu(h).unwrap();
                let h = tape.max_pool2d(h, ImageShape::new(6, 12, 12), Pool2dConfig::square(2)).unwrap();
                let h = tape
                    .conv2d(
                        h,
                        &params,
                        ids[2],
                        ids[3],
                        ImageShape::new(6, 6, 6),
                        Conv2dConfig::new(2, 2, 2, 0),
                    )
                    .unwrap();
                let h = tape.relu(h).unwrap();
                let h = tape.global_avg_pool2d(h, ImageShape::new(8, 3, 3)).unwrap();
                let h = tape.affine(h, &params, ids[4], ids[5]).unwrap();
                let loss = tape.softmax_cross_entropy(h, &labels).unwrap();
                if fused {
                    tape.backward_fused(loss, &mut params, &adam, &mut state, 0.01).unwrap();
                } else {
                    params.zero_grad();
                    tape.backward(loss, &mut params).unwrap();
                    adam.step(&mut params, &mut state, 0.01).unwrap();
                }
                tape.reset();
            }
        }
    });
    assert_eq!((allocations, bytes), (0, 0), "the CNN training loop allocated");
}

#[test]
fn the_counter_counts() {
    // Guards the proof above: if counting were broken, it would pass vacuously.
    let (v, allocations, bytes) = count_allocations(|| vec![1u8; 100]);
    assert_eq!(v.len(), 100);
    assert_eq!(allocations, 1);
    assert!(bytes >= 100);
}
