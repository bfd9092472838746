//! Running the FashionIQ evaluation against an index and an encoder.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::PipelineError;
use crate::encoder::{Encoder, ImageSource};
use crate::eval::{
    evaluate, evaluate_ranked, BackendError, EvalOptions, EvalReport, QueryRanking,
    RankedEvaluation, RetrievalBackend,
};
use crate::fashioniq::{Category, Dataset};
use crate::index::{IdSet, Index, SearchMode, SearchOptions};

/// Each category's gallery in an index: the split's images found there by key.
#[derive(Debug, Clone, Default)]
pub struct CategoryGalleries {
    members: HashMap<String, IdSet>,
    /// Per category: gallery images of the split that the index does not hold.
    unindexed: HashMap<String, usize>,
}

impl CategoryGalleries {
    /// Each category's gallery as the split defines it (`dataset.gallery`), found in `index` by key.
    ///
    /// The split, not the index, defines the gallery: an index may hold several splits (train and
    /// val, say), and searching all of a category's items would rank images the protocol leaves out.
    pub fn of(index: &Index, dataset: &Dataset) -> crate::Result<CategoryGalleries> {
        let mut members = HashMap::new();
        let mut unindexed = HashMap::new();
        for category in dataset.categories() {
            let names = dataset
                .gallery(category)
                .iter()
                .map(|image| image.name.as_str());
            let (ids, missing) = index.key_ids(names)?;
            members.insert(category.to_string(), ids);
            unindexed.insert(category.to_string(), missing.len());
        }
        Ok(CategoryGalleries { members, unindexed })
    }

    /// The ids of `category`'s gallery (`None` for a category the split does not have).
    pub fn ids(&self, category: &str) -> Option<&IdSet> {
        self.members.get(category)
    }

    /// Whether `id` is in `category`'s gallery.
    pub fn contains(&self, category: &str, id: u64) -> bool {
        self.members.get(category).is_some_and(|m| m.contains(id))
    }

    /// Gallery images of `category` found in the index.
    pub fn len(&self, category: &str) -> usize {
        self.members.get(category).map_or(0, |m| m.len() as usize)
    }

    /// Gallery images of `category` that the index does not hold.
    pub fn unindexed(&self, category: &str) -> usize {
        self.unindexed.get(category).copied().unwrap_or(0)
    }
}

/// Where an [`IndexBackend`] gets text vectors.
#[derive(Clone, Copy)]
pub enum TextSource<'a> {
    /// Encoded on demand by the index's model (and cached).
    Encoder(&'a dyn Encoder),
    /// Looked up among vectors encoded beforehand (training's cached features).
    Cached(&'a crate::train::TextFeatures),
}

/// The one index-backed [`RetrievalBackend`]: reference images come from the index when they are there
/// (their stored vectors, made by the same model when the index was built), else from their files;
/// searches run in batches in each category's gallery, exactly or through the IVF index, as
/// [`Index::search_with_stats`] decides. Evaluation and training's validation both use it.
pub struct IndexBackend<'a> {
    index: &'a Index,
    texts: TextSource<'a>,
    galleries: &'a CategoryGalleries,
    mode: Option<SearchMode>,
    /// Texts encoded so far: a second evaluation in another mode encodes nothing again.
    cache: Mutex<HashMap<String, Vec<f32>>>,
    /// Nanoseconds spent searching.
    searching: AtomicU64,
    /// Queries an IVF search answered exactly because the probed lists held too few gallery items.
    exact_fallbacks: AtomicUsize,
}

impl<'a> IndexBackend<'a> {
    /// A backend searching `index` in its default mode, with texts from `texts`.
    pub fn new(
        index: &'a Index,
        texts: TextSource<'a>,
        galleries: &'a CategoryGalleries,
    ) -> IndexBackend<'a> {
        IndexBackend {
            index,
            texts,
            galleries,
            mode: None,
            cache: Mutex::default(),
            searching: AtomicU64::new(0),
            exact_fallbacks: AtomicUsize::new(0),
        }
    }

    /// Time spent searching since the last call.
    pub fn take_search_time(&self) -> Duration {
        Duration::from_nanos(self.searching.swap(0, Ordering::Relaxed))
    }

    /// IVF queries answered by exact search since the last call (see [`crate::index::SearchStats`]).
    pub fn take_exact_fallbacks(&self) -> usize {
        self.exact_fallbacks.swap(0, Ordering::Relaxed)
    }

    /// Searches in `mode` from now on (`None`: IVF when the index has one, else exact).
    pub fn set_mode(&mut self, mode: Option<SearchMode>) {
        self.mode = mode;
    }
}

