//! Image files to normalized model input, the way the reference Python pipelines do it.
//!
//! Steps: decode (format guessed from the bytes) → RGB (transparency composited onto white, as
//! transformers does; 16-bit channels rounded to 8 bits) → optional CLIP4Cir "targetpad" → resize the
//! short side to the model's input size with Pillow-exact bicubic filtering → center crop (or, for
//! [`Resize::Squash`], resize both sides to the input size) → scale to [0, 1] → subtract mean, divide by
//! std, channel-first.

use std::path::Path;

use image::{DynamicImage, RgbImage};

use super::error::ImageError;
use super::resample::{resize_bicubic_window, Window};

/// How an image of any aspect ratio becomes a square.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Resize {
    /// Resize so the short side equals the input size, then center crop (transformers'
    /// `CLIPImageProcessor`, OpenAI CLIP). Content past the crop on the long side is lost.
    ShortSide,
    /// CLIP4Cir's "targetpad": when the long side exceeds `ratio` times the short side, pad the short
    /// side symmetrically with black until it does not, then resize and crop as in `ShortSide`. Keeps
    /// most of long garments in the frame; CLIP4Cir uses `ratio = 1.25`.
    TargetPad {
        /// The largest long/short side ratio left unpadded.
        ratio: f32,
    },
    /// Resize both sides to the input size, ignoring the aspect ratio (BLIP's `BlipImageProcessor`, and
    /// the source study's 224x224 preprocessing). Nothing is cropped; shapes are stretched.
    Squash,
}

/// Per-channel mean and standard deviation subtracted from pixels in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normalization {
    /// The statistics OpenAI CLIP was trained with.
    Clip,
    /// The ImageNet statistics of torchvision models.
    ImageNet,
}

impl Normalization {
    // The digits as OpenAI published them, which is what the references parse too.
    #[allow(clippy::excessive_precision)]
    fn mean_std(self) -> ([f32; 3], [f32; 3]) {
        match self {
            Self::Clip => (
                [0.481_454_66, 0.457_827_5, 0.408_210_73],
                [0.268_629_54, 0.261_302_58, 0.275_777_11],
            ),
            Self::ImageNet => ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        }
    }
}

/// Turns images into the `3 × size × size` float input of a vision tower.
///
/// ```
/// use fiq::encoder::{ImagePreprocessor, Normalization, Resize};
///
/// let preprocessor = ImagePreprocessor::new(224, Resize::TargetPad { ratio: 1.25 }, Normalization::Clip);
/// let image = image::DynamicImage::new_rgb8(300, 500);
/// let pixels = preprocessor.preprocess(&image);
/// assert_eq!(pixels.len(), 3 * 224 * 224);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImagePreprocessor {
    size: usize,
    resize: Resize,
    normalization: Normalization,
}

impl ImagePreprocessor {
    /// `size`: the side of the square model input (the vision config's `image_size`).
    pub fn new(size: usize, resize: Resize, normalization: Normalization) -> Self {
        Self {
            size: size.max(1),
            resize,
            normalization,
        }
    }

    /// The side of the square output.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Number of floats [`preprocess`](Self::preprocess) returns.
    pub fn output_len(&self) -> usize {
        3 * self.size * self.size
    }

    /// A one-line description that changes whenever the output would, for model fingerprints.
    pub fn describe(&self) -> String {
        let resize = match self.resize {
            Resize::ShortSide => "shortside".to_string(),
            Resize::TargetPad { ratio } => format!("targetpad{ratio}"),
            Resize::Squash => "squash".to_string(),
        };
        let normalization = match self.normalization {
            Normalization::Clip => "clip",
            Normalization::ImageNet => "imagenet",
        };
        let geometry = match self.resize {
            Resize::Squash => format!("to{0}x{0}", self.size),
            _ => format!("center-crop{}", self.size),
        };
        format!("rgb-over-white,{resize},bicubic-pil,{geometry},norm-{normalization}")
    }

    /// Reads, decodes and preprocesses one image file.
    pub fn load(&self, path: &Path) -> Result<Vec<f32>, ImageError> {
        let mut out = vec![0f32; self.output_len()];
        self.load_into(path, &mut out)?;
        Ok(out)
    }

