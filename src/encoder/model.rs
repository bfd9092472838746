//! fiq's own CLIP forward pass in candle, reading the Hugging Face `CLIPModel` tensor names.
//!
//! candle-transformers' CLIP hard-codes ViT-B/32 shapes, quick-GELU and eps 1e-5, so it cannot follow a
//! config.json. This one follows [`ClipConfig`] and is laid out for throughput on CPU: the patch
//! embedding is one matmul over gathered patches instead of a convolution, and the three attention
//! projections are one matmul whose output is split by a single layout copy.
//!
//! The model is built from a [`VarBuilder`], so the same code serves loading a checkpoint (mmapped
//! safetensors) and training (a `VarMap`, random or warm-started). [`Kernels::Differentiable`] swaps the
//! fused candle kernels, which have no backward pass, for composed ops that do.

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Embedding, Linear, VarBuilder};

use super::config::{Activation, ClipConfig, TextConfig, TowerConfig, VisionConfig};
use super::cpu_kernels::{self, Bf16Linear};

/// Whether the hand-written CPU kernels can run `xs` (they are f32 in and out, CPU, inference only).
fn use_cpu_kernels(kernels: Kernels, xs: &Tensor) -> bool {
    kernels.fused() && is_cpu_f32(xs)
}

fn is_cpu_f32(xs: &Tensor) -> bool {
    xs.device().is_cpu() && xs.dtype() == DType::F32
}

/// A linear layer through [`cpu_kernels::Linear`], or `None` when it has no bias.
fn cpu_linear(xs: &Tensor, projection: &Projection, quick_gelu: bool) -> Option<Result<Tensor>> {
    let bias = projection.linear.bias()?;
    let kernel = cpu_kernels::Linear {
        quick_gelu,
        bf16: projection.bf16.as_ref(),
    };
    Some(
        xs.contiguous()
            .and_then(|xs| xs.apply_op3_no_bwd(projection.linear.weight(), bias, &kernel)),
    )
}

/// A linear layer and, under [`Kernels::FusedBf16`], its weight rounded to bf16 and packed once at load
/// time for [`crate::bf16_gemm`].
struct Projection {
    linear: Linear,
    bf16: Option<Bf16Linear>,
}

impl Projection {
    fn new(linear: Linear, kernels: Kernels) -> Result<Self> {
        let bf16 = match (kernels, linear.bias()) {
            (Kernels::FusedBf16, Some(bias)) => {
                let (_, inputs) = linear.weight().dims2()?;
                let values = |t: &Tensor| t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>();
                Some(Bf16Linear::new(
                    &values(linear.weight())?,
                    inputs,
                    values(bias)?,
                )?)
            }
            _ => None,
        };
        Ok(Self { linear, bf16 })
    }
}

/// `linear` applied to the last dimension of `xs` as one 2-D matmul. candle's `Linear` on a 3-D input
/// broadcasts its weight into a batched matmul: batch-many products of sequence-length rows (50 for
/// ViT-B/32) where one product over all rows is the shape GEMM kernels run best. Found on the GPU run in
/// BENCHMARKS.md; its gain there is not measured yet. On the CPU in f32 the product (and, in training,
/// its gradients) runs through BLAS ([`super::train_kernels::linear`]).
fn linear_rows(linear: &Linear, xs: &Tensor) -> Result<Tensor> {
    let dims = xs.dims().to_vec();
    let Some((&width, leading)) = dims.split_last() else {
        return linear.forward(xs);
    };
    let rows: usize = leading.iter().product();
    let xs = xs.reshape((rows, width))?;
    let out = match linear.bias() {
        Some(bias) => super::train_kernels::linear(&xs, linear.weight(), bias)?,
        None => linear.forward(&xs)?,
    };
    let mut shape = leading.to_vec();
    shape.push(out.dim(1)?);
    out.reshape(shape)
}

