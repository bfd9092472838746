//! fiq: composed image retrieval as an embedded library.
//!
//! A catalog of product images is encoded once into an on-disk, memory-mapped [`Index`]; a query is a
//! reference image plus a modification text ("is red and sleeveless"), encoded by an [`encoder`],
//! fused into one vector by [`fusion`], and searched exactly or through FAISS ([`ann`]).
//!
//! See `ARCHITECTURE.md` for the map of modules.

pub mod ann;
mod blas;
pub mod encoder;
pub mod error;
pub mod eval;
pub mod fashioniq;
pub mod fusion;
pub mod index;
pub mod keys;
pub mod npy;
pub mod pipeline;
pub mod progress;
pub mod search;
pub mod synth;
pub mod train;
pub mod vector;

pub use error::{Error, Result};
pub use index::{Hit, Index, IndexWriter};