    /// [`load`](Self::load) into `out` (`output_len()` floats), a slot of a batch buffer: the batch
    /// is then one allocation that goes to the model as it is.
    pub fn load_into(&self, path: &Path, out: &mut [f32]) -> Result<(), ImageError> {
        let image = decode(path)?;
        if image.width() == 0 || image.height() == 0 {
            return Err(ImageError::Empty {
                path: path.to_path_buf(),
                width: image.width(),
                height: image.height(),
            });
        }
        self.preprocess_into(&image, out);
        Ok(())
    }

    /// Preprocesses a decoded image into channel-first floats (`3 × size × size`, red plane first).
    /// An image with no pixels yields a black input.
    pub fn preprocess(&self, image: &DynamicImage) -> Vec<f32> {
        let mut out = vec![0f32; self.output_len()];
        self.preprocess_into(image, &mut out);
        out
    }

    /// [`preprocess`](Self::preprocess) into `out`, which must hold `output_len()` floats.
    pub fn preprocess_into(&self, image: &DynamicImage, out: &mut [f32]) {
        let rgb = to_rgb(image);
        if rgb.width() == 0 || rgb.height() == 0 {
            return self.normalize_into(&RgbImage::new(self.size as u32, self.size as u32), out);
        }
        let square = match self.resize {
            Resize::ShortSide => resize_and_crop(&rgb, self.size, CropRounding::Floor),
            Resize::TargetPad { ratio } => {
                resize_and_crop(&target_pad(&rgb, ratio), self.size, CropRounding::HalfEven)
            }
            Resize::Squash => {
                let whole = Window {
                    x: 0,
                    y: 0,
                    width: self.size,
                    height: self.size,
                };
                resize_bicubic_window(&rgb, self.size, self.size, whole)
            }
        };
        self.normalize_into(&square, out)
    }

    fn normalize_into(&self, square: &RgbImage, out: &mut [f32]) {
        let (mean, std) = self.normalization.mean_std();
        let plane = self.size * self.size;
        assert_eq!(out.len(), 3 * plane, "output slot of the wrong size");
        let rescale = (1.0f64 / 255.0) as f32;
        for (i, pixel) in square.pixels().enumerate() {
            for c in 0..3 {
                out[c * plane + i] = (f32::from(pixel[c]) * rescale - mean[c]) / std[c];
            }
        }
    }
}

/// Decodes the image at `path`, guessing the format from its first bytes rather than its name.
pub(crate) fn decode(path: &Path) -> Result<DynamicImage, ImageError> {
    let read_error = |source| ImageError::Read {
        path: path.to_path_buf(),
        source,
    };
    let reader = image::ImageReader::open(path)
        .map_err(read_error)?
        .with_guessed_format()
        .map_err(read_error)?;
    // Past the format sniffing, an I/O error is almost always a truncated file: a decoding failure.
    reader.decode().map_err(|source| ImageError::Decode {
        path: path.to_path_buf(),
        source,
    })
}

/// Decodes an image held in memory (an upload, say), by its content; `label` names it in errors.
pub(crate) fn decode_bytes(label: &Path, bytes: &[u8]) -> Result<DynamicImage, ImageError> {
    image::load_from_memory(bytes).map_err(|source| ImageError::Decode {
        path: label.to_path_buf(),
        source,
    })
}

/// 8-bit RGB, with any transparency composited onto white as transformers' `convert_to_rgb` does.
pub(crate) fn to_rgb(image: &DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.to_rgb8();
    }
    let rgba = image.to_rgba8();
    let (width, height) = rgba.dimensions();
    let pixels = rgba.pixels().flat_map(|p| {
        let alpha = p[3];
        [
            over_white(p[0], alpha),
            over_white(p[1], alpha),
            over_white(p[2], alpha),
        ]
    });
    RgbImage::from_raw(width, height, pixels.collect())
        .expect("three bytes per pixel by construction")
}

