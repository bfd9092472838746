//! The one user of the Milvus SDK: a blocking handle on one fiq collection.
//!
//! Every call runs on a small tokio runtime the handle owns and is bounded by the handle's timeout; no
//! SDK type leaves this file. A collection fiq made holds three fields (`key` VARCHAR primary key,
//! `category` VARCHAR, `vector` FLOAT_VECTOR) and, as its description, fiq's [`CollectionRecord`] as
//! JSON (the model that made the vectors, so that a query from another model is refused with the same
//! rule an index applies, [`ModelInfo::accepts`]).

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use fiq_index_format::meta::ModelInfo;
use milvus::client::{Client, ConsistencyLevel};
use milvus::data::FieldColumn;
use milvus::index::{IndexParams, IndexType, MetricType};
use milvus::options::{CreateCollectionOptions, LoadOptions};
use milvus::query::{QueryOptions, SearchOptions};
use milvus::schema::{CollectionSchema, CollectionSchemaBuilder, FieldSchema};
use milvus::value::{Value, ValueVec};
use serde::{Deserialize, Serialize};

use super::{MilvusError, MilvusUrl};

/// The primary key field (fiq's item key).
pub const KEY_FIELD: &str = "key";
/// The category field (`dress`, `shirt`, ...; empty when unknown).
pub const CATEGORY_FIELD: &str = "category";
/// The vector field.
pub const VECTOR_FIELD: &str = "vector";
/// Longest key and category a collection holds (Milvus needs a VARCHAR bound).
pub const MAX_KEY_BYTES: usize = 512;
const INDEX_NAME: &str = "fiq_ivf";

/// What fiq records with a collection it made (as the collection's description, JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionRecord {
    /// Always `"fiq"`: tells a fiq collection from any other.
    pub made_by: String,
    /// The record's version (1).
    pub format: u32,
    /// The model whose vectors the collection holds.
    pub model: ModelInfo,
    /// Vector dimension.
    pub dim: usize,
    /// IVF lists of the collection's index (`IVF_FLAT`, inner product).
    pub nlist: usize,
    /// Lists probed per query by default (fiq's tuned nprobe when the collection was exported from a
    /// tuned index).
    pub nprobe: usize,
}

impl CollectionRecord {
    /// A record for vectors of `model` (dimension `dim`) in an IVF index of `nlist` lists.
    pub fn new(model: ModelInfo, dim: usize, nlist: usize, nprobe: usize) -> CollectionRecord {
        CollectionRecord {
            made_by: "fiq".into(),
            format: 1,
            model,
            dim,
            nlist: nlist.max(1),
            nprobe: nprobe.clamp(1, nlist.max(1)),
        }
    }
}

/// How a handle connects and retries.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Bound on connecting and on each call (searches, inserts, index builds wait at most this long).
    pub timeout: Duration,
    /// Attempts of one upsert batch before it is reported as not stored.
    pub attempts: u32,
    /// The first retry's wait; doubled at every further attempt.
    pub backoff: Duration,
    /// How fresh the rows a search sees must be. Lookups by key (counting, fetching vectors, the keys a
    /// rerun of a part skips) are always [`SearchConsistency::Strong`]: they decide what is written.
    pub search_consistency: SearchConsistency,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            timeout: Duration::from_secs(60),
            attempts: 5,
            backoff: Duration::from_millis(200),
            search_consistency: SearchConsistency::Strong,
        }
    }
}

/// Milvus's consistency level for searches: which acknowledged rows a search is guaranteed to see.
///
/// Strong waits for the query nodes to catch up with every write acknowledged before the search (about
/// one time tick, ~200 ms on Milvus 2.3's defaults, per search); Bounded accepts a few seconds of
/// staleness and answers at once. fiq defaults to Strong so that what a sink just acknowledged is
/// searched (evaluation after a build); a server answering queries over a catalog wants Bounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchConsistency {
    /// Every write acknowledged before the search.
    #[default]
    Strong,
    /// Every write of this client (this handle).
    Session,
    /// Writes older than Milvus's staleness bound (5 s by default).
    Bounded,
    /// No guarantee: whatever the query nodes hold.
    Eventually,
}

