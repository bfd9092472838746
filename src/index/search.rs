//! How an [`Index`] is searched: the one place that decides between exact and IVF search.
//!
//! [`SearchMode`] says which; [`SearchOptions`] adds a filter ([`IdSet`]). An IVF search asks
//! [`crate::ann`] for candidates from the probed lists, with the filter (and the index's deletions)
//! handed to FAISS as an id selector, so FAISS skips excluded rows while it scans rather than fiq
//! dropping them afterwards. The IVF index covers the rows that existed when it was built (ids
//! `0..covered`); rows appended since are scored exactly and merged in, so an append never waits for a
//! rebuild. With a filter, the recorded `nprobe` (measured for unfiltered searches) is scaled by the
//! share of rows the filter keeps, so a category search keeps the recall the index was tuned for. A
//! query whose probed lists hold fewer than `k` allowed rows is answered by exact search instead, and
//! [`SearchStats`] counts it: nothing reports an exact answer as an IVF one.

use std::borrow::Cow;

use super::{Index, IndexError};
use crate::ann::VectorSource;
use crate::search::{exact_search, IdSet, Neighbor, VectorBlock};

/// How a search finds its neighbors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchMode {
    /// Score every row of the store: slow, always right. The reference for recall.
    Exact,
    /// Probe the `nprobe` inverted lists closest to the query; `None` uses the index's recorded one.
    Ivf {
        /// Lists to probe, `1..=nlist`.
        nprobe: Option<usize>,
    },
}

impl SearchMode {
    /// IVF search with the index's recorded `nprobe`.
    pub const IVF_DEFAULT: SearchMode = SearchMode::Ivf { nprobe: None };
}

/// How to search.
#[derive(Debug, Clone, Copy, Default)]
pub struct SearchOptions<'a> {
    /// Only ids in this set are returned (for example one category's gallery).
    pub filter: Option<&'a IdSet>,
    /// Exact or IVF (with a per-call `nprobe`). `None`: the IVF index with its recorded `nprobe` when
    /// the index has one, exact search otherwise.
    pub mode: Option<SearchMode>,
}

impl<'a> SearchOptions<'a> {
    /// Options that search in `mode`.
    pub fn mode(mode: SearchMode) -> SearchOptions<'a> {
        SearchOptions {
            filter: None,
            mode: Some(mode),
        }
    }

    /// These options restricted to `filter`.
    pub fn filtered(self, filter: &'a IdSet) -> SearchOptions<'a> {
        SearchOptions {
            filter: Some(filter),
            ..self
        }
    }
}

/// The recorded `nprobe` scaled for a filter: it was measured for searches of every row, and a filter
/// keeping a fraction `f` of them leaves about `f` of each probed list's rows, so the same recall needs
/// about `1/f` times the lists (a category of a third of the catalog: three times). Capped at `nlist`.
/// An `nprobe` the caller gives is used as it is.
fn filtered_nprobe(recorded: usize, nlist: usize, live: u64, allowed: Option<&IdSet>) -> usize {
    match allowed {
        Some(set) if !set.is_empty() && set.len() < live => {
            let scaled = (recorded as f64 * live as f64 / set.len() as f64).ceil() as usize;
            scaled.clamp(recorded, nlist.max(recorded))
        }
        _ => recorded,
    }
}