/// Which kernels the forward pass uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernels {
    /// Fused layer norm and softmax, attention projections concatenated once at load time. Inference only.
    Fused,
    /// [`Kernels::Fused`] with every linear layer's product (patch embedding, q/k/v, attention output,
    /// MLP) in bf16 with f32 accumulation ([`crate::bf16_gemm`], CPUs with AVX512-BF16). Activations,
    /// layer norms, softmax, the residual stream and attention's own products stay f32: the products of
    /// attention are about 1% of ViT-B/32's multiply-adds (50 tokens) and 2.5% of the text tower's, and
    /// bf16 there would cost accuracy for no measurable speed.
    FusedBf16,
    /// Ops with a backward pass, weights read from their variables on every call (they may change
    /// between steps).
    // Constructed by fine-tuning (src/train), which builds the model from a VarMap.
    #[allow(dead_code)]
    Differentiable,
}

impl Kernels {
    /// Whether these are inference kernels (no backward pass).
    fn fused(self) -> bool {
        matches!(self, Kernels::Fused | Kernels::FusedBf16)
    }
}

struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
    kernels: Kernels,
}

impl LayerNorm {
    fn new(width: usize, eps: f64, kernels: Kernels, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            weight: vb.get(width, "weight")?,
            bias: vb.get(width, "bias")?,
            eps,
            kernels,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match self.kernels {
            Kernels::Fused | Kernels::FusedBf16 => candle_nn::ops::layer_norm(
                &xs.contiguous()?,
                &self.weight,
                &self.bias,
                self.eps as f32,
            ),
            Kernels::Differentiable => {
                super::train_kernels::layer_norm(xs, &self.weight, &self.bias, self.eps as f32)
            }
        }
    }
}

fn softmax_last_dim(xs: &Tensor, kernels: Kernels) -> Result<Tensor> {
    match kernels {
        Kernels::Fused | Kernels::FusedBf16 => candle_nn::ops::softmax_last_dim(xs),
        Kernels::Differentiable => super::train_kernels::softmax_last_dim(xs),
    }
}

fn activate(xs: &Tensor, activation: Activation) -> Result<Tensor> {
    match activation {
        Activation::QuickGelu => super::train_kernels::quick_gelu(xs),
        Activation::GeluErf => xs.gelu_erf(),
        Activation::GeluTanh => xs.gelu(),
    }
}

/// Multi-head self-attention with q/k/v projected by one matmul.
struct Attention {
    projections: QkvProjections,
    out_proj: Projection,
    num_heads: usize,
    head_dim: usize,
    kernels: Kernels,
}

impl Attention {
    fn new(tower: &TowerConfig, kernels: Kernels, vb: VarBuilder) -> Result<Self> {
        let h = tower.hidden_size;
        let q_proj = candle_nn::linear(h, h, vb.pp("q_proj"))?;
        let k_proj = candle_nn::linear(h, h, vb.pp("k_proj"))?;
        let v_proj = candle_nn::linear(h, h, vb.pp("v_proj"))?;
        let out_proj = Projection::new(candle_nn::linear(h, h, vb.pp("out_proj"))?, kernels)?;
        let projections = match kernels {
            Kernels::Fused | Kernels::FusedBf16 => QkvProjections::Stacked(Projection::new(
                stack_linears(&[&q_proj, &k_proj, &v_proj])?,
                kernels,
            )?),
            Kernels::Differentiable => QkvProjections::Separate([q_proj, k_proj, v_proj]),
        };
        Ok(Self {
            projections,
            out_proj,
            num_heads: tower.num_attention_heads,
            head_dim: tower.head_dim(),
            kernels,
        })
    }

