//! Learned fusion: CLIP4Cir's Combiner and a simpler learned-projection baseline, run with candle.
//!
//! A trained model is a folder holding `config.json` ([`CombinerConfig`]) and `model.safetensors` (weights
//! named as in CLIP4Cir's PyTorch module, `weight` as `out × in`). [`Combiner::load`] reads it for
//! inference; `fiq::train` produces it.
//!
//! **Combiner** (Baldrati et al., CLIP4Cir): image and text are each projected (Linear → ReLU → Dropout),
//! concatenated; an MLP (Linear → ReLU → Dropout → Linear) maps the concatenation back to the feature space,
//! and a learned gate λ (Linear → ReLU → Dropout → Linear → Sigmoid) mixes the raw features:
//! `normalize(MLP(concat) + λ·text + (1 − λ)·image)`.
//!
//! **Projection**: `normalize(A·image + B·text)`, with `A` and `B` initialized to the identity, so an
//! untrained projection is exactly [`Fusion::Sum`](super::Fusion::Sum).
//!
//! Inputs are L2-normalized first, as for the closed-form fusions.

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The config file of a saved model folder.
pub const CONFIG_FILE: &str = "config.json";
/// The weights file of a saved model folder.
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// Which learned fusion a model is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LearnedFusionKind {
    /// CLIP4Cir's Combiner network.
    Combiner,
    /// Learned linear maps on image and text before a sum.
    Projection,
}

/// The dimensions of a learned fusion model, saved as `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CombinerConfig {
    /// Combiner or projection.
    pub kind: LearnedFusionKind,
    /// The image and text feature dimension (CLIP ViT-B/32: 512); also the output dimension.
    pub feature_dim: usize,
    /// Width of each projected input (CLIP4Cir: 2560 for RN50x4); unused by a projection.
    pub projection_dim: usize,
    /// Width of the MLP and gate hidden layers (CLIP4Cir: 5120); unused by a projection.
    pub hidden_dim: usize,
    /// Dropout probability during training (CLIP4Cir: 0.5); inference never drops.
    pub dropout: f32,
}

impl CombinerConfig {
    /// A Combiner with CLIP4Cir's proportions (projection 5×, hidden 10× the feature dimension).
    pub fn combiner(feature_dim: usize) -> CombinerConfig {
        CombinerConfig {
            kind: LearnedFusionKind::Combiner,
            feature_dim,
            projection_dim: feature_dim * 5,
            hidden_dim: feature_dim * 10,
            dropout: 0.5,
        }
    }

    /// A learned projection.
    pub fn projection(feature_dim: usize) -> CombinerConfig {
        CombinerConfig {
            kind: LearnedFusionKind::Projection,
            feature_dim,
            projection_dim: 0,
            hidden_dim: 0,
            dropout: 0.0,
        }
    }

    /// Every parameter's name and shape (`[out, in]` for weights, `[out]` for biases), in a fixed order.
    pub fn parameters(&self) -> Vec<(String, Vec<usize>)> {
        let (d, p, h) = (self.feature_dim, self.projection_dim, self.hidden_dim);
        let linear = |name: &str, input: usize, output: usize| {
            [
                (format!("{name}.weight"), vec![output, input]),
                (format!("{name}.bias"), vec![output]),
            ]
        };
        match self.kind {
            LearnedFusionKind::Projection => vec![
                ("image_projection.weight".to_owned(), vec![d, d]),
                ("text_projection.weight".to_owned(), vec![d, d]),
            ],
            LearnedFusionKind::Combiner => [
                linear("text_projection_layer", d, p),
                linear("image_projection_layer", d, p),
                linear("combiner_layer", 2 * p, h),
                linear("output_layer", h, d),
                linear("dynamic_scalar.0", 2 * p, h),
                linear("dynamic_scalar.3", h, 1),
            ]
            .into_iter()
            .flatten()
            .collect(),
        }
    }

    fn check(&self) -> Result<(), CombinerError> {
        let hidden_ok = self.kind == LearnedFusionKind::Projection
            || (self.projection_dim > 0 && self.hidden_dim > 0);
        if self.feature_dim == 0 || !hidden_ok || !(0.0..1.0).contains(&self.dropout) {
            return Err(CombinerError::InvalidConfig {
                config: self.clone(),
            });
        }
        Ok(())
    }
}

