//! Key files: one key per line, as `import`, `add` and `remove` read them. Every problem names the file
//! and the line, so that a bad keys file is fixed in one look.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What is wrong with a keys file.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// The file cannot be read.
    #[error("cannot read keys file {path}: {source}")]
    Io {
        /// The keys file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A line is not UTF-8 text.
    #[error("{path}: line {line} is not UTF-8 text; keys must be UTF-8")]
    NotUtf8 {
        /// The keys file.
        path: PathBuf,
        /// The line (1-based).
        line: usize,
    },
    /// A line is empty.
    #[error("{path}: line {line} is empty; every row needs a key")]
    Empty {
        /// The keys file.
        path: PathBuf,
        /// The line (1-based).
        line: usize,
    },
    /// A key appears twice.
    #[error(
        "{path}: key {key:?} is on line {first} and again on line {line}; keys must be unique"
    )]
    Duplicate {
        /// The keys file.
        path: PathBuf,
        /// The repeated key.
        key: String,
        /// The line it first appears on (1-based).
        first: usize,
        /// The line it appears on again.
        line: usize,
    },
}

/// Reads one key per line (a trailing `\r` is dropped); refuses non-UTF-8 lines, empty lines and
/// duplicates. A final newline is optional.
pub fn read_keys(path: &Path) -> Result<Vec<String>, KeysError> {
    let bytes = std::fs::read(path).map_err(|source| KeysError::Io {
        path: path.to_owned(),
        source,
    })?;
    let body = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    if body.is_empty() {
        return Ok(Vec::new());
    }
    let mut keys = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (n, line) in body.split(|&b| b == b'\n').enumerate() {
        let line_no = n + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let key = std::str::from_utf8(line).map_err(|_| KeysError::NotUtf8 {
            path: path.to_owned(),
            line: line_no,
        })?;
        if key.is_empty() {
            return Err(KeysError::Empty {
                path: path.to_owned(),
                line: line_no,
            });
        }
        if let Some(&first) = seen.get(key) {
            return Err(KeysError::Duplicate {
                path: path.to_owned(),
                key: key.to_owned(),
                first,
                line: line_no,
            });
        }
        seen.insert(key.to_owned(), line_no);
        keys.push(key.to_owned());
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Result<Vec<String>, KeysError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.txt");
        std::fs::write(&path, bytes).unwrap();
        read_keys(&path)
    }

    #[test]
    fn lines_become_keys() {
        assert_eq!(read(b"a\r\nb\nc").unwrap(), ["a", "b", "c"]);
        assert_eq!(read(b"").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn bad_lines_are_named() {
        assert!(matches!(
            read(b"a\n\xff\xfe\n"),
            Err(KeysError::NotUtf8 { line: 2, .. })
        ));
        assert!(matches!(
            read(b"a\n\nb\n"),
            Err(KeysError::Empty { line: 2, .. })
        ));
        let err = read(b"a\nb\na\n").unwrap_err();
        assert!(
            matches!(
                err,
                KeysError::Duplicate {
                    first: 1,
                    line: 3,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("\"a\""), "{err}");
    }
}
