//! Segment files: an immutable batch of items (vectors, keys, metadata) written once by one commit.
//!
//! The byte layout is drawn in SPEC.md. Opening a segment checks the header and the section table only, so
//! it costs a page or two however many vectors the file holds; [`Segment::verify`] checks every byte.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use half::f16;

use crate::codec::{align_up, check_crc, check_magic, read_u32, read_u64, slice};
use crate::directory::{Directory, FileBytes, FileWriter};
use crate::error::{FormatError, Result};
use crate::meta::{decode_item_meta, encode_item_meta, ItemMeta};
use crate::version::{FormatVersion, CURRENT};

/// The first eight bytes of every segment file.
pub const SEGMENT_MAGIC: &[u8; 8] = b"FIQSEG\0\0";
/// Bytes in the fixed header.
pub const HEADER_LEN: usize = 64;
/// Bytes in one section-table entry.
pub const SECTION_ENTRY_LEN: usize = 32;
/// Every section starts at a multiple of this, so vectors can be viewed in place and line up with cache lines.
pub const SECTION_ALIGN: u64 = 64;
/// Largest dimension a reader accepts.
pub const MAX_DIM: u32 = 65_536;

/// How vector components are stored.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum VectorType {
    /// IEEE 754 binary32, little-endian.
    F32 = 0,
    /// IEEE 754 binary16, little-endian: half the bytes, about three significant digits.
    F16 = 1,
}

impl VectorType {
    fn from_u32(path: &Path, value: u32) -> Result<VectorType> {
        match value {
            0 => Ok(VectorType::F32),
            1 => Ok(VectorType::F16),
            other => Err(FormatError::corrupt(
                path,
                "segment header",
                format!("unknown vector type {other}"),
            )),
        }
    }

    /// Bytes per component.
    pub fn size(self) -> usize {
        match self {
            VectorType::F32 => 4,
            VectorType::F16 => 2,
        }
    }
}

/// The sections of a segment, in the order they are written.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionKind {
    /// `count * dim` components, row-major.
    Vectors = 1,
    /// `count + 1` u64 offsets into `KeyBytes`.
    KeyOffsets = 2,
    /// The keys' UTF-8 bytes, concatenated.
    KeyBytes = 3,
    /// `count` u32 rows, sorted by their key's bytes: binary search finds a key without building a map.
    KeyOrder = 4,
    /// `count + 1` u64 offsets into `MetaBytes`.
    MetaOffsets = 5,
    /// The bincode-encoded [`ItemMeta`] records, concatenated.
    MetaBytes = 6,
}

const SECTIONS: [SectionKind; 6] = [
    SectionKind::Vectors,
    SectionKind::KeyOffsets,
    SectionKind::KeyBytes,
    SectionKind::KeyOrder,
    SectionKind::MetaOffsets,
    SectionKind::MetaBytes,
];

