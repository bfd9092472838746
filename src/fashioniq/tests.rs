//! The loader on hand-made trees, one quirk per test, plus an optional check on the real annotations.

use super::*;
use std::path::{Path, PathBuf};

/// A FashionIQ tree in a temporary folder.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let fixture = Fixture {
            dir: tempfile::tempdir().expect("temporary folder"),
        };
        for folder in ["captions", "image_splits", "images"] {
            std::fs::create_dir_all(fixture.root().join(folder)).unwrap();
        }
        fixture
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, relative: &str, contents: &str) -> PathBuf {
        let path = self.root().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn images(&self, relatives: &[&str]) {
        for relative in relatives {
            self.write(&format!("images/{relative}"), "not decoded by the loader");
        }
    }

    fn split(&self, category: Category, split: Split, names: &[&str]) {
        let json = serde_json::to_string(names).unwrap();
        self.write(
            &format!("image_splits/split.{category}.{split}.json"),
            &json,
        );
    }

    fn captions(&self, category: Category, split: Split, json: &str) -> PathBuf {
        self.write(&format!("captions/cap.{category}.{split}.json"), json)
    }

    fn load(&self, categories: &[Category], split: Split) -> Result<Dataset, DatasetError> {
        Dataset::load(self.root(), categories, split, LoadOptions::default())
    }
}

fn triplet_json(candidate: &str, target: &str, first: &str, second: &str) -> String {
    format!(
        r#"{{"target": "{target}", "candidate": "{candidate}", "captions": ["{first}", "{second}"]}}"#
    )
}

fn names(gallery: &[GalleryImage]) -> Vec<&str> {
    gallery.iter().map(|image| image.name.as_str()).collect()
}

fn file_name(path: Option<&Path>) -> Option<String> {
    path.map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
}

#[test]
fn flat_layout_resolves_every_extension_in_any_case() {
    let fixture = Fixture::new();
    fixture.images(&["A.JPG", "B.Png", "C.webp", "D.jpeg", "e.jpg", "notes.txt"]);
    fixture.split(
        Category::Dress,
        Split::Val,
        &["A", "B", "C", "D", "E", "notes"],
    );
    fixture.captions(
        Category::Dress,
        Split::Val,
        &format!("[{}]", triplet_json("A", "B", "is red", "has dots")),
    );
    let dataset = fixture.load(&[Category::Dress], Split::Val).unwrap();
    assert_eq!(
        names(dataset.gallery(Category::Dress)),
        ["A", "B", "C", "D", "E"]
    );
    let check = |name: &str, expected: &str| {
        assert_eq!(
            file_name(dataset.image_path(Category::Dress, name)).as_deref(),
            Some(expected),
            "{name}"
        )
    };
    check("A", "A.JPG");
    check("B", "B.Png");
    check("C", "C.webp");
    check("D", "D.jpeg");
    check("E", "e.jpg");
    let counts = dataset.report().counts(Category::Dress).unwrap();
    assert_eq!(
        (
            counts.gallery_listed,
            counts.gallery_kept,
            counts.missing_images
        ),
        (6, 5, 1)
    );
    assert_eq!(dataset.report().missing[0].name, "notes");
}

#[test]
fn per_category_layout_is_preferred_over_flat_and_folder_case_is_ignored() {
    let fixture = Fixture::new();
    fixture.images(&["dress/X.jpg", "Shirt/Y.PNG", "X.png", "shirt.jpg"]);
    fixture.split(Category::Dress, Split::Train, &["X"]);
    fixture.split(Category::Shirt, Split::Train, &["Y", "X"]);
    fixture.captions(Category::Dress, Split::Train, "[]");
    fixture.captions(
        Category::Shirt,
        Split::Train,
        &format!("[{}]", triplet_json("Y", "X", "is blue", "longer")),
    );
    let dataset = fixture
        .load(&[Category::Dress, Category::Shirt], Split::Train)
        .unwrap();
    let dress_x = dataset.image_path(Category::Dress, "X").unwrap();
    assert!(dress_x.ends_with("dress/X.jpg"), "{}", dress_x.display());
    // Shirt has no X in its folder: the flat folder answers.
    assert_eq!(
        file_name(dataset.image_path(Category::Shirt, "X")).as_deref(),
        Some("X.png")
    );
    assert!(dataset
        .image_path(Category::Shirt, "Y")
        .unwrap()
        .ends_with("Shirt/Y.PNG"));
    assert_eq!(dataset.triplets(Category::Shirt).len(), 1);
    assert_eq!(dataset.gallery(Category::Shirt).len(), 2);
    assert!(dataset.report().missing.is_empty());
}

