//! The FashionIQ evaluation protocol, independent of any encoder or index.
//!
//! For each category: the gallery is that category's split images; each triplet is a query made of its
//! candidate image and the text [`eval_query_text`] builds from its two captions; the two are encoded by the
//! caller, fused, and searched in the category's gallery, a batch of queries at a time. The reference image
//! stays in the gallery (as in the FashionIQ protocol the papers follow) unless
//! [`EvalOptions::exclude_reference`] is set, in which case it is removed from each query's results before
//! scoring.
//!
//! A query whose reference image cannot be had (not in the index and its file unreadable, say) is
//! skipped, counted in its category's row and listed in the report with the reason; it never stops the
//! evaluation. Every answered query's ranking comes back with the report ([`evaluate_ranked`]).

use super::error::{BackendError, EvalError};
use super::metrics::TargetRanks;
use super::report::{CategoryRow, EvalReport, SkippedQuery};
use crate::fashioniq::{eval_query_text, Category, Dataset};
use crate::fusion::{fuse, Fusion};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// What an evaluation needs from the outside world: encoders and a per-category gallery search.
pub trait RetrievalBackend {
    /// The vector of reference image `name` of `category` (its file, when resolved, is `path`).
    fn encode_image(
        &self,
        category: Category,
        name: &str,
        path: Option<&Path>,
    ) -> Result<Vec<f32>, BackendError>;

    /// One vector per text, in order.
    fn encode_texts(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, BackendError>;

    /// For each query, the keys of the `k` gallery images of `category` nearest to it, best first.
    fn search(
        &self,
        category: Category,
        queries: &[Vec<f32>],
        k: usize,
    ) -> Result<Vec<Vec<String>>, BackendError>;

    /// How many of `category`'s gallery images this backend cannot return (for an index: images of
    /// the split that are not in it, say one that failed to decode at build time). They are reported
    /// beside the gallery size, since every query whose target is among them is a miss.
    fn gallery_unsearchable(&self, _category: Category) -> usize {
        0
    }
}

/// A [`RetrievalBackend`] made of three closures.
///
/// ```
/// use fiq::eval::FnBackend;
/// use fiq::fashioniq::Category;
/// let backend = FnBackend {
///     encode_image: |_category: Category, _name: &str, _path: Option<&std::path::Path>| Ok(vec![1.0, 0.0]),
///     encode_texts: |texts: &[String]| Ok(texts.iter().map(|_| vec![0.0, 1.0]).collect()),
///     search: |_category: Category, queries: &[Vec<f32>], _k: usize| {
///         Ok(queries.iter().map(|_| vec!["B00AKLK08G".to_string()]).collect())
///     },
/// };
/// let backend: &dyn fiq::eval::RetrievalBackend = &backend;
/// let found = backend.search(Category::Dress, &[vec![1.0, 0.0]], 10).unwrap();
/// assert_eq!(found, [["B00AKLK08G"]]);
/// ```
pub struct FnBackend<I, T, S> {
    /// Encodes a reference image.
    pub encode_image: I,
    /// Encodes a batch of texts.
    pub encode_texts: T,
    /// Searches a category's gallery.
    pub search: S,
}

impl<I, T, S> RetrievalBackend for FnBackend<I, T, S>
where
    I: Fn(Category, &str, Option<&Path>) -> Result<Vec<f32>, BackendError>,
    T: Fn(&[String]) -> Result<Vec<Vec<f32>>, BackendError>,
    S: Fn(Category, &[Vec<f32>], usize) -> Result<Vec<Vec<String>>, BackendError>,
{
    fn encode_image(
        &self,
        category: Category,
        name: &str,
        path: Option<&Path>,
    ) -> Result<Vec<f32>, BackendError> {
        (self.encode_image)(category, name, path)
    }

    fn encode_texts(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, BackendError> {
        (self.encode_texts)(texts)
    }

    fn search(
        &self,
        category: Category,
        queries: &[Vec<f32>],
        k: usize,
    ) -> Result<Vec<Vec<String>>, BackendError> {
        (self.search)(category, queries, k)
    }
}

/// How to run an evaluation.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// The Ks to report (the papers: 10 and 50).
    pub ks: Vec<usize>,
    /// How image and text vectors become a query.
    pub fusion: Fusion,
    /// Remove each query's reference image from its results (off in the FashionIQ protocol).
    pub exclude_reference: bool,
    /// Texts per [`RetrievalBackend::encode_texts`] call.
    pub text_batch: usize,
    /// Queries per [`RetrievalBackend::search`] call.
    pub search_batch: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            ks: vec![10, 50],
            fusion: Fusion::Sum,
            exclude_reference: false,
            text_batch: 256,
            search_batch: 256,
        }
    }
}

/// One answered query: what it searched with and what came back.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QueryRanking {
    /// The category searched.
    pub category: Category,
    /// The reference image.
    pub candidate: String,
    /// The two captions joined as the query text.
    pub text: String,
    /// The triplet's two captions, as annotated.
    pub captions: [String; 2],
    /// The image the query should find.
    pub target: String,
    /// The results, best first (the reference removed when the options say so).
    pub results: Vec<String>,
}

/// An evaluation with every answered query's ranking.
#[derive(Debug, Clone)]
pub struct RankedEvaluation {
    /// The metrics.
    pub report: EvalReport,
    /// Every answered query, category by category, in triplet order.
    pub rankings: Vec<QueryRanking>,
}

/// Evaluates every category of `dataset` (a split with targets) through `backend`.
pub fn evaluate(
    dataset: &Dataset,
    backend: &dyn RetrievalBackend,
    options: &EvalOptions,
) -> Result<EvalReport, EvalError> {
    Ok(evaluate_ranked(dataset, backend, options)?.report)
}

