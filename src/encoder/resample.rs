//! Bicubic resizing that reproduces Pillow's `Image.resize(..., BICUBIC)` on 8-bit RGB, pixel for pixel.
//!
//! The reference preprocessors (transformers' CLIP image processor, CLIP4Cir's torchvision transforms on
//! PIL images) resize with Pillow, so matching them bit-exactly means matching its algorithm: a separable
//! convolution whose kernel (Keys cubic, a = -0.5) widens by the downscale factor (antialiasing), weights
//! normalized per output pixel, then quantized to 22-bit fixed point, horizontal pass first, each pass
//! rounded back to 8 bits.
//!
//! Only the window that the center crop keeps is computed: every output pixel depends on its own
//! coordinates alone, so the window equals the same region of the full resize, at a fraction of the work
//! (and without allocating a huge intermediate for extreme aspect ratios).

use image::RgbImage;

/// Fixed-point precision of the weights, as in Pillow (32 bits - 8 for the pixel - 2 of headroom).
const PRECISION_BITS: u32 = 22;

/// Keys' cubic convolution kernel with a = -0.5; support 2.
fn cubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// For each output index: the first input index it reads and its fixed-point weights.
struct Taps {
    first: Vec<usize>,
    weights: Vec<Vec<i32>>,
}

/// Taps for output indices `window` of a resize from `in_size` to `out_size` samples.
fn taps(in_size: usize, out_size: usize, window: std::ops::Range<usize>) -> Taps {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = 2.0 * filter_scale;
    // Multiplying by the reciprocal (not dividing) keeps the last bit identical to Pillow's.
    let inverse_filter_scale = 1.0 / filter_scale;
    let mut first = Vec::with_capacity(window.len());
    let mut weights = Vec::with_capacity(window.len());
    for out_index in window {
        let center = (out_index as f64 + 0.5) * scale;
        // `as` truncates toward zero, like the C cast in Pillow; clamping follows.
        let start = ((center - support + 0.5) as i64).max(0) as usize;
        let end = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let raw: Vec<f64> = (start..end)
            .map(|i| cubic((i as f64 - center + 0.5) * inverse_filter_scale))
            .collect();
        let total: f64 = raw.iter().sum();
        let fixed = raw
            .iter()
            .map(|&w| {
                let w = if total != 0.0 { w / total } else { w };
                let scaled = w * f64::from(1u32 << PRECISION_BITS);
                // Round half away from zero, then truncate, as Pillow does.
                (if scaled < 0.0 {
                    scaled - 0.5
                } else {
                    scaled + 0.5
                }) as i32
            })
            .collect();
        first.push(start);
        weights.push(fixed);
    }
    Taps { first, weights }
}

fn clip8(accumulator: i32) -> u8 {
    (accumulator >> PRECISION_BITS).clamp(0, 255) as u8
}

const ROUNDING: i32 = 1 << (PRECISION_BITS - 1);

/// A rectangle of the resized image: `x`, `y` its top-left corner, `width` × `height` its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub x: usize,
    pub y: usize,
    pub width: usize,
    pub height: usize,
}

