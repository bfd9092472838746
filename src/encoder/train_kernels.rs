//! Linear layers, layer norm, softmax and quick-GELU for training on the CPU: one op forward and one backward each,
//! with hand-written gradients (checked against candle's ops in the tests below).
//!
//! candle's fused `layer_norm` and `softmax_last_dim` have no backward pass, so training used
//! `layer_norm_slow` (about ten tensor ops, each a fresh buffer, and as many again backward) and a
//! five-op softmax; profiling from-scratch training of the built-in model put a third of a step in such
//! element-wise passes and in the kernel clearing the pages they allocate. Its matrix products ran on the
//! `gemm` crate at about 40 GFLOP/s on 2 cores; the linear layer here runs its three products (forward,
//! input gradient, weight gradient) through BLAS `sgemm` ([`crate::blas`]), transposes read in place,
//! the bias added in the same buffer. Other devices and types keep candle's ops.

use crate::blas::{gemm, Operand};
use candle_core::{
    bail, CpuStorage, CustomOp1, CustomOp3, Layout, Result, Shape, Storage, Tensor, D,
};

/// Layer norm over the last dimension: `(x − mean) / sqrt(var + eps) · weight + bias`.
pub(crate) fn layer_norm(xs: &Tensor, weight: &Tensor, bias: &Tensor, eps: f32) -> Result<Tensor> {
    if cpu_f32(xs) {
        return xs.contiguous()?.apply_op3(
            &weight.contiguous()?,
            &bias.contiguous()?,
            LayerNorm { eps },
        );
    }
    candle_nn::ops::layer_norm_slow(xs, weight, bias, eps)
}

/// `xs · weightᵀ + bias` for `xs` of shape (rows, in), `weight` (out, in), `bias` (out).
pub(crate) fn linear(xs: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    if cpu_f32(xs) && cpu_f32(weight) && cpu_f32(bias) {
        return xs
            .contiguous()?
            .apply_op3(&weight.contiguous()?, &bias.contiguous()?, Linear);
    }
    xs.matmul(&weight.t()?)?.broadcast_add(bias)
}

/// CLIP's quick-GELU, `x · σ(1.702 x)`.
pub(crate) fn quick_gelu(xs: &Tensor) -> Result<Tensor> {
    if cpu_f32(xs) {
        return xs.contiguous()?.apply_op1(QuickGelu);
    }
    xs * candle_nn::ops::sigmoid(&(xs * 1.702)?)?
}

/// Softmax over the last dimension.
pub(crate) fn softmax_last_dim(xs: &Tensor) -> Result<Tensor> {
    if cpu_f32(xs) {
        return xs.contiguous()?.apply_op1(Softmax);
    }
    candle_nn::ops::softmax(xs, D::Minus1)
}

fn cpu_f32(xs: &Tensor) -> bool {
    xs.device().is_cpu() && xs.dtype() == candle_core::DType::F32
}

fn slice<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        bail!("{what}: only f32 is implemented")
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("{what}: input must be contiguous"),
    }
}

/// Calls `f` with the values of CPU f32 `tensors`, read in place: the backward passes get the forward's
/// contiguous inputs and outputs and candle's gradients, which are contiguous too, so nothing is copied
/// (anything else is made contiguous first).
fn with_values<const N: usize, R>(
    tensors: [&Tensor; N],
    f: impl FnOnce([&[f32]; N]) -> Result<R>,
) -> Result<R> {
    let contiguous = tensors
        .iter()
        .map(|tensor| tensor.contiguous())
        .collect::<Result<Vec<_>>>()?;
    let guards: Vec<_> = contiguous.iter().map(Tensor::storage_and_layout).collect();
    let mut values: [&[f32]; N] = [&[]; N];
    for (slot, (storage, layout)) in values.iter_mut().zip(&guards) {
        let Storage::Cpu(storage) = &**storage else {
            bail!("fiq's training kernels run on the CPU only")
        };
        *slot = slice(storage, layout, "backward input")?;
    }
    f(values)
}

struct Linear;

