//! Where index files live. The [`Directory`] trait hides whether bytes come from a memory map or from RAM,
//! so that everything above it (the segment reader, the commit protocol, the tests) is written once.
//!
//! [`MmapDirectory`] is the real thing: reads are memory maps, writes are durable (fsync) and the manifest
//! is replaced atomically (write a temporary file, fsync, rename, fsync the directory). [`RamDirectory`]
//! keeps files in memory for tests and for short-lived indexes.

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Cursor, Seek, SeekFrom, Write};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use crate::error::{FormatError, Result};

/// The read-only bytes of one file, cheap to clone. Backed by a memory map or by RAM.
#[derive(Clone)]
pub struct FileBytes {
    data: Arc<dyn Bytes>,
    path: Arc<Path>,
}

impl FileBytes {
    /// Wraps bytes that are already in memory (for decoders and fuzzing).
    pub fn from_vec(bytes: Vec<u8>, path: impl Into<PathBuf>) -> FileBytes {
        FileBytes {
            data: Arc::new(AlignedBytes::copy_from(&bytes)),
            path: Arc::from(path.into()),
        }
    }

    /// The path this file was read from; used in error messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Declares that the bytes will be read scattered (rows fetched by id), not scanned: a mapped file
    /// then stops reading ahead around every fault, which otherwise fills memory with neighbours of
    /// the rows actually read.
    pub fn expect_random_reads(&self) {
        self.data.expect_random_reads();
    }
}

impl Deref for FileBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        (*self.data).as_ref()
    }
}

impl fmt::Debug for FileBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FileBytes({}, {} bytes)",
            self.path.display(),
            self.len()
        )
    }
}

/// Bytes in RAM, aligned to 8 bytes so that f32/u32/u64 sections can be viewed in place, as they can in a
/// page-aligned memory map.
struct AlignedBytes {
    words: Vec<u64>,
    len: usize,
}

impl AlignedBytes {
    fn copy_from(bytes: &[u8]) -> AlignedBytes {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        AlignedBytes {
            words,
            len: bytes.len(),
        }
    }
}

/// What backs a [`FileBytes`]: a memory map or a buffer.
trait Bytes: AsRef<[u8]> + Send + Sync {
    /// Tells the kernel the bytes will be read in no particular order (no read-ahead); a no-op in
    /// memory.
    fn expect_random_reads(&self) {}
}

impl Bytes for AlignedBytes {}

impl AsRef<[u8]> for AlignedBytes {
    fn as_ref(&self) -> &[u8] {
        &bytemuck::cast_slice::<u64, u8>(&self.words)[..self.len]
    }
}

struct MappedFile(memmap2::Mmap);

impl Bytes for MappedFile {
    fn expect_random_reads(&self) {
        // Advice only: a kernel that ignores it costs read-ahead, nothing else.
        self.0.advise(memmap2::Advice::Random).ok();
    }
}

