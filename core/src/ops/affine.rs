//! Affine layer: `y = x·W + b` with `W` and `b` read in place from the parameter store.
//! Backward: `dx += dy·Wᵀ` (skipped when nothing upstream needs it, e.g. the first layer's data),
//! `dW += xᵀ·dy`, `db += Σ_rows dy`.

use crate::error::{Error, Region, Result};
use crate::fused::{FusedChunk, FusedUpdate};
use crate::kernels::{self, Dims, Rows};
use crate::parallel::Par;
use crate::params::{ParamId, Params};
use crate::shape::Shape;
use crate::tape::{Grads, Node, NodeIndex, Op, Tape, Var};

impl Tape<'_> {
    /// `x · W + b` for `x: batch×in`, `W: in×out`, `b: 1×out`.
    pub fn affine(&mut self, x: Var, params: &Params, w: ParamId, b: ParamId) -> Result<Var> {
        let y = self.affine_rows(self.check(x)?, params, w, b, Rows::Any)?;
        Ok(self.var(y))
    }

    /// [`affine`](Self::affine) of node `x` (the core's own recording path) with the caller's [`Rows`] hint: one function per hint (not
    /// generic, so each exists once in a program), and a hint that is a constant once inlined
    /// keeps one of them.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn affine_rows(
        &mut self,
        x: NodeIndex,
        params: &Params,
        w: ParamId,
        b: ParamId,
        rows: Rows,
    ) -> Result<NodeIndex> {
        match rows {
            Rows::One => self.affine_one(x, params, w, b),
            Rows::Any => self.affine_any(x, params, w, b),
        }
    }

    fn affine_one(&mut self, x: NodeIndex, params: &Params, w: ParamId, b: ParamId) -> Result<NodeIndex> {
        self.affine_body(x, params, w, b, Rows::One)
    }

    fn affine_any(&mut self, x: NodeIndex, params: &Params, w: ParamId, b: ParamId) -> Result<NodeIndex> {
        self.affine_body(x, params, w, b, Rows::Any)
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    fn affine_body(
        &mut self,
        x: NodeIndex,
        params: &Params,
        w: ParamId,
        b: ParamId,
        rows: Rows,
    ) -> Result<NodeIndex> {
        let xn = self.node_at(x)?;
        let (we, be) = (params.entry(w)?, params.entry(b)?);
        if we.shape.rows != xn.shape.cols {
            return Err(Error::Shape {
                op: "affine weight",
                expected: Shape::new(xn.shape.cols, we.shape.cols),
                found: we.shape,
            });
        }
        if be.shape != Shape::row(we.shape.cols) {
            return Err(Error::Shape {
                op: "affine bias",
                expected: Shape::row(we.shape.cols),
                found: be.shape,
            });
        }
        let (m, k, n) = (xn.shape.rows, xn.shape.cols, we.shape.cols);
        let par = self.parallel();
        let (v, off) = self.push(Op::Affine { x, w, b }, Shape::new(m, n), 0, true)?;
        let (lo, out) = self.split_for_write(off);
        let bias = params.value(b)?;
        let dims = Dims { rows: m, inner: k, cols: n };
        // The bias on each run of rows right after its product. `n == 0` (a zero-width layer)
        // leaves nothing to add, and `chunks_exact` refuses size 0.
        let add_bias = |y: &mut [f32]| {
            for row in y.chunks_exact_mut(n.max(1)) {
                for (o, &bv) in row.iter_mut().zip(bias) {
                    *o += bv;
                }
            }
        };
        let x = lo.get(xn.range()).unwrap_or_default();
        kernels::matmul_par(&par, x, params.value(w)?, out, dims, rows, add_bias)?;
        Ok(v)
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    par: &Par<'_>,
    g: Grads,
    node: Node,
    x: NodeIndex,
    w: ParamId,
    b: ParamId,
    params: &mut Params,
    rows: Rows,
) -> Result<()> {
    backward_into(par, g, node, x, w, b, params, [false, false], rows)
}

/// [`backward`], where `write[0]` (`write[1]`) says that the weight's (bias's) gradient is to be
/// overwritten with this node's contribution, summed from 0.0 — the same bits as adding it to a
/// zeroed buffer ([`Tape::backward_overwrite`]). `rows` is the caller's [`Rows`] hint (one copy
/// per hint, as for the forward).
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn backward_into(
    par: &Par<'_>,
    g: Grads,
    node: Node,
    x: NodeIndex,
    w: ParamId,
    b: ParamId,
    params: &mut Params,
    write: [bool; 2],
    rows: Rows,
) -> Result<()> {
    match rows {
        Rows::One => backward_one(par, g, node, x, w, b, params, write),
        Rows::Any => backward_any(par, g, node, x, w, b, params, write),
    }
}

// Out of line: a firmware whose step path is a constant calls it once, and inlining it there
// costs flash for no measurable speed.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn backward_one(
    par: &Par<'_>,
    g: Grads,
    node: Node,
    x: NodeIndex,
    w: ParamId,
    b: ParamId,
    params: &mut Params,
    write: [bool; 2],
) -> Result<()> {
    backward_body(par, g, node, x, w, b, params, write, Rows::One)
}

