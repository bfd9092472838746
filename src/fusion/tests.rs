use super::*;

fn assert_close(actual: &[f32], expected: &[f32]) {
    assert_eq!(actual.len(), expected.len());
    for (index, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() < 1e-6,
            "index {index}: {a} vs {e} (whole: {actual:?})"
        );
    }
}

#[test]
fn sum_normalizes_inputs_then_result() {
    // image (3, 4) -> (0.6, 0.8); text (0, 2) -> (0, 1); sum (0.6, 1.8), norm sqrt(3.6).
    let fused = fuse(&[3.0, 4.0], &[0.0, 2.0], &Fusion::Sum).unwrap();
    let norm = 3.6f32.sqrt();
    assert_close(&fused, &[0.6 / norm, 1.8 / norm]);
    assert_eq!(
        fused,
        fuse(&[3.0, 4.0], &[0.0, 2.0], &Fusion::Weighted { alpha: 0.5 }).unwrap()
    );
}

#[test]
fn untrained_learned_fusions_start_at_sum() {
    let image = [3.0, -1.0, 0.5, 2.0];
    let text = [0.0, 2.0, -1.0, 1.0];
    let sum = fuse(&image, &text, &Fusion::Sum).unwrap();
    for config in [CombinerConfig::combiner(4), CombinerConfig::projection(4)] {
        let model = std::sync::Arc::new(Combiner::untrained(config, 7).unwrap());
        assert_close(
            &fuse(&image, &text, &Fusion::Combiner(model)).unwrap(),
            &sum,
        );
    }
}

#[test]
fn weighted_sum_follows_alpha() {
    let image = [1.0, 0.0, 0.0];
    let text = [0.0, 5.0, 0.0];
    assert_close(
        &fuse(&image, &text, &Fusion::Weighted { alpha: 0.0 }).unwrap(),
        &[1.0, 0.0, 0.0],
    );
    assert_close(
        &fuse(&image, &text, &Fusion::Weighted { alpha: 1.0 }).unwrap(),
        &[0.0, 1.0, 0.0],
    );
    // 0.75 * (1,0,0) + 0.25 * (0,1,0) = (0.75, 0.25), norm sqrt(0.625).
    let norm = 0.625f32.sqrt();
    assert_close(
        &fuse(&image, &text, &Fusion::Weighted { alpha: 0.25 }).unwrap(),
        &[0.75 / norm, 0.25 / norm, 0.0],
    );
}

#[test]
fn bad_inputs_are_typed_errors() {
    let cases: [(&[f32], &[f32], Fusion, FusionError); 7] = [
        (
            &[1.0, 0.0],
            &[1.0],
            Fusion::Sum,
            FusionError::DimensionMismatch {
                row: 0,
                image: 2,
                text: 1,
            },
        ),
        (
            &[1.0, f32::NAN],
            &[1.0, 0.0],
            Fusion::Sum,
            FusionError::NotFinite {
                row: 0,
                which: "image",
                index: 1,
            },
        ),
        (
            &[1.0, 0.0],
            &[f32::INFINITY, 0.0],
            Fusion::Sum,
            FusionError::NotFinite {
                row: 0,
                which: "text",
                index: 0,
            },
        ),
        (
            &[0.0, 0.0],
            &[1.0, 0.0],
            Fusion::Sum,
            FusionError::ZeroVector {
                row: 0,
                which: "image",
            },
        ),
        (
            &[1.0, 0.0],
            &[-2.0, 0.0],
            Fusion::Sum,
            FusionError::ZeroVector {
                row: 0,
                which: "fused",
            },
        ),
        (
            &[1.0, 0.0],
            &[0.0, 1.0],
            Fusion::Weighted { alpha: 1.5 },
            FusionError::InvalidAlpha { alpha: 1.5 },
        ),
        (
            &[],
            &[],
            Fusion::Sum,
            FusionError::ZeroVector {
                row: 0,
                which: "image",
            },
        ),
    ];
    for (image, text, method, expected) in cases {
        assert_eq!(
            fuse(image, text, &method).unwrap_err(),
            expected,
            "{image:?} {text:?} {method:?}"
        );
    }
    let nan_alpha = fuse(&[1.0], &[1.0], &Fusion::Weighted { alpha: f32::NAN }).unwrap_err();
    assert!(matches!(nan_alpha, FusionError::InvalidAlpha { alpha } if alpha.is_nan()));
}

#[test]
fn batch_matches_single_rows_and_names_the_bad_row() {
    let images = [1.0, 0.0, 0.0, 1.0, 2.0, 2.0];
    let texts = [0.0, 1.0, 1.0, 1.0, -1.0, 3.0];
    let method = Fusion::Weighted { alpha: 0.3 };
    let batch = fuse_batch(&images, &texts, 2, &method).unwrap();
    for row in 0..3 {
        let single = fuse(
            &images[row * 2..row * 2 + 2],
            &texts[row * 2..row * 2 + 2],
            &method,
        )
        .unwrap();
        assert_close(&batch[row * 2..row * 2 + 2], &single);
    }
    let mut bad = texts;
    bad[5] = f32::NAN;
    assert_eq!(
        fuse_batch(&images, &bad, 2, &method).unwrap_err(),
        FusionError::NotFinite {
            row: 2,
            which: "text",
            index: 1
        }
    );
    assert!(matches!(
        fuse_batch(&images, &texts, 4, &method),
        Err(FusionError::BatchShape { which: "image", .. })
    ));
    assert!(matches!(
        fuse_batch(&images, &texts[..4], 2, &method),
        Err(FusionError::DimensionMismatch { row: 2, .. })
    ));
    assert!(matches!(
        fuse_batch(&images, &texts, 0, &method),
        Err(FusionError::BatchShape { .. })
    ));
}
