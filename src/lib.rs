//! fiq: composed image retrieval as an embedded library.
//!
//! A catalog of product images is encoded once into an on-disk, memory-mapped [`Index`]; a query is a
//! reference image plus a modification text ("is red and sleeveless"), encoded by an [`encoder`],
//! fused into one vector by [`fusion`], and searched exactly or through FAISS ([`ann`]).
//!
//! The front door is [`Retriever`]: open an index with the encoder that built it and ask composed
//! queries ([`Query`]: a reference image, key or vector, plus a modification text). [`pipeline`] holds
//! the workflows (build a catalog, import vectors, build and tune the IVF index, evaluate by the
//! FashionIQ protocol) as library calls. See `ARCHITECTURE.md` for the map of modules.

#![warn(missing_docs)]

pub mod ann;
mod bf16_gemm;
mod blas;
pub mod encoder;
pub mod error;
pub mod eval;
pub mod fashioniq;
pub mod fusion;
pub mod index;
pub mod keys;
#[cfg(feature = "milvus")]
pub mod milvus;
pub mod npy;
pub mod pipeline;
pub mod progress;
pub mod report;
pub mod retriever;
pub mod rng;
pub mod search;
#[cfg(feature = "server")]
pub mod server;
pub mod synth;
pub mod train;
pub mod vector;

pub use error::{Error, Result};

/// The README's Rust examples, compiled and run as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
pub use index::{Hit, Index, IndexWriter};
pub use retriever::{
    Answer, Query, QueryFilter, QueryOptions, Reference, RetrievedItem, Retriever,
};
