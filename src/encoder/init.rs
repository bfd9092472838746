//! A Hugging Face CLIP model directory with freshly drawn weights: the starting point for training a
//! model from scratch with fiq (`fiq-index init-model`, then `fiq-index train --what encoder`).
//!
//! The draw follows transformers' `CLIPPreTrainedModel._init_weights`, so a model started here trains
//! like one started by `CLIPModel(config)` in PyTorch: normal weights whose scale shrinks with the
//! width and depth of the tower (attention and MLP input projections by `width^-½ · (2·layers)^-½`), unit
//! layer norms, zero biases, and the configured `logit_scale_init_value`. Each tensor draws from its own
//! stream of fiq's seeded generator (keyed by its position in the checkpoint's fixed tensor list), so a
//! seed names one model on every machine.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use super::checkpoint::{read_text, CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE};
use super::config::{ClipConfig, TowerConfig};
use super::error::EncoderError;
use crate::rng::SplitMix64;

/// transformers' defaults for the two init fields fiq's config parser does not keep.
const DEFAULT_INITIALIZER_RANGE: f64 = 0.02;
const DEFAULT_INITIALIZER_FACTOR: f64 = 1.0;

/// Writes `out/{config.json, model.safetensors, tokenizer.json}`: the CLIP model `config` describes,
/// weights drawn with `seed`, and `tokenizer` copied as it is. `out` is created if missing; files in it
/// are replaced.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clip-tiny");
/// let out = tempfile::tempdir()?;
/// fiq::encoder::initialize_clip(&model.join("config.json"), &model.join("tokenizer.json"), out.path(), 7)?;
/// use fiq::encoder::Encoder;
/// let encoder = fiq::encoder::ClipEncoder::load(out.path(), &Default::default())?;
/// let vectors = encoder.encode_texts(&["is red and sleeveless"])?;
/// assert!(vectors[0].iter().all(|x| x.is_finite()));
/// # Ok(())
/// # }
/// ```
pub fn initialize_clip(
    config: &Path,
    tokenizer: &Path,
    out: &Path,
    seed: u64,
) -> Result<(), EncoderError> {
    let config_json = read_text(config)?;
    let parsed = ClipConfig::from_json(&config_json, config)?;
    let raw: serde_json::Value =
        serde_json::from_str(&config_json).map_err(|source| EncoderError::ConfigParse {
            path: config.to_path_buf(),
            source,
        })?;
    let field = |tower: &str, name: &str, default: f64| {
        raw.get(tower)
            .and_then(|t| t.get(name))
            .or_else(|| raw.get(name))
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(default)
    };
    // Per tower: transformers reads `initializer_range` / `initializer_factor` from each sub-config.
    let init = |tower: &str| {
        (
            field(tower, "initializer_range", DEFAULT_INITIALIZER_RANGE),
            field(tower, "initializer_factor", DEFAULT_INITIALIZER_FACTOR),
        )
    };
    let (text_init, vision_init) = (init("text_config"), init("vision_config"));
    let tokenizer_bytes = std::fs::read(tokenizer).map_err(|source| EncoderError::Io {
        path: tokenizer.to_path_buf(),
        source,
    })?;

    let weights = out.join(WEIGHTS_FILE);
    let weights_error = |source: candle_core::Error| EncoderError::Weights {
        path: weights.clone(),
        source: Box::new(source),
    };
    let mut tensors = HashMap::new();
    for (stream, (name, shape)) in parsed.expected_tensors().into_iter().enumerate() {
        let count: usize = shape.iter().product();
        let (tower, (range, factor)) = match is_vision(&name) {
            true => (&parsed.vision.tower, vision_init),
            false => (&parsed.text.tower, text_init),
        };
        let values = match draw(&name, tower, range, factor) {
            Draw::Constant(value) => vec![value; count],
            Draw::Normal(std) => {
                let mut rng = SplitMix64::stream(seed, stream as u64);
                (0..count).map(|_| rng.gaussian() * std as f32).collect()
            }
        };
        let tensor = Tensor::from_vec(values, shape, &Device::Cpu).map_err(weights_error)?;
        tensors.insert(name, tensor);
    }
    let scale =
        Tensor::new(parsed.logit_scale_init_value as f32, &Device::Cpu).map_err(weights_error)?;
    tensors.insert("logit_scale".to_owned(), scale);

    let io = |path: std::path::PathBuf| move |source| EncoderError::Io { path, source };
    std::fs::create_dir_all(out).map_err(io(out.to_path_buf()))?;
    candle_core::safetensors::save(&tensors, &weights).map_err(weights_error)?;
    std::fs::write(out.join(CONFIG_FILE), &config_json).map_err(io(out.join(CONFIG_FILE)))?;
    std::fs::write(out.join(TOKENIZER_FILE), tokenizer_bytes)
        .map_err(io(out.join(TOKENIZER_FILE)))?;
    Ok(())
}

