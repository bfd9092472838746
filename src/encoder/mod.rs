//! Images and texts to unit vectors in one joint space, computed in Rust with candle.
//!
//! [`ClipEncoder`] loads a CLIP checkpoint in the Hugging Face layout (`config.json`,
//! `model.safetensors`, `tokenizer.json`) of any size the config describes, and reproduces transformers'
//! `CLIPModel` (embeddings) and Pillow-based `CLIPImageProcessor` (preprocessing) to within float
//! rounding. [`load_encoder`] also loads OpenCLIP (ViT and modified-ResNet) and BLIP retrieval
//! checkpoints, telling the [`Family`] from the directory's files.
//!
//! Every vector returned is L2-normalized `f32`, of length [`Encoder::dim`]. An image that cannot
//! be read or decoded fails alone: its slot holds an [`ImageError`] naming the path.
//!
//! ```no_run
//! use std::path::Path;
//! use fiq::encoder::{ClipEncoder, Encoder, EncoderOptions, ImageSource};
//!
//! let encoder = ClipEncoder::load(Path::new("models/clip-vit-base-patch32"), &EncoderOptions::default())?;
//! let texts = encoder.encode_texts(&["a red dress with long sleeves"])?;
//! let images = encoder.encode_images(&[ImageSource::Path(Path::new("catalog/B000123.jpg"))])?;
//! for result in &images {
//!     match result {
//!         Ok(vector) => assert_eq!(vector.len(), encoder.dim()),
//!         Err(skipped) => eprintln!("skipping: {skipped}"),
//!     }
//! }
//! # Ok::<(), fiq::encoder::EncoderError>(())
//! ```

mod blip;
mod checkpoint;
mod clip;
pub(crate) mod config;
mod cpu_kernels;
mod error;
mod init;
mod load;
pub(crate) mod model;
mod openclip;
mod preprocess;
mod resample;
mod resnet;
mod tokenizer;
mod towers;
mod train_kernels;
pub(crate) mod trainable;

use std::path::Path;

pub use clip::ClipEncoder;
pub use error::{EncoderError, ImageError};
pub use init::initialize_clip;
pub use load::{detect_family, load_encoder, Family};
pub use preprocess::{ImagePreprocessor, Normalization, Resize};

/// Decodes an image held in memory (an upload, say) by its content; `label` names it in errors.
pub fn decode_image_bytes(label: &Path, bytes: &[u8]) -> Result<image::DynamicImage, ImageError> {
    preprocess::decode_bytes(label, bytes)
}

/// Turns images and texts into L2-normalized vectors of one embedding space.
pub trait Encoder: Send + Sync {
    /// What model this is; indexes store it and refuse queries from another.
    fn info(&self) -> &ModelInfo;

    /// The length of every vector this encoder returns.
    fn dim(&self) -> usize;

    /// One slot per input, in input order: the unit vector, or why that image was skipped.
    /// Fails as a whole only when the model itself fails.
    fn encode_images(
        &self,
        images: &[ImageSource<'_>],
    ) -> Result<Vec<Result<Vec<f32>, ImageError>>, EncoderError>;

    /// One unit vector per text, in input order. Fails on an empty text, naming its index.
    fn encode_texts(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EncoderError>;

    /// Time spent so far by stage, for encoders that keep count.
    fn timings(&self) -> Option<EncodeTimings> {
        None
    }
}

/// Time an encoder has spent since it was loaded, by stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct EncodeTimings {
    /// Reading, decoding and preprocessing images, summed over the worker threads that do it (it
    /// overlaps the model's work, so it can exceed the wall time).
    pub decode: std::time::Duration,
    /// The image tower (wall time).
    pub image_forward: std::time::Duration,
    /// The text tower, tokenizing excluded (wall time).
    pub text_forward: std::time::Duration,
}

/// Where an image comes from.
#[derive(Debug, Clone, Copy)]
pub enum ImageSource<'a> {
    /// A file, decoded (JPEG, PNG, WebP, TIFF, BMP) by its content, not its extension.
    Path(&'a Path),
    /// An image already in memory.
    Image(&'a image::DynamicImage),
}

impl<'a> From<&'a Path> for ImageSource<'a> {
    fn from(path: &'a Path) -> Self {
        Self::Path(path)
    }
}

impl<'a> From<&'a std::path::PathBuf> for ImageSource<'a> {
    fn from(path: &'a std::path::PathBuf) -> Self {
        Self::Path(path)
    }
}