#[allow(clippy::too_many_arguments)]
fn backward_any(
    par: &Par<'_>,
    g: Grads,
    node: Node,
    x: NodeIndex,
    w: ParamId,
    b: ParamId,
    params: &mut Params,
    write: [bool; 2],
) -> Result<()> {
    backward_body(par, g, node, x, w, b, params, write, Rows::Any)
}

#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn backward_body(
    par: &Par<'_>,
    mut g: Grads,
    node: Node,
    x: NodeIndex,
    w: ParamId,
    b: ParamId,
    params: &mut Params,
    write: [bool; 2],
    rows: Rows,
) -> Result<()> {
    let xn = g.node(x);
    let (m, k, n) = (xn.shape.rows, xn.shape.cols, node.shape.cols);
    let vals = g.vals;
    let (we, be) = (params.entry(w)?, params.entry(b)?);
    let (pv, pg, _) = params.split_mut();
    let (dy, dx) = g.out_and(node, x);
    if xn.needs_grad() {
        let dims = Dims { rows: m, inner: n, cols: k }; // dy·Wᵀ
        kernels::matmul_nt_acc_par(par, dy, pv.get(we.range()).unwrap_or_default(), dx, dims, rows)?;
    }
    let xv = vals.get(xn.range()).unwrap_or_default();
    let dw = Dims { rows: k, inner: m, cols: n }; // xᵀ·dy
    kernels::matmul_tn_par(par, xv, dy, pg.get_mut(we.range()).unwrap_or_default(), dw, rows, write[0])?;
    if write[1] {
        pg.get_mut(be.range()).unwrap_or_default().fill(0.0);
    }
    kernels::col_sum_acc(dy, pg.get_mut(be.range()).unwrap_or_default(), m, n);
    Ok(())
}

/// Backward with the fused update: `dx` first (from the weights before the update), then each
/// row of `dW = xᵀ·dy` and then `db`, each summed over the batch in the canonical order from 0.0
/// into the row scratch and handed to `rule` at once. `rows` is the caller's [`Rows`] hint (one
/// copy per hint).
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn backward_fused<U: FusedUpdate + ?Sized>(
    g: Grads,
    node: Node,
    x: NodeIndex,
    w: ParamId,
    b: ParamId,
    params: &mut Params,
    rule: &U,
    state: &mut [f32],
    lr: f32,
    rows: Rows,
) -> Result<()> {
    match rows {
        Rows::One => backward_fused_hinted::<U, true>(g, node, x, w, b, params, rule, state, lr),
        Rows::Any => backward_fused_hinted::<U, false>(g, node, x, w, b, params, rule, state, lr),
    }
}

