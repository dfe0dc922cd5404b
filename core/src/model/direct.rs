//! The gradient of a tiny plain model without the tape's records: the graph is the layer list.
//!
//! On a network like XOR's 2-3-1 a product is a handful of multiply-adds, so recording nodes,
//! looking operands up and checking shapes per op costs more than the arithmetic. A list
//! `Dense (Activation Dense)*` has a fixed graph (`affine → activation → … → affine → loss`),
//! so [`StepPath::Direct`](super::StepPath::Direct) runs it straight through: forward, loss and
//! backward over the tape's floats as plain scratch, the same kernels and element functions as
//! the ops, the same additions in the same order — the same bits as the recorded path (a test
//! compares them). With a `const` model and batch the shapes are constants, so the small products
//! unroll.
//!
//! It needs no more storage than the recorded path, and refuses the same smaller storage: the
//! planner's numbers hold for both.

use super::{Activation, Example, LayerKind, Loss, Model, Targets};
use crate::error::{Error, Region, Result};
use crate::kernels::{self, View};
use crate::ops::softmax_cross_entropy::{self as sce, BOOK_EPS};
use crate::ops::{mse, relu, sigmoid, tanh};
use crate::params::{ParamEntry, ParamId, Params};
use crate::shape::Shape;
use crate::tape::Tape;
use core::ops::Range;

/// Element-wise forward of the hidden activation.
#[cfg_attr(not(debug_assertions), inline(always))]
fn activate(act: Activation, z: &[f32], a: &mut [f32]) {
    match act {
        Activation::Relu => kernels::map(z, a, relu::f),
        Activation::Sigmoid => kernels::map(z, a, sigmoid::f),
        Activation::Tanh => kernels::map(z, a, tanh::f),
    }
}

/// Element-wise backward of the hidden activation, onto a zeroed `dz`.
#[cfg_attr(not(debug_assertions), inline(always))]
fn activate_back(act: Activation, z: &[f32], a: &[f32], da: &[f32], dz: &mut [f32]) {
    dz.fill(0.0);
    match act {
        Activation::Relu => kernels::map_acc3(z, a, da, dz, relu::df),
        Activation::Sigmoid => kernels::map_acc3(z, a, da, dz, sigmoid::df),
        Activation::Tanh => kernels::map_acc3(z, a, da, dz, tanh::df),
    }
}

/// [`Model::gradient`] of a validated model whose [`step_path`](Model::step_path) is
/// [`Direct`](super::StepPath::Direct), on `x` of `rows` rows: writes every parameter gradient
/// and returns the data loss. Refuses what the recorded path refuses
/// (storage, shapes, labels, a non-finite loss) before any gradient is written.
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn gradient(
    spec: &Model,
    tape: &mut Tape<'_>,
    params: &mut Params,
    x: impl Example,
    rows: usize,
    targets: Targets,
) -> Result<f32> {
    let arena = tape.scratch_arena(spec.tape_floats(rows), spec.tape_nodes())?;
    // An example written in place takes the arena's tail: the recorded path's input node is
    // counted in `tape_floats`, and this path's scratch is that less the input.
    let (arena, x) = x.place(arena, spec.inputs())?;
    spec.check_layout(params)?;
    if params.is_fused() {
        // No gradient buffer to write (as `Tape::backward` says).
        let needed = params.len();
        return Err(Error::Capacity { region: Region::ParamGrads, needed, available: 0 });
    }
    let (layers, outs) = (spec.dense_layers(), spec.outputs());
    let act_out = rows * outs;
    match (spec.loss, targets) {
        (Loss::Mse, Targets::Values(t)) if t.len() != act_out => {
            let expected = Shape::new(rows, outs);
            return Err(Error::Shape { op: "input", expected, found: Shape::new(1, t.len()) });
        }
        (Loss::Mse, Targets::Values(_)) => {}
        (Loss::SoftmaxCrossEntropy | Loss::SoftmaxCrossEntropyBook, Targets::Labels(t)) => {
            sce::check_labels(t, rows, outs)?
        }
        _ => {
            return Err(Error::InvalidArgument {
                what: "targets do not fit the loss (labels for cross-entropy, values for MSE)",
                value: 0.0,
            });
        }
    }
    let (values, grads, table) = params.split_mut();
    let mut net = Net { spec, rows, x, arena, values, grads, table };
    net.forward_all();
    let loss = net.loss(targets)?;
    for l in 4..layers {
        net.backward(layers + 3 - l); // layers − 1 … 4
    }
    if layers > 3 {
        net.backward(3);
    }
    if layers > 2 {
        net.backward(2);
    }
    if layers > 1 {
        net.backward(1);
    }
    net.backward(0);
    Ok(loss)
}

