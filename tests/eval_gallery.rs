//! The evaluation searches the split's gallery, not everything the index holds: an index over train and
//! val scores val exactly as an index over val alone does, and gallery images missing from the index
//! are counted in the report instead of silently shrinking the gallery.

use std::path::Path;

use fiq::encoder::{ClipEncoder, EncoderOptions};
use fiq::eval::EvalOptions;
use fiq::fashioniq::{Category, Dataset, LoadOptions, Split};
use fiq::index::Index;
use fiq::pipeline::{build_catalog, evaluate_index, BuildOptions};
use fiq::synth::{generate, SynthOptions};

fn tiny_encoder() -> ClipEncoder {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clip-tiny");
    ClipEncoder::load(&model, &EncoderOptions::default()).unwrap()
}

fn load(root: &Path, split: Split) -> Dataset {
    Dataset::load(root, &Category::ALL, split, LoadOptions::default()).unwrap()
}

#[test]
fn evaluation_searches_only_the_splits_gallery() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("fashioniq");
    generate(
        &root,
        &SynthOptions {
            per_category: 150,
            seed: 5,
            size: 32,
            ..SynthOptions::default()
        },
    )
    .unwrap();
    let encoder = tiny_encoder();
    let val = load(&root, Split::Val);
    let train = load(&root, Split::Train);
    let quiet = BuildOptions {
        progress: false,
        ..BuildOptions::default()
    };

    let val_only = tmp.path().join("val-only");
    build_catalog(&val, &encoder, &val_only, &quiet).unwrap();
    let both = tmp.path().join("train-and-val");
    build_catalog(&train, &encoder, &both, &quiet).unwrap();
    build_catalog(&val, &encoder, &both, &quiet).unwrap();
    let train_only = tmp.path().join("train-only");
    build_catalog(&train, &encoder, &train_only, &quiet).unwrap();

    let options = EvalOptions::default();
    let val_index = Index::open(&val_only).unwrap();
    let both_index = Index::open(&both).unwrap();
    assert!(
        both_index.len() > val_index.len(),
        "the train images are in"
    );
    let expected = evaluate_index(&val, &val_index, &encoder, &options).unwrap();
    let found = evaluate_index(&val, &both_index, &encoder, &options).unwrap();
    assert_eq!(found, expected);
    for row in &found.rows {
        assert_eq!(row.gallery, val.gallery(row.category).len());
        assert_eq!(row.gallery_unsearchable, 0);
    }
    assert!(!found.to_string().contains("not in the index"));

    // An index without the val images can return none of them: reported, and every query misses.
    let train_index = Index::open(&train_only).unwrap();
    let missing = evaluate_index(&val, &train_index, &encoder, &options).unwrap();
    for row in &missing.rows {
        assert_eq!(row.gallery_unsearchable, row.gallery);
        assert!(row.at.iter().all(|at| at.recall == 0.0), "{row:?}");
    }
    assert!(missing
        .to_string()
        .contains("gallery images are not in the index and were not searched"));
}
