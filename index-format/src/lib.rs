//! The on-disk format of fiq indexes. See SPEC.md.
mod error;
pub use error::FormatError;
