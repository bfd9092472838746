//! AdamW with checkpointable state, global-norm gradient clipping, and the warmup + cosine schedule.
//!
//! The update is exactly `candle_nn::AdamW`'s (decoupled weight decay, bias-corrected moments; a test checks
//! step-for-step equality), re-implemented because candle keeps its moment estimates private (a
//! checkpoint must hold them for a resumed run to continue exactly where it stopped) and because its
//! tensor arithmetic allocates eight parameter-sized tensors per variable per step. For the text tower's
//! 49,408-token embedding that alone was a large share of a CPU step (page faults and page clearing), so on
//! the CPU the update runs in place, one pass per moment and one for the parameter, with the same f32
//! operations in the same order (bit for bit the tensor path's, which other devices keep), and clipping
//! reads the gradients instead of writing scaled copies.

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, InplaceOp2, InplaceOp3, Layout, Storage, Tensor, Var};
use std::collections::HashMap;

pub use candle_nn::ParamsAdamW;

/// AdamW over named parameters.
#[derive(Debug)]
pub struct AdamW {
    params: ParamsAdamW,
    step: u64,
    vars: Vec<Slot>,
}

/// One parameter with its two moment estimates.
#[derive(Debug)]
struct Slot {
    name: String,
    theta: Var,
    m: Var,
    v: Var,
    /// Whether weight decay applies (biases, norms and embeddings are usually exempt).
    decayed: bool,
}

impl AdamW {
    /// An optimizer with zero moments for `vars`, weight decay on every one.
    pub fn new(vars: &[(String, Var)], params: ParamsAdamW) -> candle_core::Result<AdamW> {
        Self::with_decay(vars, params, |_, _| true)
    }

