//! The one BLAS routine fiq calls: single-precision matrix product from the BLAS that FAISS already links
//! (`-lblas`, OpenBLAS on the build machines). On 2 cores it ran about twice as fast as the `gemm`
//! crate's kernels for the shapes fiq multiplies (exact search, CLIP's linear layers; BENCHMARKS.md).

use std::ffi::{c_char, c_int};

/// `out = a · bᵀ` (or `out += a · bᵀ` when `accumulate`), all row-major: `a` is m×k, `b` is n×k, `out`
/// is m×n. Both inputs are read with rows of length `k`, as checkpoints store weights and indexes store
/// vectors, so neither needs a transposed copy.
///
/// # Panics
/// When the slice lengths do not match m×k, n×k and m×n for one m and n, or a size exceeds `c_int`.
pub(crate) fn matmul_transposed(a: &[f32], b: &[f32], k: usize, out: &mut [f32], accumulate: bool) {
    assert!(
        k > 0 && a.len() % k == 0 && b.len() % k == 0,
        "a and b must have rows of length k"
    );
    let (m, n) = (a.len() / k, b.len() / k);
    gemm(
        Operand::Plain(a),
        Operand::Transposed(b),
        (m, n, k),
        out,
        accumulate,
    );
}

/// A row-major matrix operand of [`gemm`]: used as stored, or transposed (read in place, not copied).
#[derive(Clone, Copy)]
pub(crate) enum Operand<'a> {
    /// The stored matrix.
    Plain(&'a [f32]),
    /// The transpose of the stored matrix.
    Transposed(&'a [f32]),
}

/// `out = op(a) · op(b)` (or `out +=` when `accumulate`), row-major, with `(m, n, k)` the shape: op(a) is
/// m×k, op(b) is k×n, `out` is m×n. A transposed operand is read in place.
///
/// # Panics
/// When a slice's length is not its shape's, or a size exceeds `c_int`.
pub(crate) fn gemm(
    a: Operand<'_>,
    b: Operand<'_>,
    (m, n, k): (usize, usize, usize),
    out: &mut [f32],
    accumulate: bool,
) {
    let (a, a_transposed) = match a {
        Operand::Plain(a) => (a, false),
        Operand::Transposed(a) => (a, true),
    };
    let (b, b_transposed) = match b {
        Operand::Plain(b) => (b, false),
        Operand::Transposed(b) => (b, true),
    };
    assert_eq!(a.len(), m * k, "a must hold m × k values");
    assert_eq!(b.len(), k * n, "b must hold k × n values");
    assert_eq!(out.len(), m * n, "out must be m × n");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            out.fill(0.0);
        }
        return;
    }
    let int = |v: usize| c_int::try_from(v).expect("matrix dimension fits the BLAS integer");
    // BLAS is column-major, and a row-major r×c matrix is the column-major c×r matrix of the same
    // memory. So the row-major m×n `out` is the column-major outᵀ = op(b)ᵀ · op(a)ᵀ, n×m with ldc = n.
    // op(b)ᵀ: a plain row-major k×n `b` is already that n×k matrix ('N', ld n); a transposed one is
    // stored n×k row-major, i.e. column-major k×n, used transposed ('T', ld k). Likewise op(a)ᵀ (k×m):
    // plain `a` (row-major m×k) is it as stored ('N', ld k); transposed `a` (row-major k×m) is used
    // transposed ('T', ld m).
    let (flag_b, ld_b) = match b_transposed {
        false => (b'N' as c_char, int(n)),
        true => (b'T' as c_char, int(k)),
    };
    let (flag_a, ld_a) = match a_transposed {
        false => (b'N' as c_char, int(k)),
        true => (b'T' as c_char, int(m)),
    };
    let (bm, bn, bk) = (int(n), int(m), int(k));
    let (alpha, beta) = (1.0f32, if accumulate { 1.0f32 } else { 0.0 });
    // SAFETY: sgemm_ reads op(b)ᵀ (n×k values of `b`, k*n asserted above) and op(a)ᵀ (k×m values of `a`,
    // m*k asserted) with leading dimensions equal to their stored row lengths, and reads/writes n×m
    // values of `out` (m*n asserted, ldc = n), so no access leaves a slice. Every scalar is passed by
    // pointer to a local that outlives the call, as the Fortran ABI requires, and `out` (a unique
    // borrow) aliases neither input.
    unsafe {
        sgemm_(
            &flag_b,
            &flag_a,
            &bm,
            &bn,
            &bk,
            &alpha,
            b.as_ptr(),
            &ld_b,
            a.as_ptr(),
            &ld_a,
            &beta,
            out.as_mut_ptr(),
            &bm,
        );
    }
}

extern "C" {
    /// Fortran BLAS (LP64) single-precision matrix product: C := alpha·op(A)·op(B) + beta·C.
    fn sgemm_(
        transa: *const c_char,
        transb: *const c_char,
        m: *const c_int,
        n: *const c_int,
        k: *const c_int,
        alpha: *const f32,
        a: *const f32,
        lda: *const c_int,
        b: *const f32,
        ldb: *const c_int,
        beta: *const f32,
        c: *mut f32,
        ldc: *const c_int,
    );
}

#[cfg(test)]
mod tests {
    use super::{gemm, matmul_transposed, Operand};

    /// The textbook product of row-major m×k `a` and k×n `b`.
    fn reference(a: &[f32], b: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        out
    }

    fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        let mut out = vec![0.0; x.len()];
        for r in 0..rows {
            for c in 0..cols {
                out[c * rows + r] = x[r * cols + c];
            }
        }
        out
    }

    #[test]
    fn every_transpose_combination_matches_the_textbook_product() {
        let (m, n, k) = (3, 4, 5);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.71).cos()).collect();
        let expected = reference(&a, &b, m, n, k);
        let (at, bt) = (transpose(&a, m, k), transpose(&b, k, n));
        for (left, right) in [
            (Operand::Plain(&a), Operand::Plain(&b)),
            (Operand::Transposed(&at), Operand::Plain(&b)),
            (Operand::Plain(&a), Operand::Transposed(&bt)),
            (Operand::Transposed(&at), Operand::Transposed(&bt)),
        ] {
            let mut out = vec![1.0; m * n];
            gemm(left, right, (m, n, k), &mut out, false);
            for (x, y) in out.iter().zip(&expected) {
                assert!((x - y).abs() < 1e-5, "{out:?} vs {expected:?}");
            }
        }
    }

    #[test]
    fn matches_the_textbook_product_and_accumulates() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2×3
        let b = [1.0, 0.0, -1.0, 0.5, 0.5, 0.5, 2.0, 1.0, 0.0, 0.0, 0.0, 1.0]; // 4×3
        let mut out = [0.0f32; 8];
        matmul_transposed(&a, &b, 3, &mut out, false);
        assert_eq!(out, [-2.0, 3.0, 4.0, 3.0, -2.0, 7.5, 13.0, 6.0]);
        matmul_transposed(&a, &b, 3, &mut out, true);
        assert_eq!(out, [-4.0, 6.0, 8.0, 6.0, -4.0, 15.0, 26.0, 12.0]);
    }
}
