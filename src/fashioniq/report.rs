//! What the loader read, kept and left out, per category.

use super::error::DatasetError;
use super::{Category, Split};
use serde::Serialize;
use std::fmt;
use std::io::Write;
use std::path::Path;

/// Counts for one category of one split. Every triplet read is either kept or counted in exactly one of
/// `dropped_missing_image`, `dropped_duplicate`, `dropped_no_caption`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CategoryCounts {
    /// Entries in the caption file.
    pub triplets_read: usize,
    /// Triplets kept.
    pub triplets_kept: usize,
    /// Triplets left out because their candidate or target image does not resolve to a file.
    pub dropped_missing_image: usize,
    /// Triplets left out because an identical triplet (same images, same trimmed captions) came earlier.
    pub dropped_duplicate: usize,
    /// Triplets left out because both captions are empty.
    pub dropped_no_caption: usize,
    /// Kept triplets without a target (the test split).
    pub without_target: usize,
    /// Captions that are empty after trimming whitespace (kept; the query text uses the other caption).
    pub empty_captions: usize,
    /// Captions that had leading or trailing whitespace, now trimmed.
    pub trimmed_captions: usize,
    /// Names in the split file.
    pub gallery_listed: usize,
    /// Gallery images kept (resolved to a file, or every listed name in annotation-only mode).
    pub gallery_kept: usize,
    /// Names listed more than once in the split file (kept once).
    pub gallery_duplicates: usize,
    /// Distinct image names (gallery, candidate or target) that do not resolve to a file.
    pub missing_images: usize,
}

/// Why a missing image was looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MissingRole {
    /// Listed in the split file.
    Gallery,
    /// A triplet's reference image.
    Candidate,
    /// A triplet's target image.
    Target,
}

impl fmt::Display for MissingRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MissingRole::Gallery => "gallery",
            MissingRole::Candidate => "candidate",
            MissingRole::Target => "target",
        })
    }
}

/// An image name that resolved to no file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct MissingImage {
    /// Its category.
    pub category: Category,
    /// The image name.
    pub name: String,
    /// The first role it was looked for in.
    pub role: MissingRole,
}

/// The outcome of [`Dataset::load`](super::Dataset::load): counts per category and every missing image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadReport {
    /// The split loaded.
    pub split: Split,
    /// Whether images were resolved (false in annotation-only mode, where nothing is reported missing).
    pub images_resolved: bool,
    /// Counts per requested category, in request order.
    pub categories: Vec<(Category, CategoryCounts)>,
    /// Every missing image, each name once per category.
    pub missing: Vec<MissingImage>,
    /// Image files hidden by another file of the same name (e.g. `X.jpg` next to `X.png`).
    pub shadowed_image_files: usize,
}

impl LoadReport {
    /// The counts of `category`, if it was loaded.
    pub fn counts(&self, category: Category) -> Option<&CategoryCounts> {
        self.categories
            .iter()
            .find(|(loaded, _)| *loaded == category)
            .map(|(_, counts)| counts)
    }

    /// Writes one line per missing image, `category<TAB>role<TAB>name`, after a header line. The file is
    /// written even when nothing is missing, so its presence says the check ran.
    pub fn write_missing_log(&self, path: impl AsRef<Path>) -> Result<(), DatasetError> {
        let path = path.as_ref();
        let io_error = |source| DatasetError::Io {
            path: path.to_owned(),
            source,
        };
        let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(io_error)?);
        writeln!(out, "# split={} missing={}", self.split, self.missing.len()).map_err(io_error)?;
        for missing in &self.missing {
            writeln!(
                out,
                "{}\t{}\t{}",
                missing.category, missing.role, missing.name
            )
            .map_err(io_error)?;
        }
        out.flush().map_err(io_error)
    }
}

impl fmt::Display for LoadReport {
    /// A plain-text table, one row per category.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "FashionIQ {} ({})",
            self.split,
            if self.images_resolved {
                "images resolved"
            } else {
                "annotations only"
            }
        )?;
        writeln!(
            f,
            "{:<8} {:>8} {:>8} {:>8} {:>6} {:>8} {:>6} {:>8} {:>8} {:>8}",
            "category",
            "read",
            "kept",
            "no-image",
            "dup",
            "no-text",
            "empty",
            "trimmed",
            "gallery",
            "missing"
        )?;
        for (category, counts) in &self.categories {
            writeln!(
                f,
                "{:<8} {:>8} {:>8} {:>8} {:>6} {:>8} {:>6} {:>8} {:>8} {:>8}",
                category.as_str(),
                counts.triplets_read,
                counts.triplets_kept,
                counts.dropped_missing_image,
                counts.dropped_duplicate,
                counts.dropped_no_caption,
                counts.empty_captions,
                counts.trimmed_captions,
                counts.gallery_kept,
                counts.missing_images
            )?;
        }
        if self.shadowed_image_files > 0 {
            writeln!(
                f,
                "{} image files hidden by another file of the same name",
                self.shadowed_image_files
            )?;
        }
        Ok(())
    }
}
