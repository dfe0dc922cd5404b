//! Affine layer: `y = x·W + b` with `W` and `b` read in place from the parameter store.
//! Backward: `dx += dy·Wᵀ` (skipped when nothing upstream needs it, e.g. the first layer's data),
//! `dW += xᵀ·dy`, `db += Σ_rows dy`.

use crate::error::{Error, Result};
use crate::kernels;
use crate::params::{ParamId, Params};
use crate::shape::Shape;
use crate::tape::{Grads, Node, Op, Tape, Var};

impl Tape<'_> {
    /// `x · W + b` for `x: batch×in`, `W: in×out`, `b: 1×out`.
    pub fn affine(&mut self, x: Var, params: &Params, w: ParamId, b: ParamId) -> Result<Var> {
        let xn = self.node(x)?;
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
        let (v, off) = self.push(Op::Affine { x, w, b }, Shape::new(m, n), 0, true)?;
        let (lo, out) = self.split_for_write(off);
        let bias = params.value(b)?;
        kernels::matmul(&lo[xn.range()], params.value(w)?, out, m, k, n)?;
        // `n == 0` (a zero-width layer) leaves nothing to add, and `chunks_exact` refuses size 0.
        for row in out[..m * n].chunks_exact_mut(n.max(1)) {
            for (o, &bv) in row.iter_mut().zip(bias) {
                *o += bv;
            }
        }
        Ok(v)
    }
}

pub(crate) fn backward(
    mut g: Grads,
    node: Node,
    x: Var,
    w: ParamId,
    b: ParamId,
    params: &mut Params,
) -> Result<()> {
    let xn = g.node(x);
    let (m, k, n) = (xn.shape.rows, xn.shape.cols, node.shape.cols);
    let vals = g.vals;
    let (we, be) = (params.entry(w)?, params.entry(b)?);
    let (pv, pg, _) = params.split_mut();
    let (dy, dx) = g.out_and(node, x);
    if xn.needs_grad {
        kernels::matmul_nt_acc(dy, &pv[we.range()], dx, m, n, k)?;
    }
    kernels::matmul_tn_acc(&vals[xn.range()], dy, &mut pg[we.range()], m, k, n)?;
    kernels::col_sum_acc(dy, &mut pg[be.range()], m, n);
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

    #[test]
    fn gradcheck_random() {
        for (m, k, n) in [(1, 1, 1), (4, 3, 5), (2, 6, 3)] {
            check_affine(m, k, n);
        }
    }
}