/// Eval-mode logits (the same as train mode: a plain list has no batch norm or dropout) of `x`,
/// `rows` rows, into `out` (`rows × outputs`), by the training step's own forward, for a
/// validated model whose step path at `rows` is [`Direct`](super::StepPath::Direct). Uses the
/// tape as scratch and leaves it reset. [`Error::Capacity`] if the tape is too small for this
/// forward: it needs no more than a training step of `rows` rows (more than a recorded
/// evaluation of them).
// Out of line: a firmware evaluates in more than one place; with a `const` model every call
// passes the same constant model, which the optimizer propagates into this one copy.
#[inline(never)]
pub(crate) fn logits(
    spec: &Model,
    tape: &mut Tape<'_>,
    params: &Params,
    x: &[f32],
    rows: usize,
    out: &mut [f32],
) -> Result<()> {
    let at = logits_offset(spec, rows);
    let arena = tape.scratch_arena(at.saturating_add(rows.saturating_mul(spec.outputs())), 0)?;
    logits_in(spec, arena, params, x, rows, out, at)
}

/// [`logits`] of an example written in place ([`Example`]): it takes the arena's tail, after the
/// logits (still less than a training step's tape, which counts the input node). Generic, so
/// compiled where it is used; the slice's `logits` stays one copy in this crate.
pub(crate) fn logits_with(
    spec: &Model,
    tape: &mut Tape<'_>,
    params: &Params,
    x: impl Example,
    rows: usize,
    out: &mut [f32],
) -> Result<()> {
    let at = logits_offset(spec, rows);
    let floats = at.saturating_add(rows.saturating_mul(spec.outputs()));
    let arena = tape.scratch_arena(floats.saturating_add(x.arena_floats(spec.inputs())), 0)?;
    let (arena, x) = x.place(arena, spec.inputs())?;
    logits_in(spec, arena, params, x, rows, out, at)
}

/// Where the logits start in the arena as `Net` lays it out: after a block per hidden layer.
#[cfg_attr(not(debug_assertions), inline(always))]
fn logits_offset(spec: &Model, rows: usize) -> usize {
    let mut at = 0usize;
    for l in 0..spec.dense_layers().saturating_sub(1) {
        let units = spec.dense_at(l).map_or(0, |d| d.units);
        at = at.saturating_add(rows.saturating_mul(units).saturating_mul(4));
    }
    at
}

/// [`logits`] on an arena that holds the forward; the logits start at `at`.
#[cfg_attr(not(debug_assertions), inline(always))]
fn logits_in(
    spec: &Model,
    arena: &mut [f32],
    params: &Params,
    x: &[f32],
    rows: usize,
    out: &mut [f32],
    at: usize,
) -> Result<()> {
    spec.check_layout(params)?;
    let expected = Shape::new(rows, spec.outputs());
    if out.len() != expected.len() {
        return Err(Error::Shape { op: "logits output", expected, found: Shape::row(out.len()) });
    }
    let mut net =
        Net { spec, rows, x, arena, values: params.values(), grads: &mut [], table: params.entries() };
    net.forward_all();
    out.copy_from_slice(net.arena.get(at..at + out.len()).unwrap_or_default());
    Ok(())
}

/// One step's operands: the arena holds, per hidden dense layer, a block `[z | a | da | dz]` (affine
/// output, activation, and their gradients), then `[logits | dlogits | probs]`.
struct Net<'a, 's> {
    spec: &'a Model<'s>,
    rows: usize,
    x: &'a [f32],
    arena: &'a mut [f32],
    values: &'a [f32],
    grads: &'a mut [f32],
    table: &'a [ParamEntry],
}

impl Net<'_, '_> {
    /// Arena offset of layer `l`'s block.
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn block(&self, l: usize) -> usize {
        let mut off = 0;
        for j in 0..l {
            off += 4 * self.rows * self.widths(j).1;
        }
        off
    }

    /// The activation after dense layer `l` (the next layer of a plain list; never past the end
    /// for a hidden layer).
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn activation(&self, l: usize) -> Activation {
        let next = self.spec.dense_at(l).and_then(|d| self.spec.layer(d.index + 1));
        match next.map(|layer| layer.kind()) {
            Some(LayerKind::Activation(a)) => a,
            _ => Activation::Relu,
        }
    }

