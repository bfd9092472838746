use crate::fashioniq::{Category, Split};
use crate::fusion::FusionError;

/// An error from the caller's encoder or search, carried through the evaluation with its context.
pub type BackendError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What can go wrong computing metrics or running an evaluation.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// K must be at least 1.
    #[error("K must be at least 1")]
    ZeroK,
    /// Metrics over no query are undefined.
    #[error("no queries to score{}", category.map(|c| format!(" for {c}")).unwrap_or_default())]
    NoQueries {
        /// The category, when known.
        category: Option<Category>,
    },
    /// Ranked lists and targets differ in count.
    #[error("{ranked} ranked lists but {targets} targets")]
    LengthMismatch {
        /// Ranked lists given.
        ranked: usize,
        /// Targets given.
        targets: usize,
    },
    /// The split has no targets (FashionIQ test), so nothing can be scored.
    #[error(
        "{category} {split}: triplets have no target; only splits with targets can be evaluated"
    )]
    NoTargets {
        /// The category.
        category: Category,
        /// The split.
        split: Split,
    },
    /// The caller's image encoder failed.
    #[error("{category}: encoding reference image {name}")]
    EncodeImage {
        /// The category.
        category: Category,
        /// The image name.
        name: String,
        /// The caller's error.
        #[source]
        source: BackendError,
    },
    /// The caller's text encoder failed.
    #[error("{category}: encoding {count} query texts")]
    EncodeText {
        /// The category.
        category: Category,
        /// Texts in the failed batch.
        count: usize,
        /// The caller's error.
        #[source]
        source: BackendError,
    },
    /// The text encoder returned a different number of vectors than texts.
    #[error("{category}: text encoder returned {found} vectors for {expected} texts")]
    TextCount {
        /// The category.
        category: Category,
        /// Texts sent.
        expected: usize,
        /// Vectors returned.
        found: usize,
    },
    /// The caller's search failed.
    #[error("{category}: searching the gallery for {queries} queries")]
    Search {
        /// The category.
        category: Category,
        /// Queries in the failed batch.
        queries: usize,
        /// The caller's error.
        #[source]
        source: BackendError,
    },
    /// The search returned a different number of result lists than queries.
    #[error("{category}: search returned {found} result lists for {expected} queries")]
    ResultCount {
        /// The category.
        category: Category,
        /// Queries sent.
        expected: usize,
        /// Lists returned.
        found: usize,
    },
    /// The image and text vectors could not be fused.
    #[error("{category}: fusing the query of {candidate}")]
    Fusion {
        /// The category.
        category: Category,
        /// The query's reference image.
        candidate: String,
        /// What was wrong with the vectors.
        #[source]
        source: FusionError,
    },
    /// The report could not be rendered as JSON.
    #[error("rendering the evaluation report as JSON")]
    Json(#[source] serde_json::Error),
}