impl SectionKind {
    fn name(self) -> &'static str {
        match self {
            SectionKind::Vectors => "vectors",
            SectionKind::KeyOffsets => "key offsets",
            SectionKind::KeyBytes => "key bytes",
            SectionKind::KeyOrder => "key order",
            SectionKind::MetaOffsets => "metadata offsets",
            SectionKind::MetaBytes => "metadata bytes",
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Section {
    offset: u64,
    length: u64,
    crc32: u32,
}

/// What a finished segment looks like from the manifest's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentSummary {
    /// Items in the segment.
    pub count: u64,
    /// Length of the file in bytes.
    pub file_len: u64,
    /// CRC-32 of the header, recorded in the manifest so a swapped file is caught at open.
    pub header_crc: u32,
}

/// Writes one segment file, streaming vectors to disk as they come; keys and metadata are kept in memory
/// until [`SegmentWriter::finish`] (they are small next to the vectors).
pub struct SegmentWriter {
    file: Box<dyn FileWriter>,
    path: std::path::PathBuf,
    dim: usize,
    vector_type: VectorType,
    count: u64,
    vectors_crc: crc32fast::Hasher,
    vectors_len: u64,
    key_offsets: Vec<u64>,
    key_bytes: Vec<u8>,
    meta_offsets: Vec<u64>,
    meta_bytes: Vec<u8>,
    scratch: Vec<u8>,
}

fn vectors_offset() -> u64 {
    align_up(
        (HEADER_LEN + SECTIONS.len() * SECTION_ENTRY_LEN) as u64,
        SECTION_ALIGN,
    )
}

impl SegmentWriter {
    /// Starts a new segment file `name` in `dir`.
    pub fn create(
        dir: &dyn Directory,
        name: &str,
        dim: usize,
        vector_type: VectorType,
    ) -> Result<SegmentWriter> {
        if dim == 0 || dim > MAX_DIM as usize {
            return Err(FormatError::InvalidInput {
                key: String::new(),
                detail: format!("dimension {dim} is outside 1..={MAX_DIM}"),
            });
        }
        let path = dir.path_of(name);
        let mut file = dir.create(name)?;
        // Header and table are written last, once every section's checksum is known.
        file.write_all(&vec![0u8; vectors_offset() as usize])
            .map_err(|e| FormatError::io(&path, e))?;
        Ok(SegmentWriter {
            file,
            path,
            dim,
            vector_type,
            count: 0,
            vectors_crc: crc32fast::Hasher::new(),
            vectors_len: 0,
            key_offsets: vec![0],
            key_bytes: Vec::new(),
            meta_offsets: vec![0],
            meta_bytes: Vec::new(),
            scratch: Vec::new(),
        })
    }

    /// Items pushed so far.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether nothing was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Appends one item. The caller checks dimension, finiteness and key uniqueness across segments; this
    /// checks what the bytes need (dimension, non-empty key).
    pub fn push(&mut self, key: &str, vector: &[f32], meta: &ItemMeta) -> Result<()> {
        if vector.len() != self.dim {
            return Err(FormatError::DimensionMismatch {
                expected: self.dim,
                actual: vector.len(),
                key: key.to_owned(),
            });
        }
        if key.is_empty() {
            return Err(FormatError::InvalidInput {
                key: key.to_owned(),
                detail: "keys must not be empty".into(),
            });
        }
        if self.count >= u32::MAX as u64 {
            return Err(FormatError::InvalidInput {
                key: key.to_owned(),
                detail:
                    "a segment holds at most 2^32-1 items; commit and continue in a new segment"
                        .into(),
            });
        }
        self.scratch.clear();
        match self.vector_type {
            VectorType::F32 => {
                for x in vector {
                    self.scratch.extend_from_slice(&x.to_le_bytes());
                }
            }
            VectorType::F16 => {
                for x in vector {
                    self.scratch
                        .extend_from_slice(&f16::from_f32(*x).to_le_bytes());
                }
            }
        }
        self.file
            .write_all(&self.scratch)
            .map_err(|e| FormatError::io(&self.path, e))?;
        self.vectors_crc.update(&self.scratch);
        self.vectors_len += self.scratch.len() as u64;
        self.key_bytes.extend_from_slice(key.as_bytes());
        self.key_offsets.push(self.key_bytes.len() as u64);
        self.meta_bytes.extend_from_slice(&encode_item_meta(meta)?);
        self.meta_offsets.push(self.meta_bytes.len() as u64);
        self.count += 1;
        Ok(())
    }

