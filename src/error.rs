//! The one error type of the fiq library: each module has its own typed error, rolled up here.

/// Everything that can go wrong in fiq. Each variant wraps the typed error of one module, which carries
/// the path, key or dimension involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The on-disk format: a corrupt, truncated or foreign file.
    #[error(transparent)]
    Format(#[from] fiq_index_format::FormatError),
    /// Loading or running an image/text encoder: a missing or malformed model file, an unsupported
    /// config, a tensor that is absent or mis-shaped, an empty text.
    #[error(transparent)]
    Encoder(#[from] crate::encoder::EncoderError),
}

/// `Result` with fiq's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
