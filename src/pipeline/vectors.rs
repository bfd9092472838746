//! Importing vectors made elsewhere (numpy, another engine) into an index.

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
    /// Of those, how many replaced a live row with the same key (only when appending).
    pub replaced: usize,
    /// Their dimension.
    pub dim: usize,
    /// The index version committed.
    pub generation: u64,
}

impl std::fmt::Display for ImportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "imported {} vectors of dimension {} ({} replacing rows with the same key; version {})",
            self.rows, self.dim, self.replaced, self.generation
        )
    }
}

/// Reads the 2-D float `.npy` at `vectors` and one key per line from `keys` (row i gets line i) and adds
/// them to the index at `out` in one commit: an interrupted import leaves the index as it was (a crash
/// at any moment leaves the previous version or the new one). A key already in the index is replaced
/// (its old row deleted in the same commit). Vectors are L2-normalized by the writer, which refuses NaN
/// and zero vectors by row; the keys file is refused whole when a line is empty, not UTF-8, or repeated.
pub fn import_vectors(
    vectors: &Path,
    keys: &Path,
    out: &Path,
    options: &ImportOptions,
) -> crate::Result<ImportReport> {
    let matrix = crate::npy::read_matrix(vectors)?;
    let key_list = crate::keys::read_keys(keys)?;
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
    let mut replaced = 0;
    for (i, key) in key_list.iter().enumerate() {
        let (_, old) = writer.upsert(key, matrix.row(i), &meta).map_err(|source| {
            PipelineError::ImportRow {
                file: vectors.to_owned(),
                row: i,
                source: Box::new(source),
            }
        })?;
        replaced += usize::from(old.is_some());
        if i % 4096 == 0 {
            bar.set_position(i as u64);
        }
    }
    bar.finish_and_clear();
    let generation = writer.commit()?;
    Ok(ImportReport {
        rows: matrix.rows,
        replaced,
        dim: matrix.dim,
        generation,
    })
}
