//! The CLIP encoder against the reference (transformers + Pillow + torchvision), on the tiny random-weight
//! model that `tools/python/clip_reference.py fixtures` generated into tests/fixtures/clip-tiny.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use fiq::encoder::{
    ClipEncoder, Encoder, EncoderError, EncoderOptions, ImageError, ImagePreprocessor, ImageSource,
    Normalization, Resize,
};
use image::{DynamicImage, ImageBuffer, Luma, Rgb, RgbImage, Rgba};
use serde::Deserialize;

const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
#[allow(clippy::excessive_precision)]
const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clip-tiny")
}

#[derive(Deserialize)]
struct Expected {
    images: Vec<ExpectedImage>,
    texts: Vec<ExpectedText>,
}

#[derive(Deserialize)]
struct ExpectedImage {
    file: String,
    pixel_values_head: Vec<f32>,
    embedding: Vec<f32>,
}

#[derive(Deserialize)]
struct ExpectedText {
    text: String,
    embedding: Vec<f32>,
}

fn expected() -> Expected {
    let text = std::fs::read_to_string(fixture_dir().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn load(options: &EncoderOptions) -> ClipEncoder {
    ClipEncoder::load(&fixture_dir(), options).unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Channel-first CLIP-normalized floats of a uint8 crop, the way the reference computes them.
fn normalized_crop(crop: &RgbImage) -> Vec<f32> {
    let plane = (crop.width() * crop.height()) as usize;
    let mut out = vec![0f32; 3 * plane];
    for (i, p) in crop.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] =
                (f32::from(p[c]) * (1.0f64 / 255.0) as f32 - CLIP_MEAN[c]) / CLIP_STD[c];
        }
    }
    out
}

/// The fixture image as the reference saw it: Pillow's decoded pixels for JPEGs (decoders differ by a
/// few levels, see `jpeg_decoding_is_close_to_pillow`), the file itself otherwise.
fn reference_input(file: &str) -> PathBuf {
    let decoded = fixture_dir()
        .join("crops")
        .join(format!("{file}.decoded.png"));
    if decoded.exists() {
        decoded
    } else {
        fixture_dir().join("images").join(file)
    }
}

#[test]
fn image_embeddings_match_transformers() {
    let encoder = load(&EncoderOptions {
        batch_size: 4,
        ..EncoderOptions::default()
    });
    let expected = expected();
    let paths: Vec<PathBuf> = expected
        .images
        .iter()
        .map(|e| reference_input(&e.file))
        .collect();
    let sources: Vec<ImageSource<'_>> = paths.iter().map(ImageSource::from).collect();
    let results = encoder.encode_images(&sources).unwrap();
    for (reference, result) in expected.images.iter().zip(results) {
        let vector = result.unwrap();
        let diff = max_abs_diff(&vector, &reference.embedding);
        eprintln!("image {}: max abs diff {diff:e}", reference.file);
        assert!(diff < 1e-4, "{}: max abs diff {diff}", reference.file);
    }
}

#[test]
fn jpeg_decoding_is_close_to_pillow() {
    let preprocessor = ImagePreprocessor::new(224, Resize::ShortSide, Normalization::Clip);
    let ours = preprocessor
        .load(&fixture_dir().join("images/landscape.jpg"))
        .unwrap();
    let pillow = preprocessor
        .load(&reference_input("landscape.jpg"))
        .unwrap();
    // In 8-bit levels: CLIP's std is about 0.27.
    let levels = |d: f32| f64::from(d) * 0.27 * 255.0;
    let mean = ours
        .iter()
        .zip(&pillow)
        .map(|(a, b)| levels((a - b).abs()))
        .sum::<f64>()
        / ours.len() as f64;
    assert!(mean < 1.0, "mean difference {mean:.2} levels");
    let encoder = load(&EncoderOptions::default());
    let path = fixture_dir().join("images/landscape.jpg");
    let vector = encoder
        .encode_images(&[ImageSource::from(&path)])
        .unwrap()
        .remove(0)
        .unwrap();
    let diff = max_abs_diff(&vector, &expected().images[0].embedding);
    assert!(
        diff < 1e-2,
        "embedding from fiq's own JPEG decoding differs by {diff}"
    );
}

