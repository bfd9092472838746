//! Searching a Milvus collection: the FashionIQ protocol's backend and composed queries.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{MilvusCollection, MilvusFilter};
use crate::encoder::Encoder;
use crate::eval::{BackendError, RetrievalBackend};
use crate::fashioniq::{Category, Dataset};
use crate::fusion::Fusion;
use crate::index::SearchMode;
use crate::retriever::{
    fused_query_vectors, Answer, Query, QueryError, QueryFilter, RetrievedItem,
};
use crate::QueryOptions;

/// Largest key list a gallery filter is written as; a larger gallery is filtered by category.
const KEY_FILTER_LIMIT: usize = 16_384;

/// The FashionIQ protocol's [`RetrievalBackend`] over a Milvus collection: references come from the
/// collection's stored vectors (fetched by key, once), else from their files through the encoder;
/// texts from the encoder; each category's gallery is searched with a Milvus filter expression at the
/// given `nprobe`.
///
/// A category's gallery is the split's images found in the collection: when the collection's items of
/// that category are exactly those, the filter is `category == "..."`; otherwise (a collection holding
/// several splits) it is the list of the gallery's keys.
pub struct MilvusBackend<'a> {
    collection: &'a MilvusCollection,
    encoder: &'a dyn Encoder,
    nprobe: Option<usize>,
    filters: HashMap<Category, MilvusFilter>,
    unsearchable: HashMap<Category, usize>,
    references: Mutex<HashMap<String, Vec<f32>>>,
    texts: Mutex<HashMap<String, Vec<f32>>>,
    searching: AtomicU64,
}

impl<'a> MilvusBackend<'a> {
    /// A backend for `dataset`'s galleries in `collection`, which must hold `encoder`'s vectors.
    /// Searches probe `nprobe` lists (`None`: the collection's recorded nprobe). Reads each
    /// category's keys and the references' vectors from the collection.
    pub fn new(
        collection: &'a MilvusCollection,
        encoder: &'a dyn Encoder,
        dataset: &Dataset,
        nprobe: Option<usize>,
    ) -> crate::Result<MilvusBackend<'a>> {
        collection.check_model(encoder.info())?;
        let mut filters = HashMap::new();
        let mut unsearchable = HashMap::new();
        let mut wanted = Vec::new();
        for category in dataset.categories() {
            let gallery: Vec<String> = dataset
                .gallery(category)
                .iter()
                .map(|image| image.name.clone())
                .collect();
            let stored: HashSet<String> = collection
                .keys_of_category(category.as_str())?
                .into_iter()
                .collect();
            let split: HashSet<&String> = gallery.iter().collect();
            let present: Vec<String> = gallery
                .iter()
                .filter(|k| stored.contains(*k))
                .cloned()
                .collect();
            let missing = gallery.len() - present.len();
            let exact_category =
                stored.len() < KEY_FILTER_LIMIT && stored.iter().all(|k| split.contains(k));
            let filter = if exact_category || present.len() > KEY_FILTER_LIMIT {
                MilvusFilter::Category(category.as_str().to_owned())
            } else {
                MilvusFilter::Keys(present)
            };
            filters.insert(category, filter);
            unsearchable.insert(category, missing);
            wanted.extend(
                dataset
                    .triplets(category)
                    .iter()
                    .map(|t| t.candidate.clone()),
            );
        }
        wanted.sort_unstable();
        wanted.dedup();
        let references = collection
            .fetch(&wanted)?
            .into_iter()
            .map(|(key, (_, vector))| (key, vector))
            .collect();
        Ok(MilvusBackend {
            collection,
            encoder,
            nprobe,
            filters,
            unsearchable,
            references: Mutex::new(references),
            texts: Mutex::default(),
            searching: AtomicU64::new(0),
        })
    }

    /// Time spent searching since the last call.
    pub fn take_search_time(&self) -> Duration {
        Duration::from_nanos(self.searching.swap(0, Ordering::Relaxed))
    }

    /// The `nprobe` searches use.
    pub fn nprobe(&self) -> usize {
        self.nprobe.unwrap_or(self.collection.record().nprobe)
    }

    /// Searches with `nprobe` lists from now on (`None`: the collection's recorded nprobe).
    pub fn set_nprobe(&mut self, nprobe: Option<usize>) {
        self.nprobe = nprobe;
    }
}

impl RetrievalBackend for MilvusBackend<'_> {
    fn encode_image(
        &self,
        category: Category,
        name: &str,
        path: Option<&Path>,
    ) -> Result<Vec<f32>, BackendError> {
        if let Some(vector) = self
            .references
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return Ok(vector.clone());
        }
        let Some(path) = path else {
            return Err(Box::new(crate::pipeline::PipelineError::MissingReference {
                category: category.to_string(),
                name: name.to_owned(),
            }));
        };
        crate::pipeline::eval::encode_one_image(&*self.encoder, path)
    }

    fn encode_texts(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, BackendError> {
        crate::pipeline::eval::encode_texts_once(&*self.encoder, &self.texts, texts)
    }

    fn search(
        &self,
        category: Category,
        queries: &[Vec<f32>],
        k: usize,
    ) -> Result<Vec<Vec<String>>, BackendError> {
        let filter = self
            .filters
            .get(&category)
            .ok_or_else(|| format!("no gallery for {category}"))?;
        let flat: Vec<f32> = queries.iter().flatten().copied().collect();
        let started = Instant::now();
        let lists = self
            .collection
            .search(&flat, k, Some(self.nprobe()), Some(filter))?;
        self.searching
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        Ok(lists
            .into_iter()
            .map(|hits| hits.into_iter().map(|hit| hit.key).collect())
            .collect())
    }

    fn gallery_unsearchable(&self, category: Category) -> usize {
        self.unsearchable.get(&category).copied().unwrap_or(0)
    }
}

