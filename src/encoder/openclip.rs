//! OpenCLIP checkpoints in the layout OpenCLIP publishes on the Hugging Face hub: `open_clip_config.json`
//! (`{"model_cfg": …, "preprocess_cfg": …}`), `open_clip_model.safetensors` and a CLIP `tokenizer.json`.
//!
//! Two image towers are understood: the ViT (`vision_cfg.layers` a number) and CLIP's modified ResNet
//! (`vision_cfg.layers` four numbers, [`super::resnet`]). The text tower is CLIP's in both. A ViT
//! checkpoint is renamed tensor by tensor into transformers' `CLIPModel` names (splitting each fused
//! `in_proj` into q/k/v, transposing the `x @ proj` projections into linear weights) and runs on fiq's own
//! CLIP forward ([`super::model`]); a ResNet one runs [`super::resnet`] beside fiq's text transformer.
//! Options that change the architecture away from CLIP's (layer scale, attentional pooling, timm or
//! Hugging Face towers, …) are refused by name rather than ignored.

use std::collections::HashMap;
use std::path::Path;

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{Device, Tensor};
use candle_nn::{Linear, VarBuilder};
use serde_json::Value;

use super::checkpoint::{dir_name, open_model, OpenedModel};
use super::clip::{resolve_device, EncoderParts};
use super::config::{
    parse_json, unsupported, Activation, ClipConfig, TextConfig, TowerConfig, VisionConfig,
};
use super::error::{compute, EncoderError};
use super::model::{ClipModel, Kernels, TextTransformer};
use super::preprocess::ImagePreprocessor;
use super::resnet::{ModifiedResNet, ResNetConfig};
use super::tokenizer::ClipTokenizer;
use super::towers::Towers;
use super::EncoderOptions;

pub(crate) const CONFIG_FILE: &str = "open_clip_config.json";
pub(crate) const WEIGHTS_FILE: &str = "open_clip_model.safetensors";
/// The pickle OpenCLIP also publishes; fiq reads only safetensors (README: one-line conversion).
pub(crate) const PICKLE_FILE: &str = "open_clip_pytorch_model.bin";
const TOKENIZER_FILE: &str = "tokenizer.json";

/// OpenCLIP's `nn.LayerNorm` default.
const LAYER_NORM_EPS: f64 = 1e-5;
/// OpenCLIP pools the text at `argmax(ids)`, the end token having the largest id of CLIP's vocabulary;
/// fiq's text tower implements that rule for `eos_token_id == 2` (transformers' legacy rule).
const ARGMAX_POOLING: u32 = 2;

/// The image tower of an OpenCLIP model.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ImageTower {
    Vit(VisionConfig),
    ResNet(ResNetConfig),
}

/// An OpenCLIP `model_cfg`, checked and translated into fiq's configuration types.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OpenClipConfig {
    pub image: ImageTower,
    pub text: TextConfig,
    pub embed_dim: usize,
}

/// Fields of `vision_cfg` / `text_cfg` / `model_cfg` that would change the architecture, with the value
/// that leaves it CLIP's; `None` means the field must be absent or null.
const VISION_DEFAULTS: &[(&str, Option<&str>)] = &[
    ("timm_model_name", None),
    ("ls_init_value", None),
    ("attentional_pool", Some("false")),
    ("no_ln_pre", Some("false")),
    ("final_ln_after_pool", Some("false")),
    ("pool_type", Some("\"tok\"")),
    ("pos_embed_type", Some("\"learnable\"")),
];
const TEXT_DEFAULTS: &[(&str, Option<&str>)] = &[
    ("hf_model_name", None),
    ("text_arch", Some("\"clip\"")),
    ("ls_init_value", None),
    ("embed_cls", Some("false")),
    ("no_causal_mask", Some("false")),
    ("final_ln_after_pool", Some("false")),
    ("pool_type", Some("\"argmax\"")),
    ("proj_bias", Some("false")),
    ("proj_type", Some("\"linear\"")),
];
/// The transformer-block options both towers share.
const BLOCK_DEFAULTS: &[(&str, Option<&str>)] = &[
    ("act_kwargs", None),
    ("norm_kwargs", None),
    ("qk_norm", Some("false")),
    ("scaled_cosine_attn", Some("false")),
    ("scale_heads", Some("false")),
    ("scale_attn_inner", Some("false")),
    ("scale_attn", Some("false")),
    ("scale_fc", Some("false")),
];
const MODEL_DEFAULTS: &[(&str, Option<&str>)] = &[
    ("custom_text", Some("false")),
    ("init_logit_bias", None),
    ("multimodal_cfg", None),
];