/// What a search did, beside its results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchStats {
    /// How the queries were searched: [`SearchMode::Exact`], or IVF with the `nprobe` used.
    pub mode: SearchMode,
    /// Queries asked.
    pub queries: usize,
    /// Queries of an IVF search that exact search answered because the probed lists held fewer than
    /// `k` allowed rows (by position in the batch).
    pub exact_fallbacks: Vec<usize>,
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
pub(super) fn blocks_in(
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
    /// The rows the IVF index covers, as the [`VectorSource`] that [`AnnIndex::search_batch`](crate::ann::AnnIndex::search_batch),
    /// `fiq::ann::tune_nprobe` and `fiq::ann::held_out_queries` take.
    pub fn ann_source(&self) -> Result<StoreRows<'_>, IndexError> {
        let ann = self.ann().ok_or_else(|| IndexError::NoAnn {
            index: self.path.clone(),
        })?;
        StoreRows::new(self, ann.len())
    }

    /// The ids a search may return: live and inside the caller's filter; `None` when that is every row.
    /// Borrowed unless both a filter and deletions apply: a search copies no bitmap it does not have to.
    fn allowed<'a>(&'a self, options: &SearchOptions<'a>) -> Option<Cow<'a, IdSet>> {
        match (options.filter, self.live_set()) {
            (None, None) => None,
            (Some(filter), None) => Some(Cow::Borrowed(filter)),
            (None, Some(live)) => Some(Cow::Borrowed(live)),
            (Some(filter), Some(live)) => Some(Cow::Owned(filter.intersection(live))),
        }
    }

    /// Searches normalized queries as `options` say. The one place that chooses exact or IVF search.
    pub(super) fn run_search(
        &self,
        normalized: &[f32],
        k: usize,
        options: &SearchOptions<'_>,
    ) -> crate::Result<(Vec<Vec<Neighbor>>, SearchStats)> {
        let nq = normalized.len() / self.dim();
        let mode = options.mode.unwrap_or(match self.ann {
            Some(_) => SearchMode::IVF_DEFAULT,
            None => SearchMode::Exact,
        });
        self.check_sections_read_by(mode)?;
        let allowed = self.allowed(options);
        match mode {
            SearchMode::Exact => Ok((
                self.exact(normalized, k, allowed.as_deref()),
                SearchStats {
                    mode,
                    queries: nq,
                    exact_fallbacks: Vec::new(),
                },
            )),
            SearchMode::Ivf { nprobe } => self.ivf(normalized, k, nprobe, allowed.as_deref()),
        }
    }

    fn exact(&self, normalized: &[f32], k: usize, allowed: Option<&IdSet>) -> Vec<Vec<Neighbor>> {
        let keep = |id: u64| allowed.is_none_or(|set| set.contains(id));
        exact_search(normalized, self.dim(), &self.blocks(), k, &keep)
    }

    fn ivf(
        &self,
        normalized: &[f32],
        k: usize,
        nprobe: Option<usize>,
        allowed: Option<&IdSet>,
    ) -> crate::Result<(Vec<Vec<Neighbor>>, SearchStats)> {
        let ann = self.ann().ok_or_else(|| IndexError::NoAnn {
            index: self.path.clone(),
        })?;
        let nprobe = match nprobe {
            Some(given) => given,
            None => filtered_nprobe(ann.record().nprobe, ann.nlist(), self.len(), allowed),
        };
        let mut stats = SearchStats {
            mode: SearchMode::Ivf {
                nprobe: Some(nprobe),
            },
            queries: normalized.len() / self.dim(),
            exact_fallbacks: Vec::new(),
        };
        if k == 0 {
            return Ok((vec![Vec::new(); stats.queries], stats));
        }
        let source = StoreRows::new(self, ann.len())?;
        let mut results = ann.search_batch(&source, normalized, k, Some(nprobe), allowed)?;
        let merge = |results: &mut Vec<Vec<Neighbor>>, more: Vec<Vec<Neighbor>>| {
            for (list, more) in results.iter_mut().zip(more) {
                list.extend(more);
                list.sort_by(Neighbor::rank_cmp);
                list.truncate(k);
            }
        };
        // Rows added since the build: through their own lists (same centroids, same nprobe) when the
        // writer has filed them, exactly otherwise (a version committed before its appended lists).
        let mut covered = ann.len();
        if let Some(appended) = self.appended() {
            covered += appended.len();
            let source = StoreRows::new(self, covered)?;
            let more = appended.search_batch(&source, normalized, k, Some(nprobe), allowed)?;
            merge(&mut results, more);
        }
        let tail = blocks_in(self.blocks(), self.dim(), covered as u64, self.total_rows());
        if !tail.is_empty() {
            let keep = |id: u64| allowed.is_none_or(|set| set.contains(id));
            merge(
                &mut results,
                exact_search(normalized, self.dim(), &tail, k, &keep),
            );
        }

        // The probed lists held fewer than k allowed rows: exact search answers those queries (and
        // returns fewer than k only when fewer exist), and the stats say so.
        let available = allowed.map_or(self.len(), IdSet::len) as usize;
        let dim = self.dim();
        for (q, list) in results.iter_mut().enumerate() {
            if list.len() < k && available > list.len() {
                let query = &normalized[q * dim..(q + 1) * dim];
                *list = self.exact(query, k, allowed).pop().unwrap_or_default();
                stats.exact_fallbacks.push(q);
            }
        }
        Ok((results, stats))
    }
}