    /// Flat range of parameter tensor `id` (empty for none: never, for a layer index).
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn range(&self, id: Option<ParamId>) -> Range<usize> {
        id.and_then(|id| self.table.get(id.index())).map(|e| e.range()).unwrap_or_default()
    }

    /// `(in, out)` widths of dense layer `l` (0 past the end: never, for a layer index).
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn widths(&self, l: usize) -> (usize, usize) {
        self.spec.dense_at(l).map(|d| (d.inputs, d.units)).unwrap_or_default()
    }

    /// The forward of every layer, the logits last.
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn forward_all(&mut self) {
        let layers = self.spec.dense_layers();
        // Written out for the first four layers, so that with a `const` model each call's layer
        // index, and so every shape in its products, is a constant: they unroll. Deeper nets loop.
        self.forward(0); // a validated spec has a layer
        if layers > 1 {
            self.forward(1);
        }
        if layers > 2 {
            self.forward(2);
        }
        if layers > 3 {
            self.forward(3);
        }
        for l in 4..layers {
            self.forward(l);
        }
    }

    /// Layer `l`'s input: the data or the previous activation.
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn forward(&mut self, l: usize) {
        let (k, n) = self.widths(l);
        let (off, act, rows) = (self.block(l), self.rows * n, self.rows);
        let (w, b) = (self.range(self.spec.weight(l)), self.range(self.spec.bias(l)));
        let activation = self.activation(l);
        let (lo, hi) = self.arena.split_at_mut(off.min(self.arena.len()));
        let input =
            if l == 0 { self.x } else { lo.get(off - 3 * rows * k..off - 2 * rows * k).unwrap_or_default() };
        let (z, rest) = hi.split_at_mut(act.min(hi.len()));
        let (w, b) = (self.values.get(w).unwrap_or_default(), self.values.get(b).unwrap_or_default());
        // z = input·W + b, then a = f(z) but for the last layer.
        kernels::gemm_direct(
            rows,
            n,
            k,
            View { data: input, rs: k, cs: 1 },
            View { data: w, rs: n, cs: 1 },
            z,
        );
        for row in z.chunks_exact_mut(n.max(1)) {
            for (o, &bv) in row.iter_mut().zip(b) {
                *o += bv;
            }
        }
        if l + 1 < self.spec.dense_layers() {
            activate(activation, z, rest.get_mut(..act).unwrap_or_default());
        }
    }

    /// The loss of the logits, and its gradient into `dlogits` (as the loss ops' backward for an
    /// upstream 1.0 onto a zeroed gradient). A non-finite loss is refused here, before any
    /// parameter gradient is written.
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn loss(&mut self, targets: Targets) -> Result<f32> {
        let (outs, spec) = (self.spec.outputs(), self.spec);
        let (last, act) = (self.block(spec.dense_layers() - 1), self.rows * outs);
        let (lo, hi) = self.arena.split_at_mut((last + act).min(self.arena.len()));
        let logits = lo.get(last..).unwrap_or_default();
        let (dlogits, probs) = hi.split_at_mut(act.min(hi.len()));
        let loss = match targets {
            Targets::Values(t) => mse::value(logits, t),
            Targets::Labels(t) => {
                let eps = if spec.loss == Loss::SoftmaxCrossEntropyBook { Some(BOOK_EPS) } else { None };
                sce::forward(logits, t, probs, outs, eps)
            }
        };
        if !loss.is_finite() {
            return Err(Error::NonFinite { what: "loss", index: 0 });
        }
        dlogits.fill(0.0);
        match targets {
            Targets::Values(t) => mse::backward_pred(logits, t, 1.0, dlogits),
            Targets::Labels(_) => {
                for (d, &p) in dlogits.iter_mut().zip(probs.iter()) {
                    *d += 1.0 * p;
                }
            }
        }
        Ok(loss)
    }

