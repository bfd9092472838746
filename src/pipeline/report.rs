//! Gathering the HTML evaluation report: curves from the runs' rankings, a sample of queries with
//! their scores and ranks, and thumbnails of every image shown ([`crate::report`] renders).

use std::collections::{BTreeMap, HashSet};
use std::io::Cursor;
use std::path::PathBuf;

use rayon::prelude::*;

use crate::encoder::{Encoder, ImageSource};
use crate::eval::{EvalReport, QueryRanking};
use crate::fashioniq::Dataset;
use crate::fusion::{fuse, Fusion};
use crate::index::Index;
use crate::report::{recall_curve, HtmlReport, ReportRun, SampleHit, SampleQuery};

use super::eval::CategoryGalleries;

/// How the report is made.
#[derive(Debug, Clone)]
pub struct HtmlReportOptions {
    /// The page's title.
    pub title: String,
    /// Lines under the title (model, split, command).
    pub notes: Vec<String>,
    /// Queries in the browsable sample (failures first).
    pub sample: usize,
    /// Results shown per sampled query.
    pub shown: usize,
    /// The curves' deepest k.
    pub curve_k: usize,
    /// The thumbnails' longest side, in pixels.
    pub thumbnail_px: u32,
}

impl Default for HtmlReportOptions {
    fn default() -> Self {
        HtmlReportOptions {
            title: "fiq evaluation".into(),
            notes: Vec::new(),
            sample: 100,
            shown: 10,
            curve_k: 50,
            thumbnail_px: 96,
        }
    }
}

/// One evaluation run to show: its name, metrics and rankings, and the fusion it used.
#[derive(Debug, Clone, Copy)]
pub struct RunResults<'a> {
    /// As the table and legend show it ("sum, exact").
    pub name: &'a str,
    /// Whether it searched through the IVF index.
    pub ivf: bool,
    /// Its metrics.
    pub report: &'a EvalReport,
    /// Its rankings.
    pub rankings: &'a [QueryRanking],
    /// Its fusion (to score the sampled queries).
    pub fusion: &'a Fusion,
}