impl AsRef<[u8]> for MappedFile {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// A file being written. Nothing is visible to readers of the index until the manifest names it, so a
/// writer may crash half-way without harm; [`FileWriter::finish`] makes the bytes durable.
pub trait FileWriter: Write + Seek + Send {
    /// Flushes the file and makes it durable (fsync for files on disk).
    fn finish(self: Box<Self>) -> Result<()>;
}

/// Storage for the files of one index.
pub trait Directory: Send + Sync + fmt::Debug {
    /// The whole file, read-only. For a memory-mapped directory nothing is read until touched.
    fn open_read(&self, name: &str) -> Result<FileBytes>;
    /// Whether a file exists.
    fn exists(&self, name: &str) -> Result<bool>;
    /// Creates (or truncates) a file for writing.
    fn create(&self, name: &str) -> Result<Box<dyn FileWriter>>;
    /// Replaces `name` with `bytes` so that a reader sees either the old file or the new one, whole, even
    /// if the process or the machine dies at any point.
    fn atomic_write(&self, name: &str, bytes: &[u8]) -> Result<()>;
    /// Removes a file; removing a missing file is not an error.
    fn delete(&self, name: &str) -> Result<()>;
    /// The names of all files.
    fn list(&self) -> Result<Vec<String>>;
    /// Takes the single-writer lock of this index; it is released when the guard drops. A second
    /// writer gets [`FormatError::WriterBusy`] at once (it never waits).
    fn lock_writer(&self) -> Result<WriterLock>;
    /// Declares that a reader uses the files of `generation` until the lease drops (SPEC.md, "Readers,
    /// leases and garbage collection"). Never waits for the writer.
    fn lease(&self, generation: u64) -> Result<ReaderLease>;
    /// The generations some reader (in any process) holds a lease on; the writer keeps their files.
    fn leased_generations(&self) -> Result<Vec<u64>>;
    /// The path a file has, for messages.
    fn path_of(&self, name: &str) -> PathBuf;
    /// The path of `name` on the local file system when this directory lives there, so that libraries
    /// that open files by path (FAISS) can read and map them; `None` for in-memory directories.
    fn local_path(&self, name: &str) -> Option<PathBuf> {
        let _ = name;
        None
    }
    /// Moves a finished file written outside this directory's API (by FAISS, at `staged`) in as `name`,
    /// durably: after this returns, the file survives a crash under its new name. `staged` is gone
    /// afterwards. The default copies the bytes through [`Directory::create`].
    fn adopt(&self, staged: &Path, name: &str) -> Result<()> {
        let bytes = fs::read(staged).map_err(|e| FormatError::io(staged, e))?;
        let mut file = self.create(name)?;
        file.write_all(&bytes)
            .map_err(|e| FormatError::io(self.path_of(name), e))?;
        file.finish()?;
        fs::remove_file(staged).map_err(|e| FormatError::io(staged, e))
    }
}

/// Proof that this process holds the writer lock of an index.
pub struct WriterLock {
    _release: Box<dyn Send + Sync>,
}

impl fmt::Debug for WriterLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WriterLock")
    }
}

/// Proof that a reader uses the files of one generation; the writer keeps them until it drops.
pub struct ReaderLease {
    _release: Box<dyn Send + Sync>,
}

impl fmt::Debug for ReaderLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReaderLease")
    }
}

fn writer_busy(path: PathBuf) -> FormatError {
    FormatError::WriterBusy { path }
}

/// An index directory on disk whose files are read through memory maps.
#[derive(Debug, Clone)]
pub struct MmapDirectory {
    root: PathBuf,
}

/// The lock file's name; it is never part of the index proper.
pub const LOCK_FILE: &str = "writer.lock";

impl MmapDirectory {
    /// Opens an existing directory.
    pub fn open(root: impl Into<PathBuf>) -> Result<MmapDirectory> {
        let root = root.into();
        let meta = fs::metadata(&root).map_err(|e| FormatError::io(&root, e))?;
        if !meta.is_dir() {
            return Err(FormatError::NotAnIndex { path: root });
        }
        Ok(MmapDirectory { root })
    }

    /// Opens a directory, creating it (and its parents) when missing.
    pub fn create(root: impl Into<PathBuf>) -> Result<MmapDirectory> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|e| FormatError::io(&root, e))?;
        MmapDirectory::open(root)
    }

    /// The directory's path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn sync_root(&self) -> Result<()> {
        // A rename is durable only once the directory entry is: fsync the directory itself.
        let dir = File::open(&self.root).map_err(|e| FormatError::io(&self.root, e))?;
        dir.sync_all().map_err(|e| FormatError::io(&self.root, e))
    }
}

struct DiskFileWriter {
    file: io::BufWriter<File>,
    path: PathBuf,
}

impl Write for DiskFileWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Seek for DiskFileWriter {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.file.seek(pos)
    }
}

impl FileWriter for DiskFileWriter {
    fn finish(self: Box<Self>) -> Result<()> {
        let path = self.path;
        let file = self
            .file
            .into_inner()
            .map_err(|e| FormatError::io(&path, e.into_error()))?;
        file.sync_all().map_err(|e| FormatError::io(&path, e))
    }
}