    /// `xs`: (batch, seq, hidden). `causal`: hide later positions (the text tower).
    fn forward(&self, xs: &Tensor, causal: bool) -> Result<Tensor> {
        if let (true, QkvProjections::Stacked(qkv)) =
            (use_cpu_kernels(self.kernels, xs), &self.projections)
        {
            if let Some(qkv) = cpu_linear(xs, qkv, false) {
                let attention = cpu_kernels::Attention {
                    num_heads: self.num_heads,
                    head_dim: self.head_dim,
                    causal,
                };
                let context = qkv?.apply_op1_no_bwd(&attention)?;
                if let Some(out) = cpu_linear(&context, &self.out_proj, false) {
                    return out;
                }
                return linear_rows(&self.out_proj.linear, &context);
            }
        }
        let (batch, seq, hidden) = xs.dims3()?;
        let mask = if causal {
            Some(causal_mask(seq, xs.dtype(), xs.device())?)
        } else {
            None
        };
        let qkv = match &self.projections {
            QkvProjections::Stacked(qkv) => linear_rows(&qkv.linear, xs)?,
            // Stacked anew each call: the variables may have changed since the last step.
            QkvProjections::Separate([q, k, v]) => linear_rows(&stack_linears(&[q, k, v])?, xs)?,
        };
        // One copy turns (batch, seq, [q|k|v], head, dim) into three contiguous (batch, head, seq, dim) blocks.
        let qkv = qkv
            .reshape((batch, seq, 3, self.num_heads, self.head_dim))?
            .permute((2, 0, 3, 1, 4))?
            .contiguous()?;
        let q = qkv.get(0)?;
        let k = qkv.get(1)?;
        let v = qkv.get(2)?;
        let scale = (self.head_dim as f64).powf(-0.5);
        let scores = (q.matmul(&k.t()?)? * scale)?;
        let scores = match &mask {
            Some(mask) => scores.broadcast_add(mask)?,
            None => scores,
        };
        let probs = softmax_last_dim(&scores, self.kernels)?;
        let context = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((batch, seq, hidden))?;
        linear_rows(&self.out_proj.linear, &context)
    }
}

enum QkvProjections {
    /// `[q; k; v]` concatenated once at load time.
    Stacked(Projection),
    Separate([Linear; 3]),
}

fn stack_linears(parts: &[&Linear]) -> Result<Linear> {
    let weights: Vec<&Tensor> = parts.iter().map(|l| l.weight()).collect();
    let biases = parts
        .iter()
        .map(|l| l.bias().cloned())
        .collect::<Option<Vec<Tensor>>>();
    let bias = match biases {
        Some(b) => Some(Tensor::cat(&b, 0)?),
        None => None,
    };
    Ok(Linear::new(Tensor::cat(&weights, 0)?, bias))
}

struct Mlp {
    fc1: Projection,
    fc2: Projection,
    activation: Activation,
    kernels: Kernels,
}

impl Mlp {
    fn new(tower: &TowerConfig, kernels: Kernels, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            fc1: Projection::new(
                candle_nn::linear(tower.hidden_size, tower.intermediate_size, vb.pp("fc1"))?,
                kernels,
            )?,
            fc2: Projection::new(
                candle_nn::linear(tower.intermediate_size, tower.hidden_size, vb.pp("fc2"))?,
                kernels,
            )?,
            activation: tower.activation,
            kernels,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        if let (true, Activation::QuickGelu, Some(fc1), Some(fc2)) = (
            use_cpu_kernels(self.kernels, xs),
            self.activation,
            &self.fc1.bf16,
            &self.fc2.bf16,
        ) {
            return xs
                .contiguous()?
                .apply_op1_no_bwd(&cpu_kernels::Bf16Mlp { fc1, fc2 });
        }
        if use_cpu_kernels(self.kernels, xs) {
            let fused_activation = self.activation == Activation::QuickGelu;
            if let Some(hidden) = cpu_linear(xs, &self.fc1, fused_activation) {
                let hidden = if fused_activation {
                    hidden?
                } else {
                    activate(&hidden?, self.activation)?
                };
                if let Some(out) = cpu_linear(&hidden, &self.fc2, false) {
                    return out;
                }
                return linear_rows(&self.fc2.linear, &hidden);
            }
        }
        let hidden = activate(&linear_rows(&self.fc1.linear, xs)?, self.activation)?;
        linear_rows(&self.fc2.linear, &hidden)
    }
}

/// One pre-norm transformer block.
struct Block {
    layer_norm1: LayerNorm,
    self_attn: Attention,
    layer_norm2: LayerNorm,
    mlp: Mlp,
}

