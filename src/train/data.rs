//! Training examples on cached features: image vectors from the index, text vectors encoded once.

use super::TrainError;
use crate::eval::BackendError;
use crate::fashioniq::{eval_query_text, training_query_text, Category, Dataset, TrainingCaption};
use crate::index::{IdSet, Index};
use std::collections::{HashMap, HashSet};

/// Encodes texts into vectors, one per text, in order (a CLIP text encoder, or a fake one in tests).
pub type TextEncoder<'a> = &'a dyn Fn(&[String]) -> Result<Vec<Vec<f32>>, BackendError>;

/// Texts per encoder call.
const TEXT_BATCH: usize = 256;

/// Text vectors by text, encoded once.
#[derive(Debug, Clone, Default)]
pub struct TextFeatures {
    dim: usize,
    rows: Vec<f32>,
    by_text: HashMap<String, usize>,
}

impl TextFeatures {
    /// Encodes every distinct text of `texts` with `encoder`, checking each vector is `dim` long and finite.
    pub fn encode(
        texts: impl IntoIterator<Item = String>,
        dim: usize,
        encoder: TextEncoder<'_>,
    ) -> Result<TextFeatures, TrainError> {
        let mut features = TextFeatures {
            dim,
            ..TextFeatures::default()
        };
        let mut unique: Vec<String> = Vec::new();
        let mut seen = HashSet::new();
        for text in texts {
            if seen.insert(text.clone()) {
                unique.push(text);
            }
        }
        for batch in unique.chunks(TEXT_BATCH) {
            let vectors = encoder(batch).map_err(|source| TrainError::TextEncoder {
                count: batch.len(),
                source,
            })?;
            if vectors.len() != batch.len() {
                return Err(TrainError::TextCount {
                    expected: batch.len(),
                    found: vectors.len(),
                });
            }
            for (text, vector) in batch.iter().zip(vectors) {
                if vector.len() != dim || vector.iter().any(|x| !x.is_finite()) {
                    return Err(TrainError::TextVector {
                        text: text.clone(),
                        expected: dim,
                        found: vector.len(),
                    });
                }
                features
                    .by_text
                    .insert(text.clone(), features.rows.len() / dim);
                features.rows.extend_from_slice(&vector);
            }
        }
        Ok(features)
    }

    /// The row of `text`, if it was encoded.
    pub fn row_of(&self, text: &str) -> Option<usize> {
        self.by_text.get(text).copied()
    }

    /// The vector of row `row`.
    pub fn row(&self, row: usize) -> &[f32] {
        &self.rows[row * self.dim..(row + 1) * self.dim]
    }

    /// The vector of `text`, if it was encoded.
    pub fn get(&self, text: &str) -> Option<&[f32]> {
        self.row_of(text).map(|row| self.row(row))
    }
}

/// One training triplet resolved to index ids and text rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// Which gallery (category) it belongs to: an index into [`TrainingSet::galleries`].
    pub gallery: usize,
    /// The reference image's index id.
    pub candidate: u64,
    /// The target image's index id.
    pub target: u64,
    /// Text rows of the four [`TrainingCaption`] variants, in [`TrainingCaption::ALL`] order.
    pub texts: [usize; 4],
}

/// A split's triplets on cached features, ready to train on.
#[derive(Debug, Clone)]
pub struct TrainingSet {
    /// The examples.
    pub examples: Vec<Example>,
    /// The categories, in gallery order.
    pub categories: Vec<Category>,
    /// Each category's gallery: the ids of its split images found in the index, and of every target
    /// (for mining).
    pub galleries: Vec<IdSet>,
    /// Text vectors of every training text.
    pub texts: TextFeatures,
    /// Triplets dropped because an image is not in the index.
    pub skipped: usize,
}