impl OpenClipConfig {
    /// Parses an `open_clip_config.json` (or a bare `model_cfg`). `path` only names the file in errors.
    pub(crate) fn from_json(text: &str, path: &Path) -> Result<Self, EncoderError> {
        let root: Value = parse_json(text, path)?;
        let unsupported = unsupported(path);
        let model = root.get("model_cfg").unwrap_or(&root);
        let section = |name: &str| model.get(name).cloned().unwrap_or(Value::Null);
        let (vision, text) = (section("vision_cfg"), section("text_cfg"));
        for (prefix, value, defaults) in [
            ("model_cfg.", model, MODEL_DEFAULTS),
            ("model_cfg.vision_cfg.", &vision, VISION_DEFAULTS),
            ("model_cfg.vision_cfg.", &vision, BLOCK_DEFAULTS),
            ("model_cfg.text_cfg.", &text, TEXT_DEFAULTS),
            ("model_cfg.text_cfg.", &text, BLOCK_DEFAULTS),
        ] {
            for (field, default) in defaults {
                let found = value.get(field).unwrap_or(&Value::Null);
                let acceptable = match default {
                    None => found.is_null(),
                    Some(json) => {
                        found.is_null()
                            || serde_json::from_str::<Value>(json).is_ok_and(|d| d == *found)
                    }
                };
                if !acceptable {
                    return Err(unsupported(
                        &format!("{prefix}{field}"),
                        found.to_string(),
                        "fiq implements CLIP's architecture; this option changes it",
                    ));
                }
            }
        }
        let number = |value: &Value, section: &str, field: &str, default: Option<f64>| match value
            .get(field)
        {
            None | Some(Value::Null) => default.ok_or_else(|| {
                unsupported(
                    &format!("model_cfg.{section}{field}"),
                    "null".into(),
                    "required",
                )
            }),
            Some(v) => v.as_f64().filter(|n| *n > 0.0).ok_or_else(|| {
                unsupported(
                    &format!("model_cfg.{section}{field}"),
                    v.to_string(),
                    "must be a positive number",
                )
            }),
        };
        let whole = |value: &Value, section: &str, field: &str, default: Option<usize>| {
            let n = number(value, section, field, default.map(|d| d as f64))?;
            if n.fract() != 0.0 {
                return Err(unsupported(
                    &format!("model_cfg.{section}{field}"),
                    n.to_string(),
                    "must be a whole number",
                ));
            }
            Ok(n as usize)
        };
        let embed_dim = whole(model, "", "embed_dim", None)?;
        let quick_gelu = model
            .get("quick_gelu")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        // OpenCLIP's `quick_gelu` switches both towers' transformer MLPs; the ResNet uses ReLU regardless.
        let activation = if quick_gelu {
            Activation::QuickGelu
        } else {
            Activation::GeluErf
        };

        let t = &text;
        let width = whole(t, "text_cfg.", "width", Some(512))?;
        let heads = whole(t, "text_cfg.", "heads", Some(8))?;
        let mlp_ratio = number(t, "text_cfg.", "mlp_ratio", Some(4.0))?;
        let text = TextConfig {
            tower: TowerConfig {
                hidden_size: width,
                intermediate_size: (width as f64 * mlp_ratio) as usize,
                num_hidden_layers: whole(t, "text_cfg.", "layers", Some(12))?,
                num_attention_heads: heads,
                activation,
                layer_norm_eps: LAYER_NORM_EPS,
            },
            vocab_size: whole(t, "text_cfg.", "vocab_size", Some(49408))?,
            max_position_embeddings: whole(t, "text_cfg.", "context_length", Some(77))?,
            eos_token_id: ARGMAX_POOLING,
        };
        if width % heads != 0 {
            return Err(unsupported(
                "model_cfg.text_cfg.heads",
                heads.to_string(),
                "must divide text_cfg.width",
            ));
        }

        let v = &vision;
        let image_size = match v.get("image_size") {
            // A [height, width] pair is accepted when square.
            Some(Value::Array(sides)) if sides.len() == 2 && sides[0] == sides[1] => {
                sides[0].as_u64().map(|n| n as usize)
            }
            Some(Value::Array(_)) => None,
            _ => Some(whole(v, "vision_cfg.", "image_size", Some(224))?),
        }
        .ok_or_else(|| {
            unsupported(
                "model_cfg.vision_cfg.image_size",
                v["image_size"].to_string(),
                "must be one number or a square pair",
            )
        })?;
        let head_width = whole(v, "vision_cfg.", "head_width", Some(64))?;
        let image = match v.get("layers") {
            Some(Value::Array(stages)) => {
                let layers: Vec<usize> = stages
                    .iter()
                    .filter_map(|n| n.as_u64().map(|n| n as usize))
                    .collect();
                let width = whole(v, "vision_cfg.", "width", Some(64))?;
                let (Ok(layers), true) = (
                    <[usize; 4]>::try_from(layers),
                    image_size % 32 == 0 && (width * 32) % head_width == 0 && width % 2 == 0,
                ) else {
                    return Err(unsupported(
                        "model_cfg.vision_cfg.layers",
                        v["layers"].to_string(),
                        "a ResNet needs four stage depths, an even width, image_size a multiple of 32 and head_width dividing 32·width",
                    ));
                };
                ImageTower::ResNet(ResNetConfig {
                    layers,
                    width,
                    heads: width * 32 / head_width,
                    image_size,
                    output_dim: embed_dim,
                })
            }
            _ => {
                let width = whole(v, "vision_cfg.", "width", Some(768))?;
                let patch_size = whole(v, "vision_cfg.", "patch_size", Some(16))?;
                let mlp_ratio = number(v, "vision_cfg.", "mlp_ratio", Some(4.0))?;
                if width % head_width != 0 || image_size % patch_size != 0 {
                    return Err(unsupported(
                        "model_cfg.vision_cfg.width",
                        width.to_string(),
                        "head_width must divide width and patch_size must divide image_size",
                    ));
                }
                ImageTower::Vit(VisionConfig {
                    tower: TowerConfig {
                        hidden_size: width,
                        intermediate_size: (width as f64 * mlp_ratio) as usize,
                        num_hidden_layers: whole(v, "vision_cfg.", "layers", Some(12))?,
                        num_attention_heads: width / head_width,
                        activation,
                        layer_norm_eps: LAYER_NORM_EPS,
                    },
                    image_size,
                    patch_size,
                    patch_bias: false,
                    pre_norm: true,
                })
            }
        };
        Ok(Self {
            image,
            text,
            embed_dim,
        })
    }