/// The report of `runs`; the sample comes from `runs[sample_run]` (an exact run, so that the scores
/// shown are the ranking's), scored against `index` with `encoder` (the index's model).
pub fn html_report(
    dataset: &Dataset,
    index: &Index,
    encoder: &dyn Encoder,
    runs: &[RunResults<'_>],
    sample_run: usize,
    options: &HtmlReportOptions,
) -> crate::Result<String> {
    let shown_runs: Vec<ReportRun> = runs
        .iter()
        .map(|run| ReportRun {
            name: run.name.to_owned(),
            ivf: run.ivf,
            report: run.report.clone(),
            curve: recall_curve(run.rankings, options.curve_k),
        })
        .collect();
    let mut report = HtmlReport {
        title: options.title.clone(),
        notes: options.notes.clone(),
        runs: shown_runs,
        ..HtmlReport::default()
    };
    if let Some(run) = runs.get(sample_run) {
        report.sample_run = run.name.to_owned();
        report.sample_total = run.rankings.len();
        report.samples = sample_queries(dataset, index, encoder, run, options)?;
        report.thumbnails = thumbnails(dataset, index, &report.samples, options.thumbnail_px);
    }
    Ok(report.render())
}

/// The sample: queries ordered worst first (target not found at all, then by falling rank), each
/// scored again with its fused vector against its results and its whole category gallery.
fn sample_queries(
    dataset: &Dataset,
    index: &Index,
    encoder: &dyn Encoder,
    run: &RunResults<'_>,
    options: &HtmlReportOptions,
) -> crate::Result<Vec<SampleQuery>> {
    let mut order: Vec<(usize, usize)> = run
        .rankings
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let rank = r
                .results
                .iter()
                .position(|k| *k == r.target)
                .unwrap_or(usize::MAX);
            (i, rank)
        })
        .collect();
    // Worst first; ties keep triplet order.
    order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    order.truncate(options.sample);
    let chosen: Vec<&QueryRanking> = order.iter().map(|&(i, _)| &run.rankings[i]).collect();
    if chosen.is_empty() {
        return Ok(Vec::new());
    }

    let texts: Vec<&str> = chosen.iter().map(|r| r.text.as_str()).collect();
    let text_vectors = encoder.encode_texts(&texts)?;
    let galleries = CategoryGalleries::of(index, dataset)?;
    let vector_of = |key: &str| -> crate::Result<Option<Vec<f32>>> {
        Ok(match index.id_of(key)? {
            Some(id) if !index.is_deleted(id) => index.vector(id).map(|v| v.into_owned()),
            _ => None,
        })
    };
    let mut samples = Vec::with_capacity(chosen.len());
    for (ranking, text) in chosen.into_iter().zip(text_vectors) {
        let reference = match vector_of(&ranking.candidate)? {
            Some(vector) => Some(vector),
            None => match dataset.image_path(ranking.category, &ranking.candidate) {
                Some(path) => encoder
                    .encode_images(&[ImageSource::Path(path)])?
                    .pop()
                    .and_then(Result::ok),
                None => None,
            },
        };
        let query = match reference {
            Some(image) if !ranking.text.trim().is_empty() => fuse(&image, &text, run.fusion)?,
            Some(image) => image,
            None => text,
        };
        let score = |key: &str| -> crate::Result<Option<f32>> {
            Ok(vector_of(key)?.map(|v| crate::vector::dot(&query, &v)))
        };
        let mut hits = Vec::new();
        for key in ranking.results.iter().take(options.shown) {
            hits.push(SampleHit {
                key: key.clone(),
                score: score(key)?.unwrap_or(f32::NAN),
            });
        }
        let target_score = score(&ranking.target)?;
        let target_rank = match (target_score, galleries.ids(ranking.category.as_str())) {
            (Some(target), Some(gallery)) => {
                let mut better = 0usize;
                for id in (0..gallery.universe()).filter(|&id| gallery.contains(id)) {
                    if run.report.exclude_reference && index.key(id)? == ranking.candidate {
                        continue;
                    }
                    if let Some(v) = index.vector(id) {
                        if crate::vector::dot(&query, &v) > target {
                            better += 1;
                        }
                    }
                }
                Some(better + 1)
            }
            _ => None,
        };
        samples.push(SampleQuery {
            category: ranking.category,
            reference: ranking.candidate.clone(),
            captions: ranking.captions.clone(),
            target: ranking.target.clone(),
            hits,
            target_rank,
            target_score,
            missed_top_50: !ranking
                .results
                .iter()
                .take(50)
                .any(|k| *k == ranking.target),
        });
    }
    Ok(samples)
}

/// A small JPEG of every image the samples show, as `data:` URIs by key; an image that cannot be
/// read is left out (the page shows a placeholder).
fn thumbnails(
    dataset: &Dataset,
    index: &Index,
    samples: &[SampleQuery],
    px: u32,
) -> BTreeMap<String, String> {
    let mut wanted: Vec<(String, Option<PathBuf>)> = Vec::new();
    let mut seen = HashSet::new();
    for sample in samples {
        let keys = [&sample.reference, &sample.target]
            .into_iter()
            .chain(sample.hits.iter().map(|h| &h.key));
        for key in keys {
            if !seen.insert(key.clone()) {
                continue;
            }
            let recorded = index
                .id_of(key)
                .ok()
                .flatten()
                .and_then(|id| index.meta(id).ok())
                .map(|m| m.source)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from);
            let path = recorded.or_else(|| {
                dataset
                    .image_path(sample.category, key)
                    .map(|p| p.to_owned())
            });
            wanted.push((key.clone(), path));
        }
    }
    wanted
        .into_par_iter()
        .filter_map(|(key, path)| {
            let image = image::open(path?).ok()?;
            let small = image.thumbnail(px, px).to_rgb8();
            let mut jpeg = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(Cursor::new(&mut jpeg), 80)
                .encode_image(&small)
                .ok()?;
            Some((
                key,
                format!("data:image/jpeg;base64,{}", crate::report::base64(&jpeg)),
            ))
        })
        .collect()
}
