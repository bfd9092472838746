//! A committed version of an index, opened for reading, and the writer that commits the next version.
//!
//! The commit protocol (SPEC.md, "Commit"): new files are written under names no manifest uses yet and
//! made durable; then the manifest is replaced atomically. A crash at any point leaves the previous
//! manifest in place, and the files it names untouched, so readers see the last committed index whole.

use std::collections::{BTreeSet, HashSet};
use std::io::Write;
use std::sync::Arc;

use crate::directory::{Directory, FileBytes, ReaderLease, WriterLock, LOCK_FILE};
use crate::error::{FormatError, Result};
use crate::manifest::{
    AnnFileEntry, FileEntry, Manifest, SegmentEntry, MANIFEST_FILE, MANIFEST_HEADER_LEN,
    MANIFEST_MAGIC,
};
use crate::meta::{ItemMeta, ModelInfo};
use crate::segment::{Segment, SegmentWriter, VectorType};
use crate::tombstones::{decode_tombstones, encode_tombstones};

/// One committed version of an index: the manifest and its opened segments.
#[derive(Debug, Clone)]
pub struct Snapshot {
    dir: Arc<dyn Directory>,
    manifest: Manifest,
    segments: Vec<Segment>,
    deleted: Option<Arc<DeletedIds>>,
    /// Keeps this version's files from being collected while any clone of this snapshot lives.
    _lease: Arc<ReaderLease>,
}

/// The deleted ids as a bitmap over all rows (one bit per row; 1M rows cost 125 KiB).
#[derive(Debug)]
struct DeletedIds {
    bits: Vec<u64>,
    sorted: Vec<u64>,
}

impl DeletedIds {
    fn new(sorted: Vec<u64>, total_rows: u64) -> DeletedIds {
        let mut bits = vec![0u64; total_rows.div_ceil(64) as usize];
        for &id in &sorted {
            bits[(id / 64) as usize] |= 1 << (id % 64);
        }
        DeletedIds { bits, sorted }
    }

    fn contains(&self, id: u64) -> bool {
        self.bits
            .get((id / 64) as usize)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }
}

/// What [`Snapshot::verify`] checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// The manifest's generation.
    pub generation: u64,
    /// Segments checked.
    pub segments: usize,
    /// Rows checked, deleted ones included.
    pub rows: u64,
    /// Deleted rows.
    pub deleted: u64,
    /// ANN files checked.
    pub ann_files: usize,
    /// Bytes whose checksums were computed.
    pub bytes_checked: u64,
}

