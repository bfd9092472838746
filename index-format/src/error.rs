//! Errors from reading or writing index bytes. Each names the file and what is wrong with it, so that a
//! user can tell a truncated copy from a foreign file from a flipped bit.

use std::path::PathBuf;

/// What can go wrong with the bytes of an index.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The path holds no index: no MANIFEST file.
    #[error("{path}: not a fiq index (no MANIFEST file); create one with `fiq-index import` or `fiq-index build`")]
    NotAnIndex { path: PathBuf },
    /// The file does not start with the magic bytes of the expected kind of file.
    #[error("{path}: not a fiq {expected} file (magic bytes {found:02x?})")]
    BadMagic {
        path: PathBuf,
        expected: &'static str,
        found: Vec<u8>,
    },
    /// The file was written by a format version this build cannot read.
    #[error("{path}: format version {found} is not supported (this build reads versions {oldest} to {current}); upgrade fiq")]
    UnsupportedVersion {
        path: PathBuf,
        found: u32,
        oldest: u32,
        current: u32,
    },
    /// The file is shorter than its header says.
    #[error("{path}: truncated: {expected} bytes expected, {actual} found (an interrupted copy?)")]
    Truncated {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    /// A checksum does not match: the bytes changed after they were written.
    #[error("{path}: checksum mismatch in {region}: stored {stored:08x}, computed {computed:08x} (the file is corrupt)")]
    ChecksumMismatch {
        path: PathBuf,
        region: String,
        stored: u32,
        computed: u32,
    },
    /// A structural field is out of range or inconsistent with another one.
    #[error("{path}: corrupt {what}: {detail}")]
    Corrupt {
        path: PathBuf,
        what: &'static str,
        detail: String,
    },
    /// A vector holds NaN or infinity.
    #[error("{path}: vector of row {row} (key {key:?}) holds a non-finite value at component {component}")]
    NonFiniteVector {
        path: PathBuf,
        row: u64,
        key: String,
        component: usize,
    },
    /// A vector of the wrong length was given to the writer.
    #[error("dimension mismatch: the index holds {expected}-dimensional vectors, got {actual} values for key {key:?}")]
    DimensionMismatch {
        expected: usize,
        actual: usize,
        key: String,
    },
    /// Bad input to the writer: the data does not fit the index.
    #[error("invalid input for key {key:?}: {detail}")]
    InvalidInput { key: String, detail: String },
    /// The same key was added twice.
    #[error("duplicate key {key:?}: keys must be unique in an index")]
    DuplicateKey { key: String },
    /// A key that is not in the index was asked for.
    #[error("key {key:?} is not in the index")]
    UnknownKey { key: String },
    /// Another writer holds the index's writer lock.
    #[error("{path}: another writer is changing this index (it holds the writer lock); wait for it to finish, readers are not affected")]
    WriterBusy { path: PathBuf },
    /// A writer was asked to do two things that cannot share one commit.
    #[error("{what}")]
    Conflict { what: String },
    /// Bytes could not be encoded within the format's limits.
    #[error("cannot encode {what}: {detail}")]
    Encode { what: &'static str, detail: String },
}

impl FormatError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        FormatError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(
        path: impl Into<PathBuf>,
        what: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        FormatError::Corrupt {
            path: path.into(),
            what,
            detail: detail.into(),
        }
    }
}

/// `Result` with [`FormatError`].
pub type Result<T, E = FormatError> = std::result::Result<T, E>;