#[test]
fn text_embeddings_match_transformers() {
    let encoder = load(&EncoderOptions::default());
    let expected = expected();
    let texts: Vec<&str> = expected.texts.iter().map(|t| t.text.as_str()).collect();
    let vectors = encoder.encode_texts(&texts).unwrap();
    for (reference, vector) in expected.texts.iter().zip(&vectors) {
        let diff = max_abs_diff(vector, &reference.embedding);
        eprintln!("text {:?}: max abs diff {diff:e}", reference.text);
        assert!(diff < 1e-4, "{:?}: max abs diff {diff}", reference.text);
        let norm: f32 = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }
}

#[test]
fn shortside_preprocessing_matches_clip_image_processor() {
    let preprocessor = ImagePreprocessor::new(224, Resize::ShortSide, Normalization::Clip);
    for reference in expected().images {
        let ours = preprocessor
            .load(&reference_input(&reference.file))
            .unwrap();
        let crop = image::open(
            fixture_dir()
                .join("crops")
                .join(format!("{}.shortside.png", reference.file)),
        )
        .unwrap()
        .to_rgb8();
        let diff = max_abs_diff(&ours, &normalized_crop(&crop));
        assert!(diff < 1e-5, "{}: max abs diff {diff}", reference.file);
        let head = max_abs_diff(&ours[..8], &reference.pixel_values_head);
        assert!(
            head < 1e-5,
            "{}: first values differ by {head}",
            reference.file
        );
    }
}

#[test]
fn targetpad_preprocessing_matches_clip4cir() {
    let preprocessor =
        ImagePreprocessor::new(224, Resize::TargetPad { ratio: 1.25 }, Normalization::Clip);
    for reference in expected().images {
        // CLIP4Cir converts to RGB after resizing; fiq converts first. Only transparent images differ.
        if reference.file == "alpha.png" {
            continue;
        }
        let ours = preprocessor
            .load(&reference_input(&reference.file))
            .unwrap();
        let crop = image::open(
            fixture_dir()
                .join("crops")
                .join(format!("{}.targetpad.png", reference.file)),
        )
        .unwrap()
        .to_rgb8();
        let diff = max_abs_diff(&ours, &normalized_crop(&crop));
        assert!(diff < 1e-5, "{}: max abs diff {diff}", reference.file);
    }
}

#[test]
fn imagenet_normalization_uses_imagenet_statistics() {
    let white = DynamicImage::ImageRgb8(RgbImage::from_pixel(50, 50, Rgb([255, 255, 255])));
    let pixels =
        ImagePreprocessor::new(32, Resize::ShortSide, Normalization::ImageNet).preprocess(&white);
    let plane = 32 * 32;
    for (c, (mean, std)) in [(0.485f32, 0.229f32), (0.456, 0.224), (0.406, 0.225)]
        .into_iter()
        .enumerate()
    {
        assert!((pixels[c * plane] - (1.0 - mean) / std).abs() < 1e-6);
    }
}

/// (input width, height, resize) → every output is size² per channel, and a flat image stays flat.
#[test]
fn any_size_and_aspect_ratio_gives_a_square_input() {
    let cases = [
        (224, 224, Resize::ShortSide),
        (1, 1, Resize::ShortSide),
        (1, 3000, Resize::ShortSide),
        (3000, 2, Resize::ShortSide),
        (225, 224, Resize::ShortSide),
        (640, 480, Resize::TargetPad { ratio: 1.25 }),
        (100, 400, Resize::TargetPad { ratio: 1.25 }),
        (400, 100, Resize::TargetPad { ratio: 1.0 }),
    ];
    for (width, height, resize) in cases {
        let image =
            DynamicImage::ImageRgb8(RgbImage::from_pixel(width, height, Rgb([90, 140, 200])));
        let preprocessor = ImagePreprocessor::new(64, resize, Normalization::Clip);
        let pixels = preprocessor.preprocess(&image);
        assert_eq!(pixels.len(), 3 * 64 * 64, "{width}x{height}");
        if matches!(resize, Resize::ShortSide) {
            let plane = 64 * 64;
            let first = [pixels[0], pixels[plane], pixels[2 * plane]];
            for c in 0..3 {
                assert!(
                    pixels[c * plane..(c + 1) * plane]
                        .iter()
                        .all(|&v| v == first[c]),
                    "{width}x{height}"
                );
            }
        }
    }
}

