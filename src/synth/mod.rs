//! Synthetic FashionIQ: rendered garments with known attributes, relative captions derived from attribute
//! differences, written in exactly the FashionIQ layout so the real loader, encoders and evaluation run on it.
//!
//! Per category, images are split 60/20/20 into train/val/test. In each split, 80% of the images form
//! candidate/target pairs that differ in one or two attributes (half of them each); the rest are distractors:
//! half differ from some target in a single attribute, a quarter are attribute twins of a target (only the
//! drawing jitter differs), a quarter are random. Retrieval therefore needs both the reference
//! image (which fixes most attributes) and the text (which names the change), and many gallery images share
//! most attributes with any target. The vocabulary is in [`attributes`]; every image's attributes are
//! written to [`ATTRIBUTE_FILE`] next to `captions/`.
//!
//! Generation is deterministic for a seed: the same options give byte-identical files, whatever the thread
//! count, because each image draws from its own random stream.
//!
//! ```no_run
//! use fiq::synth::{generate, SynthOptions};
//! let summary = generate("synthetic-fiq".as_ref(), &SynthOptions { per_category: 1000, ..SynthOptions::default() })?;
//! println!("{} images", summary.images);
//! # Ok::<(), fiq::synth::SynthError>(())
//! ```

pub mod attributes;
mod captions;
mod render;

use crate::fashioniq::{captions_path, split_path, Category, Split};
use crate::rng::SplitMix64;
pub use attributes::Difficulty;
use attributes::{AttributeKind, Attributes};
pub(crate) use captions::{absolute_caption, relative_captions};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The side file, under the output root, recording every image's attributes.
pub const ATTRIBUTE_FILE: &str = "synth-attributes.json";

/// Version of the generator's output; bumped whenever the same seed would give different files.
pub const GENERATOR_VERSION: u32 = 1;

/// Where images go under `images/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageLayout {
    /// `images/NAME.ext`, as FashionIQ is distributed.
    #[default]
    Flat,
    /// `images/{category}/NAME.ext`.
    PerCategory,
}

/// The image file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    /// Lossless PNG (`.png`).
    #[default]
    Png,
    /// JPEG at quality 90 (`.jpg`), like the real images.
    Jpeg,
}

impl ImageFormat {
    fn extension(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpg",
        }
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SynthOptions {
    /// Images per category, over all splits (at least 10).
    pub per_category: usize,
    /// The seed; the same seed gives the same files.
    pub seed: u64,
    /// Image side in pixels (16 to 1024).
    pub size: u32,
    /// Folder layout of the images.
    pub layout: ImageLayout,
    /// Image file format.
    pub format: ImageFormat,
    /// How hard the task is (see [`Difficulty`]); not written to the attribute file when easy, so the
    /// easy level's files stay what they were.
    #[serde(default, skip_serializing_if = "Difficulty::is_easy")]
    pub difficulty: Difficulty,
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions {
            per_category: 1000,
            seed: 0,
            size: 64,
            layout: ImageLayout::Flat,
            format: ImageFormat::Png,
            difficulty: Difficulty::Easy,
        }
    }
}

/// What went wrong generating a synthetic tree.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// Options out of range.
    #[error("invalid synth option {option}: {value} (allowed: {allowed})")]
    InvalidOption {
        /// The option.
        option: &'static str,
        /// The value given.
        value: u64,
        /// The allowed range.
        allowed: &'static str,
    },
    /// A file or folder could not be written or read.
    #[error("cannot write {path}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An image could not be encoded.
    #[error("cannot encode image {path}")]
    Encode {
        /// The image file.
        path: PathBuf,
        /// The encoder's error.
        #[source]
        source: image::ImageError,
    },
    /// The attribute file is not what this generator writes.
    #[error("malformed attribute file {path}")]
    AttributeFile {
        /// The file.
        path: PathBuf,
        /// What serde_json found wrong.
        #[source]
        source: serde_json::Error,
    },
}

/// One generated image, as recorded in [`ATTRIBUTE_FILE`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The image name (file name without extension).
    pub name: String,
    /// The split whose gallery lists it.
    pub split: Split,
    /// Its attributes.
    #[serde(flatten)]
    pub attributes: Attributes,
}

/// A generated query, with its target even for the test split (whose caption files omit it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TripletRecord {
    /// The category.
    pub category: Category,
    /// The split.
    pub split: Split,
    /// The reference image.
    pub candidate: String,
    /// The target image.
    pub target: String,
    /// The two captions.
    pub captions: [String; 2],
}

/// The contents of [`ATTRIBUTE_FILE`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeFile {
    /// [`GENERATOR_VERSION`] of the writer.
    pub generator_version: u32,
    /// The options used.
    pub options: SynthOptions,
    /// Every image.
    pub images: Vec<ImageRecord>,
    /// Every triplet of every split.
    pub triplets: Vec<TripletRecord>,
}

