//! The Milvus workflows (feature `milvus`): export an index's store into a collection, encode a catalog
//! (or one part of it) straight into a collection, and evaluate through a collection beside fiq's own
//! exact search over the same vectors.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::build::{catalog_images, encode_batch, CatalogImage, SkippedImage};
use super::eval::{agreement, Agreement, CategoryGalleries, IndexBackend, TextSource};
use crate::encoder::Encoder;
use crate::eval::{
    evaluate_ranked, BackendError, EvalOptions, EvalReport, QueryRanking, RankedEvaluation,
    RetrievalBackend,
};
use crate::fashioniq::{Category, Dataset};
use crate::index::{Index, SearchMode};
use crate::milvus::{
    CollectionRecord, ConnectOptions, IndexCoverage, MilvusBackend, MilvusCollection, MilvusError,
    MilvusUrl,
};
use crate::search::{exact_search, VectorBlock};

/// One part of a catalog split among several workers: `number` of `of` (1-based, `"2/4"`).
///
/// An item belongs to part `1 + crc32(key) mod of`: the parts are disjoint, cover the catalog, do not
/// depend on the catalog's order, and every worker computes the same split on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    number: usize,
    of: usize,
}

impl Part {
    /// The whole catalog (`1/1`).
    pub const WHOLE: Part = Part { number: 1, of: 1 };

    /// Part `number` of `of`, or why not.
    pub fn new(number: usize, of: usize) -> Result<Part, String> {
        if of == 0 || number == 0 || number > of {
            return Err(format!(
                "part {number}/{of}: write i/n with 1 <= i <= n (for example 1/2)"
            ));
        }
        Ok(Part { number, of })
    }

    /// Whether the item with `key` belongs to this part.
    pub fn contains(&self, key: &str) -> bool {
        (crc32fast::hash(key.as_bytes()) as usize % self.of) + 1 == self.number
    }

    /// The part's number (1-based).
    pub fn number(&self) -> usize {
        self.number
    }

    /// How many parts.
    pub fn of(&self) -> usize {
        self.of
    }
}

impl FromStr for Part {
    type Err = String;

    fn from_str(text: &str) -> Result<Part, String> {
        let (number, of) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not a part: write i/n (for example 1/2)"))?;
        let parse = |n: &str| {
            n.trim()
                .parse::<usize>()
                .map_err(|_| format!("{text:?} is not a part: write i/n (for example 1/2)"))
        };
        Part::new(parse(number)?, parse(of)?)
    }
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.number, self.of)
    }
}

/// How rows go into a collection.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    /// Rows per upsert call.
    pub batch: usize,
    /// Connection timeout, retries and backoff.
    pub connect: ConnectOptions,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions {
            batch: 1024,
            connect: ConnectOptions::default(),
            progress: true,
        }
    }
}

/// What an export or a sink build stored.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SinkReport {
    /// Rows Milvus acknowledged in this run (nothing else is counted).
    pub stored: usize,
    /// Items of this part already in the collection (an earlier, interrupted run stored them); not
    /// encoded again.
    pub already_present: usize,
    /// Items of the catalog that belong to other parts.
    pub other_parts: usize,
    /// Images that could not be read or encoded, or had no file.
    #[serde(skip)]
    pub skipped: Vec<SkippedImage>,
    /// Rows in the collection after this run.
    pub collection_rows: usize,
    /// Time encoding (zero for an export).
    pub encode_time: Duration,
    /// Time in upsert calls (acknowledged).
    pub upsert_time: Duration,
    /// Time flushing, indexing and loading the collection (Milvus builds the IVF index per sealed
    /// segment; this waits until every segment is served through it).
    pub flush_time: Duration,
    /// The record the collection holds.
    pub record: Option<CollectionRecord>,
    /// How the collection is served after the flush: rows through the IVF index, rows brute-forced.
    pub coverage: IndexCoverage,
}

impl SinkReport {
    /// Rows stored per second of upsert calls.
    pub fn upsert_rate(&self) -> f64 {
        self.stored as f64 / self.upsert_time.as_secs_f64().max(1e-9)
    }
}

