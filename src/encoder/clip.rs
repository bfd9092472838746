//! [`ClipEncoder`]: a CLIP checkpoint behind the [`Encoder`] trait, with batching, a decode pipeline
//! that overlaps the model, and progress reporting. The other families (OpenCLIP, BLIP; see
//! [`super::load`]) run through the same machinery with their own [`Towers`].

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use indicatif::ProgressBar;
use rayon::prelude::*;

use super::checkpoint::{check_tensors, dir_name, open_weights, read_text, Fnv64, ModelFiles};
use super::config::ClipConfig;
use super::error::{compute, EncoderError, ImageError};
use super::model::{ClipModel, Kernels};
use super::preprocess::ImagePreprocessor;
use super::tokenizer::ClipTokenizer;
use super::towers::Towers;
use super::{
    ComputeDevice, EncodeTimings, Encoder, EncoderOptions, ImageSource, ModelInfo, Precision,
};

/// A CLIP model loaded from a Hugging Face model directory (or, built by [`super::load_encoder`], an OpenCLIP or
/// BLIP model: every family shares this batching and decoding).
pub struct ClipEncoder {
    model: Box<dyn Towers>,
    tokenizer: ClipTokenizer,
    preprocessor: ImagePreprocessor,
    info: ModelInfo,
    /// The length of every vector.
    embed_dim: usize,
    device: Device,
    dtype: DType,
    batch_size: usize,
    progress: bool,
    timings: Timers,
}

/// Nanoseconds spent so far, by stage (see [`EncodeTimings`]).
#[derive(Debug, Default)]
struct Timers {
    decode: AtomicU64,
    image_forward: AtomicU64,
    text_forward: AtomicU64,
}

fn add_elapsed(counter: &AtomicU64, since: Instant) {
    counter.fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
}

impl ClipEncoder {
    /// Loads `dir/config.json`, `dir/model.safetensors` (memory-mapped) and `dir/tokenizer.json`.
    ///
    /// Fails with an error naming the file, field or tensor when a file is missing, the config asks for
    /// something unsupported, or a tensor is absent or mis-shaped.
    pub fn load(dir: &Path, options: &EncoderOptions) -> Result<Self, EncoderError> {
        let files = ModelFiles::locate(dir)?;
        let config = ClipConfig::from_json(&read_text(&files.config)?, &files.config)?;
        let (device, dtype, kernels) = resolve_device(options.device, options.precision)?;

        let (weights, hasher) = open_weights(
            &files.weights,
            "fiq-clip-1",
            &config,
            config.expected_tensors(),
        )?;
        let image_tower = image_tower_digest(&config, &weights, &files.weights)?;
        let vb = VarBuilder::from_backend(Box::new(weights), dtype, device.clone());
        let model = ClipModel::new(&config, kernels, vb).map_err(compute("building the model"))?;

        let tokenizer = ClipTokenizer::load(&files.tokenizer, config.text.max_position_embeddings)?;
        let preprocessor = ImagePreprocessor::new(
            config.vision.image_size,
            options.resize,
            options.normalization,
        );
        // The name and the fingerprint's tag predate the other families and stay as they were, so that
        // indexes built before them still accept queries.
        let parts = EncoderParts {
            towers: Box::new(model),
            tokenizer,
            preprocessor,
            name: dir_name(dir),
            embed_dim: config.projection_dim,
            hasher,
            image_tower: Some(image_tower),
            device,
            dtype,
        };
        Ok(Self::from_parts(parts, options))
    }

    /// Assembles an encoder from a loaded family; the preprocessing is hashed into the fingerprint here.
    pub(crate) fn from_parts(parts: EncoderParts, options: &EncoderOptions) -> Self {
        let EncoderParts {
            towers,
            tokenizer,
            preprocessor,
            name,
            embed_dim,
            mut hasher,
            image_tower,
            device,
            dtype,
        } = parts;
        hasher.write(preprocessor.describe().as_bytes());
        let mut fingerprint = hasher.finish_hex();
        if let Some(mut image_tower) = image_tower {
            image_tower.write(preprocessor.describe().as_bytes());
            fingerprint.push_str(fiq_index_format::IMAGE_TOWER_MARK);
            fingerprint.push_str(&image_tower.finish_hex());
        }
        let info = ModelInfo {
            name,
            fingerprint,
            preprocessing: preprocessor.describe(),
        };
        Self {
            model: towers,
            tokenizer,
            preprocessor,
            info,
            embed_dim,
            device,
            dtype,
            batch_size: options.batch_size.max(1),
            progress: options.progress,
            timings: Timers::default(),
        }
    }

    /// The preprocessing this encoder applies to images.
    pub fn preprocessor(&self) -> &ImagePreprocessor {
        &self.preprocessor
    }

    fn progress_bar(&self, len: usize, what: &str) -> ProgressBar {
        crate::progress::bar_if(self.progress && len > self.batch_size, len as u64, what)
    }