impl AttributeFile {
    /// Reads the attribute file of a generated tree.
    pub fn read(root: &Path) -> Result<AttributeFile, SynthError> {
        let path = root.join(ATTRIBUTE_FILE);
        let bytes = std::fs::read(&path).map_err(|source| SynthError::Io {
            path: path.clone(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|source| SynthError::AttributeFile { path, source })
    }
}

/// Counts of what [`generate`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthSummary {
    /// Images written.
    pub images: usize,
    /// Triplets written, over all categories and splits.
    pub triplets: usize,
    /// Bytes of image files written.
    pub image_bytes: u64,
}

/// The share of each split in a category's images: train, val, test.
const SPLIT_SHARES: [(Split, usize); 3] = [(Split::Train, 60), (Split::Val, 20), (Split::Test, 20)];

/// Generates the whole tree under `out` (created if needed; existing files of the same names are replaced).
pub fn generate(out: &Path, options: &SynthOptions) -> Result<SynthSummary, SynthError> {
    validate(options)?;
    let plan = plan(options);
    let image_dirs: Vec<PathBuf> = match options.layout {
        ImageLayout::Flat => vec![out.join("images")],
        ImageLayout::PerCategory => Category::ALL
            .iter()
            .map(|category| out.join("images").join(category.as_str()))
            .collect(),
    };
    for dir in image_dirs
        .iter()
        .chain([&out.join("captions"), &out.join("image_splits")])
    {
        std::fs::create_dir_all(dir).map_err(|source| SynthError::Io {
            path: dir.clone(),
            source,
        })?;
    }

    let size = options.size as usize;
    let image_bytes = plan
        .images
        .par_iter()
        .enumerate()
        .map(|(index, record)| {
            let mut rng = SplitMix64::stream(options.seed, index as u64);
            let pixels = render::render(&record.attributes, options.difficulty, size, &mut rng);
            let path = image_path(out, options, record);
            write_image(&path, &pixels, options)
        })
        .try_reduce(|| 0, |a, b| Ok(a + b))?;

    for category in Category::ALL {
        for (split, _) in SPLIT_SHARES {
            let names: Vec<&str> = plan
                .images
                .iter()
                .filter(|record| record.attributes.category == category && record.split == split)
                .map(|record| record.name.as_str())
                .collect();
            write_json(&split_path(out, category, split), &names)?;
            let triplets: Vec<CaptionEntry> = plan
                .triplets
                .iter()
                .filter(|triplet| triplet.category == category && triplet.split == split)
                .map(|triplet| CaptionEntry {
                    target: (split != Split::Test).then_some(triplet.target.as_str()),
                    candidate: &triplet.candidate,
                    captions: &triplet.captions,
                })
                .collect();
            write_json(&captions_path(out, category, split), &triplets)?;
        }
    }
    let summary = SynthSummary {
        images: plan.images.len(),
        triplets: plan.triplets.len(),
        image_bytes,
    };
    write_json(&out.join(ATTRIBUTE_FILE), &plan)?;
    Ok(summary)
}

fn validate(options: &SynthOptions) -> Result<(), SynthError> {
    if options.per_category < 10 {
        return Err(SynthError::InvalidOption {
            option: "per_category",
            value: options.per_category as u64,
            allowed: "10 or more",
        });
    }
    if !(16..=1024).contains(&options.size) {
        return Err(SynthError::InvalidOption {
            option: "size",
            value: u64::from(options.size),
            allowed: "16 to 1024",
        });
    }
    Ok(())
}

/// One caption-file entry in FashionIQ's field order.
#[derive(Serialize)]
struct CaptionEntry<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<&'a str>,
    candidate: &'a str,
    captions: &'a [String; 2],
}

/// Decides every image and triplet, without touching the disk.
fn plan(options: &SynthOptions) -> AttributeFile {
    let mut images = Vec::new();
    let mut triplets = Vec::new();
    for (category_index, category) in Category::ALL.into_iter().enumerate() {
        let mut rng =
            SplitMix64::stream(options.seed ^ 0x5EED_CA7E_0000_0000, category_index as u64);
        let mut remaining = options.per_category;
        for (position, (split, share)) in SPLIT_SHARES.into_iter().enumerate() {
            let count = if position + 1 == SPLIT_SHARES.len() {
                remaining
            } else {
                options.per_category * share / 100
            };
            remaining -= count;
            let target = (category, split, options.difficulty);
            plan_split(target, count, &mut rng, &mut images, &mut triplets);
        }
    }
    AttributeFile {
        generator_version: GENERATOR_VERSION,
        options: options.clone(),
        images,
        triplets,
    }
}