impl SearchConsistency {
    fn level(self) -> ConsistencyLevel {
        match self {
            SearchConsistency::Strong => ConsistencyLevel::Strong,
            SearchConsistency::Session => ConsistencyLevel::Session,
            SearchConsistency::Bounded => ConsistencyLevel::Bounded,
            SearchConsistency::Eventually => ConsistencyLevel::Eventually,
        }
    }
}

/// How the query nodes serve a collection's persisted segments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IndexCoverage {
    /// Segments the query nodes hold.
    pub segments: usize,
    /// Their rows.
    pub rows: usize,
    /// Rows served through the IVF index.
    pub indexed_rows: usize,
    /// Rows of segments too small for Milvus to index (under 1,024 rows), searched exhaustively.
    pub brute_force_rows: usize,
    /// Segments the query nodes serve without their index yet (plus one when rows of the collection
    /// are not on a query node yet).
    pub pending_segments: usize,
}

/// One search result from Milvus.
#[derive(Debug, Clone, PartialEq)]
pub struct MilvusHit {
    /// The item's key.
    pub key: String,
    /// Inner product with the query (cosine similarity: fiq's vectors are unit length).
    pub score: f32,
    /// The item's category.
    pub category: String,
}

/// Which items a search may return, as a Milvus boolean expression.
#[derive(Debug, Clone, PartialEq)]
pub enum MilvusFilter {
    /// Items of this category: `category == "dress"`.
    Category(String),
    /// Items with these keys: `key in ["a", "b"]`.
    Keys(Vec<String>),
}

impl MilvusFilter {
    /// The Milvus expression (strings escaped).
    pub fn expression(&self) -> String {
        match self {
            MilvusFilter::Category(category) => {
                format!("{CATEGORY_FIELD} == {}", quote(category))
            }
            MilvusFilter::Keys(keys) => key_list(keys),
        }
    }
}

/// A string literal of Milvus's expression language.
fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

fn key_list(keys: &[String]) -> String {
    let quoted: Vec<String> = keys.iter().map(|k| quote(k)).collect();
    format!("{KEY_FIELD} in [{}]", quoted.join(", "))
}

/// An open fiq collection on a Milvus server. Calls block; share it across threads by reference.
pub struct MilvusCollection {
    url: MilvusUrl,
    options: ConnectOptions,
    record: CollectionRecord,
    client: Client,
    schema: CollectionSchema,
    runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for MilvusCollection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MilvusCollection")
            .field("url", &self.url.to_string())
            .field("record", &self.record)
            .finish()
    }
}

/// Milvus's SDK error as one line (its `Display` is `Debug`; a gRPC status has a message).
fn describe(error: &milvus::error::Error) -> String {
    match error {
        milvus::error::Error::Grpc(status) => {
            format!("{:?}: {}", status.code(), status.message())
        }
        milvus::error::Error::Server(code, reason) => format!("{code:?}: {reason}"),
        milvus::error::Error::Communication(e) => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        }
        other => other.to_string(),
    }
}

fn schema_for(collection: &str, record: &CollectionRecord) -> Result<CollectionSchema, String> {
    let description = serde_json::to_string(record).map_err(|e| e.to_string())?;
    CollectionSchemaBuilder::new(collection, &description)
        .add_field(FieldSchema::new_primary_varchar(
            KEY_FIELD,
            "fiq's item key",
            false,
            MAX_KEY_BYTES as i32,
        ))
        .add_field(FieldSchema::new_varchar(
            CATEGORY_FIELD,
            "fiq's item category",
            MAX_KEY_BYTES as i32,
        ))
        .add_field(FieldSchema::new_float_vector(
            VECTOR_FIELD,
            "unit vector",
            record.dim as i64,
        ))
        .build()
        .map_err(|e| describe(&e))
}

