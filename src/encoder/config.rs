//! The CLIP architecture as a Hugging Face `config.json` describes it, checked before any weight is read.
//!
//! Every field falls back to the default of transformers' `CLIPTextConfig` / `CLIPVisionConfig` when it is
//! absent, so the terse configs that transformers writes (only non-default fields) and the verbose ones of the
//! original OpenAI uploads both load.

use std::path::Path;

use serde::Deserialize;

use super::error::EncoderError;

/// The activation between the two MLP layers of every transformer block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `x * sigmoid(1.702 x)`, the activation of the OpenAI CLIP checkpoints.
    QuickGelu,
    /// GELU with the exact error function (`"gelu"`).
    GeluErf,
    /// GELU with the tanh approximation (`"gelu_new"`, `"gelu_pytorch_tanh"`).
    GeluTanh,
}

impl Activation {
    fn from_hf_name(name: &str) -> Option<Self> {
        match name {
            "quick_gelu" => Some(Self::QuickGelu),
            "gelu" => Some(Self::GeluErf),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Some(Self::GeluTanh),
            _ => None,
        }
    }
}

/// One transformer stack (the text tower or the vision tower).
#[derive(Debug, Clone, PartialEq)]
pub struct TowerConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub activation: Activation,
    pub layer_norm_eps: f64,
}

impl TowerConfig {
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

/// The text tower: token and position tables on top of a causal transformer.
#[derive(Debug, Clone, PartialEq)]
pub struct TextConfig {
    pub tower: TowerConfig,
    pub vocab_size: usize,
    /// The context length: 77 for every OpenAI checkpoint.
    pub max_position_embeddings: usize,
    /// Which token's state is pooled. transformers keeps a legacy rule for configs that say 2 (the value
    /// before its PR #24773): pool at the largest token id. Any other value pools at its first occurrence.
    pub eos_token_id: u32,
}

/// The vision tower: a ViT over non-overlapping square patches plus a class token.
#[derive(Debug, Clone, PartialEq)]
pub struct VisionConfig {
    pub tower: TowerConfig,
    pub image_size: usize,
    pub patch_size: usize,
    /// Whether the patch convolution has a bias (BLIP's does, CLIP's does not).
    pub patch_bias: bool,
    /// Whether a layer norm precedes the blocks (CLIP's `pre_layrnorm`; BLIP has none).
    pub pre_norm: bool,
}

impl VisionConfig {
    /// Patches per side of the square input.
    pub fn grid_size(&self) -> usize {
        self.image_size / self.patch_size
    }

    /// Sequence length of the vision transformer: one token per patch plus the class token.
    pub fn num_positions(&self) -> usize {
        self.grid_size() * self.grid_size() + 1
    }
}

/// A whole CLIP model: both towers and the shared embedding width.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipConfig {
    pub text: TextConfig,
    pub vision: VisionConfig,
    /// Width of the joint embedding space, the length of every vector fiq stores.
    pub projection_dim: usize,
    pub logit_scale_init_value: f64,
}

#[derive(Deserialize)]
struct RawClipConfig {
    #[serde(default)]
    text_config: RawTextConfig,
    #[serde(default)]
    vision_config: RawVisionConfig,
    projection_dim: Option<usize>,
    logit_scale_init_value: Option<f64>,
    model_type: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawTextConfig {
    vocab_size: Option<usize>,
    hidden_size: Option<usize>,
    intermediate_size: Option<usize>,
    num_hidden_layers: Option<usize>,
    num_attention_heads: Option<usize>,
    max_position_embeddings: Option<usize>,
    hidden_act: Option<String>,
    layer_norm_eps: Option<f64>,
    eos_token_id: Option<u32>,
}

#[derive(Deserialize, Default)]
struct RawVisionConfig {
    hidden_size: Option<usize>,
    intermediate_size: Option<usize>,
    num_hidden_layers: Option<usize>,
    num_attention_heads: Option<usize>,
    num_channels: Option<usize>,
    image_size: Option<usize>,
    patch_size: Option<usize>,
    hidden_act: Option<String>,
    layer_norm_eps: Option<f64>,
}

/// Parses a model's JSON config file; `path` only names the file in errors.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    text: &str,
    path: &Path,
) -> Result<T, EncoderError> {
    serde_json::from_str(text).map_err(|source| EncoderError::ConfigParse {
        path: path.to_path_buf(),
        source,
    })
}