#[test]
fn grayscale_and_opaque_alpha_equal_their_rgb_version() {
    let gray = ImageBuffer::from_fn(40, 30, |x, y| Luma([(x * 5 + y * 3) as u8]));
    let as_rgb = DynamicImage::ImageRgb8(DynamicImage::ImageLuma8(gray.clone()).to_rgb8());
    let opaque = ImageBuffer::from_fn(40, 30, |x, y| {
        let v = (x * 5 + y * 3) as u8;
        Rgba([v, v, v, 255])
    });
    let preprocessor = ImagePreprocessor::new(32, Resize::ShortSide, Normalization::Clip);
    let reference = preprocessor.preprocess(&as_rgb);
    assert_eq!(
        preprocessor.preprocess(&DynamicImage::ImageLuma8(gray)),
        reference
    );
    assert_eq!(
        preprocessor.preprocess(&DynamicImage::ImageRgba8(opaque)),
        reference
    );
}

#[test]
fn fully_transparent_pixels_become_white() {
    let transparent = DynamicImage::ImageRgba8(ImageBuffer::from_pixel(10, 10, Rgba([0, 0, 0, 0])));
    let white = DynamicImage::ImageRgb8(RgbImage::from_pixel(10, 10, Rgb([255, 255, 255])));
    let preprocessor = ImagePreprocessor::new(16, Resize::ShortSide, Normalization::Clip);
    assert_eq!(
        preprocessor.preprocess(&transparent),
        preprocessor.preprocess(&white)
    );
}

#[test]
fn sixteen_bit_images_equal_their_eight_bit_rounding() {
    let dir = tempfile::tempdir().unwrap();
    let rgb16 = ImageBuffer::from_fn(48, 36, |x, y| {
        Rgb([(x * 1300) as u16, (y * 1700) as u16, (x * y * 37) as u16])
    });
    let gray16 = ImageBuffer::from_fn(48, 36, |x, y| Luma([(x * 900 + y * 400) as u16]));
    let preprocessor = ImagePreprocessor::new(32, Resize::ShortSide, Normalization::Clip);
    let eight_bit = |v: u16| ((u32::from(v) + 128) / 257) as u8;
    for (name, image) in [
        ("rgb16.png", DynamicImage::ImageRgb16(rgb16)),
        ("gray16.png", DynamicImage::ImageLuma16(gray16)),
    ] {
        let path = dir.path().join(name);
        image.save(&path).unwrap();
        let rounded = match &image {
            DynamicImage::ImageRgb16(img) => {
                RgbImage::from_fn(48, 36, |x, y| Rgb(img.get_pixel(x, y).0.map(eight_bit)))
            }
            DynamicImage::ImageLuma16(img) => {
                RgbImage::from_fn(48, 36, |x, y| Rgb([eight_bit(img.get_pixel(x, y)[0]); 3]))
            }
            _ => unreachable!(),
        };
        let from_file = preprocessor.load(&path).unwrap();
        assert_eq!(
            from_file,
            preprocessor.preprocess(&DynamicImage::ImageRgb8(rounded)),
            "{name}"
        );
    }
}

