//! What the caller chooses when building an ANN index, and what fiq records about the index it built.

use serde::{Deserialize, Serialize};

use super::AnnError;

/// The version of [`AnnRecord`]'s JSON and of the file set it describes: 3 adds the checksums of the
/// FAISS file's header section and of each inverted list.
pub const ANN_FORMAT_VERSION: u32 = 3;
/// The oldest record version still read: 2, without the section checksums (searches of such an index
/// cannot tell a damaged list; `verify` can).
pub const ANN_FORMAT_OLDEST: u32 = 2;

/// How to build an IVF index.
///
/// ```
/// use fiq::ann::AnnParams;
/// let p = AnnParams::ivf_flat(1024).with_train_size(65_536).with_seed(7);
/// assert_eq!(p.factory, "IVF1024,Flat");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnParams {
    /// A FAISS factory string making an IVF index: `IVF1024,Flat`, `IVF1024,SQ8`, `IVF1024,PQ64`.
    /// The metric is always inner product.
    pub factory: String,
    /// Vectors drawn (seeded, without replacement) to train k-means and the code encoder;
    /// `None` means `64 * nlist`, capped at the catalog size. FAISS wants at least `39 * nlist`.
    pub train_size: Option<usize>,
    /// Seed of the training sample.
    pub seed: u64,
    /// Vectors handed to FAISS per `add` call (bounds the gather buffer; drives the progress bar).
    pub add_batch: usize,
    /// Lists probed by a search that does not name `nprobe`; `None` means `nlist / 32` (at least 1)
    /// until `tune` records a measured one.
    pub nprobe: Option<usize>,
    /// For compressed codes (SQ, PQ): FAISS returns `k * rerank_factor` candidates, which are re-scored
    /// with the exact vectors of the store. Ignored for IVF-Flat, whose scores are already exact.
    pub rerank_factor: usize,
    /// Train k-means and add on this CUDA device (builds with the `faiss-gpu` feature); the finished
    /// index comes back to the CPU. `None`: on the CPU.
    #[serde(default)]
    pub gpu_device: Option<usize>,
}

impl AnnParams {
    /// An IVF-Flat index with `nlist` lists (the vectors themselves in the lists; exact scores).
    pub fn ivf_flat(nlist: usize) -> AnnParams {
        AnnParams::with_factory(format!("IVF{nlist},Flat"))
    }

    /// Any IVF factory string, with default training and search settings.
    pub fn with_factory(factory: impl Into<String>) -> AnnParams {
        AnnParams {
            factory: factory.into(),
            train_size: None,
            seed: 0x000F_1A55,
            add_batch: 65_536,
            nprobe: None,
            rerank_factor: 4,
            gpu_device: None,
        }
    }

    /// Sets the training sample size.
    pub fn with_train_size(mut self, train_size: usize) -> AnnParams {
        self.train_size = Some(train_size);
        self
    }

    /// Sets the training sample seed.
    pub fn with_seed(mut self, seed: u64) -> AnnParams {
        self.seed = seed;
        self
    }

    /// Sets the default `nprobe`.
    pub fn with_nprobe(mut self, nprobe: usize) -> AnnParams {
        self.nprobe = Some(nprobe);
        self
    }

    /// Sets the re-ranking factor for compressed codes.
    pub fn with_rerank_factor(mut self, rerank_factor: usize) -> AnnParams {
        self.rerank_factor = rerank_factor;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), AnnError> {
        if self.add_batch == 0 {
            return Err(AnnError::invalid("add_batch", 0, "must be positive"));
        }
        if self.rerank_factor == 0 {
            return Err(AnnError::invalid("rerank_factor", 0, "must be at least 1"));
        }
        if self.nprobe == Some(0) {
            return Err(AnnError::invalid("nprobe", 0, "must be at least 1"));
        }
        Ok(())
    }
}

/// What an ANN index is, as recorded in the index manifest next to its file (a JSON string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnRecord {
    /// [`ANN_FORMAT_VERSION`] when written.
    pub format: u32,
    /// The FAISS factory string.
    pub factory: String,
    /// Always `inner_product` (vectors are L2-normalized, so this is cosine similarity).
    pub metric: String,
    /// Inverted lists.
    pub nlist: usize,
    /// The default lists probed per query (set by `tune`).
    pub nprobe: usize,
    /// Candidates per result re-scored exactly, for compressed codes.
    pub rerank_factor: usize,
    /// Whether the lists hold full vectors (IVF-Flat) rather than compressed codes.
    pub exact_codes: bool,
    /// Vector dimension.
    pub dim: usize,
    /// Vectors indexed; ids are `first_id..first_id + len`, the store's row ids.
    pub len: usize,
    /// The store row id of the first vector: 0 for the index built over the catalog; the number of rows
    /// it covers for the appended lists (see [`AnnRecord::appended`]).
    #[serde(default)]
    pub first_id: u64,
    /// Vectors k-means was trained on.
    pub trained_on: usize,
    /// Seed of the training sample.
    pub seed: u64,
    /// How FAISS was compiled (`generic`, `avx2`), for the record.
    pub faiss_simd: String,
    /// Bytes per vector in the lists, the 8-byte id not counted (set when the file is written).
    pub code_size: usize,
    /// Where the inverted lists start in the FAISS file; they run to its end (set when written). Open
    /// checks it against the list sizes FAISS read before any search touches the mapped lists.
    pub lists_offset: u64,
    /// CRC-32 of the FAISS file's bytes before the lists (headers, centroids, code parameters, list
    /// sizes), checked at open before FAISS parses them (format 3; 0 in format 2).
    #[serde(default)]
    pub head_crc32: u32,
    /// CRC-32 of each inverted list's bytes (its codes, then its ids), checked the first time a search
    /// probes the list (format 3; empty in format 2).
    #[serde(default)]
    pub list_crc32: Vec<u32>,
    /// The rows added since this index was built, in their own FAISS file made from the same trained
    /// centroids and code parameters (no k-means): ids `len..len + appended.len`, the same lists, so
    /// searches probe both and stay IVF. `None` until rows are added; compaction folds them back in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appended: Option<Box<AnnRecord>>,
}