#[test]
fn same_name_with_two_extensions_prefers_jpg_and_counts_the_shadowed_file() {
    let fixture = Fixture::new();
    fixture.images(&["A.png", "A.jpg", "B.JPEG", "b.webp"]);
    fixture.split(Category::Toptee, Split::Val, &["A", "B"]);
    fixture.captions(Category::Toptee, Split::Val, "[]");
    let dataset = fixture.load(&[Category::Toptee], Split::Val).unwrap();
    assert_eq!(
        file_name(dataset.image_path(Category::Toptee, "A")).as_deref(),
        Some("A.jpg")
    );
    // The exact-case name wins over a better extension of another case.
    assert_eq!(
        file_name(dataset.image_path(Category::Toptee, "B")).as_deref(),
        Some("B.JPEG")
    );
    assert_eq!(dataset.report().shadowed_image_files, 2);
}

#[test]
fn missing_images_drop_triplets_and_are_logged_and_counted() {
    let fixture = Fixture::new();
    fixture.images(&["A.jpg", "B.jpg"]);
    fixture.split(Category::Dress, Split::Val, &["A", "B", "GONE1"]);
    let triplets = [
        triplet_json("A", "B", "is red", "red"),
        triplet_json("A", "GONE2", "is blue", "blue"),
        triplet_json("GONE3", "B", "is green", "green"),
        triplet_json("GONE1", "GONE2", "is pink", "pink"),
    ];
    fixture.captions(
        Category::Dress,
        Split::Val,
        &format!("[{}]", triplets.join(",")),
    );
    let dataset = fixture.load(&[Category::Dress], Split::Val).unwrap();
    assert_eq!(dataset.triplets(Category::Dress).len(), 1);
    let counts = dataset.report().counts(Category::Dress).unwrap();
    assert_eq!(counts.triplets_read, 4);
    assert_eq!(counts.triplets_kept, 1);
    assert_eq!(counts.dropped_missing_image, 3);
    assert_eq!(counts.missing_images, 3);
    let missing: Vec<(&str, MissingRole)> = dataset
        .report()
        .missing
        .iter()
        .map(|missing| (missing.name.as_str(), missing.role))
        .collect();
    assert_eq!(
        missing,
        [
            ("GONE1", MissingRole::Gallery),
            ("GONE2", MissingRole::Target),
            ("GONE3", MissingRole::Candidate)
        ]
    );
    let log = fixture.root().join("missing.tsv");
    dataset.report().write_missing_log(&log).unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        text,
        "# split=val missing=3\ndress\tgallery\tGONE1\ndress\ttarget\tGONE2\ndress\tcandidate\tGONE3\n"
    );
    assert!(dataset.report().to_string().contains("dress"));
}

#[test]
fn duplicates_are_dropped_once_counted_or_kept_on_request() {
    let fixture = Fixture::new();
    fixture.images(&["A.jpg", "B.jpg"]);
    fixture.split(Category::Shirt, Split::Test, &["A", "B", "A"]);
    let entry = r#"{"candidate": "A", "captions": ["is red", "has dots"]}"#;
    // The third differs only by surrounding whitespace, so it is the same triplet after trimming.
    let padded = r#"{"candidate": "A", "captions": [" is red", "has dots "]}"#;
    let other = r#"{"candidate": "B", "captions": ["is red", "has dots"]}"#;
    fixture.captions(
        Category::Shirt,
        Split::Test,
        &format!("[{entry},{entry},{padded},{other}]"),
    );
    let dataset = fixture.load(&[Category::Shirt], Split::Test).unwrap();
    let counts = dataset.report().counts(Category::Shirt).unwrap();
    assert_eq!((counts.triplets_kept, counts.dropped_duplicate), (2, 2));
    assert_eq!(
        (
            counts.gallery_listed,
            counts.gallery_kept,
            counts.gallery_duplicates
        ),
        (3, 2, 1)
    );
    let options = LoadOptions {
        keep_duplicates: true,
        ..LoadOptions::default()
    };
    let all = Dataset::load(fixture.root(), &[Category::Shirt], Split::Test, options).unwrap();
    assert_eq!(all.triplets(Category::Shirt).len(), 4);
}

#[test]
fn leading_spaces_are_trimmed_and_empty_captions_counted() {
    let fixture = Fixture::new();
    fixture.images(&["A.jpg", "B.jpg"]);
    fixture.split(Category::Toptee, Split::Train, &["A", "B"]);
    let triplets = [
        triplet_json("A", "B", " yello and more flowing", "short and black  "),
        triplet_json("B", "A", "", "is an off the shoulder top"),
        triplet_json("A", "B", "   ", ""),
    ];
    fixture.captions(
        Category::Toptee,
        Split::Train,
        &format!("[{}]", triplets.join(",")),
    );
    let dataset = fixture.load(&[Category::Toptee], Split::Train).unwrap();
    let kept = dataset.triplets(Category::Toptee);
    assert_eq!(kept.len(), 2);
    assert_eq!(
        kept[0].captions,
        ["yello and more flowing", "short and black"]
    );
    assert_eq!(kept[1].captions, ["", "is an off the shoulder top"]);
    assert_eq!(
        eval_query_text(&kept[1].captions),
        "Is an off the shoulder top"
    );
    let counts = dataset.report().counts(Category::Toptee).unwrap();
    assert_eq!(counts.trimmed_captions, 3);
    assert_eq!(counts.empty_captions, 3);
    assert_eq!(counts.dropped_no_caption, 1);
}

