use std::path::PathBuf;

/// Errors from reading or writing index bytes.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io { path: PathBuf, #[source] source: std::io::Error },
}
