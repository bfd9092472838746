//! Adding to a living index: vectors from files, or images encoded by the index's model. Each call is
//! one commit: a crash leaves the index as it was before the call or with every row added. A key that
//! is already in the index is replaced (its old row deleted in the same commit).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::build::{encode_chunk, item_meta, open_for_model, ImageJob};
use super::{index_model_info, SkippedImage};
use crate::encoder::Encoder;
use crate::index::{IndexWriter, ItemMeta};

/// Images encoded per batch while adding (bounds the memory of decoded images and vectors).
const ENCODE_CHUNK: usize = 256;

/// File extensions `add --images` encodes (lower case; matched without regard to case).
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp", "tif", "tiff", "bmp"];

/// What an add did.
#[derive(Debug, Clone, Default)]
pub struct AddReport {
    /// Rows added whose key was new.
    pub added: usize,
    /// Rows added whose key replaced a live row.
    pub replaced: usize,
    /// Images not added, and why (unreadable, undecodable, non-UTF-8 name, a second file for a key).
    pub skipped: Vec<SkippedImage>,
    /// The committed generation.
    pub generation: u64,
}

/// Adds row `i` of `vectors` under `keys[i]` to the index at `index`, replacing rows with the same key,
/// in one commit. Refuses everything (commits nothing) when a row is refused: a wrong dimension, a
/// non-finite or zero vector, a key given twice.
pub fn add_vectors(
    index: &Path,
    vectors: &Path,
    keys_file: &Path,
    category: &str,
) -> crate::Result<AddReport> {
    let matrix = crate::npy::read_matrix(vectors)?;
    let keys = crate::keys::read_keys(keys_file)?;
    if keys.len() != matrix.rows {
        return Err(fiq_index_format::FormatError::InvalidInput {
            key: String::new(),
            detail: format!(
                "{} has {} rows but {} has {} keys; they must match one to one",
                vectors.display(),
                matrix.rows,
                keys_file.display(),
                keys.len()
            ),
        }
        .into());
    }
    let mut writer = IndexWriter::open(index)?;
    if writer.dim() != matrix.dim {
        return Err(fiq_index_format::FormatError::DimensionMismatch {
            expected: writer.dim(),
            actual: matrix.dim,
            key: format!("(every row of {})", vectors.display()),
        }
        .into());
    }
    let meta = ItemMeta {
        category: category.to_owned(),
        source: String::new(),
    };
    let mut report = AddReport::default();
    for (i, key) in keys.iter().enumerate() {
        let (_, replaced) = writer.upsert(key, matrix.row(i), &meta)?;
        count(&mut report, replaced);
    }
    report.generation = writer.commit()?;
    Ok(report)
}

/// Encodes every image file directly in `dir` (by extension, see [`IMAGE_EXTENSIONS`]) with `encoder`
/// and adds it under its file name without extension, replacing rows with the same key, in one
/// commit. An image that cannot be read or encoded is skipped and reported, never aborting the add.
pub fn add_images(
    index: &Path,
    dir: &Path,
    category: &str,
    encoder: &dyn Encoder,
    progress: bool,
) -> crate::Result<AddReport> {
    let mut writer = open_for_model(index, &index_model_info(encoder.info()))?;
    let mut report = AddReport::default();
    let jobs = list_images(dir, category, &mut report.skipped)?;
    let bar = if progress {
        crate::progress::bar(jobs.len() as u64, "encoding")
    } else {
        indicatif::ProgressBar::hidden()
    };
    for chunk in jobs.chunks(ENCODE_CHUNK) {
        for ((key, category, path), vector) in chunk.iter().zip(encode_chunk(encoder, chunk)?) {
            match vector {
                Ok(vector) => {
                    let (_, replaced) = writer.upsert(key, &vector, &item_meta(category, path))?;
                    count(&mut report, replaced);
                }
                Err(reason) => report.skipped.push(SkippedImage {
                    name: key.clone(),
                    path: Some(path.clone()),
                    reason,
                }),
            }
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    report.generation = writer.commit()?;
    Ok(report)
}

fn count(report: &mut AddReport, replaced: Option<u64>) {
    match replaced {
        Some(_) => report.replaced += 1,
        None => report.added += 1,
    }
}

/// The image files directly in `dir`, sorted by name; names that cannot be keys are skipped.
fn list_images(
    dir: &Path,
    category: &str,
    skipped: &mut Vec<SkippedImage>,
) -> crate::Result<Vec<ImageJob>> {
    let io = |e: std::io::Error| fiq_index_format::FormatError::Io {
        path: dir.to_owned(),
        source: e,
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    paths.sort();
    let mut jobs = Vec::new();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for path in paths {
        let is_image = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
        if !is_image || !path.is_file() {
            continue;
        }
        let Some(key) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
            skipped.push(SkippedImage {
                name: path
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                path: Some(path.clone()),
                reason: "the file name is not UTF-8, so it cannot be a key".into(),
            });
            continue;
        };
        if let Some(first) = seen.get(&key) {
            skipped.push(SkippedImage {
                name: key.clone(),
                path: Some(path.clone()),
                reason: format!(
                    "{} has the same key; the first file is kept",
                    first.display()
                ),
            });
            continue;
        }
        seen.insert(key.clone(), path.clone());
        jobs.push((key, category.to_owned(), path));
    }
    Ok(jobs)
}