impl CustomOp3 for Linear {
    fn name(&self) -> &'static str {
        "fiq-linear"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xs_layout: &Layout,
        weight: &CpuStorage,
        weight_layout: &Layout,
        bias: &CpuStorage,
        bias_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = slice(xs, xs_layout, "linear input")?;
        let w = slice(weight, weight_layout, "linear weight")?;
        let b = slice(bias, bias_layout, "linear bias")?;
        let (rows, inputs) = xs_layout.shape().dims2()?;
        let (outputs, weight_inputs) = weight_layout.shape().dims2()?;
        if weight_inputs != inputs || b.len() != outputs {
            bail!(
                "linear: input {rows}x{inputs}, weight {outputs}x{weight_inputs}, bias {}",
                b.len()
            );
        }
        let mut out: Vec<f32> = Vec::with_capacity(rows * outputs);
        for _ in 0..rows {
            out.extend_from_slice(b);
        }
        gemm(
            Operand::Plain(x),
            Operand::Transposed(w),
            (rows, outputs, inputs),
            &mut out,
            true,
        );
        Ok((CpuStorage::F32(out), Shape::from((rows, outputs))))
    }

    fn bwd(
        &self,
        xs: &Tensor,
        weight: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (rows, inputs) = xs.dims2()?;
        let outputs = weight.dim(0)?;
        let device = xs.device();
        with_values([xs, weight, grad], |[x, w, dy]| {
            // dx = dy · W (rows × in); dW = dyᵀ · x (out × in); db = column sums of dy.
            let mut dx = vec![0f32; rows * inputs];
            gemm(
                Operand::Plain(dy),
                Operand::Plain(w),
                (rows, inputs, outputs),
                &mut dx,
                false,
            );
            let mut dw = vec![0f32; outputs * inputs];
            gemm(
                Operand::Transposed(dy),
                Operand::Plain(x),
                (outputs, inputs, rows),
                &mut dw,
                false,
            );
            let mut db = vec![0f32; outputs];
            for row in dy.chunks_exact(outputs) {
                for (sum, &g) in db.iter_mut().zip(row) {
                    *sum += g;
                }
            }
            Ok((
                Some(Tensor::from_vec(dx, (rows, inputs), device)?),
                Some(Tensor::from_vec(dw, (outputs, inputs), device)?),
                Some(Tensor::from_vec(db, outputs, device)?),
            ))
        })
    }
}

struct LayerNorm {
    eps: f32,
}

impl LayerNorm {
    /// Mean and reciprocal standard deviation of one row.
    fn statistics(&self, row: &[f32]) -> (f32, f32) {
        let n = row.len() as f32;
        let mean = row.iter().sum::<f32>() / n;
        let var = row.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / n;
        (mean, 1.0 / (var + self.eps).sqrt())
    }
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "fiq-layer-norm"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xs_layout: &Layout,
        weight: &CpuStorage,
        weight_layout: &Layout,
        bias: &CpuStorage,
        bias_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = slice(xs, xs_layout, "layer norm input")?;
        let w = slice(weight, weight_layout, "layer norm weight")?;
        let b = slice(bias, bias_layout, "layer norm bias")?;
        let width = w.len();
        if b.len() != width || width == 0 || x.len() % width != 0 {
            bail!(
                "layer norm: input {:?}, weight {width}, bias {}",
                xs_layout.shape(),
                b.len()
            );
        }
        let mut out = vec![0f32; x.len()];
        for (row, out) in x.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
            let (mean, rstd) = self.statistics(row);
            for (((o, &x), &w), &b) in out.iter_mut().zip(row).zip(w).zip(b) {
                *o = (x - mean) * rstd * w + b;
            }
        }
        Ok((CpuStorage::F32(out), xs_layout.shape().clone()))
    }

    fn bwd(
        &self,
        xs: &Tensor,
        weight: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let device = xs.device();
        with_values([xs, weight, grad], |[x, w, dy]| {
            let width = w.len();
            let mut dx = vec![0f32; x.len()];
            let mut dw = vec![0f32; width];
            let mut db = vec![0f32; width];
            let mut dxhat = vec![0f32; width];
            for ((row, dy), dx) in x
                .chunks_exact(width)
                .zip(dy.chunks_exact(width))
                .zip(dx.chunks_exact_mut(width))
            {
                let (mean, rstd) = self.statistics(row);
                // With x̂ = (x − mean)·rstd and g = dy·w: dx = rstd·(g − mean(g) − x̂·mean(g·x̂)).
                let (mut sum_g, mut sum_gx) = (0f32, 0f32);
                for i in 0..width {
                    let xhat = (row[i] - mean) * rstd;
                    dw[i] += dy[i] * xhat;
                    db[i] += dy[i];
                    dxhat[i] = dy[i] * w[i];
                    sum_g += dxhat[i];
                    sum_gx += dxhat[i] * xhat;
                }
                let (mean_g, mean_gx) = (sum_g / width as f32, sum_gx / width as f32);
                for i in 0..width {
                    let xhat = (row[i] - mean) * rstd;
                    dx[i] = rstd * (dxhat[i] - mean_g - xhat * mean_gx);
                }
            }
            Ok((
                Some(Tensor::from_vec(dx, xs.shape(), device)?),
                Some(Tensor::from_vec(dw, weight.shape(), device)?),
                Some(Tensor::from_vec(db, weight.shape(), device)?),
            ))
        })
    }
}

struct QuickGelu;

/// σ(1.702 x).
fn gate(x: f32) -> f32 {
    1.0 / (1.0 + (-1.702 * x).exp())
}

impl CustomOp1 for QuickGelu {
    fn name(&self) -> &'static str {
        "fiq-quick-gelu"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(storage, layout, "quick-gelu input")?;
        let out = x.iter().map(|&x| x * gate(x)).collect();
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        // d/dx x·σ(ax) = σ(ax) + a·x·σ(ax)·(1 − σ(ax)).
        let dx = with_values([arg, grad], |[x, dy]| {
            Ok(x.iter()
                .zip(dy)
                .map(|(&x, &dy)| {
                    let g = gate(x);
                    dy * (g + 1.702 * x * g * (1.0 - g))
                })
                .collect())
        })?;
        Ok(Some(Tensor::from_vec(dx, arg.shape(), arg.device())?))
    }
}