impl Directory for MmapDirectory {
    fn open_read(&self, name: &str) -> Result<FileBytes> {
        let path = self.path_of(name);
        let file = File::open(&path).map_err(|e| FormatError::io(&path, e))?;
        // SAFETY: the map is read-only and fiq never modifies a file once the manifest names it (files are
        // only ever created whole and deleted). Another program writing to the file while it is mapped
        // could still change the bytes under us; the format's readers therefore treat every byte as
        // untrusted (bounds-checked, checksummed) rather than relying on it staying valid.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| FormatError::io(&path, e))?;
        Ok(FileBytes {
            data: Arc::new(MappedFile(map)),
            path: Arc::from(path),
        })
    }

    fn exists(&self, name: &str) -> Result<bool> {
        let path = self.path_of(name);
        path.try_exists().map_err(|e| FormatError::io(&path, e))
    }

    fn create(&self, name: &str) -> Result<Box<dyn FileWriter>> {
        let path = self.path_of(name);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| FormatError::io(&path, e))?;
        Ok(Box::new(DiskFileWriter {
            file: io::BufWriter::with_capacity(1 << 20, file),
            path,
        }))
    }

    fn atomic_write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.path_of(name);
        let tmp = self.path_of(&format!("{name}.tmp"));
        let mut file = File::create(&tmp).map_err(|e| FormatError::io(&tmp, e))?;
        file.write_all(bytes)
            .map_err(|e| FormatError::io(&tmp, e))?;
        file.sync_all().map_err(|e| FormatError::io(&tmp, e))?;
        drop(file);
        fs::rename(&tmp, &path).map_err(|e| FormatError::io(&path, e))?;
        self.sync_root()
    }

    fn delete(&self, name: &str) -> Result<()> {
        let path = self.path_of(name);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(FormatError::io(&path, e)),
        }
    }

    fn list(&self) -> Result<Vec<String>> {
        let entries = fs::read_dir(&self.root).map_err(|e| FormatError::io(&self.root, e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| FormatError::io(&self.root, e))?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    fn lock_writer(&self) -> Result<WriterLock> {
        let path = self.path_of(LOCK_FILE);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| FormatError::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(WriterLock {
                _release: Box::new(file),
            }),
            Err(fs::TryLockError::WouldBlock) => Err(writer_busy(path)),
            Err(fs::TryLockError::Error(e)) => Err(FormatError::io(&path, e)),
        }
    }

    fn lease(&self, generation: u64) -> Result<ReaderLease> {
        let lease = crate::lease::take_disk_lease(&self.root, generation)?;
        Ok(ReaderLease {
            _release: Box::new(lease),
        })
    }

    fn leased_generations(&self) -> Result<Vec<u64>> {
        crate::lease::held_disk_leases(&self.root, &self.list()?)
    }

    fn path_of(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn local_path(&self, name: &str) -> Option<PathBuf> {
        Some(self.path_of(name))
    }

    /// A rename when `staged` is on the same file system (stage files inside the directory, see
    /// [`Directory::local_path`]): no byte is copied. The file is fsynced first; the directory entry is
    /// made durable by the commit's own directory fsync.
    fn adopt(&self, staged: &Path, name: &str) -> Result<()> {
        File::open(staged)
            .and_then(|f| f.sync_all())
            .map_err(|e| FormatError::io(staged, e))?;
        let path = self.path_of(name);
        match fs::rename(staged, &path) {
            Ok(()) => self.sync_root(),
            // Another file system: copy, then remove the staged file.
            Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
                fs::copy(staged, &path).map_err(|e| FormatError::io(&path, e))?;
                File::open(&path)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| FormatError::io(&path, e))?;
                fs::remove_file(staged).map_err(|e| FormatError::io(staged, e))?;
                self.sync_root()
            }
            Err(e) => Err(FormatError::io(&path, e)),
        }
    }
}

/// An index directory held in memory. Clones share the same files.
#[derive(Debug, Clone, Default)]
pub struct RamDirectory {
    files: Arc<RwLock<HashMap<String, FileBytes>>>,
    locked: Arc<Mutex<bool>>,
    leases: Arc<Mutex<HashMap<u64, usize>>>,
}

