//! Searching an [`Index`]: exact, or through its IVF index.
//!
//! The IVF index covers the rows that existed when it was built (ids `0..covered`). Rows appended since
//! are searched exactly and merged in, so an append never has to wait for a rebuild; deleted rows and
//! rows outside a filter are dropped from the IVF's candidates, which are fetched with head room for
//! that, and a query left with fewer than `k` is answered exactly.

use std::path::Path;

use fiq_index_format::Snapshot;

use super::{Index, IndexError, SearchOptions};
use crate::ann::{AnnIndex, AnnRecord, SearchMode, VectorSource};
use crate::search::{exact_search, Neighbor, VectorBlock};

/// The name the manifest gives the FAISS file among the index's ANN files.
pub(crate) const IVF_FILE: &str = "ivf";

/// Candidates fetched per wanted result when a filter or deletions will drop some.
const FILTERED_FETCH_FACTOR: usize = 4;

/// Opens the IVF index the manifest of `snapshot` records, if any.
pub(super) fn open_ann(snapshot: &Snapshot, index: &Path) -> crate::Result<Option<AnnIndex>> {
    let manifest = snapshot.manifest();
    let file = match manifest.ann_files.as_slice() {
        [] => return Ok(None),
        [one] if one.name == IVF_FILE => one,
        other => {
            let names: Vec<&str> = other.iter().map(|f| f.name.as_str()).collect();
            return Err(IndexError::AnnUnsupported {
                index: index.to_owned(),
                reason: format!(
                    "the manifest names ANN files {names:?}; this fiq reads one \"{IVF_FILE}\""
                ),
            }
            .into());
        }
    };
    let record = AnnRecord::from_json(&manifest.ann_params)?;
    let path = snapshot
        .directory()
        .local_path(&file.entry.file)
        .ok_or_else(|| IndexError::AnnUnsupported {
            index: index.to_owned(),
            reason: "FAISS maps its file from disk; this index directory is not on disk".into(),
        })?;
    Ok(Some(AnnIndex::open(&path, record, file.entry.len)?))
}

/// The first `len` rows of an index as a [`VectorSource`]: what an IVF index is built from and
/// re-ranks with (see [`Index::ann_source`]). f32 stores only (FAISS and re-ranking read rows in place).
pub struct StoreRows<'a> {
    index: &'a Index,
    blocks: Vec<VectorBlock<'a>>,
    len: usize,
}

impl<'a> StoreRows<'a> {
    pub(crate) fn new(index: &'a Index, len: usize) -> Result<StoreRows<'a>, IndexError> {
        let blocks = blocks_in(index.blocks(), index.dim(), 0, len as u64);
        if blocks.iter().any(|b| matches!(b, VectorBlock::F16 { .. })) {
            return Err(IndexError::AnnUnsupported {
                index: index.path.clone(),
                reason: "its vectors are stored as f16; IVF indexes serve f32 stores".into(),
            });
        }
        let found: usize = blocks.iter().map(|b| b.len(index.dim())).sum();
        if found != len {
            return Err(IndexError::AnnUnsupported {
                index: index.path.clone(),
                reason: format!("it covers {len} rows, the store holds {found}"),
            });
        }
        Ok(StoreRows { index, blocks, len })
    }
}

impl VectorSource for StoreRows<'_> {
    fn dim(&self) -> usize {
        self.index.dim()
    }
    fn len(&self) -> usize {
        self.len
    }
    fn row(&self, id: usize) -> &[f32] {
        let dim = self.index.dim();
        // Blocks are few (one per committed batch); the last one starting at or before `id` holds it.
        let at = self
            .blocks
            .partition_point(|b| b.base_id() <= id as u64)
            .saturating_sub(1);
        match self.blocks[at] {
            VectorBlock::F32 { base_id, rows } => {
                let row = id - base_id as usize;
                &rows[row * dim..(row + 1) * dim]
            }
            VectorBlock::F16 { .. } => unreachable!("StoreRows::new refuses f16 blocks"),
        }
    }
    fn blocks(&self) -> Vec<VectorBlock<'_>> {
        self.blocks.clone()
    }
}

