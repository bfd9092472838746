//! BLIP's image-text contrastive (ITC) embeddings from a transformers `BlipForImageTextRetrieval`
//! checkpoint (`Salesforce/blip-itm-base-coco`): `config.json` with `model_type: "blip"`,
//! `model.safetensors`, and BLIP's BERT WordPiece `tokenizer.json`.
//!
//! Image: the ViT's last hidden state at the class token (after `post_layernorm`) through `vision_proj`.
//! Text: the BERT text encoder in its unimodal mode (no cross-attention to the image, bidirectional
//! attention over the unpadded tokens) at `[CLS]` through `text_proj`. Both 256-d, normalized by the caller.
//! transformers feeds ITC the tokenizer's ids as they are (`[CLS] … [SEP]`); `[ENC]` replaces `[CLS]` only
//! for the image-text matching head, which fiq does not use.
//!
//! Which code runs: the text encoder is candle-transformers' `BertModel`, fed BLIP's tensors renamed (BLIP's
//! text embeddings have no token-type table; a zero one of a single row stands in, adding nothing). The
//! vision tower is fiq's own ViT ([`super::model::VisionTransformer`]), because candle-transformers' BLIP
//! vision model can be built only inside its captioning model (its constructor is private), which needs
//! the captioning decoder's weights that a retrieval checkpoint lacks; fiq's ViT also runs the fused CPU
//! kernels.

use std::collections::HashMap;
use std::path::Path;

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Linear, VarBuilder};
use candle_transformers::models::bert::{BertModel, Config as BertConfig, HiddenAct};
use serde::Deserialize;

use super::checkpoint::{dir_name, open_model, OpenedModel};
use super::checkpoint::{CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE};
use super::clip::{resolve_device, EncoderParts};
use super::config::{parse_json, unsupported, Activation, TowerConfig, VisionConfig};
use super::error::{compute, EncoderError};
use super::model::VisionTransformer;
use super::openclip::split_fused_qkv;
use super::preprocess::ImagePreprocessor;
use super::tokenizer::{ClipTokenizer, BERT_SPECIALS};
use super::towers::{padded_ids, Towers};
use super::EncoderOptions;

/// A BLIP retrieval model's shape, with transformers' `BlipConfig` defaults for absent fields.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BlipConfig {
    pub vision: VisionConfig,
    pub text: BlipTextConfig,
    /// Width of the contrastive space (`image_text_hidden_size`, 256).
    pub embed_dim: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BlipTextConfig {
    pub tower: TowerConfig,
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
}

#[derive(Deserialize)]
struct RawConfig {
    model_type: Option<String>,
    #[serde(default)]
    text_config: RawTower,
    #[serde(default)]
    vision_config: RawTower,
    image_text_hidden_size: Option<usize>,
}

#[derive(Deserialize, Default)]
struct RawTower {
    vocab_size: Option<usize>,
    hidden_size: Option<usize>,
    intermediate_size: Option<usize>,
    num_hidden_layers: Option<usize>,
    num_attention_heads: Option<usize>,
    max_position_embeddings: Option<usize>,
    hidden_act: Option<String>,
    layer_norm_eps: Option<f64>,
    image_size: Option<usize>,
    patch_size: Option<usize>,
}