/// Plans `count` images of one category and split: pairs, then distractors, then shuffled names.
fn plan_split(
    (category, split, difficulty): (Category, Split, Difficulty),
    count: usize,
    rng: &mut SplitMix64,
    images: &mut Vec<ImageRecord>,
    triplets: &mut Vec<TripletRecord>,
) {
    let pairs = count * 2 / 5;
    let kinds_of_change = AttributeKind::of(difficulty);
    // Attributes changed per pair: one or two (easy); one to three (hard), as FashionIQ's pairs differ
    // in more than their captions say.
    let most_changes = match difficulty {
        Difficulty::Easy => 2,
        Difficulty::Hard => 3,
    };
    let mut garments: Vec<Attributes> = Vec::with_capacity(count);
    for _ in 0..pairs {
        let candidate = Attributes::sample(category, difficulty, rng);
        let changes = 1 + rng.below(most_changes);
        let mut kinds = kinds_of_change.to_vec();
        rng.shuffle(&mut kinds);
        let target = candidate.changed(&kinds[..changes], difficulty, rng);
        garments.push(candidate);
        garments.push(target);
    }
    while garments.len() < count {
        // Distractors, by quarters: two of near misses (one change from a target), one of twins (a target's
        // attributes exactly; only the drawing jitter differs, like FashionIQ's many look-alike products),
        // one of random garments.
        // The hard level replaces half the target near misses by near misses of a reference (one change
        // from it, rarely the captioned one): what the reference image alone retrieves first, so that
        // the image alone is not enough, as in FashionIQ.
        let distractor = match (pairs > 0, rng.below(4)) {
            (true, 0) if difficulty == Difficulty::Hard => {
                let reference = garments[2 * rng.below(pairs)];
                let kind = kinds_of_change[rng.below(kinds_of_change.len())];
                reference.changed(&[kind], difficulty, rng)
            }
            (true, 0 | 1) => {
                let target = garments[2 * rng.below(pairs) + 1];
                let kind = kinds_of_change[rng.below(kinds_of_change.len())];
                target.changed(&[kind], difficulty, rng)
            }
            (true, 2) => garments[2 * rng.below(pairs) + 1],
            _ => Attributes::sample(category, difficulty, rng),
        };
        garments.push(distractor);
    }

    // Names are handed out in shuffled order, so a name reveals neither pairing nor role.
    let mut order: Vec<usize> = (0..count).collect();
    rng.shuffle(&mut order);
    let prefix = match category {
        Category::Dress => "SYND",
        Category::Shirt => "SYNS",
        Category::Toptee => "SYNT",
    };
    let split_digit = match split {
        Split::Train => 0,
        Split::Val => 1,
        Split::Test => 2,
    };
    let name_of = |garment: usize| format!("{prefix}{split_digit}{:05}", order[garment]);
    let first_image = images.len();
    images.extend((0..count).map(|garment| ImageRecord {
        name: name_of(garment),
        split,
        attributes: garments[garment],
    }));
    images[first_image..].sort_by(|a, b| a.name.cmp(&b.name));
    for pair in 0..pairs {
        let (candidate, target) = (&garments[2 * pair], &garments[2 * pair + 1]);
        triplets.push(TripletRecord {
            category,
            split,
            candidate: name_of(2 * pair),
            target: name_of(2 * pair + 1),
            captions: captions::relative_captions(candidate, target, difficulty, rng),
        });
    }
}

/// Where [`generate`] writes `record`'s image under the tree `out`.
pub(crate) fn image_path(out: &Path, options: &SynthOptions, record: &ImageRecord) -> PathBuf {
    let file = format!("{}.{}", record.name, options.format.extension());
    match options.layout {
        ImageLayout::Flat => out.join("images").join(file),
        ImageLayout::PerCategory => out
            .join("images")
            .join(record.attributes.category.as_str())
            .join(file),
    }
}

fn write_image(path: &Path, pixels: &[u8], options: &SynthOptions) -> Result<u64, SynthError> {
    use image::ImageEncoder;
    let mut bytes = Vec::with_capacity(pixels.len() / 2);
    let size = options.size;
    let encoded = match options.format {
        ImageFormat::Png => image::codecs::png::PngEncoder::new(&mut bytes).write_image(
            pixels,
            size,
            size,
            image::ExtendedColorType::Rgb8,
        ),
        ImageFormat::Jpeg => image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
            .write_image(pixels, size, size, image::ExtendedColorType::Rgb8),
    };
    encoded.map_err(|source| SynthError::Encode {
        path: path.to_owned(),
        source,
    })?;
    std::fs::write(path, &bytes).map_err(|source| SynthError::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(bytes.len() as u64)
}

/// Writes JSON indented by four spaces, as the FashionIQ files are.
fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<(), SynthError> {
    let io_error = |source| SynthError::Io {
        path: path.to_owned(),
        source,
    };
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(io_error)?);
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    value
        .serialize(&mut serializer)
        .map_err(|source| SynthError::Io {
            path: path.to_owned(),
            source: source.into(),
        })?;
    out.write_all(b"\n").map_err(io_error)?;
    out.flush().map_err(io_error)
}

#[cfg(test)]
mod tests;
