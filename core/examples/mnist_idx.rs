//! MNIST from IDX files through a model description: read the standard IDX files (plain or
//! gzip), describe the network as a `const Model` (a list of layers), let the planner size every
//! buffer, train with Adam and score held-out images.
//!
//! ```sh
//! cargo run -p staticgrad --release --example mnist_idx                 # the bundled 10,000 images
//! cargo run -p staticgrad --release --example mnist_idx -- ~/mnist 3    # another folder, 3 epochs
//! ```
//!
//! The folder holds `train-images-idx3-ubyte` and `train-labels-idx1-ubyte` (each plain or
//! `.gz`); the default is the subset bundled with the repository (`std-runner/data/mnist-10k`).
//! The last tenth of the records is held out. On a host the buffers are `Vec`s; a firmware
//! makes the same `Memory` from `static`s of the same `PLAN` sizes.

use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro128PlusPlus;
use staticgrad::{Layer, Memory, Model, Node, Optimizer, ParamEntry, Plan, Targets, Trainer};
use std::io::Read;
use std::path::{Path, PathBuf};

/// 784 pixels → 100 ReLU units → 10 classes (He-normal init, softmax cross-entropy).
const MODEL: Model = Model::new(784, &[Layer::dense(100), Layer::relu(), Layer::dense(10)]);
const BATCH: usize = 100;
const OPT: Optimizer = Optimizer::adam();
/// Every buffer's size, computed at compile time.
const PLAN: Plan = MODEL.plan(BATCH, &OPT);

type Error = Box<dyn std::error::Error>;

/// The file's bytes, gunzipped if they start with the gzip magic.
fn read_maybe_gz(dir: &Path, name: &str) -> Result<Vec<u8>, Error> {
    let (plain, gz) = (dir.join(name), dir.join(format!("{name}.gz")));
    let path = if plain.exists() { plain } else { gz };
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&bytes[..]).read_to_end(&mut out)?;
        return Ok(out);
    }
    Ok(bytes)
}

/// An IDX file of unsigned bytes: checks the magic (`0x0000_08NN`, NN dimensions) and the
/// length, returns the dimensions and the data.
fn idx(bytes: &[u8], dims: usize) -> Result<(Vec<usize>, &[u8]), Error> {
    let be32 = |i: usize| -> Result<usize, Error> {
        let b = bytes.get(i..i + 4).ok_or("IDX header cut short")?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    if be32(0)? != 0x0800 + dims {
        return Err(format!("IDX magic {:#010x}, expected {:#010x}", be32(0)?, 0x0800 + dims).into());
    }
    let shape = (0..dims).map(|d| be32(4 + 4 * d)).collect::<Result<Vec<_>, _>>()?;
    let data = &bytes[4 + 4 * dims..];
    if data.len() != shape.iter().product::<usize>() {
        return Err(format!("IDX body of {} bytes, the header says {shape:?}", data.len()).into());
    }
    Ok((shape, data))
}

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../std-runner/data/mnist-10k")),
        PathBuf::from,
    );
    let epochs: usize = args.next().map_or(Ok(2), |e| e.parse())?;

    let images = read_maybe_gz(&dir, "train-images-idx3-ubyte")?;
    let labels = read_maybe_gz(&dir, "train-labels-idx1-ubyte")?;
    let (shape, pixels) = idx(&images, 3)?;
    let (lshape, labels) = idx(&labels, 1)?;
    if shape[1] * shape[2] != MODEL.inputs() || lshape[0] != shape[0] {
        return Err(format!("images {shape:?} and labels {lshape:?} do not fit a 784-input model").into());
    }
    let x: Vec<f32> = pixels.iter().map(|&p| f32::from(p) / 255.0).collect();
    let y: Vec<u32> = labels.iter().map(|&l| u32::from(l)).collect();
    let n = y.len();
    let train_n = n - n / 10;
    println!("{}: {n} images, {train_n} to train, {} held out", dir.display(), n - train_n);

    // The planner's numbers, then the buffers (the core never allocates).
    println!(
        "plan for batch {BATCH}, Adam: {} parameter floats, {} state floats, {} tape floats, {} tape nodes ({} KiB in all)",
        PLAN.param_floats,
        PLAN.state_floats,
        PLAN.tape_floats,
        PLAN.tape_nodes,
        PLAN.total_bytes() / 1024
    );
    let (mut values, mut grads) = (vec![0.0f32; PLAN.param_floats], vec![0.0f32; PLAN.grad_floats]);
    let mut table = vec![ParamEntry::EMPTY; PLAN.param_tensors];
    let (mut state, mut floats) = (vec![0.0f32; PLAN.state_floats], vec![0.0f32; PLAN.tape_floats]);
    let mut nodes = vec![Node::EMPTY; PLAN.tape_nodes];
    let memory = Memory {
        values: &mut values,
        grads: &mut grads,
        table: &mut table,
        state: &mut state,
        floats: &mut floats,
        nodes: &mut nodes,
        frozen: &[],
    };
    let mut trainer = Trainer::new(&MODEL, &OPT, BATCH, memory)?;
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(7);
    trainer.init(&mut rng)?;

    let (test_x, test_y) = (&x[train_n * 784..], &y[train_n..]);
    let mut order: Vec<usize> = (0..train_n).collect();
    let (mut bx, mut by) = (vec![0.0f32; BATCH * 784], vec![0u32; BATCH]);
    for epoch in 1..=epochs {
        // A fresh shuffle each epoch (Fisher-Yates on the seeded generator).
        for i in (1..order.len()).rev() {
            order.swap(i, rng.next_u32() as usize % (i + 1));
        }
        let mut loss = 0.0;
        let batches = train_n / BATCH;
        for b in 0..batches {
            for (k, &i) in order[b * BATCH..(b + 1) * BATCH].iter().enumerate() {
                bx[k * 784..(k + 1) * 784].copy_from_slice(&x[i * 784..(i + 1) * 784]);
                by[k] = y[i];
            }
            loss += trainer.step(&bx, Targets::Labels(&by), 0.001, &mut rng)?;
        }
        let correct = trainer.correct(test_x, test_y, BATCH)?;
        println!(
            "epoch {epoch}: mean loss {:.4}, held-out accuracy {:.4} ({correct} of {})",
            loss / batches as f32,
            correct as f32 / test_y.len() as f32,
            test_y.len()
        );
    }
    let accuracy = trainer.correct(test_x, test_y, BATCH)? as f32 / test_y.len() as f32;
    assert!(epochs == 0 || accuracy > 0.85, "held-out accuracy {accuracy}");
    Ok(())
}
