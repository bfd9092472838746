//! Tombstones: the ids deleted from an index. Deleting writes a new, small tombstone file and leaves the
//! segments (and their vectors) untouched; searches skip tombstoned ids.

use std::path::Path;

use crate::codec::{check_crc, check_magic, read_u32, read_u64, slice};
use crate::error::{FormatError, Result};
use crate::version::{FormatVersion, CURRENT};

/// The first eight bytes of a tombstone file.
pub const TOMBSTONE_MAGIC: &[u8; 8] = b"FIQTOMB\0";
const HEADER_LEN: u64 = 24;

/// Encodes sorted, distinct ids.
pub fn encode_tombstones(ids: &[u64]) -> Vec<u8> {
    debug_assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let mut out = Vec::with_capacity(HEADER_LEN as usize + ids.len() * 8 + 4);
    out.extend_from_slice(TOMBSTONE_MAGIC);
    out.extend_from_slice(&(CURRENT as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(ids.len() as u64).to_le_bytes());
    for id in ids {
        out.extend_from_slice(&id.to_le_bytes());
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes a tombstone file, checking that ids are sorted, distinct and below `total_rows`.
pub fn decode_tombstones(bytes: &[u8], total_rows: u64, path: &Path) -> Result<Vec<u64>> {
    let header = slice(bytes, 0, HEADER_LEN, path, "tombstone header")?;
    check_magic(path, header, TOMBSTONE_MAGIC, "tombstone")?;
    FormatVersion::check(path, read_u32(header, 8))?;
    let count = read_u64(header, 16);
    let covered_len = count
        .checked_mul(8)
        .and_then(|ids_len| ids_len.checked_add(HEADER_LEN))
        .ok_or_else(|| {
            FormatError::corrupt(path, "tombstone header", format!("count {count} overflows"))
        })?;
    let covered = slice(bytes, 0, covered_len, path, "tombstone ids")?;
    let stored = slice(bytes, covered.len() as u64, 4, path, "tombstone checksum")?;
    check_crc(path, "tombstones", covered, read_u32(stored, 0))?;
    let ids: Vec<u64> = (0..count as usize)
        .map(|i| read_u64(covered, HEADER_LEN as usize + i * 8))
        .collect();
    if let Some(w) = ids.windows(2).find(|w| w[0] >= w[1]) {
        return Err(FormatError::corrupt(
            path,
            "tombstones",
            format!("ids {} and {} are not strictly increasing", w[0], w[1]),
        ));
    }
    if let Some(&last) = ids.last() {
        if last >= total_rows {
            return Err(FormatError::corrupt(
                path,
                "tombstones",
                format!("id {last} is beyond the {total_rows} rows of the index"),
            ));
        }
    }
    Ok(ids)
}