impl RamDirectory {
    /// An empty directory.
    pub fn new() -> RamDirectory {
        RamDirectory::default()
    }

    /// Replaces a file's bytes directly, bypassing the commit protocol (to simulate corruption in tests).
    pub fn overwrite(&self, name: &str, bytes: Vec<u8>) {
        let file = FileBytes::from_vec(bytes, self.path_of(name));
        self.files
            .write()
            .expect("ram directory lock")
            .insert(name.to_owned(), file);
    }
}

struct RamFileWriter {
    cursor: Cursor<Vec<u8>>,
    name: String,
    dir: RamDirectory,
}

impl Write for RamFileWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.cursor.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for RamFileWriter {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.cursor.seek(pos)
    }
}

impl FileWriter for RamFileWriter {
    fn finish(self: Box<Self>) -> Result<()> {
        let this = *self;
        this.dir.overwrite(&this.name, this.cursor.into_inner());
        Ok(())
    }
}

impl Directory for RamDirectory {
    fn open_read(&self, name: &str) -> Result<FileBytes> {
        let files = self.files.read().expect("ram directory lock");
        files.get(name).cloned().ok_or_else(|| {
            FormatError::io(
                self.path_of(name),
                io::Error::new(io::ErrorKind::NotFound, "no such file"),
            )
        })
    }

    fn exists(&self, name: &str) -> Result<bool> {
        Ok(self
            .files
            .read()
            .expect("ram directory lock")
            .contains_key(name))
    }

    fn create(&self, name: &str) -> Result<Box<dyn FileWriter>> {
        Ok(Box::new(RamFileWriter {
            cursor: Cursor::new(Vec::new()),
            name: name.to_owned(),
            dir: self.clone(),
        }))
    }

    fn atomic_write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        self.overwrite(name, bytes.to_vec());
        Ok(())
    }

    fn delete(&self, name: &str) -> Result<()> {
        self.files.write().expect("ram directory lock").remove(name);
        Ok(())
    }

    fn list(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .files
            .read()
            .expect("ram directory lock")
            .keys()
            .cloned()
            .collect();
        names.sort();
        Ok(names)
    }

    fn lock_writer(&self) -> Result<WriterLock> {
        let mut locked = self.locked.lock().expect("ram directory lock");
        if *locked {
            return Err(writer_busy(self.path_of(LOCK_FILE)));
        }
        *locked = true;
        Ok(WriterLock {
            _release: Box::new(RamLockRelease(self.locked.clone())),
        })
    }

    fn lease(&self, generation: u64) -> Result<ReaderLease> {
        *self
            .leases
            .lock()
            .expect("ram directory lock")
            .entry(generation)
            .or_default() += 1;
        Ok(ReaderLease {
            _release: Box::new(RamLeaseRelease(self.leases.clone(), generation)),
        })
    }

    fn leased_generations(&self) -> Result<Vec<u64>> {
        let mut held: Vec<u64> = self
            .leases
            .lock()
            .expect("ram directory lock")
            .iter()
            .filter(|(_, &n)| n > 0)
            .map(|(&g, _)| g)
            .collect();
        held.sort_unstable();
        Ok(held)
    }

    fn path_of(&self, name: &str) -> PathBuf {
        PathBuf::from("ram:").join(name)
    }
}

struct RamLeaseRelease(Arc<Mutex<HashMap<u64, usize>>>, u64);

impl Drop for RamLeaseRelease {
    fn drop(&mut self) {
        if let Ok(mut leases) = self.0.lock() {
            if let Some(n) = leases.get_mut(&self.1) {
                *n -= 1;
                if *n == 0 {
                    leases.remove(&self.1);
                }
            }
        }
    }
}

struct RamLockRelease(Arc<Mutex<bool>>);

impl Drop for RamLockRelease {
    fn drop(&mut self) {
        if let Ok(mut locked) = self.0.lock() {
            *locked = false;
        }
    }
}