impl Block {
    fn new(tower: &TowerConfig, kernels: Kernels, vb: VarBuilder) -> Result<Self> {
        let eps = tower.layer_norm_eps;
        Ok(Self {
            layer_norm1: LayerNorm::new(tower.hidden_size, eps, kernels, vb.pp("layer_norm1"))?,
            self_attn: Attention::new(tower, kernels, vb.pp("self_attn"))?,
            layer_norm2: LayerNorm::new(tower.hidden_size, eps, kernels, vb.pp("layer_norm2"))?,
            mlp: Mlp::new(tower, kernels, vb.pp("mlp"))?,
        })
    }

    fn forward(&self, xs: &Tensor, causal: bool) -> Result<Tensor> {
        let xs = (xs
            + self
                .self_attn
                .forward(&self.layer_norm1.forward(xs)?, causal)?)?;
        &xs + self.mlp.forward(&self.layer_norm2.forward(&xs)?)?
    }
}

/// The blocks of one tower. `frozen` leading blocks run without building a gradient graph.
struct Stack {
    blocks: Vec<Block>,
}

impl Stack {
    fn new(tower: &TowerConfig, kernels: Kernels, vb: VarBuilder) -> Result<Self> {
        let vb = vb.pp("layers");
        let blocks = (0..tower.num_hidden_layers)
            .map(|i| Block::new(tower, kernels, vb.pp(i)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { blocks })
    }

    fn forward(&self, xs: &Tensor, causal: bool, frozen: usize) -> Result<Tensor> {
        let mut xs = xs.clone();
        for (i, block) in self.blocks.iter().enumerate() {
            if i == frozen && frozen > 0 {
                xs = xs.detach();
            }
            xs = block.forward(&xs, causal)?;
        }
        if frozen >= self.blocks.len() {
            xs = xs.detach();
        }
        Ok(xs)
    }
}

/// The image tower: patches → class token + positions → blocks → layer-normed class token.
pub(crate) struct VisionTransformer {
    /// Patch embedding as a (hidden, 3·p·p) matrix, the conv kernel flattened.
    patch_weight: Tensor,
    /// BLIP's patch convolution has a bias; CLIP's has none.
    patch_bias: Option<Tensor>,
    /// The patch embedding as a linear layer for the CPU kernels (bias zero where the checkpoint has
    /// none); `None` under [`Kernels::Differentiable`].
    patch_projection: Option<Projection>,
    class_embedding: Tensor,
    position_embedding: Tensor,
    /// CLIP normalizes the embedded tokens before the blocks; BLIP does not.
    pre_layrnorm: Option<LayerNorm>,
    encoder: Stack,
    post_layernorm: LayerNorm,
    config: VisionConfig,
}

impl VisionTransformer {
    pub(crate) fn new(config: &VisionConfig, kernels: Kernels, vb: VarBuilder) -> Result<Self> {
        let h = config.tower.hidden_size;
        let p = config.patch_size;
        let eps = config.tower.layer_norm_eps;
        let emb = vb.pp("embeddings");
        let patch_weight = emb
            .get((h, 3, p, p), "patch_embedding.weight")?
            .reshape((h, 3 * p * p))?;
        let patch_bias = match config.patch_bias {
            true => Some(emb.get(h, "patch_embedding.bias")?),
            false => None,
        };
        let pre_layrnorm = match config.pre_norm {
            true => Some(LayerNorm::new(h, eps, kernels, vb.pp("pre_layrnorm"))?),
            false => None,
        };
        let patch_projection = match kernels.fused() {
            true => {
                let bias = match &patch_bias {
                    Some(bias) => bias.clone(),
                    None => Tensor::zeros(h, patch_weight.dtype(), patch_weight.device())?,
                };
                let linear = Linear::new(patch_weight.clone(), Some(bias));
                Some(Projection::new(linear, kernels)?)
            }
            false => None,
        };
        Ok(Self {
            patch_weight,
            patch_bias,
            patch_projection,
            class_embedding: emb.get(h, "class_embedding")?,
            position_embedding: emb
                .get((config.num_positions(), h), "position_embedding.weight")?,
            pre_layrnorm,
            encoder: Stack::new(&config.tower, kernels, vb.pp("encoder"))?,
            post_layernorm: LayerNorm::new(h, eps, kernels, vb.pp("post_layernorm"))?,
            config: config.clone(),
        })
    }