    /// `ViT-B-32`-style or `RN50`-style, for the model's name.
    pub(crate) fn short_name(&self) -> String {
        match &self.image {
            ImageTower::Vit(v) => {
                let size = match v.tower.hidden_size {
                    384 => "S".to_string(),
                    768 => "B".to_string(),
                    1024 => "L".to_string(),
                    1280 => "H".to_string(),
                    w => format!("w{w}"),
                };
                format!("ViT-{size}-{}", v.patch_size)
            }
            ImageTower::ResNet(r) => match r.layers {
                [3, 4, 6, 3] => "RN50".into(),
                [3, 4, 23, 3] => "RN101".into(),
                layers => format!("RN{}", 2 + 3 * layers.iter().sum::<usize>()),
            },
        }
    }

    /// Every tensor the checkpoint must hold, in OpenCLIP's names, with its shape.
    pub(crate) fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let t = &self.text;
        let w = t.tower.hidden_size;
        let mut tensors = vec![
            ("token_embedding.weight".into(), vec![t.vocab_size, w]),
            (
                "positional_embedding".into(),
                vec![t.max_position_embeddings, w],
            ),
            ("ln_final.weight".into(), vec![w]),
            ("ln_final.bias".into(), vec![w]),
            ("text_projection".into(), vec![w, self.embed_dim]),
        ];
        push_resblocks(&mut tensors, "transformer", &t.tower);
        match &self.image {
            ImageTower::Vit(v) => {
                let (w, p) = (v.tower.hidden_size, v.patch_size);
                tensors.push(("visual.conv1.weight".into(), vec![w, 3, p, p]));
                tensors.push(("visual.class_embedding".into(), vec![w]));
                tensors.push((
                    "visual.positional_embedding".into(),
                    vec![v.num_positions(), w],
                ));
                for norm in ["visual.ln_pre", "visual.ln_post"] {
                    tensors.push((format!("{norm}.weight"), vec![w]));
                    tensors.push((format!("{norm}.bias"), vec![w]));
                }
                tensors.push(("visual.proj".into(), vec![w, self.embed_dim]));
                push_resblocks(&mut tensors, "visual.transformer", &v.tower);
            }
            ImageTower::ResNet(r) => tensors.extend(r.expected_tensors("visual")),
        }
        tensors
    }

    /// The image tower's input side.
    pub(crate) fn image_size(&self) -> usize {
        match &self.image {
            ImageTower::Vit(v) => v.image_size,
            ImageTower::ResNet(r) => r.image_size,
        }
    }
}

