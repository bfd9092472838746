//! The IVF files an index keeps, by their names in the manifest: the built lists (`ivf`), the trained
//! but empty index they were built from (`ivf-trained`), and the lists of rows added since
//! (`ivf-appended`). Opening them, and staging new ones for a commit, happen here and nowhere else.
//!
//! Why three files: a committed file is never rewritten, and a catalog grows by small commits. The
//! appended lists use the built index's trained centroids and code parameters (no k-means), so a row
//! added is searched through the IVF lists of its nearest centroid as soon as its commit is followed by
//! the appended lists' (the writer makes both, see [`IndexWriter::commit`](super::IndexWriter::commit)).
//! Each append rewrites only the appended file (read, grown, written under a new name): its cost grows
//! with the rows added since the build, never with the catalog; compaction folds it back in.

use std::path::{Path, PathBuf};

use fiq_index_format::{AnnFileSource, Snapshot, SnapshotWriter};

use super::search::blocks_in;
use super::{Index, IndexError};
use crate::ann::{AnnIndex, AnnRecord, Progress};

/// The built lists.
pub(crate) const IVF_FILE: &str = "ivf";
/// The trained, empty index the appended lists start from.
const TRAINED_FILE: &str = "ivf-trained";
/// The lists of rows added since the build.
const APPENDED_FILE: &str = "ivf-appended";

/// The IVF index of one version: the built lists and, when rows were added since, their lists.
pub(super) struct IvfFiles {
    pub(super) built: AnnIndex,
    pub(super) appended: Option<AnnIndex>,
}

/// Opens the IVF files the manifest of `snapshot` records, if any.
pub(super) fn open(snapshot: &Snapshot, index: &Path) -> crate::Result<Option<IvfFiles>> {
    let manifest = snapshot.manifest();
    if manifest.ann_files.is_empty() {
        return Ok(None);
    }
    let unsupported = |reason: String| IndexError::AnnUnsupported {
        index: index.to_owned(),
        reason,
    };
    let names: Vec<&str> = manifest.ann_files.iter().map(|f| f.name.as_str()).collect();
    if let Some(other) = names
        .iter()
        .find(|n| ![IVF_FILE, TRAINED_FILE, APPENDED_FILE].contains(n))
    {
        return Err(unsupported(format!(
            "the manifest names ANN file {other:?}; this fiq reads \"{IVF_FILE}\", \"{TRAINED_FILE}\" and \"{APPENDED_FILE}\""
        ))
        .into());
    }
    let record = AnnRecord::from_json(&manifest.ann_params)?;
    let (built, built_len) = local_file(snapshot, IVF_FILE)?
        .ok_or_else(|| unsupported(format!("the manifest has no \"{IVF_FILE}\" file")))?;
    let appended = match (&record.appended, local_file(snapshot, APPENDED_FILE)?) {
        (Some(appended), Some((path, len))) => {
            Some(AnnIndex::open(&path, (**appended).clone(), len)?)
        }
        (None, None) => None,
        _ => {
            return Err(unsupported(format!(
                "the IVF record and the manifest disagree on whether there is an \"{APPENDED_FILE}\" file"
            ))
            .into())
        }
    };
    let built = AnnIndex::open(&built, record, built_len)?;
    Ok(Some(IvfFiles { built, appended }))
}

/// The local path and recorded length of the ANN file named `name`, if the manifest has one.
fn local_file(snapshot: &Snapshot, name: &str) -> crate::Result<Option<(PathBuf, u64)>> {
    let Some(file) = snapshot
        .manifest()
        .ann_files
        .iter()
        .find(|f| f.name == name)
    else {
        return Ok(None);
    };
    let path = snapshot
        .directory()
        .local_path(&file.entry.file)
        .ok_or_else(|| IndexError::AnnUnsupported {
            index: snapshot.directory().path_of(""),
            reason: "FAISS maps its file from disk; this index directory is not on disk".into(),
        })?;
    Ok(Some((path, file.entry.len)))
}