    /// Writes the remaining sections, the table and the header, and makes the file durable.
    pub fn finish(mut self) -> Result<SegmentSummary> {
        let key_at = |i: usize| {
            &self.key_bytes[self.key_offsets[i] as usize..self.key_offsets[i + 1] as usize]
        };
        let mut order: Vec<u32> = (0..self.count as u32).collect();
        order.sort_unstable_by(|&a, &b| key_at(a as usize).cmp(key_at(b as usize)));
        if let Some(pair) = order
            .windows(2)
            .find(|w| key_at(w[0] as usize) == key_at(w[1] as usize))
        {
            return Err(FormatError::DuplicateKey {
                key: String::from_utf8_lossy(key_at(pair[0] as usize)).into_owned(),
            });
        }

        let mut sections = [Section::default(); SECTIONS.len()];
        sections[0] = Section {
            offset: vectors_offset(),
            length: self.vectors_len,
            crc32: self.vectors_crc.clone().finalize(),
        };
        let mut at = vectors_offset() + self.vectors_len;
        let tail: [Vec<u8>; 5] = [
            le_bytes_u64(&self.key_offsets),
            std::mem::take(&mut self.key_bytes),
            order.iter().flat_map(|r| r.to_le_bytes()).collect(),
            le_bytes_u64(&self.meta_offsets),
            std::mem::take(&mut self.meta_bytes),
        ];
        for (i, bytes) in tail.iter().enumerate() {
            let offset = align_up(at, SECTION_ALIGN);
            let padding = (offset - at) as usize;
            self.file
                .write_all(&[0u8; SECTION_ALIGN as usize][..padding])
                .map_err(|e| FormatError::io(&self.path, e))?;
            self.file
                .write_all(bytes)
                .map_err(|e| FormatError::io(&self.path, e))?;
            sections[i + 1] = Section {
                offset,
                length: bytes.len() as u64,
                crc32: crc32fast::hash(bytes),
            };
            at = offset + bytes.len() as u64;
        }
        let file_len = at;

        let mut table = Vec::with_capacity(SECTIONS.len() * SECTION_ENTRY_LEN);
        for (kind, s) in SECTIONS.iter().zip(&sections) {
            table.extend_from_slice(&(*kind as u32).to_le_bytes());
            table.extend_from_slice(&0u32.to_le_bytes());
            table.extend_from_slice(&s.offset.to_le_bytes());
            table.extend_from_slice(&s.length.to_le_bytes());
            table.extend_from_slice(&s.crc32.to_le_bytes());
            table.extend_from_slice(&0u32.to_le_bytes());
        }
        let mut header = [0u8; HEADER_LEN];
        header[0..8].copy_from_slice(SEGMENT_MAGIC);
        header[8..12].copy_from_slice(&(CURRENT as u32).to_le_bytes());
        header[12..16].copy_from_slice(&(self.vector_type as u32).to_le_bytes());
        header[16..20].copy_from_slice(&(self.dim as u32).to_le_bytes());
        header[20..24].copy_from_slice(&(SECTIONS.len() as u32).to_le_bytes());
        header[24..32].copy_from_slice(&self.count.to_le_bytes());
        header[32..40].copy_from_slice(&(HEADER_LEN as u64).to_le_bytes());
        header[40..48].copy_from_slice(&file_len.to_le_bytes());
        header[48..52].copy_from_slice(&crc32fast::hash(&table).to_le_bytes());
        let header_crc = crc32fast::hash(&header[..60]);
        header[60..64].copy_from_slice(&header_crc.to_le_bytes());

        self.file
            .seek(SeekFrom::Start(0))
            .map_err(|e| FormatError::io(&self.path, e))?;
        self.file
            .write_all(&header)
            .map_err(|e| FormatError::io(&self.path, e))?;
        self.file
            .write_all(&table)
            .map_err(|e| FormatError::io(&self.path, e))?;
        self.file.finish()?;
        Ok(SegmentSummary {
            count: self.count,
            file_len,
            header_crc,
        })
    }
}

fn le_bytes_u64(values: &[u64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// An opened segment: views into its (usually memory-mapped) bytes.
#[derive(Debug, Clone)]
pub struct Segment {
    bytes: FileBytes,
    version: FormatVersion,
    vector_type: VectorType,
    dim: usize,
    count: u64,
    header_crc: u32,
    sections: [Section; SECTIONS.len()],
    /// Whether each section's checksum matched, once a reader checked it (shared by clones).
    checked: Arc<[OnceLock<bool>; SECTIONS.len()]>,
}

impl Segment {
    /// Checks the header and the section table; touches nothing else.
    pub fn open(bytes: FileBytes) -> Result<Segment> {
        let path = bytes.path().to_owned();
        let path = path.as_path();
        let header = slice(&bytes, 0, HEADER_LEN as u64, path, "segment header")?;
        check_magic(path, header, SEGMENT_MAGIC, "segment")?;
        let header_crc = read_u32(header, 60);
        check_crc(path, "segment header", &header[..60], header_crc)?;
        let version = FormatVersion::check(path, read_u32(header, 8))?;
        let vector_type = VectorType::from_u32(path, read_u32(header, 12))?;
        let dim = read_u32(header, 16);
        let section_count = read_u32(header, 20);
        let count = read_u64(header, 24);
        let table_offset = read_u64(header, 32);
        let file_len = read_u64(header, 40);
        let table_crc = read_u32(header, 48);
        if file_len != bytes.len() as u64 {
            return Err(FormatError::Truncated {
                path: path.to_owned(),
                expected: file_len,
                actual: bytes.len() as u64,
            });
        }
        if dim == 0 || dim > MAX_DIM {
            return Err(FormatError::corrupt(
                path,
                "segment header",
                format!("dimension {dim} is outside 1..={MAX_DIM}"),
            ));
        }
        if section_count as usize != SECTIONS.len() {
            return Err(FormatError::corrupt(
                path,
                "segment header",
                format!(
                    "{section_count} sections, version {} has {}",
                    version as u32,
                    SECTIONS.len()
                ),
            ));
        }
        if count > u32::MAX as u64 {
            return Err(FormatError::corrupt(
                path,
                "segment header",
                format!("item count {count} exceeds 2^32-1"),
            ));
        }
        let table = slice(
            &bytes,
            table_offset,
            (SECTIONS.len() * SECTION_ENTRY_LEN) as u64,
            path,
            "section table",
        )?;
        check_crc(path, "section table", table, table_crc)?;

        let mut sections = [Section::default(); SECTIONS.len()];
        for (i, kind) in SECTIONS.iter().enumerate() {
            let entry = &table[i * SECTION_ENTRY_LEN..(i + 1) * SECTION_ENTRY_LEN];
            let found_kind = read_u32(entry, 0);
            if found_kind != *kind as u32 {
                return Err(FormatError::corrupt(
                    path,
                    "section table",
                    format!(
                        "entry {i} has kind {found_kind}, expected {} ({})",
                        *kind as u32,
                        kind.name()
                    ),
                ));
            }
            let section = Section {
                offset: read_u64(entry, 8),
                length: read_u64(entry, 16),
                crc32: read_u32(entry, 24),
            };
            if section.offset % SECTION_ALIGN != 0 {
                return Err(FormatError::corrupt(
                    path,
                    "section table",
                    format!(
                        "{} section at offset {} is not {SECTION_ALIGN}-byte aligned",
                        kind.name(),
                        section.offset
                    ),
                ));
            }
            slice(&bytes, section.offset, section.length, path, kind.name())?;
            sections[i] = section;
        }
        let expect_len = |kind: SectionKind, expected: u64| -> Result<()> {
            let found = sections[kind as usize - 1].length;
            if found != expected {
                return Err(FormatError::corrupt(
                    path,
                    "section table",
                    format!(
                        "{} section holds {found} bytes, {expected} expected for {count} items",
                        kind.name()
                    ),
                ));
            }
            Ok(())
        };
        let vector_bytes = count
            .checked_mul(dim as u64 * vector_type.size() as u64)
            .ok_or_else(|| {
                FormatError::corrupt(path, "segment header", "vector section size overflows")
            })?;
        expect_len(SectionKind::Vectors, vector_bytes)?;
        expect_len(SectionKind::KeyOffsets, (count + 1) * 8)?;
        expect_len(SectionKind::KeyOrder, count * 4)?;
        expect_len(SectionKind::MetaOffsets, (count + 1) * 8)?;

        Ok(Segment {
            bytes,
            version,
            vector_type,
            dim: dim as usize,
            count,
            header_crc,
            sections,
            checked: Arc::new(Default::default()),
        })
    }

    /// Uses the checksum verdicts of `earlier`, the same file opened before (the caller knows it is:
    /// same name and header in an index whose files are immutable).
    pub fn share_checks(&mut self, earlier: &Segment) {
        if self.header_crc == earlier.header_crc && self.count == earlier.count {
            self.checked = earlier.checked.clone();
        }
    }

    /// Checks the checksums of the sections a search reads, once per opened file (clones share the
    /// result): the keys, key order and metadata always, the vectors when `vectors` is true. Costs one
    /// pass over those bytes the first time, an atomic load afterwards. A damaged section is then an
    /// error naming the file and the section, not a silently different answer.
    pub fn check_on_first_use(&self, vectors: bool) -> Result<()> {
        for (i, kind) in SECTIONS.iter().enumerate() {
            if *kind == SectionKind::Vectors && !vectors {
                continue;
            }
            let bytes = self.section(*kind);
            let stored = self.sections[i].crc32;
            if !*self.checked[i].get_or_init(|| crc32fast::hash(bytes) == stored) {
                check_crc(
                    self.path(),
                    format!("{} section", kind.name()),
                    bytes,
                    stored,
                )?;
            }
        }
        Ok(())
    }

    /// See [`FileBytes::expect_random_reads`]: for serving rows by id (re-ranking), not scans.
    pub fn expect_random_reads(&self) {
        self.bytes.expect_random_reads();
    }

    /// Path of the file, for messages.
    pub fn path(&self) -> &Path {
        self.bytes.path()
    }

    /// Items in the segment.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether the segment holds no items.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Components per vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// How components are stored.
    pub fn vector_type(&self) -> VectorType {
        self.vector_type
    }

    /// The version the file was written with.
    pub fn version(&self) -> FormatVersion {
        self.version
    }

    /// CRC-32 of the header (the manifest records it).
    pub fn header_crc(&self) -> u32 {
        self.header_crc
    }

    fn section(&self, kind: SectionKind) -> &[u8] {
        let s = self.sections[kind as usize - 1];
        // Bounds were checked at open.
        &self.bytes[s.offset as usize..(s.offset + s.length) as usize]
    }

    /// All vectors as one row-major f32 slice, viewed in place; `None` for f16 segments.
    pub fn vectors_f32(&self) -> Option<&[f32]> {
        match self.vector_type {
            // Alignment holds: sections start at multiples of 64 in a page-aligned map or 8-aligned buffer.
            VectorType::F32 => Some(bytemuck::cast_slice(self.section(SectionKind::Vectors))),
            VectorType::F16 => None,
        }
    }

    /// All vectors as one row-major f16 slice, viewed in place; `None` for f32 segments.
    pub fn vectors_f16(&self) -> Option<&[f16]> {
        match self.vector_type {
            VectorType::F16 => Some(bytemuck::cast_slice(self.section(SectionKind::Vectors))),
            VectorType::F32 => None,
        }
    }

    /// One row as f32 (converted for f16 segments). Panics if `row >= len()`; rows come from the caller's
    /// own range, not from file bytes.
    pub fn vector(&self, row: u64) -> std::borrow::Cow<'_, [f32]> {
        let (start, end) = (row as usize * self.dim, (row as usize + 1) * self.dim);
        match self.vector_type {
            VectorType::F32 => {
                std::borrow::Cow::Borrowed(&self.vectors_f32().expect("f32")[start..end])
            }
            VectorType::F16 => std::borrow::Cow::Owned(
                self.vectors_f16().expect("f16")[start..end]
                    .iter()
                    .map(|x| x.to_f32())
                    .collect(),
            ),
        }
    }

    fn offsets_entry(&self, kind: SectionKind, row: u64) -> u64 {
        read_u64(self.section(kind), row as usize * 8)
    }

    fn record<'a>(
        &'a self,
        offsets: SectionKind,
        data: SectionKind,
        row: u64,
        what: &'static str,
    ) -> Result<&'a [u8]> {
        if row >= self.count {
            return Err(FormatError::corrupt(
                self.path(),
                what,
                format!("row {row} out of range 0..{}", self.count),
            ));
        }
        let (start, end) = (
            self.offsets_entry(offsets, row),
            self.offsets_entry(offsets, row + 1),
        );
        let bytes = self.section(data);
        if start > end || end > bytes.len() as u64 {
            return Err(FormatError::corrupt(
                self.path(),
                what,
                format!(
                    "row {row} spans bytes {start}..{end} of a {}-byte section",
                    bytes.len()
                ),
            ));
        }
        Ok(&bytes[start as usize..end as usize])
    }