impl MilvusCollection {
    fn runtime() -> Result<tokio::runtime::Runtime, MilvusError> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("fiq-milvus")
            .enable_all()
            .build()
            .map_err(|e| MilvusError::Runtime(e.to_string()))
    }

    fn connect_client(
        runtime: &tokio::runtime::Runtime,
        url: &MilvusUrl,
        options: &ConnectOptions,
    ) -> Result<Client, MilvusError> {
        let endpoint = url.endpoint();
        let connecting = Client::with_timeout(endpoint.clone(), options.timeout, None, None);
        match runtime.block_on(async { tokio::time::timeout(options.timeout, connecting).await }) {
            Err(_) => Err(MilvusError::Timeout {
                endpoint,
                operation: "connecting".into(),
                after: options.timeout,
            }),
            Ok(Err(error)) => Err(MilvusError::Connect {
                endpoint,
                reason: describe(&error),
            }),
            Ok(Ok(client)) => Ok(client),
        }
    }

    /// Runs one SDK call under the timeout.
    fn call<T, F>(&self, operation: &str, future: F) -> Result<T, MilvusError>
    where
        F: Future<Output = Result<T, milvus::error::Error>>,
    {
        Self::call_on(&self.runtime, &self.url, &self.options, operation, future)
    }

    fn call_on<T, F>(
        runtime: &tokio::runtime::Runtime,
        url: &MilvusUrl,
        options: &ConnectOptions,
        operation: &str,
        future: F,
    ) -> Result<T, MilvusError>
    where
        F: Future<Output = Result<T, milvus::error::Error>>,
    {
        match runtime.block_on(async { tokio::time::timeout(options.timeout, future).await }) {
            Err(_) => Err(MilvusError::Timeout {
                endpoint: url.endpoint(),
                operation: format!("{operation} ({})", url.collection()),
                after: options.timeout,
            }),
            Ok(Err(error)) => Err(classify(url, operation, &error)),
            Ok(Ok(value)) => Ok(value),
        }
    }

    /// A runtime and a connected client for `url`'s server, and whether it holds the collection.
    fn connect_and_probe(
        url: &MilvusUrl,
        options: &ConnectOptions,
    ) -> Result<(tokio::runtime::Runtime, Client, bool), MilvusError> {
        let runtime = Self::runtime()?;
        let client = Self::connect_client(&runtime, url, options)?;
        let exists = Self::call_on(
            &runtime,
            url,
            options,
            "checking the collection",
            client.has_collection(url.collection()),
        )?;
        Ok((runtime, client, exists))
    }

    /// Opens the fiq collection at `url`: fails with [`MilvusError::MissingCollection`] when there is
    /// none, [`MilvusError::NotFiq`] when it was not made by fiq.
    pub fn open(
        url: &MilvusUrl,
        options: &ConnectOptions,
    ) -> Result<MilvusCollection, MilvusError> {
        let (runtime, client, exists) = Self::connect_and_probe(url, options)?;
        if !exists {
            return Err(MilvusError::MissingCollection {
                collection: url.collection().to_owned(),
                endpoint: url.endpoint(),
            });
        }
        let described = Self::call_on(
            &runtime,
            url,
            options,
            "describing the collection",
            client.describe_collection(url.collection()),
        )?;
        let record: CollectionRecord = serde_json::from_str(&described.schema.description)
            .ok()
            .filter(|r: &CollectionRecord| r.made_by == "fiq")
            .ok_or_else(|| MilvusError::NotFiq {
                collection: url.to_string(),
                reason: format!(
                    "its description is not fiq's record: {:?}",
                    described
                        .schema
                        .description
                        .chars()
                        .take(200)
                        .collect::<String>()
                ),
            })?;
        let schema =
            schema_for(url.collection(), &record).map_err(|reason| MilvusError::Server {
                operation: "describing the collection".into(),
                collection: url.to_string(),
                reason,
            })?;
        Ok(MilvusCollection {
            url: url.clone(),
            options: options.clone(),
            record,
            client,
            schema,
            runtime,
        })
    }

    /// An opened collection, checked to hold vectors of `record`'s model and dimension, and loaded.
    fn ready_for(
        collection: MilvusCollection,
        record: &CollectionRecord,
    ) -> Result<MilvusCollection, MilvusError> {
        let collection = collection.checked(&record.model, record.dim)?;
        collection.ensure_loaded()?;
        Ok(collection)
    }

    /// Opens the collection at `url`, or creates it with `record` (schema, description, an `IVF_FLAT`
    /// inner-product index of `record.nlist` lists) when there is none. An existing collection must hold
    /// vectors of `record.model` ([`MilvusError::ModelMismatch`]) and `record.dim`. Several processes
    /// may call this at once: the one whose create loses the race opens the winner's collection.
    pub fn create_or_open(
        url: &MilvusUrl,
        record: &CollectionRecord,
        options: &ConnectOptions,
    ) -> Result<MilvusCollection, MilvusError> {
        match MilvusCollection::open(url, options) {
            Ok(collection) => return Self::ready_for(collection, record),
            Err(MilvusError::MissingCollection { .. }) => {}
            Err(other) => return Err(other),
        }
        let runtime = Self::runtime()?;
        let client = Self::connect_client(&runtime, url, options)?;
        let server = |reason: String| MilvusError::Server {
            operation: "creating the collection".into(),
            collection: url.to_string(),
            reason,
        };
        let schema = schema_for(url.collection(), record).map_err(server)?;
        let created = Self::call_on(
            &runtime,
            url,
            options,
            "creating the collection",
            client.create_collection(
                schema.clone(),
                Some(CreateCollectionOptions::with_consistency_level(
                    ConsistencyLevel::Strong,
                )),
            ),
        );
        if let Err(error) = created {
            // Another part created it first.
            let collection = MilvusCollection::open(url, options).map_err(|_| error)?;
            return Self::ready_for(collection, record);
        }
        let params = IndexParams::new(
            INDEX_NAME.into(),
            IndexType::IvfFlat,
            MetricType::IP,
            HashMap::from([("nlist".to_string(), record.nlist.to_string())]),
        );
        let indexed = Self::call_on(
            &runtime,
            url,
            options,
            "creating the IVF index",
            client.create_index(url.collection(), VECTOR_FIELD, params),
        );
        if let Err(error) = indexed {
            // Racing creators: the other's index stands.
            let listed = Self::call_on(
                &runtime,
                url,
                options,
                "listing the indexes",
                client.describe_index(url.collection(), VECTOR_FIELD),
            );
            if !listed.is_ok_and(|infos| !infos.is_empty()) {
                return Err(error);
            }
        }
        let collection = MilvusCollection {
            url: url.clone(),
            options: options.clone(),
            record: record.clone(),
            client,
            schema,
            runtime,
        };
        collection.ensure_loaded()?;
        Ok(collection)
    }

    /// Loads the collection for queries (Milvus answers no query, not even "which keys are there",
    /// before): retried until the timeout, since a collection another process just created has no
    /// index for a moment, and Milvus loads nothing without one.
    pub fn ensure_loaded(&self) -> Result<(), MilvusError> {
        let started = std::time::Instant::now();
        loop {
            let loaded = self.call(
                "loading the collection",
                self.client
                    .load_collection(self.url.collection(), Some(LoadOptions::new())),
            );
            match loaded {
                Ok(()) => return Ok(()),
                Err(error @ MilvusError::MissingCollection { .. }) => return Err(error),
                Err(error) if started.elapsed() >= self.options.timeout => return Err(error),
                Err(_) => std::thread::sleep(Duration::from_millis(300)),
            }
        }
    }

    /// This collection, if it holds vectors `model` may search (the one rule, [`ModelInfo::accepts`])
    /// of dimension `dim`.
    pub fn checked(self, model: &ModelInfo, dim: usize) -> Result<MilvusCollection, MilvusError> {
        self.check_model(model)?;
        if self.record.dim != dim {
            return Err(MilvusError::Dimension {
                collection: self.url.to_string(),
                expected: self.record.dim,
                actual: dim,
            });
        }
        Ok(self)
    }

    /// Refuses vectors or queries of a model whose space is not the collection's.
    pub fn check_model(&self, model: &ModelInfo) -> Result<(), MilvusError> {
        if self.record.model.accepts(model) {
            Ok(())
        } else {
            Err(MilvusError::ModelMismatch {
                collection: self.url.to_string(),
                stored: format!(
                    "{} (fingerprint {})",
                    self.record.model.name, self.record.model.fingerprint
                ),
                query: format!("{} (fingerprint {})", model.name, model.fingerprint),
            })
        }
    }

    /// The collection's address.
    pub fn url(&self) -> &MilvusUrl {
        &self.url
    }

    /// What fiq recorded with the collection.
    pub fn record(&self) -> &CollectionRecord {
        &self.record
    }

    /// Inserts or replaces rows by key: `keys[i]` of `categories[i]` with vector row `i` of `vectors`
    /// (row-major, `dim` per row). Retried with exponential backoff; returns the rows Milvus
    /// acknowledged, and fails ([`MilvusError::Unacknowledged`]) when a batch is still refused after
    /// the last attempt. An upsert is idempotent, so retrying a batch never duplicates a key.
    pub fn upsert(
        &self,
        keys: &[String],
        categories: &[String],
        vectors: &[f32],
    ) -> Result<usize, MilvusError> {
        let dim = self.record.dim;
        if keys.len() != categories.len() || vectors.len() != keys.len() * dim {
            return Err(MilvusError::Dimension {
                collection: self.url.to_string(),
                expected: keys.len() * dim,
                actual: vectors.len(),
            });
        }
        if keys.is_empty() {
            return Ok(0);
        }
        if let Some(key) = keys
            .iter()
            .chain(categories)
            .find(|k| k.len() > MAX_KEY_BYTES)
        {
            return Err(MilvusError::TooLong {
                collection: self.url.to_string(),
                value: key.chars().take(64).collect(),
                limit: MAX_KEY_BYTES,
            });
        }
        let field = |name: &str| {
            self.schema
                .get_field(name)
                .expect("the schema fiq built has its three fields")
        };
        let mut wait = self.options.backoff;
        let mut last_error = String::new();
        for attempt in 1..=self.options.attempts.max(1) {
            let columns = vec![
                FieldColumn::new(field(KEY_FIELD), keys.to_vec()),
                FieldColumn::new(field(CATEGORY_FIELD), categories.to_vec()),
                FieldColumn::new(field(VECTOR_FIELD), vectors.to_vec()),
            ];
            let result = self.call(
                "upserting rows",
                self.client.upsert(
                    self.url.collection(),
                    columns,
                    None::<milvus::mutate::UpsertOptions>,
                ),
            );
            match result {
                Ok(mutation) if mutation.err_index.is_empty() => {
                    let acknowledged = mutation.upsert_cnt as usize;
                    if acknowledged == keys.len() {
                        return Ok(acknowledged);
                    }
                    last_error =
                        format!("Milvus acknowledged {acknowledged} of {} rows", keys.len());
                }
                Ok(mutation) => {
                    last_error = format!(
                        "Milvus refused {} of {} rows",
                        mutation.err_index.len(),
                        keys.len()
                    );
                }
                // A collection that is gone or a model check will not get better by retrying.
                Err(error @ MilvusError::MissingCollection { .. }) => return Err(error),
                Err(error) => last_error = error.to_string(),
            }
            if attempt < self.options.attempts {
                std::thread::sleep(wait);
                wait *= 2;
            }
        }
        Err(MilvusError::Unacknowledged {
            collection: self.url.to_string(),
            rows: keys.len(),
            attempts: self.options.attempts.max(1),
            reason: last_error,
        })
    }

    /// Seals what was inserted, loads the collection for search (a loaded one stays so) and waits until
    /// Milvus serves every sealed segment through its IVF index; returns that coverage.
    pub fn flush_and_load(&self) -> Result<IndexCoverage, MilvusError> {
        // A server that has just started answers before its data node has registered: retried.
        let started = std::time::Instant::now();
        loop {
            match self.call("flushing", self.client.flush(self.url.collection())) {
                Ok(()) => break,
                Err(error @ MilvusError::MissingCollection { .. }) => return Err(error),
                Err(error) if started.elapsed() >= self.options.timeout => return Err(error),
                Err(_) => std::thread::sleep(Duration::from_millis(500)),
            }
        }
        self.ensure_loaded()?;
        // Milvus seals, persists and indexes segments asynchronously, and hands indexed segments to the
        // query node as they are built. Wait, within the timeout, until every persisted segment large
        // enough to be indexed is served with its index, so that what is searched next is searched
        // through the IVF index.
        loop {
            let coverage = self.index_coverage()?;
            if coverage.pending_segments == 0 {
                return Ok(coverage);
            }
            if started.elapsed() >= self.options.timeout {
                return Err(MilvusError::Timeout {
                    endpoint: self.url.endpoint(),
                    operation: format!(
                        "indexing and loading {} segments ({})",
                        coverage.pending_segments,
                        self.url.collection()
                    ),
                    after: self.options.timeout,
                });
            }
            std::thread::sleep(Duration::from_millis(1000));
        }
    }

    /// How much of the collection the query nodes serve through the IVF index now.
    ///
    /// Judged from what the query nodes hold, not from the persisted segments: Milvus compacts segments
    /// (an upsert is a delete and an insert, so every segment a sink writes gets compacted) and keeps
    /// serving the indexed originals until the compacted segment's index is built.
    pub fn index_coverage(&self) -> Result<IndexCoverage, MilvusError> {
        use milvus::proto::common::SegmentState;
        let loaded = self.call(
            "listing loaded segments",
            self.client.list_loaded_segments(self.url.collection()),
        )?;
        let mut coverage = IndexCoverage::default();
        for segment in &loaded {
            let rows = segment.num_rows.max(0) as usize;
            let indexed = segment.index_id != 0 || !segment.index_name.is_empty();
            coverage.segments += 1;
            coverage.rows += rows;
            if indexed {
                coverage.indexed_rows += rows;
            } else if rows < 1024 && segment.state != SegmentState::Growing {
                // Milvus indexes no segment under 1,024 rows: searched by brute force.
                coverage.brute_force_rows += rows;
            } else {
                coverage.pending_segments += 1;
            }
        }
        // Rows not yet on a query node at all (still being loaded).
        if coverage.rows < self.count()? {
            coverage.pending_segments += 1;
        }
        Ok(coverage)
    }

    /// Rows in the collection (every key once: upserts replace).
    pub fn count(&self) -> Result<usize, MilvusError> {
        let options = QueryOptions::new()
            .output_fields(vec!["count(*)".to_string()])
            .consistency_level(ConsistencyLevel::Strong as i32);
        let columns = self.call(
            "counting rows",
            self.client.query(
                self.url.collection(),
                &format!("{KEY_FIELD} != \"\""),
                &options,
            ),
        )?;
        match columns.first().map(|c| &c.value) {
            Some(ValueVec::Long(counts)) => Ok(counts.first().copied().unwrap_or(0) as usize),
            _ => Err(self.unexpected("counting rows", "no count(*) in the answer")),
        }
    }

    fn unexpected(&self, operation: &str, reason: &str) -> MilvusError {
        MilvusError::Server {
            operation: operation.into(),
            collection: self.url.to_string(),
            reason: reason.into(),
        }
    }

    /// For each query (row-major, `dim` per row), the `k` best items allowed by `filter`, probing
    /// `nprobe` lists (`None`: the recorded nprobe).
    pub fn search(
        &self,
        queries: &[f32],
        k: usize,
        nprobe: Option<usize>,
        filter: Option<&MilvusFilter>,
    ) -> Result<Vec<Vec<MilvusHit>>, MilvusError> {
        let dim = self.record.dim;
        if queries.len() % dim != 0 {
            return Err(MilvusError::Dimension {
                collection: self.url.to_string(),
                expected: dim,
                actual: queries.len() % dim,
            });
        }
        if queries.is_empty() || k == 0 {
            return Ok(vec![Vec::new(); queries.len() / dim]);
        }
        let nprobe = nprobe.unwrap_or(self.record.nprobe).max(1);
        let data: Vec<Value<'_>> = queries
            .chunks(dim)
            .map(|row| Value::FloatArray(row.into()))
            .collect();
        let mut options = SearchOptions::new()
            .limit(k)
            .anns_field(vec![VECTOR_FIELD.to_string()])
            .output_fields(vec![CATEGORY_FIELD.to_string()])
            .add_param("metric_type", "IP")
            .add_param("nprobe", nprobe.to_string())
            .consistency_level(self.options.search_consistency.level() as i32);
        if let Some(filter) = filter {
            options = options.filter(filter.expression());
        }
        let results = self.call(
            "searching",
            self.client
                .search(self.url.collection(), data, Some(options)),
        )?;
        if results.len() != queries.len() / dim {
            return Err(self.unexpected(
                "searching",
                &format!(
                    "{} result lists for {} queries",
                    results.len(),
                    queries.len() / dim
                ),
            ));
        }
        results
            .into_iter()
            .map(|result| {
                let categories = result
                    .field
                    .iter()
                    .find(|c| c.name == CATEGORY_FIELD)
                    .map(|c| match &c.value {
                        ValueVec::String(values) => values.clone(),
                        _ => Vec::new(),
                    })
                    .unwrap_or_default();
                result
                    .id
                    .iter()
                    .zip(&result.score)
                    .enumerate()
                    .map(|(i, (id, &score))| match id {
                        Value::String(key) => Ok(MilvusHit {
                            key: key.to_string(),
                            score,
                            category: categories.get(i).cloned().unwrap_or_default(),
                        }),
                        _ => Err(self.unexpected("searching", "a result without a string key")),
                    })
                    .collect()
            })
            .collect()
    }

    /// The stored vectors and categories of `keys` (absent keys are left out).
    pub fn fetch(
        &self,
        keys: &[String],
    ) -> Result<HashMap<String, (String, Vec<f32>)>, MilvusError> {
        let mut found = HashMap::new();
        let dim = self.record.dim;
        for chunk in keys.chunks(1024) {
            let options = QueryOptions::new()
                .output_fields(vec![
                    KEY_FIELD.to_string(),
                    CATEGORY_FIELD.to_string(),
                    VECTOR_FIELD.to_string(),
                ])
                .consistency_level(ConsistencyLevel::Strong as i32);
            let columns = self.call(
                "fetching vectors",
                self.client
                    .query(self.url.collection(), &key_list(chunk), &options),
            )?;
            let column = |name: &str| columns.iter().find(|c| c.name == name).map(|c| &c.value);
            let (Some(ValueVec::String(k)), Some(ValueVec::String(c)), Some(ValueVec::Float(v))) = (
                column(KEY_FIELD),
                column(CATEGORY_FIELD),
                column(VECTOR_FIELD),
            ) else {
                if columns.iter().all(|c| c.len() == 0) {
                    continue;
                }
                return Err(self.unexpected("fetching vectors", "missing output fields"));
            };
            if v.len() != k.len() * dim || c.len() != k.len() {
                return Err(self.unexpected("fetching vectors", "fields of different lengths"));
            }
            for (i, key) in k.iter().enumerate() {
                found.insert(
                    key.clone(),
                    (c[i].clone(), v[i * dim..(i + 1) * dim].to_vec()),
                );
            }
        }
        Ok(found)
    }

    /// Which of `keys` the collection holds (a rerun of a part skips them).
    pub fn existing_keys(
        &self,
        keys: &[String],
    ) -> Result<std::collections::HashSet<String>, MilvusError> {
        let mut found = std::collections::HashSet::new();
        for chunk in keys.chunks(1024) {
            let options = QueryOptions::new()
                .output_fields(vec![KEY_FIELD.to_string()])
                .consistency_level(ConsistencyLevel::Strong as i32);
            let columns = self.call(
                "looking up keys",
                self.client
                    .query(self.url.collection(), &key_list(chunk), &options),
            )?;
            if let Some(ValueVec::String(present)) = columns
                .into_iter()
                .find(|c| c.name == KEY_FIELD)
                .map(|c| c.value)
            {
                found.extend(present);
            }
        }
        Ok(found)
    }

    /// Every key of `category` in the collection.
    pub fn keys_of_category(&self, category: &str) -> Result<Vec<String>, MilvusError> {
        let options = QueryOptions::new()
            .output_fields(vec![KEY_FIELD.to_string()])
            .limit(16_384)
            .consistency_level(ConsistencyLevel::Strong as i32);
        let columns = self.call(
            "listing keys",
            self.client.query(
                self.url.collection(),
                &MilvusFilter::Category(category.to_owned()).expression(),
                &options,
            ),
        )?;
        match columns
            .into_iter()
            .find(|c| c.name == KEY_FIELD)
            .map(|c| c.value)
        {
            Some(ValueVec::String(keys)) => Ok(keys),
            _ => Ok(Vec::new()),
        }
    }

    /// Drops the collection (tests and benchmarks start clean with it).
    pub fn drop_collection(url: &MilvusUrl, options: &ConnectOptions) -> Result<(), MilvusError> {
        let (runtime, client, exists) = Self::connect_and_probe(url, options)?;
        if exists {
            Self::call_on(
                &runtime,
                url,
                options,
                "dropping the collection",
                client.drop_collection(url.collection()),
            )?;
        }
        Ok(())
    }
}

