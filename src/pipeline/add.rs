//! Adding images to a living index, encoded by the index's model ([`import_vectors`](super::import_vectors)
//! with `append` adds vectors). Each call is one commit: a crash leaves the index as it was before the
//! call or with every row added. A key that is already in the index is replaced (its old row deleted in
//! the same commit).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::build::{encode_batch, open_for_encoder};
use super::{CatalogImage, SkippedImage};
use crate::encoder::Encoder;

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

/// Encodes `images` with `encoder` and adds them to the index at `index` (created if needed; an existing
/// one must be `encoder`'s), replacing rows with the same key, in one commit. An image that cannot be
/// read or encoded is skipped and reported, never aborting the add.
pub fn upsert_images(
    index: &Path,
    images: &[CatalogImage],
    encoder: &dyn Encoder,
    progress: bool,
) -> crate::Result<AddReport> {
    let mut writer = open_for_encoder(index, encoder)?;
    let mut report = AddReport::default();
    let bar = crate::progress::bar_if(progress, images.len() as u64, "encoding");
    let images: Vec<&CatalogImage> = images.iter().collect();
    for chunk in images.chunks(ENCODE_CHUNK) {
        for (image, vector) in chunk.iter().zip(encode_batch(encoder, chunk)?) {
            match vector {
                Ok(vector) => {
                    let (_, replaced) = writer.upsert(&image.key, &vector, &image.meta())?;
                    count(&mut report, replaced);
                }
                Err(reason) => report.skipped.push(SkippedImage {
                    name: image.key.clone(),
                    path: Some(image.path.clone()),
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

/// Adds every image file directly in `dir` (by extension, see [`IMAGE_EXTENSIONS`]) under its file name
/// without extension, with `category`: [`upsert_images`] over the directory. Files whose name cannot be
/// a key (not UTF-8) and second files for one key are skipped and reported with the unreadable images.
pub fn upsert_image_dir(
    index: &Path,
    dir: &Path,
    category: &str,
    encoder: &dyn Encoder,
    progress: bool,
) -> crate::Result<AddReport> {
    let (images, mut skipped) = image_dir(dir, category)?;
    let mut report = upsert_images(index, &images, encoder, progress)?;
    skipped.append(&mut report.skipped);
    report.skipped = skipped;
    Ok(report)
}

/// The image files directly in `dir` (by extension, see [`IMAGE_EXTENSIONS`]), sorted by name, each keyed
/// by its file name without extension and given `category`. Files whose name cannot be a key (not UTF-8)
/// and second files for one key come back as skips.
fn image_dir(dir: &Path, category: &str) -> crate::Result<(Vec<CatalogImage>, Vec<SkippedImage>)> {
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
    let mut images = Vec::new();
    let mut skipped = Vec::new();
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
        images.push(CatalogImage {
            key,
            category: category.to_owned(),
            path,
        });
    }
    Ok((images, skipped))
}
