use super::attributes::{Color, Length, Neckline, Pattern, Sleeves};
use super::*;
use crate::fashioniq::{Dataset, LoadOptions};
use std::collections::{BTreeMap, HashMap};

fn small(seed: u64) -> SynthOptions {
    SynthOptions {
        per_category: 40,
        seed,
        size: 32,
        ..SynthOptions::default()
    }
}

/// Every file under `root`, by relative path.
fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.insert(
                    path.strip_prefix(root).unwrap().to_owned(),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    files
}

#[test]
fn same_seed_gives_byte_identical_trees() {
    let (first, second, third) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    generate(first.path(), &small(11)).unwrap();
    generate(second.path(), &small(11)).unwrap();
    generate(third.path(), &small(12)).unwrap();
    let (a, b, c) = (tree(first.path()), tree(second.path()), tree(third.path()));
    // 120 images + 9 caption files + 9 split files + the attribute file.
    assert_eq!(a.len(), 120 + 9 + 9 + 1);
    assert!(a == b, "same seed, different files");
    assert!(a != c, "different seeds, same files");
    assert_ne!(a[Path::new(ATTRIBUTE_FILE)], c[Path::new(ATTRIBUTE_FILE)]);
}

#[test]
fn images_decode_at_the_requested_size_in_both_formats_and_layouts() {
    for (format, layout) in [
        (ImageFormat::Png, ImageLayout::Flat),
        (ImageFormat::Jpeg, ImageLayout::PerCategory),
    ] {
        let out = tempfile::tempdir().unwrap();
        let options = SynthOptions {
            format,
            layout,
            ..small(5)
        };
        let summary = generate(out.path(), &options).unwrap();
        assert_eq!(summary.images, 120);
        let dataset = Dataset::load(
            out.path(),
            &Category::ALL,
            Split::Val,
            LoadOptions::default(),
        )
        .unwrap();
        for category in Category::ALL {
            let counts = dataset.report().counts(category).unwrap();
            assert_eq!(counts.missing_images, 0, "{format:?} {layout:?}");
            assert_eq!(counts.gallery_kept, 8);
            assert_eq!(counts.triplets_kept, counts.triplets_read);
            let path = dataset.gallery(category)[0].path.clone().unwrap();
            if layout == ImageLayout::PerCategory {
                assert!(path.parent().unwrap().ends_with(category.as_str()));
            }
            let image = image::open(&path).unwrap();
            assert_eq!((image.width(), image.height()), (32, 32));
        }
    }
}

#[test]
fn splits_and_captions_have_the_fashioniq_shape() {
    let out = tempfile::tempdir().unwrap();
    let options = SynthOptions {
        per_category: 100,
        ..small(3)
    };
    generate(out.path(), &options).unwrap();
    for split in Split::ALL {
        let dataset =
            Dataset::load(out.path(), &Category::ALL, split, LoadOptions::default()).unwrap();
        for category in Category::ALL {
            let expected_gallery = if split == Split::Train { 60 } else { 20 };
            assert_eq!(dataset.gallery(category).len(), expected_gallery);
            assert_eq!(dataset.triplets(category).len(), expected_gallery * 2 / 5);
            assert!(dataset
                .triplets(category)
                .iter()
                .all(|triplet| triplet.target.is_some() == (split != Split::Test)));
        }
    }
    let text = std::fs::read_to_string(out.path().join("captions/cap.dress.val.json")).unwrap();
    assert!(
        text.starts_with("[\n    {\n        \"target\": \"SYND1"),
        "{}",
        &text[..60]
    );
    let test = std::fs::read_to_string(out.path().join("captions/cap.dress.test.json")).unwrap();
    assert!(!test.contains("\"target\""));
}