/// Copies the live rows of `index` (its stored vectors, keys and categories) into the collection at
/// `url`, created with the index's model, dimension, `nlist` and tuned `nprobe` (the IVF index's record;
/// `fallback_nlist` for an index without one, whose `nprobe` is then `nlist`, exact for IVF_FLAT).
/// Rows are upserted by key in batches: a rerun replaces, never duplicates.
pub fn export_to_milvus(
    index: &Index,
    url: &MilvusUrl,
    fallback_nlist: usize,
    options: &SinkOptions,
) -> crate::Result<SinkReport> {
    let (nlist, nprobe) = match index.ann_record() {
        Some(record) => (record.nlist, record.nprobe),
        None => (fallback_nlist, fallback_nlist),
    };
    let record = CollectionRecord::new(index.model().clone(), index.dim(), nlist, nprobe);
    let collection = MilvusCollection::create_or_open(url, &record, &options.connect)?;
    let mut report = SinkReport::default();
    let bar = crate::progress::bar_if(options.progress, index.len(), "to Milvus");
    let (mut keys, mut categories, mut vectors) = (Vec::new(), Vec::new(), Vec::new());
    let batch = options.batch.max(1);
    let flush = |keys: &mut Vec<String>,
                 categories: &mut Vec<String>,
                 vectors: &mut Vec<f32>,
                 report: &mut SinkReport|
     -> crate::Result<()> {
        let started = Instant::now();
        report.stored += collection.upsert(keys, categories, vectors)?;
        report.upsert_time += started.elapsed();
        bar.inc(keys.len() as u64);
        keys.clear();
        categories.clear();
        vectors.clear();
        Ok(())
    };
    for id in 0..index.total_rows() {
        if index.is_deleted(id) {
            continue;
        }
        let Some(vector) = index.vector(id) else {
            continue;
        };
        keys.push(index.key(id)?.to_owned());
        categories.push(index.meta(id)?.category);
        vectors.extend_from_slice(&vector);
        if keys.len() == batch {
            flush(&mut keys, &mut categories, &mut vectors, &mut report)?;
        }
    }
    if !keys.is_empty() {
        flush(&mut keys, &mut categories, &mut vectors, &mut report)?;
    }
    bar.finish_and_clear();
    finish(&collection, &mut report)?;
    Ok(report)
}

fn finish(collection: &MilvusCollection, report: &mut SinkReport) -> crate::Result<()> {
    let started = Instant::now();
    report.coverage = collection.flush_and_load()?;
    report.flush_time = started.elapsed();
    report.collection_rows = collection.count()?;
    report.record = Some(collection.record().clone());
    Ok(())
}

/// Encodes the gallery images of `dataset` that belong to `part` with `encoder` straight into the
/// collection at `url` (created for `encoder`'s model with an IVF_FLAT index of `nlist` lists and a
/// default `nprobe` when it does not exist; an existing one must hold `encoder`'s vectors).
///
/// Several processes with different parts of one catalog may run at once into one collection. A rerun of
/// a part (after a crash, say) skips the items the collection already holds and upserts the rest by key,
/// so no key is ever stored twice.
pub fn build_into_milvus(
    dataset: &Dataset,
    encoder: &dyn Encoder,
    url: &MilvusUrl,
    part: Part,
    nlist: usize,
    nprobe: usize,
    options: &SinkOptions,
) -> crate::Result<SinkReport> {
    let (images, skipped) = catalog_images(dataset);
    let mut report = encode_into_milvus(&images, encoder, url, part, nlist, nprobe, options)?;
    let mut all = skipped
        .into_iter()
        .filter(|s| part.contains(&s.name))
        .collect::<Vec<_>>();
    all.append(&mut report.skipped);
    report.skipped = all;
    Ok(report)
}

