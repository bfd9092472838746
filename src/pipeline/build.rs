//! Encoding a FashionIQ catalog into an index, resumably.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::encoder::{Encoder, ImageSource};
use crate::fashioniq::Dataset;
use crate::index::{IndexWriter, ItemMeta};

/// How to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Images encoded between commits: an interrupted build loses at most this many encodings.
    pub commit_every: usize,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            commit_every: 1024,
            progress: true,
        }
    }
}

/// An image that could not be added, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct SkippedImage {
    /// Its key (image name).
    pub name: String,
    /// Its file, when resolved.
    pub path: Option<PathBuf>,
    /// Why it was skipped.
    pub reason: String,
}

/// What a build did.
#[derive(Debug, Clone, Default)]
pub struct BuildReport {
    /// Images encoded and added by this run.
    pub added: usize,
    /// Images already in the index (an earlier, interrupted run committed them).
    pub already_present: usize,
    /// Images that could not be read or encoded, or were listed twice.
    pub skipped: Vec<SkippedImage>,
    /// Time spent reading, decoding and preprocessing images, summed over the threads that do it
    /// (overlapped with encoding; zero when the encoder does not keep count).
    pub decode_time: Duration,
    /// Time spent in the image model (when the encoder keeps count; otherwise decoding included).
    pub encode_time: Duration,
    /// Wall time of decoding and encoding together (they overlap).
    pub decode_and_encode_time: Duration,
    /// Time spent writing and committing the index.
    pub index_time: Duration,
}

/// One image to put in an index: its key, category and file.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogImage {
    /// The item's key (for FashionIQ, the ASIN).
    pub key: String,
    /// Its category ("" when unknown).
    pub category: String,
    /// The image file.
    pub path: PathBuf,
}

impl CatalogImage {
    /// The metadata stored with the image's vector.
    pub(super) fn meta(&self) -> ItemMeta {
        ItemMeta {
            category: self.category.clone(),
            source: self.path.display().to_string(),
        }
    }
}

/// Encodes `images` in one batch; an image that cannot be read or encoded gets its reason, not an error.
pub(super) fn encode_batch(
    encoder: &dyn Encoder,
    images: &[&CatalogImage],
) -> crate::Result<Vec<Result<Vec<f32>, String>>> {
    let sources: Vec<ImageSource<'_>> = images
        .iter()
        .map(|image| ImageSource::Path(&image.path))
        .collect();
    Ok(encoder
        .encode_images(&sources)?
        .into_iter()
        .map(|vector| vector.map_err(|e| e.to_string()))
        .collect())
}

/// Opens the index at `out` for writing, creating it for `encoder` when there is none; an existing index
/// must have been built by `encoder`'s model.
pub(super) fn open_for_encoder(out: &Path, encoder: &dyn Encoder) -> crate::Result<IndexWriter> {
    if out.join(fiq_index_format::manifest::MANIFEST_FILE).exists() {
        let writer = IndexWriter::open(out)?;
        crate::index::check_model(out, writer.model(), encoder.info())?;
        Ok(writer)
    } else {
        Ok(IndexWriter::create(
            out,
            encoder.dim(),
            encoder.info().clone(),
        )?)
    }
}

/// Encodes every gallery image of `dataset` with `encoder` into the index at `out`, creating it if needed.
///
/// Resumable: the index is committed every [`BuildOptions::commit_every`] images, and a rerun skips images
/// already committed. An image that cannot be read is skipped and reported, never aborting the build; so
/// is a gallery image the loader found no file for.
pub fn build_catalog(
    dataset: &Dataset,
    encoder: &dyn Encoder,
    out: &Path,
    options: &BuildOptions,
) -> crate::Result<BuildReport> {
    let (images, mut skipped) = catalog_images(dataset);
    let mut report = add_images(&images, encoder, out, options)?;
    skipped.append(&mut report.skipped);
    report.skipped = skipped;
    Ok(report)
}

/// Every gallery image of `dataset` with its file, and the ones left out (no file, or listed in a
/// second category): what [`build_catalog`] encodes, and what a Milvus sink encodes.
pub(crate) fn catalog_images(dataset: &Dataset) -> (Vec<CatalogImage>, Vec<SkippedImage>) {
    let mut skipped = Vec::new();
    let mut images = Vec::new();
    let mut listed = std::collections::HashSet::new();
    for category in dataset.categories() {
        for image in dataset.gallery(category) {
            if !listed.insert(image.name.clone()) {
                skipped.push(SkippedImage {
                    name: image.name.clone(),
                    path: image.path.clone(),
                    reason: format!("listed again in {category}; an image belongs to one category"),
                });
                continue;
            }
            match &image.path {
                Some(path) => images.push(CatalogImage {
                    key: image.name.clone(),
                    category: category.as_str().to_owned(),
                    path: path.clone(),
                }),
                None => skipped.push(SkippedImage {
                    name: image.name.clone(),
                    path: None,
                    reason: "no image file found".into(),
                }),
            }
        }
    }
    (images, skipped)
}

/// Encodes `images` with `encoder` into the index at `out` (created if needed; an existing one must be
/// `encoder`'s), committing every [`BuildOptions::commit_every`] images. Keys already in the index are
/// counted in [`BuildReport::already_present`] and not encoded again; unreadable images are skipped and
/// reported.
pub fn add_images(
    images: &[CatalogImage],
    encoder: &dyn Encoder,
    out: &Path,
    options: &BuildOptions,
) -> crate::Result<BuildReport> {
    let mut writer = open_for_encoder(out, encoder)?;

    let mut report = BuildReport::default();
    let mut todo: Vec<&CatalogImage> = Vec::new();
    for image in images {
        if writer.contains(&image.key)? {
            report.already_present += 1;
        } else {
            todo.push(image);
        }
    }

    let timings_before = encoder.timings();
    let bar = if options.progress {
        crate::progress::bar(todo.len() as u64, "encoding")
    } else {
        indicatif::ProgressBar::hidden()
    };
    for chunk in todo.chunks(options.commit_every.max(1)) {
        let started = Instant::now();
        let vectors = encode_batch(encoder, chunk)?;
        report.decode_and_encode_time += started.elapsed();

        let started = Instant::now();
        for (image, vector) in chunk.iter().zip(vectors) {
            match vector {
                Ok(vector) => {
                    writer.add(&image.key, &vector, &image.meta())?;
                    report.added += 1;
                }
                Err(reason) => report.skipped.push(SkippedImage {
                    name: image.key.clone(),
                    path: Some(image.path.clone()),
                    reason,
                }),
            }
        }
        writer.commit()?;
        report.index_time += started.elapsed();
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    match (timings_before, encoder.timings()) {
        (Some(before), Some(after)) => {
            report.decode_time = after.decode - before.decode;
            report.encode_time = after.image_forward - before.image_forward;
        }
        _ => report.encode_time = report.decode_and_encode_time,
    }
    Ok(report)
}