/// What one caption phrase claims, read independently of the generator's phrase table.
fn check_phrase(
    phrase: &str,
    candidate: &Attributes,
    target: &Attributes,
) -> Result<AttributeKind, String> {
    let phrase = phrase.strip_prefix("is ").unwrap_or(phrase);
    let fail = |why: &str| Err(format!("{phrase:?}: {why} ({candidate:?} -> {target:?})"));
    if let Some(color) = Color::ALL
        .iter()
        .find(|color| phrase.starts_with(color.word()))
    {
        if target.color != *color {
            return fail("target has another color");
        }
        if let Some(from) = phrase.split("instead of ").nth(1) {
            if from != candidate.color.word() {
                return fail("candidate has another color");
            }
        }
        return Ok(AttributeKind::Color);
    }
    let pattern = [
        ("solid", Pattern::Solid),
        ("no pattern", Pattern::Solid),
        ("stripe", Pattern::Stripes),
        ("dot", Pattern::Dots),
        ("check", Pattern::Checks),
    ];
    if let Some((_, pattern)) = pattern.iter().find(|(word, _)| phrase.contains(word)) {
        return if target.pattern == *pattern {
            Ok(AttributeKind::Pattern)
        } else {
            fail("wrong pattern")
        };
    }
    if phrase.contains("sleeve") {
        let holds = if phrase.contains("shorter") {
            target.sleeves < candidate.sleeves
        } else if phrase.contains("longer") {
            target.sleeves > candidate.sleeves
        } else if phrase.contains("sleeveless") || phrase.contains("no sleeves") {
            target.sleeves == Sleeves::Sleeveless
        } else if phrase.contains("short") {
            target.sleeves == Sleeves::Short
        } else {
            target.sleeves == Sleeves::Long
        };
        return if holds {
            Ok(AttributeKind::Sleeves)
        } else {
            fail("wrong sleeves")
        };
    }
    if phrase.contains("neck") {
        let v = phrase.contains("v-neck") || phrase.contains("v neckline");
        return if v == (target.neckline == Neckline::VNeck) {
            Ok(AttributeKind::Neckline)
        } else {
            fail("wrong neckline")
        };
    }
    let holds = match phrase {
        "shorter" => target.length < candidate.length,
        "longer" => target.length > candidate.length,
        "mini" | "cropped" => target.length == Length::Short,
        "knee length" | "regular length" => target.length == Length::Medium,
        "floor length" | "long" => target.length == Length::Long,
        _ => return fail("unknown phrase"),
    };
    if holds {
        Ok(AttributeKind::Length)
    } else {
        fail("wrong length")
    }
}

#[test]
fn captions_match_the_recorded_attributes() {
    let out = tempfile::tempdir().unwrap();
    generate(
        out.path(),
        &SynthOptions {
            per_category: 300,
            ..small(21)
        },
    )
    .unwrap();
    let record = AttributeFile::read(out.path()).unwrap();
    let attributes: HashMap<&str, &Attributes> = record
        .images
        .iter()
        .map(|image| (image.name.as_str(), &image.attributes))
        .collect();
    assert_eq!(attributes.len(), 900);
    let mut change_counts = [0usize; 3];
    let mut second_partial = 0;
    let mut checked = 0;
    for split in [Split::Train, Split::Val] {
        let dataset =
            Dataset::load(out.path(), &Category::ALL, split, LoadOptions::default()).unwrap();
        for category in Category::ALL {
            for triplet in dataset.triplets(category) {
                let candidate = attributes[triplet.candidate.as_str()];
                let target = attributes[triplet.target.as_deref().unwrap()];
                assert_eq!((candidate.category, target.category), (category, category));
                let differences = candidate.differences(target);
                change_counts[differences.len()] += 1;
                let mut covered: Vec<Vec<AttributeKind>> = Vec::new();
                for caption in &triplet.captions {
                    let mut kinds: Vec<AttributeKind> = caption
                        .split(" and ")
                        .map(|phrase| check_phrase(phrase, candidate, target))
                        .collect::<Result<_, _>>()
                        .unwrap_or_else(|why| panic!("caption {caption:?}: {why}"));
                    kinds.sort();
                    assert!(kinds.iter().all(|kind| differences.contains(kind)));
                    covered.push(kinds);
                    checked += 1;
                }
                assert_eq!(
                    covered[0], differences,
                    "the first caption names every change"
                );
                assert_ne!(triplet.captions[0], triplet.captions[1]);
                second_partial += usize::from(covered[1].len() < differences.len());
            }
        }
    }
    // Pairs differ in one or two attributes, about half each; some second captions name only one change.
    assert_eq!(change_counts[0], 0);
    assert!(
        change_counts[1] > 100 && change_counts[2] > 100,
        "{change_counts:?}"
    );
    assert!(second_partial > 20, "{second_partial}");
    // 300 per category: 180 train images give 72 pairs, 60 val images 24; two captions each.
    assert_eq!(checked, 3 * (72 + 24) * 2);
}