/// The parts of `blocks` holding ids in `start..end`.
fn blocks_in(
    blocks: Vec<VectorBlock<'_>>,
    dim: usize,
    start: u64,
    end: u64,
) -> Vec<VectorBlock<'_>> {
    blocks
        .into_iter()
        .filter_map(|block| {
            let (base, n) = (block.base_id(), block.len(dim) as u64);
            let (from, to) = (start.max(base), end.min(base + n));
            if from >= to {
                return None;
            }
            let rows = (from - base) as usize * dim..(to - base) as usize * dim;
            Some(match block {
                VectorBlock::F32 { rows: r, .. } => VectorBlock::F32 {
                    base_id: from,
                    rows: &r[rows],
                },
                VectorBlock::F16 { rows: r, .. } => VectorBlock::F16 {
                    base_id: from,
                    rows: &r[rows],
                },
            })
        })
        .collect()
}

impl Index {
    /// The rows the IVF index covers, as the [`VectorSource`] that [`AnnIndex::search_batch`],
    /// `fiq::ann::tune_nprobe` and `fiq::ann::held_out_queries` take.
    pub fn ann_source(&self) -> Result<StoreRows<'_>, IndexError> {
        let ann = self.ann().ok_or_else(|| IndexError::NoAnn {
            index: self.path.clone(),
        })?;
        StoreRows::new(self, ann.len())
    }

    /// Whether `id` may be returned: live, and inside the caller's filter.
    fn keeps<'a>(&'a self, options: &'a SearchOptions<'_>) -> impl Fn(u64) -> bool + Sync + 'a {
        let has_deleted = !self.snapshot.deleted_ids().is_empty();
        move |id| {
            (!has_deleted || !self.snapshot.is_deleted(id)) && options.filter.is_none_or(|f| f(id))
        }
    }

    pub(super) fn exact(
        &self,
        normalized: &[f32],
        k: usize,
        options: &SearchOptions<'_>,
    ) -> Vec<Vec<Neighbor>> {
        exact_search(
            normalized,
            self.dim(),
            &self.blocks(),
            k,
            &self.keeps(options),
        )
    }

    pub(super) fn ivf(
        &self,
        normalized: &[f32],
        k: usize,
        nprobe: Option<usize>,
        options: &SearchOptions<'_>,
    ) -> crate::Result<Vec<Vec<Neighbor>>> {
        let ann = self.ann().ok_or_else(|| IndexError::NoAnn {
            index: self.path.clone(),
        })?;
        if k == 0 {
            return Ok(vec![Vec::new(); normalized.len() / self.dim()]);
        }
        let covered = ann.len();
        let source = StoreRows::new(self, covered)?;
        let keep = self.keeps(options);
        let dropping = options.filter.is_some() || !self.snapshot.deleted_ids().is_empty();
        let fetch = if dropping {
            k * FILTERED_FETCH_FACTOR
        } else {
            k
        };
        let mut results =
            ann.search_batch(&source, normalized, fetch, SearchMode::Ivf { nprobe })?;
        for list in &mut results {
            list.retain(|n| keep(n.id));
            list.truncate(k);
        }

        let appended = blocks_in(self.blocks(), self.dim(), covered as u64, self.total_rows());
        if !appended.is_empty() {
            let tail = exact_search(normalized, self.dim(), &appended, k, &keep);
            for (list, more) in results.iter_mut().zip(tail) {
                list.extend(more);
                list.sort_by(Neighbor::rank_cmp);
                list.truncate(k);
            }
        }

        // Too few survivors: the probed lists held fewer than k wanted items. Exact search answers
        // those queries (and returns fewer than k only when fewer exist).
        let dim = self.dim();
        for (q, list) in results.iter_mut().enumerate() {
            if list.len() < k && (self.len() as usize) > list.len() {
                let query = &normalized[q * dim..(q + 1) * dim];
                *list = exact_search(query, dim, &self.blocks(), k, &keep)
                    .pop()
                    .unwrap_or_default();
            }
        }
        Ok(results)
    }
}