/// A path to stage a FAISS file named `name` at for the next commit.
fn staging(writer: &SnapshotWriter, name: &str) -> PathBuf {
    writer.staging_path(name).unwrap_or_else(|| {
        std::env::temp_dir().join(format!("fiq-{name}-{}.faiss", std::process::id()))
    })
}

/// Stages a newly built (or refilled, or retrained) IVF index as the index's IVF files at the next
/// commit: its lists, and its trained template for rows added later. Returns what was built.
pub(super) fn stage_built(
    writer: &mut SnapshotWriter,
    mut ann: AnnIndex,
) -> crate::Result<AnnRecord> {
    let lists = staging(writer, IVF_FILE);
    ann.write_file(&lists)?;
    let record = ann.record().clone();
    let trained = staging(writer, TRAINED_FILE);
    ann.write_trained(&trained)?;
    writer.set_ann(
        vec![
            (IVF_FILE.to_owned(), AnnFileSource::Staged(lists)),
            (TRAINED_FILE.to_owned(), AnnFileSource::Staged(trained)),
        ],
        record.to_json(),
    );
    Ok(record)
}

/// When the version `writer` last committed holds rows the IVF lists do not cover, stages the appended
/// lists grown by those rows for the next commit and returns how many rows were filed; 0 (nothing
/// staged) when every row is covered, when there is no IVF index, or when it was built before fiq kept
/// trained templates (such an index searches its added rows exactly until it is compacted or rebuilt).
/// Decided from the manifest alone: a commit with nothing to file opens nothing.
pub(super) fn stage_appended(
    writer: &mut SnapshotWriter,
    progress: &dyn Progress,
) -> crate::Result<u64> {
    let manifest = writer.manifest();
    if !manifest.ann_files.iter().any(|f| f.name == TRAINED_FILE) {
        return Ok(0);
    }
    let covered = AnnRecord::from_json(&manifest.ann_params)?.covered_rows() as u64;
    let total = manifest.total_rows();
    if covered >= total {
        return Ok(0);
    }
    // Its lease is released when this returns, before the commit that replaces the appended lists.
    let committed = Index::open_in(writer.directory().clone())?;
    let built = committed.ann().ok_or_else(|| IndexError::AnnUnsupported {
        index: committed.path().to_owned(),
        reason: "the manifest names IVF files but none opened".into(),
    })?;
    let snapshot = committed.snapshot.as_ref();
    let previous = committed.appended();
    let start = match previous {
        Some(_) => local_file(snapshot, APPENDED_FILE)?,
        None => local_file(snapshot, TRAINED_FILE)?,
    };
    let Some((start, _)) = start else {
        return Ok(0); // built before templates were kept
    };
    // Read wholly into FAISS, whose reader checks no checksum: a damaged template would file rows
    // under wrong centroids without a word. (Searches never read the template; `verify` does.)
    snapshot.check_ann_file(TRAINED_FILE)?;
    snapshot.check_ann_file(APPENDED_FILE)?;
    let rows = blocks_in(committed.blocks(), committed.dim(), covered, total);
    let mut appended = AnnIndex::append(
        built.record(),
        &start,
        previous.map(AnnIndex::record),
        &rows,
        progress,
    )?;
    let path = staging(writer, APPENDED_FILE);
    appended.write_file(&path)?;
    let mut record = built.record().clone();
    record.appended = Some(Box::new(appended.record().clone()));
    // The built lists and the template stay as they are: committed files are never rewritten.
    writer.set_ann(
        vec![
            (IVF_FILE.to_owned(), AnnFileSource::Kept),
            (TRAINED_FILE.to_owned(), AnnFileSource::Kept),
            (APPENDED_FILE.to_owned(), AnnFileSource::Staged(path)),
        ],
        record.to_json(),
    );
    Ok(total - covered)
}
