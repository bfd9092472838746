//! The manifest: the one small file that says which files make up the current version of an index.
//! Committing a new version is replacing the manifest atomically; files it does not name do not exist
//! as far as readers are concerned.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::codec::{bincode_config, check_crc, check_magic, read_u32, read_u64, slice};
use crate::error::{FormatError, Result};
use crate::meta::ModelInfo;
use crate::segment::{VectorType, MAX_DIM};
use crate::version::{FormatVersion, CURRENT};

/// The manifest's file name.
pub const MANIFEST_FILE: &str = "MANIFEST";
/// The first eight bytes of a manifest.
pub const MANIFEST_MAGIC: &[u8; 8] = b"FIQMANIF";
/// Bytes before the bincode body.
pub const MANIFEST_HEADER_LEN: usize = 24;
/// Largest manifest body a reader accepts.
pub const MANIFEST_LIMIT: usize = 16 << 20;

/// One segment file of the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentEntry {
    /// File name inside the index directory.
    pub file: String,
    /// Internal id of the segment's first row; ids are dense across segments in manifest order.
    pub base_id: u64,
    /// Rows in the segment.
    pub count: u64,
    /// Expected file length.
    pub file_len: u64,
    /// Expected CRC-32 of the segment header.
    pub header_crc: u32,
}

/// A file named by the manifest with its length and whole-file checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// File name inside the index directory.
    pub file: String,
    /// Expected length in bytes.
    pub len: u64,
    /// CRC-32 of the whole file.
    pub crc32: u32,
}

/// A file belonging to the approximate-search index, under a logical name chosen by its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnFileEntry {
    /// The owner's name for it (`ivf`, `lists`, ...).
    pub name: String,
    /// The file.
    pub entry: FileEntry,
}

/// The contents of the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Incremented by every commit; names the files the commit wrote.
    pub generation: u64,
    /// Components per vector.
    pub dim: u32,
    /// How vector components are stored in every segment.
    pub vector_type: VectorType,
    /// The model that produced the vectors.
    pub model: ModelInfo,
    /// Segments in id order.
    pub segments: Vec<SegmentEntry>,
    /// The deleted ids, if any were ever deleted.
    pub tombstones: Option<FileEntry>,
    /// Files of the approximate-search index (empty when there is none).
    pub ann_files: Vec<AnnFileEntry>,
    /// Parameters of the approximate-search index, as JSON (empty when there is none).
    pub ann_params: String,
    /// Small named settings (for example the tuned default `nprobe`).
    pub settings: BTreeMap<String, String>,
}

impl Manifest {
    /// An empty index.
    pub fn empty(dim: u32, vector_type: VectorType, model: ModelInfo) -> Manifest {
        Manifest {
            generation: 0,
            dim,
            vector_type,
            model,
            segments: Vec::new(),
            tombstones: None,
            ann_files: Vec::new(),
            ann_params: String::new(),
            settings: BTreeMap::new(),
        }
    }

    /// Total rows, deleted ones included.
    pub fn total_rows(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.base_id + s.count)
    }

    /// Every file the manifest names.
    pub fn files(&self) -> impl Iterator<Item = &str> {
        self.segments
            .iter()
            .map(|s| s.file.as_str())
            .chain(self.tombstones.iter().map(|t| t.file.as_str()))
            .chain(self.ann_files.iter().map(|a| a.entry.file.as_str()))
    }

    /// The manifest's bytes.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let body = bincode::serde::encode_to_vec(self, bincode_config::<MANIFEST_LIMIT>())
            .map_err(|e| FormatError::Encode {
                what: "manifest",
                detail: e.to_string(),
            })?;
        let mut out = Vec::with_capacity(MANIFEST_HEADER_LEN + body.len() + 4);
        out.extend_from_slice(MANIFEST_MAGIC);
        out.extend_from_slice(&(CURRENT as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(&body);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    /// Parses and checks a manifest; `path` is for messages.
    pub fn decode(bytes: &[u8], path: &Path) -> Result<Manifest> {
        let header = slice(
            bytes,
            0,
            MANIFEST_HEADER_LEN as u64,
            path,
            "manifest header",
        )?;
        check_magic(path, header, MANIFEST_MAGIC, "manifest")?;
        FormatVersion::check(path, read_u32(header, 8))?;
        let body_len = read_u64(header, 16);
        if body_len > MANIFEST_LIMIT as u64 {
            return Err(FormatError::corrupt(
                path,
                "manifest header",
                format!("body of {body_len} bytes exceeds the {MANIFEST_LIMIT}-byte limit"),
            ));
        }
        let covered = slice(
            bytes,
            0,
            MANIFEST_HEADER_LEN as u64 + body_len,
            path,
            "manifest body",
        )?;
        let stored = slice(bytes, covered.len() as u64, 4, path, "manifest checksum")?;
        if bytes.len() != covered.len() + 4 {
            return Err(FormatError::corrupt(
                path,
                "manifest",
                format!(
                    "{} bytes after the checksum",
                    bytes.len() - covered.len() - 4
                ),
            ));
        }
        check_crc(path, "manifest", covered, read_u32(stored, 0))?;
        let body = &covered[MANIFEST_HEADER_LEN..];
        let (manifest, used): (Manifest, usize) =
            bincode::serde::decode_from_slice(body, bincode_config::<MANIFEST_LIMIT>())
                .map_err(|e| FormatError::corrupt(path, "manifest body", e.to_string()))?;
        if used != body.len() {
            return Err(FormatError::corrupt(
                path,
                "manifest body",
                format!("{} trailing bytes", body.len() - used),
            ));
        }
        manifest.validate(path)?;
        Ok(manifest)
    }

    fn validate(&self, path: &Path) -> Result<()> {
        let bad = |detail: String| Err(FormatError::corrupt(path, "manifest", detail));
        if self.dim == 0 || self.dim > MAX_DIM {
            return bad(format!("dimension {} is outside 1..={MAX_DIM}", self.dim));
        }
        let mut next_id = 0u64;
        for s in &self.segments {
            if s.base_id != next_id {
                return bad(format!(
                    "segment {} starts at id {}, expected {next_id}",
                    s.file, s.base_id
                ));
            }
            next_id = match next_id.checked_add(s.count) {
                Some(n) => n,
                None => return bad("row count overflows".into()),
            };
        }
        for name in self.files() {
            if !is_plain_file_name(name) {
                return bad(format!("file name {name:?} is not a plain file name"));
            }
        }
        Ok(())
    }
}

/// Names in a manifest must stay inside the index directory.
pub fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
}
