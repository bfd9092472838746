//! Throughput of fiq's encoders (any family `load_encoder` reads): images/s and texts/s at several batch
//! sizes.
//!
//! ```text
//! cargo run --release --example bench_encoder -- MODEL_DIR [--batches 16,64] [--images 128] [--texts 256] [--jpeg] [--json]
//!     [--device cpu|cuda:N] [--precision f32|f16|bf16]
//! ```
//! A GPU run needs a build with `--features cuda`. Each line also gives the time inside the model
//! (upload, forward pass, read-back), without the decoding and preprocessing that overlap with it.
//! `tools/python/bench_encoder.py` runs this beside PyTorch on the same checkpoint and prints the comparison.
//! Images are synthetic RGB in memory at the model's input size with the family's own preprocessing (which
//! is then a copy and a normalization), so the number is the model's; `--jpeg` adds an end-to-end run over 500×375 JPEG files (decode, resize,
//! crop, normalize, model).

use std::path::PathBuf;
use std::time::Instant;

use fiq::encoder::{
    detect_family, load_encoder, ClipEncoder, ComputeDevice, Encoder, EncoderOptions, ImageSource,
    Precision,
};
use image::{DynamicImage, Rgb, RgbImage};

struct Args {
    model: PathBuf,
    batches: Vec<usize>,
    images: usize,
    texts: usize,
    jpeg: bool,
    json: bool,
    device: ComputeDevice,
    precision: Precision,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut parsed = Args {
        model: PathBuf::new(),
        batches: vec![16, 64],
        images: 128,
        texts: 256,
        jpeg: false,
        json: false,
        device: ComputeDevice::Cpu,
        precision: Precision::F32,
    };
    let mut model = None;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--batches" => {
                parsed.batches = value("--batches")?
                    .split(',')
                    .map(|b| b.parse().map_err(|_| format!("bad batch size {b:?}")))
                    .collect::<Result<_, _>>()?
            }
            "--images" => parsed.images = value("--images")?.parse().map_err(|_| "bad --images")?,
            "--texts" => parsed.texts = value("--texts")?.parse().map_err(|_| "bad --texts")?,
            "--device" => parsed.device = value("--device")?.parse()?,
            "--precision" => parsed.precision = value("--precision")?.parse()?,
            "--jpeg" => parsed.jpeg = true,
            "--json" => parsed.json = true,
            other if model.is_none() && !other.starts_with("--") => {
                model = Some(PathBuf::from(other))
            }
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    parsed.model = model.ok_or("usage: bench_encoder MODEL_DIR [--batches 16,64] [--images N] [--texts N] [--jpeg] [--json] [--device cpu|cuda:N] [--precision f32|f16|bf16]")?;
    Ok(parsed)
}

fn synthetic_image(seed: u32, width: u32, height: u32) -> RgbImage {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    RgbImage::from_fn(width, height, |x, y| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let noise = (state & 63) as u8;
        Rgb([
            (x as u8).wrapping_add(noise),
            (y as u8).wrapping_add(noise / 2),
            ((x + y) as u8) ^ noise,
        ])
    })
}

fn captions(count: usize) -> Vec<String> {
    let colours = [
        "red",
        "navy blue",
        "black",
        "white",
        "floral",
        "striped",
        "pastel pink",
        "olive green",
    ];
    let changes = [
        "is darker and has long sleeves",
        "is more casual and shorter",
        "has a v-neck and no pattern",
        "is a maxi dress with thin straps and a belt at the waist",
        "is less formal, lighter in colour and has a graphic print of a band logo on the front",
    ];
    (0..count)
        .map(|i| {
            format!(
                "{} and is {}",
                changes[i % changes.len()],
                colours[(i / 5) % colours.len()]
            )
        })
        .collect()
}

/// One timed run: `seconds` of wall time, `model_seconds` of it inside the model.
fn report(json: bool, what: &str, batch: usize, items: usize, seconds: f64, model_seconds: f64) {
    if json {
        println!(
            r#"{{"what":"{what}","batch":{batch},"items":{items},"seconds":{seconds},"model_seconds":{model_seconds}}}"#
        );
    } else {
        println!(
            "{what:<12} batch {batch:>3}: {items:>5} in {seconds:>7.3} s = {:>8.1} /s (model alone {:>8.1} /s)",
            items as f64 / seconds,
            items as f64 / model_seconds
        );
    }
}

/// Seconds the encoder spent in its image and text models so far.
fn model_seconds(encoder: &ClipEncoder) -> (f64, f64) {
    let timings = encoder.timings().unwrap_or_default();
    (
        timings.image_forward.as_secs_f64(),
        timings.text_forward.as_secs_f64(),
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let (resize, normalization) = detect_family(&args.model)?.default_preprocessing();
    let options = |batch_size| EncoderOptions {
        batch_size,
        device: args.device,
        precision: args.precision,
        resize,
        normalization,
        ..EncoderOptions::default()
    };
    let size = load_encoder(&args.model, None, &options(1))?
        .preprocessor()
        .size() as u32;
    let images: Vec<DynamicImage> = (0..args.images as u32)
        .map(|i| DynamicImage::ImageRgb8(synthetic_image(i, size, size)))
        .collect();
    let texts = captions(args.texts);
    let text_refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let jpeg_dir = tempfile::tempdir()?;
    let mut jpeg_paths = Vec::new();
    if args.jpeg {
        for i in 0..args.images as u32 {
            let path = jpeg_dir.path().join(format!("{i}.jpg"));
            synthetic_image(i, 500, 375).save(&path)?;
            jpeg_paths.push(path);
        }
    }

    for &batch in &args.batches {
        let encoder = load_encoder(&args.model, None, &options(batch))?;
        let warmup: Vec<ImageSource<'_>> =
            images.iter().take(batch).map(ImageSource::from).collect();
        encoder.encode_images(&warmup)?;
        let sources: Vec<ImageSource<'_>> = images.iter().map(ImageSource::from).collect();
        let (image_before, _) = model_seconds(&encoder);
        let start = Instant::now();
        let results = encoder.encode_images(&sources)?;
        report(
            args.json,
            "image",
            batch,
            results.len(),
            start.elapsed().as_secs_f64(),
            model_seconds(&encoder).0 - image_before,
        );

        if args.jpeg {
            let sources: Vec<ImageSource<'_>> = jpeg_paths.iter().map(ImageSource::from).collect();
            let (image_before, _) = model_seconds(&encoder);
            let start = Instant::now();
            let results = encoder.encode_images(&sources)?;
            if let Some(Err(error)) = results.iter().find(|r| r.is_err()) {
                return Err(format!("a generated JPEG failed to encode: {error}").into());
            }
            report(
                args.json,
                "image-jpeg",
                batch,
                results.len(),
                start.elapsed().as_secs_f64(),
                model_seconds(&encoder).0 - image_before,
            );
        }

        encoder.encode_texts(&text_refs[..batch.min(text_refs.len())])?;
        let (_, text_before) = model_seconds(&encoder);
        let start = Instant::now();
        let vectors = encoder.encode_texts(&text_refs)?;
        report(
            args.json,
            "text",
            batch,
            vectors.len(),
            start.elapsed().as_secs_f64(),
            model_seconds(&encoder).1 - text_before,
        );
    }
    Ok(())
}
