//! Regression tests for panics and hangs the property tests (`prop_core.rs`) found in the core.
//! Each test is the shrunk failing case, written out by hand.

use staticgrad::{Error, ParamKind, Shape};
use staticgrad_tests::HostStorage;

/// `affine` with a zero-width layer (`W: k×0`, `b: 1×0`) panicked in `chunks_exact_mut(0)`.
#[test]
fn affine_zero_width_layer() {
    let mut s = HostStorage::new(256, 16, 16, 4);
    let (mut tape, mut params) = s.split();
    let w = params.alloc(Shape::new(3, 0), ParamKind::Weight).unwrap();
    let b = params.alloc(Shape::row(0), ParamKind::Bias).unwrap();
    let x = tape.input(&[1.0; 6], Shape::new(2, 3)).unwrap();
    let y = tape.affine(x, &params, w, b).unwrap();
    assert_eq!(tape.shape(y), Ok(Shape::new(2, 0)));
    let loss = tape.sum(y).unwrap();
    assert_eq!(tape.scalar(loss), Ok(0.0));
    assert_eq!(tape.backward(loss, &mut params), Ok(()));
}

/// An empty shape with an absurd row count (`2⁴⁰ × 0`) is valid and costs nothing; the kernels
/// used to loop over its rows (forever, in a debug build).
#[test]
fn huge_empty_shapes_cost_nothing() {
    let mut s = HostStorage::new(256, 16, 16, 4);
    let (mut tape, mut params) = s.split();
    let w = params.alloc(Shape::new(0, 0), ParamKind::Weight).unwrap();
    let b = params.alloc(Shape::row(0), ParamKind::Bias).unwrap();
    let p = params.alloc(Shape::new(0, 0), ParamKind::Weight).unwrap();
    let tall = tape.input(&[], Shape::new(1 << 40, 0)).unwrap();
    let pv = tape.param(&params, p).unwrap();
    let m = tape.matmul(tall, pv).unwrap(); // (2⁴⁰ × 0)·(0 × 0)
    let a = tape.affine(tall, &params, w, b).unwrap();
    let row = tape.param(&params, b).unwrap();
    let s1 = tape.add(a, row).unwrap(); // broadcast of an empty row over 2⁴⁰ rows
    let s2 = tape.add(m, s1).unwrap();
    let loss = tape.sum(s2).unwrap();
    assert_eq!(tape.shape(s2), Ok(Shape::new(1 << 40, 0)));
    assert_eq!(tape.backward(loss, &mut params), Ok(()));
}

/// `backward` into a parameter set other than the one the tape was recorded with indexed the
/// gradient buffer with the recorded shapes and panicked; it is now refused before any gradient
/// is touched, naming the mismatch.
#[test]
fn backward_into_other_params_is_refused() {
    let mut s = HostStorage::new(256, 16, 16, 4);
    let (mut tape, mut params) = s.split();
    let w = params.alloc(Shape::new(2, 3), ParamKind::Weight).unwrap();
    let b = params.alloc(Shape::row(3), ParamKind::Bias).unwrap();
    let x = tape.input(&[1.0, 2.0], Shape::new(1, 2)).unwrap();
    let y = tape.affine(x, &params, w, b).unwrap();
    let loss = tape.sum(y).unwrap();

    // Same number of tensors, different shapes.
    let mut o = HostStorage::new(0, 0, 16, 4);
    let (_, mut other) = o.split();
    other.alloc(Shape::new(3, 1), ParamKind::Weight).unwrap();
    other.alloc(Shape::row(1), ParamKind::Bias).unwrap();
    other.grads_mut().fill(7.0);
    assert_eq!(
        tape.backward(loss, &mut other),
        Err(Error::Shape { op: "backward params", expected: Shape::new(2, 3), found: Shape::new(3, 1) })
    );
    assert!(other.grads().iter().all(|&g| g == 7.0), "a refused backward touched gradients");

    // Fewer tensors.
    let mut o = HostStorage::new(0, 0, 16, 4);
    let (_, mut fewer) = o.split();
    fewer.alloc(Shape::new(2, 3), ParamKind::Weight).unwrap();
    assert_eq!(tape.backward(loss, &mut fewer), Err(Error::InvalidHandle { what: "param", index: 1 }));

    // The right set still works.
    assert_eq!(tape.backward(loss, &mut params), Ok(()));
    assert_eq!(params.grad(w).unwrap(), &[1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);
}
