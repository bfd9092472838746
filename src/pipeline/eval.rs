//! Running the FashionIQ evaluation against an index and an encoder.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::PipelineError;
use crate::encoder::{Encoder, ImageSource};
use crate::eval::{evaluate, BackendError, EvalOptions, EvalReport, RetrievalBackend};
use crate::fashioniq::{Category, Dataset};
use crate::index::{Index, SearchMode, SearchOptions};

/// Which ids of an index belong to each category, from the items' metadata.
#[derive(Debug, Clone, Default)]
pub struct CategoryGalleries {
    members: HashMap<String, Vec<bool>>,
    /// Per category: gallery images of the split that the index does not hold.
    unindexed: HashMap<String, usize>,
}

impl CategoryGalleries {
    /// Each category's gallery as the split defines it (`dataset.gallery`), found in `index` by key.
    ///
    /// The split, not the index, defines the gallery: an index may hold several splits (train and
    /// val, say), and searching all of a category's items would rank images the protocol leaves out.
    pub fn of(index: &Index, dataset: &Dataset) -> crate::Result<CategoryGalleries> {
        let total = index.total_rows() as usize;
        let mut members = HashMap::new();
        let mut unindexed = HashMap::new();
        for category in dataset.categories() {
            let mut member = vec![false; total];
            let mut missing = 0;
            for image in dataset.gallery(category) {
                match index.id_of(&image.name)? {
                    Some(id) if !index.is_deleted(id) => member[id as usize] = true,
                    _ => missing += 1,
                }
            }
            members.insert(category.to_string(), member);
            unindexed.insert(category.to_string(), missing);
        }
        Ok(CategoryGalleries { members, unindexed })
    }

    /// Whether `id` is in `category`'s gallery.
    pub fn contains(&self, category: &str, id: u64) -> bool {
        self.members
            .get(category)
            .is_some_and(|m| m.get(id as usize).copied().unwrap_or(false))
    }

    /// Gallery images of `category` found in the index.
    pub fn len(&self, category: &str) -> usize {
        self.members
            .get(category)
            .map_or(0, |m| m.iter().filter(|x| **x).count())
    }

    /// Gallery images of `category` that the index does not hold.
    pub fn unindexed(&self, category: &str) -> usize {
        self.unindexed.get(category).copied().unwrap_or(0)
    }
}

/// Encodes with an [`Encoder`], takes reference images from the index when they are there (they were
/// encoded by the same model when the index was built), and searches each category's gallery, exactly
/// or through the IVF index.
pub struct IndexBackend<'a> {
    index: &'a Index,
    encoder: &'a dyn Encoder,
    galleries: &'a CategoryGalleries,
    mode: Option<SearchMode>,
    /// Texts encoded so far: a second evaluation in another mode encodes nothing again.
    texts: Mutex<HashMap<String, Vec<f32>>>,
    /// Every search's result keys, in call order (the protocol searches one query at a time, in order).
    results: Mutex<Vec<Vec<String>>>,
    /// Nanoseconds spent searching.
    searching: AtomicU64,
}

impl<'a> IndexBackend<'a> {
    /// A backend searching `index` (built by `encoder`) in its default mode.
    pub fn new(
        index: &'a Index,
        encoder: &'a dyn Encoder,
        galleries: &'a CategoryGalleries,
    ) -> IndexBackend<'a> {
        IndexBackend {
            index,
            encoder,
            galleries,
            mode: None,
            texts: Mutex::default(),
            results: Mutex::default(),
            searching: AtomicU64::new(0),
        }
    }

    /// Time spent searching since the last call.
    pub fn take_search_time(&self) -> Duration {
        Duration::from_nanos(self.searching.swap(0, Ordering::Relaxed))
    }

    /// Searches in `mode` from now on (`None`: IVF when the index has one, else exact).
    pub fn set_mode(&mut self, mode: Option<SearchMode>) {
        self.mode = mode;
    }

    /// The results of every search since the last call, in order.
    pub fn take_results(&self) -> Vec<Vec<String>> {
        std::mem::take(&mut *self.results.lock().unwrap_or_else(|e| e.into_inner()))
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
        let Some(path) = path else {
            return Err(Box::new(PipelineError::MissingReference {
                category: category.to_string(),
                name: name.to_owned(),
            }));
        };
        let mut encoded = self.encoder.encode_images(&[ImageSource::Path(path)])?;
        Ok(encoded
            .pop()
            .ok_or("the encoder returned no vector for one image")??)
    }

    fn encode_texts(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, BackendError> {
        let mut cache = self.texts.lock().unwrap_or_else(|e| e.into_inner());
        let missing: Vec<&str> = texts
            .iter()
            .filter(|t| !cache.contains_key(*t))
            .map(String::as_str)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if !missing.is_empty() {
            let vectors = self.encoder.encode_texts(&missing)?;
            if vectors.len() != missing.len() {
                return Err("the encoder returned a different number of text vectors".into());
            }
            for (text, vector) in missing.into_iter().zip(vectors) {
                cache.insert(text.to_owned(), vector);
            }
        }
        Ok(texts.iter().map(|t| cache[t].clone()).collect())
    }

    fn search(
        &self,
        category: Category,
        query: &[f32],
        k: usize,
    ) -> Result<Vec<String>, BackendError> {
        let filter = |id: u64| self.galleries.contains(category.as_str(), id);
        let options = SearchOptions {
            filter: Some(&filter),
            mode: self.mode,
        };
        let started = Instant::now();
        let hits = self.index.search_batch(query, k, &options)?;
        self.searching
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        let keys: Vec<String> = hits.into_iter().flatten().map(|h| h.key).collect();
        self.results
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(keys.clone());
        Ok(keys)
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
    index.check_model(&super::index_model_info(encoder.info()))?;
    let galleries = CategoryGalleries::of(index, dataset)?;
    let backend = IndexBackend::new(index, encoder, &galleries);
    Ok(evaluate(dataset, &backend, options)?)
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
    /// Time spent in IVF searches (one query at a time, as the protocol asks them).
    pub ivf_search_time: Duration,
    /// Time spent in exact searches.
    pub exact_search_time: Duration,
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
    index.check_model(&super::index_model_info(encoder.info()))?;
    let nprobe = index
        .ann_record()
        .ok_or_else(|| crate::index::IndexError::NoAnn {
            index: index.path().to_owned(),
        })?
        .nprobe;
    let galleries = CategoryGalleries::of(index, dataset)?;
    let mut backend = IndexBackend::new(index, encoder, &galleries);
    backend.set_mode(Some(SearchMode::IVF_DEFAULT));
    let ivf = evaluate(dataset, &backend, options)?;
    let ivf_results = backend.take_results();
    let ivf_search_time = backend.take_search_time();
    backend.set_mode(Some(SearchMode::Exact));
    let exact = evaluate(dataset, &backend, options)?;
    let exact_results = backend.take_results();
    Ok(ModeComparison {
        ivf,
        nprobe,
        exact,
        agreement: agreement(&ivf_results, &exact_results, &options.ks),
        ivf_search_time,
        exact_search_time: backend.take_search_time(),
    })
}

fn agreement(ivf: &[Vec<String>], exact: &[Vec<String>], ks: &[usize]) -> Agreement {
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
