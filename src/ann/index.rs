//! [`AnnIndex`]: an IVF index over the rows of a [`VectorSource`], built, written, opened (memory-mapped)
//! and searched, exactly or approximately, through one API.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::build_info::{check_cpu, faiss_simd_level};
use super::faiss_ffi::RawIndex;
use super::list_check::{self, ListChecks};
use super::params::{AnnParams, AnnRecord, ANN_FORMAT_VERSION, METRIC_INNER_PRODUCT};
use super::progress::Progress;
use super::sample::sample_ids;
use super::source::VectorSource;
use super::AnnError;
use crate::search::{IdSet, Neighbor, VectorBlock};
use crate::vector::dot;

/// An IVF index (FAISS) over the rows of a vector store. It holds the coarse quantizer and the inverted
/// lists; for compressed codes it re-scores candidates with the store's exact rows, so it never keeps a
/// second full-precision copy of the catalog.
pub struct AnnIndex {
    raw: RawIndex,
    record: AnnRecord,
    /// Per-list checksums, checked on first probe (records of format 3 and later).
    lists: Option<ListChecks>,
    /// Where the FAISS file lives (for messages); `None` before it is written.
    path: Option<PathBuf>,
}

impl std::fmt::Debug for AnnIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnnIndex")
            .field("record", &self.record)
            .field("path", &self.path)
            .finish()
    }
}

impl AnnIndex {
    /// Trains an IVF index on a seeded sample of `source` and adds every row in batches.
    ///
    /// ```
    /// use fiq::ann::{AnnIndex, AnnParams, Matrix, VectorSource};
    /// # fn main() -> Result<(), fiq::ann::AnnError> {
    /// let rows: Vec<Vec<f32>> = (0..400).map(|i| vec![(i as f32).sin(), (i as f32).cos(), 0.5]).collect();
    /// let store = Matrix::from_rows_normalized(3, &rows)?;
    /// let ann = AnnIndex::build(&store, &AnnParams::ivf_flat(4), &())?;
    /// let hits = ann.search(&store, store.row(17), 5, Some(4))?;
    /// assert_eq!(hits[0].id, 17);
    /// # Ok(()) }
    /// ```
    pub fn build(
        source: &dyn VectorSource,
        params: &AnnParams,
        progress: &dyn Progress,
    ) -> Result<AnnIndex, AnnError> {
        if let Some(device) = params.gpu_device {
            #[cfg(feature = "faiss-gpu")]
            return AnnIndex::build_on_gpu(source, params, device, progress);
            #[cfg(not(feature = "faiss-gpu"))]
            return Err(AnnError::invalid(
                "gpu_device",
                device,
                "this fiq was built without the `faiss-gpu` feature (cargo build --features faiss-gpu, needs the CUDA toolkit)",
            ));
        }
        let (mut raw, plan) = BuildPlan::new(source, params)?;
        fill(&mut raw, source, params, &plan, progress)?;
        Ok(plan.finish(raw, params))
    }

    /// [`AnnIndex::build`] with k-means training and adding on CUDA device `device`; the index returns
    /// to the CPU when done and is written, opened and searched like any other.
    ///
    /// Compiles and links with the `faiss-gpu` feature (`tools/device/bundle.sh faiss-gpu`); not yet run
    /// on a GPU.
    #[cfg(feature = "faiss-gpu")]
    pub fn build_on_gpu(
        source: &dyn VectorSource,
        params: &AnnParams,
        device: usize,
        progress: &dyn Progress,
    ) -> Result<AnnIndex, AnnError> {
        use super::faiss_ffi::gpu::{device_count, GpuResources};
        let devices = device_count()?;
        if device >= devices {
            return Err(AnnError::invalid("device", device, "no such CUDA device"));
        }
        let (cpu, plan) = BuildPlan::new(source, params)?;
        let resources = GpuResources::new()?;
        let mut on_device = cpu.to_gpu(&resources, device)?;
        fill(&mut on_device, source, params, &plan, progress)?;
        let raw = on_device.to_cpu()?;
        drop(on_device);
        Ok(plan.finish(raw, params))
    }