/// Why a learned fusion could not be loaded, saved or run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CombinerError {
    /// A file of the model folder could not be read or written.
    #[error("{path}: {detail}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's message.
        detail: String,
    },
    /// `config.json` is not a valid config.
    #[error("{path}: not a fusion model config: {detail}")]
    Config {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        detail: String,
    },
    /// Dimensions that cannot make a model (zero widths, dropout outside `[0, 1)`).
    #[error("invalid fusion model config {config:?}")]
    InvalidConfig {
        /// The config.
        config: CombinerConfig,
    },
    /// A weight is missing or has the wrong shape for the config.
    #[error("weight {name}: expected shape {expected:?}, found {found:?}")]
    WeightShape {
        /// The weight's name.
        name: String,
        /// Its shape for the config.
        expected: Vec<usize>,
        /// Its shape in the file (empty when missing).
        found: Vec<usize>,
    },
    /// An input of the wrong length.
    #[error("row {row}: {which} vector has {found} dimensions, the model takes {expected}")]
    InputDimension {
        /// The row of the batch.
        row: usize,
        /// `image` or `text`.
        which: &'static str,
        /// The model's feature dimension.
        expected: usize,
        /// The length given.
        found: usize,
    },
    /// A tensor operation failed (the tensor library's message, with what fiq was doing).
    #[error("{context}: {detail}")]
    Tensor {
        /// What fiq was doing.
        context: &'static str,
        /// The tensor library's message.
        detail: String,
    },
}

/// Wraps a candle error with what fiq was doing, so candle's types stay out of fiq's API.
pub(crate) fn tensor_error(context: &'static str) -> impl Fn(candle_core::Error) -> CombinerError {
    move |error| CombinerError::Tensor {
        context,
        detail: error.to_string(),
    }
}

/// A loaded learned fusion model, ready to fuse (no gradients, no dropout).
///
/// ```
/// use fiq::fusion::{Combiner, CombinerConfig};
/// let model = Combiner::untrained(CombinerConfig::projection(2), 0)?;
/// // An untrained projection is the plain normalized sum.
/// let fused = model.fuse(&[1.0, 0.0], &[0.0, 1.0])?;
/// assert!((fused[0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
/// # Ok::<(), fiq::fusion::CombinerError>(())
/// ```
pub struct Combiner {
    config: CombinerConfig,
    weights: HashMap<String, Tensor>,
    device: Device,
}

impl std::fmt::Debug for Combiner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Weights are megabytes; the config says what the model is.
        f.debug_struct("Combiner")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Combiner {
    /// Same config and same weight values.
    fn eq(&self, other: &Combiner) -> bool {
        let values = |tensor: &Tensor| tensor.flatten_all().and_then(|t| t.to_vec1::<f32>()).ok();
        self.config == other.config
            && self.weights.len() == other.weights.len()
            && self.weights.iter().all(|(name, tensor)| {
                other
                    .weights
                    .get(name)
                    .is_some_and(|theirs| values(tensor) == values(theirs))
            })
    }
}

impl Combiner {
    /// A freshly initialized model on the CPU, deterministic for a seed: the starting point of training.
    /// Both kinds start as sum fusion: a projection at the identity; a Combiner's hidden layers drawn
    /// like PyTorch's default (uniform in `±1/sqrt(fan_in)`) with its output layer and gate's last
    /// layer at zero.
    pub fn untrained(config: CombinerConfig, seed: u64) -> Result<Combiner, CombinerError> {
        Combiner::init(config, seed, &Device::Cpu)
    }

    pub(crate) fn init(
        config: CombinerConfig,
        seed: u64,
        device: &Device,
    ) -> Result<Combiner, CombinerError> {
        let weights = initial_weights(&config, seed, device)?;
        Combiner::from_weights(config, weights, device)
    }

    /// A model from named weights, checked against the config.
    pub(crate) fn from_weights(
        config: CombinerConfig,
        weights: HashMap<String, Tensor>,
        device: &Device,
    ) -> Result<Combiner, CombinerError> {
        config.check()?;
        let mut checked = HashMap::new();
        for (name, shape) in config.parameters() {
            let tensor = weights
                .get(&name)
                .ok_or_else(|| CombinerError::WeightShape {
                    name: name.clone(),
                    expected: shape.clone(),
                    found: Vec::new(),
                })?;
            if tensor.dims() != shape.as_slice() {
                return Err(CombinerError::WeightShape {
                    name,
                    expected: shape,
                    found: tensor.dims().to_vec(),
                });
            }
            let tensor = tensor
                .to_dtype(DType::F32)
                .and_then(|t| t.to_device(device))
                .map_err(tensor_error("moving weights to the device"))?;
            checked.insert(name, tensor);
        }
        Ok(Combiner {
            config,
            weights: checked,
            device: device.clone(),
        })
    }

