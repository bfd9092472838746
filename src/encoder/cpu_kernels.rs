//! Inference kernels for f32 on CPU: linear layers through BLAS `sgemm` ([`crate::blas`]) or, on CPUs with
//! AVX512-BF16 when bf16 is asked for, fiq's bf16 kernel ([`crate::bf16_gemm`]); attention's
//! many small per-head products through the `gemm` crate that candle itself uses (single-threaded, one
//! rayon task per image and head).
//!
//! Profiling ViT-B/32 showed that, beside the matrix products, candle spent a third of its time on
//! passes around them: a separate bias add after every linear layer, three passes and three buffers for
//! quick-GELU, a layout copy before attention, a scaling pass, another copy after it, and hundreds of tiny
//! batched products per layer each fanned out to the thread pool. Here a linear layer writes its bias
//! first and accumulates the product onto it (activation applied in the same buffer), and attention runs
//! one task per (image, head) straight from the fused q/k/v projection, scale folded into the product.
//! No backward pass: [`super::model::Kernels::Differentiable`] uses candle's ops instead.

use candle_core::{bail, CpuStorage, CustomOp1, CustomOp3, Layout, Result, Shape};

use crate::bf16_gemm::{self, PackedBf16};
use gemm::Parallelism;
use rayon::prelude::*;

fn contiguous<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        bail!("{what}: only f32 is implemented")
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("{what}: input must be contiguous"),
    }
}

/// A linear layer's weight rounded to bf16 and packed for [`crate::bf16_gemm`], with its bias.
pub(crate) struct Bf16Linear {
    weight: PackedBf16,
    bias: Vec<f32>,
}

impl Bf16Linear {
    /// `weight` (out, in) and `bias` (out) as f32. Fails where the CPU lacks AVX512-BF16.
    pub fn new(weight: &[f32], inputs: usize, bias: Vec<f32>) -> Result<Self> {
        let Some(weight) = PackedBf16::pack(weight, inputs) else {
            bail!("bf16 kernels need a CPU with AVX512-BF16, which this one lacks")
        };
        if bias.len() != weight.outputs() {
            bail!("bias of {} for {} outputs", bias.len(), weight.outputs())
        }
        Ok(Self { weight, bias })
    }

    fn layer(&self, quick_gelu: bool) -> bf16_gemm::Layer<'_> {
        bf16_gemm::Layer {
            weight: &self.weight,
            bias: &self.bias,
            activation: match quick_gelu {
                true => bf16_gemm::Activation::QuickGelu,
                false => bf16_gemm::Activation::None,
            },
        }
    }
}

/// `y = activation(x · wᵀ + b)` for `x` (…, in), `w` (out, in) as stored in checkpoints, `b` (out).
pub(crate) struct Linear<'a> {
    pub quick_gelu: bool,
    /// The layer in bf16: the product runs there with f32 accumulation, bias and activation in the
    /// kernel; `None`: f32 through BLAS.
    pub bf16: Option<&'a Bf16Linear>,
}

impl CustomOp3 for Linear<'_> {
    fn name(&self) -> &'static str {
        "fiq-linear"
    }

    fn cpu_fwd(
        &self,
        x_storage: &CpuStorage,
        x_layout: &Layout,
        w_storage: &CpuStorage,
        w_layout: &Layout,
        b_storage: &CpuStorage,
        b_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = contiguous(x_storage, x_layout, "fiq-linear x")?;
        let w = contiguous(w_storage, w_layout, "fiq-linear weight")?;
        let b = contiguous(b_storage, b_layout, "fiq-linear bias")?;
        let dims = x_layout.dims();
        let k = *dims.last().unwrap_or(&0);
        let (n, w_k) = w_layout.shape().dims2()?;
        if w_k != k || b.len() != n || k == 0 {
            bail!(
                "fiq-linear: x {:?}, weight {:?}, bias {}",
                dims,
                w_layout.dims(),
                b.len()
            )
        }
        let m = x.len() / k;
        let y = match self.bf16 {
            Some(bf16) => {
                let packed = &bf16.weight;
                if (packed.outputs(), packed.inputs()) != (n, k) {
                    bail!(
                        "fiq-linear: packed bf16 weight is {} x {}, the layer {n} x {k}",
                        packed.outputs(),
                        packed.inputs()
                    )
                }
                let mut y = vec![0f32; m * n];
                bf16_gemm::linear(x, bf16.layer(self.quick_gelu), &mut y);
                y
            }
            None => {
                let mut y = Vec::with_capacity(m * n);
                for _ in 0..m {
                    y.extend_from_slice(b);
                }
                // The big products of the model (q/k/v, MLP, output projections) go to BLAS sgemm: the
                // `gemm` crate's kernel capped the image tower at ~0.6-0.8x PyTorch (BENCHMARKS.md,
                // encoder). y = b + x · wᵀ.
                crate::blas::matmul_transposed(x, w, k, &mut y, true);
                if self.quick_gelu {
                    y.par_chunks_mut(4096).for_each(|chunk| {
                        for v in chunk {
                            *v /= 1.0 + (-1.702 * *v).exp();
                        }
                    });
                }
                y
            }
        };
        let mut out_dims = dims.to_vec();
        *out_dims.last_mut().expect("rank checked above") = n;
        Ok((CpuStorage::F32(y), Shape::from(out_dims)))
    }
}