/// [`build_into_milvus`] for any list of images.
pub fn encode_into_milvus(
    images: &[CatalogImage],
    encoder: &dyn Encoder,
    url: &MilvusUrl,
    part: Part,
    nlist: usize,
    nprobe: usize,
    options: &SinkOptions,
) -> crate::Result<SinkReport> {
    let record = CollectionRecord::new(encoder.info().clone(), encoder.dim(), nlist, nprobe);
    let collection = MilvusCollection::create_or_open(url, &record, &options.connect)?;
    let mut report = SinkReport::default();
    let mine: Vec<&CatalogImage> = images.iter().filter(|i| part.contains(&i.key)).collect();
    report.other_parts = images.len() - mine.len();
    let bar = crate::progress::bar_if(options.progress, mine.len() as u64, "to Milvus");
    for chunk in mine.chunks(options.batch.max(1)) {
        let wanted: Vec<String> = chunk.iter().map(|i| i.key.clone()).collect();
        let present = collection.existing_keys(&wanted)?;
        let todo: Vec<&CatalogImage> = chunk
            .iter()
            .copied()
            .filter(|i| !present.contains(&i.key))
            .collect();
        report.already_present += chunk.len() - todo.len();
        let started = Instant::now();
        let encoded = encode_batch(encoder, &todo)?;
        report.encode_time += started.elapsed();
        let (mut keys, mut categories, mut vectors) = (Vec::new(), Vec::new(), Vec::new());
        for (image, vector) in todo.iter().zip(encoded) {
            match vector {
                Ok(vector) => {
                    keys.push(image.key.clone());
                    categories.push(image.category.clone());
                    vectors.extend_from_slice(&vector);
                }
                Err(reason) => report.skipped.push(SkippedImage {
                    name: image.key.clone(),
                    path: Some(image.path.clone()),
                    reason,
                }),
            }
        }
        let started = Instant::now();
        report.stored += collection.upsert(&keys, &categories, &vectors)?;
        report.upsert_time += started.elapsed();
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    finish(&collection, &mut report)?;
    Ok(report)
}

/// An evaluation through a Milvus collection beside fiq's own exact search over the same vectors.
#[derive(Debug, Clone, Serialize)]
pub struct MilvusComparison {
    /// Through Milvus at `nprobe`.
    pub milvus: EvalReport,
    /// The `nprobe` used.
    pub nprobe: usize,
    /// The collection's `nlist`.
    pub nlist: usize,
    /// fiq's exact search: over the local index when one was given, else over the gallery vectors
    /// fetched from the collection.
    pub exact: EvalReport,
    /// Where the exact search's vectors came from (`local index PATH` or `fetched from Milvus`).
    pub exact_over: String,
    /// Agreement of Milvus's results with exact search, query by query.
    pub agreement: Agreement,
    /// Time in Milvus searches.
    pub milvus_search_time: Duration,
    /// Every answered query's ranking through Milvus.
    #[serde(skip)]
    pub milvus_rankings: Vec<QueryRanking>,
    /// Every answered query's ranking by exact search.
    #[serde(skip)]
    pub exact_rankings: Vec<QueryRanking>,
}

/// Evaluates `dataset` through `collection` at `nprobe` (`None`: the collection's recorded one) and by
/// fiq's exact search over the same vectors (`local`'s, when given, which must hold `encoder`'s vectors;
/// else each gallery's vectors fetched from the collection), and compares the rankings.
pub fn evaluate_milvus(
    dataset: &Dataset,
    collection: &MilvusCollection,
    encoder: &dyn Encoder,
    options: &EvalOptions,
    nprobe: Option<usize>,
    local: Option<&Index>,
) -> crate::Result<MilvusComparison> {
    let backend = MilvusBackend::new(collection, encoder, dataset, nprobe)?;
    let milvus = evaluate_ranked(dataset, &backend, options)?;
    let milvus_search_time = backend.take_search_time();
    let (exact, exact_over): (RankedEvaluation, String) = match local {
        Some(index) => {
            index.check_model(encoder.info())?;
            let galleries = CategoryGalleries::of(index, dataset)?;
            let mut local = IndexBackend::new(index, TextSource::Encoder(encoder), &galleries);
            local.set_mode(Some(SearchMode::Exact));
            (
                evaluate_ranked(dataset, &local, options)?,
                format!("local index {}", index.path().display()),
            )
        }
        None => {
            let fetched = FetchedExact::new(&backend, collection, dataset)?;
            (
                evaluate_ranked(dataset, &fetched, options)?,
                "the gallery vectors fetched from Milvus".into(),
            )
        }
    };
    let results = |run: &RankedEvaluation| -> Vec<Vec<String>> {
        run.rankings.iter().map(|r| r.results.clone()).collect()
    };
    Ok(MilvusComparison {
        agreement: agreement(&results(&milvus), &results(&exact), &options.ks),
        nprobe: backend.nprobe(),
        nlist: collection.record().nlist,
        milvus: milvus.report,
        exact: exact.report,
        exact_over,
        milvus_search_time,
        milvus_rankings: milvus.rankings,
        exact_rankings: exact.rankings,
    })
}

/// fiq's exact search over each gallery's vectors as fetched from a collection; references and texts
/// as the Milvus backend has them.
struct FetchedExact<'a> {
    inner: &'a MilvusBackend<'a>,
    dim: usize,
    /// Per category: the keys and their vectors, row-major.
    galleries: HashMap<Category, (Vec<String>, Vec<f32>)>,
}

