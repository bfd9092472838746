//! The composed query, fiq's front door: "this dress, but red and sleeveless".
//!
//! A [`Retriever`] holds an opened [`Index`], the [`Encoder`] that built it (checked when the retriever
//! is made) and a [`Fusion`]. A [`Query`] names a reference (an image file, image bytes, a key already
//! in the index, or a vector), a modification text, and optionally a filter (a category or a set of
//! keys). The data path runs one way, top to bottom:
//!
//! ```text
//! Retriever::query_batch
//!   ├─ references: stored vectors by key (nothing re-encoded), images encoded in one batch
//!   ├─ texts: encoded in one batch
//!   ├─ fusion: one query vector per query
//!   └─ Index::search_with_stats, one batch per filter (exact or IVF: the index decides)
//! ```
//!
//! A query that cannot be answered (an unreadable image, an unknown key, nothing to search for) fails
//! alone, with an error naming the thing; the other queries of its batch are answered.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use fiq::encoder::{ClipEncoder, EncoderOptions};
//! use fiq::fusion::Fusion;
//! use fiq::pipeline::{add_images, BuildOptions, CatalogImage};
//! use fiq::{Query, Reference, Retriever};
//!
//! // A tiny random-weight CLIP and a few images from fiq's test fixtures, indexed.
//! let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clip-tiny");
//! let encoder = Arc::new(ClipEncoder::load(&fixture, &EncoderOptions::default())?);
//! let catalog: Vec<CatalogImage> = ["landscape.jpg", "tall.webp", "palette.png"]
//!     .iter()
//!     .map(|name| CatalogImage {
//!         key: name.to_string(),
//!         category: "dress".into(),
//!         path: fixture.join("images").join(name),
//!     })
//!     .collect();
//! let dir = tempfile::tempdir()?;
//! let quiet = BuildOptions { progress: false, ..BuildOptions::default() };
//! add_images(&catalog, &*encoder, dir.path(), &quiet)?;
//!
//! // "This one, but red and sleeveless", among the dresses.
//! let retriever = Retriever::open(dir.path(), encoder, Fusion::Sum)?;
//! let query = Query::new("is red and sleeveless")
//!     .reference(Reference::Key("tall.webp".into()))
//!     .category("dress");
//! let answer = retriever.query(&query, 2)?;
//! assert_eq!(answer.hits.len(), 2);
//! for hit in &answer.hits {
//!     println!("{} {:.3}", hit.key, hit.score);
//! }
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::encoder::{Encoder, ImageError, ImageSource};
use crate::fusion::{fuse, Fusion, FusionError};
use crate::index::{IdSet, Index, SearchMode, SearchOptions};

/// Where a query's reference comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Reference {
    /// An image file, encoded by the retriever's encoder.
    ImagePath(PathBuf),
    /// An image in memory (an upload), encoded by the retriever's encoder; `name` labels it in errors.
    ImageBytes {
        /// What to call the image in errors.
        name: String,
        /// The encoded file (JPEG, PNG, WebP, ...).
        bytes: Vec<u8>,
    },
    /// An item of the index: its stored vector is used, nothing is re-encoded.
    Key(String),
    /// A vector of the index's space (it is normalized).
    Vector(Vec<f32>),
}

/// Which items a query may return.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum QueryFilter {
    /// Items whose metadata says this category (`dress`, `shirt`, `toptee`).
    Category(String),
    /// Items with these keys.
    Keys(Vec<String>),
}

/// A composed query: a reference, a modification text, or both.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Query {
    /// The reference; `None` for a text-only query.
    pub reference: Option<Reference>,
    /// The modification ("is red and sleeveless"); empty (or blank) for an image-only query.
    pub text: String,
    /// Restricts the results; `None`: the whole index.
    pub filter: Option<QueryFilter>,
    /// How this query's reference and text are fused; `None`: the retriever's fusion. Lets one
    /// retriever (a server's) answer queries that ask for different fusions in one batch.
    pub fusion: Option<Fusion>,
}

