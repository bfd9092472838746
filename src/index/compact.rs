//! Compaction: rewrite the live rows without the deleted ones, and give the IVF index the new row ids,
//! refilling its lists with the trained centroids, or training new ones when the data has drifted
//! (see [`crate::ann::Drift`]). One commit: a crash leaves the previous version or the compacted one.

use fiq_index_format::Segment;

use super::ivf_files;
use super::{Index, IndexWriter};
use crate::ann::{AnnIndex, AnnParams, Drift, Progress, VectorSource};
use crate::search::VectorBlock;

/// Rows sampled from each side (built over, added since) to measure drift.
const DRIFT_SAMPLE: usize = 2048;

/// What to do with the IVF index during a compaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Retrain {
    /// Decide from the drift measure ([`Drift::retrain_reason`]).
    #[default]
    Auto,
    /// Always train new centroids.
    Always,
    /// Never: refill the lists with the trained centroids.
    Never,
}

/// What happened to the IVF index in a compaction.
#[derive(Debug, Clone, PartialEq)]
pub enum IvfOutcome {
    /// The index had no IVF index.
    None,
    /// New centroids were trained; why.
    Retrained {
        /// What the drift measure (or the caller) said.
        reason: String,
    },
    /// The lists were refilled with the trained centroids (no k-means).
    Refilled,
    /// Too few live rows to train `nlist` lists: the IVF index was dropped and searches are exact.
    Dropped {
        /// How many rows there were, and how many lists.
        reason: String,
    },
}

/// What [`IndexWriter::compact`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactReport {
    /// The committed generation.
    pub generation: u64,
    /// Rows before, deleted ones included.
    pub rows_before: u64,
    /// Rows after: the live rows, renumbered `0..rows_after`.
    pub rows_after: u64,
    /// Drift measured before compacting (when there was an IVF index).
    pub drift: Option<Drift>,
    /// What happened to the IVF index.
    pub ivf: IvfOutcome,
}

impl Index {
    /// How far the live rows have drifted from the IVF index's centroids (`None` without one): samples
    /// up to 2048 live rows the index was built over and 2048 added since.
    pub fn ivf_drift(&self) -> crate::Result<Option<Drift>> {
        let Some(ann) = self.ann() else {
            return Ok(None);
        };
        let covered = ann.len() as u64;
        let live_in = |start: u64, end: u64| -> Vec<u64> {
            (start..end).filter(|&id| !self.is_deleted(id)).collect()
        };
        let gather = |ids: &[u64]| -> Vec<f32> {
            let picked = crate::ann::sample::sample_ids(ids.len(), DRIFT_SAMPLE, 0xD21F7);
            picked
                .iter()
                .flat_map(|&i| {
                    self.vector(ids[i])
                        .map(|v| v.into_owned())
                        .unwrap_or_default()
                })
                .collect()
        };
        let built = live_in(0, covered);
        let added = live_in(covered, self.total_rows());
        Ok(Some(Drift::measure(
            ann,
            &gather(&built),
            &gather(&added),
            added.len(),
        )?))
    }
}

impl IndexWriter {
    /// Rewrites the index without its deleted rows, in one commit: the live rows keep their order
    /// and are renumbered `0..live` (keys are what stays stable). An IVF index is rebuilt for the new
    /// ids: with its trained centroids when they still fit (`retrain` = [`Retrain::Auto`] asks the
    /// drift measure), or trained anew. Changes pending in this writer must be committed first.
    pub fn compact(
        &mut self,
        retrain: Retrain,
        progress: &dyn Progress,
    ) -> crate::Result<CompactReport> {
        let before = Index::open_in(self.inner_mut().directory().clone())?;
        let drift = before.ivf_drift()?;
        let rows_before = before.total_rows();
        let Some(segment) = self.inner_mut().compact()? else {
            let had_ivf = before.ann().is_some();
            drop(before); // its lease would keep the old files past the commit
            let generation = self.commit()?;
            return Ok(CompactReport {
                generation,
                rows_before,
                rows_after: 0,
                drift,
                ivf: match had_ivf {
                    true => IvfOutcome::Dropped {
                        reason: "no live rows".into(),
                    },
                    false => IvfOutcome::None,
                },
            });
        };
        let rows_after = segment.len();
        let ivf = match (before.ann(), &drift) {
            (Some(ann), Some(drift)) => {
                let rows = SegmentRows::new(&segment, before.path())?;
                let reason = match retrain {
                    Retrain::Always => Some("asked to retrain".to_owned()),
                    Retrain::Never => None,
                    Retrain::Auto => drift.retrain_reason(rows_after),
                };
                self.rebuild_ivf(ann, &rows, reason, progress)?
            }
            _ => IvfOutcome::None,
        };
        drop(segment);
        drop(before); // its lease would keep the old files past the commit
        let generation = self.commit()?;
        Ok(CompactReport {
            generation,
            rows_before,
            rows_after,
            drift,
            ivf,
        })
    }

    /// Builds the IVF index of the compacted rows and stages it for the commit.
    fn rebuild_ivf(
        &mut self,
        old: &AnnIndex,
        rows: &SegmentRows<'_>,
        retrain: Option<String>,
        progress: &dyn Progress,
    ) -> crate::Result<IvfOutcome> {
        let record = old.record();
        if rows.len() < record.nlist {
            return Ok(IvfOutcome::Dropped {
                reason: format!(
                    "{} live rows cannot fill {} lists; searches are exact until `fiq-index build` makes a smaller IVF index",
                    rows.len(),
                    record.nlist
                ),
            });
        }
        let (ann, outcome) = match retrain {
            Some(reason) => {
                let params = AnnParams::with_factory(record.factory.clone())
                    .with_seed(record.seed)
                    .with_nprobe(record.nprobe)
                    .with_rerank_factor(record.rerank_factor);
                (
                    AnnIndex::build(rows, &params, progress)?,
                    IvfOutcome::Retrained { reason },
                )
            }
            None => (old.refill(rows, progress)?, IvfOutcome::Refilled),
        };
        ivf_files::stage_built(self.inner_mut(), ann)?;
        Ok(outcome)
    }
}

/// The rows of the compacted segment, before it is committed, as what an IVF index is built from.
struct SegmentRows<'a> {
    dim: usize,
    rows: &'a [f32],
}

impl<'a> SegmentRows<'a> {
    fn new(segment: &'a Segment, index: &std::path::Path) -> crate::Result<SegmentRows<'a>> {
        let rows = segment
            .vectors_f32()
            .ok_or_else(|| super::IndexError::AnnUnsupported {
                index: index.to_owned(),
                reason: "its vectors are stored as f16; IVF indexes serve f32 stores".into(),
            })?;
        Ok(SegmentRows {
            dim: segment.dim(),
            rows,
        })
    }
}

impl VectorSource for SegmentRows<'_> {
    fn dim(&self) -> usize {
        self.dim
    }
    fn len(&self) -> usize {
        self.rows.len() / self.dim
    }
    fn row(&self, id: usize) -> &[f32] {
        &self.rows[id * self.dim..(id + 1) * self.dim]
    }
    fn blocks(&self) -> Vec<VectorBlock<'_>> {
        vec![VectorBlock::F32 {
            base_id: 0,
            rows: self.rows,
        }]
    }
}