#[test]
fn test_split_has_no_target_but_other_splits_must() {
    let fixture = Fixture::new();
    fixture.images(&["A.jpg"]);
    fixture.split(Category::Dress, Split::Test, &["A"]);
    fixture.captions(
        Category::Dress,
        Split::Test,
        r#"[{"candidate": "A", "captions": ["is red", "has dots"]}]"#,
    );
    let dataset = fixture.load(&[Category::Dress], Split::Test).unwrap();
    assert_eq!(dataset.triplets(Category::Dress)[0].target, None);
    assert_eq!(
        dataset
            .report()
            .counts(Category::Dress)
            .unwrap()
            .without_target,
        1
    );

    fixture.split(Category::Dress, Split::Val, &["A"]);
    let path = fixture.captions(
        Category::Dress,
        Split::Val,
        r#"[{"candidate": "A", "captions": ["is red", "has dots"]}]"#,
    );
    match fixture.load(&[Category::Dress], Split::Val) {
        Err(DatasetError::MissingTarget {
            path: reported,
            entry: 0,
        }) => assert_eq!(reported, path),
        other => panic!("expected MissingTarget, got {other:?}"),
    }
}

#[test]
fn malformed_json_names_file_line_and_column() {
    let fixture = Fixture::new();
    fixture.split(Category::Dress, Split::Val, &["A"]);
    let path = fixture.captions(
        Category::Dress,
        Split::Val,
        "[\n  {\"target\": \"B\", \"candidate\": \"A\", \"captions\": [\"x\", \"y\"]},\n  {\"target\": \"B\" \"candidate\": \"A\"}\n]",
    );
    let error = fixture.load(&[Category::Dress], Split::Val).unwrap_err();
    match &error {
        DatasetError::Json {
            path: reported,
            line,
            column,
            ..
        } => {
            assert_eq!(reported, &path);
            assert_eq!((*line, *column), (3, 18)); // the `"` where a `,` belongs
        }
        other => panic!("expected a JSON error, got {other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.contains("cap.dress.val.json") && message.contains("line 3"),
        "{message}"
    );
}

#[test]
fn wrong_shapes_are_errors_naming_the_entry() {
    let fixture = Fixture::new();
    fixture.split(Category::Dress, Split::Val, &["A"]);
    fixture.captions(
        Category::Dress,
        Split::Val,
        r#"[{"target": "B", "candidate": "A", "captions": ["only one"]}]"#,
    );
    assert!(matches!(
        fixture.load(&[Category::Dress], Split::Val),
        Err(DatasetError::CaptionCount {
            entry: 0,
            found: 1,
            ..
        })
    ));
    fixture.captions(
        Category::Dress,
        Split::Val,
        r#"[{"target": " ", "candidate": "A", "captions": ["a", "b"]}]"#,
    );
    assert!(matches!(
        fixture.load(&[Category::Dress], Split::Val),
        Err(DatasetError::EmptyImageName {
            field: "target",
            ..
        })
    ));
    std::fs::remove_file(fixture.root().join("image_splits/split.dress.val.json")).unwrap();
    let error = fixture.load(&[Category::Dress], Split::Val).unwrap_err();
    assert!(
        matches!(&error, DatasetError::Io { path, .. } if path.ends_with("split.dress.val.json")),
        "{error:?}"
    );
}

#[test]
fn annotation_only_mode_needs_no_images() {
    let fixture = Fixture::new();
    std::fs::remove_dir(fixture.root().join("images")).unwrap();
    fixture.split(Category::Dress, Split::Val, &["A", "B"]);
    fixture.captions(
        Category::Dress,
        Split::Val,
        &format!("[{}]", triplet_json("A", "B", "is red", "has dots")),
    );
    assert!(matches!(
        fixture.load(&[Category::Dress], Split::Val),
        Err(DatasetError::NoImageFolder { .. })
    ));
    let dataset = Dataset::load(
        fixture.root(),
        &[Category::Dress],
        Split::Val,
        LoadOptions::annotations_only(),
    )
    .unwrap();
    assert_eq!(dataset.triplets(Category::Dress).len(), 1);
    assert_eq!(dataset.gallery(Category::Dress)[1].path, None);
    assert!(!dataset.report().images_resolved);
}

#[test]
fn categories_and_splits_parse_and_print() {
    for category in Category::ALL {
        assert_eq!(category.to_string().parse::<Category>().unwrap(), category);
    }
    assert_eq!("TopTee".parse::<Category>().unwrap(), Category::Toptee);
    assert!(matches!(
        "skirt".parse::<Category>(),
        Err(DatasetError::UnknownCategory { .. })
    ));
    for split in Split::ALL {
        assert_eq!(split.to_string().parse::<Split>().unwrap(), split);
    }
    assert_eq!("validation".parse::<Split>().unwrap(), Split::Val);
    assert!(matches!(
        "dev".parse::<Split>(),
        Err(DatasetError::UnknownSplit { .. })
    ));
    assert!(matches!(
        Dataset::load("/nonexistent", &[], Split::Val, LoadOptions::default()),
        Err(DatasetError::NoCategories)
    ));
}

/// The real FashionIQ annotations (`../shared/fashioniq` or `$FIQ_FASHIONIQ`), when present.
fn real_annotations() -> Option<PathBuf> {
    let candidates = std::env::var_os("FIQ_FASHIONIQ")
        .map(PathBuf::from)
        .into_iter()
        .chain(std::iter::once(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fashioniq"),
        ));
    for root in candidates {
        if root.join("captions").is_dir() {
            return Some(root);
        }
    }
    println!("note: real FashionIQ annotations not found (set FIQ_FASHIONIQ); check skipped");
    None
}

#[test]
fn real_annotations_parse_with_published_counts() {
    let Some(root) = real_annotations() else {
        return;
    };
    let mut per_split = Vec::new();
    for split in Split::ALL {
        let dataset = Dataset::load(
            &root,
            &Category::ALL,
            split,
            LoadOptions::annotations_only(),
        )
        .unwrap();
        per_split.push((split, dataset));
    }
    let (_, val) = &per_split[1];
    let triplets: Vec<usize> = Category::ALL
        .iter()
        .map(|&c| val.triplets(c).len())
        .collect();
    let gallery: Vec<usize> = Category::ALL
        .iter()
        .map(|&c| val.gallery(c).len())
        .collect();
    assert_eq!(triplets, [2017, 2038, 1961]);
    assert_eq!(gallery, [3817, 6346, 5373]);
    for (split, dataset) in &per_split {
        for category in Category::ALL {
            let counts = dataset.report().counts(category).unwrap();
            assert_eq!(
                counts.triplets_kept + counts.dropped_duplicate + counts.dropped_no_caption,
                counts.triplets_read,
                "{category} {split}"
            );
            assert_eq!(counts.gallery_duplicates, 0, "{category} {split}");
            let expect_targets = *split != Split::Test;
            assert!(dataset
                .triplets(category)
                .iter()
                .all(|triplet| triplet.target.is_some() == expect_targets));
        }
        println!("{}", dataset.report());
    }
    // The val quirks measured on the files: 1 + 2 empty captions, none dropped.
    let empty: Vec<usize> = Category::ALL
        .iter()
        .map(|&c| val.report().counts(c).unwrap().empty_captions)
        .collect();
    assert_eq!(empty, [0, 1, 2]);
    let trimmed: Vec<usize> = Category::ALL
        .iter()
        .map(|&c| val.report().counts(c).unwrap().trimmed_captions)
        .collect();
    assert_eq!(trimmed, [191, 73, 95]);
    // The test files repeat 6 + 6 + 0 entries verbatim; one copy of each is kept.
    let (_, test) = &per_split[2];
    let duplicates: Vec<usize> = Category::ALL
        .iter()
        .map(|&c| test.report().counts(c).unwrap().dropped_duplicate)
        .collect();
    assert_eq!(duplicates, [6, 6, 0]);
}

#[test]
fn captions_with_wrong_types_are_json_errors_naming_the_file() {
    let fixture = Fixture::new();
    fixture.split(Category::Dress, Split::Val, &["A"]);
    for json in [
        r#"[{"target": 5, "candidate": "A", "captions": ["a", "b"]}]"#,
        r#"[{"target": "B", "candidate": "A", "captions": "a and b"}]"#,
        r#"{"target": "B", "candidate": "A", "captions": ["a", "b"]}"#,
        r#"[{"target": "B", "candidate": "A", "captions": [1, 2]}]"#,
    ] {
        let path = fixture.captions(Category::Dress, Split::Val, json);
        let error = fixture.load(&[Category::Dress], Split::Val).unwrap_err();
        assert!(
            matches!(&error, DatasetError::Json { path: p, .. } if p == &path),
            "{json}: {error:?}"
        );
        assert!(error.to_string().contains("cap.dress.val.json"), "{error}");
    }
}
