//! Checksums of a FAISS file checked as it is used, so that a damaged byte is an error at search time,
//! not a silently different answer (measured before this existed: of 200 random single-byte flips in a
//! small index's FAISS file, `verify` caught all, search answered 7 with different results).
//!
//! The record holds the CRC-32 of the bytes before the lists (headers, centroids, code parameters,
//! list sizes), checked at open before FAISS parses them, and one CRC-32 per inverted list (its codes
//! then its ids), checked the first time a search probes the list and remembered for the life of the
//! opened index. A list costs one extra pass over its bytes once per process; searches that follow
//! read it from the page cache the check warmed.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

use super::AnnError;

const UNCHECKED: u8 = 0;
const GOOD: u8 = 1;
const BAD: u8 = 2;

/// The CRC-32 of `bytes[..lists_offset]` and of every list, for a file whose lists hold `sizes[l]`
/// entries of `code_size + 8` bytes each, back to back in list order from `lists_offset`.
pub(crate) fn checksums(
    bytes: &[u8],
    lists_offset: u64,
    sizes: &[usize],
    code_size: usize,
) -> (u32, Vec<u32>) {
    let head = crc32fast::hash(&bytes[..lists_offset as usize]);
    let offsets = list_offsets(lists_offset, sizes, code_size);
    let lists = offsets
        .windows(2)
        .map(|w| crc32fast::hash(&bytes[w[0] as usize..w[1] as usize]))
        .collect();
    (head, lists)
}

fn list_offsets(lists_offset: u64, sizes: &[usize], code_size: usize) -> Vec<u64> {
    let mut offsets = Vec::with_capacity(sizes.len() + 1);
    let mut at = lists_offset;
    offsets.push(at);
    for &n in sizes {
        at += n as u64 * (code_size as u64 + 8);
        offsets.push(at);
    }
    offsets
}

/// Maps a FAISS file read-only, for checksumming.
pub(crate) fn map(path: &Path) -> Result<memmap2::Mmap, AnnError> {
    let file = File::open(path).map_err(|e| AnnError::io(path, e))?;
    // SAFETY: read-only map of a committed file, which fiq never modifies (files are only created whole
    // and deleted); bytes changed by another program are what the checksums are here to catch.
    unsafe { memmap2::Mmap::map(&file) }.map_err(|e| AnnError::io(path, e))
}

/// Checks the bytes before the lists against the record, before FAISS parses them.
pub(crate) fn check_head(
    path: &Path,
    bytes: &[u8],
    lists_offset: u64,
    stored: u32,
) -> Result<(), AnnError> {
    let head = bytes
        .get(..lists_offset as usize)
        .ok_or_else(|| AnnError::CorruptFile {
            path: path.to_owned(),
            problem: format!(
                "the file is {} bytes, the record puts its lists at {lists_offset}",
                bytes.len()
            ),
        })?;
    let computed = crc32fast::hash(head);
    if computed != stored {
        return Err(AnnError::CorruptFile {
            path: path.to_owned(),
            problem: format!(
                "checksum mismatch in the header section (bytes 0..{lists_offset}: headers, centroids, \
                 list sizes): stored {stored:08x}, computed {computed:08x}"
            ),
        });
    }
    Ok(())
}

/// Per-list checksums of an opened FAISS file, checked once per list on first probe.
pub(crate) struct ListChecks {
    map: memmap2::Mmap,
    path: PathBuf,
    offsets: Vec<u64>,
    crcs: Vec<u32>,
    state: Vec<AtomicU8>,
}

impl ListChecks {
    /// `sizes` and `code_size` as FAISS read them (open checked they end exactly at the end of the
    /// file), `crcs` as recorded.
    pub(crate) fn new(
        map: memmap2::Mmap,
        path: &Path,
        lists_offset: u64,
        sizes: &[usize],
        code_size: usize,
        crcs: Vec<u32>,
    ) -> Result<ListChecks, AnnError> {
        if crcs.len() != sizes.len() {
            return Err(AnnError::CorruptFile {
                path: path.to_owned(),
                problem: format!(
                    "the record holds {} list checksums for {} lists",
                    crcs.len(),
                    sizes.len()
                ),
            });
        }
        Ok(ListChecks {
            map,
            path: path.to_owned(),
            offsets: list_offsets(lists_offset, sizes, code_size),
            state: (0..crcs.len()).map(|_| AtomicU8::new(UNCHECKED)).collect(),
            crcs,
        })
    }

    /// Checks every list named in `lists` (-1 = none) that no search checked before.
    pub(crate) fn check(&self, lists: &[i64]) -> Result<(), AnnError> {
        for &list in lists {
            let Ok(l) = usize::try_from(list) else {
                continue;
            };
            let Some(state) = self.state.get(l) else {
                return Err(AnnError::CorruptFile {
                    path: self.path.clone(),
                    problem: format!(
                        "the coarse quantizer named list {l} of {}",
                        self.state.len()
                    ),
                });
            };
            match state.load(Ordering::Acquire) {
                GOOD => continue,
                BAD => return Err(self.mismatch(l)),
                _ => {}
            }
            let bytes = &self.map[self.offsets[l] as usize..self.offsets[l + 1] as usize];
            // Two searches may check the same list at once; both compute the same answer.
            let ok = crc32fast::hash(bytes) == self.crcs[l];
            state.store(if ok { GOOD } else { BAD }, Ordering::Release);
            if !ok {
                return Err(self.mismatch(l));
            }
        }
        Ok(())
    }

    fn mismatch(&self, l: usize) -> AnnError {
        let bytes = &self.map[self.offsets[l] as usize..self.offsets[l + 1] as usize];
        AnnError::CorruptFile {
            path: self.path.clone(),
            problem: format!(
                "checksum mismatch in inverted list {l} (bytes {}..{}): stored {:08x}, computed {:08x}",
                self.offsets[l],
                self.offsets[l + 1],
                self.crcs[l],
                crc32fast::hash(bytes)
            ),
        }
    }
}
