//! Data augmentation: each training image moved by a random whole-pixel offset.
//!
//! A small translation is the cheapest augmentation that holds for handwriting and most
//! images: the label does not change when the digit moves a pixel or two, so the network sees
//! more distinct examples per stored image. The offsets of a step come from their own seeded
//! stream `(seed, AUGMENT, step)`, so a resumed run shifts exactly as an uninterrupted one.

use super::sampling::{below, purpose, stream};
use staticgrad::ImageShape;

/// Moves every image of `batch` (rows of `C·H·W` floats in C, H, W order) by its own offset
/// `(dy, dx)`, each uniform in `-max..=max` and drawn from the step's stream; pixels moved in
/// from outside are 0. `max == 0` leaves the batch as it is.
pub fn shift_batch(batch: &mut [f32], image: ImageShape, max: usize, seed: u64, step: u64) {
    let len = image.checked_len().unwrap_or(0);
    if max == 0 || len == 0 {
        return;
    }
    let mut rng = stream(seed, purpose::AUGMENT, step);
    let span = 2 * max + 1;
    let mut moved = vec![0.0f32; len];
    for row in batch.chunks_exact_mut(len) {
        let dy = below(&mut rng, span) as isize - max as isize;
        let dx = below(&mut rng, span) as isize - max as isize;
        shift(row, &mut moved, image, dy, dx);
        row.copy_from_slice(&moved);
    }
}

/// `out[c][y][x] = row[c][y − dy][x − dx]`, or 0 where that falls outside the image.
fn shift(row: &[f32], out: &mut [f32], image: ImageShape, dy: isize, dx: isize) {
    let (h, w) = (image.height, image.width);
    out.fill(0.0);
    for (src, dst) in row.chunks_exact(h * w).zip(out.chunks_exact_mut(h * w)) {
        for y in 0..h {
            let sy = y as isize - dy;
            if sy < 0 || sy >= h as isize {
                continue;
            }
            // Columns x whose source x − dx is inside 0..w.
            let x0 = dx.max(0) as usize;
            let x1 = (w as isize + dx).min(w as isize).max(0) as usize;
            if x0 >= x1 {
                continue;
            }
            let s0 = (x0 as isize - dx) as usize;
            let s = sy as usize * w;
            dst[y * w + x0..y * w + x1].copy_from_slice(&src[s + s0..s + s0 + (x1 - x0)]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shift_moves_pixels_and_fills_zeros() {
        let img = ImageShape::new(1, 3, 3);
        let row: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let mut out = vec![9.0; 9];
        shift(&row, &mut out, img, 1, -1);
        // Down one row, left one column.
        assert_eq!(out, [0., 0., 0., 2., 3., 0., 5., 6., 0.]);
        shift(&row, &mut out, img, 0, 0);
        assert_eq!(out, row);
        shift(&row, &mut out, img, -3, 0);
        assert_eq!(out, [0.0; 9], "moved right out of the image");
    }

    #[test]
    fn channels_move_together_and_offsets_are_seeded() {
        let img = ImageShape::new(2, 4, 4);
        let batch: Vec<f32> = (0..3 * 32).map(|v| v as f32 + 1.0).collect();
        let (mut a, mut b) = (batch.clone(), batch.clone());
        shift_batch(&mut a, img, 2, 7, 5);
        shift_batch(&mut b, img, 2, 7, 5);
        assert_eq!(a, b, "same seed and step, same shifts");
        let mut c = batch.clone();
        shift_batch(&mut c, img, 2, 7, 6);
        assert_ne!(a, c, "another step, other shifts");
        // Each row is its own image moved: both channels by the same offset, so the nonzero
        // pattern of channel 1 is channel 0's.
        for row in a.chunks_exact(32) {
            let (c0, c1) = row.split_at(16);
            for (p, q) in c0.iter().zip(c1) {
                assert_eq!(*p == 0.0, *q == 0.0);
                if *p != 0.0 {
                    assert_eq!(q - p, 16.0);
                }
            }
        }
        let mut same = batch.clone();
        shift_batch(&mut same, img, 0, 7, 5);
        assert_eq!(same, batch, "max 0 is no augmentation");
    }
}