#[test]
fn cmyk_jpeg_decodes_close_to_pillow() {
    // JPEG decoders differ by a level or two, so this compares within a tolerance, not exactly.
    let preprocessor = ImagePreprocessor::new(48, Resize::ShortSide, Normalization::Clip);
    let ours = preprocessor
        .load(&fixture_dir().join("images/cmyk.jpg"))
        .unwrap();
    let pillow = image::open(fixture_dir().join("crops/cmyk.jpg.pil-rgb.png")).unwrap();
    let reference = preprocessor.preprocess(&pillow);
    let mean_levels = ours
        .iter()
        .zip(&reference)
        .map(|(a, b)| f64::from((a - b).abs()))
        .sum::<f64>()
        / ours.len() as f64
        * 0.27
        * 255.0;
    assert!(mean_levels < 3.0, "mean difference {mean_levels:.2} levels");
}

#[test]
fn text_embeddings_do_not_depend_on_batching_or_padding() {
    let texts = [
        "a red dress",
        "is darker and has long sleeves with a floral pattern",
        "blue",
        "café",
    ];
    let batched = load(&EncoderOptions {
        batch_size: 4,
        ..EncoderOptions::default()
    })
    .encode_texts(&texts)
    .unwrap();
    let alone = load(&EncoderOptions {
        batch_size: 1,
        ..EncoderOptions::default()
    });
    for (i, text) in texts.iter().enumerate() {
        let single = alone.encode_texts(&[text]).unwrap();
        let diff = max_abs_diff(&single[0], &batched[i]);
        assert!(diff < 1e-6, "{text:?}: batched vs alone differ by {diff}");
    }
}

#[test]
fn image_batch_survives_corrupt_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt.jpg");
    std::fs::write(&corrupt, b"\xff\xd8\xff\xe0 definitely not a jpeg").unwrap();
    let truncated = dir.path().join("truncated.png");
    let png = std::fs::read(fixture_dir().join("images/alpha.png")).unwrap();
    std::fs::write(&truncated, &png[..png.len() / 3]).unwrap();
    let missing = dir.path().join("missing.png");
    let good = fixture_dir().join("images/landscape.jpg");
    let encoder = load(&EncoderOptions {
        batch_size: 2,
        ..EncoderOptions::default()
    });
    let inputs = [&good, &corrupt, &missing, &truncated, &good];
    let sources: Vec<ImageSource<'_>> = inputs.iter().map(|p| ImageSource::from(*p)).collect();
    let results = encoder.encode_images(&sources).unwrap();
    assert_eq!(results.len(), 5);
    let alone = encoder
        .encode_images(&[ImageSource::from(&good)])
        .unwrap()
        .remove(0)
        .unwrap();
    assert!(max_abs_diff(results[0].as_ref().unwrap(), &alone) < 1e-6);
    assert!(max_abs_diff(results[4].as_ref().unwrap(), &alone) < 1e-6);
    match &results[1] {
        Err(e @ ImageError::Decode { .. }) => assert_eq!(e.path(), corrupt),
        other => panic!("corrupt file: {other:?}"),
    }
    match &results[2] {
        Err(e @ ImageError::Read { .. }) => assert_eq!(e.path(), missing),
        other => panic!("missing file: {other:?}"),
    }
    assert!(
        matches!(&results[3], Err(ImageError::Decode { .. })),
        "truncated file: {:?}",
        results[3]
    );
    assert!(results[1]
        .as_ref()
        .unwrap_err()
        .to_string()
        .contains("corrupt.jpg"));
}

#[test]
fn in_memory_images_equal_files() {
    let encoder = load(&EncoderOptions::default());
    let path = fixture_dir().join("images/tall.webp");
    let image = image::open(&path).unwrap();
    // One call each, so that both land in the same row of a one-image batch: BLAS kernels may round
    // a row differently depending on where it sits in the matrix (last bits only; see the batching test).
    let from_file = encoder.encode_images(&[ImageSource::from(&path)]).unwrap();
    let from_memory = encoder.encode_images(&[ImageSource::from(&image)]).unwrap();
    assert_eq!(
        from_file[0].as_ref().unwrap(),
        from_memory[0].as_ref().unwrap()
    );
}

#[test]
fn empty_text_is_rejected_by_index() {
    let encoder = load(&EncoderOptions::default());
    assert!(matches!(
        encoder.encode_texts(&["ok", ""]),
        Err(EncoderError::EmptyText { index: 1 })
    ));
}