/// Pillow's integer `alpha_composite` of one channel onto an opaque white background: 7 extra bits of
/// precision and rounded divisions by 255, so the result matches it exactly.
fn over_white(channel: u8, alpha: u8) -> u8 {
    const PRECISION_BITS: u32 = 7;
    let shift_div_255 = |v: u32| ((v >> 8) + v) >> 8;
    let source_weight = u32::from(alpha) << PRECISION_BITS;
    let background_weight = (255 << PRECISION_BITS) - source_weight;
    let blended = u32::from(channel) * source_weight + 255 * background_weight;
    (shift_div_255(blended + (0x80 << PRECISION_BITS)) >> PRECISION_BITS) as u8
}

/// CLIP4Cir's `TargetPad`: pads the short side with black so that `long / short <= ratio`.
fn target_pad(image: &RgbImage, ratio: f32) -> RgbImage {
    let (w, h) = (image.width() as f64, image.height() as f64);
    let ratio = f64::from(ratio);
    if ratio.is_nan() || ratio < 1.0 || w.max(h) / w.min(h) < ratio {
        return image.clone();
    }
    let scaled_max_side = w.max(h) / ratio;
    let horizontal = ((scaled_max_side - w) / 2.0).max(0.0) as u32;
    let vertical = ((scaled_max_side - h) / 2.0).max(0.0) as u32;
    let mut padded = RgbImage::new(
        image.width() + 2 * horizontal,
        image.height() + 2 * vertical,
    );
    image::imageops::replace(
        &mut padded,
        image,
        i64::from(horizontal),
        i64::from(vertical),
    );
    padded
}

/// Where a center crop starts when the margin is odd: transformers floors, torchvision rounds half to even.
#[derive(Debug, Clone, Copy)]
enum CropRounding {
    Floor,
    HalfEven,
}

fn crop_offset(margin: usize, rounding: CropRounding) -> usize {
    match rounding {
        CropRounding::Floor => margin / 2,
        CropRounding::HalfEven => {
            let half = margin / 2;
            // margin / 2 ends in .5 exactly when margin is odd; ties go to the even neighbour.
            if margin % 2 == 1 && half % 2 == 1 {
                half + 1
            } else {
                half
            }
        }
    }
}

/// Resizes the short side to `size` (long side `floor(size * long / short)`, as both references
/// compute it) and center crops a `size × size` square.
fn resize_and_crop(image: &RgbImage, size: usize, rounding: CropRounding) -> RgbImage {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    // Python's `int(size * long / short)`: an exact integer product, one correctly rounded division.
    let new_long = ((size * long) as f64 / short as f64) as usize;
    let (out_w, out_h) = if w <= h {
        (size, new_long)
    } else {
        (new_long, size)
    };
    let window = Window {
        x: crop_offset(out_w - size, rounding),
        y: crop_offset(out_h - size, rounding),
        width: size,
        height: size,
    };
    resize_bicubic_window(image, out_w, out_h, window)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_offsets_follow_each_reference() {
        let check = |margin, floor, half_even| {
            assert_eq!(
                crop_offset(margin, CropRounding::Floor),
                floor,
                "floor {margin}"
            );
            assert_eq!(
                crop_offset(margin, CropRounding::HalfEven),
                half_even,
                "half-even {margin}"
            );
        };
        check(0, 0, 0);
        check(1, 0, 0);
        check(2, 1, 1);
        check(3, 1, 2);
        check(5, 2, 2);
        check(7, 3, 4);
        check(76, 38, 38);
    }

    #[test]
    fn over_white_matches_known_values() {
        assert_eq!(over_white(17, 255), 17);
        assert_eq!(over_white(0, 0), 255);
        assert_eq!(over_white(0, 128), 127);
        assert_eq!(over_white(200, 51), 244);
    }

    #[test]
    fn target_pad_bounds_the_aspect_ratio() {
        let tall = RgbImage::from_pixel(100, 300, image::Rgb([255, 255, 255]));
        let padded = target_pad(&tall, 1.25);
        assert_eq!(padded.dimensions(), (100 + 2 * 70, 300));
        assert_eq!(padded.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(padded.get_pixel(70, 0).0, [255, 255, 255]);
        let nearly_square = RgbImage::new(110, 100);
        assert_eq!(target_pad(&nearly_square, 1.25).dimensions(), (110, 100));
    }
}
