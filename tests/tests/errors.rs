//! Caller mistakes come back as the right `Err` with the facts, never as a panic, and a refused
//! op leaves the tape as it was.

use staticgrad::{Error, Node, ParamKind, Params, Region, Shape, Tape, Var};
use staticgrad_tests::HostStorage;

#[test]
fn tape_float_capacity() {
    let mut floats = [0.0f32; 10];
    let mut nodes = [Node::EMPTY; 8];
    let mut tape = Tape::new(&mut floats, &mut nodes);
    let x = tape.input(&[1.0; 6], Shape::new(2, 3)).unwrap(); // data: 6 values, no gradient
    assert_eq!(tape.relu(x), Err(Error::Capacity { region: Region::TapeFloats, needed: 12, available: 10 }));
    assert_eq!(tape.nodes_used(), 1);
    assert_eq!(tape.floats_used(), 6);
    let s = tape.sum(x).unwrap(); // 1 more float still fits
    assert_eq!(tape.scalar(s).unwrap(), 6.0);
    // A value downstream of a parameter also reserves its gradient.
    let mut pv = [0.5f32; 2];
    let mut pg = [0.0f32; 2];
    let mut table = [staticgrad::ParamEntry::EMPTY; 1];
    let mut params = Params::new(&mut pv, &mut pg, &mut table);
    let p = params.alloc(Shape::row(2), ParamKind::Weight).unwrap();
    tape.reset();
    let v = tape.param(&params, p).unwrap(); // 2 values + 2 gradients
    assert_eq!(tape.floats_used(), 4);
    tape.relu(v).unwrap(); // 4 more: 8
    assert_eq!(tape.relu(v), Err(Error::Capacity { region: Region::TapeFloats, needed: 12, available: 10 }));
}

#[test]
fn tape_node_capacity() {
    let mut floats = [0.0f32; 200];
    let mut nodes = [Node::EMPTY; 2];
    let mut tape = Tape::new(&mut floats, &mut nodes);
    let x = tape.input(&[1.0], Shape::SCALAR).unwrap();
    let y = tape.relu(x).unwrap();
    assert_eq!(tape.sigmoid(y), Err(Error::Capacity { region: Region::TapeNodes, needed: 3, available: 2 }));
    tape.reset();
    assert!(tape.input(&[1.0], Shape::SCALAR).is_ok(), "reset frees everything");
}

#[test]
fn param_capacity() {
    let (mut v, mut g, mut t) = ([0.0f32; 10], [0.0f32; 10], [staticgrad::ParamEntry::EMPTY; 1]);
    let mut p = Params::new(&mut v, &mut g, &mut t);
    assert_eq!(
        p.alloc(Shape::new(3, 4), ParamKind::Weight),
        Err(Error::Capacity { region: Region::ParamFloats, needed: 12, available: 10 })
    );
    p.alloc(Shape::row(2), ParamKind::Bias).unwrap();
    assert_eq!(
        p.alloc(Shape::row(2), ParamKind::Bias),
        Err(Error::Capacity { region: Region::ParamTensors, needed: 2, available: 1 })
    );
    // A shape whose element count overflows never fits and never panics.
    assert!(matches!(p.alloc(Shape::new(usize::MAX, 2), ParamKind::Weight), Err(Error::Capacity { .. })));
}

#[test]
fn shape_mismatches() {
    let mut s = HostStorage::new(1024, 16, 64, 4);
    let (mut tape, mut params) = s.split();
    let a = tape.input(&[0.0; 6], Shape::new(2, 3)).unwrap();
    let b = tape.input(&[0.0; 6], Shape::new(3, 2)).unwrap();
    assert_eq!(
        tape.mul(a, b),
        Err(Error::Shape { op: "mul", expected: Shape::new(2, 3), found: Shape::new(3, 2) })
    );
    assert!(matches!(tape.matmul(a, a), Err(Error::Shape { op: "matmul", .. })));
    assert!(matches!(tape.input(&[0.0; 5], Shape::new(2, 3)), Err(Error::Shape { op: "input", .. })));
    let w = params.alloc(Shape::new(2, 2), ParamKind::Weight).unwrap();
    let bias = params.alloc(Shape::row(2), ParamKind::Bias).unwrap();
    assert!(matches!(tape.affine(a, &params, w, bias), Err(Error::Shape { op: "affine weight", .. })));
    // backward needs a 1×1 loss
    assert!(matches!(tape.backward(a, &mut params), Err(Error::Shape { op: "backward", .. })));
}

#[test]
fn labels_out_of_range() {
    let mut s = HostStorage::new(1024, 16, 64, 4);
    let (mut tape, _) = s.split();
    let x = tape.input(&[0.0; 8], Shape::new(2, 4)).unwrap();
    assert_eq!(tape.softmax_cross_entropy(x, &[1, 4]), Err(Error::Label { row: 1, label: 4, classes: 4 }));
    assert_eq!(
        tape.softmax_cross_entropy(x, &[u32::MAX, 0]),
        Err(Error::Label { row: 0, label: u32::MAX as usize, classes: 4 })
    );
}

#[test]
fn foreign_handles() {
    let mut s = HostStorage::new(1024, 16, 64, 4);
    let (mut tape, mut params) = s.split();
    let x = tape.input(&[1.0], Shape::SCALAR).unwrap();
    tape.reset();
    assert_eq!(tape.relu(x), Err(Error::InvalidHandle { what: "var", index: 0 }));
    let mut other = HostStorage::new(64, 4, 64, 4);
    let (_, mut other_params) = other.split();
    let foreign = other_params.alloc(Shape::SCALAR, ParamKind::Weight).unwrap();
    assert_eq!(tape.param(&params, foreign), Err(Error::InvalidHandle { what: "param", index: 0 }));
    let _ = params.alloc(Shape::SCALAR, ParamKind::Weight).unwrap();
    let _: Var = tape.param(&params, foreign).unwrap(); // same index in this set: valid here
}

