//! Approximate nearest-neighbor search: a FAISS IVF index kept with the memory-mapped store.
//!
//! - [`AnnIndex::build`] trains k-means on a seeded sample of a [`VectorSource`] and adds every row in
//!   batches; IVF-Flat keeps the vectors in the lists, IVF-SQ8 / IVF-PQ keep compressed codes and
//!   re-score their candidates with the exact rows of the store (no second full-precision copy).
//! - [`AnnIndex::write_file`] / [`AnnIndex::open`]: one FAISS file inside the committed index (the
//!   index's manifest records it, see `fiq::index::IndexWriter::build_ann`); open reads O(nlist * dim)
//!   bytes and maps the lists, which the searches that probe them page in.
//! - [`AnnIndex::search`] / [`AnnIndex::search_batch`]: candidates from the probed lists (a per-call
//!   `nprobe`, an optional id filter that FAISS applies while scanning), re-scored exactly for compressed
//!   codes. Whether a search is exact or IVF is decided by `fiq::index`, which owns the one exact search
//!   (`fiq::search::exact_search`) too.
//! - [`tune_nprobe`]: the smallest `nprobe` reaching a recall@k target on held-out queries.
//!
//! FAISS stays behind `faiss_ffi`: no FAISS type, pointer or error code appears in this API.

mod build_info;
mod drift;
mod error;
mod faiss_ffi;
mod index;
mod list_check;
mod params;
mod progress;
pub(crate) mod sample;
mod source;
#[cfg(test)]
mod testdata;
#[cfg(test)]
mod tests;
mod tune;

pub use crate::search::Neighbor;
pub use build_info::{faiss_cxxflags, faiss_simd_level};
pub use drift::{Drift, RETRAIN_GROWTH, RETRAIN_RATIO};
pub use error::AnnError;
pub use index::AnnIndex;
pub use params::{
    AnnParams, AnnRecord, ANN_FORMAT_OLDEST, ANN_FORMAT_VERSION, METRIC_INNER_PRODUCT,
};
pub use progress::Progress;
pub use source::{Matrix, VectorSource};
pub use tune::{held_out_queries, recall_at_k, tune_nprobe, TunePoint, TuneReport};