#[test]
fn galleries_hold_many_garments_close_to_each_target() {
    let out = tempfile::tempdir().unwrap();
    generate(
        out.path(),
        &SynthOptions {
            per_category: 2000,
            size: 16,
            ..small(8)
        },
    )
    .unwrap();
    let record = AttributeFile::read(out.path()).unwrap();
    let val_dresses: Vec<&Attributes> = record
        .images
        .iter()
        .filter(|image| image.split == Split::Val && image.attributes.category == Category::Dress)
        .map(|image| &image.attributes)
        .collect();
    let by_name: HashMap<&str, &Attributes> = record
        .images
        .iter()
        .map(|image| (image.name.as_str(), &image.attributes))
        .collect();
    let targets: Vec<&Attributes> = record
        .triplets
        .iter()
        .filter(|triplet| triplet.split == Split::Val && triplet.category == Category::Dress)
        .map(|triplet| by_name[triplet.target.as_str()])
        .collect();
    // For the average target, count gallery garments within one attribute of it.
    let near: usize = targets
        .iter()
        .map(|target| {
            val_dresses
                .iter()
                .filter(|other| other.differences(target).len() <= 1)
                .count()
        })
        .sum();
    let mean_near = near as f64 / targets.len() as f64;
    assert!(
        mean_near > 10.0,
        "only {mean_near:.1} gallery garments within one attribute of a target"
    );
}

#[test]
fn out_of_range_options_are_refused() {
    let out = tempfile::tempdir().unwrap();
    for options in [
        SynthOptions {
            per_category: 3,
            ..small(0)
        },
        SynthOptions {
            size: 8,
            ..small(0)
        },
    ] {
        assert!(matches!(
            generate(out.path(), &options),
            Err(SynthError::InvalidOption { .. })
        ));
    }
}

/// The hard level: every caption phrase is a wording or a synonym of a change that happened; captions
/// often name fewer changes than there are; the larger vocabulary is used; the same seed gives the
/// same files; and the easy level is untouched by it (its attribute file has no hard-only field).
#[test]
fn hard_captions_are_true_partial_and_paraphrased() {
    use super::attributes::{Fit, Shade};
    let hard = SynthOptions {
        per_category: 300,
        difficulty: Difficulty::Hard,
        ..small(23)
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate(a.path(), &hard).unwrap();
    generate(b.path(), &hard).unwrap();
    assert!(tree(a.path()) == tree(b.path()), "same seed, same files");

    let record = AttributeFile::read(a.path()).unwrap();
    assert_eq!(record.options.difficulty, Difficulty::Hard);
    let attributes: HashMap<&str, &Attributes> = record
        .images
        .iter()
        .map(|image| (image.name.as_str(), &image.attributes))
        .collect();
    let used =
        |pick: &dyn Fn(&Attributes) -> bool| record.images.iter().any(|i| pick(&i.attributes));
    assert!(used(&|g| g.shade == Shade::Light) && used(&|g| g.shade == Shade::Dark));
    assert!(used(&|g| g.fit == Fit::Slim) && used(&|g| g.fit == Fit::Loose));
    assert!(used(&|g| g.pattern == Pattern::Pinstripes) && used(&|g| g.pattern == Pattern::Plaid));

    let (mut partial, mut paraphrased, mut three_changes, mut captions) = (0, 0, 0, 0);
    for triplet in &record.triplets {
        let (candidate, target) = (
            attributes[triplet.candidate.as_str()],
            attributes[triplet.target.as_str()],
        );
        let differences = candidate.differences(target);
        assert!((1..=3).contains(&differences.len()), "{differences:?}");
        three_changes += usize::from(differences.len() == 3);
        for caption in &triplet.captions {
            captions += 1;
            let mut named = 0;
            for phrase in caption.split(" and ") {
                let matches = |table: &[String]| {
                    table
                        .iter()
                        .any(|p| p == phrase || p.strip_prefix("is ") == Some(phrase))
                };
                let kind = differences.iter().find(|&&kind| {
                    matches(&captions::wordings(kind, candidate, target))
                        || matches(&captions::synonyms(kind, candidate, target))
                });
                let kind = kind.unwrap_or_else(|| {
                    panic!("{phrase:?} of {caption:?} names no change of {differences:?}")
                });
                paraphrased += usize::from(matches(&captions::synonyms(*kind, candidate, target)));
                named += 1;
            }
            partial += usize::from(named < differences.len());
        }
    }
    assert!(three_changes > 20, "{three_changes}");
    assert!(
        partial * 3 > captions,
        "captions naming fewer changes than there are: {partial} of {captions}"
    );
    assert!(
        paraphrased * 6 > captions,
        "synonyms: {paraphrased} in {captions} captions"
    );

    let easy = tempfile::tempdir().unwrap();
    generate(easy.path(), &small(23)).unwrap();
    let text = std::fs::read_to_string(easy.path().join(ATTRIBUTE_FILE)).unwrap();
    assert!(
        !text.contains("shade") && !text.contains("difficulty"),
        "easy files keep their old form"
    );
}