/// Builds the error for a config field (`field = value`) fiq does not implement, naming `path`.
pub(crate) fn unsupported(path: &Path) -> impl Fn(&str, String, &'static str) -> EncoderError + '_ {
    move |field, value, reason| EncoderError::UnsupportedConfig {
        path: path.to_path_buf(),
        field: field.to_string(),
        value,
        reason,
    }
}

impl ClipConfig {
    /// Parses and checks a `config.json`. `path` only names the file in errors.
    pub fn from_json(text: &str, path: &Path) -> Result<Self, EncoderError> {
        let raw: RawClipConfig = parse_json(text, path)?;
        let unsupported = unsupported(path);
        if let Some(model_type) = &raw.model_type {
            if model_type != "clip" {
                return Err(unsupported(
                    "model_type",
                    model_type.clone(),
                    "only \"clip\" checkpoints are understood",
                ));
            }
        }
        let activation = |field: &str, name: Option<String>| {
            let name = name.unwrap_or_else(|| "quick_gelu".to_string());
            Activation::from_hf_name(&name).ok_or_else(|| {
                unsupported(
                    field,
                    name,
                    "supported activations: quick_gelu, gelu, gelu_new, gelu_pytorch_tanh",
                )
            })
        };

        let t = raw.text_config;
        let text = TextConfig {
            tower: TowerConfig {
                hidden_size: t.hidden_size.unwrap_or(512),
                intermediate_size: t.intermediate_size.unwrap_or(2048),
                num_hidden_layers: t.num_hidden_layers.unwrap_or(12),
                num_attention_heads: t.num_attention_heads.unwrap_or(8),
                activation: activation("text_config.hidden_act", t.hidden_act)?,
                layer_norm_eps: t.layer_norm_eps.unwrap_or(1e-5),
            },
            vocab_size: t.vocab_size.unwrap_or(49408),
            max_position_embeddings: t.max_position_embeddings.unwrap_or(77),
            eos_token_id: t.eos_token_id.unwrap_or(49407),
        };
        let v = raw.vision_config;
        let num_channels = v.num_channels.unwrap_or(3);
        if num_channels != 3 {
            return Err(unsupported(
                "vision_config.num_channels",
                num_channels.to_string(),
                "images are decoded to RGB, so the model must take 3 channels",
            ));
        }
        let vision = VisionConfig {
            tower: TowerConfig {
                hidden_size: v.hidden_size.unwrap_or(768),
                intermediate_size: v.intermediate_size.unwrap_or(3072),
                num_hidden_layers: v.num_hidden_layers.unwrap_or(12),
                num_attention_heads: v.num_attention_heads.unwrap_or(12),
                activation: activation("vision_config.hidden_act", v.hidden_act)?,
                layer_norm_eps: v.layer_norm_eps.unwrap_or(1e-5),
            },
            image_size: v.image_size.unwrap_or(224),
            patch_size: v.patch_size.unwrap_or(32),
            patch_bias: false,
            pre_norm: true,
        };
        let config = ClipConfig {
            text,
            vision,
            projection_dim: raw.projection_dim.unwrap_or(512),
            logit_scale_init_value: raw.logit_scale_init_value.unwrap_or(2.6592),
        };
        config
            .check()
            .map_err(|(field, value, reason)| unsupported(field, value, reason))?;
        Ok(config)
    }

    fn check(&self) -> Result<(), (&'static str, String, &'static str)> {
        let positive = [
            ("text_config.hidden_size", self.text.tower.hidden_size),
            (
                "text_config.intermediate_size",
                self.text.tower.intermediate_size,
            ),
            (
                "text_config.num_attention_heads",
                self.text.tower.num_attention_heads,
            ),
            ("text_config.vocab_size", self.text.vocab_size),
            (
                "text_config.max_position_embeddings",
                self.text.max_position_embeddings,
            ),
            ("vision_config.hidden_size", self.vision.tower.hidden_size),
            (
                "vision_config.intermediate_size",
                self.vision.tower.intermediate_size,
            ),
            (
                "vision_config.num_attention_heads",
                self.vision.tower.num_attention_heads,
            ),
            ("vision_config.patch_size", self.vision.patch_size),
            ("vision_config.image_size", self.vision.image_size),
            ("projection_dim", self.projection_dim),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err((field, value.to_string(), "must be positive"));
            }
        }
        if self.text.tower.hidden_size % self.text.tower.num_attention_heads != 0 {
            return Err((
                "text_config.num_attention_heads",
                self.text.tower.num_attention_heads.to_string(),
                "must divide text_config.hidden_size",
            ));
        }
        if self.vision.tower.hidden_size % self.vision.tower.num_attention_heads != 0 {
            return Err((
                "vision_config.num_attention_heads",
                self.vision.tower.num_attention_heads.to_string(),
                "must divide vision_config.hidden_size",
            ));
        }
        if self.vision.image_size % self.vision.patch_size != 0 {
            return Err((
                "vision_config.patch_size",
                self.vision.patch_size.to_string(),
                "must divide vision_config.image_size",
            ));
        }
        if self.text.max_position_embeddings < 2 {
            return Err((
                "text_config.max_position_embeddings",
                self.text.max_position_embeddings.to_string(),
                "must leave room for the start and end tokens",
            ));
        }
        Ok(())
    }

    /// Every tensor a checkpoint of this configuration must hold, with its shape, in the Hugging Face
    /// `CLIPModel` naming. Tensors beyond these (buffers such as `position_ids`) are ignored.
    pub fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let mut tensors = Vec::new();
        let t = &self.text;
        let v = &self.vision;
        let p = v.patch_size;
        tensors.push((
            "text_model.embeddings.token_embedding.weight".into(),
            vec![t.vocab_size, t.tower.hidden_size],
        ));
        tensors.push((
            "text_model.embeddings.position_embedding.weight".into(),
            vec![t.max_position_embeddings, t.tower.hidden_size],
        ));
        push_encoder_tensors(&mut tensors, "text_model.encoder", &t.tower);
        push_layer_norm(
            &mut tensors,
            "text_model.final_layer_norm",
            t.tower.hidden_size,
        );
        tensors.push((
            "vision_model.embeddings.class_embedding".into(),
            vec![v.tower.hidden_size],
        ));
        tensors.push((
            "vision_model.embeddings.patch_embedding.weight".into(),
            vec![v.tower.hidden_size, 3, p, p],
        ));
        tensors.push((
            "vision_model.embeddings.position_embedding.weight".into(),
            vec![v.num_positions(), v.tower.hidden_size],
        ));
        // "pre_layrnorm" is spelled as in transformers, whose checkpoints carry the typo.
        push_layer_norm(
            &mut tensors,
            "vision_model.pre_layrnorm",
            v.tower.hidden_size,
        );
        push_encoder_tensors(&mut tensors, "vision_model.encoder", &v.tower);
        push_layer_norm(
            &mut tensors,
            "vision_model.post_layernorm",
            v.tower.hidden_size,
        );
        tensors.push((
            "visual_projection.weight".into(),
            vec![self.projection_dim, v.tower.hidden_size],
        ));
        tensors.push((
            "text_projection.weight".into(),
            vec![self.projection_dim, t.tower.hidden_size],
        ));
        tensors
    }
}