#[allow(clippy::too_many_arguments)]
// `rule` stays the caller's local copy: a `const` optimizer folds (see `FusedUpdate`)
#[cfg_attr(not(debug_assertions), inline(always))]
fn backward_fused_hinted<U: FusedUpdate + ?Sized, const ONE: bool>(
    mut g: Grads,
    node: Node,
    x: NodeIndex,
    w: ParamId,
    b: ParamId,
    params: &mut Params,
    rule: &U,
    state: &mut [f32],
    lr: f32,
) -> Result<()> {
    let rows = Rows::one_if(ONE);
    let xn = g.node(x);
    let (m, k, n) = (xn.shape.rows, xn.shape.cols, node.shape.cols);
    let vals = g.vals;
    let (we, be) = (params.entry(w)?, params.entry(b)?);
    let (pv, scratch, _) = params.split_fused();
    let available = scratch.len();
    let row =
        scratch.get_mut(..n).ok_or(Error::Capacity { region: Region::ParamGrads, needed: n, available })?;
    let (dy, dx) = g.out_and(node, x);
    if xn.needs_grad() {
        let dims = Dims { rows: m, inner: n, cols: k }; // dy·Wᵀ
        kernels::matmul_nt_acc_rows(dy, pv.get(we.range()).unwrap_or_default(), dx, dims, rows)?;
    }
    if n == 0 {
        return Ok(()); // a zero-width layer has nothing to update
    }
    let xv = vals.get(xn.range()).unwrap_or_default();
    if we.kind.trainable() && m == 1 {
        // Batch 1: `dW = xᵀ·dy` is an outer product, which a rule may fuse with its update.
        let at = FusedChunk { entry: we, start: 0 };
        rule.update_outer(
            at,
            pv.get_mut(we.range()).unwrap_or_default(),
            xv.get(..k).unwrap_or_default(),
            dy.get(..n).unwrap_or_default(),
            row,
            state,
            lr,
        )?;
    } else if we.kind.trainable() {
        for (p, wrow) in pv.get_mut(we.range()).unwrap_or_default().chunks_exact_mut(n).enumerate() {
            kernels::outer_row(xv, dy, row, p, Dims { rows: k, inner: m, cols: n });
            rule.update(FusedChunk { entry: we, start: p * n }, wrow, row, state, lr)?;
        }
    }
    if be.kind.trainable() {
        row.fill(0.0);
        kernels::col_sum_acc(dy, row, m, n);
        let at = FusedChunk { entry: be, start: 0 };
        rule.update(at, pv.get_mut(be.range()).unwrap_or_default(), row, state, lr)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::testutil::*;
    use crate::{Error, ParamKind, Shape};

    #[test]
    fn shape_mismatch_is_an_error() {
        let mut s = Storage::new();
        let (mut tape, mut params) = s.split();
        let w = params.alloc(Shape::new(3, 2), ParamKind::Weight).unwrap();
        let b = params.alloc(Shape::row(3), ParamKind::Bias).unwrap();
        let x = tape.input(&[0.0; 4], Shape::new(2, 2)).unwrap();
        assert!(matches!(tape.affine(x, &params, w, b), Err(Error::Shape { op: "affine weight", .. })));
        let x = tape.input(&[0.0; 6], Shape::new(2, 3)).unwrap();
        assert!(matches!(tape.affine(x, &params, w, b), Err(Error::Shape { op: "affine bias", .. })));
    }

    /// Gradient bits after `zero_grad` + `backward` and after `backward_overwrite` on a buffer
    /// full of NaN, for a graph with every kind of parameter use: affine layers whose weight and
    /// bias are read once (written), a weight read by two affine layers and a bias doubling as
    /// the weight of the same layer (accumulated), a `Tape::param` copy, a tensor nothing reads.
    fn grads_both_ways(batch: usize, grad_enabled: bool) -> [std::vec::Vec<u32>; 2] {
        use crate::{Node, ParamEntry, Params, Tape};
        use std::vec;
        let run = |overwrite: bool| {
            let (mut values, mut grads, mut table) = (vec![0.0; 128], vec![0.0; 128], [ParamEntry::EMPTY; 8]);
            let mut params = Params::new(&mut values, &mut grads, &mut table);
            let w = params.alloc(Shape::new(4, 5), ParamKind::Weight).unwrap();
            let b = params.alloc(Shape::row(5), ParamKind::Bias).unwrap();
            let unused = params.alloc(Shape::row(3), ParamKind::Weight).unwrap();
            let shared = params.alloc(Shape::new(5, 5), ParamKind::Weight).unwrap();
            let sb = params.alloc(Shape::row(5), ParamKind::Bias).unwrap();
            let u = params.alloc(Shape::new(1, 5), ParamKind::Weight).unwrap();
            let v = params.alloc(Shape::new(5, 2), ParamKind::Weight).unwrap();
            let n = params.len();
            params.values_mut().copy_from_slice(&random_values(n, 0.0, 3));
            let _ = unused;
            let (mut floats, mut nodes) = (vec![0.0; 1024], vec![Node::EMPTY; 32]);
            let mut tape = Tape::new(&mut floats, &mut nodes);
            tape.set_grad_enabled(grad_enabled);
            let x = tape.input(&random_values(4 * batch, 0.0, 7), Shape::new(batch, 4)).unwrap();
            let h = tape.affine(x, &params, w, b).unwrap();
            let h = tape.tanh(h).unwrap();
            let h = tape.affine(h, &params, shared, sb).unwrap();
            let h = tape.affine(h, &params, shared, sb).unwrap();
            let one = tape.input(&vec![0.5; batch], Shape::new(batch, 1)).unwrap();
            let h2 = tape.affine(one, &params, u, u).unwrap();
            let h = tape.add(h, h2).unwrap();
            let vp = tape.param(&params, v).unwrap();
            let y = tape.matmul(h, vp).unwrap();
            let loss = tape.sum(y).unwrap();
            if overwrite {
                params.grads_mut().fill(f32::NAN);
                tape.backward_overwrite(loss, &mut params).unwrap();
            } else {
                params.zero_grad();
                tape.backward(loss, &mut params).unwrap();
            }
            params.grads().iter().map(|g| g.to_bits()).collect()
        };
        [run(false), run(true)]
    }

    #[test]
    fn backward_overwrite_equals_zero_grad_and_backward() {
        for batch in [1, 3, 4] {
            let [a, b] = grads_both_ways(batch, true);
            assert_eq!(a, b, "batch {batch}");
            assert!(a.iter().any(|&g| f32::from_bits(g) != 0.0));
        }
        // Gradients off: nothing is reached, everything is zero.
        let [a, b] = grads_both_ways(2, false);
        assert_eq!(a, b);
        assert!(b.iter().all(|&g| g == 0));
    }

    #[test]
    fn backward_overwrite_beyond_64_tensors() {
        // Tensors past the 64th are not in the written set: zeroed, then accumulated.
        use crate::{Node, ParamEntry, Params, Tape};
        use std::vec;
        let run = |overwrite: bool| {
            let (mut values, mut grads, mut table) =
                (vec![0.5; 256], vec![f32::NAN; 256], [ParamEntry::EMPTY; 70]);
            let mut params = Params::new(&mut values, &mut grads, &mut table);
            let mut ids = vec![];
            for _ in 0..33 {
                let w = params.alloc(Shape::new(2, 2), ParamKind::Weight).unwrap();
                let b = params.alloc(Shape::row(2), ParamKind::Bias).unwrap();
                ids.push((w, b));
            }
            let (mut floats, mut nodes) = (vec![0.0; 4096], vec![Node::EMPTY; 80]);
            let mut tape = Tape::new(&mut floats, &mut nodes);
            let mut h = tape.input(&[1.0, -2.0], Shape::new(1, 2)).unwrap();
            for &(w, b) in &ids {
                h = tape.affine(h, &params, w, b).unwrap();
                h = tape.tanh(h).unwrap();
            }
            let loss = tape.sum(h).unwrap();
            if overwrite {
                tape.backward_overwrite(loss, &mut params).unwrap();
            } else {
                params.zero_grad();
                tape.backward(loss, &mut params).unwrap();
            }
            params.grads().iter().map(|g| g.to_bits()).collect::<vec::Vec<_>>()
        };
        assert_eq!(run(true), run(false));
    }

    #[test]
    fn gradcheck_random() {
        for (m, k, n) in [(1, 1, 1), (4, 3, 5), (2, 6, 3)] {
            check_affine(m, k, n);
        }
    }
}