impl Snapshot {
    /// Opens the index's current version: reads the manifest and maps each segment, checking headers only.
    /// Takes a reader lease on the version, so that no writer deletes its files while the snapshot (or a
    /// clone of it) lives.
    pub fn open(dir: Arc<dyn Directory>) -> Result<Snapshot> {
        // A writer may commit and collect old files between our reading the manifest and opening the files
        // it names (a reader of an older fiq, which takes no lease); then the manifest has changed and a
        // second read finds the new files. A commit between reading the manifest and taking the lease is
        // caught by re-reading the generation.
        let mut attempts = 0;
        loop {
            match Snapshot::open_once(dir.clone()) {
                Err(FormatError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound && attempts < 100 =>
                {
                    attempts += 1;
                }
                Ok(None) if attempts < 100 => attempts += 1,
                Ok(None) => {
                    return Err(FormatError::Conflict {
                        what: format!(
                            "{}: the index changed 100 times while it was being opened; a writer is committing faster than this reader can open",
                            dir.path_of("").display()
                        ),
                    })
                }
                Ok(Some(snapshot)) => return Ok(snapshot),
                Err(e) => return Err(e),
            }
        }
    }

    /// The generation `MANIFEST` names now, read from its first 32 bytes: what [`Snapshot::open`] would
    /// open. Cheap (no decoding of the manifest body), so a reader can poll it to decide whether to
    /// reopen. The manifest is replaced by rename, so the bytes are never a mix of two versions.
    pub fn current_generation(dir: &dyn Directory) -> Result<u64> {
        let bytes = dir.open_read(MANIFEST_FILE)?;
        let path = bytes.path();
        let header = crate::codec::slice(
            &bytes,
            0,
            MANIFEST_HEADER_LEN as u64 + 8,
            path,
            "manifest header",
        )?;
        crate::codec::check_magic(path, header, MANIFEST_MAGIC, "manifest")?;
        crate::version::FormatVersion::check(path, crate::codec::read_u32(header, 8))?;
        // The body starts with the generation, a fixed-width little-endian u64 (SPEC.md, "MANIFEST").
        Ok(crate::codec::read_u64(header, MANIFEST_HEADER_LEN))
    }

    /// Takes over the checksum verdicts of `earlier`'s segments that this version shares with it (same
    /// file name, same header: files are immutable), so that a reader that refreshes does not check
    /// unchanged files again.
    pub fn inherit_checks(&mut self, earlier: &Snapshot) {
        for (segment, entry) in self.segments.iter_mut().zip(&self.manifest.segments) {
            let same = earlier
                .manifest
                .segments
                .iter()
                .position(|e| e.file == entry.file && e.header_crc == entry.header_crc);
            if let Some(i) = same {
                segment.share_checks(&earlier.segments[i]);
            }
        }
    }

    /// The generation of this snapshot.
    pub fn generation(&self) -> u64 {
        self.manifest.generation
    }

    /// `None` when a commit happened between reading the manifest and taking the lease.
    fn open_once(dir: Arc<dyn Directory>) -> Result<Option<Snapshot>> {
        if !dir.exists(MANIFEST_FILE)? {
            return Err(FormatError::NotAnIndex {
                path: dir.path_of(""),
            });
        }
        let manifest_bytes = dir.open_read(MANIFEST_FILE)?;
        let manifest = Manifest::decode(&manifest_bytes, manifest_bytes.path())?;
        let lease = Arc::new(dir.lease(manifest.generation)?);
        if Snapshot::current_generation(dir.as_ref())? != manifest.generation {
            return Ok(None);
        }
        let mut segments = Vec::with_capacity(manifest.segments.len());
        for entry in &manifest.segments {
            let bytes = dir.open_read(&entry.file)?;
            let path = bytes.path().to_owned();
            if bytes.len() as u64 != entry.file_len {
                return Err(FormatError::Truncated {
                    path,
                    expected: entry.file_len,
                    actual: bytes.len() as u64,
                });
            }
            let segment = Segment::open(bytes)?;
            let mismatch = |detail: String| {
                Err(FormatError::corrupt(
                    &path,
                    "segment (against the manifest)",
                    detail,
                ))
            };
            if segment.header_crc() != entry.header_crc {
                return mismatch(format!(
                    "header checksum {:08x}, the manifest expects {:08x} (a file from another index or version?)",
                    segment.header_crc(),
                    entry.header_crc
                ));
            }
            if segment.len() != entry.count
                || segment.dim() != manifest.dim as usize
                || segment.vector_type() != manifest.vector_type
            {
                return mismatch(format!(
                    "{} rows of {} {:?} components; the manifest expects {} rows of {} {:?}",
                    segment.len(),
                    segment.dim(),
                    segment.vector_type(),
                    entry.count,
                    manifest.dim,
                    manifest.vector_type
                ));
            }
            segments.push(segment);
        }
        let deleted = match &manifest.tombstones {
            None => None,
            Some(entry) => {
                let bytes = read_checked(dir.as_ref(), entry)?;
                let ids = decode_tombstones(&bytes, manifest.total_rows(), bytes.path())?;
                Some(Arc::new(DeletedIds::new(ids, manifest.total_rows())))
            }
        };
        Ok(Some(Snapshot {
            dir,
            manifest,
            segments,
            deleted,
            _lease: lease,
        }))
    }

    /// The manifest of this version.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The directory the index lives in.
    pub fn directory(&self) -> &Arc<dyn Directory> {
        &self.dir
    }

    /// The opened segments, in id order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Rows, deleted ones included; ids run over `0..total_rows()`.
    pub fn total_rows(&self) -> u64 {
        self.manifest.total_rows()
    }

    /// Rows not deleted.
    pub fn live_rows(&self) -> u64 {
        self.total_rows() - self.deleted.as_ref().map_or(0, |d| d.sorted.len() as u64)
    }

    /// Whether `id` was deleted.
    pub fn is_deleted(&self, id: u64) -> bool {
        self.deleted.as_ref().is_some_and(|d| d.contains(id))
    }

    /// The deleted ids, sorted.
    pub fn deleted_ids(&self) -> &[u64] {
        self.deleted.as_ref().map_or(&[], |d| &d.sorted)
    }

    /// The segment and row that hold `id`, or `None` when `id >= total_rows()`.
    pub fn locate(&self, id: u64) -> Option<(&Segment, u64)> {
        let i = self
            .manifest
            .segments
            .partition_point(|s| s.base_id + s.count <= id);
        let entry = self.manifest.segments.get(i)?;
        Some((&self.segments[i], id - entry.base_id))
    }

    fn locate_or_err(&self, id: u64) -> Result<(&Segment, u64)> {
        self.locate(id).ok_or_else(|| FormatError::UnknownKey {
            key: format!("#{id} (ids run to {})", self.total_rows()),
        })
    }

    /// The key of `id`.
    pub fn key(&self, id: u64) -> Result<&str> {
        let (segment, row) = self.locate_or_err(id)?;
        segment.key(row)
    }

    /// The metadata of `id`.
    pub fn meta(&self, id: u64) -> Result<ItemMeta> {
        let (segment, row) = self.locate_or_err(id)?;
        segment.meta(row)
    }

    /// The live id of `key`, if any.
    pub fn find(&self, key: &str) -> Result<Option<u64>> {
        for (segment, entry) in self.segments.iter().zip(&self.manifest.segments).rev() {
            if let Some(row) = segment.find(key)? {
                let id = entry.base_id + row;
                if !self.is_deleted(id) {
                    return Ok(Some(id));
                }
            }
        }
        Ok(None)
    }

    /// The bytes of the ANN file registered under `name`, length-checked (its checksum is [`Snapshot::verify`]'s job).
    pub fn ann_file(&self, name: &str) -> Result<Option<FileBytes>> {
        let Some(ann) = self.manifest.ann_files.iter().find(|a| a.name == name) else {
            return Ok(None);
        };
        let bytes = self.dir.open_read(&ann.entry.file)?;
        if bytes.len() as u64 != ann.entry.len {
            return Err(FormatError::Truncated {
                path: bytes.path().to_owned(),
                expected: ann.entry.len,
                actual: bytes.len() as u64,
            });
        }
        Ok(Some(bytes))
    }

    /// Checks the whole-file checksum of the ANN file registered under `name` (for a file about to be
    /// read wholly, as the writer reads the IVF files it grows); `false` when there is no such file.
    pub fn check_ann_file(&self, name: &str) -> Result<bool> {
        match self.manifest.ann_files.iter().find(|a| a.name == name) {
            Some(ann) => read_checked(self.dir.as_ref(), &ann.entry).map(|_| true),
            None => Ok(false),
        }
    }

    /// Checks every checksum and structural rule of every file of this version.
    pub fn verify(&self) -> Result<VerifyReport> {
        let mut bytes_checked = 0;
        for segment in &self.segments {
            segment.verify()?;
            bytes_checked += std::fs::metadata(segment.path())
                .map(|m| m.len())
                .unwrap_or(0);
        }
        for ann in &self.manifest.ann_files {
            read_checked(self.dir.as_ref(), &ann.entry)?;
            bytes_checked += ann.entry.len;
        }
        Ok(VerifyReport {
            generation: self.manifest.generation,
            segments: self.segments.len(),
            rows: self.total_rows(),
            deleted: self.deleted_ids().len() as u64,
            ann_files: self.manifest.ann_files.len(),
            bytes_checked,
        })
    }
}

/// Length and CRC-32 of a file, read in 1 MiB pieces.
fn length_and_crc(path: &std::path::Path) -> Result<(u64, u32)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| FormatError::io(path, e))?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok((len, hasher.finalize())),
            Ok(n) => {
                hasher.update(&buf[..n]);
                len += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FormatError::io(path, e)),
        }
    }
}

