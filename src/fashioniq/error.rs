use std::path::PathBuf;

/// What can go wrong reading a FashionIQ tree. Each variant names the file or name involved.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// A category name other than `dress`, `shirt`, `toptee`.
    #[error("unknown FashionIQ category {name:?} (expected dress, shirt or toptee)")]
    UnknownCategory {
        /// The name given.
        name: String,
    },
    /// A split name other than `train`, `val`, `test`.
    #[error("unknown FashionIQ split {name:?} (expected train, val or test)")]
    UnknownSplit {
        /// The name given.
        name: String,
    },
    /// [`Dataset::load`](super::Dataset::load) was asked for no category.
    #[error("no FashionIQ category requested")]
    NoCategories,
    /// A file or folder could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A caption or split file is not valid JSON of the expected shape.
    #[error("malformed JSON in {path} at line {line}, column {column}")]
    Json {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// What serde_json found wrong.
        #[source]
        source: serde_json::Error,
    },
    /// A caption entry with other than two captions.
    #[error("{path}: entry {entry} has {found} captions, expected 2")]
    CaptionCount {
        /// The caption file.
        path: PathBuf,
        /// 0-based position of the entry in the file's list.
        entry: usize,
        /// How many captions it has.
        found: usize,
    },
    /// A caption entry with an empty candidate or target name.
    #[error("{path}: entry {entry} has an empty {field} name")]
    EmptyImageName {
        /// The caption file.
        path: PathBuf,
        /// 0-based position of the entry.
        entry: usize,
        /// `candidate` or `target`.
        field: &'static str,
    },
    /// Images are required but the root has no `images/` folder.
    #[error("no image folder at {path} (load with ImageRequirement::AnnotationsOnly to read captions without images)")]
    NoImageFolder {
        /// The expected folder.
        path: PathBuf,
    },
    /// A train or val caption entry without a target.
    #[error("{path}: entry {entry} has no target, which only the test split may omit")]
    MissingTarget {
        /// The caption file.
        path: PathBuf,
        /// 0-based position of the entry.
        entry: usize,
    },
}
