//! What can go wrong while loading an encoder or encoding with it.

use std::path::PathBuf;

/// A boxed error from the tensor or tokenizer engine: their types stay out of fiq's API.
pub type EngineError = Box<dyn std::error::Error + Send + Sync>;

/// Loading a model or encoding a batch failed as a whole.
///
/// A single unreadable image is not one of these: it is an [`ImageError`] in its slot of the result.
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    /// A file the model directory must hold is absent.
    #[error("model directory {dir} has no {file}")]
    MissingFile {
        /// The directory involved.
        dir: PathBuf,
        /// The file's name.
        file: &'static str,
    },

    /// A model file exists but could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// `config.json` is not valid JSON or a field has the wrong type.
    #[error("{path} is not a valid model config")]
    ConfigParse {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },

    /// The directory's files match no model family fiq loads, or a different one than was asked for.
    #[error("cannot load {dir} as {family}: {reason}")]
    UnknownFamily {
        /// The model directory.
        dir: PathBuf,
        /// The family asked for (or `auto`).
        family: String,
        /// What the directory holds instead.
        reason: String,
    },

    /// `config.json` describes a model this encoder does not implement.
    #[error("{path}: {field} = {value} is not supported: {reason}")]
    UnsupportedConfig {
        /// The file involved.
        path: PathBuf,
        /// The field.
        field: String,
        /// Its value.
        value: String,
        /// Why.
        reason: &'static str,
    },

    /// The weights file is not a readable safetensors file.
    #[error("{path} is not a valid safetensors file")]
    Weights {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: EngineError,
    },

    /// The weights lack a tensor the configuration needs.
    #[error("{path} has no tensor {name}")]
    MissingTensor {
        /// The file involved.
        path: PathBuf,
        /// The name involved.
        name: String,
    },

    /// A tensor's shape disagrees with config.json.
    #[error("{path}: tensor {name} has shape {found:?}, config.json implies {expected:?}")]
    TensorShape {
        /// The file involved.
        path: PathBuf,
        /// The name involved.
        name: String,
        /// What was expected.
        expected: Vec<usize>,
        /// What was found.
        found: Vec<usize>,
    },

    /// A tensor is stored in a type that is not a float.
    #[error("{path}: tensor {name} is stored as {dtype}, expected a float type")]
    TensorDtype {
        /// The file involved.
        path: PathBuf,
        /// The name involved.
        name: String,
        /// The stored type.
        dtype: String,
    },

    /// `tokenizer.json` could not be loaded.
    #[error("cannot load tokenizer {path}")]
    Tokenizer {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: EngineError,
    },

    /// A text could not be tokenized.
    #[error("cannot tokenize text #{index}")]
    Tokenize {
        /// The position of the input.
        index: usize,
        /// The underlying error.
        #[source]
        source: EngineError,
    },

    /// A text is empty or only whitespace: it says nothing to search for.
    #[error("text #{index} is empty")]
    EmptyText {
        /// The position of the text.
        index: usize,
    },

    /// The tokenizer's vocabulary lacks a token the model needs.
    #[error("tokenizer {path} has no token {token}")]
    MissingToken {
        /// The file involved.
        path: PathBuf,
        /// The token.
        token: &'static str,
    },

    /// `tokenizer.json` loads but does not tokenize the way the model needs.
    #[error("tokenizer {path} cannot serve this model: {reason}")]
    TokenizerLayout {
        /// The file involved.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },

    /// The model produced NaN or infinity for an input (overflow in reduced precision, broken weights).
    #[error("the model produced a non-finite embedding for input #{index}")]
    NonFiniteEmbedding {
        /// The position of the input in its batch.
        index: usize,
    },

    /// The requested device or precision cannot be used.
    #[error("device {device} is not available: {reason}")]
    Device {
        /// The device asked for.
        device: String,
        /// Why.
        reason: String,
    },

    /// The tensor engine failed while running the model.
    #[error("model computation failed while {stage}")]
    Compute {
        /// What was being computed.
        stage: &'static str,
        /// The underlying error.
        #[source]
        source: EngineError,
    },
}

/// One image could not be turned into model input; the rest of its batch is unaffected.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file could not be opened or read.
    #[error("cannot read image {path}")]
    Read {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The bytes are not a decodable image (corrupt, truncated, unknown format).
    #[error("cannot decode image {path}")]
    Decode {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: image::ImageError,
    },

    /// The image has no pixels.
    #[error("image {path} is empty ({width}x{height})")]
    Empty {
        /// The file involved.
        path: PathBuf,
        /// See the enclosing item.
        width: u32,
        /// See the enclosing item.
        height: u32,
    },
}

impl ImageError {
    /// The image that failed (for an in-memory image, `#index` in its batch).
    pub fn path(&self) -> &std::path::Path {
        match self {
            Self::Read { path, .. } | Self::Decode { path, .. } | Self::Empty { path, .. } => path,
        }
    }
}

/// Wraps an engine error with the stage of the computation it interrupted.
pub(crate) fn compute(stage: &'static str) -> impl FnOnce(candle_core::Error) -> EncoderError {
    move |source| EncoderError::Compute {
        stage,
        source: Box::new(source),
    }
}