fn read_checked(dir: &dyn Directory, entry: &FileEntry) -> Result<FileBytes> {
    let bytes = dir.open_read(&entry.file)?;
    if bytes.len() as u64 != entry.len {
        return Err(FormatError::Truncated {
            path: bytes.path().to_owned(),
            expected: entry.len,
            actual: bytes.len() as u64,
        });
    }
    crate::codec::check_crc(bytes.path(), "whole file", &bytes, entry.crc32)?;
    Ok(bytes)
}

/// Builds the next version of an index: appends rows, deletes rows, replaces the ANN files, then commits.
/// Holds the index's writer lock while it lives.
pub struct SnapshotWriter {
    dir: Arc<dyn Directory>,
    _lock: WriterLock,
    manifest: Manifest,
    current: Option<Snapshot>,
    pending: Option<SegmentWriter>,
    pending_keys: HashSet<String>,
    deleted: BTreeSet<u64>,
    deleted_changed: bool,
    new_ann: Option<(Vec<(String, AnnFileSource)>, String)>,
    new_ann_params: Option<String>,
    /// The one segment of the live rows, written by [`SnapshotWriter::compact`] for the next commit.
    compacted: Option<SegmentEntry>,
}

/// Where the bytes of a new ANN file come from.
#[derive(Debug)]
pub enum AnnFileSource {
    /// Bytes in memory.
    Bytes(Vec<u8>),
    /// A finished file on disk, written by another library (FAISS writes its own files). Stage it at
    /// [`SnapshotWriter::staging_path`] so that the commit moves it in with a rename instead of a copy;
    /// the commit removes it from there.
    Staged(std::path::PathBuf),
    /// The file the current version has under the same name, kept as it is (committed files are never
    /// rewritten, so the new manifest names the same file, length and checksum).
    Kept,
}

