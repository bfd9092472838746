//! Appending to and deleting from an index, one atomic commit at a time.

use std::path::Path;
use std::sync::Arc;

use fiq_index_format::{Directory, ItemMeta, MmapDirectory, ModelInfo, SnapshotWriter, VectorType};

use super::ivf_files;
use super::search::StoreRows;
use super::Index;
use crate::ann::{AnnIndex, AnnParams, AnnRecord, Progress};

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
        self.normalize(key, vector)?;
        Ok(self.inner.add(key, &self.scratch, meta)?)
    }

    /// Adds one item, replacing the live item with the same key if there is one (both happen at the
    /// next commit, together); returns the new id and the replaced one. Refused like [`IndexWriter::add`],
    /// except that a committed key is replaced; a key given twice before one commit is a duplicate.
    pub fn upsert(
        &mut self,
        key: &str,
        vector: &[f32],
        meta: &ItemMeta,
    ) -> crate::Result<(u64, Option<u64>)> {
        self.normalize(key, vector)?;
        Ok(self.inner.upsert(key, &self.scratch, meta)?)
    }

    /// Copies `vector` into the scratch row, unit-length (a wrong length is left for the format to name).
    fn normalize(&mut self, key: &str, vector: &[f32]) -> crate::Result<()> {
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
        Ok(())
    }

    /// Deletes the committed item with `key`; returns its id.
    pub fn delete(&mut self, key: &str) -> crate::Result<u64> {
        Ok(self.inner.delete(key)?)
    }

    /// Deletes every committed item among `keys` at the next commit; keys not in the index are counted
    /// and named in the report, not an error (removing twice, or after a crash, is harmless).
    pub fn remove_keys(&mut self, keys: &[String]) -> crate::Result<RemoveReport> {
        let mut report = RemoveReport::default();
        for key in keys {
            match self.inner.delete(key) {
                Ok(_) => report.removed += 1,
                Err(fiq_index_format::FormatError::UnknownKey { .. }) => {
                    report.missing.push(key.clone())
                }
                Err(other) => return Err(other.into()),
            }
        }
        Ok(report)
    }

    /// Stores a named setting at the next commit.
    pub fn set_setting(&mut self, name: &str, value: &str) {
        self.inner.set_setting(name, value);
    }

    /// Builds an IVF index (FAISS) over every committed row and makes it part of the next commit,
    /// replacing any earlier one; returns what was built. Rows added after this call (or pending in this
    /// writer) are not in the IVF index: searches score them exactly until the next build.
    ///
    /// ```
    /// use fiq::ann::AnnParams;
    /// use fiq::index::{Index, IndexWriter, ItemMeta, ModelInfo};
    /// let dir = tempfile::tempdir().unwrap();
    /// let mut writer = IndexWriter::create(dir.path(), 2, ModelInfo::default())?;
    /// for i in 0..64 {
    ///     let angle = i as f32 / 10.0;
    ///     writer.add(&format!("item-{i}"), &[angle.cos(), angle.sin()], &ItemMeta::default())?;
    /// }
    /// writer.commit()?;
    /// writer.build_ann(&AnnParams::ivf_flat(4), &())?;
    /// writer.commit()?;
    ///
    /// let index = Index::open(dir.path())?;
    /// assert_eq!(index.ann_record().unwrap().nlist, 4);
    /// let hits = index.search(&[1.0, 0.0], 1)?; // through the IVF index
    /// assert_eq!(hits[0].key, "item-0");
    /// # Ok::<(), fiq::Error>(())
    /// ```
    pub fn build_ann(
        &mut self,
        params: &AnnParams,
        progress: &dyn Progress,
    ) -> crate::Result<AnnRecord> {
        let committed = Index::open_in(self.inner.directory().clone())?;
        let source = StoreRows::new(&committed, committed.total_rows() as usize)?;
        let ann = AnnIndex::build(&source, params, progress)?;
        drop(source);
        drop(committed);
        ivf_files::stage_built(&mut self.inner, ann)
    }

    /// Records new IVF parameters (a tuned default `nprobe`) at the next commit, without touching the
    /// FAISS file. Fails when the index has no IVF index.
    pub fn set_ann_record(&mut self, record: &AnnRecord) -> crate::Result<()> {
        Ok(self.inner.set_ann_params(record.to_json())?)
    }

    /// Removes the IVF index at the next commit (searches become exact).
    pub fn remove_ann(&mut self) {
        self.inner.set_ann(Vec::new(), String::new());
    }

    /// Makes all changes durable and visible as one new version; returns its generation.
    ///
    /// When the index has an IVF index and the commit added rows, a second commit follows that files
    /// those rows in the IVF lists of their nearest trained centroids (no k-means; see `ivf_files.rs`),
    /// so searches stay IVF. A crash between the two leaves the first version, whole, whose added rows
    /// are searched exactly; the next commit files them. An error from the filing (a damaged IVF file,
    /// named) comes after the first commit: the rows are then committed and searched exactly.
    pub fn commit(&mut self) -> crate::Result<u64> {
        let generation = self.inner.commit()?.generation;
        match ivf_files::stage_appended(&mut self.inner, &())? {
            0 => Ok(generation),
            _ => Ok(self.inner.commit()?.generation),
        }
    }

    /// The format-level writer, for the compaction (`compact.rs`).
    pub(super) fn inner_mut(&mut self) -> &mut SnapshotWriter {
        &mut self.inner
    }
}

/// What [`IndexWriter::remove_keys`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoveReport {
    /// Items deleted at the next commit.
    pub removed: usize,
    /// Keys that name no live item.
    pub missing: Vec<String>,
}
