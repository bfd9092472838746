//! The evaluation driver with fake backends: an oracle with hand-computed ranks, and an attribute encoder on
//! synthetic FashionIQ.

use super::*;
use crate::fashioniq::{Category, Dataset, LoadOptions, Split};
use crate::fusion::Fusion;
use crate::synth::attributes::{Color, Length, Neckline, Pattern, Sleeves};
use crate::synth::{generate, AttributeFile, SynthOptions};
use std::collections::HashMap;
use std::path::Path;

/// Brute-force inner-product search, ties broken by name so results are deterministic.
fn brute_force(gallery: &[(String, Vec<f32>)], query: &[f32], k: usize) -> Vec<String> {
    let mut scored: Vec<(f32, &str)> = gallery
        .iter()
        .map(|(name, vector)| {
            (
                vector.iter().zip(query).map(|(a, b)| a * b).sum(),
                name.as_str(),
            )
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    scored
        .into_iter()
        .take(k)
        .map(|(_, name)| name.to_owned())
        .collect()
}

/// A val split of five dress images A..E and three queries whose ranks are worked out by hand.
fn oracle_dataset(dir: &Path) -> Dataset {
    std::fs::create_dir_all(dir.join("captions")).unwrap();
    std::fs::create_dir_all(dir.join("image_splits")).unwrap();
    std::fs::write(
        dir.join("image_splits/split.dress.val.json"),
        r#"["A", "B", "C", "D", "E"]"#,
    )
    .unwrap();
    // The first caption names where the text points; the eval text is "{X} and please".
    std::fs::write(
        dir.join("captions/cap.dress.val.json"),
        r#"[{"target": "B", "candidate": "A", "captions": ["b", "please"]},
            {"target": "D", "candidate": "C", "captions": ["e", "please"]},
            {"target": "A", "candidate": "D", "captions": ["d", "please"]}]"#,
    )
    .unwrap();
    Dataset::load(
        dir,
        &[Category::Dress],
        Split::Val,
        LoadOptions::annotations_only(),
    )
    .unwrap()
}

fn one_hot(name: &str) -> Vec<f32> {
    let mut vector = vec![0.0; 5];
    vector[usize::from(name.as_bytes()[0] - b'A')] = 1.0;
    vector
}

fn oracle_backend() -> impl RetrievalBackend {
    let gallery: Vec<(String, Vec<f32>)> = ["A", "B", "C", "D", "E"]
        .iter()
        .map(|name| (name.to_string(), one_hot(name)))
        .collect();
    FnBackend {
        encode_image: |_: Category, name: &str, _: Option<&Path>| Ok(one_hot(name)),
        encode_texts: |texts: &[String]| {
            assert!(texts.len() <= 2, "batches of at most text_batch texts");
            Ok(texts.iter().map(|text| one_hot(&text[..1])).collect())
        },
        search: move |_: Category, queries: &[Vec<f32>], k: usize| {
            Ok(queries
                .iter()
                .map(|q| brute_force(&gallery, q, k))
                .collect())
        },
    }
}

#[test]
fn oracle_ranks_give_hand_computed_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = oracle_dataset(dir.path());
    // alpha 0.7: the text's image ranks first, the reference second, the rest by name.
    // Query 1 ranks [B A C D E] (target B at 0); query 2 [E C A B D] (D at 4); query 3 [D A B C E] (A at 1).
    let options = EvalOptions {
        ks: vec![1, 2, 5],
        fusion: Fusion::Weighted { alpha: 0.7 },
        exclude_reference: false,
        text_batch: 2,
        search_batch: 2,
    };
    let report = evaluate(&dataset, &oracle_backend(), &options).unwrap();
    let row = &report.rows[0];
    assert_eq!(
        (row.queries, row.gallery, row.targets_outside_gallery),
        (3, 5, 0)
    );
    let recalls: Vec<f64> = row.at.iter().map(|metric| metric.recall).collect();
    assert_eq!(recalls, [1.0 / 3.0, 2.0 / 3.0, 1.0]);
    assert_eq!(row.at[1].precision, 1.0 / 3.0);
    assert_eq!(report.average, row.at);

    // Without the reference: [B C D E], [E A B D] (D at 3), [A B C E] (A at 0).
    let excluded = evaluate(
        &dataset,
        &oracle_backend(),
        &EvalOptions {
            exclude_reference: true,
            ..options
        },
    )
    .unwrap();
    let recalls: Vec<f64> = excluded.rows[0]
        .at
        .iter()
        .map(|metric| metric.recall)
        .collect();
    assert_eq!(recalls, [2.0 / 3.0, 2.0 / 3.0, 1.0]);
    assert!(excluded.to_string().contains("removed from"));
}

