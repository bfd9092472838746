//! What can go wrong in the ANN layer, with the path, dimension or parameter involved.

use std::path::PathBuf;

/// An error of the [`crate::ann`] module.
#[derive(Debug, thiserror::Error)]
pub enum AnnError {
    /// A vector's length differs from the index dimension.
    #[error("{what} has dimension {got}, the index has dimension {expected}")]
    DimensionMismatch {
        /// Which vector (`query 3`, `vector source`).
        what: String,
        /// The index dimension.
        expected: usize,
        /// The dimension found.
        got: usize,
    },
    /// A query holds NaN or an infinity; no ordering of scores would be meaningful.
    #[error("query {query} holds a non-finite value at position {position}")]
    NonFiniteQuery {
        /// Which query of the batch.
        query: usize,
        /// Where in the vector.
        position: usize,
    },
    /// A vector without a direction (zero, or non-finite), where a unit vector is needed.
    #[error("{what} cannot be normalized: {problem}")]
    NoDirection {
        /// Which vector (`row 3`, `held-out query 7`).
        what: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The vector source handed to a search is not the one the index was built from.
    #[error("the vector source holds {source_len} vectors, the ANN index holds {index_len}")]
    SourceMismatch {
        /// Vectors in the FAISS index.
        index_len: usize,
        /// Vectors in the source.
        source_len: usize,
    },
    /// There is nothing to build from.
    #[error("cannot build an ANN index from an empty vector source")]
    EmptySource,
    /// A parameter is out of range.
    #[error("invalid ANN parameter {name} = {value}: {reason}")]
    InvalidParameter {
        /// The parameter (`nprobe`, `nlist`, `train_size`, `k`).
        name: &'static str,
        /// Its value, as given.
        value: String,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// The factory string does not describe an inverted-file index (fiq needs IVF to route queries).
    #[error("factory {factory:?} does not make an IVF index (expected e.g. \"IVF1024,Flat\", \"IVF1024,SQ8\", \"IVF1024,PQ64\")")]
    NotIvf {
        /// The factory string.
        factory: String,
    },
    /// FAISS reported a failure.
    #[error("FAISS failed to {operation}: {message}")]
    Faiss {
        /// What fiq asked FAISS to do (`train`, `read {path}`...).
        operation: String,
        /// FAISS's own message.
        message: String,
    },
    /// A file of the ANN index is missing, truncated or does not match its recorded checksum.
    #[error("ANN file {path}: {problem}")]
    CorruptFile {
        /// The file.
        path: PathBuf,
        /// What is wrong (`length 120 != recorded 4096`, `CRC32 mismatch`).
        problem: String,
    },
    /// Reading or writing an ANN file failed.
    #[error("I/O on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The recorded parameters could not be parsed.
    #[error("ANN parameters {json:?} are not valid: {reason}")]
    BadParams {
        /// The JSON text as stored.
        json: String,
        /// serde's reason.
        reason: String,
    },
    /// FAISS was compiled with AVX2/FMA instructions this CPU lacks; running it would crash.
    #[error("this fiq build compiled FAISS with {flags:?}, but the CPU lacks {missing}; rebuild with CXXFLAGS_x86_64_unknown_linux_gnu=\"\"")]
    CpuUnsupported {
        /// The C++ flags FAISS was compiled with.
        flags: String,
        /// The missing CPU feature.
        missing: &'static str,
    },
}

impl AnnError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> AnnError {
        AnnError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(
        name: &'static str,
        value: impl ToString,
        reason: &'static str,
    ) -> AnnError {
        AnnError::InvalidParameter {
            name,
            value: value.to_string(),
            reason,
        }
    }
}