    /// Embeds one batch of preprocessed images, `pixels` holding `count` channel-first squares.
    fn embed_pixels(&self, pixels: Vec<f32>, count: usize) -> Result<Vec<Vec<f32>>, EncoderError> {
        let size = self.preprocessor.size();
        let shape = (count, 3, size, size);
        // A half-precision model gets half-precision pixels from the host: half the bytes to copy to a
        // GPU, and the same rounding as a cast on the device.
        let input = match self.dtype {
            DType::F16 => {
                Tensor::from_vec(to_half(&pixels, half::f16::from_f32), shape, &self.device)
            }
            DType::BF16 => {
                Tensor::from_vec(to_half(&pixels, half::bf16::from_f32), shape, &self.device)
            }
            _ => Tensor::from_vec(pixels, shape, &self.device).and_then(|t| t.to_dtype(self.dtype)),
        }
        .map_err(compute("uploading images"))?;
        let features = self
            .model
            .image_features(&input)
            .map_err(compute("encoding images"))?;
        rows_to_unit_vectors(&features)
    }

    /// Embeds one batch of token sequences, padded to the longest.
    fn embed_tokens(&self, sequences: &[&[u32]]) -> Result<Vec<Vec<f32>>, EncoderError> {
        let features = self
            .model
            .text_features(sequences, self.tokenizer.pad_id(), &self.device)
            .map_err(compute("encoding texts"))?;
        rows_to_unit_vectors(&features)
    }
}

impl Encoder for ClipEncoder {
    fn dim(&self) -> usize {
        self.embed_dim
    }

    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn timings(&self) -> Option<EncodeTimings> {
        let read = |c: &AtomicU64| Duration::from_nanos(c.load(Ordering::Relaxed));
        Some(EncodeTimings {
            decode: read(&self.timings.decode),
            image_forward: read(&self.timings.image_forward),
            text_forward: read(&self.timings.text_forward),
        })
    }