impl<'a> FetchedExact<'a> {
    fn new(
        inner: &'a MilvusBackend<'a>,
        collection: &MilvusCollection,
        dataset: &Dataset,
    ) -> Result<FetchedExact<'a>, MilvusError> {
        let dim = collection.record().dim;
        let mut galleries = HashMap::new();
        for category in dataset.categories() {
            let names: Vec<String> = dataset
                .gallery(category)
                .iter()
                .map(|image| image.name.clone())
                .collect();
            let fetched = collection.fetch(&names)?;
            let mut keys = Vec::with_capacity(fetched.len());
            let mut vectors = Vec::with_capacity(fetched.len() * dim);
            // The split's order, so that ties break the same way on every run.
            for name in names {
                if let Some((_, vector)) = fetched.get(&name) {
                    keys.push(name);
                    vectors.extend_from_slice(vector);
                }
            }
            galleries.insert(category, (keys, vectors));
        }
        Ok(FetchedExact {
            inner,
            dim,
            galleries,
        })
    }
}

impl RetrievalBackend for FetchedExact<'_> {
    fn encode_image(
        &self,
        category: Category,
        name: &str,
        path: Option<&std::path::Path>,
    ) -> Result<Vec<f32>, BackendError> {
        self.inner.encode_image(category, name, path)
    }

    fn encode_texts(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, BackendError> {
        self.inner.encode_texts(texts)
    }

    fn search(
        &self,
        category: Category,
        queries: &[Vec<f32>],
        k: usize,
    ) -> Result<Vec<Vec<String>>, BackendError> {
        let (keys, rows) = self
            .galleries
            .get(&category)
            .ok_or_else(|| format!("no gallery for {category}"))?;
        let flat: Vec<f32> = queries.iter().flatten().copied().collect();
        let blocks = [VectorBlock::F32 { base_id: 0, rows }];
        Ok(exact_search(&flat, self.dim, &blocks, k, &|_| true)
            .into_iter()
            .map(|list| {
                list.into_iter()
                    .map(|n| keys[n.id as usize].clone())
                    .collect()
            })
            .collect())
    }

    fn gallery_unsearchable(&self, category: Category) -> usize {
        self.inner.gallery_unsearchable(category)
    }
}

#[cfg(test)]
mod tests {
    use super::Part;

    #[test]
    fn parts_are_disjoint_and_cover_the_catalog() {
        let keys: Vec<String> = (0..1000).map(|i| format!("B{i:08}")).collect();
        let parts: Vec<Part> = (1..=3).map(|i| Part::new(i, 3).unwrap()).collect();
        for key in &keys {
            assert_eq!(parts.iter().filter(|p| p.contains(key)).count(), 1);
        }
        let sizes: Vec<usize> = parts
            .iter()
            .map(|p| keys.iter().filter(|k| p.contains(k)).count())
            .collect();
        assert!(sizes.iter().all(|&n| n > 250), "{sizes:?}");
        assert_eq!("2/3".parse::<Part>().unwrap(), parts[1]);
        for bad in ["0/2", "3/2", "1", "a/b", "1/0"] {
            assert!(bad.parse::<Part>().is_err(), "{bad}");
        }
    }
}
