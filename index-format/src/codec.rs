//! Little helpers shared by the decoders: bounds-checked little-endian reads and the bincode configuration
//! used for every structured record (manifest, item metadata).

use crate::error::{FormatError, Result};
use std::path::Path;

/// bincode 2 with fixed-width little-endian integers, so that SPEC.md can state every byte; `LIMIT` bounds
/// what a decoder will allocate for a hostile input.
pub(crate) fn bincode_config<const LIMIT: usize>() -> bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Fixint,
    bincode::config::Limit<LIMIT>,
> {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<LIMIT>()
}

pub(crate) fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

pub(crate) fn read_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// `bytes[offset..offset+len]`, or a `Truncated`/`Corrupt` error naming the region.
pub(crate) fn slice<'a>(
    bytes: &'a [u8],
    offset: u64,
    len: u64,
    path: &Path,
    what: &'static str,
) -> Result<&'a [u8]> {
    let end = offset.checked_add(len).ok_or_else(|| {
        FormatError::corrupt(
            path,
            what,
            format!("offset {offset} + length {len} overflows"),
        )
    })?;
    if end > bytes.len() as u64 {
        return Err(FormatError::Truncated {
            path: path.to_owned(),
            expected: end,
            actual: bytes.len() as u64,
        });
    }
    Ok(&bytes[offset as usize..end as usize])
}

pub(crate) fn check_crc(
    path: &Path,
    region: impl Into<String>,
    bytes: &[u8],
    stored: u32,
) -> Result<()> {
    let computed = crc32fast::hash(bytes);
    if computed != stored {
        return Err(FormatError::ChecksumMismatch {
            path: path.to_owned(),
            region: region.into(),
            stored,
            computed,
        });
    }
    Ok(())
}

pub(crate) fn check_magic(
    path: &Path,
    bytes: &[u8],
    magic: &[u8; 8],
    expected: &'static str,
) -> Result<()> {
    if bytes.len() < magic.len() || &bytes[..magic.len()] != magic {
        return Err(FormatError::BadMagic {
            path: path.to_owned(),
            expected,
            found: bytes[..bytes.len().min(magic.len())].to_vec(),
        });
    }
    Ok(())
}

/// Rounds `offset` up to a multiple of `align` (a power of two).
pub(crate) fn align_up(offset: u64, align: u64) -> u64 {
    offset.div_ceil(align) * align
}
