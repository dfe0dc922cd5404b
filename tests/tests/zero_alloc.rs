//! Proof that the core never allocates: building the graph, forward, backward and reset of a
//! 3-layer MLP under a counting global allocator make zero allocations.

use staticgrad::{ParamKind, Shape};
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
fn the_counter_counts() {
    // Guards the proof above: if counting were broken, it would pass vacuously.
    let (v, allocations, bytes) = count_allocations(|| vec![1u8; 100]);
    assert_eq!(v.len(), 100);
    assert_eq!(allocations, 1);
    assert!(bytes >= 100);
}