/// Prefix of files staged for the next commit; the commit's garbage collection removes leftovers of a
/// writer that died before committing.
pub const STAGING_PREFIX: &str = ".staged-";

impl std::fmt::Debug for SnapshotWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotWriter")
            .field("dir", &self.dir)
            .field("generation", &self.manifest.generation)
            .field("pending_rows", &self.pending_keys.len())
            .finish()
    }
}

impl SnapshotWriter {
    /// Starts a new, empty index in `dir`; fails if `dir` already holds one.
    pub fn create(
        dir: Arc<dyn Directory>,
        dim: u32,
        vector_type: VectorType,
        model: ModelInfo,
    ) -> Result<SnapshotWriter> {
        let lock = dir.lock_writer()?;
        if dir.exists(MANIFEST_FILE)? {
            return Err(FormatError::InvalidInput {
                key: String::new(),
                detail: format!(
                    "{} already holds an index; open it to append, or choose another path",
                    dir.path_of("").display()
                ),
            });
        }
        let manifest = Manifest::empty(dim, vector_type, model);
        if manifest.dim == 0 || manifest.dim > crate::segment::MAX_DIM {
            return Err(FormatError::InvalidInput {
                key: String::new(),
                detail: format!("dimension {dim} is outside 1..={}", crate::segment::MAX_DIM),
            });
        }
        let mut writer = SnapshotWriter::new(dir, lock, manifest, None);
        // An empty but valid index exists from the start, so `open` works before the first batch.
        writer.commit()?;
        Ok(writer)
    }

    /// Opens an existing index to change it.
    pub fn open(dir: Arc<dyn Directory>) -> Result<SnapshotWriter> {
        let lock = dir.lock_writer()?;
        let snapshot = Snapshot::open(dir.clone())?;
        let manifest = snapshot.manifest().clone();
        let writer = SnapshotWriter::new(dir, lock, manifest, Some(snapshot));
        writer.collect_garbage()?;
        Ok(writer)
    }

    fn new(
        dir: Arc<dyn Directory>,
        lock: WriterLock,
        manifest: Manifest,
        current: Option<Snapshot>,
    ) -> SnapshotWriter {
        let deleted = current
            .as_ref()
            .map(|s| s.deleted_ids().iter().copied().collect())
            .unwrap_or_default();
        SnapshotWriter {
            dir,
            _lock: lock,
            manifest,
            current,
            pending: None,
            pending_keys: HashSet::new(),
            deleted,
            deleted_changed: false,
            new_ann: None,
            new_ann_params: None,
            compacted: None,
        }
    }

    /// The last committed manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Rows committed plus rows pending.
    pub fn total_rows(&self) -> u64 {
        self.manifest.total_rows() + self.pending.as_ref().map_or(0, |p| p.len())
    }

    fn file_name(&self, stem: &str, ext: &str) -> String {
        format!("{stem}-{:016x}.{ext}", self.manifest.generation + 1)
    }

