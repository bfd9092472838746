//! The FashionIQ evaluation protocol, independent of any encoder or index.
//!
//! For each category: the gallery is that category's split images; each triplet is a query made of its
//! candidate image and the text [`eval_query_text`] builds from its two captions; the two are encoded by the
//! caller, fused, and searched in the category's gallery. The reference image stays in the gallery (as in
//! the FashionIQ protocol the papers follow) unless [`EvalOptions::exclude_reference`] is set, in which case
//! it is removed from each query's results before scoring.

use super::error::{BackendError, EvalError};
use super::metrics::TargetRanks;
use super::report::{CategoryRow, EvalReport};
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

    /// The keys of the `k` gallery images of `category` nearest to `query`, best first.
    fn search(
        &self,
        category: Category,
        query: &[f32],
        k: usize,
    ) -> Result<Vec<String>, BackendError>;

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
///     search: |_category: Category, _query: &[f32], _k: usize| Ok(vec!["B00AKLK08G".to_string()]),
/// };
/// let backend: &dyn fiq::eval::RetrievalBackend = &backend;
/// assert_eq!(backend.search(Category::Dress, &[1.0, 0.0], 10).unwrap(), ["B00AKLK08G"]);
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
    S: Fn(Category, &[f32], usize) -> Result<Vec<String>, BackendError>,
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
        query: &[f32],
        k: usize,
    ) -> Result<Vec<String>, BackendError> {
        (self.search)(category, query, k)
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
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            ks: vec![10, 50],
            fusion: Fusion::Sum,
            exclude_reference: false,
            text_batch: 256,
        }
    }
}

/// Evaluates every category of `dataset` (a split with targets) through `backend`.
pub fn evaluate(
    dataset: &Dataset,
    backend: &dyn RetrievalBackend,
    options: &EvalOptions,
) -> Result<EvalReport, EvalError> {
    if options.ks.contains(&0) {
        return Err(EvalError::ZeroK);
    }
    let deepest = options.ks.iter().copied().max().ok_or(EvalError::ZeroK)?;
    let mut rows = Vec::new();
    for category in dataset.categories() {
        let ranks = category_ranks(dataset, backend, options, category, deepest)?;
        let gallery: HashSet<&str> = dataset
            .gallery(category)
            .iter()
            .map(|image| image.name.as_str())
            .collect();
        let outside = dataset
            .triplets(category)
            .iter()
            .filter(|triplet| {
                triplet
                    .target
                    .as_deref()
                    .is_some_and(|target| !gallery.contains(target))
            })
            .count();
        let mut row =
            CategoryRow::from_ranks(category, gallery.len(), outside, &ranks, &options.ks)?;
        row.gallery_unsearchable = backend.gallery_unsearchable(category);
        rows.push(row);
    }
    Ok(EvalReport::new(
        dataset.split(),
        format!("{:?}", options.fusion),
        options.exclude_reference,
        rows,
    ))
}

/// The rank of each query's target among the first `deepest` results of its category's gallery.
fn category_ranks(
    dataset: &Dataset,
    backend: &dyn RetrievalBackend,
    options: &EvalOptions,
    category: Category,
    deepest: usize,
) -> Result<TargetRanks, EvalError> {
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

    // Candidates repeat across triplets; each is encoded once.
    let mut image_vectors: HashMap<&str, Vec<f32>> = HashMap::new();
    let fetch = deepest + usize::from(options.exclude_reference);
    let mut ranked = Vec::with_capacity(triplets.len());
    for (triplet, text_vector) in triplets.iter().zip(&text_vectors) {
        let candidate = triplet.candidate.as_str();
        if !image_vectors.contains_key(candidate) {
            let path = dataset.image_path(category, candidate);
            let vector = backend
                .encode_image(category, candidate, path)
                .map_err(|source| EvalError::EncodeImage {
                    category,
                    name: candidate.to_owned(),
                    source,
                })?;
            image_vectors.insert(candidate, vector);
        }
        let query =
            fuse(&image_vectors[candidate], text_vector, &options.fusion).map_err(|source| {
                EvalError::Fusion {
                    category,
                    candidate: candidate.to_owned(),
                    source,
                }
            })?;
        let mut results =
            backend
                .search(category, &query, fetch)
                .map_err(|source| EvalError::Search {
                    category,
                    candidate: candidate.to_owned(),
                    source,
                })?;
        if options.exclude_reference {
            results.retain(|key| key != candidate);
        }
        results.truncate(deepest);
        ranked.push(results);
    }
    TargetRanks::new(&ranked, &targets)
}