    fn encode_images(
        &self,
        images: &[ImageSource<'_>],
    ) -> Result<Vec<Result<Vec<f32>, ImageError>>, EncoderError> {
        let bar = self.progress_bar(images.len(), "images");
        let mut results: Vec<Result<Vec<f32>, ImageError>> = Vec::with_capacity(images.len());
        let preprocessor = &self.preprocessor;
        let slot_len = preprocessor.output_len();
        let decode_time = &self.timings.decode;
        std::thread::scope(|scope| {
            // Decoding the next batch overlaps the model's work on this one; the bound of one batch in
            // flight caps memory at two batches of pixels.
            let (sender, receiver) =
                mpsc::sync_channel::<(Vec<f32>, Vec<Result<(), ImageError>>)>(1);
            scope.spawn(move || {
                for chunk in images.chunks(self.batch_size) {
                    // The workers fill one batch buffer in place: it goes to the model uncopied.
                    let mut pixels = vec![0f32; chunk.len() * slot_len];
                    let statuses: Vec<Result<(), ImageError>> = pixels
                        .par_chunks_mut(slot_len)
                        .zip(chunk.par_iter())
                        .map(|(slot, source)| {
                            let started = Instant::now();
                            let status = match source {
                                ImageSource::Path(path) => preprocessor.load_into(path, slot),
                                ImageSource::Image(image) => {
                                    preprocessor.preprocess_into(image, slot);
                                    Ok(())
                                }
                            };
                            add_elapsed(decode_time, started);
                            status
                        })
                        .collect();
                    if sender.send((pixels, statuses)).is_err() {
                        return; // the consumer stopped on an error
                    }
                }
            });
            for (mut pixels, statuses) in receiver {
                // Images that failed leave holes: close them so the model sees decoded images only.
                let mut count = 0;
                for (slot, status) in statuses.iter().enumerate() {
                    if status.is_ok() {
                        if slot != count {
                            pixels.copy_within(
                                slot * slot_len..(slot + 1) * slot_len,
                                count * slot_len,
                            );
                        }
                        count += 1;
                    }
                }
                pixels.truncate(count * slot_len);
                let started = Instant::now();
                let mut vectors = if count > 0 {
                    self.embed_pixels(pixels, count)?
                } else {
                    Vec::new()
                }
                .into_iter();
                add_elapsed(&self.timings.image_forward, started);
                bar.inc(statuses.len() as u64);
                for status in statuses {
                    results.push(
                        status.map(|()| vectors.next().expect("one vector per decoded image")),
                    );
                }
            }
            Ok::<(), EncoderError>(())
        })?;
        bar.finish_and_clear();
        let non_finite = |r: &Result<Vec<f32>, ImageError>| {
            r.as_ref().is_ok_and(|v| v.iter().any(|x| !x.is_finite()))
        };
        if let Some(index) = results.iter().position(non_finite) {
            return Err(EncoderError::NonFiniteEmbedding { index });
        }
        Ok(results)
    }

    fn encode_texts(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EncoderError> {
        let sequences = self.tokenizer.encode(texts)?;
        // Batching texts of similar length wastes the least work on padding; padding never changes a
        // vector, so the order of batching is free.
        let mut order: Vec<usize> = (0..sequences.len()).collect();
        order.sort_by_key(|&i| sequences[i].len());
        let bar = self.progress_bar(texts.len(), "texts");
        let mut vectors = vec![Vec::new(); texts.len()];
        for batch in order.chunks(self.batch_size) {
            let batch_sequences: Vec<&[u32]> =
                batch.iter().map(|&i| sequences[i].as_slice()).collect();
            let started = Instant::now();
            let embedded = self.embed_tokens(&batch_sequences)?;
            add_elapsed(&self.timings.text_forward, started);
            for (&i, vector) in batch.iter().zip(embedded) {
                vectors[i] = vector;
            }
            bar.inc(batch.len() as u64);
        }
        bar.finish_and_clear();
        if let Some(index) = vectors
            .iter()
            .position(|v| v.iter().any(|x| !x.is_finite()))
        {
            return Err(EncoderError::NonFiniteEmbedding { index });
        }
        Ok(vectors)
    }
}

/// `pixels` converted element by element, in parallel.
fn to_half<T: Send>(pixels: &[f32], convert: fn(f32) -> T) -> Vec<T> {
    pixels.par_iter().map(|&x| convert(x)).collect()
}

/// Copies (batch, dim) features to the host as f32 and scales each row to unit length (fiq's one
/// normalization: a row without a direction is an error naming its place in the batch).
fn rows_to_unit_vectors(features: &Tensor) -> Result<Vec<Vec<f32>>, EncoderError> {
    let rows: Vec<Vec<f32>> = features
        .to_dtype(DType::F32)
        .and_then(|t| t.to_vec2::<f32>())
        .map_err(compute("reading embeddings back"))?;
    rows.into_iter()
        .enumerate()
        .map(|(index, mut row)| {
            crate::vector::normalize_in_place(&mut row)
                .map_err(|_| EncoderError::NonFiniteEmbedding { index })?;
            Ok(row)
        })
        .collect()
}

/// What a family's loader hands [`ClipEncoder::from_parts`].
pub(crate) struct EncoderParts {
    pub towers: Box<dyn Towers>,
    pub tokenizer: ClipTokenizer,
    pub preprocessor: ImagePreprocessor,
    /// [`ModelInfo::name`].
    pub name: String,
    pub embed_dim: usize,
    /// Already fed the family, its configuration and its weights; the preprocessing is added last.
    pub hasher: Fnv64,
    /// The image tower's own digest, fed the same way, for families whose towers fine-tune apart (see
    /// [`ModelInfo::image_tower`]); `None` where a changed text tower must mean a rebuild.
    pub image_tower: Option<Fnv64>,
    pub device: Device,
    pub dtype: DType,
}

pub(crate) fn resolve_device(
    device: ComputeDevice,
    precision: Precision,
) -> Result<(Device, DType, Kernels), EncoderError> {
    let dtype = match precision {
        Precision::F32 => DType::F32,
        Precision::F16 => DType::F16,
        Precision::BF16 => DType::BF16,
    };
    match device {
        ComputeDevice::Cpu => match precision {
            Precision::F32 => Ok((Device::Cpu, DType::F32, Kernels::Fused)),
            // Weights and activations stay f32 in candle; the linear layers' products run in bf16
            // through fiq's kernel, which needs the units.
            Precision::BF16 if crate::bf16_gemm::available() => {
                Ok((Device::Cpu, DType::F32, Kernels::FusedBf16))
            }
            Precision::BF16 => Err(EncoderError::Device {
                device: "cpu".into(),
                reason: "bf16 on the CPU needs AVX512-BF16, which this CPU does not have; use f32"
                    .into(),
            }),
            // candle's own f16 ops: correct, slow, kept for parity checks of GPU precision.
            Precision::F16 => Ok((Device::Cpu, DType::F16, Kernels::Fused)),
        },
        ComputeDevice::Cuda(ordinal) => {
            let device = Device::new_cuda(ordinal).map_err(|e| EncoderError::Device {
                device: format!("cuda:{ordinal}"),
                reason: format!("{e} (is fiq built with the `cuda` feature?)"),
            })?;
            Ok((device, dtype, Kernels::Fused))
        }
    }
}

/// The image tower's digest of a Hugging Face CLIP checkpoint: the vision config, the projection width
/// and every `vision_model.*` and `visual_projection.*` tensor (name, shape, type, sampled bytes), so a
/// checkpoint whose text tower alone was fine-tuned keeps it.
fn image_tower_digest(
    config: &ClipConfig,
    weights: &candle_core::safetensors::MmapedSafetensors,
    path: &Path,
) -> Result<Fnv64, EncoderError> {
    let mut hasher = Fnv64::new();
    hasher.write(b"fiq-clip-image-1");
    hasher.write(format!("{:?} {}", config.vision, config.projection_dim).as_bytes());
    let image_tensors = config
        .expected_tensors()
        .into_iter()
        .filter(|(name, _)| is_image_tower_tensor(name))
        .collect();
    check_tensors(weights, path, image_tensors, &mut hasher)?;
    Ok(hasher)
}

/// Whether a Hugging Face `CLIPModel` tensor belongs to the image tower.
pub(crate) fn is_image_tower_tensor(name: &str) -> bool {
    name.starts_with("vision_model.") || name.starts_with("visual_projection.")
}
