//! XOR trains with the core alone and plain gradient descent written here: 2-4-1, tanh hidden
//! layer, sigmoid output, MSE, full batch of 4.

use staticgrad::{ParamKind, ParamStorage, Shape, TapeStorage};

#[test]
fn xor_trains_below_0_01() {
    let mut ps = ParamStorage::<32, 4>::new();
    let mut params = ps.params();
    let w1 = params.alloc(Shape::new(2, 4), ParamKind::Weight).unwrap();
    let b1 = params.alloc(Shape::row(4), ParamKind::Bias).unwrap();
    let w2 = params.alloc(Shape::new(4, 1), ParamKind::Weight).unwrap();
    let b2 = params.alloc(Shape::row(1), ParamKind::Bias).unwrap();
    params.value_mut(w1).unwrap().copy_from_slice(&[0.8, -0.6, 0.5, 0.3, -0.7, 0.9, 0.4, -0.2]);
    params.value_mut(w2).unwrap().copy_from_slice(&[0.6, -0.8, 0.7, 0.2]);

    let x = [0., 0., 0., 1., 1., 0., 1., 1.];
    let y = [0., 1., 1., 0.];
    let mut ts = TapeStorage::<128, 16>::new();
    let mut tape = ts.tape();
    let mut losses = Vec::new();
    for _ in 0..3000 {
        let xv = tape.input(&x, Shape::new(4, 2)).unwrap();
        let h = tape.affine(xv, &params, w1, b1).unwrap();
        let h = tape.tanh(h).unwrap();
        let o = tape.affine(h, &params, w2, b2).unwrap();
        let o = tape.sigmoid(o).unwrap();
        let t = tape.input(&y, Shape::new(4, 1)).unwrap();
        let loss = tape.mse(o, t).unwrap();
        losses.push(tape.scalar(loss).unwrap());
        params.zero_grad();
        tape.backward(loss, &mut params).unwrap();
        let (v, g, _) = params.split_mut();
        for (v, g) in v.iter_mut().zip(g.iter()) {
            *v -= 2.0 * g;
        }
        tape.reset();
    }
    let last = *losses.last().unwrap();
    eprintln!("XOR: loss {} -> {} after {} steps", losses[0], last, losses.len());
    assert!(losses[0] > 0.2, "starts untrained");
    assert!(last < 0.01, "final loss {last}");
    // And it really separates the four points.
    let xv = tape.input(&x, Shape::new(4, 2)).unwrap();
    let h = tape.affine(xv, &params, w1, b1).unwrap();
    let h = tape.tanh(h).unwrap();
    let o = tape.affine(h, &params, w2, b2).unwrap();
    let o = tape.sigmoid(o).unwrap();
    let pred: Vec<f32> = tape.value(o).unwrap().iter().map(|p| p.round()).collect();
    assert_eq!(pred, y);
}