/// A transformer block's MLP in bf16, `fc2(quick_gelu(fc1(x)))`, through [`bf16_gemm::two_layers`]:
/// input (…, in), output (…, out).
pub(crate) struct Bf16Mlp<'a> {
    pub fc1: &'a Bf16Linear,
    pub fc2: &'a Bf16Linear,
}

impl CustomOp1 for Bf16Mlp<'_> {
    fn name(&self) -> &'static str {
        "fiq-bf16-mlp"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous(storage, layout, "fiq-bf16-mlp")?;
        let dims = layout.dims();
        let k = *dims.last().unwrap_or(&0);
        let (fc1, fc2) = (&self.fc1.weight, &self.fc2.weight);
        if k == 0 || fc1.inputs() != k || fc2.inputs() != fc1.outputs() {
            bail!(
                "fiq-bf16-mlp: x {dims:?}, fc1 {} x {}, fc2 {} x {}",
                fc1.outputs(),
                fc1.inputs(),
                fc2.outputs(),
                fc2.inputs()
            )
        }
        let n = fc2.outputs();
        let mut y = vec![0f32; x.len() / k * n];
        bf16_gemm::two_layers(x, self.fc1.layer(true), self.fc2.layer(false), &mut y);
        let mut out_dims = dims.to_vec();
        *out_dims.last_mut().expect("k checked above") = n;
        Ok((CpuStorage::F32(y), Shape::from(out_dims)))
    }
}

/// Multi-head softmax attention over the output of the fused q/k/v projection: input
/// (batch, seq, 3·hidden) laid out `[q | k | v]`, each split into heads; output (batch, seq, hidden).
pub(crate) struct Attention {
    pub num_heads: usize,
    pub head_dim: usize,
    /// Hide later positions from earlier ones (the text tower).
    pub causal: bool,
}

impl CustomOp1 for Attention {
    fn name(&self) -> &'static str {
        "fiq-attention"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let qkv = contiguous(storage, layout, "fiq-attention")?;
        let (batch, seq, width) = layout.shape().dims3()?;
        let (heads, d) = (self.num_heads, self.head_dim);
        let hidden = heads * d;
        if width != 3 * hidden {
            bail!("fiq-attention: width {width} is not 3 x {heads} heads x {d}")
        }
        let scale = (d as f32).powf(-0.5);
        let row = 3 * hidden;
        let blocks: Vec<Vec<f32>> = (0..batch * heads)
            .into_par_iter()
            .map(|task| {
                let (b, h) = (task / heads, task % heads);
                let base = b * seq * row + h * d;
                let mut scores = vec![0f32; seq * seq];
                // SAFETY: q rows start at `base` with stride `row`, k at `base + hidden` read transposed
                // as (d, seq); every index stays below (b + 1)·seq·row ≤ qkv.len(). `scores` is an
                // exclusively borrowed (seq, seq) row-major buffer. scores = scale · q · kᵀ.
                unsafe {
                    gemm::gemm(
                        seq,
                        seq,
                        d,
                        scores.as_mut_ptr(),
                        1,
                        seq as isize,
                        false,
                        qkv.as_ptr().add(base),
                        1,
                        row as isize,
                        qkv.as_ptr().add(base + hidden),
                        row as isize,
                        1,
                        0.0f32,
                        scale,
                        false,
                        false,
                        false,
                        Parallelism::None,
                    );
                }
                for (i, scores_row) in scores.chunks_exact_mut(seq).enumerate() {
                    let visible = if self.causal { i + 1 } else { seq };
                    let (kept, hidden_part) = scores_row.split_at_mut(visible);
                    let max = kept.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let mut sum = 0f32;
                    for v in kept.iter_mut() {
                        *v = (*v - max).exp();
                        sum += *v;
                    }
                    kept.iter_mut().for_each(|v| *v /= sum);
                    hidden_part.fill(0.0);
                }
                let mut out = vec![0f32; seq * d];
                // SAFETY: v rows start at `base + 2·hidden` with stride `row`, in bounds as above;
                // `scores` is (seq, seq) and `out` an exclusively borrowed (seq, d) buffer. out = P · v.
                unsafe {
                    gemm::gemm(
                        seq,
                        d,
                        seq,
                        out.as_mut_ptr(),
                        1,
                        d as isize,
                        false,
                        scores.as_ptr(),
                        1,
                        seq as isize,
                        qkv.as_ptr().add(base + 2 * hidden),
                        1,
                        row as isize,
                        0.0f32,
                        1.0f32,
                        false,
                        false,
                        false,
                        Parallelism::None,
                    );
                }
                out
            })
            .collect();
        let mut y = vec![0f32; batch * seq * hidden];
        for (task, block) in blocks.iter().enumerate() {
            let (b, h) = (task / heads, task % heads);
            for (s, head_row) in block.chunks_exact(d).enumerate() {
                let start = (b * seq + s) * hidden + h * d;
                y[start..start + d].copy_from_slice(head_row);
            }
        }
        Ok((CpuStorage::F32(y), Shape::from((batch, seq, hidden))))
    }
}
