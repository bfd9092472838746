//! The index as a library user sees it: open a directory, look items up, search it.
//!
//! [`Index`] is a read-only view of one committed version (cheap to clone, safe to share between
//! threads); [`IndexWriter`] appends, deletes, builds the IVF index and commits new versions. The bytes
//! are `fiq-index-format`'s business; this module adds normalization, the model check and search
//! (`search.rs`: exact, or IVF through [`crate::ann`]: the built lists and those of rows added since,
//! `ivf_files.rs`).

mod compact;
mod ivf_files;
mod search;
mod writer;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

pub use compact::{CompactReport, IvfOutcome, Retrain};
use fiq_index_format::{Directory, MmapDirectory, Segment, Snapshot};
pub use fiq_index_format::{ItemMeta, ModelInfo, VectorType, VerifyReport};
pub use search::{SearchMode, SearchOptions, SearchStats, StoreRows};
pub use writer::{IndexWriter, RemoveReport};

use crate::ann::{AnnIndex, AnnRecord};
pub use crate::search::IdSet;
use crate::search::{Neighbor, VectorBlock};

/// Errors of the index API (bytes problems come as [`fiq_index_format::FormatError`]).
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// A query of the wrong length.
    #[error(
        "query has {actual} components, the index at {index} holds {expected}-dimensional vectors"
    )]
    QueryDimension {
        /// The position of the input.
        index: PathBuf,
        /// What was expected.
        expected: usize,
        /// What was given.
        actual: usize,
    },
    /// A query that is not a usable direction.
    #[error("query {query} is unusable: {reason}")]
    BadQuery {
        /// The query in its batch.
        query: usize,
        /// Why.
        reason: String,
    },
    /// A query made by another model than the index's vectors.
    #[error("the query was encoded by model {query_model:?} (fingerprint {query_fingerprint}), but the index at {index} holds vectors of {index_model:?} (fingerprint {index_fingerprint}); encode the query with the index's model or rebuild the index")]
    ModelMismatch {
        /// The position of the input.
        index: PathBuf,
        /// The index's model name.
        index_model: String,
        /// The index's model fingerprint.
        index_fingerprint: String,
        /// The query's model name.
        query_model: String,
        /// The query's model fingerprint.
        query_fingerprint: String,
    },
    /// IVF search asked of an index without an IVF index.
    #[error("the index at {index} has no IVF index; build one with `fiq-index build --index {index} --ivf NLIST` (or search exactly)")]
    NoAnn {
        /// The index.
        index: PathBuf,
    },
    /// An IVF index over something it cannot serve.
    #[error("the IVF index of {index} cannot be used: {reason}")]
    AnnUnsupported {
        /// The position of the input.
        index: PathBuf,
        /// Why.
        reason: String,
    },
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Internal id (dense, stable for the life of the index).
    pub id: u64,
    /// The item's external key (for FashionIQ, the ASIN).
    pub key: String,
    /// Inner product with the query: cosine similarity, since stored vectors are unit-length.
    pub score: f32,
}

/// An opened, committed version of an index.
///
/// ```
/// use fiq::index::{Index, IndexWriter, ItemMeta, ModelInfo};
/// let dir = tempfile::tempdir().unwrap();
/// let mut writer = IndexWriter::create(dir.path(), 2, ModelInfo::default())?;
/// writer.add("red-dress", &[1.0, 0.0], &ItemMeta::default())?;
/// writer.add("blue-dress", &[0.0, 1.0], &ItemMeta::default())?;
/// writer.commit()?;
///
/// let index = Index::open(dir.path())?;
/// let hits = index.search(&[0.9, 0.1], 1)?;
/// assert_eq!(hits[0].key, "red-dress");
/// # Ok::<(), fiq::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Index {
    snapshot: Arc<Snapshot>,
    /// The file involved.
    path: PathBuf,
    ann: Option<Arc<AnnIndex>>,
    /// The lists of rows added since the IVF index was built (`ivf_files.rs`).
    appended: Option<Arc<AnnIndex>>,
    /// The live ids, made on first need when some rows are deleted (`None` inside: nothing deleted).
    live: Arc<OnceLock<Option<IdSet>>>,
}