/// [`evaluate`], returning every answered query's ranking beside the report.
pub fn evaluate_ranked(
    dataset: &Dataset,
    backend: &dyn RetrievalBackend,
    options: &EvalOptions,
) -> Result<RankedEvaluation, EvalError> {
    if options.ks.contains(&0) {
        return Err(EvalError::ZeroK);
    }
    let deepest = options.ks.iter().copied().max().ok_or(EvalError::ZeroK)?;
    let mut rows = Vec::new();
    let mut rankings = Vec::new();
    let mut skipped = Vec::new();
    for category in dataset.categories() {
        let answered =
            category_rankings(dataset, backend, options, category, deepest, &mut skipped)?;
        let gallery: HashSet<&str> = dataset
            .gallery(category)
            .iter()
            .map(|image| image.name.as_str())
            .collect();
        let outside = answered
            .iter()
            .filter(|ranking| !gallery.contains(ranking.target.as_str()))
            .count();
        let results: Vec<&[String]> = answered.iter().map(|r| r.results.as_slice()).collect();
        let targets: Vec<&str> = answered.iter().map(|r| r.target.as_str()).collect();
        let ranks = TargetRanks::new(&results, &targets)?;
        let mut row =
            CategoryRow::from_ranks(category, gallery.len(), outside, &ranks, &options.ks)?;
        row.gallery_unsearchable = backend.gallery_unsearchable(category);
        row.skipped_queries = skipped
            .iter()
            .filter(|s: &&SkippedQuery| s.category == category)
            .count();
        rows.push(row);
        rankings.extend(answered);
    }
    let mut report = EvalReport::new(
        dataset.split(),
        format!("{:?}", options.fusion),
        options.exclude_reference,
        rows,
    );
    report.skipped_queries = skipped;
    Ok(RankedEvaluation { report, rankings })
}

/// Every query of `category` answered through `backend`, in triplet order; queries whose reference
/// cannot be encoded or fused go to `skipped` instead.
fn category_rankings(
    dataset: &Dataset,
    backend: &dyn RetrievalBackend,
    options: &EvalOptions,
    category: Category,
    deepest: usize,
    skipped: &mut Vec<SkippedQuery>,
) -> Result<Vec<QueryRanking>, EvalError> {
    let triplets = dataset.triplets(category);
    if triplets.is_empty() {
        return Err(EvalError::NoQueries {
            category: Some(category),
        });
    }
    let mut targets = Vec::with_capacity(triplets.len());
    for triplet in triplets {
        let target = triplet.target.as_deref().ok_or(EvalError::NoTargets {
            category,
            split: dataset.split(),
        })?;
        targets.push(target);
    }

    let texts: Vec<String> = triplets
        .iter()
        .map(|triplet| eval_query_text(&triplet.captions))
        .collect();
    let mut text_vectors = Vec::with_capacity(texts.len());
    for batch in texts.chunks(options.text_batch.max(1)) {
        let vectors = backend
            .encode_texts(batch)
            .map_err(|source| EvalError::EncodeText {
                category,
                count: batch.len(),
                source,
            })?;
        if vectors.len() != batch.len() {
            return Err(EvalError::TextCount {
                category,
                expected: batch.len(),
                found: vectors.len(),
            });
        }
        text_vectors.extend(vectors);
    }

    // Candidates repeat across triplets; each is encoded once, and one that fails is tried once.
    let mut image_vectors: HashMap<&str, Result<Vec<f32>, String>> = HashMap::new();
    let mut queries = Vec::with_capacity(triplets.len());
    let mut answered = Vec::with_capacity(triplets.len());
    for ((triplet, text_vector), (text, target)) in triplets
        .iter()
        .zip(&text_vectors)
        .zip(texts.iter().zip(&targets))
    {
        let candidate = triplet.candidate.as_str();
        let image = image_vectors.entry(candidate).or_insert_with(|| {
            let path = dataset.image_path(category, candidate);
            backend
                .encode_image(category, candidate, path)
                .map_err(|error| crate::error::chain(&*error))
        });
        let fused = match image {
            Ok(image) => fuse(image, text_vector, &options.fusion).map_err(|e| e.to_string()),
            Err(reason) => Err(reason.clone()),
        };
        match fused {
            Ok(query) => {
                queries.push(query);
                answered.push(QueryRanking {
                    category,
                    candidate: candidate.to_owned(),
                    text: text.clone(),
                    captions: triplet.captions.clone(),
                    target: (*target).to_owned(),
                    results: Vec::new(),
                });
            }
            Err(reason) => skipped.push(SkippedQuery {
                category,
                candidate: candidate.to_owned(),
                target: (*target).to_owned(),
                reason,
            }),
        }
    }

    let fetch = deepest + usize::from(options.exclude_reference);
    let batch = options.search_batch.max(1);
    for (queries, rankings) in queries.chunks(batch).zip(answered.chunks_mut(batch)) {
        let found =
            backend
                .search(category, queries, fetch)
                .map_err(|source| EvalError::Search {
                    category,
                    queries: queries.len(),
                    source,
                })?;
        if found.len() != queries.len() {
            return Err(EvalError::ResultCount {
                category,
                expected: queries.len(),
                found: found.len(),
            });
        }
        for (ranking, mut results) in rankings.iter_mut().zip(found) {
            if options.exclude_reference {
                results.retain(|key| *key != ranking.candidate);
            }
            results.truncate(deepest);
            ranking.results = results;
        }
    }
    Ok(answered)
}