/// Composed queries answered from a Milvus collection: the same [`Query`] and [`Answer`] as
/// [`crate::Retriever`], the same encoding and fusion (references by key are the collection's stored
/// vectors), searched by Milvus with a filter expression and an `nprobe`.
pub struct MilvusRetriever {
    collection: MilvusCollection,
    encoder: Arc<dyn Encoder>,
    fusion: Fusion,
}

impl std::fmt::Debug for MilvusRetriever {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MilvusRetriever")
            .field("collection", &self.collection.url().to_string())
            .field("model", self.encoder.info())
            .field("fusion", &self.fusion)
            .finish()
    }
}

impl MilvusRetriever {
    /// A retriever over `collection`, whose vectors `encoder` must have made (checked with the same
    /// rule as an index's: [`crate::milvus::MilvusError::ModelMismatch`] otherwise).
    pub fn new(
        collection: MilvusCollection,
        encoder: Arc<dyn Encoder>,
        fusion: Fusion,
    ) -> crate::Result<MilvusRetriever> {
        let collection = collection.checked(encoder.info(), encoder.dim())?;
        Ok(MilvusRetriever {
            collection,
            encoder,
            fusion,
        })
    }

    /// The collection searched.
    pub fn collection(&self) -> &MilvusCollection {
        &self.collection
    }

    /// Answers many queries (see [`crate::Retriever::query_batch`]). `options.mode` gives the
    /// `nprobe` (`Ivf { nprobe: None }` or no mode: the collection's recorded one; `Exact`: every list,
    /// which for IVF_FLAT is exact search). Answers report the mode as IVF with the nprobe used.
    pub fn query_batch(
        &self,
        queries: &[Query],
        k: usize,
        options: &QueryOptions,
    ) -> crate::Result<Vec<Result<Answer, QueryError>>> {
        let nlist = self.collection.record().nlist;
        let nprobe = match options.mode {
            Some(SearchMode::Exact) => nlist,
            Some(SearchMode::Ivf { nprobe: Some(n) }) => n.min(nlist),
            _ => self.collection.record().nprobe,
        };
        // References by key: fetched in one call.
        let keys: Vec<String> = queries
            .iter()
            .filter_map(|q| match &q.reference {
                Some(crate::Reference::Key(key)) => Some(key.clone()),
                _ => None,
            })
            .collect();
        let stored = self.collection.fetch(&keys)?;
        let url = PathBuf::from(self.collection.url().to_string());
        let lookup = |key: &str| {
            stored
                .get(key)
                .map(|(_, vector)| vector.clone())
                .ok_or_else(|| QueryError::UnknownKey {
                    key: key.to_owned(),
                    index: url.clone(),
                })
        };
        let vectors = fused_query_vectors(
            &*self.encoder,
            &self.fusion,
            self.collection.record().dim,
            queries,
            &lookup,
        )?;
        let mut answers: Vec<Option<Result<Answer, QueryError>>> =
            (0..queries.len()).map(|_| None).collect();
        let mut groups: HashMap<Option<&QueryFilter>, (Vec<usize>, Vec<f32>)> = HashMap::new();
        for (i, vector) in vectors.into_iter().enumerate() {
            match vector {
                Ok(vector) => {
                    let (members, flat) = groups.entry(queries[i].filter.as_ref()).or_default();
                    members.push(i);
                    flat.extend_from_slice(&vector);
                }
                Err(error) => answers[i] = Some(Err(error)),
            }
        }
        let extra = usize::from(options.exclude_reference);
        for (filter, (members, flat)) in groups {
            let filter = filter.map(|f| match f {
                QueryFilter::Category(category) => MilvusFilter::Category(category.clone()),
                QueryFilter::Keys(keys) => MilvusFilter::Keys(keys.clone()),
            });
            let lists = self
                .collection
                .search(&flat, k + extra, Some(nprobe), filter.as_ref())?;
            for (&i, list) in members.iter().zip(lists) {
                let excluded = match (&queries[i].reference, options.exclude_reference) {
                    (Some(crate::Reference::Key(key)), true) => Some(key.as_str()),
                    _ => None,
                };
                let mut hits: Vec<RetrievedItem> = list
                    .into_iter()
                    .filter(|hit| Some(hit.key.as_str()) != excluded)
                    .map(|hit| RetrievedItem {
                        key: hit.key,
                        score: hit.score,
                        category: hit.category,
                        image: None,
                    })
                    .collect();
                hits.truncate(k);
                answers[i] = Some(Ok(Answer {
                    hits,
                    mode: SearchMode::Ivf {
                        nprobe: Some(nprobe),
                    },
                    exact_fallback: false,
                }));
            }
        }
        Ok(answers
            .into_iter()
            .map(|a| a.expect("every query is answered or failed"))
            .collect())
    }
}
