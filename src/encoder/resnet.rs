//! CLIP's modified ResNet image tower (OpenAI CLIP, OpenCLIP `RN50` and kin), read from OpenCLIP's tensor
//! names (`visual.conv1.weight`, `visual.layer1.0.bn1.running_mean`, `visual.attnpool.q_proj.weight`, …).
//!
//! Differences from torchvision's ResNet: a stem of three 3×3 convolutions followed by a 2×2 average pool
//! (no max pool); strided blocks downsample with a 2×2 average pool before their last convolution and on
//! the shortcut ("anti-aliased"); the final pooling is one multi-head attention whose single query is the
//! mean of the feature map. candle-transformers has no such model, hence this file.
//!
//! Inference only: every batch norm (eval mode, running statistics) is folded into the convolution before
//! it at load time, so a conv + norm pair is one convolution with a bias.

use candle_core::{Module, Result, Tensor, D};
use candle_nn::{Linear, VarBuilder};

/// The shape of a modified ResNet, as OpenCLIP's `vision_cfg` describes it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResNetConfig {
    /// Bottleneck blocks in each of the four stages (`[3, 4, 6, 3]` for RN50).
    pub layers: [usize; 4],
    /// Channels after the stem; stage `i` has `width · 2^i` planes and 4× as many output channels.
    pub width: usize,
    /// Heads of the attention pool (`width · 32 / head_width`).
    pub heads: usize,
    pub image_size: usize,
    /// Width of the joint embedding space (the attention pool's output).
    pub output_dim: usize,
}

impl ResNetConfig {
    /// Channels of the last feature map, the attention pool's width.
    pub(crate) fn feature_dim(&self) -> usize {
        self.width * 32
    }

    /// Side of the last feature map: the tower downsamples by 32.
    pub(crate) fn grid_size(&self) -> usize {
        self.image_size / 32
    }

    /// Every tensor the tower reads, with its shape, under `prefix` (OpenCLIP: `visual`). Batch norms'
    /// `num_batches_tracked` counters are not read.
    pub(crate) fn expected_tensors(&self, prefix: &str) -> Vec<(String, Vec<usize>)> {
        let mut tensors = Vec::new();
        let mut conv_bn = |conv: String, bn: String, out: usize, inp: usize, k: usize| {
            tensors.push((format!("{conv}.weight"), vec![out, inp, k, k]));
            for stat in ["weight", "bias", "running_mean", "running_var"] {
                tensors.push((format!("{bn}.{stat}"), vec![out]));
            }
        };
        let half = self.width / 2;
        conv_bn(
            format!("{prefix}.conv1"),
            format!("{prefix}.bn1"),
            half,
            3,
            3,
        );
        conv_bn(
            format!("{prefix}.conv2"),
            format!("{prefix}.bn2"),
            half,
            half,
            3,
        );
        conv_bn(
            format!("{prefix}.conv3"),
            format!("{prefix}.bn3"),
            self.width,
            half,
            3,
        );
        let mut inplanes = self.width;
        for (stage, &blocks) in self.layers.iter().enumerate() {
            let planes = self.width << stage;
            for block in 0..blocks {
                let b = format!("{prefix}.layer{}.{block}", stage + 1);
                conv_bn(
                    format!("{b}.conv1"),
                    format!("{b}.bn1"),
                    planes,
                    inplanes,
                    1,
                );
                conv_bn(format!("{b}.conv2"), format!("{b}.bn2"), planes, planes, 3);
                conv_bn(
                    format!("{b}.conv3"),
                    format!("{b}.bn3"),
                    planes * 4,
                    planes,
                    1,
                );
                if has_shortcut_conv(inplanes, planes, stage_stride(stage, block)) {
                    let d = format!("{b}.downsample");
                    conv_bn(format!("{d}.0"), format!("{d}.1"), planes * 4, inplanes, 1);
                }
                inplanes = planes * 4;
            }
        }
        let (c, g) = (self.feature_dim(), self.grid_size());
        let pool = format!("{prefix}.attnpool");
        tensors.push((format!("{pool}.positional_embedding"), vec![g * g + 1, c]));
        for proj in ["q_proj", "k_proj", "v_proj"] {
            tensors.push((format!("{pool}.{proj}.weight"), vec![c, c]));
            tensors.push((format!("{pool}.{proj}.bias"), vec![c]));
        }
        tensors.push((format!("{pool}.c_proj.weight"), vec![self.output_dim, c]));
        tensors.push((format!("{pool}.c_proj.bias"), vec![self.output_dim]));
        tensors
    }
}