    /// `pixels`: (batch, 3, size, size). Returns the pooled (batch, hidden) class-token state.
    pub(crate) fn forward(&self, pixels: &Tensor, frozen: usize) -> Result<Tensor> {
        let (batch, _, _, _) = pixels.dims4()?;
        let g = self.config.grid_size();
        let p = self.config.patch_size;
        let h = self.config.tower.hidden_size;
        // A stride-p convolution with a p×p kernel is a matmul over the image cut into patches.
        let patches = pixels
            .reshape((batch, 3, g, p, g, p))?
            .permute((0, 2, 4, 1, 3, 5))?
            .contiguous()?
            .reshape((batch * g * g, 3 * p * p))?;
        let cpu_patches = match &self.patch_projection {
            // Built only for fused kernels.
            Some(projection) if is_cpu_f32(&patches) => {
                cpu_linear(&patches, projection, false).transpose()?
            }
            _ => None,
        };
        let patch_tokens = match cpu_patches {
            Some(tokens) => tokens,
            None => {
                let tokens = patches.matmul(&self.patch_weight.t()?)?;
                match &self.patch_bias {
                    Some(bias) => tokens.broadcast_add(bias)?,
                    None => tokens,
                }
            }
        };
        let patch_tokens = patch_tokens.reshape((batch, g * g, h))?;
        let class_token = self
            .class_embedding
            .reshape((1, 1, h))?
            .broadcast_as((batch, 1, h))?;
        let tokens = Tensor::cat(&[&class_token, &patch_tokens], 1)?
            .broadcast_add(&self.position_embedding)?;
        let tokens = match &self.pre_layrnorm {
            Some(norm) => norm.forward(&tokens)?,
            None => tokens,
        };
        let hidden = self.encoder.forward(&tokens, false, frozen)?;
        self.post_layernorm
            .forward(&hidden.narrow(1, 0, 1)?.squeeze(1)?)
    }
}

/// The text tower: tokens + positions → causal blocks → final layer norm, pooled at one position per row.
pub(crate) struct TextTransformer {
    token_embedding: Embedding,
    position_embedding: Tensor,
    encoder: Stack,
    final_layer_norm: LayerNorm,
    pub(crate) config: TextConfig,
}

impl TextTransformer {
    pub(crate) fn new(config: &TextConfig, kernels: Kernels, vb: VarBuilder) -> Result<Self> {
        let h = config.tower.hidden_size;
        let emb = vb.pp("embeddings");
        Ok(Self {
            token_embedding: candle_nn::embedding(config.vocab_size, h, emb.pp("token_embedding"))?,
            position_embedding: emb.get(
                (config.max_position_embeddings, h),
                "position_embedding.weight",
            )?,
            encoder: Stack::new(&config.tower, kernels, vb.pp("encoder"))?,
            final_layer_norm: LayerNorm::new(
                h,
                config.tower.layer_norm_eps,
                kernels,
                vb.pp("final_layer_norm"),
            )?,
            config: config.clone(),
        })
    }