    /// Layer `l`'s backward: its output gradient `dy` (the activation's backward first, for a
    /// hidden layer), then `dW`, `db` and, above the first layer, the input gradient.
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn backward(&mut self, l: usize) {
        let (k, n) = self.widths(l);
        let (off, act, rows) = (self.block(l), self.rows * n, self.rows);
        let (w, b) = (self.range(self.spec.weight(l)), self.range(self.spec.bias(l)));
        let activation = self.activation(l);
        let (lo, hi) = self.arena.split_at_mut(off.min(self.arena.len()));
        let dy: &[f32] = if l + 1 == self.spec.dense_layers() {
            hi.get(act..2 * act).unwrap_or_default()
        } else {
            let (zad, dz) = hi.split_at_mut((3 * act).min(hi.len()));
            let (za, da) = zad.split_at((2 * act).min(zad.len()));
            let (z, a) = za.split_at(act.min(za.len()));
            let dz = dz.get_mut(..act).unwrap_or_default();
            activate_back(activation, z, a, da, dz);
            dz
        };
        if let Some(gw) = self.grads.get_mut(w.clone()) {
            // dW = xᵀ·dy: element (p, j) sums x(i, p)·dy(i, j) over the rows i.
            let input = if l == 0 {
                self.x
            } else {
                lo.get(off - 3 * rows * k..off - 2 * rows * k).unwrap_or_default()
            };
            kernels::gemm_direct(
                k,
                n,
                rows,
                View { data: input, rs: 1, cs: k },
                View { data: dy, rs: n, cs: 1 },
                gw,
            );
        }
        if let Some(gb) = self.grads.get_mut(b) {
            // db = Σ_rows dy, from 0.0.
            let one = View { data: &[1.0], rs: 0, cs: 0 }; // 1.0·dy is dy, exactly
            kernels::gemm_small(1, n, rows, one, View { data: dy, rs: n, cs: 1 }, gb);
        }
        if l > 0 {
            // dx = dy·Wᵀ: element (i, p) sums dy(i, j)·W(p, j) over j.
            let w = self.values.get(w).unwrap_or_default();
            let da_prev = lo.get_mut(off - 2 * rows * k..off - rows * k).unwrap_or_default();
            kernels::gemm_direct(
                rows,
                k,
                n,
                View { data: dy, rs: n, cs: 1 },
                View { data: w, rs: 1, cs: n },
                da_prev,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Layer, MlpSpec, NoDraws, StepPath};
    use crate::testutil::random_values;
    use crate::{Node, ParamEntry};
    use std::vec;
    use std::vec::Vec;

    /// Loss and gradient bits of one step, by the direct path or the recorded one.
    fn run(spec: &Model, x: &[f32], targets: Targets, direct: bool) -> Result<(u32, Vec<u32>)> {
        let rows = spec.rows(x)?;
        let (mut pv, mut pg) = (vec![0.0; spec.param_len()], vec![f32::NAN; spec.param_len()]);
        let mut table = vec![ParamEntry::EMPTY; spec.param_tensors()];
        let mut params = Params::new(&mut pv, &mut pg, &mut table);
        spec.alloc(&mut params)?;
        let n = params.len();
        // Some exact zeros of both signs among the weights: -0.0 must stay -0.0 where it does.
        let mut w = random_values(n, 0.0, 11);
        w[0] = -0.0;
        w[n - 1] = 0.0;
        params.values_mut().copy_from_slice(&w);
        let (mut floats, mut nodes) =
            (vec![0.0; spec.tape_floats(rows)], vec![Node::EMPTY; spec.tape_nodes()]);
        let mut tape = Tape::new(&mut floats, &mut nodes);
        let path = if direct { StepPath::Direct } else { StepPath::Recorded };
        let loss = spec.gradient_on(path, &mut tape, &mut params, x, rows, targets, &mut NoDraws)?;
        Ok((loss.to_bits(), params.grads().iter().map(|g| g.to_bits()).collect()))
    }

    #[test]
    fn same_bits_as_the_recorded_path() {
        let acts = [Activation::Relu, Activation::Sigmoid, Activation::Tanh];
        let losses = [Loss::Mse, Loss::SoftmaxCrossEntropy, Loss::SoftmaxCrossEntropyBook];
        let shapes: [&[usize]; 4] = [&[2, 3, 1], &[2, 8, 2], &[3, 4, 5, 3], &[5, 2]];
        for widths in shapes {
            for act in acts {
                for loss in losses {
                    for rows in [1, 3, 4] {
                        let spec = MlpSpec::new(widths).with_activation(act).with_loss(loss).model();
                        let x = random_values(rows * spec.inputs(), 0.0, 5);
                        let values = random_values(rows * spec.outputs(), 0.0, 6);
                        let labels: Vec<u32> = (0..rows as u32).map(|i| i % spec.outputs() as u32).collect();
                        let t = match loss {
                            Loss::Mse => Targets::Values(&values),
                            _ => Targets::Labels(&labels),
                        };
                        let (a, b) = (run(&spec, &x, t, true).unwrap(), run(&spec, &x, t, false).unwrap());
                        assert_eq!(a, b, "{widths:?} {act:?} {loss:?} rows {rows}");
                    }
                }
            }
        }
    }

    #[test]
    fn refuses_what_the_recorded_path_refuses() {
        let spec = MlpSpec::new(&[2, 3, 2]).model();
        let x = [0.5, -1.0, 2.0, 0.0];
        // A label out of range, the wrong kind of targets, a ragged input, a NaN input.
        assert!(matches!(run(&spec, &x, Targets::Labels(&[0, 2]), true), Err(Error::Label { row: 1, .. })));
        assert!(matches!(
            run(&spec, &x, Targets::Values(&[0.0; 4]), true),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(run(&spec, &x[..3], Targets::Labels(&[0]), true), Err(Error::Shape { .. })));
        let nan = [f32::NAN, 0.0, 1.0, 1.0];
        assert!(matches!(run(&spec, &nan, Targets::Labels(&[0, 1]), true), Err(Error::NonFinite { .. })));
        let mse = MlpSpec::new(&[2, 3, 2]).with_loss(Loss::Mse).model();
        assert!(matches!(run(&mse, &x, Targets::Values(&[0.0; 3]), true), Err(Error::Shape { .. })));
        // One float or one node less than the planner's numbers.
        let mut pv = vec![0.0; spec.param_len()];
        let mut pg = vec![0.0; spec.param_len()];
        let mut table = vec![ParamEntry::EMPTY; spec.param_tensors()];
        let mut params = Params::new(&mut pv, &mut pg, &mut table);
        spec.alloc(&mut params).unwrap();
        for (f, n) in
            [(spec.tape_floats(2) - 1, spec.tape_nodes()), (spec.tape_floats(2), spec.tape_nodes() - 1)]
        {
            let (mut floats, mut nodes) = (vec![0.0; f], vec![Node::EMPTY; n]);
            let mut tape = Tape::new(&mut floats, &mut nodes);
            let got = gradient(&spec, &mut tape, &mut params, &x[..], 2, Targets::Labels(&[0, 1]));
            assert!(matches!(got, Err(Error::Capacity { .. })), "{f} {n}");
        }
        // A parameter set without a gradient buffer (made for the fused update).
        let mut pv = vec![0.0; spec.param_len()];
        let mut row = vec![0.0; spec.fused_grad_floats()];
        let mut table = vec![ParamEntry::EMPTY; spec.param_tensors()];
        let mut params = Params::fused(&mut pv, &mut row, &mut table);
        spec.alloc(&mut params).unwrap();
        let (mut floats, mut nodes) = (vec![0.0; spec.tape_floats(2)], vec![Node::EMPTY; spec.tape_nodes()]);
        let mut tape = Tape::new(&mut floats, &mut nodes);
        let got = gradient(&spec, &mut tape, &mut params, &x[..], 2, Targets::Labels(&[0, 1]));
        assert!(matches!(got, Err(Error::Capacity { region: Region::ParamGrads, .. })));
        // Parameters of another spec.
        let other = MlpSpec::new(&[2, 2, 2]).model();
        let mut pv = vec![0.0; other.param_len()];
        let mut pg = vec![0.0; other.param_len()];
        let mut table = vec![ParamEntry::EMPTY; other.param_tensors()];
        let mut params = Params::new(&mut pv, &mut pg, &mut table);
        other.alloc(&mut params).unwrap();
        let (mut floats, mut nodes) = (vec![0.0; spec.tape_floats(2)], vec![Node::EMPTY; spec.tape_nodes()]);
        let mut tape = Tape::new(&mut floats, &mut nodes);
        let got = gradient(&spec, &mut tape, &mut params, &x[..], 2, Targets::Labels(&[0, 1]));
        assert!(matches!(got, Err(Error::Shape { .. })));
    }

    #[test]
    fn per_layer_activations_same_bits_as_the_recorded_path() {
        // PyTorch's Linear → ReLU → Linear → Sigmoid → Linear, and a deeper mix.
        let a = [Layer::dense(4), Layer::relu(), Layer::dense(3), Layer::sigmoid(), Layer::dense(2)];
        let b = [
            Layer::dense(3),
            Layer::tanh(),
            Layer::dense(3),
            Layer::relu(),
            Layer::dense(2),
            Layer::sigmoid(),
            Layer::dense(3),
        ];
        for (layers, loss) in [(&a[..], Loss::SoftmaxCrossEntropy), (&b[..], Loss::Mse)] {
            let spec = Model::new(3, layers).with_loss(loss);
            for rows in [1, 4] {
                assert_eq!(spec.step_path(rows, false), StepPath::Direct);
                let x = random_values(rows * 3, 0.0, 5);
                let values = random_values(rows * spec.outputs(), 0.0, 6);
                let labels: Vec<u32> = (0..rows as u32).map(|i| i % 2).collect();
                let t = if loss == Loss::Mse { Targets::Values(&values) } else { Targets::Labels(&labels) };
                assert_eq!(
                    run(&spec, &x, t, true).unwrap(),
                    run(&spec, &x, t, false).unwrap(),
                    "{layers:?} rows {rows}"
                );
            }
        }
    }

    #[test]
    fn logits_same_bits_as_the_recorded_evaluation() {
        let deep = [Layer::dense(3), Layer::tanh(), Layer::dense(3), Layer::relu(), Layer::dense(2)];
        let specs = [
            MlpSpec::new(&[2, 3, 1]).with_activation(Activation::Sigmoid).model(),
            MlpSpec::new(&[3, 4, 5, 3]).model(),
            Model::new(3, &deep),
        ];
        for spec in specs {
            for rows in [1, 4] {
                assert_eq!(spec.step_path(rows, false), StepPath::Direct);
                let mut pv = random_values(spec.param_len(), 0.0, 9);
                pv[0] = -0.0;
                let mut pg = vec![0.0; spec.param_len()];
                let mut table = vec![ParamEntry::EMPTY; spec.param_tensors()];
                let mut params = Params::new(&mut pv, &mut pg, &mut table);
                spec.alloc(&mut params).unwrap();
                let x = random_values(rows * spec.inputs(), 0.0, 4);
                let (mut floats, mut nodes) =
                    (vec![f32::NAN; spec.tape_floats(rows)], vec![Node::EMPTY; spec.tape_nodes()]);
                let mut tape = Tape::new(&mut floats, &mut nodes);
                let y = spec.logits(&mut tape, &params, &x).unwrap();
                let want: Vec<u32> = tape.value(y).unwrap().iter().map(|v| v.to_bits()).collect();
                let mut out = vec![f32::NAN; rows * spec.outputs()];
                logits(&spec, &mut tape, &params, &x[..], rows, &mut out).unwrap();
                assert_eq!(out.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want, "{spec:?} {rows}");
                assert_eq!(tape.nodes_used(), 0, "left reset");
                // A wrong output length, and a tape too small for this forward.
                let e = logits(&spec, &mut tape, &params, &x[..], rows, &mut out[1..]).unwrap_err();
                assert!(matches!(e, Error::Shape { op: "logits output", .. }), "{e:?}");
                let mut small = vec![0.0; rows * spec.outputs()];
                let mut tape = Tape::new(&mut small, &mut nodes);
                let e = logits(&spec, &mut tape, &params, &x[..], rows, &mut out).unwrap_err();
                assert!(matches!(e, Error::Capacity { region: Region::TapeFloats, .. }), "{e:?}");
            }
        }
    }

    #[test]
    fn which_models_take_it() {
        let plain = MlpSpec::new(&[2, 3, 1]).model();
        assert_eq!(plain.step_path(4, false), StepPath::Direct);
        let dropout = MlpSpec::new(&[2, 3, 1]).with_dropout(crate::Dropout::inverted(0.5)).model();
        assert_ne!(dropout.step_path(4, false), StepPath::Direct);
        let bn = MlpSpec::new(&[2, 3, 1]).with_batch_norm(crate::BatchNormConfig::BOOK).model();
        assert_ne!(bn.step_path(4, false), StepPath::Direct);
        assert_ne!(MlpSpec::new(&[2, 1024, 1]).model().step_path(4, false), StepPath::Direct);
        // A list that is not `Dense (Activation Dense)*`: two activations, or a trailing one.
        let two = [Layer::dense(3), Layer::relu(), Layer::tanh(), Layer::dense(1)];
        assert_ne!(Model::new(2, &two).step_path(1, false), StepPath::Direct);
        let trailing = [Layer::dense(3), Layer::relu(), Layer::dense(1), Layer::sigmoid()];
        assert_ne!(Model::new(2, &trailing).step_path(1, false), StepPath::Direct);
        let list = [Layer::dense(3), Layer::sigmoid(), Layer::dense(1)];
        assert_eq!(Model::new(2, &list).step_path(4, false), StepPath::Direct);
    }
}
