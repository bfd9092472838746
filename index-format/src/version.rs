//! Format versions. Every file kind (manifest, segment, tombstones) carries the version it was written
//! with; a reader accepts any version from [`OLDEST_SUPPORTED`] to [`CURRENT`] and refuses the rest with a
//! message that says to upgrade.

use crate::error::{FormatError, Result};
use std::path::Path;

/// The versions of the format, in the order they were introduced.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FormatVersion {
    /// Segments, tombstones, ANN files, bincode metadata (2026-11).
    V1 = 1,
}

/// The version new files are written with.
pub const CURRENT: FormatVersion = FormatVersion::V1;
/// The oldest version this build still reads; each has a saved index under `tests/compat/`.
pub const OLDEST_SUPPORTED: FormatVersion = FormatVersion::V1;

impl FormatVersion {
    pub(crate) fn check(path: &Path, found: u32) -> Result<FormatVersion> {
        match found {
            1 => Ok(FormatVersion::V1),
            _ => Err(FormatError::UnsupportedVersion {
                path: path.to_owned(),
                found,
                oldest: OLDEST_SUPPORTED as u32,
                current: CURRENT as u32,
            }),
        }
    }
}