#[test]
fn a_reference_that_cannot_be_encoded_skips_its_queries_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = oracle_dataset(dir.path());
    let broken = dataset
        .triplets(Category::Dress)
        .first()
        .unwrap()
        .candidate
        .clone();
    let expected_skips = dataset
        .triplets(Category::Dress)
        .iter()
        .filter(|t| t.candidate == broken)
        .count();
    let oracle = oracle_backend();
    let failing_image = FnBackend {
        encode_image: |category: Category,
                       name: &str,
                       path: Option<&Path>|
         -> Result<Vec<f32>, BackendError> {
            if name == broken {
                return Err(format!("cannot decode image {name}.jpg").into());
            }
            oracle.encode_image(category, name, path)
        },
        encode_texts: |texts: &[String]| oracle.encode_texts(texts),
        search: |category: Category, queries: &[Vec<f32>], k: usize| {
            oracle.search(category, queries, k)
        },
    };
    let options = EvalOptions {
        text_batch: 2,
        ..EvalOptions::default()
    };
    let report = evaluate(&dataset, &failing_image, &options).unwrap();
    let row = &report.rows[0];
    assert_eq!(row.skipped_queries, expected_skips);
    assert_eq!(row.queries, 3 - expected_skips);
    assert_eq!(report.skipped_queries.len(), expected_skips);
    assert_eq!(report.skipped_queries[0].candidate, broken);
    assert!(report.skipped_queries[0].reason.contains("cannot decode"));
    assert!(report.to_string().contains("skipped"), "{report}");

    // When every reference of a category fails, nothing is left to score: a clear error.
    let nothing = FnBackend {
        encode_image: |_: Category,
                       name: &str,
                       _: Option<&Path>|
         -> Result<Vec<f32>, BackendError> {
            Err(format!("no vector for {name}").into())
        },
        encode_texts: |texts: &[String]| Ok(texts.iter().map(|_| vec![1.0; 5]).collect()),
        search: |_: Category, queries: &[Vec<f32>], _: usize| Ok(vec![Vec::new(); queries.len()]),
    };
    let error = evaluate(&dataset, &nothing, &EvalOptions::default()).unwrap_err();
    assert!(
        matches!(
            error,
            EvalError::NoQueries {
                category: Some(Category::Dress)
            }
        ),
        "{error}"
    );
}

#[test]
fn driver_errors_name_category_and_cause() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = oracle_dataset(dir.path());

    let short_text = FnBackend {
        encode_image: |_: Category, _: &str, _: Option<&Path>| Ok(vec![1.0; 5]),
        encode_texts: |_: &[String]| Ok(vec![vec![1.0; 5]]),
        search: |_: Category, queries: &[Vec<f32>], _: usize| Ok(vec![Vec::new(); queries.len()]),
    };
    let error = evaluate(&dataset, &short_text, &EvalOptions::default()).unwrap_err();
    assert!(matches!(
        error,
        EvalError::TextCount {
            expected: 3,
            found: 1,
            ..
        }
    ));

    let wrong_dim = FnBackend {
        encode_image: |_: Category, _: &str, _: Option<&Path>| Ok(vec![1.0; 5]),
        encode_texts: |texts: &[String]| Ok(texts.iter().map(|_| vec![1.0; 4]).collect()),
        search: |_: Category, queries: &[Vec<f32>], _: usize| Ok(vec![Vec::new(); queries.len()]),
    };
    // Vectors that cannot be fused skip their queries (with the reason), leaving none to score.
    let error = evaluate(&dataset, &wrong_dim, &EvalOptions::default()).unwrap_err();
    assert!(matches!(error, EvalError::NoQueries { .. }), "{error}");
    let zero_k = EvalOptions {
        ks: vec![0, 10],
        ..EvalOptions::default()
    };
    assert!(matches!(
        evaluate(&dataset, &oracle_backend(), &zero_k),
        Err(EvalError::ZeroK)
    ));
}

#[test]
fn test_split_cannot_be_scored() {
    let dir = tempfile::tempdir().unwrap();
    generate(
        dir.path(),
        &SynthOptions {
            per_category: 20,
            size: 16,
            ..SynthOptions::default()
        },
    )
    .unwrap();
    let dataset = Dataset::load(
        dir.path(),
        &[Category::Shirt],
        Split::Test,
        LoadOptions::default(),
    )
    .unwrap();
    let error = evaluate(&dataset, &oracle_backend(), &EvalOptions::default()).unwrap_err();
    assert!(matches!(
        error,
        EvalError::NoTargets {
            category: Category::Shirt,
            split: Split::Test
        }
    ));
}

/// One dimension per attribute value: 8 colors, 4 patterns, 3 sleeves, 3 lengths, 2 necklines; and one that
/// only texts use, so a text naming no absolute value ("is shorter") is still a vector.
const ATTRIBUTE_DIM: usize = 21;

