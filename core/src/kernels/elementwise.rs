//! Element-wise kernels: maps over slices (the activations and their backward forms), column
//! sums (bias gradients) and plain sums, each in increasing index order from its start value.

use crate::parallel::{Par, rows_per_chunk};

/// `out[i] = f(x[i])` for every `i` of the shorter slice. With the `x86-simd` feature, on a host
/// running an AVX2 or AVX-512 family the loop is compiled for that instruction set: the same
/// operations per element (no FMA, no reassociation), hence the same bits, in wider registers.
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn map(x: &[f32], out: &mut [f32], f: impl Fn(f32) -> f32) {
    #[cfg(all(feature = "x86-simd", target_arch = "x86_64"))]
    if super::x86::map(x, out, &f) {
        return;
    }
    for (o, &v) in out.iter_mut().zip(x) {
        *o = f(v);
    }
}

/// `v[i] = f(v[i])` for every `i`, compiled for the selected instruction set like [`map`].
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn map_in_place(v: &mut [f32], f: impl Fn(f32) -> f32) {
    #[cfg(all(feature = "x86-simd", target_arch = "x86_64"))]
    if super::x86::map_in_place(v, &f) {
        return;
    }
    for o in v.iter_mut() {
        *o = f(*o);
    }
}

/// `d[i] += df(x[i], y[i], dy[i])` for every `i` of the shortest slice (an element-wise
/// backward), compiled for the selected instruction set like [`map`].
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn map_acc3(x: &[f32], y: &[f32], dy: &[f32], d: &mut [f32], df: impl Fn(f32, f32, f32) -> f32) {
    #[cfg(all(feature = "x86-simd", target_arch = "x86_64"))]
    if super::x86::map_acc3(x, y, dy, d, &df) {
        return;
    }
    for (((o, &x), &y), &dy) in d.iter_mut().zip(x).zip(y).zip(dy) {
        *o += df(x, y, dy);
    }
}

/// Elements per chunk when an element-wise op over `len` elements is shared among `par`'s
/// workers; `None` to run it whole (one worker, or too few elements to pay for the hand-off).
#[cfg_attr(not(debug_assertions), inline(always))]
fn elements_per_chunk(par: &Par<'_>, len: usize) -> Option<usize> {
    // Whole cache lines per chunk.
    rows_per_chunk(par, len, 1, 16)
}

/// [`map`] with the elements shared among `par`'s workers (each element is its own result: the
/// same bits for any split).
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn map_par(par: &Par<'_>, x: &[f32], out: &mut [f32], f: impl Fn(f32) -> f32 + Sync) {
    let len = x.len().min(out.len());
    match elements_per_chunk(par, len) {
        None => map(x, out, f),
        Some(per) => par.for_each_chunk(out.get_mut(..len).unwrap_or_default(), per, |i, o| {
            map(x.get(i * per..).unwrap_or_default(), o, &f);
        }),
    }
}

/// [`map_acc3`] with the elements shared among `par`'s workers, as [`map_par`].
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn map_acc3_par(
    par: &Par<'_>,
    x: &[f32],
    y: &[f32],
    dy: &[f32],
    d: &mut [f32],
    df: impl Fn(f32, f32, f32) -> f32 + Sync,
) {
    let len = x.len().min(y.len()).min(dy.len()).min(d.len());
    match elements_per_chunk(par, len) {
        None => map_acc3(x, y, dy, d, df),
        Some(per) => par.for_each_chunk(d.get_mut(..len).unwrap_or_default(), per, |i, o| {
            let at = i * per;
            let (x, y, dy) = (x.get(at..), y.get(at..), dy.get(at..));
            map_acc3(x.unwrap_or_default(), y.unwrap_or_default(), dy.unwrap_or_default(), o, &df);
        }),
    }
}

/// `v.fill(0.0)` with the elements shared among `par`'s workers.
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn zero_par(par: &Par<'_>, v: &mut [f32]) {
    match elements_per_chunk(par, v.len()) {
        None => v.fill(0.0),
        Some(per) => par.for_each_chunk(v, per, |_, c| c.fill(0.0)),
    }
}

/// `c[j] += Σ_i d[i][j]` for `i = 0, 1, …` (a bias gradient: column sums of `d: m×n`).
pub fn col_sum_acc(d: &[f32], c: &mut [f32], m: usize, n: usize) {
    if n == 0 {
        return; // empty output: `m` (unbounded by an empty shape) must not drive a loop
    }
    for drow in d.chunks_exact(n).take(m) {
        for (o, &dv) in c.iter_mut().zip(drow) {
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
