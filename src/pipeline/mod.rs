//! The workflows, as library calls: encode a catalog into an index ([`build_catalog`], [`add_images`]),
//! import vectors ([`import_vectors`]), build the IVF index and measure and record its `nprobe`
//! ([`build_ivf`], [`tune_and_record`]), and measure composed retrieval by the FashionIQ protocol
//! ([`evaluate_index`], [`evaluate_index_both_ways`]) and show it as an HTML page ([`html_report`]);
//! with the `milvus` feature, export to, encode into and evaluate through a Milvus collection
//! (`export_to_milvus`, `build_into_milvus`, `evaluate_milvus`).
//! The `fiq-index` binary only parses, calls these and prints.

mod add;
mod build;
pub(crate) mod eval;
mod ivf;
#[cfg(feature = "milvus")]
mod milvus;
mod report;
mod vectors;

pub use add::{upsert_image_dir, upsert_images, AddReport, IMAGE_EXTENSIONS};
pub use build::{add_images, build_catalog, BuildOptions, BuildReport, CatalogImage, SkippedImage};
pub use eval::{
    evaluate_index, evaluate_index_both_ways, evaluate_index_ranked, Agreement, CategoryGalleries,
    IndexBackend, ModeComparison, TextSource,
};
pub use ivf::{
    build_ivf, measure_nprobe, query_vectors, record_nprobe, tune_and_record, TuneQueries,
    TuneTarget,
};
#[cfg(feature = "milvus")]
pub use milvus::{
    build_into_milvus, encode_into_milvus, evaluate_milvus, export_to_milvus, MilvusComparison,
    Part, SinkOptions, SinkReport,
};
pub use report::{html_report, HtmlReportOptions, RunResults};
pub use vectors::{import_vectors, ImportOptions, ImportReport};

/// Errors of the pipeline that are not another module's.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A reference image is neither in the index nor available as a file.
    #[error(
        "reference image {name} ({category}) is not in the index and has no image file to encode"
    )]
    MissingReference {
        /// The category.
        category: String,
        /// The name involved.
        name: String,
    },
    /// A keys file that does not pair one to one with the vectors.
    #[error("{} has {rows} rows but {} has {count} keys; they must match one to one", vectors.display(), keys.display())]
    KeyCount {
        /// The vectors file.
        vectors: std::path::PathBuf,
        /// Its rows.
        rows: usize,
        /// The keys file.
        keys: std::path::PathBuf,
        /// How many.
        count: usize,
    },
    /// Vectors of another dimension than the index's.
    #[error("{} holds {found}-dimensional vectors, the index at {} holds {expected}", file.display(), index.display())]
    Dimension {
        /// The file's name.
        file: std::path::PathBuf,
        /// What was found.
        found: usize,
        /// The position of the input.
        index: std::path::PathBuf,
        /// What was expected.
        expected: usize,
    },
    /// A row of an imported file that the index refuses (NaN, a zero vector, a duplicate key).
    #[error("row {row} of {}", file.display())]
    ImportRow {
        /// The vectors file.
        file: std::path::PathBuf,
        /// The row (0-based).
        row: usize,
        /// Why the index refused it.
        #[source]
        source: Box<crate::Error>,
    },
    /// The IVF index was rebuilt while its nprobe was measured: the measurement does not apply.
    #[error("the IVF index of {} changed while tuning; run tune again", index.display())]
    IvfChanged {
        /// The index.
        index: std::path::PathBuf,
    },
}
