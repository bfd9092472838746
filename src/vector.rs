//! fiq's one L2 normalization, and the inner product. The rule, everywhere (the writer, queries, fusion,
//! held-out queries): a vector with a non-finite component or zero length has no direction and is
//! refused with a message saying which; it is never silently left as it is.

/// The L2 norm, accumulated in f64 (inputs that are not yet normalized can be large).
pub fn l2_norm(v: &[f32]) -> f64 {
    v.iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt()
}

/// Why a vector could not be normalized: a non-finite component, or no length.
pub fn direction_problem(v: &[f32]) -> Option<String> {
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Some(format!(
            "component {i} is {} (vectors must be finite)",
            v[i]
        ));
    }
    let norm = l2_norm(v);
    if norm == 0.0 || !norm.is_finite() {
        return Some("the vector has zero length and no direction".into());
    }
    None
}

/// Scales `v` to unit length, or says why it has no direction (see the module's rule).
pub fn normalize_in_place(v: &mut [f32]) -> Result<(), String> {
    if let Some(problem) = direction_problem(v) {
        return Err(problem);
    }
    let scale = (1.0 / l2_norm(v)) as f32;
    v.iter_mut().for_each(|x| *x *= scale);
    Ok(())
}

/// Normalizes each `dim`-long row of `data`; the first row without a direction fails the call, with
/// its number.
pub fn normalize_rows(data: &mut [f32], dim: usize) -> Result<(), (usize, String)> {
    for (row, values) in data.chunks_exact_mut(dim.max(1)).enumerate() {
        normalize_in_place(values).map_err(|problem| (row, problem))?;
    }
    Ok(())
}

/// Inner product of two equally long vectors.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent accumulators let the compiler vectorize without reassociating floats itself.
    let mut acc = [0.0f32; 8];
    let chunks_a = a.chunks_exact(8);
    let chunks_b = b.chunks_exact(8);
    let tail: f32 = chunks_a
        .remainder()
        .iter()
        .zip(chunks_b.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (ca, cb) in chunks_a.zip(chunks_b) {
        for i in 0..8 {
            acc[i] += ca[i] * cb[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_refuses_what_has_no_direction() {
        let mut v = [3.0, 4.0];
        normalize_in_place(&mut v).unwrap();
        assert_eq!(v, [0.6, 0.8]);
        assert!(normalize_in_place(&mut [0.0, 0.0])
            .unwrap_err()
            .contains("zero length"));
        assert!(normalize_in_place(&mut [1.0, f32::NAN])
            .unwrap_err()
            .contains("component 1"));
    }
}
