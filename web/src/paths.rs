//! Panel 1: the six update rules on f(x, y) = x²/20 + y², as `staticgrad experiment
//! optimizers-2d` runs them (`std-runner/src/experiments/optimizers_2d.rs`, `path_from`): a
//! two-float parameter, the gradient (x/10, 2y) written into it, one `Optimizer::step` per update.

use staticgrad::{Optimizer, ParamKind, ParamStorage, Shape};

/// The rules in the runner's order (its `CASES`): SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam.
pub const RULES: [Optimizer; 6] = [
    Optimizer::sgd(),
    Optimizer::momentum(),
    Optimizer::nesterov(),
    Optimizer::adagrad(),
    Optimizer::rmsprop(),
    Optimizer::adam(),
];

/// `steps + 1` points of one rule from `start`: the start, then the point after each update.
pub fn path(opt: Optimizer, lr: f32, start: (f32, f32), steps: usize) -> staticgrad::Result<Vec<(f32, f32)>> {
    let mut ps = ParamStorage::<2, 1>::new();
    let mut params = ps.params();
    let p = params.alloc(Shape::row(2), ParamKind::Weight)?;
    params.value_mut(p)?.copy_from_slice(&[start.0, start.1]);
    let mut state = vec![0.0f32; opt.state_len(2)];
    let mut out = Vec::with_capacity(steps + 1);
    for _ in 0..steps {
        let (x, y) = (params.value(p)?[0], params.value(p)?[1]);
        out.push((x, y));
        params.grad_mut(p)?.copy_from_slice(&[x / 10.0, 2.0 * y]);
        opt.step(&mut params, &mut state, lr)?;
    }
    out.push((params.value(p)?[0], params.value(p)?[1]));
    Ok(out)
}

/// The paths of the six rules, each with its learning rate, from `(x, y)`: the output is
/// `6 × (steps + 1)` points, `x, y` as little-endian `f32`, rule after rule in [`RULES`] order.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn sg_paths(
    steps: u32,
    x: f32,
    y: f32,
    lr0: f32,
    lr1: f32,
    lr2: f32,
    lr3: f32,
    lr4: f32,
    lr5: f32,
) -> i32 {
    let lrs = [lr0, lr1, lr2, lr3, lr4, lr5];
    let run = || {
        if steps > 100_000 {
            return Err(staticgrad::Error::InvalidArgument {
                what: "steps (at most 100000)",
                value: steps as f32,
            });
        }
        let mut all = Vec::new();
        for (opt, &lr) in RULES.iter().zip(&lrs) {
            for (px, py) in path(*opt, lr, (x, y), steps as usize)? {
                all.extend([px, py]);
            }
        }
        Ok(all)
    };
    crate::finish(run(), f32::to_le_bytes)
}
