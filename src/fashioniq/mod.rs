//! FashionIQ as distributed: relative-caption triplets, per-split image lists and an image folder.
//!
//! The layout under a dataset root:
//!
//! ```text
//! captions/cap.{dress,shirt,toptee}.{train,val,test}.json   [{"target", "candidate", "captions": [c1, c2]}]
//! image_splits/split.{dress,shirt,toptee}.{train,val,test}.json   ["B00AKLK08G", ...]
//! images/NAME.jpg               (flat, as distributed), or
//! images/{category}/NAME.png    (one folder per category)
//! ```
//!
//! An image name resolves to `NAME.jpg`, `.jpeg`, `.png` or `.webp` in any letter case, in either layout.
//! [`Dataset::load`] keeps only the triplets whose images exist; every image that does not is written to the
//! [`LoadReport`] (and, with [`LoadReport::write_missing_log`], to a file), never silently dropped.
//!
//! ```no_run
//! use fiq::fashioniq::{Category, Dataset, LoadOptions, Split};
//!
//! let dataset = Dataset::load("fashionIQ_dataset", &Category::ALL, Split::Val, LoadOptions::default())?;
//! println!("{}", dataset.report());
//! for triplet in dataset.triplets(Category::Dress) {
//!     println!("{} -> {:?}: {}", triplet.candidate, triplet.target, fiq::fashioniq::eval_query_text(&triplet.captions));
//! }
//! # Ok::<(), fiq::fashioniq::DatasetError>(())
//! ```

mod annotations;
mod captions;
mod dataset;
mod error;
mod images;
mod report;

pub use captions::{clean_caption, eval_query_text, training_query_text, TrainingCaption};
pub use dataset::{Dataset, GalleryImage, ImageRequirement, LoadOptions};
pub use error::DatasetError;
pub use report::{CategoryCounts, LoadReport, MissingImage, MissingRole};

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A FashionIQ garment category; each has its own captions, splits and gallery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// `dress`
    Dress,
    /// `shirt`
    Shirt,
    /// `toptee` (tops and tees)
    Toptee,
}

impl Category {
    /// The three categories in the order the papers report them.
    pub const ALL: [Category; 3] = [Category::Dress, Category::Shirt, Category::Toptee];

    /// The name used in FashionIQ file names (`dress`, `shirt`, `toptee`).
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Dress => "dress",
            Category::Shirt => "shirt",
            Category::Toptee => "toptee",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Category {
    type Err = DatasetError;

    /// Parses `dress`, `shirt` or `toptee`, in any letter case.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|category| category.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| DatasetError::UnknownCategory {
                name: text.to_owned(),
            })
    }
}

/// A FashionIQ split. The test split's captions carry no target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// `train`
    Train,
    /// `val`: the split the papers report (its targets are public).
    Val,
    /// `test`: targets withheld.
    Test,
}

impl Split {
    /// All splits.
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    /// The name used in FashionIQ file names (`train`, `val`, `test`).
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Split {
    type Err = DatasetError;

    /// Parses `train`, `val` (or `validation`) or `test`, in any letter case.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("validation") {
            return Ok(Split::Val);
        }
        Split::ALL
            .into_iter()
            .find(|split| split.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| DatasetError::UnknownSplit {
                name: text.to_owned(),
            })
    }
}

/// One relative-caption query: a candidate (reference) image, the target image it should retrieve, and two
/// captions from two annotators saying how the target differs.
///
/// Captions are stored with surrounding whitespace removed and otherwise as annotated; an empty caption stays
/// an empty string (counted in [`CategoryCounts::empty_captions`]). Build model text with [`eval_query_text`]
/// or [`training_query_text`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Triplet {
    /// The reference image name (FashionIQ's `candidate`).
    pub candidate: String,
    /// The target image name; `None` in the test split.
    pub target: Option<String>,
    /// The two relative captions.
    pub captions: [String; 2],
}

/// The path of `captions/cap.{category}.{split}.json` under `root`.
pub fn captions_path(
    root: &std::path::Path,
    category: Category,
    split: Split,
) -> std::path::PathBuf {
    root.join("captions")
        .join(format!("cap.{category}.{split}.json"))
}

/// The path of `image_splits/split.{category}.{split}.json` under `root`.
pub fn split_path(root: &std::path::Path, category: Category, split: Split) -> std::path::PathBuf {
    root.join("image_splits")
        .join(format!("split.{category}.{split}.json"))
}

#[cfg(test)]
mod tests;
