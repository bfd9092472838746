//! Missing and broken images never stop the main job and are always told: a synthetic FashionIQ tree with
//! some images deleted and some corrupted is built and evaluated end to end; the loader counts the missing
//! ones by role, the build skips the undecodable ones with their reasons, and the evaluation answers every
//! query it can, counting and listing the ones whose reference cannot be had.

use std::path::Path;

use fiq::encoder::{ClipEncoder, EncoderOptions};
use fiq::eval::EvalOptions;
use fiq::fashioniq::{Category, Dataset, LoadOptions, Split};
use fiq::index::Index;
use fiq::pipeline::{build_catalog, evaluate_index, BuildOptions};

#[test]
fn missing_and_corrupt_images_are_counted_and_skipped_never_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fashioniq");
    let options = fiq::synth::SynthOptions {
        per_category: 120,
        seed: 31,
        ..fiq::synth::SynthOptions::default()
    };
    fiq::synth::generate(&data, &options).unwrap();
    let clean = Dataset::load(
        &data,
        &[Category::Dress],
        Split::Val,
        LoadOptions::default(),
    )
    .unwrap();
    let triplets = clean.triplets(Category::Dress);
    assert!(triplets.len() >= 4);
    // Two reference images corrupt (the file is there, its bytes are not an image), one target missing.
    let image = |name: &str| clean.image_path(Category::Dress, name).unwrap().to_owned();
    let corrupt: Vec<String> = vec![triplets[0].candidate.clone(), triplets[1].candidate.clone()];
    for name in &corrupt {
        std::fs::write(image(name), b"\x89PNG\r\n\x1a\n truncated").unwrap();
    }
    let missing = triplets[2].target.clone().unwrap();
    std::fs::remove_file(image(&missing)).unwrap();

    let dataset = Dataset::load(
        &data,
        &[Category::Dress],
        Split::Val,
        LoadOptions::default(),
    )
    .unwrap();
    let report = dataset.report();
    assert_eq!(report.missing.len(), 1, "{report}");
    assert_eq!(report.missing[0].name, missing);
    assert!(
        report
            .counts(Category::Dress)
            .unwrap()
            .dropped_missing_image
            >= 1
    );

    let encoder = ClipEncoder::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("models/fiq-default"),
        &EncoderOptions::default(),
    )
    .unwrap();
    let index_dir = dir.path().join("index");
    let quiet = BuildOptions {
        progress: false,
        ..BuildOptions::default()
    };
    let built = build_catalog(&dataset, &encoder, &index_dir, &quiet).unwrap();
    let skipped: Vec<&str> = built.skipped.iter().map(|s| s.name.as_str()).collect();
    // Every gallery image that is corrupt or missing is reported (a reference need not be in the gallery).
    let in_gallery = |name: &str| {
        dataset
            .gallery(Category::Dress)
            .iter()
            .any(|g| g.name == name)
    };
    for name in corrupt.iter().chain([&missing]) {
        assert!(
            !in_gallery(name) || skipped.contains(&name.as_str()),
            "{name} not reported: {skipped:?}"
        );
    }
    assert!(built
        .skipped
        .iter()
        .filter(|s| corrupt.contains(&s.name))
        .all(|s| s.reason.contains("decode")));

    let index = Index::open(&index_dir).unwrap();
    let report = evaluate_index(&dataset, &index, &encoder, &EvalOptions::default()).unwrap();
    let row = &report.rows[0];
    let expected_skips = dataset
        .triplets(Category::Dress)
        .iter()
        .filter(|t| corrupt.contains(&t.candidate))
        .count();
    assert!(expected_skips >= 2);
    assert_eq!(row.skipped_queries, expected_skips, "{report}");
    assert_eq!(
        row.queries + row.skipped_queries,
        dataset.triplets(Category::Dress).len()
    );
    assert!(report
        .skipped_queries
        .iter()
        .all(|s| corrupt.contains(&s.candidate) && s.reason.contains("decode")));
    assert!(
        row.at[0].recall > 0.0,
        "the answered queries are scored: {report}"
    );
}