impl Query {
    /// A query with `text` and no reference yet.
    pub fn new(text: impl Into<String>) -> Query {
        Query {
            text: text.into(),
            ..Query::default()
        }
    }

    /// This query with `reference`.
    pub fn reference(self, reference: Reference) -> Query {
        Query {
            reference: Some(reference),
            ..self
        }
    }

    /// This query restricted to `category`.
    pub fn category(self, category: impl Into<String>) -> Query {
        Query {
            filter: Some(QueryFilter::Category(category.into())),
            ..self
        }
    }

    /// This query restricted by `filter`.
    pub fn filter(self, filter: QueryFilter) -> Query {
        Query {
            filter: Some(filter),
            ..self
        }
    }

    /// This query fused with `fusion` instead of the retriever's.
    pub fn fusion(self, fusion: Fusion) -> Query {
        Query {
            fusion: Some(fusion),
            ..self
        }
    }

    fn has_text(&self) -> bool {
        !self.text.trim().is_empty()
    }
}

/// How queries are searched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryOptions {
    /// Exact or IVF; `None`: the index's default (IVF at its recorded `nprobe` when it has one).
    pub mode: Option<SearchMode>,
    /// Leave a reference given by key out of its own results (the FashionIQ protocol keeps it).
    pub exclude_reference: bool,
}

/// One result of a query.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrievedItem {
    /// The item's key.
    pub key: String,
    /// Cosine similarity with the query vector.
    pub score: f32,
    /// The item's category ("" when the index does not know it).
    pub category: String,
    /// The item's image file, when the index recorded one.
    pub image: Option<PathBuf>,
}

/// The answer to one query.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Best first.
    pub hits: Vec<RetrievedItem>,
    /// How it was searched: exact, or IVF with the `nprobe` used.
    pub mode: SearchMode,
    /// An IVF search whose probed lists held fewer than `k` allowed items, answered exactly instead.
    pub exact_fallback: bool,
}

/// Why one query could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// No reference and no text: nothing to search for.
    #[error("the query has neither a reference nor a text: nothing to search for")]
    Empty,
    /// The reference key is not a live item of the index.
    #[error("reference key {key:?} is not in the index at {index}")]
    UnknownKey {
        /// The key asked for.
        key: String,
        /// The index searched.
        index: PathBuf,
    },
    /// A reference vector of the wrong length.
    #[error("the reference vector has {actual} components, the index holds {expected}-dimensional vectors")]
    VectorDimension {
        /// The index's dimension.
        expected: usize,
        /// The vector's length.
        actual: usize,
    },
    /// The reference image could not be read or decoded.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The filter selects nothing.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// The reference and text could not be fused.
    #[error("fusing the reference and the text failed")]
    Fusion(#[from] FusionError),
}

/// Why a filter selects nothing (the same for every query of a batch that uses it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// A category no item of the index has.
    #[error("no item of the index at {index} has category {category:?} (it has: {known})")]
    UnknownCategory {
        /// The category asked for.
        category: String,
        /// The index searched.
        index: PathBuf,
        /// The categories it has, comma-separated.
        known: String,
    },
    /// A key filter naming no item of the index.
    #[error("none of the {count} filter keys is in the index at {index}")]
    NoFilterKeys {
        /// Keys given.
        count: usize,
        /// The index searched.
        index: PathBuf,
    },
}

/// Errors of the retriever as a whole: an encoder that cannot serve the index, or one query's
/// failure when it was asked alone ([`Retriever::query`]). Encoder and index failures come as their
/// own [`crate::Error`] variants.
#[derive(Debug, thiserror::Error)]
pub enum RetrieverError {
    /// The index's vectors are of a different length than the encoder's.
    #[error("the index at {index} holds {index_dim}-dimensional vectors, the encoder makes {encoder_dim}")]
    Dimension {
        /// The index.
        index: PathBuf,
        /// Its dimension.
        index_dim: usize,
        /// The encoder's.
        encoder_dim: usize,
    },
    /// One query failed (from [`Retriever::query`]).
    #[error(transparent)]
    Query(#[from] QueryError),
}

/// An index, the encoder that built it and a fusion: ask it composed queries.
///
/// Cheap to share between threads (`&Retriever` is `Sync`); a server holds one for all requests.
pub struct Retriever {
    index: Index,
    encoder: Arc<dyn Encoder>,
    fusion: Fusion,
    /// Each category's live ids, made from the items' metadata on the first category filter.
    categories: Mutex<Option<Arc<HashMap<String, Arc<IdSet>>>>>,
}

impl std::fmt::Debug for Retriever {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retriever")
            .field("index", &self.index.path())
            .field("model", self.encoder.info())
            .field("fusion", &self.fusion)
            .finish()
    }
}