impl Index {
    /// Opens the index at `path`: reads the manifest and maps the segments; no vector is read. An IVF
    /// index, if there is one, is opened too: its coarse centroids are read, its lists only mapped.
    pub fn open(path: impl AsRef<Path>) -> crate::Result<Index> {
        let dir = MmapDirectory::open(path.as_ref()).map_err(|e| match e {
            fiq_index_format::FormatError::Io { source, .. }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                fiq_index_format::FormatError::NotAnIndex {
                    path: path.as_ref().to_owned(),
                }
            }
            other => other,
        })?;
        Index::open_in(Arc::new(dir))
    }

    /// Opens the index kept in `dir` (for example a [`fiq_index_format::RamDirectory`]).
    pub fn open_in(dir: Arc<dyn Directory>) -> crate::Result<Index> {
        Index::open_after(dir, None)
    }

    /// Opens the current version; what it shares with `earlier` (files are immutable, so the same
    /// name means the same bytes) is not opened or checked again: segments keep their checksum
    /// verdicts and an unchanged IVF index is shared as it is.
    fn open_after(dir: Arc<dyn Directory>, earlier: Option<&Index>) -> crate::Result<Index> {
        let path = dir.path_of("");
        let mut snapshot = Snapshot::open(dir)?;
        let same_ann = earlier.filter(|e| {
            let (old, new) = (e.snapshot.manifest(), snapshot.manifest());
            old.ann_files == new.ann_files && old.ann_params == new.ann_params
        });
        if let Some(earlier) = earlier {
            snapshot.inherit_checks(&earlier.snapshot);
        }
        let (ann, appended) = match same_ann {
            Some(earlier) => (earlier.ann.clone(), earlier.appended.clone()),
            None => match ivf_files::open(&snapshot, &path)? {
                Some(files) => (Some(Arc::new(files.built)), files.appended.map(Arc::new)),
                None => (None, None),
            },
        };
        if ann.as_ref().is_some_and(|ann| !ann.record().exact_codes) {
            // Compressed codes are re-ranked with rows fetched by id: without this, every fetched
            // 2 KiB row drags its neighbours into memory by read-ahead.
            snapshot
                .segments()
                .iter()
                .for_each(|s| s.expect_random_reads());
        }
        Ok(Index {
            snapshot: Arc::new(snapshot),
            path,
            ann,
            appended,
            live: Arc::default(),
        })
    }

    /// Moves this reader to the index's newest committed version, if there is one; returns whether it
    /// moved. Cheap when nothing changed: it reads the generation from the first bytes of `MANIFEST` and
    /// compares. Never waits for a writer. Clones of this `Index` made before keep their version (and
    /// its files, through their lease) until they are refreshed or dropped.
    pub fn refresh(&mut self) -> crate::Result<bool> {
        let dir = self.snapshot.directory().clone();
        if Snapshot::current_generation(dir.as_ref())? == self.snapshot.generation() {
            return Ok(false);
        }
        *self = Index::open_after(dir, Some(self))?;
        Ok(true)
    }

    /// The committed version this reader sees (its manifest's generation).
    pub fn generation(&self) -> u64 {
        self.snapshot.generation()
    }

    /// The IVF index, if one was built.
    pub fn ann(&self) -> Option<&AnnIndex> {
        self.ann.as_deref()
    }

    /// The IVF lists of rows added since the IVF index was built, if any (they share its centroids).
    pub(crate) fn appended(&self) -> Option<&AnnIndex> {
        self.appended.as_deref()
    }

    /// What the IVF index is (factory, nlist, default nprobe, ...), if there is one.
    pub fn ann_record(&self) -> Option<&AnnRecord> {
        self.ann().map(AnnIndex::record)
    }

    /// Where the index lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The committed version underneath (manifest, segments), for tools that need the details.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Live (not deleted) items.
    pub fn len(&self) -> u64 {
        self.snapshot.live_rows()
    }

    /// Whether the index holds no live item.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ids run over `0..total_rows()`; deleted ids included.
    pub fn total_rows(&self) -> u64 {
        self.snapshot.total_rows()
    }

    /// Whether `id` was deleted.
    pub fn is_deleted(&self, id: u64) -> bool {
        self.snapshot.is_deleted(id)
    }

    /// Components per vector.
    pub fn dim(&self) -> usize {
        self.snapshot.manifest().dim as usize
    }

    /// The model that produced the vectors.
    pub fn model(&self) -> &ModelInfo {
        &self.snapshot.manifest().model
    }

    /// The vector of `id` (unit length), in place for f32 indexes.
    pub fn vector(&self, id: u64) -> Option<Cow<'_, [f32]>> {
        let (segment, row) = self.snapshot.locate(id)?;
        Some(segment.vector(row))
    }

    /// The key of `id`.
    pub fn key(&self, id: u64) -> crate::Result<&str> {
        Ok(self.snapshot.key(id)?)
    }

    /// The live id of `key`.
    pub fn id_of(&self, key: &str) -> crate::Result<Option<u64>> {
        Ok(self.snapshot.find(key)?)
    }

    /// The metadata of `id`.
    pub fn meta(&self, id: u64) -> crate::Result<ItemMeta> {
        Ok(self.snapshot.meta(id)?)
    }

    /// A named setting stored with the index (for example `nprobe`).
    pub fn setting(&self, name: &str) -> Option<&str> {
        self.snapshot
            .manifest()
            .settings
            .get(name)
            .map(String::as_str)
    }

    /// Refuses queries made by a model other than the index's (the one rule:
    /// [`ModelInfo::accepts`]). An index of imported vectors (empty fingerprint) accepts any.
    pub fn check_model(&self, query_model: &ModelInfo) -> Result<(), IndexError> {
        check_model(&self.path, self.model(), query_model)
    }

    /// The `k` nearest live items to `query` (normalized first), best first: through the IVF index with
    /// its recorded `nprobe` when the index has one, by exact inner product otherwise. See
    /// [`Index::search_batch`] to choose.
    pub fn search(&self, query: &[f32], k: usize) -> crate::Result<Vec<Hit>> {
        Ok(self
            .search_batch(query, k, &SearchOptions::default())?
            .pop()
            .unwrap_or_default())
    }

    /// Searches many queries at once (row-major `nq × dim`); much faster per query than one by one.
    /// `options` chooses exact or IVF search (and `nprobe`) and filters the results.
    ///
    /// ```
    /// # use fiq::index::{Index, IndexWriter, ItemMeta, ModelInfo, SearchMode, SearchOptions};
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let mut writer = IndexWriter::create(dir.path(), 2, ModelInfo::default())?;
    /// # writer.add("a", &[1.0, 0.0], &ItemMeta::default())?;
    /// # writer.commit()?;
    /// # let index = Index::open(dir.path())?;
    /// let exact = index.search_batch(&[1.0, 0.1], 1, &SearchOptions::mode(SearchMode::Exact))?;
    /// assert_eq!(exact[0][0].key, "a");
    /// # Ok::<(), fiq::Error>(())
    /// ```
    pub fn search_batch(
        &self,
        queries: &[f32],
        k: usize,
        options: &SearchOptions<'_>,
    ) -> crate::Result<Vec<Vec<Hit>>> {
        let neighbors = self.neighbors(queries, k, options)?;
        neighbors.into_iter().map(|list| self.hits(list)).collect()
    }

    /// [`Index::search_batch`] returning ids and scores only (no key look-up).
    pub fn neighbors(
        &self,
        queries: &[f32],
        k: usize,
        options: &SearchOptions<'_>,
    ) -> crate::Result<Vec<Vec<Neighbor>>> {
        Ok(self.search_with_stats(queries, k, options)?.0)
    }

    /// [`Index::neighbors`] with what the search did: the mode and `nprobe` it ran with, and which
    /// queries of an IVF search exact search had to answer (see [`SearchStats`]).
    pub fn search_with_stats(
        &self,
        queries: &[f32],
        k: usize,
        options: &SearchOptions<'_>,
    ) -> crate::Result<(Vec<Vec<Neighbor>>, SearchStats)> {
        let normalized = self.normalized_queries(queries)?;
        self.run_search(&normalized, k, options)
    }

    /// Checks, once per opened version, the checksums of the segment sections a search in `mode` reads:
    /// keys and metadata always; vectors unless the IVF lists hold them (IVF-Flat reads from the store
    /// only the rows added after the IVF index was built). The first search pays one pass over those
    /// bytes; later ones an atomic load per segment.
    fn check_sections_read_by(&self, mode: SearchMode) -> crate::Result<()> {
        let covered = match (mode, &self.ann) {
            (SearchMode::Ivf { .. }, Some(ann)) if ann.record().exact_codes => {
                ann.record().covered_rows() as u64
            }
            _ => 0,
        };
        for (segment, entry) in self
            .snapshot
            .segments()
            .iter()
            .zip(&self.snapshot.manifest().segments)
        {
            segment.check_on_first_use(entry.base_id + entry.count > covered)?;
        }
        Ok(())
    }

    /// Exact search, whatever the index holds: the ground truth.
    pub fn exact_neighbors(
        &self,
        queries: &[f32],
        k: usize,
        options: &SearchOptions<'_>,
    ) -> crate::Result<Vec<Vec<Neighbor>>> {
        let options = SearchOptions {
            mode: Some(SearchMode::Exact),
            ..*options
        };
        self.neighbors(queries, k, &options)
    }

    /// The ids of live items when some are deleted; `None` when every row is live.
    fn live_set(&self) -> Option<&IdSet> {
        self.live
            .get_or_init(|| {
                let deleted = self.snapshot.deleted_ids();
                if deleted.is_empty() {
                    return None;
                }
                let mut live = IdSet::full(self.total_rows());
                deleted.iter().for_each(|&id| live.remove(id));
                Some(live)
            })
            .as_ref()
    }

    /// Every category of the live items (from their metadata) with its ids; reads every item's
    /// metadata once.
    pub fn categories(&self) -> crate::Result<std::collections::HashMap<String, IdSet>> {
        let mut categories: std::collections::HashMap<String, IdSet> = Default::default();
        for id in 0..self.total_rows() {
            if self.is_deleted(id) {
                continue;
            }
            let category = self.meta(id)?.category;
            categories
                .entry(category)
                .or_insert_with(|| IdSet::empty(self.total_rows()))
                .insert(id);
        }
        Ok(categories)
    }

    /// The ids of the live items with these keys; keys not in the index are returned apart.
    pub fn key_ids<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k str>,
    ) -> crate::Result<(IdSet, Vec<&'k str>)> {
        let mut set = IdSet::empty(self.total_rows());
        let mut missing = Vec::new();
        for key in keys {
            match self.id_of(key)? {
                Some(id) if !self.is_deleted(id) => set.insert(id),
                _ => missing.push(key),
            }
        }
        Ok((set, missing))
    }

    /// The segments as contiguous blocks of rows.
    pub fn blocks(&self) -> Vec<VectorBlock<'_>> {
        self.snapshot
            .segments()
            .iter()
            .zip(&self.snapshot.manifest().segments)
            .map(|(segment, entry)| block_of(segment, entry.base_id))
            .collect()
    }

    /// Checks the query shape and values, and returns the queries L2-normalized.
    pub fn normalized_queries(&self, queries: &[f32]) -> Result<Vec<f32>, IndexError> {
        let dim = self.dim();
        if queries.len() % dim != 0 || queries.is_empty() {
            return Err(IndexError::QueryDimension {
                index: self.path.clone(),
                expected: dim,
                actual: queries.len(),
            });
        }
        let mut out = queries.to_vec();
        for (i, q) in out.chunks_mut(dim).enumerate() {
            crate::vector::normalize_in_place(q)
                .map_err(|reason| IndexError::BadQuery { query: i, reason })?;
        }
        Ok(out)
    }

    /// Turns neighbors into hits by looking up keys.
    pub fn hits(&self, neighbors: Vec<Neighbor>) -> crate::Result<Vec<Hit>> {
        neighbors
            .into_iter()
            .map(|n| {
                Ok(Hit {
                    id: n.id,
                    key: self.snapshot.key(n.id)?.to_owned(),
                    score: n.score,
                })
            })
            .collect()
    }

    /// Checks every checksum of every file; reads the whole index.
    pub fn verify(&self) -> crate::Result<VerifyReport> {
        Ok(self.snapshot.verify()?)
    }
}

/// The one model check: vectors of `query_model` may go into or be searched in the index at `index`,
/// built by `index_model`, or the one mismatch error says why not.
pub(crate) fn check_model(
    index: &Path,
    index_model: &ModelInfo,
    query_model: &ModelInfo,
) -> Result<(), IndexError> {
    if index_model.accepts(query_model) {
        return Ok(());
    }
    Err(IndexError::ModelMismatch {
        index: index.to_owned(),
        index_model: index_model.name.clone(),
        index_fingerprint: index_model.fingerprint.clone(),
        query_model: query_model.name.clone(),
        query_fingerprint: query_model.fingerprint.clone(),
    })
}

fn block_of(segment: &Segment, base_id: u64) -> VectorBlock<'_> {
    match (segment.vectors_f32(), segment.vectors_f16()) {
        (Some(rows), _) => VectorBlock::F32 { base_id, rows },
        (None, Some(rows)) => VectorBlock::F16 { base_id, rows },
        (None, None) => unreachable!("a segment stores f32 or f16"),
    }
}
