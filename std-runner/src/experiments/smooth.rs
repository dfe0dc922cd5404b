//! The book's `smooth_curve` (common/util.py), used for every loss plot of chapter 6.
//!
//! It pads the series with mirrored values, convolves with a normalised Kaiser window
//! (length 11, β = 2) in "valid" mode and trims 5 values off each end, so the output is as long as
//! the input. The padding is the book's, quirk included: on the left it mirrors `x[10], …, x[1]`
//! (the edge value is not repeated), on the right `x[n−1], …, x[n−10]` (the edge value is).

/// Length of the book's smoothing window.
pub const WINDOW: usize = 11;
/// β of the book's Kaiser window.
pub const BETA: f64 = 2.0;

/// Modified Bessel function of the first kind, order 0, by its power series
/// `Σ ((x/2)^k / k!)²` (converges quickly for the small arguments a window needs).
pub fn bessel_i0(x: f64) -> f64 {
    let q = x * x / 4.0;
    let (mut term, mut sum) = (1.0f64, 1.0f64);
    for k in 1..200 {
        term *= q / (k as f64 * k as f64);
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

/// numpy's `kaiser(m, beta)`: `I0(β·√(1 − (2n/(m−1) − 1)²)) / I0(β)`.
pub fn kaiser(m: usize, beta: f64) -> Vec<f64> {
    if m == 1 {
        return vec![1.0];
    }
    let d = bessel_i0(beta);
    (0..m)
        .map(|n| {
            let r = 2.0 * n as f64 / (m - 1) as f64 - 1.0;
            bessel_i0(beta * (1.0 - r * r).max(0.0).sqrt()) / d
        })
        .collect()
}

/// The book's `smooth_curve`. Series shorter than the window are returned unchanged (the book's
/// slicing would silently shorten them).
pub fn smooth_curve(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    if n < WINDOW {
        return x.to_vec();
    }
    let half = WINDOW - 1;
    // s = r_[x[10:0:-1], x, x[-1:-11:-1]]
    let mut s = Vec::with_capacity(n + 2 * half);
    s.extend((1..=half).rev().map(|i| x[i]));
    s.extend_from_slice(x);
    s.extend((0..half).map(|i| x[n - 1 - i]));
    let w = kaiser(WINDOW, BETA);
    let total: f64 = w.iter().sum();
    // np.convolve flips the kernel; the window is symmetric, so this is a plain sliding dot product.
    let valid: Vec<f64> =
        s.windows(WINDOW).map(|win| win.iter().zip(&w).map(|(a, b)| a * b / total).sum()).collect();
    valid[WINDOW / 2..valid.len() - WINDOW / 2].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bessel_i0_known_values() {
        assert!((bessel_i0(0.0) - 1.0).abs() < 1e-15);
        assert!((bessel_i0(1.0) - 1.266_065_877_752_008_4).abs() < 1e-14);
        assert!((bessel_i0(2.0) - 2.279_585_302_336_067).abs() < 1e-14);
    }

    #[test]
    fn kaiser_window_is_symmetric_and_peaks_at_one() {
        let w = kaiser(11, 2.0);
        assert_eq!(w.len(), 11);
        assert!((w[5] - 1.0).abs() < 1e-15);
        assert!((w[0] - 1.0 / bessel_i0(2.0)).abs() < 1e-15);
        for i in 0..11 {
            assert!((w[i] - w[10 - i]).abs() < 1e-15);
        }
    }

    #[test]
    fn keeps_length_and_constants() {
        let x = vec![3.5; 40];
        let y = smooth_curve(&x);
        assert_eq!(y.len(), 40);
        assert!(y.iter().all(|v| (v - 3.5).abs() < 1e-12));
    }

    #[test]
    fn interior_is_the_window_average_and_edges_use_the_book_padding() {
        let x: Vec<f64> = (0..30).map(|i| (i as f64).powf(1.5)).collect();
        let y = smooth_curve(&x);
        let w = kaiser(11, 2.0);
        let t: f64 = w.iter().sum();
        let mid: f64 = (0..11).map(|k| x[10 + k] * w[k] / t).sum();
        assert!((y[15] - mid).abs() < 1e-12);
        // y[0] is centred on x[0] with the left pad x[5], …, x[1] mirrored.
        let left = [x[5], x[4], x[3], x[2], x[1], x[0], x[1], x[2], x[3], x[4], x[5]];
        let first: f64 = left.iter().zip(&w).map(|(a, b)| a * b / t).sum();
        assert!((y[0] - first).abs() < 1e-12);
        // y[29] is centred on x[29]; the right pad repeats the edge: x[29], x[28], …
        let right = [x[24], x[25], x[26], x[27], x[28], x[29], x[29], x[28], x[27], x[26], x[25]];
        let last: f64 = right.iter().zip(&w).map(|(a, b)| a * b / t).sum();
        assert!((y[29] - last).abs() < 1e-12);
    }

    #[test]
    fn short_series_pass_through() {
        assert_eq!(smooth_curve(&[1.0, 2.0]), vec![1.0, 2.0]);
    }
}