#[test]
fn non_finite_loss_leaves_params_unchanged() {
    let mut s = HostStorage::new(1024, 16, 64, 4);
    let (mut tape, mut params) = s.split();
    let w = params.alloc(Shape::row(2), ParamKind::Weight).unwrap();
    params.value_mut(w).unwrap().copy_from_slice(&[f32::INFINITY, 1.0]);
    params.grad_mut(w).unwrap().copy_from_slice(&[0.5, 0.5]);
    let v = tape.param(&params, w).unwrap();
    let neg = tape.scale(v, -1.0).unwrap();
    let both = tape.add(v, neg).unwrap(); // inf − inf = NaN
    let l = tape.sum(both).unwrap();
    assert_eq!(tape.backward(l, &mut params), Err(Error::NonFinite { what: "loss", index: 0 }));
    assert_eq!(params.grad(w).unwrap(), &[0.5, 0.5]);
}

#[test]
fn errors_display_their_facts() {
    let e = Error::Capacity { region: Region::TapeFloats, needed: 24, available: 20 };
    assert_eq!(e.to_string(), "not enough tape floats: need 24, have 20");
    let e = Error::Label { row: 1, label: 4, classes: 4 };
    assert_eq!(e.to_string(), "label 4 in row 1 is out of range for 4 classes");
}

/// Mistakes a first-time user makes with a model: the message says what is wrong and the fix,
/// not only the numbers.
#[test]
fn model_mistakes_point_at_the_fix() {
    use rand_core::SeedableRng;
    use staticgrad::{Layer, Model, Targets};
    const MODEL: Model = Model::new(2, &[Layer::dense(3), Layer::relu(), Layer::dense(2)]);
    let mut rng = rand_xoshiro::Xoshiro128PlusPlus::seed_from_u64(0);
    let mut s = HostStorage::new(256, 32, 64, 8);
    let (mut tape, mut params) = s.split();
    let x = [0.5, -0.5];
    let mut class = [0u32; 1];
    // Parameters never allocated for the model: every entry point says so and names the fix.
    let never = [
        MODEL.init(&mut params, &mut rng).unwrap_err(),
        MODEL.gradient(&mut tape, &mut params, &x, Targets::Labels(&[1]), &mut rng).unwrap_err(),
        MODEL.predict(&mut tape, &params, &x, &mut class).unwrap_err(),
    ];
    for e in never {
        let text = e.to_string();
        assert!(text.contains("never allocated") && text.contains("Model::alloc"), "{text}");
    }
    // Allocated for another model: the count, and the likely cause.
    const OTHER: Model = Model::new(2, &[Layer::dense(2)]);
    OTHER.alloc(&mut params).unwrap();
    let text = MODEL.init(&mut params, &mut rng).unwrap_err().to_string();
    assert!(text.contains("hold 2 tensors") && text.contains("another model"), "{text}");
    // An input that is not whole rows: its length and the row width.
    let (mut tape, mut params) = s.split();
    MODEL.alloc(&mut params).unwrap();
    let e = MODEL.predict(&mut tape, &params, &[1.0; 7], &mut class).unwrap_err();
    assert!(matches!(e, Error::Shape { op: "model input", .. }));
    assert_eq!(
        e.to_string(),
        "model input: 7 floats are not whole rows of 2 features (give a non-zero multiple of 2)"
    );
    assert!(
        MODEL.predict(&mut tape, &params, &[], &mut class).unwrap_err().to_string().contains(" 0 floats")
    );
    // Other shape errors keep the shapes.
    let e = Error::Shape { op: "mul", expected: Shape::new(2, 3), found: Shape::new(3, 2) };
    assert_eq!(e.to_string(), "mul: expected shape 2x3, found 3x2");
}

#[test]
fn gradients_only_where_needed_and_off_switch() {
    let mut s = HostStorage::new(64, 8, 8, 2);
    let (mut tape, mut params) = s.split();
    let p = params.alloc(Shape::row(3), ParamKind::Weight).unwrap();
    params.value_mut(p).unwrap().copy_from_slice(&[1.0, -2.0, 3.0]);
    let x = tape.input(&[1.0, 1.0, 1.0], Shape::row(3)).unwrap();
    assert_eq!(tape.grad(x), Err(Error::InvalidHandle { what: "var without gradient", index: 0 }));
    // With gradients off nothing downstream of the parameter gets one, and backward is a no-op.
    tape.set_grad_enabled(false);
    let v = tape.param(&params, p).unwrap();
    let y = tape.mul(v, x).unwrap();
    let l = tape.sum(y).unwrap();
    assert_eq!(tape.floats_used(), 3 + 3 + 3 + 1, "values only");
    tape.backward(l, &mut params).unwrap();
    assert_eq!(params.grad(p).unwrap(), &[0.0; 3]);
    assert!(tape.grad(v).is_err());
    // Back on: the same graph reserves and fills gradients.
    tape.reset();
    tape.set_grad_enabled(true);
    let x = tape.input(&[1.0, 2.0, 3.0], Shape::row(3)).unwrap();
    let v = tape.param(&params, p).unwrap();
    let y = tape.mul(v, x).unwrap();
    let l = tape.sum(y).unwrap();
    assert_eq!(tape.floats_used(), (3 + 3 + 3 + 1) + (3 + 3 + 1));
    tape.backward(l, &mut params).unwrap();
    assert_eq!(params.grad(p).unwrap(), &[1.0, 2.0, 3.0]);
    assert_eq!(tape.grad(y).unwrap(), &[1.0; 3]);
}
