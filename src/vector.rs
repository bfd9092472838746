//! Small vector helpers shared by the index, fusion and evaluation.

/// Scales `v` to unit length. Refuses a vector with a non-finite component or zero length, since neither
/// has a direction; the message says which.
pub fn normalize_in_place(v: &mut [f32]) -> Result<(), String> {
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(format!(
            "component {i} is {} (vectors must be finite)",
            v[i]
        ));
    }
    let norm = v
        .iter()
        .map(|x| (*x as f64) * (*x as f64))
        .sum::<f64>()
        .sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return Err("the vector has zero length and no direction".into());
    }
    let scale = (1.0 / norm) as f32;
    v.iter_mut().for_each(|x| *x *= scale);
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
