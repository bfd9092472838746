//! Appending to and deleting from an index, one atomic commit at a time.

use std::path::Path;
use std::sync::Arc;

use fiq_index_format::{Directory, ItemMeta, MmapDirectory, ModelInfo, SnapshotWriter, VectorType};

/// Writes new versions of an index. Vectors are L2-normalized on the way in, so every stored vector is
/// unit-length and inner product is cosine similarity. Nothing is visible to readers until
/// [`IndexWriter::commit`], and a crash before it leaves the previous version whole.
#[derive(Debug)]
pub struct IndexWriter {
    inner: SnapshotWriter,
    scratch: Vec<f32>,
}

impl IndexWriter {
    /// Creates a new f32 index at `path` (the directory is created if needed; it must not hold an index).
    pub fn create(
        path: impl AsRef<Path>,
        dim: usize,
        model: ModelInfo,
    ) -> crate::Result<IndexWriter> {
        IndexWriter::create_with(
            Arc::new(MmapDirectory::create(path.as_ref())?),
            dim,
            VectorType::F32,
            model,
        )
    }

    /// Creates a new index in any directory, with a choice of vector storage.
    pub fn create_with(
        dir: Arc<dyn Directory>,
        dim: usize,
        vector_type: VectorType,
        model: ModelInfo,
    ) -> crate::Result<IndexWriter> {
        let dim = u32::try_from(dim).map_err(|_| fiq_index_format::FormatError::InvalidInput {
            key: String::new(),
            detail: format!("dimension {dim} is too large"),
        })?;
        Ok(IndexWriter {
            inner: SnapshotWriter::create(dir, dim, vector_type, model)?,
            scratch: Vec::new(),
        })
    }

    /// Opens the index at `path` to append or delete.
    pub fn open(path: impl AsRef<Path>) -> crate::Result<IndexWriter> {
        IndexWriter::open_in(Arc::new(MmapDirectory::open(path.as_ref())?))
    }

    /// Opens the index in `dir` to append or delete.
    pub fn open_in(dir: Arc<dyn Directory>) -> crate::Result<IndexWriter> {
        Ok(IndexWriter {
            inner: SnapshotWriter::open(dir)?,
            scratch: Vec::new(),
        })
    }

    /// Components per vector.
    pub fn dim(&self) -> usize {
        self.inner.manifest().dim as usize
    }

    /// Rows committed plus rows pending; the next id.
    pub fn total_rows(&self) -> u64 {
        self.inner.total_rows()
    }

    /// The model recorded in the index.
    pub fn model(&self) -> &ModelInfo {
        &self.inner.manifest().model
    }

    /// Whether `key` is live in the index or pending in this writer (a resumed build skips those).
    pub fn contains(&self, key: &str) -> crate::Result<bool> {
        Ok(self.inner.contains(key)?)
    }

    /// Adds one item; returns its id. The vector is normalized; a wrong dimension, a non-finite value,
    /// a zero vector or a duplicate key is refused.
    pub fn add(&mut self, key: &str, vector: &[f32], meta: &ItemMeta) -> crate::Result<u64> {
        self.scratch.clear();
        self.scratch.extend_from_slice(vector);
        if vector.len() == self.dim() {
            crate::vector::normalize_in_place(&mut self.scratch).map_err(|detail| {
                fiq_index_format::FormatError::InvalidInput {
                    key: key.to_owned(),
                    detail,
                }
            })?;
        }
        Ok(self.inner.add(key, &self.scratch, meta)?)
    }

    /// Deletes the committed item with `key`; returns its id.
    pub fn delete(&mut self, key: &str) -> crate::Result<u64> {
        Ok(self.inner.delete(key)?)
    }

    /// Stores a named setting at the next commit.
    pub fn set_setting(&mut self, name: &str, value: &str) {
        self.inner.set_setting(name, value);
    }

    /// Replaces the ANN files at the next commit.
    pub fn set_ann(&mut self, files: Vec<(String, Vec<u8>)>, params: String) {
        self.inner.set_ann(files, params);
    }

    /// Makes all changes durable and visible as one new version; returns its generation.
    pub fn commit(&mut self) -> crate::Result<u64> {
        Ok(self.inner.commit()?.generation)
    }
}
