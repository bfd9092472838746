//! The main job, wired end to end: encode a FashionIQ catalog into an index ([`build`]) and measure
//! composed retrieval on it by the FashionIQ protocol ([`evaluate_index`]).

mod add;
mod build;
mod eval;

pub use add::{add_images, add_vectors, AddReport, IMAGE_EXTENSIONS};
pub use build::{build_catalog, BuildOptions, BuildReport, SkippedImage};
pub use eval::{
    evaluate_index, evaluate_index_both_ways, Agreement, CategoryGalleries, IndexBackend,
    ModeComparison,
};

/// Errors of the pipeline that are not another module's.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The index was built by another model than the one given.
    #[error("the index at {index} was built with model {index_model:?} (fingerprint {index_fingerprint}), but {model:?} (fingerprint {fingerprint}) was given; use the same model, or build a new index with --out")]
    ModelMismatch {
        index: std::path::PathBuf,
        index_model: String,
        index_fingerprint: String,
        model: String,
        fingerprint: String,
    },
    /// A reference image is neither in the index nor available as a file.
    #[error(
        "reference image {name} ({category}) is not in the index and has no image file to encode"
    )]
    MissingReference { category: String, name: String },
}

/// The index's record of an encoder.
pub fn index_model_info(info: &crate::encoder::ModelInfo) -> crate::index::ModelInfo {
    crate::index::ModelInfo {
        name: info.name.clone(),
        fingerprint: info.fingerprint.clone(),
        preprocessing: info.preprocessing.clone(),
    }
}
