//! The built-in default model (models/fiq-default, trained by tools/python/train_default_model.py on the train
//! split of synthetic seed 7) loads through the ordinary CLIP code path and has learned fiq's synthetic
//! garments, checked on a tree generated with another seed, so on images it never saw.

use std::path::{Path, PathBuf};

use fiq::encoder::{ClipEncoder, Encoder, EncoderOptions, ImageSource};
use fiq::fashioniq::eval_query_text;
use fiq::synth::attributes::Color;
use fiq::synth::{generate, AttributeFile, SynthOptions};

fn model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/fiq-default")
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn normalized_sum(a: &[f32], b: &[f32]) -> Vec<f32> {
    let sum: Vec<f32> = a.iter().zip(b).map(|(x, y)| x + y).collect();
    let norm = dot(&sum, &sum).sqrt();
    sum.iter().map(|x| x / norm).collect()
}

#[test]
fn default_model_knows_unseen_synthetic_garments() {
    let tmp = tempfile::tempdir().unwrap();
    let options = SynthOptions {
        per_category: 60,
        seed: 20_240_611,
        ..SynthOptions::default()
    };
    generate(tmp.path(), &options).unwrap();
    let attributes = AttributeFile::read(tmp.path()).unwrap();

    let encoder = ClipEncoder::load(&model_dir(), &EncoderOptions::default()).unwrap();
    assert_eq!(encoder.dim(), 128);
    let paths: Vec<PathBuf> = attributes
        .images
        .iter()
        .map(|image| {
            tmp.path()
                .join("images")
                .join(format!("{}.png", image.name))
        })
        .collect();
    let sources: Vec<ImageSource<'_>> = paths.iter().map(ImageSource::from).collect();
    let images: Vec<Vec<f32>> = encoder
        .encode_images(&sources)
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let vector_of = |name: &str| {
        let row = attributes
            .images
            .iter()
            .position(|image| image.name == name)
            .unwrap();
        &images[row]
    };

    // Zero-shot color: the nearest of eight color descriptions names the image's color.
    let color_texts: Vec<String> = Color::ALL
        .iter()
        .map(|color| format!("a garment that is {}", color.word()))
        .collect();
    let color_refs: Vec<&str> = color_texts.iter().map(String::as_str).collect();
    let colors = encoder.encode_texts(&color_refs).unwrap();
    let correct = attributes
        .images
        .iter()
        .zip(&images)
        .filter(|(record, image)| {
            let best = (0..colors.len())
                .max_by(|&a, &b| dot(image, &colors[a]).total_cmp(&dot(image, &colors[b])))
                .unwrap();
            Color::ALL[best] == record.attributes.color
        })
        .count();
    let color_accuracy = correct as f64 / images.len() as f64;

    // Composed: the normalized sum of the reference image and its caption is closer to the target than to
    // the reference itself (the failure of an image-dominated query).
    let texts: Vec<String> = attributes
        .triplets
        .iter()
        .map(|triplet| eval_query_text(&triplet.captions))
        .collect();
    let text_refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let captions = encoder.encode_texts(&text_refs).unwrap();
    let preferred = attributes
        .triplets
        .iter()
        .zip(&captions)
        .filter(|(triplet, caption)| {
            let query = normalized_sum(vector_of(&triplet.candidate), caption);
            dot(&query, vector_of(&triplet.target)) > dot(&query, vector_of(&triplet.candidate))
        })
        .count();
    let target_first = preferred as f64 / attributes.triplets.len() as f64;

    eprintln!(
        "color accuracy {color_accuracy:.3}, target before reference {target_first:.3} ({} triplets)",
        attributes.triplets.len()
    );
    assert!(
        color_accuracy >= 0.9 && target_first >= 0.9,
        "color accuracy {color_accuracy:.3} over {} images, target before reference {target_first:.3} over {} triplets",
        images.len(),
        attributes.triplets.len()
    );
}