    /// Appends a row; returns its id. Rejects a wrong dimension, a non-finite component, or a key
    /// that is already live in the index.
    pub fn add(&mut self, key: &str, vector: &[f32], meta: &ItemMeta) -> Result<u64> {
        self.check_row(key, vector)?;
        if self.find_committed(key)?.is_some() {
            return Err(FormatError::DuplicateKey {
                key: key.to_owned(),
            });
        }
        self.push(key, vector, meta)
    }

    /// Adds a row, replacing the live row with the same key if there is one (it is deleted in the same
    /// commit); returns the new id and the replaced one. A key given twice before one commit is refused:
    /// the input holds a duplicate. A refused row changes nothing.
    pub fn upsert(
        &mut self,
        key: &str,
        vector: &[f32],
        meta: &ItemMeta,
    ) -> Result<(u64, Option<u64>)> {
        self.check_row(key, vector)?;
        let replaced = self.find_committed(key)?;
        let id = self.push(key, vector, meta)?;
        if let Some(old) = replaced {
            self.deleted.insert(old);
            self.deleted_changed = true;
        }
        Ok((id, replaced))
    }

    /// What [`SnapshotWriter::add`] and [`SnapshotWriter::upsert`] both refuse.
    fn check_row(&self, key: &str, vector: &[f32]) -> Result<()> {
        self.refuse_after_compaction("add rows")?;
        if vector.len() != self.manifest.dim as usize {
            return Err(FormatError::DimensionMismatch {
                expected: self.manifest.dim as usize,
                actual: vector.len(),
                key: key.to_owned(),
            });
        }
        if let Some(component) = vector.iter().position(|x| !x.is_finite()) {
            return Err(FormatError::InvalidInput {
                key: key.to_owned(),
                detail: format!(
                    "component {component} is {} (vectors must be finite)",
                    vector[component]
                ),
            });
        }
        if self.pending_keys.contains(key) {
            return Err(FormatError::DuplicateKey {
                key: key.to_owned(),
            });
        }
        Ok(())
    }

    fn refuse_after_compaction(&self, what: &str) -> Result<()> {
        match self.compacted {
            Some(_) => Err(FormatError::Conflict {
                what: format!("cannot {what} after compact() before the commit: the compaction renumbers rows; commit first"),
            }),
            None => Ok(()),
        }
    }

    fn push(&mut self, key: &str, vector: &[f32], meta: &ItemMeta) -> Result<u64> {
        if self.pending.is_none() {
            let name = self.file_name("seg", "fiqs");
            self.pending = Some(SegmentWriter::create(
                self.dir.as_ref(),
                &name,
                self.manifest.dim as usize,
                self.manifest.vector_type,
            )?);
        }
        let pending = self.pending.as_mut().expect("created above");
        let id = self.manifest.total_rows() + pending.len();
        pending.push(key, vector, meta)?;
        self.pending_keys.insert(key.to_owned());
        Ok(id)
    }

    /// Rewrites the live rows (committed, minus every deletion so far, pending ones included) into one
    /// new segment for the next commit, which then has no tombstones. Rows keep their order but are
    /// renumbered `0..live`, so the ANN files are dropped at that commit unless new ones are set (see
    /// [`SnapshotWriter::set_ann`]); returns the new segment so that they can be built from it. Refused
    /// while rows are pending: commit them first.
    pub fn compact(&mut self) -> Result<Option<Segment>> {
        if self.pending.is_some() {
            return Err(FormatError::Conflict {
                what: "cannot compact with rows added but not committed; commit them first".into(),
            });
        }
        self.refuse_after_compaction("compact twice")?;
        let Some(current) = self.current.clone() else {
            return Ok(None);
        };
        let name = self.file_name("seg", "fiqs");
        let mut writer = SegmentWriter::create(
            self.dir.as_ref(),
            &name,
            self.manifest.dim as usize,
            self.manifest.vector_type,
        )?;
        for (segment, entry) in current.segments().iter().zip(&current.manifest().segments) {
            for row in 0..segment.len() {
                if self.deleted.contains(&(entry.base_id + row)) {
                    continue;
                }
                writer.push(segment.key(row)?, &segment.vector(row), &segment.meta(row)?)?;
            }
        }
        let summary = writer.finish()?;
        let entry = SegmentEntry {
            file: name.clone(),
            base_id: 0,
            count: summary.count,
            file_len: summary.file_len,
            header_crc: summary.header_crc,
        };
        self.compacted = Some(entry);
        if summary.count == 0 {
            return Ok(None);
        }
        Ok(Some(Segment::open(self.dir.open_read(&name)?)?))
    }

