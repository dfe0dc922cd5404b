//! XOR on the tape: the core's lowest level, with no model description. Four parameter tensors
//! in a fixed-size `ParamStorage`, ops recorded on a `TapeStorage`, `backward`, and a plain
//! gradient-descent update written out by hand.
//!
//! ```sh
//! cargo run -p staticgrad --example xor
//! ```
//!
//! Everything lives in arrays of sizes known at compile time (they could be `static`s on a
//! microcontroller); every mistake — a shape that does not fit, a buffer too small — is an `Err`.

use staticgrad::{ParamKind, ParamStorage, Shape, TapeStorage};

fn main() -> Result<(), staticgrad::Error> {
    // 2-4-1: 8 + 4 + 4 + 1 = 17 parameter floats in 4 tensors (room for 32).
    let mut ps = ParamStorage::<32, 4>::new();
    let mut params = ps.params();
    let w1 = params.alloc(Shape::new(2, 4), ParamKind::Weight)?;
    let b1 = params.alloc(Shape::row(4), ParamKind::Bias)?;
    let w2 = params.alloc(Shape::new(4, 1), ParamKind::Weight)?;
    let b2 = params.alloc(Shape::row(1), ParamKind::Bias)?;
    // Asymmetric starting weights: equal ones would stay equal (every hidden unit the same).
    params.value_mut(w1)?.copy_from_slice(&[0.8, -0.6, 0.5, 0.3, -0.7, 0.9, 0.4, -0.2]);
    params.value_mut(w2)?.copy_from_slice(&[0.6, -0.8, 0.7, 0.2]);

    let x = [0., 0., 0., 1., 1., 0., 1., 1.];
    let y = [0., 1., 1., 0.];
    let mut ts = TapeStorage::<128, 16>::new(); // 128 tape floats, 16 op records
    let mut tape = ts.tape();
    let lr = 2.0;
    let mut loss_value = f32::NAN;
    for step in 0..3000 {
        let xv = tape.input(&x, Shape::new(4, 2))?;
        let h = tape.affine(xv, &params, w1, b1)?;
        let h = tape.tanh(h)?;
        let o = tape.affine(h, &params, w2, b2)?;
        let o = tape.sigmoid(o)?;
        let t = tape.input(&y, Shape::new(4, 1))?;
        let loss = tape.mse(o, t)?;
        loss_value = tape.scalar(loss)?;
        if step % 500 == 0 {
            println!("step {step:4}  loss {loss_value:.5}");
        }
        params.zero_grad();
        tape.backward(loss, &mut params)?;
        let (values, grads, _) = params.split_mut();
        for (v, g) in values.iter_mut().zip(grads.iter()) {
            *v -= lr * g;
        }
        tape.reset(); // O(1): the arena is rewound, the parameters stay
    }

    // One more forward pass to read the outputs.
    let xv = tape.input(&x, Shape::new(4, 2))?;
    let h = tape.affine(xv, &params, w1, b1)?;
    let h = tape.tanh(h)?;
    let o = tape.affine(h, &params, w2, b2)?;
    let o = tape.sigmoid(o)?;
    let out = tape.value(o)?;
    for (row, (&p, &want)) in out.iter().zip(&y).enumerate() {
        println!("{} xor {} = {p:.3} (want {want})", x[2 * row], x[2 * row + 1]);
    }
    println!("final loss {loss_value:.5}");
    assert!(loss_value < 0.01, "XOR did not train: loss {loss_value}");
    assert!(out.iter().zip(&y).all(|(p, t)| (p - t).abs() < 0.2), "outputs {out:?}");
    Ok(())
}