/// The metric fiq's ANN indexes use.
pub const METRIC_INNER_PRODUCT: &str = "inner_product";

impl AnnRecord {
    /// The JSON stored in the manifest.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a struct of strings and integers always serializes")
    }

    /// The rules every stored record (the built index's and the appended lists') keeps.
    fn check(&self) -> Result<(), String> {
        if !(ANN_FORMAT_OLDEST..=ANN_FORMAT_VERSION).contains(&self.format) {
            return Err(format!(
                "format version {} (this fiq reads {ANN_FORMAT_OLDEST} to {ANN_FORMAT_VERSION})",
                self.format
            ));
        }
        if self.format >= 3 && self.list_crc32.len() != self.nlist {
            return Err(format!(
                "{} list checksums for {} lists",
                self.list_crc32.len(),
                self.nlist
            ));
        }
        if self.metric != METRIC_INNER_PRODUCT {
            return Err(format!(
                "metric {:?} (fiq uses {METRIC_INNER_PRODUCT})",
                self.metric
            ));
        }
        if self.nlist == 0
            || self.nprobe == 0
            || self.nprobe > self.nlist
            || self.rerank_factor == 0
        {
            return Err("nlist, nprobe (<= nlist) and rerank_factor must be positive".into());
        }
        Ok(())
    }

    /// Rows covered by the IVF lists: the built index's and the appended ones.
    pub fn covered_rows(&self) -> usize {
        self.len + self.appended.as_ref().map_or(0, |a| a.len)
    }

    /// Parses and checks a stored record.
    pub fn from_json(json: &str) -> Result<AnnRecord, AnnError> {
        let bad = |reason: String| AnnError::BadParams {
            json: json.to_owned(),
            reason,
        };
        let record: AnnRecord = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
        record.check().map_err(&bad)?;
        if record.first_id != 0 {
            return Err(bad(format!(
                "first id {} (the built index starts at row 0)",
                record.first_id
            )));
        }
        if let Some(appended) = &record.appended {
            appended
                .check()
                .map_err(|reason| bad(format!("appended lists: {reason}")))?;
            let same = (
                &appended.factory,
                appended.nlist,
                appended.dim,
                appended.exact_codes,
            ) == (
                &record.factory,
                record.nlist,
                record.dim,
                record.exact_codes,
            );
            if !same || appended.first_id != record.len as u64 || appended.appended.is_some() {
                return Err(bad(format!(
                    "appended lists ({} nlist {} dim {}, from row {}) do not continue the index \
                     ({} nlist {} dim {}, {} rows)",
                    appended.factory,
                    appended.nlist,
                    appended.dim,
                    appended.first_id,
                    record.factory,
                    record.nlist,
                    record.dim,
                    record.len
                )));
            }
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> AnnRecord {
        AnnRecord {
            format: ANN_FORMAT_VERSION,
            factory: "IVF64,SQ8".into(),
            metric: METRIC_INNER_PRODUCT.into(),
            nlist: 64,
            nprobe: 8,
            rerank_factor: 4,
            exact_codes: false,
            dim: 32,
            len: 1000,
            trained_on: 1000,
            seed: 3,
            faiss_simd: "generic".into(),
            code_size: 32,
            lists_offset: 9000,
            head_crc32: 7,
            list_crc32: vec![1; 64],
            first_id: 0,
            appended: None,
        }
    }

    #[test]
    fn a_record_survives_json() {
        assert_eq!(AnnRecord::from_json(&record().to_json()).unwrap(), record());
    }

    #[test]
    fn records_from_the_future_or_with_nonsense_are_refused() {
        let check = |edit: fn(&mut AnnRecord), needle: &str| {
            let mut r = record();
            edit(&mut r);
            let err = AnnRecord::from_json(&r.to_json()).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        };
        check(|r| r.format = 99, "format version 99");
        check(|r| r.metric = "l2".into(), "metric \"l2\"");
        check(|r| r.nprobe = 65, "nprobe");
        check(|r| r.nprobe = 0, "nprobe");
        let err = AnnRecord::from_json("{\"format\":1").unwrap_err();
        assert!(matches!(err, AnnError::BadParams { .. }));
    }
}