    /// Loads `config.json` and `model.safetensors` from `dir` onto `device`.
    pub(crate) fn load(dir: impl AsRef<Path>, device: &Device) -> Result<Combiner, CombinerError> {
        let dir = dir.as_ref();
        let config = read_config(&dir.join(CONFIG_FILE))?;
        let weights_path = dir.join(WEIGHTS_FILE);
        let weights = candle_core::safetensors::load(&weights_path, device).map_err(|error| {
            CombinerError::Io {
                path: weights_path.clone(),
                detail: error.to_string(),
            }
        })?;
        Combiner::from_weights(config, weights, device)
    }

    /// Loads a model `fiq-index train` wrote (`config.json`, `model.safetensors` in `dir`), on the CPU.
    pub fn load_cpu(dir: impl AsRef<Path>) -> Result<Combiner, CombinerError> {
        Combiner::load(dir, &Device::Cpu)
    }

    /// Writes `config.json` and `model.safetensors` into `dir` (created if needed).
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<(), CombinerError> {
        save_model(dir.as_ref(), &self.config, &self.weights)
    }

    /// The model's dimensions.
    pub fn config(&self) -> &CombinerConfig {
        &self.config
    }

    /// The named weights.
    pub(crate) fn weights(&self) -> &HashMap<String, Tensor> {
        &self.weights
    }

    /// Fuses one image vector and one text vector into a unit-length query.
    pub fn fuse(&self, image: &[f32], text: &[f32]) -> Result<Vec<f32>, CombinerError> {
        self.fuse_batch(image, text)
    }

    /// Fuses row-major batches of `feature_dim`-wide rows.
    pub fn fuse_batch(&self, images: &[f32], texts: &[f32]) -> Result<Vec<f32>, CombinerError> {
        let dim = self.config.feature_dim;
        for (which, values) in [("image", images), ("text", texts)] {
            if values.len() % dim != 0 || values.is_empty() {
                return Err(CombinerError::InputDimension {
                    row: values.len() / dim,
                    which,
                    expected: dim,
                    found: values.len() % dim,
                });
            }
        }
        if images.len() != texts.len() {
            return Err(CombinerError::InputDimension {
                row: images.len().min(texts.len()) / dim,
                which: if images.len() < texts.len() {
                    "image"
                } else {
                    "text"
                },
                expected: dim,
                found: 0,
            });
        }
        let rows = images.len() / dim;
        let to_tensor = |values: &[f32]| {
            Tensor::from_slice(values, (rows, dim), &self.device)
                .map_err(tensor_error("building the input batch"))
        };
        let fused = forward(
            &self.config,
            &self.weights,
            &to_tensor(images)?,
            &to_tensor(texts)?,
            None,
        )
        .map_err(tensor_error("running the fusion model"))?;
        fused
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(tensor_error("reading the fused batch"))
    }
}

/// Draws dropout keep-masks (already scaled by `1 / (1 − p)`) of a given shape during training.
pub(crate) type DropoutMasks<'a> = &'a mut dyn FnMut(&[usize]) -> candle_core::Result<Tensor>;

/// Rows of `x` scaled to unit length (a tiny epsilon keeps a zero row finite).
pub(crate) fn normalize_rows(x: &Tensor) -> candle_core::Result<Tensor> {
    let norms = (x.sqr()?.sum_keepdim(1)?.sqrt()? + 1e-12)?;
    x.broadcast_div(&norms)
}

/// The model's forward pass on `[batch, feature_dim]` inputs; dropout applies only when masks are given.
pub(crate) fn forward(
    config: &CombinerConfig,
    weights: &HashMap<String, Tensor>,
    image: &Tensor,
    text: &Tensor,
    mut dropout: Option<DropoutMasks<'_>>,
) -> candle_core::Result<Tensor> {
    let image = normalize_rows(image)?;
    let text = normalize_rows(text)?;
    let weight = |name: &str| {
        weights
            .get(name)
            .ok_or_else(|| candle_core::Error::Msg(format!("missing weight {name}")))
    };
    let linear = |name: &str, x: &Tensor| -> candle_core::Result<Tensor> {
        let y = x.matmul(&weight(&format!("{name}.weight"))?.t()?)?;
        match weights.get(&format!("{name}.bias")) {
            Some(bias) => y.broadcast_add(bias),
            None => Ok(y),
        }
    };
    let mut drop = |x: Tensor| -> candle_core::Result<Tensor> {
        match dropout.as_mut() {
            Some(masks) => x.mul(&masks(x.dims())?),
            None => Ok(x),
        }
    };
    let out = match config.kind {
        LearnedFusionKind::Projection => {
            (linear("image_projection", &image)? + linear("text_projection", &text)?)?
        }
        LearnedFusionKind::Combiner => {
            let text_projected = drop(linear("text_projection_layer", &text)?.relu()?)?;
            let image_projected = drop(linear("image_projection_layer", &image)?.relu()?)?;
            let joint = Tensor::cat(&[&text_projected, &image_projected], 1)?;
            let hidden = drop(linear("combiner_layer", &joint)?.relu()?)?;
            let gate_hidden = drop(linear("dynamic_scalar.0", &joint)?.relu()?)?;
            let gate = candle_nn::ops::sigmoid(&linear("dynamic_scalar.3", &gate_hidden)?)?;
            let mixed =
                (text.broadcast_mul(&gate)? + image.broadcast_mul(&gate.affine(-1.0, 1.0)?)?)?;
            (linear("output_layer", &hidden)? + mixed)?
        }
    };
    normalize_rows(&out)
}