impl BlipConfig {
    /// Parses a BLIP `config.json`. `path` only names the file in errors.
    pub(crate) fn from_json(text: &str, path: &Path) -> Result<Self, EncoderError> {
        let raw: RawConfig = parse_json(text, path)?;
        let unsupported = unsupported(path);
        if raw.model_type.as_deref() != Some("blip") {
            return Err(unsupported(
                "model_type",
                format!("{:?}", raw.model_type),
                "a BLIP checkpoint says \"blip\"",
            ));
        }
        let activation = |field: &str, name: Option<String>| {
            let name = name.unwrap_or_else(|| "gelu".into());
            match name.as_str() {
                "gelu" => Ok(Activation::GeluErf),
                "gelu_new" | "gelu_pytorch_tanh" => Ok(Activation::GeluTanh),
                _ => Err(unsupported(
                    field,
                    name,
                    "supported activations: gelu, gelu_new",
                )),
            }
        };
        let tower = |raw: &RawTower, section: &str, defaults: [usize; 4], eps: f64| {
            let [hidden, intermediate, layers, heads] = defaults;
            let tower = TowerConfig {
                hidden_size: raw.hidden_size.unwrap_or(hidden),
                intermediate_size: raw.intermediate_size.unwrap_or(intermediate),
                num_hidden_layers: raw.num_hidden_layers.unwrap_or(layers),
                num_attention_heads: raw.num_attention_heads.unwrap_or(heads),
                activation: activation(&format!("{section}.hidden_act"), raw.hidden_act.clone())?,
                layer_norm_eps: raw.layer_norm_eps.unwrap_or(eps),
            };
            if tower.num_attention_heads == 0 || tower.hidden_size % tower.num_attention_heads != 0
            {
                return Err(unsupported(
                    &format!("{section}.num_attention_heads"),
                    tower.num_attention_heads.to_string(),
                    "must divide hidden_size",
                ));
            }
            Ok(tower)
        };
        let v = &raw.vision_config;
        let vision = VisionConfig {
            tower: tower(v, "vision_config", [768, 3072, 12, 12], 1e-5)?,
            image_size: v.image_size.unwrap_or(384),
            patch_size: v.patch_size.unwrap_or(16),
            patch_bias: true,
            pre_norm: false,
        };
        if vision.patch_size == 0 || vision.image_size % vision.patch_size != 0 {
            return Err(unsupported(
                "vision_config.patch_size",
                vision.patch_size.to_string(),
                "must divide vision_config.image_size",
            ));
        }
        let t = &raw.text_config;
        let text = BlipTextConfig {
            tower: tower(t, "text_config", [768, 3072, 12, 8], 1e-12)?,
            vocab_size: t.vocab_size.unwrap_or(30524),
            max_position_embeddings: t.max_position_embeddings.unwrap_or(512),
        };
        Ok(Self {
            vision,
            text,
            embed_dim: raw.image_text_hidden_size.unwrap_or(256),
        })
    }

    /// Every tensor the ITC path reads, in transformers' names, with its shape. The checkpoint's
    /// cross-attention and matching-head tensors are not read.
    pub(crate) fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let mut tensors: Vec<(String, Vec<usize>)> = Vec::new();
        let mut linear = |name: String, out: usize, inp: usize| {
            tensors.push((format!("{name}.weight"), vec![out, inp]));
            tensors.push((format!("{name}.bias"), vec![out]));
        };
        let v = &self.vision;
        let (h, p) = (v.tower.hidden_size, v.patch_size);
        for layer in 0..v.tower.num_hidden_layers {
            let l = format!("vision_model.encoder.layers.{layer}");
            linear(format!("{l}.self_attn.qkv"), 3 * h, h);
            linear(format!("{l}.self_attn.projection"), h, h);
            linear(format!("{l}.mlp.fc1"), v.tower.intermediate_size, h);
            linear(format!("{l}.mlp.fc2"), h, v.tower.intermediate_size);
        }
        linear("vision_proj".into(), self.embed_dim, h);
        let t = &self.text;
        let th = t.tower.hidden_size;
        for layer in 0..t.tower.num_hidden_layers {
            let l = format!("text_encoder.encoder.layer.{layer}");
            for proj in ["query", "key", "value"] {
                linear(format!("{l}.attention.self.{proj}"), th, th);
            }
            linear(format!("{l}.attention.output.dense"), th, th);
            linear(
                format!("{l}.intermediate.dense"),
                t.tower.intermediate_size,
                th,
            );
            linear(format!("{l}.output.dense"), th, t.tower.intermediate_size);
        }
        linear("text_proj".into(), self.embed_dim, th);
        let mut norms = vec![("vision_model.post_layernorm".to_string(), h)];
        norms.extend((0..v.tower.num_hidden_layers).flat_map(|layer| {
            let l = format!("vision_model.encoder.layers.{layer}");
            [
                (format!("{l}.layer_norm1"), h),
                (format!("{l}.layer_norm2"), h),
            ]
        }));
        norms.push(("text_encoder.embeddings.LayerNorm".into(), th));
        norms.extend((0..t.tower.num_hidden_layers).flat_map(|layer| {
            let l = format!("text_encoder.encoder.layer.{layer}");
            [
                (format!("{l}.attention.output.LayerNorm"), th),
                (format!("{l}.output.LayerNorm"), th),
            ]
        }));
        for (name, width) in norms {
            tensors.push((format!("{name}.weight"), vec![width]));
            tensors.push((format!("{name}.bias"), vec![width]));
        }
        let emb = "vision_model.embeddings";
        tensors.push((format!("{emb}.class_embedding"), vec![1, 1, h]));
        tensors.push((format!("{emb}.patch_embedding.weight"), vec![h, 3, p, p]));
        tensors.push((format!("{emb}.patch_embedding.bias"), vec![h]));
        tensors.push((
            format!("{emb}.position_embedding"),
            vec![1, v.num_positions(), h],
        ));
        let emb = "text_encoder.embeddings";
        tensors.push((
            format!("{emb}.word_embeddings.weight"),
            vec![t.vocab_size, th],
        ));
        tensors.push((
            format!("{emb}.position_embeddings.weight"),
            vec![t.max_position_embeddings, th],
        ));
        tensors
    }

    fn bert_config(&self) -> BertConfig {
        let t = &self.text;
        BertConfig {
            vocab_size: t.vocab_size,
            hidden_size: t.tower.hidden_size,
            num_hidden_layers: t.tower.num_hidden_layers,
            num_attention_heads: t.tower.num_attention_heads,
            intermediate_size: t.tower.intermediate_size,
            hidden_act: match t.tower.activation {
                Activation::GeluTanh => HiddenAct::GeluApproximate,
                _ => HiddenAct::Gelu,
            },
            hidden_dropout_prob: 0.0,
            max_position_embeddings: t.max_position_embeddings,
            // The stand-in token-type table: one row of zeros.
            type_vocab_size: 1,
            layer_norm_eps: t.tower.layer_norm_eps,
            ..BertConfig::default()
        }
    }
}