/// Resizes `src` to `out_width` × `out_height` with Pillow's bicubic filter and returns only `window`
/// of the result. `window` must lie inside the output.
pub(crate) fn resize_bicubic_window(
    src: &RgbImage,
    out_width: usize,
    out_height: usize,
    window: Window,
) -> RgbImage {
    debug_assert!(window.x + window.width <= out_width && window.y + window.height <= out_height);
    let (in_width, in_height) = (src.width() as usize, src.height() as usize);
    let vertical = taps(in_height, out_height, window.y..window.y + window.height);
    // Input rows the vertical pass reads: the horizontal pass only needs to produce these.
    let row_start = vertical.first.first().copied().unwrap_or(0);
    let row_end = vertical
        .first
        .iter()
        .zip(&vertical.weights)
        .map(|(start, w)| start + w.len())
        .max()
        .unwrap_or(row_start);

    let src_raw = src.as_raw();
    // Pillow skips a pass whose size does not change; the taps would be the identity anyway.
    let horizontal_rows: Vec<u8> = if in_width == out_width {
        let mut rows = Vec::with_capacity((row_end - row_start) * window.width * 3);
        for row in row_start..row_end {
            let begin = (row * in_width + window.x) * 3;
            rows.extend_from_slice(&src_raw[begin..begin + window.width * 3]);
        }
        rows
    } else {
        let horizontal = taps(in_width, out_width, window.x..window.x + window.width);
        let mut rows = vec![0u8; (row_end - row_start) * window.width * 3];
        for (row_index, row) in (row_start..row_end).enumerate() {
            let src_row = &src_raw[row * in_width * 3..(row + 1) * in_width * 3];
            let dst_row =
                &mut rows[row_index * window.width * 3..(row_index + 1) * window.width * 3];
            for (out_x, (start, weights)) in
                horizontal.first.iter().zip(&horizontal.weights).enumerate()
            {
                let mut acc = [ROUNDING; 3];
                for (i, &w) in weights.iter().enumerate() {
                    let px = &src_row[(start + i) * 3..(start + i) * 3 + 3];
                    for c in 0..3 {
                        acc[c] += i32::from(px[c]) * w;
                    }
                }
                for c in 0..3 {
                    dst_row[out_x * 3 + c] = clip8(acc[c]);
                }
            }
        }
        rows
    };

    let row_len = window.width * 3;
    let mut out = vec![0u8; window.height * row_len];
    if in_height == out_height {
        for (out_y, dst_row) in out.chunks_exact_mut(row_len).enumerate() {
            let src_row = window.y + out_y - row_start;
            dst_row.copy_from_slice(&horizontal_rows[src_row * row_len..(src_row + 1) * row_len]);
        }
    } else {
        for (dst_row, (start, weights)) in out
            .chunks_exact_mut(row_len)
            .zip(vertical.first.iter().zip(&vertical.weights))
        {
            for (x, dst) in dst_row.iter_mut().enumerate() {
                let mut acc = ROUNDING;
                for (i, &w) in weights.iter().enumerate() {
                    acc += i32::from(horizontal_rows[(start - row_start + i) * row_len + x]) * w;
                }
                *dst = clip8(acc);
            }
        }
    }
    RgbImage::from_raw(window.width as u32, window.height as u32, out)
        .expect("buffer length is width * height * 3 by construction")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([
                (x * 7 + y * 3) as u8,
                (x * x + y) as u8,
                (255 - x - 2 * y) as u8,
            ])
        })
    }

    fn full(src: &RgbImage, w: usize, h: usize) -> RgbImage {
        resize_bicubic_window(
            src,
            w,
            h,
            Window {
                x: 0,
                y: 0,
                width: w,
                height: h,
            },
        )
    }

    #[test]
    fn same_size_is_identity() {
        let src = gradient(17, 9);
        assert_eq!(full(&src, 17, 9), src);
    }

    #[test]
    fn constant_image_stays_constant() {
        let src = RgbImage::from_pixel(31, 13, image::Rgb([200, 17, 90]));
        for (w, h) in [(7, 3), (64, 40), (31, 5), (100, 13)] {
            let out = full(&src, w, h);
            assert!(out.pixels().all(|p| p.0 == [200, 17, 90]), "{w}x{h}");
        }
    }

    #[test]
    fn window_equals_crop_of_full_resize() {
        let src = gradient(53, 29);
        for (w, h) in [(24, 13), (101, 55), (40, 29)] {
            let whole = full(&src, w, h);
            let window = Window {
                x: 3,
                y: 2,
                width: w - 7,
                height: h - 4,
            };
            let part = resize_bicubic_window(&src, w, h, window);
            let expected =
                image::imageops::crop_imm(&whole, 3, 2, window.width as u32, window.height as u32)
                    .to_image();
            assert_eq!(part, expected, "{w}x{h}");
        }
    }

    #[test]
    fn weights_sum_to_one_in_fixed_point() {
        for (in_size, out_size) in [(10, 3), (3, 10), (224, 224), (500, 224), (7, 224)] {
            let t = taps(in_size, out_size, 0..out_size);
            for w in &t.weights {
                let sum: i32 = w.iter().sum();
                assert!(
                    (sum - (1 << PRECISION_BITS)).abs() <= w.len() as i32,
                    "{in_size}->{out_size}: {sum}"
                );
            }
        }
    }
}