    /// Whether `key` is live in the committed index or pending in this writer.
    pub fn contains(&self, key: &str) -> Result<bool> {
        Ok(self.pending_keys.contains(key) || self.find_committed(key)?.is_some())
    }

    fn find_committed(&self, key: &str) -> Result<Option<u64>> {
        match &self.current {
            None => Ok(None),
            Some(snapshot) => Ok(snapshot.find(key)?.filter(|id| !self.deleted.contains(id))),
        }
    }

    /// Deletes the committed row with `key`. Rows added since the last commit cannot be deleted before it.
    pub fn delete(&mut self, key: &str) -> Result<u64> {
        self.refuse_after_compaction("delete rows")?;
        let id = self
            .find_committed(key)?
            .ok_or_else(|| FormatError::UnknownKey {
                key: key.to_owned(),
            })?;
        self.deleted.insert(id);
        self.deleted_changed = true;
        Ok(id)
    }

    /// Replaces the ANN files (logical name, bytes) and their JSON parameters at the next commit.
    /// An empty list removes the ANN index.
    pub fn set_ann(&mut self, files: Vec<(String, AnnFileSource)>, params: String) {
        self.new_ann = Some((files, params));
        self.new_ann_params = None;
    }

    /// Replaces only the ANN parameters (for example a tuned `nprobe`) at the next commit; the files
    /// stay as they are. Fails when the index has no ANN files.
    pub fn set_ann_params(&mut self, params: String) -> Result<()> {
        match &mut self.new_ann {
            Some((_, pending)) => *pending = params,
            None if self.manifest.ann_files.is_empty() => {
                return Err(FormatError::InvalidInput {
                    key: String::new(),
                    detail: "the index has no ANN files to set parameters for".into(),
                })
            }
            None => self.new_ann_params = Some(params),
        }
        Ok(())
    }

    /// The directory this writer commits to.
    pub fn directory(&self) -> &Arc<dyn Directory> {
        &self.dir
    }

