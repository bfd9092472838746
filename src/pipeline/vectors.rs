//! Importing vectors made elsewhere (numpy, another engine) into an index.

use std::io::BufRead;
use std::path::Path;

use super::PipelineError;
use crate::index::{IndexWriter, ItemMeta, ModelInfo};

/// How to import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Add to the index at the destination instead of creating one.
    pub append: bool,
    /// Category stored with every imported item.
    pub category: String,
    /// Name of the model that made the vectors, recorded in a new index (its fingerprint stays empty:
    /// fiq cannot check vectors it did not make, so such an index accepts queries from any model).
    pub model_name: String,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportReport {
    /// Vectors added.
    pub rows: usize,
    /// Their dimension.
    pub dim: usize,
    /// The index version committed.
    pub generation: u64,
}

impl std::fmt::Display for ImportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "imported {} vectors of dimension {} (version {})",
            self.rows, self.dim, self.generation
        )
    }
}

/// Reads the 2-D float `.npy` at `vectors` and one key per line from `keys` (row i gets line i) and adds
/// them to the index at `out` in one commit: an interrupted import leaves the index as it was. Vectors
/// are L2-normalized by the writer, which refuses NaN, zero vectors and duplicate keys by row.
pub fn import_vectors(
    vectors: &Path,
    keys: &Path,
    out: &Path,
    options: &ImportOptions,
) -> crate::Result<ImportReport> {
    let matrix = crate::npy::read_matrix(vectors)?;
    let key_list = read_keys(keys)?;
    if key_list.len() != matrix.rows {
        return Err(PipelineError::KeyCount {
            vectors: vectors.to_owned(),
            rows: matrix.rows,
            keys: keys.to_owned(),
            count: key_list.len(),
        }
        .into());
    }
    let mut writer = if options.append {
        IndexWriter::open(out)?
    } else {
        let model = ModelInfo {
            name: options.model_name.clone(),
            fingerprint: String::new(),
            preprocessing: String::new(),
        };
        IndexWriter::create(out, matrix.dim, model)?
    };
    if writer.dim() != matrix.dim {
        return Err(PipelineError::Dimension {
            file: vectors.to_owned(),
            found: matrix.dim,
            index: out.to_owned(),
            expected: writer.dim(),
        }
        .into());
    }
    let bar = crate::progress::bar_if(options.progress, matrix.rows as u64, "importing");
    let meta = ItemMeta {
        category: options.category.clone(),
        source: String::new(),
    };
    for (i, key) in key_list.iter().enumerate() {
        writer
            .add(key, matrix.row(i), &meta)
            .map_err(|source| PipelineError::ImportRow {
                file: vectors.to_owned(),
                row: i,
                source: Box::new(source),
            })?;
        if i % 4096 == 0 {
            bar.set_position(i as u64);
        }
    }
    bar.finish_and_clear();
    let generation = writer.commit()?;
    Ok(ImportReport {
        rows: matrix.rows,
        dim: matrix.dim,
        generation,
    })
}

/// One key per line; an empty line is an error naming it (every row needs a key).
pub fn read_keys(path: &Path) -> Result<Vec<String>, PipelineError> {
    let io = |line: usize| {
        move |source| PipelineError::KeysFile {
            path: path.to_owned(),
            line,
            source,
        }
    };
    let file = std::fs::File::open(path).map_err(io(0))?;
    let mut keys = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io(n + 1))?;
        let key = line.trim_end_matches('\r');
        if key.is_empty() {
            return Err(PipelineError::EmptyKey {
                path: path.to_owned(),
                line: n + 1,
            });
        }
        keys.push(key.to_owned());
    }
    Ok(keys)
}
