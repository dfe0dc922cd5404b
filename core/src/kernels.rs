//! Matrix kernels shared by the ops, in the **canonical summation order** (DESIGN §2.5).
//!
//! The rule: every output element adds its terms one at a time, in increasing index order, onto
//! its starting value (0.0 for a fresh output, the current gradient for an accumulating kernel).
//! No FMA (Rust never contracts `a * b + c` on its own), no reassociation, no tree reductions.
//! Loops may be reordered and vectorised **across independent outputs** (the `j` loops below run
//! over contiguous outputs, which LLVM vectorises), never across a reduction. The result: the
//! same bits on x86-64 and on a Cortex-M4F.

/// `c = a · b` with `a: m×k`, `b: k×n`, `c: m×n`, all row-major; `c` is overwritten.
pub fn matmul(a: &[f32], b: &[f32], c: &mut [f32], m: usize, k: usize, n: usize) {
    // An empty output has nothing to compute; returning keeps `m` (which an empty shape does not
    // bound, e.g. 2⁴⁰ × 0) from driving a loop.
    if m == 0 || n == 0 {
        return;
    }
    for i in 0..m {
        let row = &mut c[i * n..(i + 1) * n];
        row.fill(0.0);
        let arow = &a[i * k..(i + 1) * k];
        for (kk, &aik) in arow.iter().enumerate() {
            let brow = &b[kk * n..(kk + 1) * n];
            for (o, &bv) in row.iter_mut().zip(brow) {
                *o += aik * bv;
            }
        }
    }
}

/// `c += aᵀ · d` with `a: m×k`, `d: m×n`, `c: k×n` (a weight gradient `xᵀ·dout`).
/// Each `c[p][j]` adds `a[i][p]·d[i][j]` for `i = 0, 1, …`.
pub fn matmul_tn_acc(a: &[f32], d: &[f32], c: &mut [f32], m: usize, k: usize, n: usize) {
    if k == 0 || n == 0 {
        return; // empty output (see `matmul`)
    }
    for i in 0..m {
        let drow = &d[i * n..(i + 1) * n];
        let arow = &a[i * k..(i + 1) * k];
        for (p, &aip) in arow.iter().enumerate() {
            let crow = &mut c[p * n..(p + 1) * n];
            for (o, &dv) in crow.iter_mut().zip(drow) {
                *o += aip * dv;
            }
        }
    }
}

/// `c += d · bᵀ` with `d: m×n`, `b: k×n`, `c: m×k` (an input gradient `dout·Wᵀ`).
/// Each `c[i][p]` adds `d[i][j]·b[p][j]` for `j = 0, 1, …`.
pub fn matmul_nt_acc(d: &[f32], b: &[f32], c: &mut [f32], m: usize, n: usize, k: usize) {
    if m == 0 || k == 0 {
        return; // empty output (see `matmul`)
    }
    for i in 0..m {
        let drow = &d[i * n..(i + 1) * n];
        let crow = &mut c[i * k..(i + 1) * k];
        for (p, o) in crow.iter_mut().enumerate() {
            let brow = &b[p * n..(p + 1) * n];
            let mut s = *o;
            for (&dv, &bv) in drow.iter().zip(brow) {
                s += dv * bv;
            }
            *o = s;
        }
    }
}

/// `c[j] += Σ_i d[i][j]` for `i = 0, 1, …` (a bias gradient: column sums of `d: m×n`).
pub fn col_sum_acc(d: &[f32], c: &mut [f32], m: usize, n: usize) {
    if n == 0 {
        return; // empty output (see `matmul`)
    }
    for i in 0..m {
        for (o, &dv) in c.iter_mut().zip(&d[i * n..(i + 1) * n]) {
            *o += dv;
        }
    }
}

/// `Σ x[i]` for `i = 0, 1, …`, from 0.0.
pub fn sum(x: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for &v in x {
        s += v;
    }
    s
}