    /// Writes the FAISS file to `path` (durably: fsynced) and completes [`AnnIndex::record`] with where
    /// its lists start. The caller's commit makes the file part of an index (see
    /// `fiq::index::IndexWriter::build_ann`).
    pub fn write_file(&mut self, path: &Path) -> Result<(), AnnError> {
        self.raw.write(path)?;
        let file = File::open(path).map_err(|e| AnnError::io(path, e))?;
        file.sync_all().map_err(|e| AnnError::io(path, e))?;
        let len = file.metadata().map_err(|e| AnnError::io(path, e))?.len();
        let code_size = self.raw.code_size()?;
        let (_, payload) = self.lists_payload(code_size).unwrap_or((0, u64::MAX));
        self.record.code_size = code_size;
        self.record.lists_offset =
            len.checked_sub(payload)
                .ok_or_else(|| AnnError::CorruptFile {
                    path: path.to_path_buf(),
                    problem: format!("FAISS wrote {len} bytes, fewer than its lists' {payload}"),
                })?;
        let map = list_check::map(path)?;
        let (head, lists) = list_check::checksums(
            &map,
            self.record.lists_offset,
            &self.raw.list_sizes(),
            code_size,
        );
        self.record.format = ANN_FORMAT_VERSION;
        self.record.head_crc32 = head;
        self.record.list_crc32 = lists;
        self.path = Some(path.to_path_buf());
        Ok(())
    }

    /// Vectors in all inverted lists, and their bytes (each vector's code and its 8-byte id); `None`
    /// when the sizes FAISS read overflow (a damaged file: they are not checked by FAISS).
    fn lists_payload(&self, code_size: usize) -> Option<(usize, u64)> {
        let vectors = self
            .raw
            .list_sizes()
            .iter()
            .try_fold(0usize, |sum, &n| sum.checked_add(n))?;
        let bytes = (vectors as u64).checked_mul((code_size as u64).checked_add(8)?)?;
        Some((vectors, bytes))
    }

    /// Opens the FAISS file at `path` that `record` describes, `expected_len` bytes long (as the index
    /// manifest records it), serving its inverted lists from a memory map.
    ///
    /// FAISS reads the headers and the coarse centroids (`nlist * dim` floats) and only the sizes of the
    /// lists; it maps the file and each list is paged in by the first search that probes it. So opening
    /// costs O(nlist * dim) whatever the catalog size, and resident memory after open does not grow with
    /// it. Before anything touches the map, the list sizes FAISS read are checked against the record and
    /// the file length, so a damaged size cannot send a search outside the file.
    ///
    /// The CRC32 of the whole file is the index's `verify`'s job, not open's: reading every byte at open
    /// is what mapping avoids. The file must not be modified while open; fiq never rewrites a committed
    /// file.
    pub fn open(path: &Path, record: AnnRecord, expected_len: u64) -> Result<AnnIndex, AnnError> {
        check_cpu()?;
        let corrupt = |problem: String| AnnError::CorruptFile {
            path: path.to_path_buf(),
            problem,
        };
        let actual = fs::metadata(path).map_err(|e| AnnError::io(path, e))?.len();
        if actual != expected_len {
            return Err(corrupt(format!(
                "length {actual} bytes, the manifest records {expected_len}"
            )));
        }
        // Format 3: FAISS parses only header bytes whose checksum matched.
        let map = match record.format >= 3 {
            true => {
                let map = list_check::map(path)?;
                list_check::check_head(path, &map, record.lists_offset, record.head_crc32)?;
                Some(map)
            }
            false => None,
        };
        let raw = RawIndex::read_mapped(path)?;
        let found = (raw.dim(), raw.len(), raw.nlist());
        if found != (record.dim, record.len, Some(record.nlist)) {
            return Err(corrupt(format!(
                "FAISS index has dim {}, {} vectors, nlist {:?}; the record says dim {}, {} vectors, nlist {}",
                found.0, found.1, found.2, record.dim, record.len, record.nlist
            )));
        }
        let mut ann = AnnIndex {
            raw,
            record,
            lists: None,
            path: Some(path.to_path_buf()),
        };
        let code_size = ann.raw.code_size()?;
        let Some((listed, payload)) = ann.lists_payload(code_size) else {
            return Err(corrupt(
                "the inverted lists' sizes overflow a 64-bit count".to_owned(),
            ));
        };
        if code_size != ann.record.code_size
            || listed != ann.record.len
            || actual.checked_sub(payload) != Some(ann.record.lists_offset)
        {
            return Err(corrupt(format!(
                "the inverted lists hold {listed} vectors of {code_size} bytes ({payload} bytes with ids) \
                 in a file of {actual} bytes; the record says {} vectors of {} bytes from offset {}",
                ann.record.len, ann.record.code_size, ann.record.lists_offset
            )));
        }
        if let Some(map) = map {
            ann.lists = Some(ListChecks::new(
                map,
                path,
                ann.record.lists_offset,
                &ann.raw.list_sizes(),
                code_size,
                ann.record.list_crc32.clone(),
            )?);
        }
        Ok(ann)
    }