/// The Combiner's last layers, zero at initialization: the MLP's output adds nothing and the gate's
/// sigmoid sits at exactly 1/2, so an untrained Combiner is sum fusion and training starts from it.
/// CLIP4Cir draws every layer at random; from a random start a Combiner has to rediscover the sum its
/// encoder was trained for, and on small training sets it did not (17.3 vs 26.0 R@10 on the hard
/// synthetic level, BENCHMARKS.md). Zeroing the last layer of a residual branch is the usual remedy
/// (as in ReZero, or zero-initialized residual blocks); every other layer still gets gradients from the
/// first step on, through these layers' gradients.
const STARTS_AT_SUM: [&str; 4] = [
    "output_layer.weight",
    "output_layer.bias",
    "dynamic_scalar.3.weight",
    "dynamic_scalar.3.bias",
];

/// Seeded initial weights for `config`.
pub(crate) fn initial_weights(
    config: &CombinerConfig,
    seed: u64,
    device: &Device,
) -> Result<HashMap<String, Tensor>, CombinerError> {
    let mut rng = crate::rng::SplitMix64::new(seed);
    let mut weights = HashMap::new();
    for (name, shape) in config.parameters() {
        let count: usize = shape.iter().product();
        let values: Vec<f32> = match config.kind {
            LearnedFusionKind::Projection => (0..count)
                .map(|i| {
                    if i / shape[1] == i % shape[1] {
                        1.0
                    } else {
                        0.0
                    }
                })
                .collect(),
            LearnedFusionKind::Combiner => {
                // PyTorch's nn.Linear default: weight and bias uniform in ±1/sqrt(fan_in).
                let fan_in = config
                    .parameters()
                    .iter()
                    .find(|(other, _)| {
                        other.trim_end_matches(".bias") == name.trim_end_matches(".bias")
                            && other.ends_with(".weight")
                    })
                    .map(|(_, weight_shape)| weight_shape[1])
                    .unwrap_or(1);
                let bound = 1.0 / (fan_in as f32).sqrt();
                let values: Vec<f32> = (0..count).map(|_| rng.uniform(-bound, bound)).collect();
                if STARTS_AT_SUM.contains(&name.as_str()) {
                    // Drawn and discarded, so the other layers' draws do not depend on this choice.
                    vec![0.0; count]
                } else {
                    values
                }
            }
        };
        let tensor = Tensor::from_vec(values, shape.as_slice(), device)
            .map_err(tensor_error("initializing weights"))?;
        weights.insert(name, tensor);
    }
    Ok(weights)
}

fn read_config(path: &Path) -> Result<CombinerConfig, CombinerError> {
    let text = std::fs::read_to_string(path).map_err(|error| CombinerError::Io {
        path: path.to_owned(),
        detail: error.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|error| CombinerError::Config {
        path: path.to_owned(),
        detail: error.to_string(),
    })
}

/// Writes a model folder from a config and named weights.
pub(crate) fn save_model(
    dir: &Path,
    config: &CombinerConfig,
    weights: &HashMap<String, Tensor>,
) -> Result<(), CombinerError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |error: std::io::Error| CombinerError::Io {
            path: path.clone(),
            detail: error.to_string(),
        }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let config_path = dir.join(CONFIG_FILE);
    let text = serde_json::to_string_pretty(config).map_err(|error| CombinerError::Config {
        path: config_path.clone(),
        detail: error.to_string(),
    })?;
    std::fs::write(&config_path, text).map_err(io(&config_path))?;
    let weights_path = dir.join(WEIGHTS_FILE);
    candle_core::safetensors::save(weights, &weights_path).map_err(|error| CombinerError::Io {
        path: weights_path.clone(),
        detail: error.to_string(),
    })
}
