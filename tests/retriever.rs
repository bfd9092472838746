//! The composed-query API end to end: a synthetic catalog (unseen seed) indexed with the built-in default
//! model, asked by key, by image file, by image bytes, text-only, image-only, with filters, with a model
//! that did not build the index, and with images that cannot be read.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use fiq::encoder::{ClipEncoder, Encoder, EncoderOptions};
use fiq::fashioniq::{Category, Dataset, LoadOptions, Split};
use fiq::fusion::Fusion;
use fiq::index::{IndexError, SearchMode};
use fiq::pipeline::{build_catalog, BuildOptions};
use fiq::retriever::QueryError;
use fiq::{Query, QueryFilter, QueryOptions, Reference, Retriever};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// One synthetic tree and its index, built once for every test of this file.
struct Catalog {
    _dir: tempfile::TempDir,
    data: PathBuf,
    index: PathBuf,
    encoder: Arc<dyn Encoder>,
}

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("fashioniq");
        let options = fiq::synth::SynthOptions {
            per_category: 40,
            seed: 20_261_130,
            ..fiq::synth::SynthOptions::default()
        };
        fiq::synth::generate(&data, &options).unwrap();
        let dataset =
            Dataset::load(&data, &Category::ALL, Split::Val, LoadOptions::default()).unwrap();
        let encoder: Arc<dyn Encoder> = Arc::new(
            ClipEncoder::load(
                &repo().join("models/fiq-default"),
                &EncoderOptions::default(),
            )
            .unwrap(),
        );
        let index = dir.path().join("index");
        let quiet = BuildOptions {
            progress: false,
            ..BuildOptions::default()
        };
        let report = build_catalog(&dataset, &*encoder, &index, &quiet).unwrap();
        assert!(report.added > 20 && report.skipped.is_empty(), "{report:?}");
        // An IVF index too, so both search modes are exercised.
        fiq::pipeline::build_ivf(&index, &fiq::ann::AnnParams::ivf_flat(4), &()).unwrap();
        Catalog {
            _dir: dir,
            data,
            index,
            encoder,
        }
    })
}

fn retriever() -> Retriever {
    let catalog = catalog();
    Retriever::open(&catalog.index, Arc::clone(&catalog.encoder), Fusion::Sum).unwrap()
}

/// A dress of the index, its image file, and its key.
fn a_dress(retriever: &Retriever) -> (String, PathBuf) {
    let index = retriever.index();
    (0..index.total_rows())
        .find_map(|id| {
            let meta = index.meta(id).unwrap();
            (meta.category == "dress").then(|| {
                (
                    index.key(id).unwrap().to_owned(),
                    PathBuf::from(meta.source),
                )
            })
        })
        .expect("the catalog has dresses")
}

fn keys(answer: &fiq::Answer) -> Vec<&str> {
    answer.hits.iter().map(|h| h.key.as_str()).collect()
}

#[test]
fn a_reference_by_key_and_by_its_image_file_give_the_same_answer() {
    let retriever = retriever();
    let (key, path) = a_dress(&retriever);
    let text = "is red and sleeveless";
    let by_key = retriever
        .query(&Query::new(text).reference(Reference::Key(key.clone())), 10)
        .unwrap();
    let by_path = retriever
        .query(
            &Query::new(text).reference(Reference::ImagePath(path.clone())),
            10,
        )
        .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let by_bytes = retriever
        .query(
            &Query::new(text).reference(Reference::ImageBytes {
                name: "upload.png".into(),
                bytes,
            }),
            10,
        )
        .unwrap();
    assert_eq!(by_key.hits.len(), 10);
    assert_eq!(keys(&by_key), keys(&by_path));
    assert_eq!(keys(&by_key), keys(&by_bytes));
    for (a, b) in by_key.hits.iter().zip(&by_path.hits) {
        assert!(
            (a.score - b.score).abs() < 1e-5,
            "{} vs {}",
            a.score,
            b.score
        );
    }
    // Best first, with what the index knows of each item.
    assert!(by_key.hits.windows(2).all(|w| w[0].score >= w[1].score));
    assert!(by_key
        .hits
        .iter()
        .all(|h| h.image.as_ref().is_some_and(|p| p.exists())));
}

#[test]
fn image_only_finds_the_reference_and_text_only_follows_the_text() {
    let retriever = retriever();
    let (key, _) = a_dress(&retriever);
    let image_only = retriever
        .query(&Query::new("").reference(Reference::Key(key.clone())), 5)
        .unwrap();
    assert_eq!(image_only.hits[0].key, key);
    assert!(
        image_only.hits[0].score > 0.999,
        "{}",
        image_only.hits[0].score
    );

    let text_only = retriever
        .query(&Query::new("a red dress").category("dress"), 5)
        .unwrap();
    assert_eq!(text_only.hits.len(), 5);
    assert!(text_only.hits.iter().all(|h| h.category == "dress"));
    // The text matters: another text ranks the dresses differently.
    let other = retriever
        .query(&Query::new("a white dress").category("dress"), 5)
        .unwrap();
    assert_ne!(keys(&text_only), keys(&other));

    // Excluding the reference drops it from its own results.
    let options = QueryOptions {
        exclude_reference: true,
        ..QueryOptions::default()
    };
    let without = retriever
        .query_with(
            &Query::new("").reference(Reference::Key(key.clone())),
            5,
            &options,
        )
        .unwrap();
    assert!(!keys(&without).contains(&key.as_str()));
    assert_eq!(without.hits.len(), 5);
}