fn push_resblocks(tensors: &mut Vec<(String, Vec<usize>)>, prefix: &str, tower: &TowerConfig) {
    let (h, m) = (tower.hidden_size, tower.intermediate_size);
    for layer in 0..tower.num_hidden_layers {
        let b = format!("{prefix}.resblocks.{layer}");
        let mut push = |name: &str, shape: Vec<usize>| tensors.push((format!("{b}.{name}"), shape));
        push("attn.in_proj_weight", vec![3 * h, h]);
        push("attn.in_proj_bias", vec![3 * h]);
        push("attn.out_proj.weight", vec![h, h]);
        push("attn.out_proj.bias", vec![h]);
        for norm in ["ln_1", "ln_2"] {
            push(&format!("{norm}.weight"), vec![h]);
            push(&format!("{norm}.bias"), vec![h]);
        }
        push("mlp.c_fc.weight", vec![m, h]);
        push("mlp.c_fc.bias", vec![m]);
        push("mlp.c_proj.weight", vec![h, m]);
        push("mlp.c_proj.bias", vec![h]);
    }
}

/// Tensors under OpenCLIP's names, read into memory, renamed into the names fiq's models read.
struct Renamer<'a> {
    weights: &'a MmapedSafetensors,
    out: HashMap<String, Tensor>,
}