/// The ViT and the BERT text encoder with their projections into the 256-d contrastive space.
struct BlipItc {
    vision: VisionTransformer,
    vision_proj: Linear,
    text: BertModel,
    text_proj: Linear,
    /// The text tower's float type: always f32 (see [`load`]).
    text_dtype: DType,
}

impl Towers for BlipItc {
    fn image_features(&self, pixels: &Tensor) -> candle_core::Result<Tensor> {
        self.vision_proj.forward(&self.vision.forward(pixels, 0)?)
    }

    fn text_features(
        &self,
        sequences: &[&[u32]],
        pad_id: u32,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let ids = padded_ids(sequences, pad_id, device)?;
        let longest = ids.dim(1)?;
        let mask: Vec<u32> = sequences
            .iter()
            .flat_map(|s| (0..longest).map(move |i| u32::from(i < s.len())))
            .collect();
        let mask = Tensor::from_vec(mask, (sequences.len(), longest), device)?
            .to_dtype(self.text_dtype)?;
        let token_types = ids.zeros_like()?;
        let hidden = self.text.forward(&ids, &token_types, Some(&mask))?;
        let cls = hidden.narrow(1, 0, 1)?.squeeze(1)?;
        self.text_proj.forward(&cls)
    }
}

/// Renames a retrieval checkpoint's vision tensors into the `CLIPModel`-style names fiq's ViT reads.
fn vision_tensors(
    weights: &MmapedSafetensors,
    config: &BlipConfig,
) -> candle_core::Result<HashMap<String, Tensor>> {
    let load = |name: &str| weights.load(name, &Device::Cpu);
    let v = &config.vision;
    let h = v.tower.hidden_size;
    let mut out = HashMap::new();
    let emb = "vision_model.embeddings";
    out.insert(
        format!("{emb}.class_embedding"),
        load(&format!("{emb}.class_embedding"))?.reshape(h)?,
    );
    out.insert(
        format!("{emb}.position_embedding.weight"),
        load(&format!("{emb}.position_embedding"))?.reshape((v.num_positions(), h))?,
    );
    let mut copy = |from: String, to: String| -> candle_core::Result<()> {
        for part in ["weight", "bias"] {
            out.insert(format!("{to}.{part}"), load(&format!("{from}.{part}"))?);
        }
        Ok(())
    };
    copy(
        format!("{emb}.patch_embedding"),
        format!("{emb}.patch_embedding"),
    )?;
    copy(
        "vision_model.post_layernorm".into(),
        "vision_model.post_layernorm".into(),
    )?;
    copy("vision_proj".into(), "vision_proj".into())?;
    for layer in 0..v.tower.num_hidden_layers {
        let l = format!("vision_model.encoder.layers.{layer}");
        copy(
            format!("{l}.self_attn.projection"),
            format!("{l}.self_attn.out_proj"),
        )?;
        for same in ["layer_norm1", "layer_norm2", "mlp.fc1", "mlp.fc2"] {
            copy(format!("{l}.{same}"), format!("{l}.{same}"))?;
        }
    }
    for layer in 0..v.tower.num_hidden_layers {
        let l = format!("vision_model.encoder.layers.{layer}");
        let weight = load(&format!("{l}.self_attn.qkv.weight"))?;
        let bias = load(&format!("{l}.self_attn.qkv.bias"))?;
        split_fused_qkv(&mut out, &format!("{l}.self_attn"), &weight, &bias, h)?;
    }
    Ok(out)
}