    /// The key of a row.
    pub fn key(&self, row: u64) -> Result<&str> {
        let bytes = self.record(SectionKind::KeyOffsets, SectionKind::KeyBytes, row, "key")?;
        std::str::from_utf8(bytes).map_err(|e| {
            FormatError::corrupt(self.path(), "key", format!("row {row} is not UTF-8: {e}"))
        })
    }

    /// The metadata of a row.
    pub fn meta(&self, row: u64) -> Result<ItemMeta> {
        let bytes = self.record(
            SectionKind::MetaOffsets,
            SectionKind::MetaBytes,
            row,
            "item metadata",
        )?;
        decode_item_meta(bytes).map_err(|e| {
            FormatError::corrupt(self.path(), "item metadata", format!("row {row}: {e}"))
        })
    }

    /// The row holding `key`, by binary search over the key-order section.
    pub fn find(&self, key: &str) -> Result<Option<u64>> {
        let order = self.section(SectionKind::KeyOrder);
        let (mut lo, mut hi) = (0usize, self.count as usize);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let row = read_u32(order, mid * 4) as u64;
            match self.key(row)?.as_bytes().cmp(key.as_bytes()) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(Some(row)),
            }
        }
        Ok(None)
    }

    /// Checks every byte: each section's checksum, key and metadata structure, key order, finite vectors.
    pub fn verify(&self) -> Result<()> {
        for (i, kind) in SECTIONS.iter().enumerate() {
            check_crc(
                self.path(),
                format!("{} section", kind.name()),
                self.section(*kind),
                self.sections[i].crc32,
            )?;
        }
        let mut previous: Option<&str> = None;
        let order = self.section(SectionKind::KeyOrder);
        let mut seen = vec![false; self.count as usize];
        for i in 0..self.count as usize {
            let row = read_u32(order, i * 4) as u64;
            if row >= self.count || std::mem::replace(&mut seen[row as usize], true) {
                return Err(FormatError::corrupt(
                    self.path(),
                    "key order",
                    format!("entry {i} names row {row} twice or out of range"),
                ));
            }
            let key = self.key(row)?;
            if previous.is_some_and(|p| p >= key) {
                return Err(FormatError::corrupt(
                    self.path(),
                    "key order",
                    format!("key {key:?} is out of order or duplicated"),
                ));
            }
            previous = Some(key);
            self.meta(row)?;
        }
        for row in 0..self.count {
            let v = self.vector(row);
            if let Some(component) = v.iter().position(|x| !x.is_finite()) {
                return Err(FormatError::NonFiniteVector {
                    path: self.path().to_owned(),
                    row,
                    key: self.key(row)?.to_owned(),
                    component,
                });
            }
        }
        Ok(())
    }
}