/// The first block of stages 2-4 halves the resolution.
fn stage_stride(stage: usize, block: usize) -> usize {
    if stage > 0 && block == 0 {
        2
    } else {
        1
    }
}

/// A block's shortcut is a (pooled) 1×1 convolution when its shape changes.
fn has_shortcut_conv(inplanes: usize, planes: usize, stride: usize) -> bool {
    stride > 1 || inplanes != planes * 4
}

/// PyTorch's `BatchNorm2d` default.
const BATCH_NORM_EPS: f64 = 1e-5;

/// A bias-free convolution followed by an eval-mode batch norm, folded into one convolution.
struct ConvBn {
    weight: Tensor,
    /// (1, out, 1, 1), ready to broadcast over a feature map.
    bias: Tensor,
    stride: usize,
    padding: usize,
}

impl ConvBn {
    #[allow(clippy::too_many_arguments)]
    fn new(
        vb: &VarBuilder,
        conv: &str,
        bn: &str,
        out: usize,
        inp: usize,
        kernel: usize,
        stride: usize,
    ) -> Result<Self> {
        let weight = vb.get((out, inp, kernel, kernel), &format!("{conv}.weight"))?;
        let bn = vb.pp(bn);
        let gamma = bn.get(out, "weight")?;
        let beta = bn.get(out, "bias")?;
        let mean = bn.get(out, "running_mean")?;
        let var = bn.get(out, "running_var")?;
        // y = gamma (conv(x) - mean) / sqrt(var + eps) + beta = conv'(x) + bias'.
        let scale = (gamma / (var + BATCH_NORM_EPS)?.sqrt()?)?;
        let weight = weight.broadcast_mul(&scale.reshape((out, 1, 1, 1))?)?;
        let bias = (beta - (mean * &scale)?)?.reshape((1, out, 1, 1))?;
        Ok(Self {
            weight,
            bias,
            stride,
            padding: kernel / 2,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        xs.conv2d(&self.weight, self.padding, self.stride, 1, 1)?
            .broadcast_add(&self.bias)
    }
}

/// A `stride`×`stride` average pool, or nothing for stride 1.
fn avg_pool(xs: Tensor, stride: usize) -> Result<Tensor> {
    if stride > 1 {
        xs.avg_pool2d(stride)
    } else {
        Ok(xs)
    }
}

struct Bottleneck {
    conv1: ConvBn,
    conv2: ConvBn,
    conv3: ConvBn,
    /// Pool then 1×1 convolution on the shortcut, when the block changes shape.
    shortcut: Option<ConvBn>,
    stride: usize,
}

impl Bottleneck {
    fn new(
        vb: &VarBuilder,
        prefix: &str,
        inplanes: usize,
        planes: usize,
        stride: usize,
    ) -> Result<Self> {
        let conv = |name: &str, out, inp, k| {
            ConvBn::new(
                vb,
                &format!("{prefix}.conv{name}"),
                &format!("{prefix}.bn{name}"),
                out,
                inp,
                k,
                1,
            )
        };
        let shortcut = if has_shortcut_conv(inplanes, planes, stride) {
            let d = format!("{prefix}.downsample");
            Some(ConvBn::new(
                vb,
                &format!("{d}.0"),
                &format!("{d}.1"),
                planes * 4,
                inplanes,
                1,
                1,
            )?)
        } else {
            None
        };
        Ok(Self {
            conv1: conv("1", planes, inplanes, 1)?,
            conv2: conv("2", planes, planes, 3)?,
            conv3: conv("3", planes * 4, planes, 1)?,
            shortcut,
            stride,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let out = self.conv1.forward(xs)?.relu()?;
        let out = self.conv2.forward(&out)?.relu()?;
        let out = self.conv3.forward(&avg_pool(out, self.stride)?)?;
        let identity = match &self.shortcut {
            Some(shortcut) => shortcut.forward(&avg_pool(xs.clone(), self.stride)?)?,
            None => xs.clone(),
        };
        (out + identity)?.relu()
    }
}

/// Multi-head attention over the flattened feature map whose one query is the map's mean (plus its
/// position): the tower's pooled output.
struct AttentionPool {
    positional_embedding: Tensor,
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    c_proj: Linear,
    heads: usize,
}

impl AttentionPool {
    fn new(config: &ResNetConfig, vb: VarBuilder) -> Result<Self> {
        let c = config.feature_dim();
        let g = config.grid_size();
        Ok(Self {
            positional_embedding: vb.get((g * g + 1, c), "positional_embedding")?,
            q_proj: candle_nn::linear(c, c, vb.pp("q_proj"))?,
            k_proj: candle_nn::linear(c, c, vb.pp("k_proj"))?,
            v_proj: candle_nn::linear(c, c, vb.pp("v_proj"))?,
            c_proj: candle_nn::linear(c, config.output_dim, vb.pp("c_proj"))?,
            heads: config.heads,
        })
    }

    /// `xs`: (batch, channels, h, w) → (batch, output_dim).
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let (batch, channels, h, w) = xs.dims4()?;
        let tokens = xs.reshape((batch, channels, h * w))?.transpose(1, 2)?;
        let mean = tokens.mean_keepdim(1)?;
        let tokens =
            Tensor::cat(&[&mean, &tokens], 1)?.broadcast_add(&self.positional_embedding)?;
        let len = h * w + 1;
        let head_dim = channels / self.heads;
        let split = |t: Tensor, rows: usize| {
            t.reshape((batch, rows, self.heads, head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        // Only the first position's output is kept, so only its query is computed.
        let query = self
            .q_proj
            .forward(&tokens.narrow(1, 0, 1)?.contiguous()?)?;
        let query = (split(query, 1)? * (head_dim as f64).powf(-0.5))?;
        let flat = tokens.reshape((batch * len, channels))?;
        let key = split(
            self.k_proj
                .forward(&flat)?
                .reshape((batch, len, channels))?,
            len,
        )?;
        let value = split(
            self.v_proj
                .forward(&flat)?
                .reshape((batch, len, channels))?,
            len,
        )?;
        let scores = query.matmul(&key.t()?)?;
        let probs = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let context = probs.matmul(&value)?.reshape((batch, channels))?;
        self.c_proj.forward(&context)
    }
}

/// The whole image tower: pixels (batch, 3, size, size) → embeddings (batch, output_dim).
pub(crate) struct ModifiedResNet {
    stem: [ConvBn; 3],
    blocks: Vec<Bottleneck>,
    pool: AttentionPool,
}

impl ModifiedResNet {
    /// Reads the tower from `vb` positioned at its prefix (OpenCLIP: `visual`).
    pub(crate) fn new(config: &ResNetConfig, vb: VarBuilder) -> Result<Self> {
        let half = config.width / 2;
        let stem = [
            ConvBn::new(&vb, "conv1", "bn1", half, 3, 3, 2)?,
            ConvBn::new(&vb, "conv2", "bn2", half, half, 3, 1)?,
            ConvBn::new(&vb, "conv3", "bn3", config.width, half, 3, 1)?,
        ];
        let mut blocks = Vec::new();
        let mut inplanes = config.width;
        for (stage, &count) in config.layers.iter().enumerate() {
            let planes = config.width << stage;
            for block in 0..count {
                let prefix = format!("layer{}.{block}", stage + 1);
                let stride = stage_stride(stage, block);
                blocks.push(Bottleneck::new(&vb, &prefix, inplanes, planes, stride)?);
                inplanes = planes * 4;
            }
        }
        Ok(Self {
            stem,
            blocks,
            pool: AttentionPool::new(config, vb.pp("attnpool"))?,
        })
    }

    pub(crate) fn forward(&self, pixels: &Tensor) -> Result<Tensor> {
        let mut xs = pixels.clone();
        for conv in &self.stem {
            xs = conv.forward(&xs)?.relu()?;
        }
        xs = xs.avg_pool2d(2)?;
        for block in &self.blocks {
            xs = block.forward(&xs)?;
        }
        self.pool.forward(&xs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    fn tiny() -> ResNetConfig {
        ResNetConfig {
            layers: [1, 2, 1, 1],
            width: 8,
            heads: 4,
            image_size: 64,
            output_dim: 12,
        }
    }

    #[test]
    fn expected_tensors_match_what_the_model_reads() {
        let config = tiny();
        let varmap = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let model = ModifiedResNet::new(&config, vb.pp("visual")).unwrap();
        let read: std::collections::BTreeSet<String> =
            varmap.data().lock().unwrap().keys().cloned().collect();
        let expected: std::collections::BTreeSet<String> = config
            .expected_tensors("visual")
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(read, expected);
        let pixels = Tensor::zeros((2, 3, 64, 64), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(model.forward(&pixels).unwrap().dims(), &[2, 12]);
    }
}