impl RetrievalBackend for IndexBackend<'_> {
    fn encode_image(
        &self,
        category: Category,
        name: &str,
        path: Option<&Path>,
    ) -> Result<Vec<f32>, BackendError> {
        if let Some(id) = self.index.id_of(name)? {
            if let Some(v) = self.index.vector(id) {
                return Ok(v.into_owned());
            }
        }
        let (Some(path), TextSource::Encoder(encoder)) = (path, self.texts) else {
            return Err(Box::new(PipelineError::MissingReference {
                category: category.to_string(),
                name: name.to_owned(),
            }));
        };
        encode_one_image(encoder, path)
    }

    fn encode_texts(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, BackendError> {
        let encoder = match self.texts {
            TextSource::Cached(features) => {
                return texts
                    .iter()
                    .map(|text| {
                        features
                            .get(text)
                            .map(<[f32]>::to_vec)
                            .ok_or_else(|| format!("text {text:?} was not encoded").into())
                    })
                    .collect();
            }
            TextSource::Encoder(encoder) => encoder,
        };
        encode_texts_once(encoder, &self.cache, texts)
    }

    fn search(
        &self,
        category: Category,
        queries: &[Vec<f32>],
        k: usize,
    ) -> Result<Vec<Vec<String>>, BackendError> {
        let gallery = self
            .galleries
            .ids(category.as_str())
            .ok_or_else(|| format!("no gallery for {category}"))?;
        let options = SearchOptions {
            filter: Some(gallery),
            mode: self.mode,
        };
        let flat: Vec<f32> = queries.iter().flatten().copied().collect();
        let started = Instant::now();
        let (lists, stats) = self.index.search_with_stats(&flat, k, &options)?;
        self.searching
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.exact_fallbacks
            .fetch_add(stats.exact_fallbacks.len(), Ordering::Relaxed);
        lists
            .into_iter()
            .map(|list| {
                list.into_iter()
                    .map(|n| Ok(self.index.key(n.id)?.to_owned()))
                    .collect::<Result<Vec<String>, crate::Error>>()
                    .map_err(|e| Box::new(e) as BackendError)
            })
            .collect()
    }

    fn gallery_unsearchable(&self, category: Category) -> usize {
        self.galleries.unindexed(category.as_str())
    }
}

/// Evaluates `dataset` against the index with `encoder` (which must be the index's model).
pub fn evaluate_index(
    dataset: &Dataset,
    index: &Index,
    encoder: &dyn Encoder,
    options: &EvalOptions,
) -> crate::Result<EvalReport> {
    index.check_model(encoder.info())?;
    let galleries = CategoryGalleries::of(index, dataset)?;
    let backend = IndexBackend::new(index, TextSource::Encoder(encoder), &galleries);
    Ok(evaluate(dataset, &backend, options)?)
}

/// [`evaluate_index`], with every answered query's ranking (for the HTML report, say).
pub fn evaluate_index_ranked(
    dataset: &Dataset,
    index: &Index,
    encoder: &dyn Encoder,
    options: &EvalOptions,
) -> crate::Result<RankedEvaluation> {
    index.check_model(encoder.info())?;
    let galleries = CategoryGalleries::of(index, dataset)?;
    let backend = IndexBackend::new(index, TextSource::Encoder(encoder), &galleries);
    Ok(evaluate_ranked(dataset, &backend, options)?)
}

/// The same evaluation through the IVF index and by exact search, and how far their results agree, so
/// that approximate search never hides a retrieval loss.
#[derive(Debug, Clone, Serialize)]
pub struct ModeComparison {
    /// Through the IVF index with its recorded `nprobe`.
    pub ivf: EvalReport,
    /// The `nprobe` used.
    pub nprobe: usize,
    /// By exact search.
    pub exact: EvalReport,
    /// Result agreement between the two, query by query.
    pub agreement: Agreement,
    /// Queries of the IVF run that exact search answered, because the probed lists held fewer than
    /// K gallery images: their results are exact, not IVF's.
    pub ivf_exact_fallbacks: usize,
    /// Time spent in IVF searches (batches of queries, as the protocol asks them).
    pub ivf_search_time: Duration,
    /// Time spent in exact searches.
    pub exact_search_time: Duration,
    /// Every answered query's ranking through the IVF index (not in the JSON: the report is the
    /// metrics).
    #[serde(skip)]
    pub ivf_rankings: Vec<QueryRanking>,
    /// Every answered query's ranking by exact search.
    #[serde(skip)]
    pub exact_rankings: Vec<QueryRanking>,
}

/// How far IVF results agree with exact results over the same queries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Agreement {
    /// Queries compared.
    pub queries: usize,
    /// For each K: the mean over queries of |IVF top-K ∩ exact top-K| / |exact top-K| (recall@K of the
    /// IVF results against exact search, within the category gallery).
    pub overlap_at: Vec<(usize, f64)>,
    /// Queries whose IVF and exact result lists are identical, in order, to the deepest K.
    pub identical: usize,
}