struct Softmax;

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "fiq-softmax"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(storage, layout, "softmax input")?;
        let width = layout.dims().last().copied().unwrap_or(0);
        if width == 0 {
            bail!("softmax of an empty last dimension");
        }
        let mut out = vec![0f32; x.len()];
        for (row, out) in x.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            for (o, &x) in out.iter_mut().zip(row) {
                *o = (x - max).exp();
                sum += *o;
            }
            out.iter_mut().for_each(|o| *o /= sum);
        }
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        // dx = y·(dy − Σ dy·y), row by row.
        let width = res.dims().last().copied().unwrap_or(1);
        let dx = with_values([res, grad], |[y, dy]| {
            let mut dx = vec![0f32; y.len()];
            for ((y, dy), dx) in y
                .chunks_exact(width)
                .zip(dy.chunks_exact(width))
                .zip(dx.chunks_exact_mut(width))
            {
                let dot: f32 = y.iter().zip(dy).map(|(y, dy)| y * dy).sum();
                for ((dx, &y), &dy) in dx.iter_mut().zip(y).zip(dy) {
                    *dx = y * (dy - dot);
                }
            }
            Ok(dx)
        })?;
        Ok(Some(Tensor::from_vec(dx, res.shape(), res.device())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn random(shape: &[usize], seed: u64) -> Var {
        let mut rng = crate::rng::SplitMix64::new(seed);
        let count = shape.iter().product();
        let data: Vec<f32> = (0..count).map(|_| rng.uniform(-2.0, 2.0)).collect();
        Var::from_tensor(&Tensor::from_vec(data, shape, &Device::Cpu).unwrap()).unwrap()
    }

    fn values(xs: &Tensor) -> Vec<f32> {
        xs.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    fn assert_close(ours: &Tensor, theirs: &Tensor, what: &str) {
        let (a, b) = (values(ours), values(theirs));
        assert_eq!(a.len(), b.len());
        let worst = a
            .iter()
            .zip(&b)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 2e-5, "{what}: largest difference {worst}");
    }

    /// Asserts that `ours` equals `theirs` (candle's ops on the same inputs) and that the gradients of
    /// both with respect to each of `inputs` agree, under a loss that weights every output differently
    /// (so each gradient entry is tested).
    fn assert_same_function(ours: &Tensor, theirs: &Tensor, inputs: &[(&Var, &str)]) {
        assert_close(ours, theirs, "forward");
        let weights = random(ours.dims(), 99);
        let loss = |ys: &Tensor| (ys * weights.as_tensor()).unwrap().sum_all().unwrap();
        let (g1, g2) = (
            loss(ours).backward().unwrap(),
            loss(theirs).backward().unwrap(),
        );
        for (var, name) in inputs {
            assert_close(g1.get(var).unwrap(), g2.get(var).unwrap(), name);
        }
    }

    #[test]
    fn layer_norm_and_its_gradients_match_candles_composed_ops() {
        let x = random(&[3, 5, 16], 1);
        let w = random(&[16], 2);
        let b = random(&[16], 3);
        let ours = layer_norm(x.as_tensor(), w.as_tensor(), b.as_tensor(), 1e-5).unwrap();
        let theirs =
            candle_nn::ops::layer_norm_slow(x.as_tensor(), w.as_tensor(), b.as_tensor(), 1e-5)
                .unwrap();
        assert_same_function(
            &ours,
            &theirs,
            &[(&x, "dx"), (&w, "dweight"), (&b, "dbias")],
        );
    }

    #[test]
    fn linear_and_its_gradients_match_candles_matmul() {
        let x = random(&[6, 5], 7);
        let w = random(&[4, 5], 8);
        let b = random(&[4], 9);
        let ours = linear(x.as_tensor(), w.as_tensor(), b.as_tensor()).unwrap();
        let theirs = x
            .as_tensor()
            .matmul(&w.as_tensor().t().unwrap())
            .unwrap()
            .broadcast_add(b.as_tensor())
            .unwrap();
        assert_same_function(
            &ours,
            &theirs,
            &[(&x, "dx"), (&w, "dweight"), (&b, "dbias")],
        );
    }

    #[test]
    fn quick_gelu_and_its_gradient_match_candles_composed_ops() {
        let x = random(&[4, 9], 11);
        let ours = quick_gelu(x.as_tensor()).unwrap();
        let theirs = (x.as_tensor()
            * candle_nn::ops::sigmoid(&(x.as_tensor() * 1.702).unwrap()).unwrap())
        .unwrap();
        assert_same_function(&ours, &theirs, &[(&x, "dx")]);
    }

    #[test]
    fn softmax_and_its_gradient_match_candles_composed_ops() {
        let x = random(&[2, 3, 7], 5);
        let ours = softmax_last_dim(x.as_tensor()).unwrap();
        let theirs = candle_nn::ops::softmax(x.as_tensor(), D::Minus1).unwrap();
        assert_same_function(&ours, &theirs, &[(&x, "dx")]);
    }
}
