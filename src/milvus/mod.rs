//! A Milvus collection as fiq's sink and search backend (feature `milvus`).
//!
//! fiq is embedded: one process, one directory. A catalog larger than one machine, or encoding spread
//! over many GPU workers, goes to a distributed vector engine instead of a home-made cluster. Milvus's
//! index families are FAISS's (IVF_FLAT here, with fiq's recorded `nlist`), so fiq's tuned parameters
//! carry over. fiq keeps what it is for: the encoders, fused queries, the FashionIQ protocol and recall
//! against its own exact search.
//!
//! - [`MilvusUrl`]: `milvus://HOST:PORT/COLLECTION`.
//! - [`MilvusCollection`]: a blocking handle on one fiq collection: created with fiq's schema and model
//!   record ([`CollectionRecord`]), upserts by key in acknowledged batches with retries, IVF search with
//!   an `nprobe` and a category or key filter, vectors fetched by key.
//! - [`MilvusBackend`]: the FashionIQ protocol's [`crate::eval::RetrievalBackend`] over a collection.
//! - [`MilvusRetriever`]: composed queries ([`crate::Query`]) answered from a collection.
//! - The workflows (export an index, encode a catalog or a part of it, evaluate) are in
//!   [`crate::pipeline`].
//!
//! No type of the Milvus SDK appears in this API; errors are [`MilvusError`].

mod backend;
mod client;
mod url;

use std::time::Duration;

pub use backend::{MilvusBackend, MilvusRetriever};
pub use client::{
    CollectionRecord, ConnectOptions, IndexCoverage, MilvusCollection, MilvusFilter, MilvusHit,
    SearchConsistency, CATEGORY_FIELD, KEY_FIELD, MAX_KEY_BYTES, VECTOR_FIELD,
};
pub use url::{MilvusUrl, SCHEME};

/// What can go wrong with a Milvus collection.
#[derive(Debug, thiserror::Error)]
pub enum MilvusError {
    /// Not a `milvus://HOST:PORT/COLLECTION` address.
    #[error("{url:?} is not a Milvus address: {reason}")]
    BadUrl {
        /// The text given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server could not be reached.
    #[error("cannot connect to Milvus at {endpoint}: {reason} (is the server running?)")]
    Connect {
        /// `http://HOST:PORT`.
        endpoint: String,
        /// The transport's reason.
        reason: String,
    },
    /// A call took longer than the timeout.
    #[error("Milvus at {endpoint} did not answer {operation} within {after:?}")]
    Timeout {
        /// `http://HOST:PORT`.
        endpoint: String,
        /// What fiq asked.
        operation: String,
        /// The timeout.
        after: Duration,
    },
    /// The server has no such collection.
    #[error(
        "Milvus at {endpoint} has no collection {collection:?} (build or export into it first)"
    )]
    MissingCollection {
        /// The collection's name.
        collection: String,
        /// `http://HOST:PORT`.
        endpoint: String,
    },
    /// The collection exists but fiq did not make it.
    #[error("{collection} was not made by fiq: {reason}")]
    NotFiq {
        /// The collection's address.
        collection: String,
        /// Why not.
        reason: String,
    },
    /// Vectors or queries of another model than the collection's.
    #[error("{collection} holds vectors of {stored}; the model in use is {query}: its vectors are not comparable")]
    ModelMismatch {
        /// The collection's address.
        collection: String,
        /// The collection's model.
        stored: String,
        /// The model in use.
        query: String,
    },
    /// Vectors of another dimension than the collection's.
    #[error("{collection} holds {expected}-dimensional vectors, got {actual}")]
    Dimension {
        /// The collection's address.
        collection: String,
        /// The collection's dimension.
        expected: usize,
        /// What was given.
        actual: usize,
    },
    /// A key or category longer than the collection's VARCHAR bound.
    #[error("{collection}: {value:?}... is longer than {limit} bytes, the longest key or category a collection holds")]
    TooLong {
        /// The collection's address.
        collection: String,
        /// The beginning of the value.
        value: String,
        /// The bound.
        limit: usize,
    },
    /// Rows Milvus did not acknowledge after every retry: they are not stored.
    #[error("{collection}: {rows} rows not acknowledged after {attempts} attempts: {reason}")]
    Unacknowledged {
        /// The collection's address.
        collection: String,
        /// Rows of the batch.
        rows: usize,
        /// Attempts made.
        attempts: u32,
        /// The last refusal.
        reason: String,
    },
    /// The server refused or failed a call.
    #[error("Milvus failed {operation} on {collection}: {reason}")]
    Server {
        /// What fiq asked.
        operation: String,
        /// The collection's address.
        collection: String,
        /// The server's reason.
        reason: String,
    },
    /// The client's runtime could not start.
    #[error("cannot start the Milvus client's runtime: {0}")]
    Runtime(String),
}
