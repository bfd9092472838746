//! The one error type of the fiq library: each module has its own typed error, rolled up here.

/// Everything that can go wrong in fiq. Each variant wraps the typed error of one module, which carries
/// the path, key or dimension involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The on-disk format: a corrupt, truncated or foreign file, or input the format cannot hold.
    #[error(transparent)]
    Format(#[from] fiq_index_format::FormatError),
    /// Using an index: a query of the wrong shape or from another model.
    #[error(transparent)]
    Index(#[from] crate::index::IndexError),
    /// A keys file: unreadable, not UTF-8, an empty line or a duplicate key.
    #[error(transparent)]
    Keys(#[from] crate::keys::KeysError),
    /// Reading or writing `.npy` files.
    #[error(transparent)]
    Npy(#[from] crate::npy::NpyError),
    /// A FashionIQ tree: a missing or malformed caption/split file, an unknown category or split.
    #[error(transparent)]
    Dataset(#[from] crate::fashioniq::DatasetError),
    /// Generating the synthetic FashionIQ tree.
    #[error(transparent)]
    Synth(#[from] crate::synth::SynthError),
    /// Fusing image and text vectors: mismatched dimensions, NaN, zero vectors.
    #[error(transparent)]
    Fusion(#[from] crate::fusion::FusionError),
    /// Computing metrics or running an evaluation.
    #[error(transparent)]
    Eval(#[from] crate::eval::EvalError),
    /// Building or evaluating a catalog end to end.
    #[error(transparent)]
    Pipeline(#[from] crate::pipeline::PipelineError),
    /// Loading or running an image/text encoder: a missing or malformed model file, an unsupported
    /// config, a tensor that is absent or mis-shaped, an empty text.
    #[error(transparent)]
    Encoder(#[from] crate::encoder::EncoderError),
    /// The FAISS IVF index: building, opening or searching it.
    #[error(transparent)]
    Ann(#[from] crate::ann::AnnError),
    /// Asking composed queries: an encoder that cannot serve the index, or a query that cannot be
    /// answered (an unreadable image, an unknown key or category).
    #[error(transparent)]
    Retriever(#[from] crate::retriever::RetrieverError),
    /// Training a learned fusion: bad options, a failing text encoder, checkpoints.
    #[error(transparent)]
    Train(#[from] crate::train::TrainError),
    /// A Milvus collection: an unreachable server, a missing collection, another model's vectors, rows
    /// not acknowledged.
    #[cfg(feature = "milvus")]
    #[error(transparent)]
    Milvus(#[from] crate::milvus::MilvusError),
}

/// `Result` with fiq's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error and every cause under it, on one line (`outer: cause: root cause`): how fiq reports an error
/// that is kept as text, in a report or a JSON line.
///
/// ```
/// let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
/// let error = fiq::npy::NpyError::Io { path: "x.npy".into(), source: io };
/// assert!(fiq::error::chain(&error).ends_with(": no such file"));
/// ```
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