fn attribute_vector(attributes: &crate::synth::attributes::Attributes) -> Vec<f32> {
    let mut vector = vec![0.0; ATTRIBUTE_DIM];
    let position = |all: usize, index: usize, offset: usize| {
        assert!(index < all);
        offset + index
    };
    vector[position(
        8,
        Color::ALL
            .iter()
            .position(|c| *c == attributes.color)
            .unwrap(),
        0,
    )] = 1.0;
    vector[position(
        4,
        Pattern::ALL
            .iter()
            .position(|p| *p == attributes.pattern)
            .unwrap(),
        8,
    )] = 1.0;
    vector[position(
        3,
        Sleeves::ALL
            .iter()
            .position(|s| *s == attributes.sleeves)
            .unwrap(),
        12,
    )] = 1.0;
    vector[position(
        3,
        Length::ALL
            .iter()
            .position(|l| *l == attributes.length)
            .unwrap(),
        15,
    )] = 1.0;
    vector[position(
        2,
        Neckline::ALL
            .iter()
            .position(|n| *n == attributes.neckline)
            .unwrap(),
        18,
    )] = 1.0;
    vector
}

/// A bag-of-words text encoder that knows the synthetic vocabulary's absolute phrases.
fn text_vector(text: &str) -> Vec<f32> {
    let text = text.to_lowercase();
    let mut vector = vec![0.0; ATTRIBUTE_DIM];
    vector[ATTRIBUTE_DIM - 1] = 0.5;
    for (index, color) in Color::ALL.iter().enumerate() {
        // "red instead of blue" names the old color too; only the first color word is the new one.
        if text
            .split(" and ")
            .any(|part| part.trim_start_matches("is ").starts_with(color.word()))
        {
            vector[index] = 1.0;
        }
    }
    let cues: [(&str, usize); 13] = [
        ("solid", 8),
        ("no pattern", 8),
        ("stripe", 9),
        ("dot", 10),
        ("check", 11),
        ("sleeveless", 12),
        ("no sleeves", 12),
        ("short sleeves", 13),
        ("long sleeves", 14),
        ("mini", 15),
        ("floor length", 17),
        ("v-neck", 19),
        ("round neck", 18),
    ];
    for (cue, index) in cues {
        if text.contains(cue) {
            vector[index] = 1.0;
        }
    }
    vector
}

#[test]
fn fused_queries_beat_image_only_on_synthetic_fashioniq() {
    let dir = tempfile::tempdir().unwrap();
    generate(
        dir.path(),
        &SynthOptions {
            per_category: 3000,
            size: 16,
            seed: 4,
            ..SynthOptions::default()
        },
    )
    .unwrap();
    let record = AttributeFile::read(dir.path()).unwrap();
    let vectors: HashMap<String, Vec<f32>> = record
        .images
        .iter()
        .map(|image| (image.name.clone(), attribute_vector(&image.attributes)))
        .collect();
    let dataset = Dataset::load(
        dir.path(),
        &Category::ALL,
        Split::Val,
        LoadOptions::default(),
    )
    .unwrap();
    let galleries: HashMap<Category, Vec<(String, Vec<f32>)>> = Category::ALL
        .iter()
        .map(|&category| {
            let gallery = dataset
                .gallery(category)
                .iter()
                .map(|image| (image.name.clone(), vectors[&image.name].clone()))
                .collect();
            (category, gallery)
        })
        .collect();
    let backend = FnBackend {
        encode_image: |_: Category, name: &str, path: Option<&Path>| {
            assert!(path.is_some_and(|path| path.exists()));
            Ok(vectors[name].clone())
        },
        encode_texts: |texts: &[String]| Ok(texts.iter().map(|text| text_vector(text)).collect()),
        search: |category: Category, queries: &[Vec<f32>], k: usize| {
            Ok(queries
                .iter()
                .map(|q| brute_force(&galleries[&category], q, k))
                .collect())
        },
    };
    let run = |fusion: Fusion, exclude_reference: bool| {
        evaluate(
            &dataset,
            &backend,
            &EvalOptions {
                fusion,
                exclude_reference,
                ..EvalOptions::default()
            },
        )
        .unwrap()
    };
    let image_only = run(Fusion::Weighted { alpha: 0.0 }, false);
    let fused = run(Fusion::Sum, false);
    let fused_excluding = run(Fusion::Sum, true);
    println!("{image_only}\n{fused}\n{fused_excluding}");
    for row in &fused.rows {
        assert_eq!(row.queries, 240);
        assert_eq!(row.gallery, 600);
    }
    let r10 = |report: &EvalReport| report.average[0].recall;
    assert!(
        r10(&fused) > r10(&image_only) + 0.1,
        "text should help: {} vs {}",
        r10(&fused),
        r10(&image_only)
    );
    assert!(r10(&fused) < 1.0, "retrieval should not be trivial");
    // Removing the reference can only move targets up.
    for (with, without) in fused.rows.iter().zip(&fused_excluding.rows) {
        for (a, b) in with.at.iter().zip(&without.at) {
            assert!(b.recall >= a.recall);
        }
    }
}
