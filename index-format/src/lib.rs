//! The on-disk format of fiq indexes: the only code that reads or writes index bytes.
//!
//! An index is a directory: a `MANIFEST` naming immutable segment files (vectors, keys, metadata), an
//! optional tombstone file and optional ANN files. [`SPEC.md`](../SPEC.md) gives every byte. This crate
//! knows nothing of FAISS or candle; it is light so that fuzzing it is fast.
//!
//! ```
//! use std::sync::Arc;
//! use fiq_index_format::{RamDirectory, Snapshot, SnapshotWriter, VectorType, ItemMeta, ModelInfo};
//!
//! let dir = Arc::new(RamDirectory::new());
//! let mut writer = SnapshotWriter::create(dir.clone(), 2, VectorType::F32, ModelInfo::default())?;
//! writer.add("B00ABC", &[0.6, 0.8], &ItemMeta { category: "dress".into(), source: "a.jpg".into() })?;
//! writer.commit()?;
//!
//! let snapshot = Snapshot::open(dir)?;
//! let id = snapshot.find("B00ABC")?.unwrap();
//! assert_eq!(&*snapshot.segments()[0].vector(id), &[0.6, 0.8]);
//! # Ok::<(), fiq_index_format::FormatError>(())
//! ```

mod codec;
pub mod directory;
mod error;
mod lease;
pub mod manifest;
pub mod meta;
pub mod segment;
pub mod snapshot;
pub mod tombstones;
pub mod version;

pub use directory::{Directory, FileBytes, MmapDirectory, RamDirectory, ReaderLease};
pub use error::{FormatError, Result};
pub use lease::{lease_file_name, lease_generation, LEASE_PREFIX};
pub use manifest::Manifest;
pub use meta::{ItemMeta, ModelInfo, IMAGE_TOWER_MARK};
pub use segment::{Segment, VectorType};
pub use snapshot::{AnnFileSource, Snapshot, SnapshotWriter, VerifyReport, STAGING_PREFIX};
pub use version::FormatVersion;
