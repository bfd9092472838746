//! FashionIQ evaluation: Recall@K and Precision@K per category and averaged over categories, as the papers
//! report them.
//!
//! - [`metrics`]: the numbers, from ranked result keys and target keys.
//! - [`protocol`]: the driver that turns a [`Dataset`](crate::fashioniq::Dataset) split into queries, asks a
//!   [`RetrievalBackend`] to encode and search, and scores the answers.
//! - [`report`]: per-category rows and their average, as a paper-like table or JSON.

mod error;
pub mod metrics;
pub mod protocol;
pub mod report;

pub use error::{BackendError, EvalError};
pub use metrics::{precision_at_k, recall_at_k, TargetRanks, PRECISION_DEFINITION};
pub use protocol::{
    evaluate, evaluate_ranked, EvalOptions, FnBackend, QueryRanking, RankedEvaluation,
    RetrievalBackend,
};
pub use report::{CategoryRow, EvalReport, MetricAtK, SkippedQuery};

#[cfg(test)]
mod tests;