/// Evaluates through the IVF index and exactly (texts are encoded once) and compares the results.
/// Fails with [`crate::index::IndexError::NoAnn`] when the index has no IVF index.
pub fn evaluate_index_both_ways(
    dataset: &Dataset,
    index: &Index,
    encoder: &dyn Encoder,
    options: &EvalOptions,
) -> crate::Result<ModeComparison> {
    index.check_model(encoder.info())?;
    let nprobe = index
        .ann_record()
        .ok_or_else(|| crate::index::IndexError::NoAnn {
            index: index.path().to_owned(),
        })?
        .nprobe;
    let galleries = CategoryGalleries::of(index, dataset)?;
    let mut backend = IndexBackend::new(index, TextSource::Encoder(encoder), &galleries);
    backend.set_mode(Some(SearchMode::IVF_DEFAULT));
    let ivf = evaluate_ranked(dataset, &backend, options)?;
    let ivf_search_time = backend.take_search_time();
    let ivf_exact_fallbacks = backend.take_exact_fallbacks();
    backend.set_mode(Some(SearchMode::Exact));
    let exact = evaluate_ranked(dataset, &backend, options)?;
    let results = |run: &RankedEvaluation| -> Vec<Vec<String>> {
        run.rankings.iter().map(|r| r.results.clone()).collect()
    };
    Ok(ModeComparison {
        agreement: agreement(&results(&ivf), &results(&exact), &options.ks),
        ivf: ivf.report,
        nprobe,
        exact: exact.report,
        ivf_exact_fallbacks,
        ivf_search_time,
        exact_search_time: backend.take_search_time(),
        ivf_rankings: ivf.rankings,
        exact_rankings: exact.rankings,
    })
}

pub(super) fn agreement(ivf: &[Vec<String>], exact: &[Vec<String>], ks: &[usize]) -> Agreement {
    let queries = ivf.len().min(exact.len());
    let overlap_at = ks
        .iter()
        .map(|&k| {
            let total: f64 = ivf
                .iter()
                .zip(exact)
                .map(|(a, e)| {
                    let truth: HashSet<&String> = e.iter().take(k).collect();
                    if truth.is_empty() {
                        return 1.0;
                    }
                    let found = a.iter().take(k).filter(|key| truth.contains(key)).count();
                    found as f64 / truth.len() as f64
                })
                .sum();
            (
                k,
                if queries == 0 {
                    1.0
                } else {
                    total / queries as f64
                },
            )
        })
        .collect();
    let identical = ivf.iter().zip(exact).filter(|(a, e)| a == e).count();
    Agreement {
        queries,
        overlap_at,
        identical,
    }
}

#[cfg(test)]
mod tests {
    use super::agreement;

    #[test]
    fn agreement_counts_shared_results_per_k() {
        let keys = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
        let ivf = vec![keys("a b c d"), keys("a b c d")];
        let exact = vec![keys("a b c d"), keys("a x c y")];
        let found = agreement(&ivf, &exact, &[2, 4]);
        assert_eq!(found.queries, 2);
        assert_eq!(found.identical, 1);
        // k = 2: query 0 shares {a, b}, query 1 shares {a} of {a, x}.
        assert_eq!(found.overlap_at[0], (2, (1.0 + 0.5) / 2.0));
        // k = 4: query 1 shares a and c of four.
        assert_eq!(found.overlap_at[1], (4, (1.0 + 0.5) / 2.0));
    }
}

/// One reference image's vector, encoded from its file (an image the index does not hold).
pub(crate) fn encode_one_image(
    encoder: &dyn Encoder,
    path: &std::path::Path,
) -> Result<Vec<f32>, BackendError> {
    let mut encoded = encoder.encode_images(&[ImageSource::Path(path)])?;
    Ok(encoded
        .pop()
        .ok_or("the encoder returned no vector for one image")??)
}

/// Vectors of `texts` in order, each distinct text encoded once across calls (kept in `cache`): the
/// protocol asks for the same captions' texts more than once.
pub(crate) fn encode_texts_once(
    encoder: &dyn Encoder,
    cache: &Mutex<HashMap<String, Vec<f32>>>,
    texts: &[String],
) -> Result<Vec<Vec<f32>>, BackendError> {
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    let missing: Vec<&str> = texts
        .iter()
        .filter(|t| !cache.contains_key(*t))
        .map(String::as_str)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if !missing.is_empty() {
        let vectors = encoder.encode_texts(&missing)?;
        if vectors.len() != missing.len() {
            return Err("the encoder returned a different number of text vectors".into());
        }
        for (text, vector) in missing.into_iter().zip(vectors) {
            cache.insert(text.to_owned(), vector);
        }
    }
    Ok(texts.iter().map(|t| cache[t].clone()).collect())
}