impl Renamer<'_> {
    fn load(&self, name: &str) -> candle_core::Result<Tensor> {
        self.weights.load(name, &Device::Cpu)
    }

    fn copy(&mut self, from: &str, to: &str) -> candle_core::Result<()> {
        let tensor = self.load(from)?;
        self.out.insert(to.to_string(), tensor);
        Ok(())
    }

    /// `weight` and `bias` of a module.
    fn copy_module(&mut self, from: &str, to: &str) -> candle_core::Result<()> {
        for part in ["weight", "bias"] {
            self.copy(&format!("{from}.{part}"), &format!("{to}.{part}"))?;
        }
        Ok(())
    }

    /// An `x @ proj` matrix (in, out) as a linear layer's (out, in) weight.
    fn copy_transposed(&mut self, from: &str, to: &str) -> candle_core::Result<()> {
        let tensor = self.load(from)?.t()?.contiguous()?;
        self.out.insert(to.to_string(), tensor);
        Ok(())
    }

    /// OpenCLIP's `resblocks.N` (PyTorch `nn.MultiheadAttention`, fused in_proj) as transformers'
    /// `layers.N` (separate q/k/v projections).
    fn copy_resblocks(
        &mut self,
        from: &str,
        to: &str,
        tower: &TowerConfig,
    ) -> candle_core::Result<()> {
        let h = tower.hidden_size;
        for layer in 0..tower.num_hidden_layers {
            let (src, dst) = (
                format!("{from}.resblocks.{layer}"),
                format!("{to}.layers.{layer}"),
            );
            let weight = self.load(&format!("{src}.attn.in_proj_weight"))?;
            let bias = self.load(&format!("{src}.attn.in_proj_bias"))?;
            split_fused_qkv(
                &mut self.out,
                &format!("{dst}.self_attn"),
                &weight,
                &bias,
                h,
            )?;
            self.copy_module(
                &format!("{src}.attn.out_proj"),
                &format!("{dst}.self_attn.out_proj"),
            )?;
            self.copy_module(&format!("{src}.ln_1"), &format!("{dst}.layer_norm1"))?;
            self.copy_module(&format!("{src}.ln_2"), &format!("{dst}.layer_norm2"))?;
            self.copy_module(&format!("{src}.mlp.c_fc"), &format!("{dst}.mlp.fc1"))?;
            self.copy_module(&format!("{src}.mlp.c_proj"), &format!("{dst}.mlp.fc2"))?;
        }
        Ok(())
    }

    /// The text tower, into `CLIPModel`'s `text_model.*` and `text_projection.weight`.
    fn copy_text(&mut self, text: &TextConfig) -> candle_core::Result<()> {
        let emb = "text_model.embeddings";
        self.copy(
            "token_embedding.weight",
            &format!("{emb}.token_embedding.weight"),
        )?;
        self.copy(
            "positional_embedding",
            &format!("{emb}.position_embedding.weight"),
        )?;
        self.copy_resblocks("transformer", "text_model.encoder", &text.tower)?;
        self.copy_module("ln_final", "text_model.final_layer_norm")?;
        self.copy_transposed("text_projection", "text_projection.weight")
    }

    /// The ViT, into `CLIPModel`'s `vision_model.*` and `visual_projection.weight`.
    fn copy_vit(&mut self, vision: &VisionConfig) -> candle_core::Result<()> {
        let emb = "vision_model.embeddings";
        self.copy(
            "visual.conv1.weight",
            &format!("{emb}.patch_embedding.weight"),
        )?;
        self.copy("visual.class_embedding", &format!("{emb}.class_embedding"))?;
        self.copy(
            "visual.positional_embedding",
            &format!("{emb}.position_embedding.weight"),
        )?;
        self.copy_module("visual.ln_pre", "vision_model.pre_layrnorm")?;
        self.copy_resblocks("visual.transformer", "vision_model.encoder", &vision.tower)?;
        self.copy_module("visual.ln_post", "vision_model.post_layernorm")?;
        self.copy_transposed("visual.proj", "visual_projection.weight")
    }
}

/// A fused `[q; k; v]` projection ((3h, h) weight, (3h) bias) as `{prefix}.{q,k,v}_proj.{weight,bias}`,
/// the names fiq's attention reads (it fuses them again at load time, for its own kernels).
pub(crate) fn split_fused_qkv(
    out: &mut HashMap<String, Tensor>,
    prefix: &str,
    weight: &Tensor,
    bias: &Tensor,
    h: usize,
) -> candle_core::Result<()> {
    for (i, proj) in ["q_proj", "k_proj", "v_proj"].into_iter().enumerate() {
        let part = |t: &Tensor| t.narrow(0, i * h, h)?.contiguous();
        out.insert(format!("{prefix}.{proj}.weight"), part(weight)?);
        out.insert(format!("{prefix}.{proj}.bias"), part(bias)?);
    }
    Ok(())
}