    /// `ids`: (batch, seq) u32, `seq` at most the context length. `pool_at[i]`: the position whose state
    /// represents row `i`. Returns (batch, hidden).
    pub(crate) fn forward(&self, ids: &Tensor, pool_at: &[usize], frozen: usize) -> Result<Tensor> {
        let (batch, seq) = ids.dims2()?;
        let h = self.config.tower.hidden_size;
        let tokens = self
            .token_embedding
            .forward(ids)?
            .broadcast_add(&self.position_embedding.narrow(0, 0, seq)?)?;
        let hidden = self.encoder.forward(&tokens, true, frozen)?;
        // Only the pooled rows matter, so the final norm runs on those alone.
        let rows: Vec<u32> = pool_at
            .iter()
            .enumerate()
            .map(|(i, &pos)| (i * seq + pos) as u32)
            .collect();
        let rows = Tensor::from_vec(rows, batch, ids.device())?;
        let pooled = hidden.reshape((batch * seq, h))?.index_select(&rows, 0)?;
        self.final_layer_norm.forward(&pooled)
    }
}

/// Additive mask that hides later positions: 0 on and below the diagonal, -inf above.
fn causal_mask(seq: usize, dtype: DType, device: &Device) -> Result<Tensor> {
    let mask: Vec<f32> = (0..seq)
        .flat_map(|i| (0..seq).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Tensor::from_vec(mask, (seq, seq), device)?.to_dtype(dtype)
}

/// Both towers and their projections into the joint embedding space.
pub(crate) struct ClipModel {
    pub(crate) vision: VisionTransformer,
    pub(crate) text: TextTransformer,
    visual_projection: Linear,
    pub(crate) text_projection: Linear,
    /// The learned temperature, `ln(1/τ)`; the checkpoint's value when it has one. Read by the
    /// contrastive loss of fine-tuning (src/train).
    #[allow(dead_code)]
    pub(crate) logit_scale: Tensor,
}

impl ClipModel {
    /// Builds the model from tensors named as in transformers' `CLIPModel` (`text_model.*`,
    /// `vision_model.*`, `visual_projection.weight`, `text_projection.weight`, `logit_scale`).
    pub(crate) fn new(config: &ClipConfig, kernels: Kernels, vb: VarBuilder) -> Result<Self> {
        // A VarMap creates the variable from the hint; a checkpoint without one gets the initial value.
        let init = config.logit_scale_init_value;
        let logit_scale = match vb.get_with_hints((), "logit_scale", candle_nn::Init::Const(init)) {
            Ok(scale) => scale,
            Err(_) => Tensor::new(init as f32, vb.device())?.to_dtype(vb.dtype())?,
        };
        Ok(Self {
            vision: VisionTransformer::new(&config.vision, kernels, vb.pp("vision_model"))?,
            text: TextTransformer::new(&config.text, kernels, vb.pp("text_model"))?,
            visual_projection: candle_nn::linear_no_bias(
                config.vision.tower.hidden_size,
                config.projection_dim,
                vb.pp("visual_projection"),
            )?,
            text_projection: candle_nn::linear_no_bias(
                config.text.tower.hidden_size,
                config.projection_dim,
                vb.pp("text_projection"),
            )?,
            logit_scale,
        })
    }

    /// Unnormalized image embeddings (batch, projection_dim). The first `frozen` vision blocks run
    /// detached from the gradient graph.
    pub(crate) fn image_features(&self, pixels: &Tensor, frozen: usize) -> Result<Tensor> {
        self.visual_projection
            .forward(&self.vision.forward(pixels, frozen)?)
    }
}

impl super::towers::Towers for ClipModel {
    fn image_features(&self, pixels: &Tensor) -> Result<Tensor> {
        self.image_features(pixels, 0)
    }

    fn text_features(&self, sequences: &[&[u32]], pad_id: u32, device: &Device) -> Result<Tensor> {
        projected_text_features(&self.text, &self.text_projection, sequences, pad_id, device)
    }
}

/// CLIP's text tower on unpadded sequences, pooled where transformers pools, then projected.
pub(crate) fn projected_text_features(
    text: &TextTransformer,
    projection: &Linear,
    sequences: &[&[u32]],
    pad_id: u32,
    device: &Device,
) -> Result<Tensor> {
    projected_text_features_with(text, projection, sequences, pad_id, device, 0)
}

/// [`projected_text_features`] with the first `frozen` blocks detached from the gradient graph.
pub(crate) fn projected_text_features_with(
    text: &TextTransformer,
    projection: &Linear,
    sequences: &[&[u32]],
    pad_id: u32,
    device: &Device,
    frozen: usize,
) -> Result<Tensor> {
    let ids = super::towers::padded_ids(sequences, pad_id, device)?;
    let pool_at: Vec<usize> = sequences
        .iter()
        .map(|s| pool_position(s, text.config.eos_token_id))
        .collect();
    projection.forward(&text.forward(&ids, &pool_at, frozen)?)
}

/// The position transformers' `CLIPTextTransformer` pools for one unpadded token sequence: the first
/// occurrence of `eos_token_id`, or, for legacy configs whose `eos_token_id` is 2, the first largest id.
pub(crate) fn pool_position(ids: &[u32], eos_token_id: u32) -> usize {
    let first_max = || {
        ids.iter()
            .enumerate()
            .fold(
                (0, 0u32),
                |(best_i, best), (i, &id)| if id > best { (i, id) } else { (best_i, best) },
            )
            .0
    };
    if eos_token_id == 2 {
        return first_max();
    }
    ids.iter()
        .position(|&id| id == eos_token_id)
        .unwrap_or(ids.len().saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn tiny_config() -> ClipConfig {
        ClipConfig::from_json(
            r#"{"projection_dim": 8,
                "text_config": {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
                                "num_attention_heads": 2, "vocab_size": 50, "max_position_embeddings": 12,
                                "eos_token_id": 49},
                "vision_config": {"hidden_size": 24, "intermediate_size": 48, "num_hidden_layers": 2,
                                  "num_attention_heads": 4, "image_size": 32, "patch_size": 8,
                                  "hidden_act": "gelu"}}"#,
            Path::new("config.json"),
        )
        .unwrap()
    }

    fn random_model(kernels: Kernels) -> (candle_nn::VarMap, ClipModel) {
        let varmap = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let model = ClipModel::new(&tiny_config(), kernels, vb).unwrap();
        (varmap, model)
    }

    #[test]
    fn random_model_has_expected_output_shapes() {
        let (_varmap, model) = random_model(Kernels::Fused);
        let pixels = Tensor::randn(0f32, 1.0, (3, 3, 32, 32), &Device::Cpu).unwrap();
        assert_eq!(model.image_features(&pixels, 0).unwrap().dims(), &[3, 8]);
        let sequences: [&[u32]; 2] = [&[48, 5, 6, 49], &[48, 7, 49]];
        let text =
            super::super::towers::Towers::text_features(&model, &sequences, 49, &Device::Cpu);
        assert_eq!(text.unwrap().dims(), &[2, 8]);
    }

    #[test]
    fn fused_and_differentiable_kernels_agree() {
        let (varmap, fused) = random_model(Kernels::Fused);
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let differentiable = ClipModel::new(&tiny_config(), Kernels::Differentiable, vb).unwrap();
        let pixels = Tensor::randn(0f32, 1.0, (2, 3, 32, 32), &Device::Cpu).unwrap();
        let a = fused.image_features(&pixels, 0).unwrap();
        let b = differentiable.image_features(&pixels, 0).unwrap();
        let diff = (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-4, "max abs diff {diff}");
    }

    #[test]
    fn gradients_reach_only_unfrozen_blocks() {
        let (varmap, _) = random_model(Kernels::Fused);
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let model = ClipModel::new(&tiny_config(), Kernels::Differentiable, vb).unwrap();
        let pixels = Tensor::randn(0f32, 1.0, (2, 3, 32, 32), &Device::Cpu).unwrap();
        let loss = model
            .image_features(&pixels, 1)
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap();
        let grads = loss.backward().unwrap();
        let data = varmap.data().lock().unwrap();
        let grad_of = |name: &str| grads.get(data.get(name).unwrap().as_tensor()).is_some();
        assert!(grad_of("vision_model.encoder.layers.1.mlp.fc1.weight"));
        assert!(grad_of("visual_projection.weight"));
        assert!(!grad_of("vision_model.encoder.layers.0.mlp.fc1.weight"));
        assert!(!grad_of("vision_model.embeddings.patch_embedding.weight"));
    }

    #[test]
    fn pool_position_follows_transformers() {
        assert_eq!(pool_position(&[49406, 320, 49407, 49407], 49407), 2);
        // Legacy configs (eos_token_id 2) pool at the first largest id.
        assert_eq!(pool_position(&[49406, 320, 49407, 49407], 2), 2);
        assert_eq!(pool_position(&[10, 30, 20], 2), 1);
        // A sequence without the end token falls back to its last position.
        assert_eq!(pool_position(&[1, 2, 3], 99), 2);
    }
}