impl<'a> From<&'a image::DynamicImage> for ImageSource<'a> {
    fn from(image: &'a image::DynamicImage) -> Self {
        Self::Image(image)
    }
}

/// The identity of an encoder: fiq's one model-identity type, the same record every index stores
/// (see [`crate::index::Index::check_model`] for the one compatibility rule). `fingerprint` is 16 hex
/// digits hashing the architecture read from config.json, every tensor's name, shape and type, a sample
/// of every tensor's bytes, and the preprocessing; `preprocessing` reads like
/// `rgb-over-white,shortside,bicubic-pil,center-crop224,norm-clip`.
pub use fiq_index_format::ModelInfo;

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ComputeDevice {
    /// The CPU (the default).
    #[default]
    Cpu,
    /// A CUDA GPU by ordinal; needs the `cuda` cargo feature.
    Cuda(usize),
}

/// The float type of weights and activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// See the enclosing item.
    #[default]
    F32,
    /// Half precision; for GPUs (on the CPU it runs candle's own f16 ops, correct but slow).
    F16,
    /// bfloat16. On GPUs, weights and activations. On CPUs with AVX512-BF16 ([`cpu_supports_bf16`]),
    /// every linear layer of the transformer towers multiplies in bf16 with f32 accumulation, about
    /// twice the f32 speed, while activations, norms and softmax stay f32; the embeddings then differ
    /// from f32 by up to a few thousandths (the tested tolerance is in `tests/encoder.rs`). Loading fails
    /// with [`EncoderError::Device`] on CPUs without the units, and for RN50's convolutions.
    BF16,
}

/// Whether this CPU runs [`Precision::BF16`]: it has AVX-512 and AVX512-BF16 (AMD Zen 4 and later,
/// Intel Cooper Lake, Sapphire Rapids and later), detected at run time.
///
/// ```
/// use fiq::encoder::{cpu_supports_bf16, EncoderOptions, Precision};
/// let precision = if cpu_supports_bf16() { Precision::BF16 } else { Precision::F32 };
/// let options = EncoderOptions { precision, ..EncoderOptions::default() };
/// # let _ = options;
/// ```
pub fn cpu_supports_bf16() -> bool {
    crate::bf16_gemm::available()
}

impl std::str::FromStr for ComputeDevice {
    type Err = String;

    /// `cpu`, `cuda` (GPU 0) or `cuda:N`.
    ///
    /// ```
    /// use fiq::encoder::ComputeDevice;
    /// assert_eq!("cuda:1".parse::<ComputeDevice>(), Ok(ComputeDevice::Cuda(1)));
    /// assert!("gpu".parse::<ComputeDevice>().is_err());
    /// ```
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let ordinal = match text.strip_prefix("cuda") {
            _ if text == "cpu" => return Ok(ComputeDevice::Cpu),
            Some("") => Some(0),
            Some(rest) => rest.strip_prefix(':').and_then(|n| n.parse().ok()),
            None => None,
        };
        ordinal
            .map(ComputeDevice::Cuda)
            .ok_or_else(|| format!("device {text:?}: expected cpu, cuda or cuda:N"))
    }
}

impl std::str::FromStr for Precision {
    type Err = String;

    /// `f32`, `f16` or `bf16`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "f32" => Ok(Precision::F32),
            "f16" => Ok(Precision::F16),
            "bf16" => Ok(Precision::BF16),
            _ => Err(format!("precision {text:?}: expected f32, f16 or bf16")),
        }
    }
}

/// How an encoder is loaded and how it batches.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderOptions {
    /// The device asked for.
    pub device: ComputeDevice,
    /// The float type of weights and activations.
    pub precision: Precision,
    /// How images are squared (the reference CLIP processor by default).
    pub resize: Resize,
    /// Pixel statistics.
    pub normalization: Normalization,
    /// Inputs per forward pass.
    pub batch_size: usize,
    /// Show a progress bar on stderr for calls with more than one batch.
    pub progress: bool,
}

impl Default for EncoderOptions {
    fn default() -> Self {
        Self {
            device: ComputeDevice::Cpu,
            precision: Precision::F32,
            resize: Resize::ShortSide,
            normalization: Normalization::Clip,
            batch_size: 32,
            progress: false,
        }
    }
}