/// An SDK error as fiq's: a missing collection by name, the rest with the operation attempted.
fn classify(url: &MilvusUrl, operation: &str, error: &milvus::error::Error) -> MilvusError {
    let reason = describe(error);
    let lower = reason.to_lowercase();
    if lower.contains("collection not found")
        || lower.contains("can't find collection")
        || lower.contains("collection not exist")
    {
        return MilvusError::MissingCollection {
            collection: url.collection().to_owned(),
            endpoint: url.endpoint(),
        };
    }
    if matches!(error, milvus::error::Error::Communication(_))
        || lower.contains("transport error")
        || lower.contains("connection refused")
    {
        return MilvusError::Connect {
            endpoint: url.endpoint(),
            reason: format!("{operation}: {reason}"),
        };
    }
    MilvusError::Server {
        operation: operation.into(),
        collection: url.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_quote_their_strings() {
        assert_eq!(
            MilvusFilter::Category("dress".into()).expression(),
            r#"category == "dress""#
        );
        assert_eq!(
            MilvusFilter::Keys(vec!["a".into(), "b\"c".into()]).expression(),
            r#"key in ["a", "b\"c"]"#
        );
    }

    #[test]
    fn records_round_trip_through_the_description() {
        let record = CollectionRecord::new(ModelInfo::default(), 4, 8, 100);
        assert_eq!(record.nprobe, 8);
        assert!(schema_for("c", &record).is_ok());
        let back: CollectionRecord =
            serde_json::from_str(&serde_json::to_string(&record).unwrap()).unwrap();
        assert_eq!(back, record);
    }
}