impl TrainingSet {
    /// Resolves `dataset`'s triplets against `index` (keys are image names) and encodes their four
    /// caption variants. Triplets whose candidate or target is missing from the index are counted in
    /// [`TrainingSet::skipped`].
    pub fn build(
        dataset: &Dataset,
        index: &Index,
        encoder: TextEncoder<'_>,
    ) -> Result<TrainingSet, TrainError> {
        let resolved = ResolvedSplit::resolve(dataset, index)?;
        let all_texts = resolved
            .triplets
            .iter()
            .flat_map(|triplet| triplet.texts.iter().cloned());
        let texts = TextFeatures::encode(all_texts, index.dim(), encoder)?;
        let examples = resolved
            .triplets
            .iter()
            .map(|triplet| Example {
                gallery: triplet.gallery,
                candidate: triplet.candidate,
                target: triplet.target,
                texts: triplet.texts.each_ref().map(|text| {
                    texts
                        .row_of(text)
                        .expect("every training text was encoded above")
                }),
            })
            .collect();
        Ok(TrainingSet {
            examples,
            categories: resolved.categories,
            galleries: resolved.galleries,
            texts,
            skipped: resolved.skipped,
        })
    }
}

/// One training triplet resolved to index ids, its caption variants still text.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedTriplet {
    pub gallery: usize,
    pub candidate: u64,
    pub target: u64,
    /// The four [`TrainingCaption`] variants, in [`TrainingCaption::ALL`] order.
    pub texts: [String; 4],
}

/// A split's triplets found in an index, with each category's gallery (split images and targets).
#[derive(Debug, Clone)]
pub(crate) struct ResolvedSplit {
    pub triplets: Vec<ResolvedTriplet>,
    pub categories: Vec<Category>,
    pub galleries: Vec<IdSet>,
    pub skipped: usize,
}

impl ResolvedSplit {
    /// Resolves `dataset`'s triplets against `index` (keys are image names); a triplet with an image
    /// missing from the index is counted in `skipped`.
    pub(crate) fn resolve(dataset: &Dataset, index: &Index) -> Result<ResolvedSplit, TrainError> {
        let id_of = |name: &str| -> Result<Option<u64>, TrainError> {
            index.id_of(name).map_err(|source| TrainError::Index {
                context: "looking up an image key",
                source: Box::new(source),
            })
        };
        let mut categories = Vec::new();
        let mut galleries = Vec::new();
        let mut triplets = Vec::new();
        let mut skipped = 0;
        for category in dataset.categories() {
            let names = dataset
                .gallery(category)
                .iter()
                .map(|image| image.name.as_str());
            let (mut gallery, _) = index.key_ids(names).map_err(|source| TrainError::Index {
                context: "looking up the gallery's keys",
                source: Box::new(source),
            })?;
            for triplet in dataset.triplets(category) {
                let Some(target) = triplet.target.as_deref() else {
                    return Err(TrainError::NoTargets {
                        split: dataset.split(),
                    });
                };
                match (id_of(&triplet.candidate)?, id_of(target)?) {
                    (Some(candidate), Some(target)) => {
                        gallery.insert(target);
                        triplets.push(ResolvedTriplet {
                            gallery: galleries.len(),
                            candidate,
                            target,
                            texts: TrainingCaption::ALL
                                .map(|variant| training_query_text(&triplet.captions, variant)),
                        });
                    }
                    _ => skipped += 1,
                }
            }
            categories.push(category);
            galleries.push(gallery);
        }
        if triplets.is_empty() {
            return Err(TrainError::NoExamples {
                split: dataset.split(),
                skipped,
            });
        }
        Ok(ResolvedSplit {
            triplets,
            categories,
            galleries,
            skipped,
        })
    }
}

/// The validation split with its evaluation texts encoded once.
#[derive(Debug)]
pub struct Validation {
    /// The split (with targets).
    pub dataset: Dataset,
    /// Vectors of every evaluation text.
    pub texts: TextFeatures,
}

impl Validation {
    /// Encodes the evaluation text of every triplet of `dataset`.
    pub fn build(
        dataset: Dataset,
        dim: usize,
        encoder: TextEncoder<'_>,
    ) -> Result<Validation, TrainError> {
        let texts: Vec<String> = dataset
            .categories()
            .flat_map(|category| dataset.triplets(category))
            .map(|triplet| eval_query_text(&triplet.captions))
            .collect();
        let texts = TextFeatures::encode(texts, dim, encoder)?;
        Ok(Validation { dataset, texts })
    }
}