impl Retriever {
    /// A retriever over `index`, whose vectors `encoder` must have made: the index's model record is
    /// checked ([`crate::index::IndexError::ModelMismatch`] names both models otherwise).
    pub fn new(
        index: Index,
        encoder: Arc<dyn Encoder>,
        fusion: Fusion,
    ) -> crate::Result<Retriever> {
        index.check_model(encoder.info())?;
        if index.dim() != encoder.dim() {
            return Err(RetrieverError::Dimension {
                index: index.path().to_owned(),
                index_dim: index.dim(),
                encoder_dim: encoder.dim(),
            }
            .into());
        }
        Ok(Retriever {
            index,
            encoder,
            fusion,
            categories: Mutex::new(None),
        })
    }

    /// Opens the index at `dir` and makes a retriever over it (see [`Retriever::new`]).
    pub fn open(
        dir: impl AsRef<Path>,
        encoder: Arc<dyn Encoder>,
        fusion: Fusion,
    ) -> crate::Result<Retriever> {
        Retriever::new(Index::open(dir)?, encoder, fusion)
    }

    /// The index searched.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The encoder of references and texts.
    pub fn encoder(&self) -> &dyn Encoder {
        &*self.encoder
    }

    /// The fusion in use.
    pub fn fusion(&self) -> &Fusion {
        &self.fusion
    }

    /// Answers one query with its `k` best items, searched as the index's default says.
    pub fn query(&self, query: &Query, k: usize) -> crate::Result<Answer> {
        self.query_with(query, k, &QueryOptions::default())
    }

    /// Answers one query with `options`.
    pub fn query_with(
        &self,
        query: &Query,
        k: usize,
        options: &QueryOptions,
    ) -> crate::Result<Answer> {
        let answer = self
            .query_batch(std::slice::from_ref(query), k, options)?
            .pop()
            .expect("one answer per query");
        Ok(answer.map_err(RetrieverError::Query)?)
    }

    /// Answers many queries: images and texts are encoded in batches and the fused vectors searched in
    /// one batch per filter. One answer per query, in order; a query that cannot be answered holds its
    /// error and the others are unaffected. Fails as a whole only when the encoder or the index does.
    pub fn query_batch(
        &self,
        queries: &[Query],
        k: usize,
        options: &QueryOptions,
    ) -> crate::Result<Vec<Result<Answer, QueryError>>> {
        let mut answers: Vec<Option<Result<Answer, QueryError>>> =
            (0..queries.len()).map(|_| None).collect();
        // One search per distinct filter, each a batch of its queries' vectors; a query without a
        // vector is answered with its error right away.
        let mut groups: HashMap<Option<&QueryFilter>, (Vec<usize>, Vec<f32>)> = HashMap::new();
        for (i, vector) in self.query_vectors(queries)?.into_iter().enumerate() {
            match vector {
                Ok(vector) => {
                    let (members, flat) = groups.entry(queries[i].filter.as_ref()).or_default();
                    members.push(i);
                    flat.extend_from_slice(&vector);
                }
                Err(error) => answers[i] = Some(Err(error)),
            }
        }
        for (filter, (members, flat)) in groups {
            let allowed = match filter.map(|f| self.filter_ids(f)).transpose() {
                Ok(allowed) => allowed,
                Err(error) => {
                    for &i in &members {
                        answers[i] = Some(Err(QueryError::Filter(error.clone())));
                    }
                    continue;
                }
            };
            let search_options = SearchOptions {
                filter: allowed.as_deref(),
                mode: options.mode,
            };
            let extra = usize::from(options.exclude_reference);
            let (lists, stats) = self
                .index
                .search_with_stats(&flat, k + extra, &search_options)?;
            for (position, (&i, list)) in members.iter().zip(lists).enumerate() {
                let excluded = match (&queries[i].reference, options.exclude_reference) {
                    (Some(Reference::Key(key)), true) => Some(key.as_str()),
                    _ => None,
                };
                let mut hits = Vec::with_capacity(k);
                for neighbor in list {
                    let key = self.index.key(neighbor.id)?;
                    if Some(key) == excluded {
                        continue;
                    }
                    let meta = self.index.meta(neighbor.id)?;
                    hits.push(RetrievedItem {
                        key: key.to_owned(),
                        score: neighbor.score,
                        category: meta.category,
                        image: (!meta.source.is_empty()).then(|| PathBuf::from(meta.source)),
                    });
                }
                hits.truncate(k);
                answers[i] = Some(Ok(Answer {
                    hits,
                    mode: stats.mode,
                    exact_fallback: stats.exact_fallbacks.contains(&position),
                }));
            }
        }
        Ok(answers
            .into_iter()
            .map(|a| a.expect("every query is answered or failed"))
            .collect())
    }