/// CLIP's modified ResNet beside CLIP's text transformer.
struct ResNetClip {
    visual: ModifiedResNet,
    text: TextTransformer,
    text_projection: Linear,
}

impl Towers for ResNetClip {
    fn image_features(&self, pixels: &Tensor) -> candle_core::Result<Tensor> {
        self.visual.forward(pixels)
    }

    fn text_features(
        &self,
        sequences: &[&[u32]],
        pad_id: u32,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        super::model::projected_text_features(
            &self.text,
            &self.text_projection,
            sequences,
            pad_id,
            device,
        )
    }
}

/// Loads an OpenCLIP model directory. The tokenizer is CLIP's BPE (`tokenizer.json`, which OpenCLIP's
/// hub uploads carry; any CLIP `tokenizer.json` serves, the vocabulary being the same).
pub(crate) fn load(dir: &Path, options: &EncoderOptions) -> Result<EncoderParts, EncoderError> {
    if !dir.join(WEIGHTS_FILE).is_file() && dir.join(PICKLE_FILE).is_file() {
        return Err(EncoderError::UnsupportedConfig {
            path: dir.join(PICKLE_FILE),
            field: "weights".into(),
            value: PICKLE_FILE.into(),
            reason:
                "fiq reads safetensors only: convert it once to open_clip_model.safetensors with \
                     the one-line command in the README (section \"Model checkpoints\")",
        });
    }
    let OpenedModel {
        config,
        weights,
        hasher,
        tokenizer: tokenizer_path,
    } = open_model(
        dir,
        [CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE],
        "fiq-openclip-1",
        OpenClipConfig::from_json,
        OpenClipConfig::expected_tensors,
    )?;
    let (device, dtype, kernels) = resolve_device(options.device, options.precision)?;

    let mut renamer = Renamer {
        weights: &weights,
        out: HashMap::new(),
    };
    let building = compute("building the model");
    renamer
        .copy_text(&config.text)
        .map_err(compute("renaming tensors"))?;
    let towers: Box<dyn Towers> = match &config.image {
        ImageTower::Vit(vision) => {
            renamer
                .copy_vit(vision)
                .map_err(compute("renaming tensors"))?;
            if weights.get("logit_scale").is_ok() {
                renamer
                    .copy("logit_scale", "logit_scale")
                    .map_err(compute("renaming tensors"))?;
            }
            let clip = ClipConfig {
                text: config.text.clone(),
                vision: vision.clone(),
                projection_dim: config.embed_dim,
                logit_scale_init_value: (1.0f64 / 0.07).ln(),
            };
            let vb = VarBuilder::from_tensors(renamer.out, dtype, &device);
            Box::new(ClipModel::new(&clip, kernels, vb).map_err(building)?)
        }
        ImageTower::ResNet(_) if kernels == Kernels::FusedBf16 => {
            return Err(EncoderError::Device {
                device: "cpu".into(),
                reason:
                    "bf16 on the CPU covers transformer towers; RN50's convolutions have no bf16 \
                         kernel in fiq: use f32"
                        .into(),
            })
        }
        ImageTower::ResNet(resnet) => {
            let mut tensors = renamer.out;
            for (name, _) in resnet.expected_tensors("visual") {
                let tensor = weights
                    .load(&name, &Device::Cpu)
                    .map_err(compute("reading tensors"))?;
                tensors.insert(name, tensor);
            }
            let vb = VarBuilder::from_tensors(tensors, dtype, &device);
            let text = &config.text;
            let built = (|| {
                Ok::<_, candle_core::Error>(ResNetClip {
                    visual: ModifiedResNet::new(resnet, vb.pp("visual"))?,
                    text: TextTransformer::new(text, kernels, vb.pp("text_model"))?,
                    text_projection: candle_nn::linear_no_bias(
                        text.tower.hidden_size,
                        config.embed_dim,
                        vb.pp("text_projection"),
                    )?,
                })
            })();
            Box::new(built.map_err(building)?)
        }
    };
    let tokenizer = ClipTokenizer::load(&tokenizer_path, config.text.max_position_embeddings)?;
    let preprocessor =
        ImagePreprocessor::new(config.image_size(), options.resize, options.normalization);
    Ok(EncoderParts {
        towers,
        tokenizer,
        preprocessor,
        name: format!("openclip-{}/{}", config.short_name(), dir_name(dir)),
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

    fn parse(json: &str) -> Result<OpenClipConfig, EncoderError> {
        OpenClipConfig::from_json(json, Path::new(CONFIG_FILE))
    }

    #[test]
    fn vit_b32_and_rn50_configs_are_read() {
        let vit = parse(
            r#"{"model_cfg": {"embed_dim": 512, "quick_gelu": true,
                "vision_cfg": {"image_size": 224, "layers": 12, "width": 768, "patch_size": 32},
                "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 12}},
               "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073]}}"#,
        )
        .unwrap();
        assert_eq!(vit.short_name(), "ViT-B-32");
        let ImageTower::Vit(v) = &vit.image else {
            panic!("{vit:?}")
        };
        assert_eq!(v.tower.num_attention_heads, 12);
        assert_eq!(v.tower.intermediate_size, 3072);
        assert_eq!(v.tower.activation, Activation::QuickGelu);
        assert_eq!(vit.text.tower.activation, Activation::QuickGelu);

        let rn = parse(
            r#"{"embed_dim": 1024, "vision_cfg": {"image_size": 224, "layers": [3, 4, 6, 3], "width": 64,
                "patch_size": null}, "text_cfg": {"width": 512, "heads": 8, "layers": 12}}"#,
        )
        .unwrap();
        assert_eq!(rn.short_name(), "RN50");
        let ImageTower::ResNet(r) = &rn.image else {
            panic!("{rn:?}")
        };
        assert_eq!((r.heads, r.feature_dim(), r.output_dim), (32, 2048, 1024));
        assert_eq!(rn.text.tower.activation, Activation::GeluErf);
    }

    #[test]
    fn architecture_changing_options_are_refused_by_name() {
        let cases = [
            (
                r#"{"embed_dim": 8, "vision_cfg": {"ls_init_value": 1e-5}}"#,
                "model_cfg.vision_cfg.ls_init_value",
            ),
            (
                r#"{"embed_dim": 8, "vision_cfg": {"timm_model_name": "vit"}}"#,
                "model_cfg.vision_cfg.timm_model_name",
            ),
            (
                r#"{"embed_dim": 8, "text_cfg": {"hf_model_name": "bert"}}"#,
                "model_cfg.text_cfg.hf_model_name",
            ),
            (
                r#"{"embed_dim": 8, "text_cfg": {"pool_type": "first"}}"#,
                "model_cfg.text_cfg.pool_type",
            ),
            (
                r#"{"embed_dim": 8, "custom_text": true}"#,
                "model_cfg.custom_text",
            ),
            (r#"{"vision_cfg": {}}"#, "model_cfg.embed_dim"),
            (
                r#"{"embed_dim": 8, "vision_cfg": {"layers": [1, 2, 3]}}"#,
                "model_cfg.vision_cfg.layers",
            ),
        ];
        for (json, expected) in cases {
            match parse(json) {
                Err(EncoderError::UnsupportedConfig { field, .. }) => {
                    assert_eq!(field, expected, "{json}")
                }
                other => panic!("{json}: expected UnsupportedConfig, got {other:?}"),
            }
        }
    }
}