    /// What this index is (the JSON the manifest stores).
    pub fn record(&self) -> &AnnRecord {
        &self.record
    }

    /// Vectors indexed.
    pub fn len(&self) -> usize {
        self.record.len
    }

    /// Whether the index is empty (never, for a built index).
    pub fn is_empty(&self) -> bool {
        self.record.len == 0
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.record.dim
    }

    /// Inverted lists.
    pub fn nlist(&self) -> usize {
        self.record.nlist
    }

    /// The length of every inverted list (their balance decides how evenly `nprobe` buys recall).
    pub fn list_sizes(&self) -> Vec<usize> {
        self.raw.list_sizes()
    }

    /// Sets the `nprobe` used when a search names none; persist it by writing [`AnnIndex::record`] back
    /// into the manifest.
    pub fn set_default_nprobe(&mut self, nprobe: usize) -> Result<(), AnnError> {
        self.check_nprobe(nprobe)?;
        self.record.nprobe = nprobe;
        Ok(())
    }

    fn check_nprobe(&self, nprobe: usize) -> Result<(), AnnError> {
        if nprobe == 0 || nprobe > self.record.nlist {
            return Err(AnnError::invalid(
                "nprobe",
                nprobe,
                "must be between 1 and nlist",
            ));
        }
        Ok(())
    }

    /// The `k` best rows for one query, best first, probing `nprobe` lists (`None`: the recorded
    /// default). `source` is the store the index was built from: it re-scores compressed candidates.
    pub fn search(
        &self,
        source: &dyn VectorSource,
        query: &[f32],
        k: usize,
        nprobe: Option<usize>,
    ) -> Result<Vec<Neighbor>, AnnError> {
        if query.len() != self.record.dim {
            return Err(AnnError::DimensionMismatch {
                what: "query".into(),
                expected: self.record.dim,
                got: query.len(),
            });
        }
        Ok(self
            .search_batch(source, query, k, nprobe, None)?
            .pop()
            .unwrap_or_default())
    }

    /// [`AnnIndex::search`] for many queries at once (row-major, `dim` each), restricted to the ids of
    /// `allowed` when given: FAISS skips every other id while it scans the probed lists, so a query gets
    /// fewer than `k` results only when those lists hold fewer than `k` allowed rows. Deciding what to do
    /// then (and whether to search this way at all) is the caller's: this returns candidates, nothing else.
    pub fn search_batch(
        &self,
        source: &dyn VectorSource,
        queries: &[f32],
        k: usize,
        nprobe: Option<usize>,
        allowed: Option<&IdSet>,
    ) -> Result<Vec<Vec<Neighbor>>, AnnError> {
        self.check_source(source)?;
        check_queries(queries, self.record.dim)?;
        if k == 0 {
            return Err(AnnError::invalid("k", 0, "must be at least 1"));
        }
        let k = k.min(self.record.len);
        let nprobe = nprobe.unwrap_or(self.record.nprobe);
        self.check_nprobe(nprobe)?;
        self.search_ivf(source, queries, k, nprobe, allowed)
    }

    fn check_source(&self, source: &dyn VectorSource) -> Result<(), AnnError> {
        if source.dim() != self.record.dim {
            return Err(AnnError::DimensionMismatch {
                what: "vector source".into(),
                expected: self.record.dim,
                got: source.dim(),
            });
        }
        let covers = self.record.first_id as usize + self.record.len;
        if source.len() != covers {
            return Err(AnnError::SourceMismatch {
                index_len: covers,
                source_len: source.len(),
            });
        }
        Ok(())
    }

