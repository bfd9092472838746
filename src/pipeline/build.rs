//! Encoding a FashionIQ catalog into an index, resumably.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{index_model_info, PipelineError};
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

/// An image to encode: its key, category and file.
pub(super) type ImageJob = (String, String, PathBuf);

/// Encodes one chunk of images; an image that cannot be read or encoded gets its reason, not an error.
pub(super) fn encode_chunk(
    encoder: &dyn Encoder,
    chunk: &[ImageJob],
) -> crate::Result<Vec<Result<Vec<f32>, String>>> {
    let sources: Vec<ImageSource<'_>> = chunk
        .iter()
        .map(|(_, _, path)| ImageSource::Path(path))
        .collect();
    Ok(encoder
        .encode_images(&sources)?
        .into_iter()
        .map(|v| v.map_err(|e| e.to_string()))
        .collect())
}

/// The metadata stored with an encoded image.
pub(super) fn item_meta(category: &str, path: &Path) -> ItemMeta {
    ItemMeta {
        category: category.to_owned(),
        source: path.display().to_string(),
    }
}

/// Opens the index at `out` for writing, refusing it when another model built it.
pub(super) fn open_for_model(
    out: &Path,
    model: &crate::index::ModelInfo,
) -> crate::Result<IndexWriter> {
    let writer = IndexWriter::open(out)?;
    if writer.model().fingerprint != model.fingerprint {
        return Err(PipelineError::ModelMismatch {
            index: out.to_owned(),
            index_model: writer.model().name.clone(),
            index_fingerprint: writer.model().fingerprint.clone(),
            model: model.name.clone(),
            fingerprint: model.fingerprint.clone(),
        }
        .into());
    }
    Ok(writer)
}

/// Encodes every gallery image of `dataset` with `encoder` into the index at `out`, creating it if needed.
///
/// Resumable: the index is committed every [`BuildOptions::commit_every`] images, and a rerun skips images
/// already committed. An image that cannot be read is skipped and reported, never aborting the build.
pub fn build_catalog(
    dataset: &Dataset,
    encoder: &dyn Encoder,
    out: &Path,
    options: &BuildOptions,
) -> crate::Result<BuildReport> {
    let model = index_model_info(encoder.info());
    let mut writer = if out.join(fiq_index_format::manifest::MANIFEST_FILE).exists() {
        open_for_model(out, &model)?
    } else {
        IndexWriter::create(out, encoder.info().embed_dim, model)?
    };

    let mut report = BuildReport::default();
    let mut todo: Vec<ImageJob> = Vec::new();
    let mut listed = std::collections::HashSet::new();
    for category in dataset.categories() {
        for image in dataset.gallery(category) {
            if !listed.insert(image.name.clone()) {
                report.skipped.push(SkippedImage {
                    name: image.name.clone(),
                    path: image.path.clone(),
                    reason: format!("listed again in {category}; an image belongs to one category"),
                });
                continue;
            }
            if writer.contains(&image.name)? {
                report.already_present += 1;
                continue;
            }
            match &image.path {
                Some(path) => todo.push((
                    image.name.clone(),
                    category.as_str().to_owned(),
                    path.clone(),
                )),
                None => report.skipped.push(SkippedImage {
                    name: image.name.clone(),
                    path: None,
                    reason: "no image file found".into(),
                }),
            }
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
        let vectors = encode_chunk(encoder, chunk)?;
        report.decode_and_encode_time += started.elapsed();

        let started = Instant::now();
        for ((name, category, path), vector) in chunk.iter().zip(vectors) {
            match vector {
                Ok(vector) => {
                    writer.add(name, &vector, &item_meta(category, path))?;
                    report.added += 1;
                }
                Err(reason) => report.skipped.push(SkippedImage {
                    name: name.clone(),
                    path: Some(path.clone()),
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
