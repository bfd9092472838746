//! Running the FashionIQ evaluation against an index and an encoder.

use std::collections::HashMap;
use std::path::Path;

use super::PipelineError;
use crate::encoder::{Encoder, ImageSource};
use crate::eval::{evaluate, BackendError, EvalOptions, EvalReport, RetrievalBackend};
use crate::fashioniq::{Category, Dataset};
use crate::index::{Index, SearchOptions};

/// Which ids of an index belong to each category, from the items' metadata.
#[derive(Debug, Clone, Default)]
pub struct CategoryGalleries {
    members: HashMap<String, Vec<bool>>,
}

impl CategoryGalleries {
    /// Reads every item's category once.
    pub fn of(index: &Index) -> crate::Result<CategoryGalleries> {
        let mut members: HashMap<String, Vec<bool>> = HashMap::new();
        let total = index.total_rows() as usize;
        for id in 0..index.total_rows() {
            if index.is_deleted(id) {
                continue;
            }
            let category = index.meta(id)?.category;
            members
                .entry(category)
                .or_insert_with(|| vec![false; total])[id as usize] = true;
        }
        Ok(CategoryGalleries { members })
    }

    /// Whether `id` is in `category`'s gallery.
    pub fn contains(&self, category: &str, id: u64) -> bool {
        self.members
            .get(category)
            .is_some_and(|m| m.get(id as usize).copied().unwrap_or(false))
    }

    /// Items in `category`.
    pub fn len(&self, category: &str) -> usize {
        self.members
            .get(category)
            .map_or(0, |m| m.iter().filter(|x| **x).count())
    }
}

/// Encodes with an [`Encoder`], takes reference images from the index when they are there (they were
/// encoded by the same model when the index was built), and searches each category's gallery exactly.
pub struct IndexBackend<'a> {
    /// The catalog.
    pub index: &'a Index,
    /// The model that built the index.
    pub encoder: &'a dyn Encoder,
    /// Category membership of the index's items.
    pub galleries: &'a CategoryGalleries,
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
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        Ok(self.encoder.encode_texts(&refs)?)
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
        };
        let hits = self.index.search_batch(query, k, &options)?;
        Ok(hits.into_iter().flatten().map(|h| h.key).collect())
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
    let galleries = CategoryGalleries::of(index)?;
    let backend = IndexBackend {
        index,
        encoder,
        galleries: &galleries,
    };
    Ok(evaluate(dataset, &backend, options)?)
}
