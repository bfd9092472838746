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
    assert_eq!(out.len(), m * n, "out must be m × n");
    if m == 0 || n == 0 {
        return;
    }
    let int = |v: usize| c_int::try_from(v).expect("matrix dimension fits the BLAS integer");
    // BLAS is column-major: the row-major m×n `out` is the column-major n×m matrix outᵀ = b · aᵀ.
    // `b` (row-major n×k) is a column-major k×n matrix, used transposed ('T', lda = k); `a` (row-major
    // m×k) is a column-major k×m matrix, used as is ('N', ldb = k); ldc = n.
    let (transa, transb) = (b'T' as c_char, b'N' as c_char);
    let (bm, bn, bk) = (int(n), int(m), int(k));
    let (alpha, beta) = (1.0f32, if accumulate { 1.0f32 } else { 0.0 });
    // SAFETY: sgemm_ reads an n×k matrix from `b` (n*k values), a k×m matrix from `a` (m*k values) and
    // reads/writes n×m values of `out` (m*n values, asserted above); the leading dimensions equal the
    // row lengths, so no access leaves the slices. Every scalar is passed by pointer to a local that
    // outlives the call, as the Fortran ABI requires, and `out` (a unique borrow) aliases neither input.
    unsafe {
        sgemm_(
            &transa,
            &transb,
            &bm,
            &bn,
            &bk,
            &alpha,
            b.as_ptr(),
            &bk,
            a.as_ptr(),
            &bk,
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
    use super::matmul_transposed;

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