/// The text encoder's tensors without their `text_encoder.` prefix, plus the zero token-type table
/// candle's `BertModel` adds to every token.
fn text_tensors(
    weights: &MmapedSafetensors,
    config: &BlipConfig,
) -> candle_core::Result<HashMap<String, Tensor>> {
    let mut out = HashMap::new();
    for (name, _) in config.expected_tensors() {
        if let Some(inner) = name.strip_prefix("text_encoder.") {
            out.insert(inner.to_string(), weights.load(&name, &Device::Cpu)?);
        } else if name.starts_with("text_proj.") {
            out.insert(name.clone(), weights.load(&name, &Device::Cpu)?);
        }
    }
    let zeros = Tensor::zeros((1, config.text.tower.hidden_size), DType::F32, &Device::Cpu)?;
    out.insert("embeddings.token_type_embeddings.weight".into(), zeros);
    Ok(out)
}

/// Loads a BLIP retrieval directory.
///
/// The text tower always runs in f32: candle-transformers' `BertModel` masks padding by multiplying with
/// `f32::MIN`, which is `-inf` in half precision and turns unmasked positions into NaN. The text side is a
/// small share of the work (captions are short), so only the image tower follows `options.precision`.
pub(crate) fn load(dir: &Path, options: &EncoderOptions) -> Result<EncoderParts, EncoderError> {
    let OpenedModel {
        config,
        weights,
        hasher,
        tokenizer: tokenizer_path,
    } = open_model(
        dir,
        [CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE],
        "fiq-blip-itc-1",
        BlipConfig::from_json,
        BlipConfig::expected_tensors,
    )?;
    let (device, dtype, kernels) = resolve_device(options.device, options.precision)?;

    let renaming = compute("renaming tensors");
    let vision_vb = VarBuilder::from_tensors(
        vision_tensors(&weights, &config).map_err(renaming)?,
        dtype,
        &device,
    );
    let text_vb = VarBuilder::from_tensors(
        text_tensors(&weights, &config).map_err(compute("renaming tensors"))?,
        DType::F32,
        &device,
    );
    let (h, th) = (
        config.vision.tower.hidden_size,
        config.text.tower.hidden_size,
    );
    let towers = (|| {
        Ok::<_, candle_core::Error>(BlipItc {
            vision: VisionTransformer::new(&config.vision, kernels, vision_vb.pp("vision_model"))?,
            vision_proj: candle_nn::linear(h, config.embed_dim, vision_vb.pp("vision_proj"))?,
            text: BertModel::load(text_vb.clone(), &config.bert_config())?,
            text_proj: candle_nn::linear(th, config.embed_dim, text_vb.pp("text_proj"))?,
            text_dtype: DType::F32,
        })
    })()
    .map_err(compute("building the model"))?;
    let tokenizer = ClipTokenizer::load_with(
        &tokenizer_path,
        config.text.max_position_embeddings,
        &BERT_SPECIALS,
    )?;
    let preprocessor = ImagePreprocessor::new(
        config.vision.image_size,
        options.resize,
        options.normalization,
    );
    Ok(EncoderParts {
        towers: Box::new(towers),
        tokenizer,
        preprocessor,
        name: format!("blip-itc/{}", dir_name(dir)),
        embed_dim: config.embed_dim,
        hasher,
        image_tower: None,
        device,
        dtype,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_blip_base() {
        let json = r#"{"model_type": "blip", "text_config": {"num_attention_heads": 12}}"#;
        let config = BlipConfig::from_json(json, Path::new("config.json")).unwrap();
        assert_eq!(config.vision.image_size, 384);
        assert_eq!(config.vision.num_positions(), 577);
        assert_eq!(config.text.vocab_size, 30524);
        assert_eq!(config.embed_dim, 256);
        assert_eq!(config.text.tower.layer_norm_eps, 1e-12);
        assert!(config.vision.patch_bias && !config.vision.pre_norm);
    }

    #[test]
    fn other_model_types_are_refused() {
        match BlipConfig::from_json(r#"{"model_type": "clip"}"#, Path::new("config.json")) {
            Err(EncoderError::UnsupportedConfig { field, .. }) => assert_eq!(field, "model_type"),
            other => panic!("expected UnsupportedConfig, got {other:?}"),
        }
    }
}