    fn search_ivf(
        &self,
        source: &dyn VectorSource,
        queries: &[f32],
        k: usize,
        nprobe: usize,
        allowed: Option<&IdSet>,
    ) -> Result<Vec<Vec<Neighbor>>, AnnError> {
        let nq = queries.len() / self.record.dim;
        let candidates = if self.record.exact_codes {
            k
        } else {
            (k * self.record.rerank_factor).min(self.record.len)
        };
        let mut scores = vec![0.0f32; nq * candidates];
        let mut ids = vec![-1i64; nq * candidates];
        let check = |lists: &[i64]| match &self.lists {
            Some(checks) => checks.check(lists),
            None => Ok(()),
        };
        self.raw.search_ivf(
            queries,
            candidates,
            nprobe,
            allowed.map(IdSet::bytes),
            &mut scores,
            &mut ids,
            &check,
        )?;

        let per_query = |q: usize| -> Result<Vec<Neighbor>, AnnError> {
            let range = q * candidates..(q + 1) * candidates;
            let mut hits = Vec::with_capacity(candidates);
            for (&id, &score) in ids[range.clone()].iter().zip(&scores[range]) {
                if id < 0 {
                    continue; // fewer than `candidates` vectors in the probed lists
                }
                let ids = self.record.first_id..self.record.first_id + self.record.len as u64;
                if !ids.contains(&(id as u64)) {
                    return Err(self.corrupt(format!(
                        "FAISS returned id {id}, the index holds ids {ids:?}"
                    )));
                }
                let score = if self.record.exact_codes {
                    score
                } else {
                    dot(
                        source.row(id as usize),
                        &queries[q * self.record.dim..(q + 1) * self.record.dim],
                    )
                };
                hits.push(Neighbor {
                    id: id as u64,
                    score,
                });
            }
            hits.sort_by(Neighbor::rank_cmp);
            hits.truncate(k);
            Ok(hits)
        };
        if self.record.exact_codes || nq == 1 {
            (0..nq).map(per_query).collect()
        } else {
            (0..nq).into_par_iter().map(per_query).collect()
        }
    }

    fn corrupt(&self, problem: String) -> AnnError {
        AnnError::CorruptFile {
            path: self
                .path
                .clone()
                .unwrap_or_else(|| PathBuf::from("<unwritten ANN index>")),
            problem,
        }
    }
}

pub(crate) fn check_queries(queries: &[f32], dim: usize) -> Result<(), AnnError> {
    if dim == 0 || queries.is_empty() || queries.len() % dim != 0 {
        return Err(AnnError::DimensionMismatch {
            what: format!(
                "query batch of {} values (not a positive multiple)",
                queries.len()
            ),
            expected: dim,
            got: queries.len(),
        });
    }
    if let Some(at) = queries.iter().position(|v| !v.is_finite()) {
        return Err(AnnError::NonFiniteQuery {
            query: at / dim,
            position: at % dim,
        });
    }
    Ok(())
}

/// What [`AnnIndex::build`] settled before touching the data.
struct BuildPlan {
    nlist: usize,
    nprobe: usize,
    train_size: usize,
}

impl BuildPlan {
    fn new(
        source: &dyn VectorSource,
        params: &AnnParams,
    ) -> Result<(RawIndex, BuildPlan), AnnError> {
        check_cpu()?;
        params.validate()?;
        if source.is_empty() {
            return Err(AnnError::EmptySource);
        }
        let raw = RawIndex::from_factory(source.dim(), &params.factory)?;
        let nlist = raw.nlist().ok_or_else(|| AnnError::NotIvf {
            factory: params.factory.clone(),
        })?;
        let train_size = params.train_size.unwrap_or(64 * nlist).min(source.len());
        if train_size < nlist {
            return Err(AnnError::invalid(
                "train_size",
                train_size,
                "k-means needs at least nlist training vectors (FAISS recommends 39 * nlist)",
            ));
        }
        let nprobe = params.nprobe.unwrap_or((nlist / 32).max(1));
        if nprobe > nlist {
            return Err(AnnError::invalid("nprobe", nprobe, "cannot exceed nlist"));
        }
        Ok((
            raw,
            BuildPlan {
                nlist,
                nprobe,
                train_size,
            },
        ))
    }