fn push_layer_norm(tensors: &mut Vec<(String, Vec<usize>)>, prefix: &str, width: usize) {
    tensors.push((format!("{prefix}.weight"), vec![width]));
    tensors.push((format!("{prefix}.bias"), vec![width]));
}

fn push_linear(
    tensors: &mut Vec<(String, Vec<usize>)>,
    prefix: &str,
    out_dim: usize,
    in_dim: usize,
) {
    tensors.push((format!("{prefix}.weight"), vec![out_dim, in_dim]));
    tensors.push((format!("{prefix}.bias"), vec![out_dim]));
}

fn push_encoder_tensors(
    tensors: &mut Vec<(String, Vec<usize>)>,
    prefix: &str,
    tower: &TowerConfig,
) {
    let h = tower.hidden_size;
    for layer in 0..tower.num_hidden_layers {
        let l = format!("{prefix}.layers.{layer}");
        for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
            push_linear(tensors, &format!("{l}.self_attn.{proj}"), h, h);
        }
        push_layer_norm(tensors, &format!("{l}.layer_norm1"), h);
        push_linear(tensors, &format!("{l}.mlp.fc1"), tower.intermediate_size, h);
        push_linear(tensors, &format!("{l}.mlp.fc2"), h, tower.intermediate_size);
        push_layer_norm(tensors, &format!("{l}.layer_norm2"), h);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<ClipConfig, EncoderError> {
        ClipConfig::from_json(json, Path::new("config.json"))
    }

    #[test]
    fn empty_config_is_vit_b32() {
        let config = parse("{}").unwrap();
        assert_eq!(config.vision.tower.hidden_size, 768);
        assert_eq!(config.vision.patch_size, 32);
        assert_eq!(config.vision.num_positions(), 50);
        assert_eq!(config.text.tower.hidden_size, 512);
        assert_eq!(config.text.max_position_embeddings, 77);
        assert_eq!(config.projection_dim, 512);
        assert_eq!(config.text.tower.activation, Activation::QuickGelu);
    }

    #[test]
    fn vit_l14_fields_are_read() {
        let config = parse(
            r#"{"projection_dim": 768,
                "text_config": {"hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 3072},
                "vision_config": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
                                  "intermediate_size": 4096, "patch_size": 14, "image_size": 336,
                                  "hidden_act": "gelu", "layer_norm_eps": 1e-6}}"#,
        )
        .unwrap();
        assert_eq!(config.vision.grid_size(), 24);
        assert_eq!(config.vision.num_positions(), 577);
        assert_eq!(config.vision.tower.activation, Activation::GeluErf);
        assert_eq!(config.vision.tower.layer_norm_eps, 1e-6);
        assert_eq!(config.vision.tower.head_dim(), 64);
        assert_eq!(config.projection_dim, 768);
    }

    #[test]
    fn expected_tensors_cover_every_layer() {
        let config = parse(r#"{"text_config": {"num_hidden_layers": 2}, "vision_config": {"num_hidden_layers": 3}}"#)
            .unwrap();
        let tensors = config.expected_tensors();
        // 16 tensors per block; text: 2 tables + final norm; vision: class, patch, positions + 2 norms;
        // 2 projections.
        assert_eq!(tensors.len(), 16 * 5 + (2 + 2) + (3 + 2 + 2) + 2);
        let shape_of = |name: &str| {
            tensors
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, s)| s.clone())
        };
        assert_eq!(
            shape_of("vision_model.embeddings.patch_embedding.weight"),
            Some(vec![768, 3, 32, 32])
        );
        assert_eq!(
            shape_of("vision_model.encoder.layers.2.mlp.fc1.weight"),
            Some(vec![3072, 768])
        );
        assert_eq!(shape_of("text_model.encoder.layers.2.mlp.fc1.weight"), None);
        assert_eq!(shape_of("text_projection.weight"), Some(vec![512, 512]));
    }

    #[test]
    fn unsupported_values_are_named() {
        let cases = [
            (
                r#"{"vision_config": {"hidden_act": "relu"}}"#,
                "vision_config.hidden_act",
            ),
            (
                r#"{"vision_config": {"num_channels": 1}}"#,
                "vision_config.num_channels",
            ),
            (
                r#"{"vision_config": {"patch_size": 30}}"#,
                "vision_config.patch_size",
            ),
            (
                r#"{"text_config": {"hidden_size": 100, "num_attention_heads": 8}}"#,
                "text_config.num_attention_heads",
            ),
            (r#"{"projection_dim": 0}"#, "projection_dim"),
            (r#"{"model_type": "siglip"}"#, "model_type"),
        ];
        for (json, expected_field) in cases {
            match parse(json) {
                Err(EncoderError::UnsupportedConfig { field, .. }) => {
                    assert_eq!(field, expected_field, "{json}")
                }
                other => panic!("{json}: expected UnsupportedConfig, got {other:?}"),
            }
        }
    }

    #[test]
    fn malformed_json_names_the_file() {
        let err = parse("{not json").unwrap_err();
        assert!(matches!(err, EncoderError::ConfigParse { .. }));
        assert!(err.to_string().contains("config.json"), "{err}");
    }
}