    /// The fused query vector of each query (unit length), or why it has none; references by key come
    /// from the index, images and texts are encoded in one batch each.
    pub fn query_vectors(
        &self,
        queries: &[Query],
    ) -> crate::Result<Vec<Result<Vec<f32>, QueryError>>> {
        fused_query_vectors(
            &*self.encoder,
            &self.fusion,
            self.index.dim(),
            queries,
            &|key| self.stored_vector(key),
        )
    }

    fn stored_vector(&self, key: &str) -> Result<Vec<f32>, QueryError> {
        let unknown = || QueryError::UnknownKey {
            key: key.to_owned(),
            index: self.index.path().to_owned(),
        };
        let id = match self.index.id_of(key) {
            Ok(Some(id)) if !self.index.is_deleted(id) => id,
            _ => return Err(unknown()),
        };
        self.index
            .vector(id)
            .map(|v| v.into_owned())
            .ok_or_else(unknown)
    }

    /// The ids `filter` allows.
    fn filter_ids(&self, filter: &QueryFilter) -> Result<Arc<IdSet>, FilterError> {
        match filter {
            QueryFilter::Category(category) => {
                let categories = self
                    .categories()
                    .map_err(|_| FilterError::UnknownCategory {
                        category: category.clone(),
                        index: self.index.path().to_owned(),
                        known: String::new(),
                    })?;
                match categories.get(category) {
                    Some(ids) => Ok(Arc::clone(ids)),
                    None => {
                        let mut known: Vec<&str> = categories.keys().map(String::as_str).collect();
                        known.sort_unstable();
                        Err(FilterError::UnknownCategory {
                            category: category.clone(),
                            index: self.index.path().to_owned(),
                            known: known.join(", "),
                        })
                    }
                }
            }
            QueryFilter::Keys(keys) => {
                let (ids, _missing) = self
                    .index
                    .key_ids(keys.iter().map(String::as_str))
                    .map_err(|_| FilterError::NoFilterKeys {
                        count: keys.len(),
                        index: self.index.path().to_owned(),
                    })?;
                if ids.is_empty() {
                    return Err(FilterError::NoFilterKeys {
                        count: keys.len(),
                        index: self.index.path().to_owned(),
                    });
                }
                Ok(Arc::new(ids))
            }
        }
    }

    /// Every category's live ids, read from the metadata once.
    fn categories(&self) -> crate::Result<Arc<HashMap<String, Arc<IdSet>>>> {
        let mut cached = self.categories.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(categories) = &*cached {
            return Ok(Arc::clone(categories));
        }
        let categories: HashMap<String, Arc<IdSet>> = self
            .index
            .categories()?
            .into_iter()
            .map(|(name, ids)| (name, Arc::new(ids)))
            .collect();
        let categories = Arc::new(categories);
        *cached = Some(Arc::clone(&categories));
        Ok(categories)
    }
}

