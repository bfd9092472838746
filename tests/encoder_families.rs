//! OpenCLIP (ViT, modified ResNet) and BLIP retrieval encoders against their references (open_clip_torch,
//! transformers), on the tiny random-weight models `tools/clip_reference.py families` generated into
//! tests/fixtures/{openclip-vit-tiny, openclip-rn-tiny, blip-tiny}, under every preprocessing preset.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use fiq::encoder::{
    detect_family, load_encoder, ClipEncoder, Encoder, EncoderError, EncoderOptions, Family,
    ImageSource, Normalization, Resize,
};
use serde::Deserialize;

const FIXTURES: [(&str, Family); 3] = [
    ("openclip-vit-tiny", Family::OpenClip),
    ("openclip-rn-tiny", Family::OpenClip),
    ("blip-tiny", Family::Blip),
];

/// The presets of `tools/clip_reference.py`, by the name its expected.json uses.
const PRESETS: [(&str, Resize, Normalization); 4] = [
    ("shortside", Resize::ShortSide, Normalization::Clip),
    (
        "targetpad",
        Resize::TargetPad { ratio: 1.25 },
        Normalization::Clip,
    ),
    ("squash-clip", Resize::Squash, Normalization::Clip),
    ("squash-imagenet", Resize::Squash, Normalization::ImageNet),
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[derive(Deserialize)]
struct Expected {
    images: Vec<ExpectedImage>,
    texts: Vec<ExpectedText>,
}

#[derive(Deserialize)]
struct ExpectedImage {
    file: String,
    embeddings: HashMap<String, Vec<f32>>,
}

#[derive(Deserialize)]
struct ExpectedText {
    text: String,
    embedding: Vec<f32>,
}

fn expected(fixture: &str) -> Expected {
    let path = fixtures().join(fixture).join("expected.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

impl Expected {
    /// The files the reference encoded, in its order (see [`reference_input`]).
    fn image_inputs(&self) -> Vec<PathBuf> {
        self.images
            .iter()
            .map(|i| reference_input(&i.file))
            .collect()
    }
}

fn options(resize: Resize, normalization: Normalization) -> EncoderOptions {
    EncoderOptions {
        resize,
        normalization,
        batch_size: 3,
        ..EncoderOptions::default()
    }
}

fn load(fixture: &str, options: &EncoderOptions) -> ClipEncoder {
    load_encoder(&fixtures().join(fixture), None, options)
        .unwrap_or_else(|e| panic!("{fixture}: {e}"))
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The image the reference read: Pillow's decoding of a JPEG (saved beside clip-tiny's crops), since
/// JPEG decoders differ by a level or two; the file itself otherwise.
fn reference_input(file: &str) -> PathBuf {
    let clip_tiny = fixtures().join("clip-tiny");
    let decoded = clip_tiny.join("crops").join(format!("{file}.decoded.png"));
    if decoded.exists() {
        decoded
    } else {
        clip_tiny.join("images").join(file)
    }
}

#[test]
fn image_embeddings_match_the_references_under_every_preset() {
    for (fixture, _) in FIXTURES {
        let expected = expected(fixture);
        for (preset, resize, normalization) in PRESETS {
            let encoder = load(fixture, &options(resize, normalization));
            let paths = expected.image_inputs();
            let sources: Vec<ImageSource> = paths.iter().map(ImageSource::from).collect();
            let vectors = encoder.encode_images(&sources).unwrap();
            let mut worst = 0f32;
            for (reference, vector) in expected.images.iter().zip(vectors) {
                let vector = vector.unwrap();
                let diff = max_abs_diff(&vector, &reference.embeddings[preset]);
                assert!(
                    diff < 1e-4,
                    "{fixture} {preset} {}: max abs diff {diff}",
                    reference.file
                );
                worst = worst.max(diff);
            }
            eprintln!("{fixture} images, {preset}: max abs diff {worst:.2e}");
        }
    }
}

#[test]
fn text_embeddings_match_the_references() {
    for (fixture, _) in FIXTURES {
        let expected = expected(fixture);
        let encoder = load(fixture, &EncoderOptions::default());
        let texts: Vec<&str> = expected.texts.iter().map(|t| t.text.as_str()).collect();
        let vectors = encoder.encode_texts(&texts).unwrap();
        let mut worst = 0f32;
        for (reference, vector) in expected.texts.iter().zip(&vectors) {
            let diff = max_abs_diff(vector, &reference.embedding);
            assert!(
                diff < 1e-4,
                "{fixture} {:?}: max abs diff {diff}",
                reference.text
            );
            worst = worst.max(diff);
        }
        // Alone, each text has no padding: BLIP's attention mask and CLIP's causal mask must make the
        // batched (padded) vectors equal the single ones.
        for (text, batched) in texts.iter().zip(&vectors) {
            let single = &encoder.encode_texts(&[text]).unwrap()[0];
            assert!(
                max_abs_diff(single, batched) < 1e-5,
                "{fixture} {text:?}: padding changed the vector"
            );
        }
        eprintln!("{fixture} texts: max abs diff {worst:.2e}");
    }
}

#[test]
fn families_are_detected_and_named() {
    for (fixture, family) in FIXTURES {
        let dir = fixtures().join(fixture);
        assert_eq!(detect_family(&dir).unwrap(), family, "{fixture}");
        let encoder = load(fixture, &EncoderOptions::default());
        assert_eq!(encoder.dim(), 16, "{fixture}");
        let info = encoder.info().clone();
        assert!(
            info.name.ends_with(&format!("/{fixture}")),
            "{fixture}: {}",
            info.name
        );
    }
    let name = |fixture| {
        load(fixture, &EncoderOptions::default())
            .info()
            .name
            .clone()
    };
    assert!(name("openclip-rn-tiny").starts_with("openclip-RN"));
    assert!(name("openclip-vit-tiny").starts_with("openclip-ViT-"));
    assert!(name("blip-tiny").starts_with("blip-itc/"));
    assert_eq!(
        detect_family(&fixtures().join("clip-tiny")).unwrap(),
        Family::Clip
    );
}

#[test]
fn fingerprints_separate_families_and_presets() {
    let mut seen = HashMap::new();
    for (fixture, _) in FIXTURES.iter().chain([("clip-tiny", Family::Clip)].iter()) {
        for (preset, resize, normalization) in PRESETS {
            let info = load(fixture, &options(resize, normalization))
                .info()
                .clone();
            assert!(info.preprocessing.contains(match resize {
                Resize::Squash => "squash",
                Resize::TargetPad { .. } => "targetpad",
                Resize::ShortSide => "shortside",
            }));
            if let Some(previous) = seen.insert(info.fingerprint.clone(), (fixture, preset)) {
                panic!("{fixture} {preset} has the fingerprint of {previous:?}");
            }
        }
    }
}

#[test]
fn the_family_can_be_forced_and_a_wrong_one_is_a_clear_error() {
    let dir = fixtures().join("openclip-vit-tiny");
    let options = EncoderOptions::default();
    let forced = load_encoder(&dir, Some(Family::OpenClip), &options).unwrap();
    assert_eq!(forced.info(), load("openclip-vit-tiny", &options).info());
    match load_encoder(&dir, Some(Family::Blip), &options) {
        Err(EncoderError::MissingFile { file, .. }) => assert_eq!(file, "config.json"),
        other => panic!("expected MissingFile, got {:?}", other.err()),
    }
    match load_encoder(&fixtures().join("blip-tiny"), Some(Family::Clip), &options) {
        Err(EncoderError::UnsupportedConfig { field, .. }) => assert_eq!(field, "model_type"),
        other => panic!("expected UnsupportedConfig, got {:?}", other.err()),
    }
}

/// A copy of `fixture` with its weights file rewritten by `edit`.
fn edited_copy(
    fixture: &str,
    weights: &str,
    edit: impl FnOnce(&mut HashMap<String, candle_core::Tensor>),
) -> tempfile::TempDir {
    let source = fixtures().join(fixture);
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            // `copy` follows the tokenizer link to clip-tiny's file.
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    let path = dir.path().join(weights);
    let mut tensors = candle_core::safetensors::load(&path, &candle_core::Device::Cpu).unwrap();
    edit(&mut tensors);
    candle_core::safetensors::save(&tensors, &path).unwrap();
    dir
}

#[test]
fn missing_and_misshaped_tensors_are_named_in_the_source_naming() {
    let options = EncoderOptions::default();
    let cases = [
        (
            "openclip-vit-tiny",
            "open_clip_model.safetensors",
            "transformer.resblocks.1.attn.in_proj_weight",
        ),
        (
            "openclip-rn-tiny",
            "open_clip_model.safetensors",
            "visual.layer2.1.bn2.running_var",
        ),
        (
            "blip-tiny",
            "model.safetensors",
            "text_encoder.encoder.layer.0.attention.self.query.weight",
        ),
    ];
    for (fixture, weights, tensor) in cases {
        let dir = edited_copy(fixture, weights, |t| {
            t.remove(tensor);
        });
        match load_encoder(dir.path(), None, &options) {
            Err(EncoderError::MissingTensor { name, .. }) => assert_eq!(name, tensor),
            other => panic!("{fixture}: expected MissingTensor, got {:?}", other.err()),
        }
        let dir = edited_copy(fixture, weights, |t| {
            let wrong =
                candle_core::Tensor::zeros(3, candle_core::DType::F32, &candle_core::Device::Cpu);
            t.insert(tensor.to_string(), wrong.unwrap());
        });
        match load_encoder(dir.path(), None, &options) {
            Err(EncoderError::TensorShape { name, found, .. }) => {
                assert_eq!((name.as_str(), found), (tensor, vec![3]))
            }
            other => panic!("{fixture}: expected TensorShape, got {:?}", other.err()),
        }
    }
}

#[test]
fn an_openclip_pickle_alone_names_the_conversion() {
    let dir = tempfile::tempdir().unwrap();
    let source = fixtures().join("openclip-vit-tiny");
    std::fs::copy(
        source.join("open_clip_config.json"),
        dir.path().join("open_clip_config.json"),
    )
    .unwrap();
    std::fs::write(dir.path().join("open_clip_pytorch_model.bin"), b"not read").unwrap();
    let Err(err) = load_encoder(dir.path(), None, &EncoderOptions::default()) else {
        panic!("a directory holding only the pickle loaded");
    };
    assert!(
        matches!(err, EncoderError::UnsupportedConfig { .. }) && err.to_string().contains("README"),
        "{err}"
    );
}

/// The manual full-size check of BENCHMARKS.md, on a random-weight model at real shapes that
/// `tools/clip_reference.py family-full KIND DIR` wrote with its reference embeddings:
/// `FIQ_FULL_MODEL=DIR cargo test --release --test encoder_families -- --ignored --nocapture`.
#[test]
#[ignore = "manual: needs FIQ_FULL_MODEL, a directory written by tools/clip_reference.py family-full"]
fn full_size_model_matches_its_reference() {
    let dir = PathBuf::from(
        std::env::var("FIQ_FULL_MODEL").expect("FIQ_FULL_MODEL names the model directory"),
    );
    let text = std::fs::read_to_string(dir.join("reference.json")).unwrap();
    let expected: Expected = serde_json::from_str(&text).unwrap();
    let family = detect_family(&dir).unwrap();
    let (resize, normalization) = family.default_preprocessing();
    let preset = match resize {
        Resize::Squash => "squash-clip",
        _ => "shortside",
    };
    let encoder = load_encoder(&dir, None, &options(resize, normalization)).unwrap();
    let paths = expected.image_inputs();
    let sources: Vec<ImageSource> = paths.iter().map(ImageSource::from).collect();
    let images = encoder.encode_images(&sources).unwrap();
    let image_diff = expected
        .images
        .iter()
        .zip(images)
        .map(|(e, v)| max_abs_diff(&v.unwrap(), &e.embeddings[preset]))
        .fold(0f32, f32::max);
    let texts: Vec<&str> = expected.texts.iter().map(|t| t.text.as_str()).collect();
    let text_diff = expected
        .texts
        .iter()
        .zip(encoder.encode_texts(&texts).unwrap())
        .map(|(e, v)| max_abs_diff(&v, &e.embedding))
        .fold(0f32, f32::max);
    eprintln!(
        "{}: images ({preset}) max abs diff {image_diff:.2e}, texts {text_diff:.2e}",
        encoder.info().name
    );
    assert!(image_diff < 1e-4 && text_diff < 1e-4);
}

/// bf16 on the CPU for every family: the transformer towers stay within the tolerance `tests/encoder.rs`
/// states for CLIP, and RN50's convolutions, which have no bf16 kernel, refuse it with a clear error.
#[test]
fn bf16_on_cpu_stays_close_to_f32_for_transformer_families() {
    use fiq::encoder::{cpu_supports_bf16, Precision};
    if !cpu_supports_bf16() {
        eprintln!("*** bf16 family parity SKIPPED: this CPU has no AVX512-BF16 ***");
        return;
    }
    let bf16 = EncoderOptions {
        precision: Precision::BF16,
        ..options(Resize::ShortSide, Normalization::Clip)
    };
    for (fixture, _) in FIXTURES {
        if fixture == "openclip-rn-tiny" {
            match load_encoder(&fixtures().join(fixture), None, &bf16) {
                Err(EncoderError::Device { reason, .. }) => assert!(reason.contains("RN50")),
                other => panic!("{fixture}: expected a Device error, got {:?}", other.err()),
            }
            continue;
        }
        let full = load(fixture, &options(Resize::ShortSide, Normalization::Clip));
        let half = load(fixture, &bf16);
        let expected = expected(fixture);
        let paths = expected.image_inputs();
        let sources: Vec<ImageSource> = paths.iter().map(ImageSource::from).collect();
        let texts: Vec<&str> = expected.texts.iter().map(|t| t.text.as_str()).collect();
        let mut pairs: Vec<(Vec<f32>, Vec<f32>)> = Vec::new();
        for (a, b) in full
            .encode_images(&sources)
            .unwrap()
            .into_iter()
            .zip(half.encode_images(&sources).unwrap())
        {
            pairs.push((a.unwrap(), b.unwrap()));
        }
        pairs.extend(
            full.encode_texts(&texts)
                .unwrap()
                .into_iter()
                .zip(half.encode_texts(&texts).unwrap()),
        );
        let worst = pairs
            .iter()
            .map(|(a, b)| max_abs_diff(a, b))
            .fold(0f32, f32::max);
        eprintln!("{fixture}: bf16 vs f32 max abs diff {worst:.4}");
        assert!(worst < 1e-2, "{fixture}: bf16 vs f32 max abs diff {worst}");
        assert!(
            pairs.iter().any(|(a, b)| a != b),
            "{fixture}: bf16 must not silently run f32"
        );
    }
}
