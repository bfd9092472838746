//! AdamW with checkpointable state, global-norm gradient clipping, and the warmup + cosine schedule.
//!
//! The update is exactly `candle_nn::AdamW`'s (decoupled weight decay, bias-corrected moments; a test checks
//! step-for-step equality), re-implemented only because candle keeps its moment estimates private: a
//! checkpoint must hold them for a resumed run to continue exactly where it stopped.

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use std::collections::HashMap;

pub use candle_nn::ParamsAdamW;

/// AdamW over named parameters.
#[derive(Debug)]
pub struct AdamW {
    params: ParamsAdamW,
    step: u64,
    vars: Vec<(String, Var, Var, Var)>,
}

impl AdamW {
    /// An optimizer with zero moments for `vars`.
    pub fn new(vars: &[(String, Var)], params: ParamsAdamW) -> candle_core::Result<AdamW> {
        let vars = vars
            .iter()
            .map(|(name, var)| {
                let zeros = || Var::zeros(var.shape(), var.dtype(), var.device());
                Ok((name.clone(), var.clone(), zeros()?, zeros()?))
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
    pub fn step(&mut self, grads: &GradStore) -> candle_core::Result<()> {
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
        for (_, theta, m, v) in &self.vars {
            let Some(g) = grads.get(theta) else { continue };
            let next_m = ((m.as_tensor() * beta1)? + (g * (1.0 - beta1))?)?;
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
        for (name, _, m, v) in &self.vars {
            tensors.insert(format!("{name}.m"), m.as_tensor().copy()?);
            tensors.insert(format!("{name}.v"), v.as_tensor().copy()?);
        }
        Ok((tensors, self.step))
    }

    /// Restores moments and step count saved by [`AdamW::state`]; names the first moment that is missing
    /// or misshapen.
    pub fn restore(&mut self, tensors: &HashMap<String, Tensor>, step: u64) -> Result<(), String> {
        for (name, theta, m, v) in &self.vars {
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
/// `clip_grad_norm_`); returns the norm before clipping.
pub fn clip_grad_norm(
    grads: &mut GradStore,
    vars: &[(String, Var)],
    max_norm: f64,
) -> candle_core::Result<f64> {
    let mut total = 0.0f64;
    for (_, var) in vars {
        if let Some(g) = grads.get(var) {
            total += f64::from(g.sqr()?.sum_all()?.to_scalar::<f32>()?);
        }
    }
    let norm = total.sqrt();
    if norm > max_norm && norm > 0.0 {
        let scale = max_norm / (norm + 1e-6);
        for (_, var) in vars {
            if let Some(g) = grads.get(var) {
                let clipped = (g * scale)?;
                grads.insert(var.as_tensor(), clipped);
            }
        }
    }
    Ok(norm)
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