/// The fused query vector of each query (unit length), or why it has none: the search-backend seam.
/// Every backend (the local index, a Milvus collection) turns queries into vectors here, so they all
/// search with the same vectors: references by key come from `stored` (the backend's stored vectors),
/// images and texts are encoded by `encoder` in one batch each and fused with the query's fusion or
/// `fusion`; a reference vector must have `dim` components.
pub(crate) fn fused_query_vectors(
    encoder: &dyn Encoder,
    fusion: &Fusion,
    dim: usize,
    queries: &[Query],
    stored: &dyn Fn(&str) -> Result<Vec<f32>, QueryError>,
) -> crate::Result<Vec<Result<Vec<f32>, QueryError>>> {
    let mut references: Vec<Option<Result<Vec<f32>, QueryError>>> =
        queries.iter().map(|_| None).collect();
    // Decoded uploads live here while the batch is encoded.
    let mut decoded: Vec<(usize, image::DynamicImage)> = Vec::new();
    let mut files: Vec<(usize, &Path)> = Vec::new();
    for (i, query) in queries.iter().enumerate() {
        references[i] = match &query.reference {
            None => None,
            Some(Reference::Key(key)) => Some(stored(key)),
            Some(Reference::Vector(vector)) => Some(checked_vector(vector, dim)),
            Some(Reference::ImagePath(path)) => {
                files.push((i, path));
                None
            }
            Some(Reference::ImageBytes { name, bytes }) => {
                match crate::encoder::decode_image_bytes(Path::new(name), bytes) {
                    Ok(image) => {
                        decoded.push((i, image));
                        None
                    }
                    Err(error) => Some(Err(error.into())),
                }
            }
        };
    }
    let sources: Vec<ImageSource<'_>> = files
        .iter()
        .map(|(_, path)| ImageSource::Path(path))
        .chain(decoded.iter().map(|(_, image)| ImageSource::Image(image)))
        .collect();
    if !sources.is_empty() {
        let encoded = encoder.encode_images(&sources)?;
        let slots = files
            .iter()
            .map(|(i, _)| *i)
            .chain(decoded.iter().map(|(i, _)| *i));
        for (i, result) in slots.zip(encoded) {
            references[i] = Some(result.map_err(QueryError::from));
        }
    }

    let with_text: Vec<usize> = (0..queries.len())
        .filter(|&i| queries[i].has_text())
        .collect();
    let texts: Vec<&str> = with_text
        .iter()
        .map(|&i| queries[i].text.as_str())
        .collect();
    let mut text_vectors: Vec<Option<Vec<f32>>> = vec![None; queries.len()];
    if !texts.is_empty() {
        let encoded = encoder.encode_texts(&texts)?;
        for (&i, vector) in with_text.iter().zip(encoded) {
            text_vectors[i] = Some(vector);
        }
    }

    Ok(references
        .into_iter()
        .zip(text_vectors)
        .zip(queries)
        .map(|((reference, text), query)| match (reference, text) {
            (Some(Err(error)), _) => Err(error),
            (Some(Ok(image)), Some(text)) => {
                let fusion = query.fusion.as_ref().unwrap_or(fusion);
                Ok(fuse(&image, &text, fusion)?)
            }
            (Some(Ok(image)), None) => Ok(image),
            (None, Some(text)) => Ok(text),
            (None, None) => Err(QueryError::Empty),
        })
        .collect())
}

fn checked_vector(vector: &[f32], dim: usize) -> Result<Vec<f32>, QueryError> {
    if vector.len() != dim {
        return Err(QueryError::VectorDimension {
            expected: dim,
            actual: vector.len(),
        });
    }
    let mut unit = vector.to_vec();
    crate::vector::normalize_in_place(&mut unit).map_err(|_| {
        QueryError::Fusion(FusionError::ZeroVector {
            row: 0,
            which: "image",
        })
    })?;
    Ok(unit)
}
