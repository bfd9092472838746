//! A Hugging Face CLIP checkpoint opened for fine-tuning: every tensor a candle variable, the forward
//! pass on [`Kernels::Differentiable`], and saving back to the layout [`super::ClipEncoder::load`] reads.
//!
//! The inference encoder stays as it is (fused CPU kernels, BLAS linear layers, no gradient graph); this
//! is the same `model.rs` forward built over a `VarMap`, so a fine-tuned checkpoint loads into the
//! inference path bit for bit and the two cannot drift apart.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Result as CandleResult, Tensor, Var, D};
use candle_nn::{VarBuilder, VarMap};

use super::checkpoint::{read_text, ModelFiles, CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE};
use super::config::ClipConfig;
use super::error::{compute, EncoderError};
use super::model::{projected_text_features_with, ClipModel, Kernels};
use super::preprocess::ImagePreprocessor;
use super::tokenizer::ClipTokenizer;
use super::EncoderOptions;

/// Inputs per forward pass when encoding outside the gradient graph.
pub(crate) const ENCODE_CHUNK: usize = 256;

/// One of the two towers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tower {
    /// `text_model.*` and `text_projection.*`.
    Text,
    /// `vision_model.*` and `visual_projection.*`.
    Image,
}

/// A CLIP model whose weights are variables.
pub(crate) struct TrainableClip {
    config: ClipConfig,
    config_json: String,
    /// `tokenizer.json` as read (written back verbatim; the run may save over the folder it loaded).
    tokenizer_json: Vec<u8>,
    varmap: VarMap,
    model: ClipModel,
    tokenizer: ClipTokenizer,
    preprocessor: ImagePreprocessor,
    /// Each tensor's type in the checkpoint, restored on saving so that untouched tensors keep their bytes
    /// (and the image tower its digest).
    stored_dtypes: HashMap<String, DType>,
    /// Tensors handed out for training: saved in f32, so a half-precision checkpoint's fine-tuned weights
    /// are not rounded (and a resumed run continues from exactly the values it stopped at).
    trained: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl TrainableClip {
    /// Opens `dir` (config.json, model.safetensors, tokenizer.json of a Hugging Face `CLIPModel`), every
    /// tensor copied into an f32 variable on the CPU.
    pub(crate) fn load(dir: &Path, options: &EncoderOptions) -> Result<Self, EncoderError> {
        let files = ModelFiles::locate(dir)?;
        let config_json = read_text(&files.config)?;
        let config = ClipConfig::from_json(&config_json, &files.config)?;
        let device = Device::Cpu;
        let (weights, _) = super::checkpoint::open_weights(
            &files.weights,
            "fiq-clip-1",
            &config,
            config.expected_tensors(),
        )?;
        let varmap = VarMap::new();
        let mut stored_dtypes = HashMap::new();
        {
            let mut vars = varmap
                .data()
                .lock()
                .expect("a fresh VarMap is not poisoned");
            for (name, _) in config.expected_tensors() {
                let tensor = weights
                    .load(&name, &device)
                    .and_then(|t| {
                        stored_dtypes.insert(name.clone(), t.dtype());
                        t.to_dtype(DType::F32)
                    })
                    .and_then(|t| Var::from_tensor(&t))
                    .map_err(compute("reading the checkpoint's tensors"))?;
                vars.insert(name, tensor);
            }
            // The temperature is optional in checkpoints; fine-tuning uses a fixed scale, so it is kept
            // only to be written back.
            if let Ok(scale) = weights.load("logit_scale", &device) {
                stored_dtypes.insert("logit_scale".into(), scale.dtype());
                let scale = scale
                    .to_dtype(DType::F32)
                    .and_then(|t| Var::from_tensor(&t))
                    .map_err(compute("reading logit_scale"))?;
                vars.insert("logit_scale".into(), scale);
            }
        }
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
        let model = ClipModel::new(&config, Kernels::Differentiable, vb)
            .map_err(compute("building the model"))?;
        let tokenizer = ClipTokenizer::load(&files.tokenizer, config.text.max_position_embeddings)?;
        let tokenizer_json =
            std::fs::read(&files.tokenizer).map_err(|source| EncoderError::Io {
                path: files.tokenizer.clone(),
                source,
            })?;
        let preprocessor = ImagePreprocessor::new(
            config.vision.image_size,
            options.resize,
            options.normalization,
        );
        Ok(Self {
            config,
            config_json,
            tokenizer_json,
            varmap,
            model,
            tokenizer,
            preprocessor,
            stored_dtypes,
            trained: Default::default(),
        })
    }

    /// The joint embedding width.
    pub(crate) fn dim(&self) -> usize {
        self.config.projection_dim
    }

    /// Blocks in `tower`.
    pub(crate) fn blocks(&self, tower: Tower) -> usize {
        match tower {
            Tower::Text => self.config.text.tower.num_hidden_layers,
            Tower::Image => self.config.vision.tower.num_hidden_layers,
        }
    }

    /// The image preprocessing the encoder applies.
    pub(crate) fn preprocessor(&self) -> &ImagePreprocessor {
        &self.preprocessor
    }

    /// Token ids of each text (start and end tokens, truncated to the context, unpadded).
    pub(crate) fn tokenize(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>, EncoderError> {
        self.tokenizer.encode(texts)
    }

    /// Unit text embeddings (batch, dim); the first `frozen` blocks (and the embeddings, when any block
    /// is frozen) are outside the gradient graph.
    pub(crate) fn text_embeddings(
        &self,
        sequences: &[&[u32]],
        frozen: usize,
    ) -> CandleResult<Tensor> {
        let features = projected_text_features_with(
            &self.model.text,
            &self.model.text_projection,
            sequences,
            self.tokenizer.pad_id(),
            &Device::Cpu,
            frozen,
        )?;
        unit_rows(&features)
    }

    /// Unit image embeddings (batch, dim) of preprocessed `pixels` (batch × 3 × size × size, row-major).
    pub(crate) fn image_embeddings(
        &self,
        pixels: Vec<f32>,
        count: usize,
        frozen: usize,
    ) -> CandleResult<Tensor> {
        let size = self.preprocessor.size();
        let pixels = Tensor::from_vec(pixels, (count, 3, size, size), &Device::Cpu)?;
        unit_rows(&self.model.image_features(&pixels, frozen)?)
    }

    /// Unit vectors of `texts` from the current text tower, outside any gradient graph (validation,
    /// mining), [`ENCODE_CHUNK`] texts per forward pass.
    pub(crate) fn encode_texts(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EncoderError> {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let ids = self.tokenize(&refs)?;
        let mut out = Vec::with_capacity(texts.len());
        for chunk in ids.chunks(ENCODE_CHUNK) {
            let sequences: Vec<&[u32]> = chunk.iter().map(Vec::as_slice).collect();
            let rows = self
                .text_embeddings(&sequences, self.blocks(Tower::Text))
                .and_then(|t| t.detach().to_vec2::<f32>())
                .map_err(compute("encoding texts"))?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// Unit vectors of `count` preprocessed images (`pixels`, back to back) from the current image tower,
    /// outside any gradient graph, in one forward pass (callers pass at most [`ENCODE_CHUNK`]).
    pub(crate) fn encode_images(
        &self,
        pixels: Vec<f32>,
        count: usize,
    ) -> Result<Vec<Vec<f32>>, EncoderError> {
        self.image_embeddings(pixels, count, self.blocks(Tower::Image))
            .and_then(|t| t.detach().to_vec2::<f32>())
            .map_err(compute("encoding images"))
    }

    /// The variables fine-tuning `tower` with its first `frozen` blocks frozen updates: the unfrozen
    /// blocks, the tower's final layer norm and projection, and its embeddings when nothing is frozen.
    /// Sorted by name, so optimizer state lines up across runs.
    pub(crate) fn trainable(&self, tower: Tower, frozen: usize) -> Vec<(String, Var)> {
        let (model, projection, embeddings_side) = match tower {
            Tower::Text => (
                "text_model.",
                "text_projection.",
                ["text_model.embeddings."].as_slice(),
            ),
            Tower::Image => (
                "vision_model.",
                "visual_projection.",
                ["vision_model.embeddings.", "vision_model.pre_layrnorm."].as_slice(),
            ),
        };
        let layers = format!("{model}encoder.layers.");
        let data = self.varmap.data().lock().expect("VarMap lock");
        let mut vars: Vec<(String, Var)> = data
            .iter()
            .filter(|(name, _)| {
                if name.starts_with(projection) {
                    return true;
                }
                if !name.starts_with(model) {
                    return false;
                }
                if let Some(rest) = name.strip_prefix(&layers) {
                    let block: usize = rest
                        .split('.')
                        .next()
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0);
                    return block >= frozen;
                }
                if embeddings_side
                    .iter()
                    .any(|prefix| name.starts_with(prefix))
                {
                    return frozen == 0;
                }
                // The final layer norm (text) or post layer norm (vision).
                true
            })
            .map(|(name, var)| (name.clone(), var.clone()))
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        self.trained
            .lock()
            .expect("trained-set lock")
            .extend(vars.iter().map(|(name, _)| name.clone()));
        vars
    }

    /// The config's `logit_scale_init_value` (the log of CLIP's initial logit scale).
    pub(crate) fn logit_scale_init(&self) -> f32 {
        self.config.logit_scale_init_value as f32
    }

    /// CLIP's learned temperature (`logit_scale`, the log of the image-text logit scale) as a variable
    /// to train, created at the config's `logit_scale_init_value` when the checkpoint has none; saved with
    /// the model in f32.
    pub(crate) fn trainable_logit_scale(&self) -> CandleResult<Var> {
        let mut data = self.varmap.data().lock().expect("VarMap lock");
        let var = match data.get("logit_scale") {
            Some(var) => var.clone(),
            None => {
                let var = Var::new(self.config.logit_scale_init_value as f32, &Device::Cpu)?;
                data.insert("logit_scale".to_owned(), var.clone());
                var
            }
        };
        self.trained
            .lock()
            .expect("trained-set lock")
            .insert("logit_scale".to_owned());
        Ok(var)
    }

    /// Every tensor by name (for checkpoints of the run).
    pub(crate) fn weights(&self) -> HashMap<String, Tensor> {
        let data = self.varmap.data().lock().expect("VarMap lock");
        data.iter()
            .map(|(name, var)| (name.clone(), var.as_tensor().clone()))
            .collect()
    }

    /// Writes `dir/model.safetensors` (every tensor under its Hugging Face name: trained ones in f32,
    /// the others in their original type and bytes), `config.json` and `tokenizer.json`: a model
    /// directory `--model` loads.
    pub(crate) fn save(&self, dir: &Path) -> Result<(), EncoderError> {
        let io = |path: PathBuf| move |source| EncoderError::Io { path, source };
        std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
        let trained = self.trained.lock().expect("trained-set lock").clone();
        let mut tensors = HashMap::new();
        for (name, tensor) in self.weights() {
            let dtype = match trained.contains(&name) {
                true => DType::F32,
                false => self.stored_dtypes.get(&name).copied().unwrap_or(DType::F32),
            };
            let tensor = tensor
                .to_dtype(dtype)
                .map_err(compute("converting a tensor for saving"))?;
            tensors.insert(name, tensor);
        }
        let weights = dir.join(WEIGHTS_FILE);
        candle_core::safetensors::save(&tensors, &weights).map_err(|source| {
            EncoderError::Weights {
                path: weights.clone(),
                source: Box::new(source),
            }
        })?;
        let config = dir.join(CONFIG_FILE);
        std::fs::write(&config, &self.config_json).map_err(io(config.clone()))?;
        let tokenizer = dir.join(TOKENIZER_FILE);
        std::fs::write(&tokenizer, &self.tokenizer_json).map_err(io(tokenizer.clone()))?;
        Ok(())
    }
}

/// Rows scaled to unit length, differentiably (fiq's one normalization for `f32` slices is
/// `crate::vector`; this is its tensor form inside the gradient graph).
pub(crate) fn unit_rows(xs: &Tensor) -> CandleResult<Tensor> {
    let norms = xs.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?;
    xs.broadcast_div(&norms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::{ClipEncoder, Encoder, ImageSource};
    use crate::train::{contrastive_loss, LossOptions};

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clip-tiny")
    }

    fn texts() -> [&'static str; 3] {
        [
            "is red and sleeveless",
            "has long sleeves",
            "is darker with a collar",
        ]
    }

    /// The loss of sum-fused queries (fixed image vectors + the text tower) against fixed targets, and
    /// the image tower's embeddings of three images as extra negatives, so both towers get gradients.
    fn loss(model: &TrainableClip) -> Tensor {
        let ids = model.tokenize(&texts()).unwrap();
        let sequences: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
        let text = model.text_embeddings(&sequences, 0).unwrap();
        let dim = model.dim();
        let fixed = |seed: u64| {
            let mut rng = crate::rng::SplitMix64::new(seed);
            let values: Vec<f32> = (0..3 * dim).map(|_| rng.unit() - 0.5).collect();
            unit_rows(&Tensor::from_vec(values, (3, dim), &Device::Cpu).unwrap()).unwrap()
        };
        let size = model.preprocessor().size();
        let mut rng = crate::rng::SplitMix64::new(9);
        let pixels: Vec<f32> = (0..3 * 3 * size * size).map(|_| rng.unit() - 0.5).collect();
        let images = model.image_embeddings(pixels, 3, 0).unwrap();
        let queries = unit_rows(&(fixed(1) + text).unwrap()).unwrap();
        let mined = images.unsqueeze(0).unwrap().repeat((3, 1, 1)).unwrap();
        let valid = vec![true; 9];
        let mined = crate::train::MinedBatch {
            vectors: &mined,
            valid: &valid,
        };
        let options = LossOptions {
            logit_scale: 10.0,
            hard_negative_beta: 0.0,
        };
        contrastive_loss(&queries, &fixed(2), &[0, 1, 2], Some(&mined), &options).unwrap()
    }

    fn scalar(t: &Tensor) -> f64 {
        f64::from(t.to_scalar::<f32>().unwrap())
    }

    #[test]
    fn gradients_of_both_towers_match_finite_differences() {
        let model = TrainableClip::load(&fixture(), &EncoderOptions::default()).unwrap();
        let grads = loss(&model).backward().unwrap();
        let checked = [
            "text_model.encoder.layers.1.mlp.fc1.weight",
            "text_model.encoder.layers.0.self_attn.q_proj.weight",
            "text_model.final_layer_norm.weight",
            "text_projection.weight",
            "vision_model.encoder.layers.1.mlp.fc2.weight",
            "vision_model.post_layernorm.bias",
            "visual_projection.weight",
        ];
        let vars: HashMap<String, Var> = model
            .trainable(Tower::Text, 0)
            .into_iter()
            .chain(model.trainable(Tower::Image, 0))
            .collect();
        for name in checked {
            let var = &vars[name];
            let grad = grads
                .get(var)
                .unwrap_or_else(|| panic!("{name} has no gradient"));
            let flat_grad = grad.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            // The entry with the largest gradient: the one finite differences measure best in f32.
            let (at, &analytic) = flat_grad
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
                .unwrap();
            let original = var
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let shifted = |delta: f32| {
                let mut values = original.clone();
                values[at] += delta;
                let t = Tensor::from_vec(values, var.shape(), &Device::Cpu).unwrap();
                var.set(&t).unwrap();
                let value = scalar(&loss(&model));
                var.set(&Tensor::from_vec(original.clone(), var.shape(), &Device::Cpu).unwrap())
                    .unwrap();
                value
            };
            let eps = 1e-2_f32;
            let numeric = (shifted(eps) - shifted(-eps)) / (2.0 * f64::from(eps));
            let analytic = f64::from(analytic);
            let error = (numeric - analytic).abs();
            assert!(
                error <= 2e-3 + 0.05 * analytic.abs(),
                "{name}[{at}]: backward {analytic:.6}, finite differences {numeric:.6}"
            );
            assert!(
                analytic.abs() > 1e-4,
                "{name}: gradient too small to check ({analytic})"
            );
        }
    }

    #[test]
    fn a_saved_checkpoint_loads_as_the_encoder_with_the_same_embeddings() {
        let model = TrainableClip::load(&fixture(), &EncoderOptions::default()).unwrap();
        // Move every text-tower variable, as training does.
        for (_, var) in model.trainable(Tower::Text, 0) {
            let moved = (var.as_tensor() * 1.01).unwrap();
            var.set(&moved).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        model.save(dir.path()).unwrap();
        let encoder = ClipEncoder::load(dir.path(), &EncoderOptions::default()).unwrap();
        let ids = model.tokenize(&texts()).unwrap();
        let sequences: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
        let in_memory = model
            .text_embeddings(&sequences, 0)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let loaded = encoder.encode_texts(&texts()).unwrap();
        for (a, b) in in_memory.iter().zip(&loaded) {
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() < 1e-5, "{x} vs {y}");
            }
        }
        let image = fixture().join("images");
        let first = std::fs::read_dir(&image)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "png" || e == "jpg"))
            .min()
            .unwrap();
        let pixels = model.preprocessor().load(&first).unwrap();
        let in_memory = model
            .image_embeddings(pixels, 1, 0)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let loaded = encoder.encode_images(&[ImageSource::Path(&first)]).unwrap();
        let loaded = loaded[0].as_ref().unwrap();
        for (x, y) in in_memory[0].iter().zip(loaded) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
        // The text tower moved, the image tower did not: the base model's index accepts the new model,
        // and a model whose image tower moved is refused.
        let base = ClipEncoder::load(&fixture(), &EncoderOptions::default()).unwrap();
        assert_ne!(base.info().fingerprint, encoder.info().fingerprint);
        assert!(base.info().accepts(encoder.info()));
        for (_, var) in model.trainable(Tower::Image, 0) {
            let moved = (var.as_tensor() * 1.01).unwrap();
            var.set(&moved).unwrap();
        }
        let both = tempfile::tempdir().unwrap();
        model.save(both.path()).unwrap();
        let moved = ClipEncoder::load(both.path(), &EncoderOptions::default()).unwrap();
        assert!(!base.info().accepts(moved.info()));
    }

    #[test]
    fn frozen_blocks_are_not_trainable() {
        let model = TrainableClip::load(&fixture(), &EncoderOptions::default()).unwrap();
        let names: Vec<String> = model
            .trainable(Tower::Text, 1)
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert!(names
            .iter()
            .any(|n| n.starts_with("text_model.encoder.layers.1.")));
        assert!(names
            .iter()
            .all(|n| !n.starts_with("text_model.encoder.layers.0.")));
        assert!(names
            .iter()
            .all(|n| !n.starts_with("text_model.embeddings.")));
        assert!(names.contains(&"text_projection.weight".to_string()));
        assert!(names.contains(&"text_model.final_layer_norm.weight".to_string()));
        assert!(names.iter().all(|n| !n.starts_with("vision_model.")));
    }
}