    /// An optimizer with zero moments for `vars`; weight decay applies where `decayed(name, var)`.
    pub fn with_decay(
        vars: &[(String, Var)],
        params: ParamsAdamW,
        decayed: impl Fn(&str, &Var) -> bool,
    ) -> candle_core::Result<AdamW> {
        let vars = vars
            .iter()
            .map(|(name, var)| {
                let zeros = || Var::zeros(var.shape(), var.dtype(), var.device());
                Ok(Slot {
                    name: name.clone(),
                    theta: var.clone(),
                    m: zeros()?,
                    v: zeros()?,
                    decayed: decayed(name, var),
                })
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(AdamW {
            params,
            step: 0,
            vars,
        })
    }

    /// Sets the learning rate of the next step.
    pub fn set_learning_rate(&mut self, lr: f64) {
        self.params.lr = lr;
    }

    /// One update from `grads`; parameters without a gradient are left alone.
    #[cfg(test)]
    pub fn step(&mut self, grads: &GradStore) -> candle_core::Result<()> {
        self.update(grads, 1.0)
    }

    /// Gradient clipping then [`AdamW::step`], without writing the scaled gradients: when the global L2
    /// norm of the gradients exceeds `max_norm`, each is scaled by `max_norm / norm` inside the update
    /// (as PyTorch's `clip_grad_norm_` before `step`). Returns the norm before clipping.
    pub fn step_clipped(&mut self, grads: &GradStore, max_norm: f64) -> candle_core::Result<f64> {
        let norm = global_norm(grads, self.vars.iter().map(|slot| &slot.theta))?;
        self.update(grads, clip_scale(norm, max_norm))?;
        Ok(norm)
    }

    fn update(&mut self, grads: &GradStore, grad_scale: f64) -> candle_core::Result<()> {
        self.step += 1;
        let ParamsAdamW {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.params;
        let scale_m = 1.0 / (1.0 - beta1.powi(self.step as i32));
        let scale_v = 1.0 / (1.0 - beta2.powi(self.step as i32));
        // The constants as candle's `tensor * f64` rounds them (`affine` casts to the element type).
        let first = Moment {
            keep: beta1 as f32,
            take: (1.0 - beta1) as f32,
            grad_scale: grad_scale as f32,
            square: false,
        };
        let second = Moment {
            keep: beta2 as f32,
            take: (1.0 - beta2) as f32,
            square: true,
            ..first
        };
        for slot in &self.vars {
            let Slot { theta, m, v, .. } = slot;
            let Some(g) = grads.get(theta) else { continue };
            let weight_decay = if slot.decayed { weight_decay } else { 0.0 };
            let apply = Apply {
                scale_m: scale_m as f32,
                scale_v: scale_v as f32,
                eps: eps as f32,
                decay: (1.0 - lr * weight_decay) as f32,
                lr: lr as f32,
            };
            if theta.device().is_cpu() && theta.dtype() == candle_core::DType::F32 {
                let g = g.contiguous()?;
                m.inplace_op2(&g, &first)?;
                v.inplace_op2(&g, &second)?;
                theta.inplace_op3(m.as_tensor(), v.as_tensor(), &apply)?;
                continue;
            }
            let g = match grad_scale {
                1.0 => g.clone(),
                scale => (g * scale)?,
            };
            let next_m = ((m.as_tensor() * beta1)? + (&g * (1.0 - beta1))?)?;
            let next_v = ((v.as_tensor() * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
            let adjusted = ((&next_m * scale_m)? / ((&next_v * scale_v)?.sqrt()? + eps)?)?;
            let next_theta = ((theta.as_tensor() * (1.0 - lr * weight_decay))? - (adjusted * lr)?)?;
            m.set(&next_m)?;
            v.set(&next_v)?;
            theta.set(&next_theta)?;
        }
        Ok(())
    }

    /// The moments as named tensors (`NAME.m`, `NAME.v`) and the step count, for a checkpoint.
    pub fn state(&self) -> candle_core::Result<(HashMap<String, Tensor>, u64)> {
        let mut tensors = HashMap::new();
        for Slot { name, m, v, .. } in &self.vars {
            tensors.insert(format!("{name}.m"), m.as_tensor().copy()?);
            tensors.insert(format!("{name}.v"), v.as_tensor().copy()?);
        }
        Ok((tensors, self.step))
    }

    /// Restores moments and step count saved by [`AdamW::state`]; names the first moment that is missing
    /// or misshapen.
    pub fn restore(&mut self, tensors: &HashMap<String, Tensor>, step: u64) -> Result<(), String> {
        for Slot {
            name, theta, m, v, ..
        } in &self.vars
        {
            for (suffix, moment) in [("m", m), ("v", v)] {
                let key = format!("{name}.{suffix}");
                let saved = tensors
                    .get(&key)
                    .ok_or_else(|| format!("optimizer state lacks {key}"))?;
                if saved.dims() != theta.dims() {
                    return Err(format!(
                        "optimizer state {key} has shape {:?}, the parameter {:?}",
                        saved.dims(),
                        theta.dims()
                    ));
                }
                moment.set(saved).map_err(|error| error.to_string())?;
            }
        }
        self.step = step;
        Ok(())
    }
}

/// Scales every gradient by `max_norm / norm` when their global L2 norm exceeds `max_norm` (as PyTorch's
/// `clip_grad_norm_`); returns the norm before clipping. (The training loops use
/// [`AdamW::step_clipped`], which scales inside the update instead of writing scaled copies.)
#[cfg(test)]
pub fn clip_grad_norm(
    grads: &mut GradStore,
    vars: &[(String, Var)],
    max_norm: f64,
) -> candle_core::Result<f64> {
    let norm = global_norm(grads, vars.iter().map(|(_, var)| var))?;
    let scale = clip_scale(norm, max_norm);
    if scale != 1.0 {
        for (_, var) in vars {
            if let Some(g) = grads.get(var) {
                let clipped = (g * scale)?;
                grads.insert(var.as_tensor(), clipped);
            }
        }
    }
    Ok(norm)
}

/// The factor clipping to `max_norm` applies to gradients of global norm `norm` (1 when within it).
fn clip_scale(norm: f64, max_norm: f64) -> f64 {
    if norm > max_norm && norm > 0.0 {
        max_norm / (norm + 1e-6)
    } else {
        1.0
    }
}

/// The L2 norm of the gradients of `vars` together, summed in f64; CPU gradients are read in place.
fn global_norm<'a>(
    grads: &GradStore,
    vars: impl Iterator<Item = &'a Var>,
) -> candle_core::Result<f64> {
    let mut total = 0.0f64;
    for var in vars {
        let Some(g) = grads.get(var) else { continue };
        let (storage, layout) = g.storage_and_layout();
        if let (Storage::Cpu(CpuStorage::F32(data)), Some((start, end))) =
            (&*storage, layout.contiguous_offsets())
        {
            total += data[start..end]
                .iter()
                .map(|&x| f64::from(x) * f64::from(x))
                .sum::<f64>();
            continue;
        }
        drop(storage);
        total += f64::from(g.sqr()?.sum_all()?.to_scalar::<f32>()?);
    }
    Ok(total.sqrt())
}

/// `moment = keep · moment + take · g'` in place, where `g'` is the gradient times `grad_scale` (squared
/// for the second moment): the tensor path's operations, element by element.
#[derive(Clone, Copy)]
struct Moment {
    keep: f32,
    take: f32,
    grad_scale: f32,
    square: bool,
}

impl InplaceOp2 for Moment {
    fn name(&self) -> &'static str {
        "adamw-moment"
    }

    fn cpu_fwd(
        &self,
        moment: &mut CpuStorage,
        moment_layout: &Layout,
        grad: &CpuStorage,
        grad_layout: &Layout,
    ) -> candle_core::Result<()> {
        let moment = f32_mut(moment, moment_layout, "moment")?;
        let grad = f32_ref(grad, grad_layout, "gradient")?;
        check_lengths(moment.len(), grad.len())?;
        for (m, &g) in moment.iter_mut().zip(grad) {
            let g = if self.grad_scale == 1.0 {
                g
            } else {
                g * self.grad_scale
            };
            let g = if self.square { g * g } else { g };
            *m = *m * self.keep + g * self.take;
        }
        Ok(())
    }
}

/// `theta = decay · theta − lr · (scale_m · m) / (√(scale_v · v) + eps)` in place.
struct Apply {
    scale_m: f32,
    scale_v: f32,
    eps: f32,
    decay: f32,
    lr: f32,
}

impl InplaceOp3 for Apply {
    fn name(&self) -> &'static str {
        "adamw-apply"
    }

    fn cpu_fwd(
        &self,
        theta: &mut CpuStorage,
        theta_layout: &Layout,
        m: &CpuStorage,
        m_layout: &Layout,
        v: &CpuStorage,
        v_layout: &Layout,
    ) -> candle_core::Result<()> {
        let theta = f32_mut(theta, theta_layout, "parameter")?;
        let (m, v) = (
            f32_ref(m, m_layout, "moment")?,
            f32_ref(v, v_layout, "moment")?,
        );
        check_lengths(theta.len(), m.len())?;
        check_lengths(theta.len(), v.len())?;
        for ((t, &m), &v) in theta.iter_mut().zip(m).zip(v) {
            let adjusted = (m * self.scale_m) / ((v * self.scale_v).sqrt() + self.eps);
            *t = *t * self.decay - adjusted * self.lr;
        }
        Ok(())
    }
}

fn f32_ref<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    what: &str,
) -> candle_core::Result<&'a [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (CpuStorage::F32(data), Some((start, end))) => Ok(&data[start..end]),
        _ => candle_core::bail!("AdamW: the {what} is not a contiguous f32 tensor"),
    }
}

fn f32_mut<'a>(
    storage: &'a mut CpuStorage,
    layout: &Layout,
    what: &str,
) -> candle_core::Result<&'a mut [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (CpuStorage::F32(data), Some((start, end))) => Ok(&mut data[start..end]),
        _ => candle_core::bail!("AdamW: the {what} is not a contiguous f32 tensor"),
    }
}

fn check_lengths(a: usize, b: usize) -> candle_core::Result<()> {
    if a != b {
        candle_core::bail!("AdamW: a parameter of {a} values has a gradient or moment of {b}");
    }
    Ok(())
}

/// Learning rate at `step` (0-based) of `total`: linear warmup from 0 over `warmup` steps to `peak`, then
/// cosine decay to 0 at `total` (with `warmup` 2 of 10 steps: 0.5, 1.0, ..., under 0.05 at step 9; see
/// the training tests).
pub fn learning_rate(step: u64, total: u64, warmup: u64, peak: f64) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1) as f64;
    let progress = ((step - warmup) as f64 / span).min(1.0);
    peak * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}
