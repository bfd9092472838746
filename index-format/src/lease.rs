//! Reader leases: how a writer knows that no reader, in any process, can still need the files of an
//! old version (SPEC.md, "Readers, leases and garbage collection").
//!
//! A reader of generation `g` holds a *shared* advisory lock (`flock`) on the file `lease-<g>.lock` for
//! as long as its snapshot lives. The kernel drops the lock when the reader's process dies, however it
//! dies, so a crashed reader never pins files forever. The writer probes a lease file by trying to take
//! an *exclusive* lock without waiting: if that fails, some reader holds generation `g`; if it succeeds,
//! none does, and the writer deletes the lease file while holding the lock.
//!
//! The race between a reader that has just opened a lease file and a writer that deletes it is closed
//! the usual way for lock files: after its lock is granted, the reader checks that the path still names
//! the file it locked (same device and inode); if not, the file was deleted under it and it starts over.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{FormatError, Result};

/// Prefix of lease file names; the rest is the generation as 16 lowercase hex digits, then `.lock`.
pub const LEASE_PREFIX: &str = "lease-";
const LEASE_SUFFIX: &str = ".lock";

/// The name of the lease file of `generation`.
pub fn lease_file_name(generation: u64) -> String {
    format!("{LEASE_PREFIX}{generation:016x}{LEASE_SUFFIX}")
}

/// The generation a lease file name stands for, if `name` is one.
pub fn lease_generation(name: &str) -> Option<u64> {
    let hex = name
        .strip_prefix(LEASE_PREFIX)?
        .strip_suffix(LEASE_SUFFIX)?;
    (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
}

/// Holds a shared lock on a lease file on disk; dropping it releases the lock. `None` when the index
/// directory is read-only to this process: no writer can work there either, so nothing needs keeping.
pub(crate) struct DiskLease {
    file: Option<(File, PathBuf)>,
}

impl Drop for DiskLease {
    fn drop(&mut self) {
        let Some((file, path)) = self.file.take() else {
            return;
        };
        // The last reader of a generation removes its lease file, so that files do not pile up between
        // writes. Turning our shared lock into an exclusive one succeeds only when no other reader holds
        // the file; one that opened it meanwhile finds it unlinked once locked, and starts over.
        if file.try_lock().is_ok() && still_linked(&file, &path).unwrap_or(false) {
            let _ = fs::remove_file(&path);
        }
    }
}

/// Takes a shared lease on `generation` in the directory `root`. Never waits for the writer: if the
/// writer is probing this very file (it holds the exclusive lock for the instant it takes to delete it),
/// the reader opens the file again, which is then a new one.
pub(crate) fn take_disk_lease(root: &Path, generation: u64) -> Result<DiskLease> {
    let path = root.join(lease_file_name(generation));
    for _ in 0..1000 {
        let file = match OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
        {
            Ok(file) => file,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
                ) =>
            {
                return Ok(DiskLease { file: None });
            }
            Err(e) => return Err(FormatError::io(&path, e)),
        };
        match file.try_lock_shared() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                std::thread::yield_now();
                continue;
            }
            Err(TryLockError::Error(e)) => return Err(FormatError::io(&path, e)),
        }
        if still_linked(&file, &path)? {
            return Ok(DiskLease {
                file: Some((file, path)),
            });
        }
    }
    Err(FormatError::io(
        &path,
        io::Error::new(
            io::ErrorKind::WouldBlock,
            "could not take a reader lease after 1000 tries (is another program locking lease files?)",
        ),
    ))
}

#[cfg(unix)]
fn still_linked(file: &File, path: &Path) -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let held = file.metadata().map_err(|e| FormatError::io(path, e))?;
    match fs::metadata(path) {
        Ok(now) => Ok(now.dev() == held.dev() && now.ino() == held.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(FormatError::io(path, e)),
    }
}

#[cfg(not(unix))]
fn still_linked(_file: &File, path: &Path) -> Result<bool> {
    // Elsewhere a locked file cannot be deleted at all, so the file we locked is the one at `path`.
    Ok(path.exists())
}

/// The generations some reader holds a lease on in `root`. Lease files nobody holds are deleted on
/// the way (the caller is the single writer).
pub(crate) fn held_disk_leases(root: &Path, names: &[String]) -> Result<Vec<u64>> {
    let mut held = Vec::new();
    for name in names {
        let Some(generation) = lease_generation(name) else {
            continue;
        };
        let path: PathBuf = root.join(name);
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(FormatError::io(&path, e)),
        };
        match file.try_lock() {
            Ok(()) => {
                // Nobody holds it; a reader that opened it before this delete finds it unlinked after
                // its lock is granted and takes a fresh one.
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(FormatError::io(&path, e)),
                }
            }
            Err(TryLockError::WouldBlock) => held.push(generation),
            Err(TryLockError::Error(e)) => return Err(FormatError::io(&path, e)),
        }
    }
    held.sort_unstable();
    held.dedup();
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(lease_generation(&lease_file_name(0x2a)), Some(0x2a));
        assert_eq!(lease_generation("lease-xyz.lock"), None);
        assert_eq!(lease_generation("seg-000000000000002a.fiqs"), None);
    }

    #[test]
    fn a_held_lease_is_seen_and_a_released_one_is_collected() {
        let dir = tempfile::tempdir().unwrap();
        let lease = take_disk_lease(dir.path(), 7).unwrap();
        let names = vec![lease_file_name(7)];
        assert_eq!(held_disk_leases(dir.path(), &names).unwrap(), vec![7]);
        let second = take_disk_lease(dir.path(), 7).unwrap();
        drop(lease);
        assert_eq!(held_disk_leases(dir.path(), &names).unwrap(), vec![7]);
        drop(second);
        assert!(
            !dir.path().join(lease_file_name(7)).exists(),
            "the last reader removes its lease file"
        );
        assert!(held_disk_leases(dir.path(), &names).unwrap().is_empty());
        // A lease file left by a reader that died is collected by the writer's probe.
        let stale = take_disk_lease(dir.path(), 8).unwrap();
        std::mem::forget(stale); // the file stays, locked by our still-open descriptor...
        let names = vec![lease_file_name(8)];
        assert_eq!(held_disk_leases(dir.path(), &names).unwrap(), vec![8]);
    }
}