#[test]
fn filters_restrict_the_results() {
    let retriever = retriever();
    let (key, _) = a_dress(&retriever);
    for category in ["dress", "shirt", "toptee"] {
        let answer = retriever
            .query(
                &Query::new("is darker")
                    .reference(Reference::Key(key.clone()))
                    .category(category),
                8,
            )
            .unwrap();
        assert_eq!(answer.hits.len(), 8);
        assert!(
            answer.hits.iter().all(|h| h.category == category),
            "{answer:?}"
        );
    }
    let index = retriever.index();
    let allowed: Vec<String> = (0..6).map(|id| index.key(id).unwrap().to_owned()).collect();
    let answer = retriever
        .query(
            &Query::new("is blue").filter(QueryFilter::Keys(allowed.clone())),
            10,
        )
        .unwrap();
    assert_eq!(answer.hits.len(), 6, "only six keys are allowed");
    assert!(answer.hits.iter().all(|h| allowed.contains(&h.key)));

    let unknown = retriever
        .query(&Query::new("is blue").category("shoes"), 3)
        .unwrap_err();
    let message = unknown.to_string();
    assert!(
        message.contains("shoes") && message.contains("dress"),
        "{message}"
    );
}

#[test]
fn a_query_that_cannot_be_answered_fails_alone() {
    let retriever = retriever();
    let (key, _) = a_dress(&retriever);
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt.png");
    std::fs::write(&corrupt, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let missing = dir.path().join("missing.jpg");
    let queries = vec![
        Query::new("is red").reference(Reference::ImagePath(corrupt.clone())),
        Query::new("is red").reference(Reference::Key(key.clone())),
        Query::new("is red").reference(Reference::ImagePath(missing.clone())),
        Query::new("is red").reference(Reference::Key("no-such-key".into())),
        Query::new("   "),
        Query::new("is red").reference(Reference::Vector(vec![1.0; 3])),
        Query::new("is red").reference(Reference::ImageBytes {
            name: "upload-7".into(),
            bytes: b"GIF89a".to_vec(),
        }),
    ];
    let answers = retriever
        .query_batch(&queries, 5, &QueryOptions::default())
        .unwrap();
    assert_eq!(answers.len(), queries.len());
    let error = |i: usize| answers[i].as_ref().unwrap_err().to_string();
    assert!(matches!(answers[0], Err(QueryError::Image(_))));
    assert!(error(0).contains("corrupt.png"), "{}", error(0));
    assert_eq!(answers[1].as_ref().unwrap().hits.len(), 5);
    assert!(error(2).contains("missing.jpg"), "{}", error(2));
    assert!(matches!(&answers[3], Err(QueryError::UnknownKey { key, .. }) if key == "no-such-key"));
    assert!(matches!(answers[4], Err(QueryError::Empty)));
    assert!(matches!(
        answers[5],
        Err(QueryError::VectorDimension {
            expected: 128,
            actual: 3
        })
    ));
    assert!(error(6).contains("upload-7"), "{}", error(6));
}

#[test]
fn a_model_that_did_not_build_the_index_is_refused_by_name() {
    let catalog = catalog();
    let other: Arc<dyn Encoder> = Arc::new(
        ClipEncoder::load(
            &repo().join("tests/fixtures/clip-tiny"),
            &EncoderOptions::default(),
        )
        .unwrap(),
    );
    let error = Retriever::open(&catalog.index, other, Fusion::Sum).unwrap_err();
    match &error {
        fiq::Error::Index(IndexError::ModelMismatch {
            index_model,
            query_model,
            ..
        }) => {
            assert_eq!(index_model, "fiq-default");
            assert_eq!(query_model, "clip-tiny");
        }
        other => panic!("expected a model mismatch, got {other:?}"),
    }
    assert!(error.to_string().contains("fiq-default"), "{error}");
}

#[test]
fn a_batch_answers_like_single_queries_in_both_search_modes() {
    let retriever = retriever();
    let (key, path) = a_dress(&retriever);
    let queries = vec![
        Query::new("is red and sleeveless").reference(Reference::Key(key.clone())),
        Query::new("has stripes").category("shirt"),
        Query::new("is longer").reference(Reference::ImagePath(path)),
    ];
    for mode in [SearchMode::Exact, SearchMode::IVF_DEFAULT] {
        assert!(retriever.index().ann().is_some());
        let options = QueryOptions {
            mode: Some(mode),
            ..QueryOptions::default()
        };
        let batch = retriever.query_batch(&queries, 7, &options).unwrap();
        for (query, answer) in queries.iter().zip(batch) {
            let single = retriever.query_with(query, 7, &options).unwrap();
            assert_eq!(keys(&answer.unwrap()), keys(&single));
        }
    }
    // The catalog's data directory stays usable by other tests.
    assert!(catalog().data.join("captions").exists());
}