/// How one tensor starts.
enum Draw {
    Constant(f32),
    Normal(f64),
}

/// Whether `name` belongs to the image side (its tower or its projection).
fn is_vision(name: &str) -> bool {
    name.starts_with("vision_model.") || name.starts_with("visual_projection.")
}

/// transformers' rule for the tensor called `name` of `tower` (`range` and `factor` of its config).
fn draw(name: &str, tower: &TowerConfig, range: f64, factor: f64) -> Draw {
    let width = tower.hidden_size as f64;
    let depth = tower.num_hidden_layers as f64;
    let input_std = width.powf(-0.5) * (2.0 * depth).powf(-0.5) * factor;
    let is_norm =
        name.contains("layer_norm") || name.contains("layrnorm") || name.contains("layernorm");
    if is_norm {
        return Draw::Constant(if name.ends_with(".weight") { 1.0 } else { 0.0 });
    }
    if name.ends_with(".bias") {
        return Draw::Constant(0.0);
    }
    let std = if name.ends_with("class_embedding") || name.ends_with("_projection.weight") {
        // `text_projection` / `visual_projection` and the class token: width^-½.
        width.powf(-0.5) * factor
    } else if name.contains(".embeddings.") {
        // Token, position and patch embeddings.
        range * factor
    } else if name.contains(".self_attn.out_proj.") {
        width.powf(-0.5) * factor
    } else if name.contains(".mlp.fc1.") {
        (2.0 * width).powf(-0.5) * factor
    } else {
        // q, k, v projections and fc2.
        input_std
    };
    Draw::Normal(std)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::{ClipEncoder, Encoder};

    fn fixture() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clip-tiny")
    }

    fn initialized(seed: u64) -> (tempfile::TempDir, HashMap<String, Tensor>) {
        let dir = tempfile::tempdir().unwrap();
        let model = fixture();
        initialize_clip(
            &model.join(CONFIG_FILE),
            &model.join(TOKENIZER_FILE),
            dir.path(),
            seed,
        )
        .unwrap();
        let tensors =
            candle_core::safetensors::load(dir.path().join(WEIGHTS_FILE), &Device::Cpu).unwrap();
        (dir, tensors)
    }

    fn values(tensors: &HashMap<String, Tensor>, name: &str) -> Vec<f32> {
        tensors[name].flatten_all().unwrap().to_vec1().unwrap()
    }

    #[test]
    fn draws_follow_transformers_scales_and_the_model_encodes() {
        let (dir, tensors) = initialized(3);
        let config = ClipConfig::from_json(
            &read_text(&fixture().join(CONFIG_FILE)).unwrap(),
            &fixture().join(CONFIG_FILE),
        )
        .unwrap();
        assert_eq!(tensors.len(), config.expected_tensors().len() + 1);
        let t = &config.text.tower;
        let q = values(
            &tensors,
            "text_model.encoder.layers.0.self_attn.q_proj.weight",
        );
        let std = (q.iter().map(|x| x * x).sum::<f32>() / q.len() as f32).sqrt();
        let expected =
            (t.hidden_size as f32).powf(-0.5) * (2.0 * t.num_hidden_layers as f32).powf(-0.5);
        assert!(
            (std / expected - 1.0).abs() < 0.1,
            "q_proj std {std}, expected {expected}"
        );
        assert!(values(&tensors, "text_model.final_layer_norm.weight")
            .iter()
            .all(|&x| x == 1.0));
        assert!(
            values(&tensors, "vision_model.encoder.layers.0.mlp.fc1.bias")
                .iter()
                .all(|&x| x == 0.0)
        );

        let encoder = ClipEncoder::load(dir.path(), &Default::default()).unwrap();
        let vectors = encoder
            .encode_texts(&["is red", "has long sleeves"])
            .unwrap();
        for v in &vectors {
            let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-4);
        }
        assert_ne!(vectors[0], vectors[1]);
    }

    #[test]
    fn a_seed_names_one_model() {
        let name = "vision_model.embeddings.patch_embedding.weight";
        let (_a, first) = initialized(5);
        let (_b, again) = initialized(5);
        let (_c, other) = initialized(6);
        assert_eq!(values(&first, name), values(&again, name));
        assert_ne!(values(&first, name), values(&other, name));
    }

    #[test]
    fn a_missing_tokenizer_is_named() {
        let out = tempfile::tempdir().unwrap();
        let missing = out.path().join("nope.json");
        let error =
            initialize_clip(&fixture().join(CONFIG_FILE), &missing, out.path(), 1).unwrap_err();
        assert!(error.to_string().contains("nope.json"), "{error}");
    }
}