/// A copy of the fixture model directory whose tensors `edit` may change.
fn edited_model(edit: impl FnOnce(&mut HashMap<String, candle_core::Tensor>)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for file in ["config.json", "tokenizer.json"] {
        std::fs::copy(fixture_dir().join(file), dir.path().join(file)).unwrap();
    }
    let mut tensors = candle_core::safetensors::load(
        fixture_dir().join("model.safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    edit(&mut tensors);
    candle_core::safetensors::save(&tensors, dir.path().join("model.safetensors")).unwrap();
    dir
}

#[test]
fn missing_tensor_is_named() {
    let name = "vision_model.encoder.layers.1.mlp.fc2.bias";
    let dir = edited_model(|t| {
        t.remove(name);
    });
    match ClipEncoder::load(dir.path(), &EncoderOptions::default()) {
        Err(EncoderError::MissingTensor { name: missing, .. }) => assert_eq!(missing, name),
        other => panic!("expected MissingTensor, got {:?}", other.err()),
    }
}

#[test]
fn misshaped_tensor_is_named_with_both_shapes() {
    let name = "text_projection.weight";
    let dir = edited_model(|t| {
        let w = t[name].narrow(0, 0, 8).unwrap();
        t.insert(name.to_string(), w);
    });
    let err = ClipEncoder::load(dir.path(), &EncoderOptions::default())
        .err()
        .unwrap();
    match &err {
        EncoderError::TensorShape {
            name: n,
            expected,
            found,
            ..
        } => {
            assert_eq!(n, name);
            assert_eq!(expected, &[16, 16]);
            assert_eq!(found, &[8, 16]);
        }
        other => panic!("expected TensorShape, got {other:?}"),
    }
    assert!(err.to_string().contains(name), "{err}");
}

#[test]
fn missing_file_and_unsupported_config_are_named() {
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        ClipEncoder::load(empty.path(), &EncoderOptions::default()),
        Err(EncoderError::MissingFile {
            file: "config.json",
            ..
        })
    ));
    let dir = edited_model(|_| {});
    let config = std::fs::read_to_string(dir.path().join("config.json"))
        .unwrap()
        .replace("\"gelu\"", "\"relu\"");
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    match ClipEncoder::load(dir.path(), &EncoderOptions::default()) {
        Err(EncoderError::UnsupportedConfig { field, value, .. }) => {
            assert_eq!(field, "vision_config.hidden_act");
            assert_eq!(value, "relu");
        }
        other => panic!("expected UnsupportedConfig, got {:?}", other.err()),
    }
}

#[test]
fn fingerprint_tracks_weights_and_preprocessing() {
    let base = load(&EncoderOptions::default());
    assert_eq!(base.dim(), 16);
    assert_eq!(
        base.info().fingerprint,
        load(&EncoderOptions::default()).info().fingerprint
    );
    let padded = load(&EncoderOptions {
        resize: Resize::TargetPad { ratio: 1.25 },
        ..EncoderOptions::default()
    });
    assert_ne!(base.info().fingerprint, padded.info().fingerprint);
    assert!(!base.info().accepts(padded.info()));
    let dir = edited_model(|t| {
        let name = "vision_model.encoder.layers.0.mlp.fc1.weight";
        let w = (&t[name] * 1.01).unwrap();
        t.insert(name.to_string(), w);
    });
    let retrained = ClipEncoder::load(dir.path(), &EncoderOptions::default()).unwrap();
    assert_ne!(base.info().fingerprint, retrained.info().fingerprint);
}