    fn finish(self, raw: RawIndex, params: &AnnParams) -> AnnIndex {
        let record = AnnRecord {
            format: ANN_FORMAT_VERSION,
            factory: params.factory.clone(),
            metric: METRIC_INNER_PRODUCT.into(),
            nlist: self.nlist,
            nprobe: self.nprobe,
            rerank_factor: params.rerank_factor,
            exact_codes: raw.stores_exact_vectors(),
            dim: raw.dim(),
            len: raw.len(),
            trained_on: self.train_size,
            seed: params.seed,
            faiss_simd: faiss_simd_level().into(),
            code_size: 0,
            lists_offset: 0,
            head_crc32: 0,
            list_crc32: Vec::new(),
            first_id: 0,
            appended: None,
        };
        AnnIndex {
            raw,
            record,
            lists: None,
            path: None,
        }
    }
}

/// Where training and adding happen: the CPU index itself, or its copy on a GPU.
trait Trainable {
    fn train(&mut self, sample: &[f32]) -> Result<(), AnnError>;
    fn add(&mut self, rows: &[f32]) -> Result<(), AnnError>;
}

impl Trainable for RawIndex {
    fn train(&mut self, sample: &[f32]) -> Result<(), AnnError> {
        RawIndex::train(self, sample)
    }
    fn add(&mut self, rows: &[f32]) -> Result<(), AnnError> {
        RawIndex::add(self, rows)
    }
}

#[cfg(feature = "faiss-gpu")]
impl Trainable for super::faiss_ffi::gpu::GpuIndex<'_> {
    fn train(&mut self, sample: &[f32]) -> Result<(), AnnError> {
        super::faiss_ffi::gpu::GpuIndex::train(self, sample)
    }
    fn add(&mut self, rows: &[f32]) -> Result<(), AnnError> {
        super::faiss_ffi::gpu::GpuIndex::add(self, rows)
    }
}

/// Trains on the seeded sample, then adds every row in batches of `params.add_batch`.
fn fill(
    index: &mut dyn Trainable,
    source: &dyn VectorSource,
    params: &AnnParams,
    plan: &BuildPlan,
    progress: &dyn Progress,
) -> Result<(), AnnError> {
    let dim = source.dim();
    progress.stage("train", 1);
    let mut sample = Vec::with_capacity(plan.train_size * dim);
    for id in sample_ids(source.len(), plan.train_size, params.seed) {
        sample.extend_from_slice(source.row(id));
    }
    index.train(&sample)?;
    drop(sample);
    progress.advance(1);
    progress.finish_stage();
    add_all(index, source, params.add_batch, progress)
}

/// Adds every row of `source`, in id order, `batch` rows per FAISS call.
fn add_all(
    index: &mut dyn Trainable,
    source: &dyn VectorSource,
    batch_rows: usize,
    progress: &dyn Progress,
) -> Result<(), AnnError> {
    progress.stage("add", source.len() as u64);
    for_each_batch(&source.blocks(), source.dim(), batch_rows, |rows, _| {
        index.add(rows)?;
        progress.advance((rows.len() / source.dim()) as u64);
        Ok(())
    })?;
    progress.finish_stage();
    Ok(())
}

