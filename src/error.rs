//! The one error type of the fiq library: each module has its own typed error, rolled up here.

/// Everything that can go wrong in fiq. Each variant wraps the typed error of one module, which carries
/// the path, key or dimension involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The on-disk format: a corrupt, truncated or foreign file.
    #[error(transparent)]
    Format(#[from] fiq_index_format::FormatError),
    /// The FAISS IVF index: building, opening or searching it.
    #[error(transparent)]
    Ann(#[from] crate::ann::AnnError),
}

/// `Result` with fiq's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