#[test]
fn half_precision_stays_close_to_f32() {
    use fiq::encoder::Precision;
    let full = load(&EncoderOptions::default());
    let half = load(&EncoderOptions {
        precision: Precision::F16,
        ..EncoderOptions::default()
    });
    let texts = ["a red dress", "is darker and has long sleeves"];
    let (a, b) = (
        full.encode_texts(&texts).unwrap(),
        half.encode_texts(&texts).unwrap(),
    );
    for (x, y) in a.iter().zip(&b) {
        let diff = max_abs_diff(x, y);
        assert!(diff < 2e-2, "f16 vs f32 text embedding differ by {diff}");
    }
    let path = fixture_dir().join("images/tall.webp");
    let x = full
        .encode_images(&[ImageSource::from(&path)])
        .unwrap()
        .remove(0)
        .unwrap();
    let y = half
        .encode_images(&[ImageSource::from(&path)])
        .unwrap()
        .remove(0)
        .unwrap();
    assert!(max_abs_diff(&x, &y) < 2e-2);
}

/// The stated bf16 tolerance on the CPU: every embedding (unit length) within 0.01 of f32 per coordinate
/// and at cosine 0.9995 or more (measured on this fixture: 0.0031 and 0.99998).
const CPU_BF16_MAX_ABS_DIFF: f32 = 1e-2;
const CPU_BF16_MIN_COSINE: f32 = 0.9995;

#[test]
fn bf16_on_cpu_stays_close_to_f32_or_is_a_clear_error_without_the_units() {
    use fiq::encoder::{cpu_supports_bf16, Precision};
    let options = EncoderOptions {
        precision: Precision::BF16,
        ..EncoderOptions::default()
    };
    if !cpu_supports_bf16() {
        eprintln!(
            "*** bf16 parity SKIPPED: this CPU has no AVX512-BF16; checking the clear error instead ***"
        );
        match ClipEncoder::load(&fixture_dir(), &options) {
            Err(EncoderError::Device { reason, .. }) => assert!(reason.contains("AVX512-BF16")),
            other => panic!("expected a Device error, got {:?}", other.err()),
        }
        return;
    }
    let full = load(&EncoderOptions::default());
    let bf16 = load(&options);
    assert_eq!(full.info().fingerprint, bf16.info().fingerprint);
    let texts = [
        "a red dress",
        "is darker and has long sleeves",
        "is a maxi dress with thin straps and a belt at the waist, in navy blue",
    ];
    let mut pairs: Vec<(Vec<f32>, Vec<f32>)> = full
        .encode_texts(&texts)
        .unwrap()
        .into_iter()
        .zip(bf16.encode_texts(&texts).unwrap())
        .collect();
    let paths: Vec<PathBuf> = ["tall.webp", "landscape.jpg", "cmyk.jpg", "alpha.png"]
        .iter()
        .map(|name| fixture_dir().join("images").join(name))
        .collect();
    let images: Vec<ImageSource> = paths.iter().map(ImageSource::from).collect();
    for (x, y) in full
        .encode_images(&images)
        .unwrap()
        .into_iter()
        .zip(bf16.encode_images(&images).unwrap())
    {
        pairs.push((x.unwrap(), y.unwrap()));
    }
    let (mut worst_diff, mut worst_cosine) = (0f32, 1f32);
    for (x, y) in &pairs {
        assert_ne!(x, y, "bf16 must not silently run the f32 path");
        worst_diff = worst_diff.max(max_abs_diff(x, y));
        worst_cosine = worst_cosine.min(x.iter().zip(y).map(|(a, b)| a * b).sum());
    }
    eprintln!("bf16 vs f32 on the CPU: max |diff| {worst_diff:.5}, min cosine {worst_cosine:.6}");
    assert!(
        worst_diff < CPU_BF16_MAX_ABS_DIFF,
        "max |diff| {worst_diff}"
    );
    assert!(
        worst_cosine > CPU_BF16_MIN_COSINE,
        "min cosine {worst_cosine}"
    );
}

#[test]
fn missing_cuda_is_a_clear_error() {
    use fiq::encoder::ComputeDevice;
    if !cfg!(feature = "cuda") {
        let cuda = ClipEncoder::load(
            &fixture_dir(),
            &EncoderOptions {
                device: ComputeDevice::Cuda(0),
                ..EncoderOptions::default()
            },
        );
        assert!(matches!(cuda, Err(EncoderError::Device { .. })));
    }
}