/// Calls `add` with the rows of `blocks` in id order, at most `batch_rows` at a time, as f32 (f16 rows
/// converted), with the id of each batch's first row.
fn for_each_batch(
    blocks: &[VectorBlock<'_>],
    dim: usize,
    batch_rows: usize,
    mut add: impl FnMut(&[f32], u64) -> Result<(), AnnError>,
) -> Result<(), AnnError> {
    let batch_rows = batch_rows.max(1);
    let mut converted = Vec::new();
    for block in blocks {
        let n = block.len(dim);
        for start in (0..n).step_by(batch_rows) {
            let end = (start + batch_rows).min(n);
            let rows = match block {
                VectorBlock::F32 { rows, .. } => &rows[start * dim..end * dim],
                VectorBlock::F16 { rows, .. } => {
                    converted.clear();
                    converted.extend(rows[start * dim..end * dim].iter().map(|v| v.to_f32()));
                    &converted[..]
                }
            };
            add(rows, block.base_id() + start as u64)?;
        }
    }
    Ok(())
}

/// `raw` with `record` as the record of an index not yet written: the fields [`AnnIndex::write_file`]
/// sets are cleared, and `len` is what `raw` holds.
fn unwritten(raw: RawIndex, mut record: AnnRecord) -> AnnIndex {
    record.len = raw.len();
    record.code_size = 0;
    record.lists_offset = 0;
    record.head_crc32 = 0;
    record.list_crc32.clear();
    AnnIndex {
        raw,
        record,
        lists: None,
        path: None,
    }
}

impl AnnIndex {
    /// A new index over `source` with this index's trained centroids and code parameters, without
    /// k-means: what compaction does when the data has not drifted (see [`AnnIndex::centroid_fit`]).
    /// Reads this index's file wholly (the lists are then dropped), so it costs one pass over it.
    pub fn refill(
        &self,
        source: &dyn VectorSource,
        progress: &dyn Progress,
    ) -> Result<AnnIndex, AnnError> {
        check_cpu()?;
        if source.dim() != self.record.dim {
            return Err(AnnError::DimensionMismatch {
                what: "vector source".into(),
                expected: self.record.dim,
                got: source.dim(),
            });
        }
        let path = self
            .path
            .clone()
            .ok_or_else(|| self.corrupt("refill needs the index's file; write it first".into()))?;
        let mut raw = RawIndex::read_whole(&path)?;
        raw.reset()?;
        add_all(&mut raw, source, 65_536, progress)?;
        let mut record = self.record.clone();
        record.appended = None;
        Ok(unwritten(raw, record))
    }

    /// Writes this index emptied, its trained centroids and code parameters kept, to `path` (fsynced): the
    /// file that lists for rows added later start from ([`AnnIndex::append`]), so that adding needs
    /// neither k-means nor a read of the built lists. Consumes the index (its lists are dropped).
    pub fn write_trained(mut self, path: &Path) -> Result<(), AnnError> {
        self.raw.reset()?;
        self.raw.write(path)?;
        File::open(path)
            .and_then(|f| f.sync_all())
            .map_err(|e| AnnError::io(path, e))
    }

    /// The lists for rows added after `built` was built: `start` (a file of
    /// [`AnnIndex::write_trained`], or the appended lists so far, which `start_record` then describes)
    /// read wholly, plus every row of `rows` (blocks of the store, in id order, continuing where `start`
    /// ends), each filed under its nearest trained centroid and its store row id. No k-means.
    pub fn append(
        built: &AnnRecord,
        start: &Path,
        start_record: Option<&AnnRecord>,
        rows: &[VectorBlock<'_>],
        progress: &dyn Progress,
    ) -> Result<AnnIndex, AnnError> {
        check_cpu()?;
        let mut raw = RawIndex::read_whole(start)?;
        let first_id = built.len as u64;
        let expected = start_record.map_or(0, |r| r.len);
        if (raw.dim(), raw.len(), raw.nlist()) != (built.dim, expected, Some(built.nlist)) {
            return Err(AnnError::CorruptFile {
                path: start.to_path_buf(),
                problem: format!(
                    "FAISS index has dim {}, {} vectors, nlist {:?}; expected dim {}, {expected} \
                     vectors, nlist {}",
                    raw.dim(),
                    raw.len(),
                    raw.nlist(),
                    built.dim,
                    built.nlist
                ),
            });
        }
        let dim = built.dim;
        let total: usize = rows.iter().map(|b| b.len(dim)).sum();
        let mut next_id = first_id + expected as u64;
        progress.stage("add to lists", total as u64);
        for_each_batch(rows, dim, 65_536, |batch, id| {
            if id != next_id {
                return Err(AnnError::invalid(
                    "rows",
                    id,
                    "appended rows must continue the lists' ids without a gap",
                ));
            }
            raw.add_with_ids(batch, id)?;
            next_id += (batch.len() / dim) as u64;
            progress.advance((batch.len() / dim) as u64);
            Ok(())
        })?;
        progress.finish_stage();
        let mut record = built.clone();
        record.first_id = first_id;
        record.appended = None;
        Ok(unwritten(raw, record))
    }

    /// For each row of `rows` (row-major, normalized), the inner product with its nearest centroid: 1
    /// for a row on a centroid, lower the worse the centroids fit it.
    pub fn centroid_fit(&self, rows: &[f32]) -> Result<Vec<f32>, AnnError> {
        check_queries(rows, self.record.dim)?;
        self.raw.nearest_centroid_scores(rows)
    }
}
