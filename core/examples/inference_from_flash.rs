//! Inference from weights kept in read-only memory: a `static` table of trained parameters (what
//! `staticgrad export --format rust` writes as `PARAMS`, here a hand-made XOR net so the example
//! stands alone), a `const` model, and `Model::predict` over buffers sized by the planner at
//! compile time. No training, no gradients, no heap, and no copy of the weights in RAM: they are
//! read in place from the `static` (flash on a device).
//!
//! ```sh
//! cargo run -p staticgrad --example inference_from_flash
//! ```
//!
//! RAM is the layer table and the evaluation tape, the numbers `Model::plan_inference` gives.

use staticgrad::{Layer, Model, Node, ParamEntry, Params, Tape};

/// 2 inputs, 2 ReLU units, 2 classes.
const MODEL: Model = Model::new(2, &[Layer::dense(2), Layer::relu(), Layer::dense(2)]);
/// Rows per call.
const ROWS: usize = 4;

/// The trained parameters in the model's `Params` order: dense 1 weight (2×2, row-major) and
/// bias, dense 2 weight (2×2) and bias. Unit 1 is `relu(a + b)`, unit 2 `relu(a + b − 1)`;
/// class 1 scores `h1 − 2·h2`, class 0 a constant 0.5, so class 1 wins exactly when `a xor b`.
static PARAMS: [f32; MODEL.param_len()] = [
    1.0, 1.0, 1.0, 1.0, // w1: input a → (h1, h2), input b → (h1, h2)
    0.0, -1.0, // b1
    0.0, 1.0, 0.0, -2.0, // w2: h1 → (class 0, class 1), h2 → (class 0, class 1)
    0.5, 0.0, // b2
];

fn main() -> Result<(), staticgrad::Error> {
    // Every size comes from the model at compile time.
    const PLAN: staticgrad::Plan = MODEL.plan_inference(ROWS);
    let mut table = [ParamEntry::EMPTY; PLAN.param_tensors];
    let mut floats = [0.0f32; PLAN.tape_floats];
    let mut nodes = [Node::EMPTY; PLAN.tape_nodes];
    println!("RAM for inference on {ROWS} rows: {} B", PLAN.total_bytes());

    // Every tensor laid out frozen, read in place from PARAMS, in the order it is written in.
    let mut params = Params::read_only(&PARAMS, &mut table);
    MODEL.alloc_read_only(&mut params)?;
    assert_eq!(params.len(), 0); // not one weight copied into RAM
    let mut tape = Tape::new(&mut floats, &mut nodes);

    let x = [0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0];
    let mut class = [0u32; ROWS];
    MODEL.predict(&mut tape, &params, &x, &mut class)?;
    for (row, c) in class.iter().enumerate() {
        println!("{} xor {} -> class {c}", x[2 * row], x[2 * row + 1]);
    }
    assert_eq!(class, [0, 1, 1, 0]);

    // A wrong input is an error that names the length, never a panic.
    let e = MODEL.predict(&mut tape, &params, &[1.0; 7], &mut class[..1]).unwrap_err();
    println!("7 floats for a 2-input model: {e}");
    Ok(())
}
