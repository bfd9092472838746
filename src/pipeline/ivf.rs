//! The IVF workflow of an index: build it, measure the smallest `nprobe` reaching a recall target, and
//! record that choice, refusing to record it when the IVF index changed while it was measured.

use std::path::Path;

use super::PipelineError;
use crate::ann::{held_out_queries, tune_nprobe, AnnParams, AnnRecord, Progress, TuneReport};
use crate::index::{Index, IndexError, IndexWriter};

/// The queries a tuning measures recall on.
#[derive(Debug, Clone, PartialEq)]
pub enum TuneQueries {
    /// `count` synthetic held-out queries drawn with `seed`: each a catalog item moved half-way toward
    /// another, so none is in the catalog.
    HeldOut {
        /// How many.
        count: usize,
        /// Their seed.
        seed: u64,
    },
    /// Given query vectors, row-major (normalized by the index).
    Vectors(Vec<f32>),
}

/// What a tuning aims for.
#[derive(Debug, Clone, PartialEq)]
pub struct TuneTarget {
    /// Neighbors per query.
    pub k: usize,
    /// The recall@k against exact search to reach.
    pub recall: f64,
    /// The queries.
    pub queries: TuneQueries,
}

impl TuneTarget {
    /// The default target of an index: recall@10 0.95, or recall@50 0.99 for FashionIQ evaluation
    /// (whose R@50 must not lose to approximate search), on 500 held-out queries of seed 1.
    pub fn default_for(fashioniq: bool) -> TuneTarget {
        let (k, recall) = if fashioniq { (50, 0.99) } else { (10, 0.95) };
        TuneTarget {
            k,
            recall,
            queries: TuneQueries::HeldOut {
                count: 500,
                seed: 1,
            },
        }
    }
}

/// Builds the IVF index of the index at `dir` over every row and commits it.
pub fn build_ivf(
    dir: &Path,
    params: &AnnParams,
    progress: &dyn Progress,
) -> crate::Result<AnnRecord> {
    let mut writer = IndexWriter::open(dir)?;
    let record = writer.build_ann(params, progress)?;
    writer.commit()?;
    Ok(record)
}

/// Recall and QPS of `index`'s IVF index at each `nprobe` tried against exact search, and the
/// record of the IVF index measured (to hand to [`record_nprobe`]).
pub fn measure_nprobe(
    index: &Index,
    target: &TuneTarget,
) -> crate::Result<(TuneReport, AnnRecord)> {
    let ann = index.ann().ok_or_else(|| IndexError::NoAnn {
        index: index.path().to_owned(),
    })?;
    let rows = index.ann_source()?;
    let queries = query_vectors(index, &target.queries)?;
    let report = tune_nprobe(ann, &rows, &queries, target.k, target.recall)?;
    Ok((report, ann.record().clone()))
}

/// The query vectors `queries` describes, normalized: held-out ones are drawn from the rows the IVF
/// index covers.
pub fn query_vectors(index: &Index, queries: &TuneQueries) -> crate::Result<Vec<f32>> {
    Ok(match queries {
        TuneQueries::HeldOut { count, seed } => {
            held_out_queries(&index.ann_source()?, *count, *seed)?
                .as_slice()
                .to_vec()
        }
        TuneQueries::Vectors(vectors) => index.normalized_queries(vectors)?,
    })
}

/// Records `nprobe` as the default of the IVF index `tuned` describes, unless that IVF index was
/// rebuilt since it was measured ([`PipelineError::IvfChanged`]). Returns the new index version.
pub fn record_nprobe(dir: &Path, tuned: &AnnRecord, nprobe: usize) -> crate::Result<u64> {
    let mut record = tuned.clone();
    record.nprobe = nprobe;
    let mut writer = IndexWriter::open(dir)?;
    let current = Index::open(dir)?;
    fn identity(r: &AnnRecord) -> (&str, usize, u64) {
        (&r.factory, r.len, r.lists_offset)
    }
    if current.ann_record().map(identity) != Some(identity(&record)) {
        return Err(PipelineError::IvfChanged {
            index: dir.to_owned(),
        }
        .into());
    }
    writer.set_ann_record(&record)?;
    writer.commit()
}

/// Measures and records in one call: the tuning report, and the `nprobe` recorded (`None` when the
/// target was never reached, and the recorded `nprobe` stays).
pub fn tune_and_record(
    dir: &Path,
    target: &TuneTarget,
) -> crate::Result<(TuneReport, Option<usize>)> {
    let index = Index::open(dir)?;
    let (report, tuned) = measure_nprobe(&index, target)?;
    drop(index);
    match report.chosen {
        Some(chosen) => {
            record_nprobe(dir, &tuned, chosen)?;
            Ok((report, Some(chosen)))
        }
        None => Ok((report, None)),
    }
}