    /// A path inside the index directory where another library may write a file for
    /// [`AnnFileSource::Staged`] (`None` for a directory that is not on the local file system: stage
    /// elsewhere then, and the commit copies). Unique within this writer.
    pub fn staging_path(&self, stem: &str) -> Option<std::path::PathBuf> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.dir.local_path(&format!(
            "{STAGING_PREFIX}{stem}-{}-{n}",
            std::process::id()
        ))
    }

    /// Sets a named setting at the next commit.
    pub fn set_setting(&mut self, name: &str, value: &str) {
        self.manifest
            .settings
            .insert(name.to_owned(), value.to_owned());
    }

    /// Makes everything since the last commit durable and visible, as one new version; returns its manifest.
    pub fn commit(&mut self) -> Result<&Manifest> {
        let mut next = self.manifest.clone();
        next.generation += 1;
        if let Some(pending) = self.pending.take() {
            let file = self.file_name("seg", "fiqs");
            let summary = pending.finish()?;
            next.segments.push(SegmentEntry {
                file,
                base_id: self.manifest.total_rows(),
                count: summary.count,
                file_len: summary.file_len,
                header_crc: summary.header_crc,
            });
        }
        if let Some(entry) = self.compacted.take() {
            next.segments = if entry.count == 0 {
                Vec::new()
            } else {
                vec![entry]
            };
            next.tombstones = None;
            if self.new_ann.is_none() {
                // The ANN files name the old row ids.
                next.ann_files.clear();
                next.ann_params.clear();
                self.new_ann_params = None;
            }
        } else if self.deleted_changed {
            let ids: Vec<u64> = self.deleted.iter().copied().collect();
            next.tombstones = Some(
                self.write_whole_file(&self.file_name("tomb", "fiqt"), &encode_tombstones(&ids))?,
            );
        }
        if let Some((files, params)) = self.new_ann.take() {
            next.ann_files.clear();
            for (name, source) in files {
                if !crate::manifest::is_plain_file_name(&name) {
                    return Err(FormatError::InvalidInput {
                        key: name,
                        detail: "ANN file names may hold only letters, digits, '.', '-' and '_'"
                            .into(),
                    });
                }
                let file = self.file_name(&format!("ann-{name}"), "bin");
                let entry = match source {
                    AnnFileSource::Bytes(bytes) => self.write_whole_file(&file, &bytes)?,
                    AnnFileSource::Staged(path) => {
                        let (len, crc32) = length_and_crc(&path)?;
                        self.dir.adopt(&path, &file)?;
                        FileEntry { file, len, crc32 }
                    }
                    AnnFileSource::Kept => self
                        .manifest
                        .ann_files
                        .iter()
                        .find(|a| a.name == name)
                        .map(|a| a.entry.clone())
                        .ok_or_else(|| FormatError::InvalidInput {
                            key: name.clone(),
                            detail: "no ANN file of this name to keep in the current version"
                                .into(),
                        })?,
                };
                next.ann_files.push(AnnFileEntry { name, entry });
            }
            next.ann_params = params;
        }
        if let Some(params) = self.new_ann_params.take() {
            next.ann_params = params;
        }
        // The moment of commit: before this rename readers see the old version, after it the new one.
        self.dir.atomic_write(MANIFEST_FILE, &next.encode()?)?;
        self.manifest = next;
        self.pending_keys.clear();
        self.deleted_changed = false;
        let current = Snapshot::open(self.dir.clone())?;
        self.deleted = current.deleted_ids().iter().copied().collect();
        self.current = Some(current);
        self.collect_garbage()?;
        Ok(&self.manifest)
    }

    fn write_whole_file(&self, name: &str, bytes: &[u8]) -> Result<FileEntry> {
        let mut file = self.dir.create(name)?;
        file.write_all(bytes)
            .map_err(|e| FormatError::io(self.dir.path_of(name), e))?;
        file.finish()?;
        Ok(FileEntry {
            file: name.to_owned(),
            len: bytes.len() as u64,
            crc32: crc32fast::hash(bytes),
        })
    }

    /// Removes files no manifest names: leftovers of an interrupted commit, or versions replaced since,
    /// except those a reader may still use: a file written at generation `f` is kept while some reader
    /// holds a lease on a generation `l` with `f <= l < current` (SPEC.md, "Readers, leases and garbage
    /// collection").
    fn collect_garbage(&self) -> Result<()> {
        let keep: HashSet<&str> = self
            .manifest
            .files()
            .chain([MANIFEST_FILE, LOCK_FILE])
            .collect();
        let leased = self.dir.leased_generations()?;
        let current = self.manifest.generation;
        for name in self.dir.list()? {
            let ours = name.starts_with("seg-")
                || name.starts_with("tomb-")
                || name.starts_with("ann-")
                || name.starts_with(STAGING_PREFIX)
                || name == "MANIFEST.tmp";
            if !ours || keep.contains(name.as_str()) {
                continue;
            }
            let in_use = file_generation(&name)
                .is_some_and(|f| leased.iter().any(|&l| f <= l && l < current));
            if !in_use {
                self.dir.delete(&name)?;
            }
        }
        Ok(())
    }
}

/// The generation that wrote a segment, tombstone or ANN file: the 16 hex digits before its extension
/// (SPEC.md, "The index directory"). `None` for staged and temporary files, which no reader uses.
pub fn file_generation(name: &str) -> Option<u64> {
    if !(name.starts_with("seg-") || name.starts_with("tomb-") || name.starts_with("ann-")) {
        return None;
    }
    let (stem, _ext) = name.rsplit_once('.')?;
    let hex = stem.get(stem.len().checked_sub(16)?..)?;
    u64::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::file_generation;

    #[test]
    fn file_generations_come_from_names() {
        assert_eq!(file_generation("seg-000000000000002a.fiqs"), Some(42));
        assert_eq!(file_generation("ann-ivf-0000000000000003.bin"), Some(3));
        assert_eq!(file_generation("tomb-0000000000000010.fiqt"), Some(16));
        assert_eq!(file_generation(".staged-ivf-12-0"), None);
        assert_eq!(file_generation("MANIFEST.tmp"), None);
    }
}
