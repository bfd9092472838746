//! Matrix products in bfloat16 with f32 accumulation, on CPUs with AVX512-BF16 (AMD Zen 4 and later,
//! Intel Cooper Lake and Sapphire Rapids and later), detected at run time.
//!
//! Neither candle's CPU matmul nor the BLAS that FAISS links (Debian's OpenBLAS 0.3.21 is built without
//! `sbgemm`) multiplies in bf16, so this is fiq's own kernel. It is the one instruction that matters,
//! `vdpbf16ps`: each of a register's 16 f32 lanes accumulates the products of one *pair* of bf16 values,
//! so both operands are stored as pairs along the shared dimension `k`:
//! - the left matrix (activations, f32) is rounded to bf16 on every call, row-major, two values per `u32`;
//! - the right matrix (a layer's weight, `n × k` as checkpoints store it) is rounded and packed once, in
//!   groups of [`PANELS`] × 16 output columns, so that one micro-tile reads it as a single stream.
//!
//! A micro-tile keeps [`ROWS`] × [`PANELS`] accumulators (8 × 3 of the 32 registers) and, per pair of
//! `k`, loads three weight registers, broadcasts eight activation pairs and issues 24 `vdpbf16ps`. Rows
//! are split into blocks of [`ROW_BLOCK`] across the rayon pool.
//!
//! Where the CPU also has AMX (Intel Sapphire Rapids and later) and `k` is a multiple of 32 (every
//! layer of the CLIP and BLIP checkpoints fiq loads), the same packed weights go through the tile units
//! instead (`amx.rs`), with the same rounding and f32 accumulation.
//!
//! Rounding: inputs are rounded to nearest-even bf16 (8 significant bits); products and sums are f32.
//! The relative error of a dot product is therefore about 2⁻⁸·√k for random signs, far below f16's
//! overflow risk; the encoder's parity tolerance is stated and tested where the encoder uses this.

use rayon::prelude::*;

mod amx;

/// f32 lanes of a 512-bit register: the output columns of one panel.
const LANES: usize = 16;
/// Output rows of a micro-tile.
const ROWS: usize = 8;
/// Panels (of [`LANES`] columns) of a micro-tile.
const PANELS: usize = 3;
/// Rows of one parallel task: its activation pairs (64 × k/2 × 4 bytes, 96 KiB at k = 768) stay in L2
/// while every weight group streams past them.
const ROW_BLOCK: usize = 64;
/// Rows of one task of [`two_layers`]: 32 rows of ViT-B/32's MLP keep 384 KiB of hidden activations and
/// 192 KiB of their pairs, within a 1 MiB L2.
const MLP_ROW_BLOCK: usize = 32;

/// Whether this CPU runs the kernel: AVX-512 Foundation and AVX512-BF16.
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A weight matrix (`n × k`, row-major f32, as checkpoints store linear layers) rounded to bf16 and laid
/// out for the kernel. Only constructible where [`available`] is true, so holding one proves the CPU
/// can multiply with it.
pub(crate) struct PackedBf16 {
    n: usize,
    k: usize,
    /// `k` rounded up to pairs.
    pairs: usize,
    /// Group `g` (columns `48g..48g+48`) starts at `g · PANELS · LANES · pairs`; inside it, pair `p` of
    /// panel `j`, lane `l` is at `(p · panels_in_group + j) · LANES + l` and holds columns
    /// `48g + 16j + l`'s values `2p` (low half) and `2p + 1` (high half). Zero past `n` and `k`.
    data: Vec<u32>,
}

impl std::fmt::Debug for PackedBf16 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedBf16")
            .field("n", &self.n)
            .field("k", &self.k)
            .finish_non_exhaustive()
    }
}

/// Two values as one `u32` of bf16 pairs: `lo` in the low half, as `vdpbf16ps` pairs element `2i` with `2i`.
fn pair(lo: f32, hi: f32) -> u32 {
    u32::from(half::bf16::from_f32(lo).to_bits())
        | u32::from(half::bf16::from_f32(hi).to_bits()) << 16
}

impl PackedBf16 {
    /// Packs `w` (`n × k` row-major). `None` where this CPU lacks the units ([`available`]).
    ///
    /// # Panics
    /// When `k` is zero or does not divide `w.len()`.
    pub(crate) fn pack(w: &[f32], k: usize) -> Option<Self> {
        if !available() {
            return None;
        }
        assert!(
            k > 0 && w.len().is_multiple_of(k),
            "w must have rows of length k"
        );
        let n = w.len() / k;
        let pairs = k.div_ceil(2);
        let panels = n.div_ceil(LANES);
        let mut data = vec![0u32; panels * LANES * pairs];
        let at = |col: usize, i: usize| {
            if col < n && i < k {
                w[col * k + i]
            } else {
                0.0
            }
        };
        data.par_chunks_mut(PANELS * LANES * pairs)
            .enumerate()
            .for_each(|(group, chunk)| {
                let in_group = chunk.len() / (LANES * pairs);
                for p in 0..pairs {
                    for j in 0..in_group {
                        for l in 0..LANES {
                            let col = (group * PANELS + j) * LANES + l;
                            chunk[(p * in_group + j) * LANES + l] =
                                pair(at(col, 2 * p), at(col, 2 * p + 1));
                        }
                    }
                }
            });
        Some(Self { n, k, pairs, data })
    }

    /// Output columns (`n`).
    pub(crate) fn outputs(&self) -> usize {
        self.n
    }

    /// Shared dimension (`k`).
    pub(crate) fn inputs(&self) -> usize {
        self.k
    }
}

/// What the kernel applies to each output before storing it: the products of a linear layer are final
/// in registers (the whole of `k` is summed there), so its bias and activation cost no extra pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Activation {
    /// `x · wᵀ + b`.
    None,
    /// CLIP's quick-GELU of it, `y · sigmoid(1.702 y)`.
    QuickGelu,
}

/// One linear layer as the kernel runs it: `activation(x · weightᵀ + bias)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layer<'a> {
    pub weight: &'a PackedBf16,
    /// `weight.outputs()` values.
    pub bias: &'a [f32],
    pub activation: Activation,
}

impl Layer<'_> {
    /// # Panics
    /// When the bias does not have one value per output.
    fn check(&self) {
        assert_eq!(
            self.bias.len(),
            self.weight.n,
            "bias must have one value per output"
        );
    }
}

/// `out = layer(x)`: `x` is `m × k` row-major f32 (rounded to bf16 here), `out` is `m × n` row-major and
/// overwritten.
///
/// # Panics
/// When `x.len()` is not a multiple of `k`, `out` is not `m × n`, or the bias is not `n` long.
pub(crate) fn linear(x: &[f32], layer: Layer<'_>, out: &mut [f32]) {
    layer.check();
    let (n, k) = (layer.weight.n, layer.weight.k);
    assert!(x.len().is_multiple_of(k), "x must have rows of length k");
    assert_eq!(out.len(), x.len() / k * n, "out must be m × n");
    if out.is_empty() {
        return;
    }
    out.par_chunks_mut(ROW_BLOCK * n)
        .zip(x.par_chunks(ROW_BLOCK * k))
        .for_each_init(Vec::new, |scratch, (out_rows, x_rows)| {
            // SAFETY: `PackedBf16` exists only where `available()` held, so the CPU has AVX-512F and
            // AVX512-BF16; both chunks hold the same rows (ROW_BLOCK of them, or the rest).
            unsafe { rows_through(x_rows, layer, out_rows, scratch) };
        });
}

/// `out = second(first(x))` (a transformer block's MLP) a block of [`MLP_ROW_BLOCK`] rows at a time, so
/// the hidden activations (four times the width in CLIP) stay in the thread's cache instead of making a
/// round trip through a freshly mapped buffer of `m × hidden` floats (39 MB per ViT-B/32 layer at batch 64).
///
/// # Panics
/// As [`linear`], and when `first`'s outputs are not `second`'s inputs.
pub(crate) fn two_layers(x: &[f32], first: Layer<'_>, second: Layer<'_>, out: &mut [f32]) {
    first.check();
    second.check();
    assert_eq!(
        first.weight.n, second.weight.k,
        "first's outputs must be second's inputs"
    );
    let (k, hidden, n) = (first.weight.k, first.weight.n, second.weight.n);
    assert!(x.len().is_multiple_of(k), "x must have rows of length k");
    assert_eq!(out.len(), x.len() / k * n, "out must be m × n");
    if out.is_empty() {
        return;
    }
    out.par_chunks_mut(MLP_ROW_BLOCK * n)
        .zip(x.par_chunks(MLP_ROW_BLOCK * k))
        .for_each_init(
            || (Vec::new(), Vec::new()),
            |(scratch, between), (out_rows, x_rows)| {
                between.resize(x_rows.len() / k * hidden, 0.0);
                // SAFETY: as in `linear`; `between` holds the block's rows at the hidden width.
                unsafe {
                    rows_through(x_rows, first, between, scratch);
                    rows_through(between, second, out_rows, scratch);
                }
            },
        );
}

/// Rows of `x` through `layer` into the same rows of `out`, rounding them into `scratch` first.
///
/// # Safety
/// The CPU must have AVX-512F and AVX512-BF16; `x` holds whole rows of `k` and `out` as many rows of `n`.
unsafe fn rows_through(x: &[f32], layer: Layer<'_>, out: &mut [f32], scratch: &mut Vec<u32>) {
    let (k, pairs) = (layer.weight.k, layer.weight.pairs);
    let rows = x.len() / k;
    let tiles = pairs.is_multiple_of(amx::STEP_PAIRS) && amx::ready();
    // The tile kernel reads whole tiles of 16 rows: pad with zero rows (their products are not stored).
    let padded = if tiles {
        rows.next_multiple_of(amx::TILE_ROWS)
    } else {
        rows
    };
    scratch.resize(padded * pairs, 0);
    scratch[rows * pairs..].fill(0);
    for (to, from) in scratch.chunks_exact_mut(pairs).zip(x.chunks_exact(k)) {
        // SAFETY: forwarded from the caller; `to` holds k/2 rounded up pairs.
        unsafe { round_row(from, to) };
    }
    // SAFETY: forwarded from the caller; `scratch` now holds the rows' pairs (padded to whole tiles for
    // the tile kernel, which runs only where `amx::ready()` held and k is a whole number of tile steps).
    unsafe {
        if tiles {
            amx::row_block(scratch, layer.weight, layer.bias, layer.activation, out)
        } else {
            row_block(scratch, layer.weight, layer.bias, layer.activation, out)
        }
    };
}

/// Rounds one row of `k` values into `k/2` (rounded up) bf16 pairs, the odd tail paired with zero.
///
/// # Safety
/// The CPU must have AVX-512F and AVX512-BF16.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn round_row(from: &[f32], to: &mut [u32]) {
    use std::arch::x86_64::*;
    assert_eq!(to.len(), from.len().div_ceil(2));
    let whole = from.len() / 32;
    for c in 0..whole {
        // SAFETY: c·32 + 32 ≤ from.len() and c·16 + 16 ≤ to.len() (to holds from.len()/2 rounded up);
        // unaligned loads and stores.
        unsafe {
            let lo = _mm512_loadu_ps(from.as_ptr().add(c * 32));
            let hi = _mm512_loadu_ps(from.as_ptr().add(c * 32 + 16));
            // cvtne2ps: the second operand fills the low 16 bf16 values, the first the high 16.
            let rounded: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
            _mm512_storeu_si512(to.as_mut_ptr().add(c * 16).cast(), rounded);
        }
    }
    for p in whole * 16..to.len() {
        let hi = from.get(2 * p + 1).copied().unwrap_or(0.0);
        to[p] = pair(from[2 * p], hi);
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn round_row(_: &[f32], _: &mut [u32]) {
    unreachable!("PackedBf16 is never built off x86_64")
}

/// One task's rows: every weight group, then micro-tiles of [`ROWS`] rows down the block.
///
/// # Safety
/// The CPU must have AVX-512F and AVX512-BF16; `x_block.len() = rows · pairs`, `out.len() = rows · n`,
/// `bias.len() = n`.
unsafe fn row_block(
    x_block: &[u32],
    w: &PackedBf16,
    bias: &[f32],
    activation: Activation,
    out: &mut [f32],
) {
    let (n, pairs) = (w.n, w.pairs);
    let rows = out.len() / n;
    debug_assert_eq!(x_block.len(), rows * pairs);
    let panels = n.div_ceil(LANES);
    for first_panel in (0..panels).step_by(PANELS) {
        let in_group = PANELS.min(panels - first_panel);
        let group = &w.data[first_panel * LANES * pairs..][..in_group * LANES * pairs];
        for first_row in (0..rows).step_by(ROWS) {
            let tile_rows = ROWS.min(rows - first_row);
            let tile = Tile {
                x: &x_block[first_row * pairs..(first_row + tile_rows) * pairs],
                w: group,
                pairs,
                bias,
                activation,
                out: &mut out[first_row * n..(first_row + tile_rows) * n],
                n,
                first_col: first_panel * LANES,
            };
            // SAFETY: forwarded from the caller; the tile's slices are in bounds by construction.
            unsafe { tile.run(tile_rows, in_group) };
        }
    }
}

/// One micro-tile's operands: `rows` rows of activation pairs, a weight group, and the `rows × n` output
/// rows whose columns `first_col..first_col + 16·panels` (clipped to `n`) it writes.
struct Tile<'a> {
    x: &'a [u32],
    w: &'a [u32],
    pairs: usize,
    /// All `n` biases.
    bias: &'a [f32],
    activation: Activation,
    out: &'a mut [f32],
    n: usize,
    first_col: usize,
}

impl Tile<'_> {
    /// Dispatches to the kernel compiled for this many rows and panels, so its accumulators are registers.
    ///
    /// # Safety
    /// The CPU must have AVX-512F and AVX512-BF16; `rows ≤ ROWS`, `panels ≤ PANELS`, and the slices hold
    /// what [`Tile`] says.
    unsafe fn run(self, rows: usize, panels: usize) {
        macro_rules! by_rows {
            ($panels:expr) => {
                match rows {
                    1 => kernel::<1, { $panels }>(self),
                    2 => kernel::<2, { $panels }>(self),
                    3 => kernel::<3, { $panels }>(self),
                    4 => kernel::<4, { $panels }>(self),
                    5 => kernel::<5, { $panels }>(self),
                    6 => kernel::<6, { $panels }>(self),
                    7 => kernel::<7, { $panels }>(self),
                    _ => kernel::<ROWS, { $panels }>(self),
                }
            };
        }
        // SAFETY: forwarded from the caller.
        unsafe {
            match panels {
                1 => by_rows!(1),
                2 => by_rows!(2),
                _ => by_rows!(PANELS),
            }
        }
    }
}

/// The micro-kernel: `R × P` accumulators of 16 f32, one `vdpbf16ps` per accumulator and pair of `k`,
/// then bias and activation on the registers and one masked store.
///
/// # Safety
/// The CPU must have AVX-512F and AVX512-BF16; `tile.x` holds `R` rows of `tile.pairs` pairs, `tile.w` a
/// group of `P` panels (`pairs · P · 16` values), `tile.out` `R` rows of `tile.n`, `tile.bias` `tile.n`
/// values, and `tile.first_col < tile.n`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn kernel<const R: usize, const P: usize>(tile: Tile<'_>) {
    use std::arch::x86_64::*;
    let Tile {
        x,
        w,
        pairs,
        bias,
        activation,
        out,
        n,
        first_col,
    } = tile;
    assert!(x.len() >= R * pairs && w.len() >= P * LANES * pairs && out.len() >= R * n);
    assert!(bias.len() == n && first_col < n);
    let mut acc = [[_mm512_setzero_ps(); P]; R];
    let (x, w) = (x.as_ptr(), w.as_ptr());
    for p in 0..pairs {
        let mut b: [__m512bh; P] =
            [std::mem::transmute::<__m512, __m512bh>(_mm512_setzero_ps()); P];
        for (j, b) in b.iter_mut().enumerate() {
            // SAFETY: (p·P + j)·16 + 16 ≤ pairs·P·16 ≤ w.len() (asserted above).
            *b = std::mem::transmute::<__m512i, __m512bh>(unsafe {
                _mm512_loadu_si512(w.add((p * P + j) * LANES).cast())
            });
        }
        for (i, row) in acc.iter_mut().enumerate() {
            // SAFETY: i·pairs + p < R·pairs ≤ x.len(); one u32 holds one pair of this row.
            let a: __m512bh =
                std::mem::transmute(_mm512_set1_epi32(unsafe { *x.add(i * pairs + p) } as i32));
            for (acc, b) in row.iter_mut().zip(&b) {
                *acc = _mm512_dpbf16_ps(*acc, a, *b);
            }
        }
    }
    // Bias first, straight from the accumulators; the activation then reads the stored tile back from
    // L1. Calling it on the accumulators directly made LLVM keep them on the stack through the loop above.
    for (i, row) in acc.iter().enumerate() {
        for (j, acc) in row.iter().enumerate() {
            let col = first_col + j * LANES;
            if col >= n {
                break;
            }
            let valid = LANES.min(n - col);
            let mask = lanes_mask(valid);
            // SAFETY: the masked lanes are columns col..col + valid ≤ n = bias.len() of row i < R; out
            // holds R rows of n.
            unsafe {
                let y = _mm512_add_ps(*acc, _mm512_maskz_loadu_ps(mask, bias.as_ptr().add(col)));
                _mm512_mask_storeu_ps(out.as_mut_ptr().add(i * n + col), mask, y);
            }
        }
    }
    if activation == Activation::QuickGelu {
        let width = (P * LANES).min(n - first_col);
        for i in 0..R {
            for start in (0..width).step_by(LANES) {
                let valid = LANES.min(width - start);
                let mask = lanes_mask(valid);
                // SAFETY: as above: columns first_col + start + valid ≤ n of row i < R.
                unsafe {
                    let at = out.as_mut_ptr().add(i * n + first_col + start);
                    let y = quick_gelu(_mm512_maskz_loadu_ps(mask, at));
                    _mm512_mask_storeu_ps(at, mask, y);
                }
            }
        }
    }
}

/// The lane mask of the first `valid` (1 to 16) of a register's 16 f32 lanes: how every epilogue
/// stores a panel that runs past the last column.
#[cfg(target_arch = "x86_64")]
fn lanes_mask(valid: usize) -> std::arch::x86_64::__mmask16 {
    if valid == LANES {
        !0
    } else {
        (1 << valid) - 1
    }
}

/// `y · sigmoid(1.702 y)` on 16 lanes, with [`exp`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn quick_gelu(y: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    let e = exp(_mm512_mul_ps(y, _mm512_set1_ps(-1.702)));
    _mm512_div_ps(y, _mm512_add_ps(_mm512_set1_ps(1.0), e))
}

/// `eˣ` on 16 lanes to about 2 ulp: `x = k·ln2 + r` with `k` an integer and `|r| ≤ ln2/2`, `eʳ`
/// by its Taylor polynomial to degree 7 (truncation below 2⁻²⁵ there), scaled by `2ᵏ`. Inputs are clamped
/// to [-87.3, 88.7], so the result stays finite and normal: what a sigmoid needs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn exp(x: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    let x = _mm512_max_ps(
        _mm512_min_ps(x, _mm512_set1_ps(88.7)),
        _mm512_set1_ps(-87.3),
    );
    let t = _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E));
    let k = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(t);
    // r = x - k·ln2 with ln2 in two parts (Cody-Waite), so large |x| keeps the remainder's precision.
    let r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693_145_75), x);
    let r = _mm512_fnmadd_ps(k, _mm512_set1_ps(1.428_606_8e-6), r);
    // Horner from 1/7! down to 1.
    let mut p = _mm512_set1_ps(1.0 / 5040.0);
    for c in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
    }
    _mm512_scalef_ps(p, k)
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn kernel<const R: usize, const P: usize>(_: Tile<'_>) {
    unreachable!("PackedBf16 is never built off x86_64")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small pseudo-random values in [-1, 1) (a fixed LCG; the crate's RNG is for data, not tests of
    /// arithmetic).
    fn values(count: usize, seed: u64) -> Vec<f32> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        (0..count)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// The product of the bf16-rounded inputs in f64: what the kernel computes, up to f32 summation order.
    fn reference(x: &[f32], w: &[f32], k: usize) -> Vec<f64> {
        let round = |v: f32| f64::from(half::bf16::from_f32(v).to_f32());
        let (m, n) = (x.len() / k, w.len() / k);
        let mut out = vec![0f64; m * n];
        for r in 0..m {
            for c in 0..n {
                out[r * n + c] = (0..k)
                    .map(|i| round(x[r * k + i]) * round(w[c * k + i]))
                    .sum();
            }
        }
        out
    }

    #[test]
    fn matches_the_rounded_product_on_every_edge_shape() {
        if !available() {
            eprintln!(
                "*** SKIPPED: this CPU has no AVX512-BF16; the bf16 kernel cannot run here ***"
            );
            return;
        }
        // Rows around the micro-tile (8) and the task block (64), columns around a panel (16) and a
        // group (48), odd and even k around the 32-value rounding step; both epilogues. (Where AMX is
        // ready, the shapes whose k is a multiple of 32 run on the tile kernel.)
        check_against_reference(&[
            (1, 1, 1),
            (7, 15, 33),
            (8, 16, 32),
            (9, 17, 31),
            (65, 49, 64),
            (130, 100, 77),
            (3, 96, 768),
        ]);
    }

    #[test]
    fn tile_kernel_matches_the_rounded_product_on_every_edge_shape() {
        if !amx::ready() {
            eprintln!("*** SKIPPED: this CPU (or kernel) offers no AMX-BF16; the tile kernel cannot run here ***");
            return;
        }
        // Rows around a tile (16) and a 2-tile block (32), columns around a panel (16), a panel pair (32)
        // and a group (48, where the weight stride changes), k of one and of many tile steps.
        check_against_reference(&[
            (1, 1, 32),
            (15, 17, 32),
            (16, 16, 64),
            (17, 33, 96),
            (32, 48, 32),
            (33, 47, 768),
            (70, 100, 64),
            (130, 113, 3072),
        ]);
    }

    /// `linear` against [`reference`] for each `(m, n, k)`, without and with quick-GELU.
    fn check_against_reference(shapes: &[(usize, usize, usize)]) {
        for &(m, n, k) in shapes {
            let x = values(m * k, 1);
            let w = values(n * k, 2);
            let bias = values(n, 3);
            let packed = PackedBf16::pack(&w, k).expect("available");
            assert_eq!((packed.outputs(), packed.inputs()), (n, k));
            let expected = reference(&x, &w, k);
            for activation in [Activation::None, Activation::QuickGelu] {
                let mut out = vec![f32::NAN; m * n];
                let layer = Layer {
                    weight: &packed,
                    bias: &bias,
                    activation,
                };
                linear(&x, layer, &mut out);
                for (i, &got) in out.iter().enumerate() {
                    let mut want = expected[i] + f64::from(bias[i % n]);
                    if activation == Activation::QuickGelu {
                        want /= 1.0 + (-1.702 * want).exp();
                    }
                    let tolerance = 1e-5 * (k as f64).sqrt() * 4.0 + 1e-6;
                    assert!(
                        (f64::from(got) - want).abs() <= tolerance,
                        "m {m} n {n} k {k} {activation:?}: out[{i}] = {got}, expected {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn rounding_to_bf16_stays_within_its_precision_of_f32() {
        if !available() {
            eprintln!(
                "*** SKIPPED: this CPU has no AVX512-BF16; the bf16 kernel cannot run here ***"
            );
            return;
        }
        let (m, n, k) = (16, 64, 512);
        let x = values(m * k, 4);
        let w = values(n * k, 5);
        let packed = PackedBf16::pack(&w, k).expect("available");
        let mut out = vec![0f32; m * n];
        let zeros = vec![0.0; n];
        let layer = Layer {
            weight: &packed,
            bias: &zeros,
            activation: Activation::None,
        };
        linear(&x, layer, &mut out);
        for r in 0..m {
            for c in 0..n {
                let exact: f64 = (0..k)
                    .map(|i| f64::from(x[r * k + i]) * f64::from(w[c * k + i]))
                    .sum();
                let magnitude: f64 = (0..k)
                    .map(|i| (f64::from(x[r * k + i]) * f64::from(w[c * k + i])).abs())
                    .sum();
                // Each product carries two roundings of at most 2⁻⁹ relative each.
                assert!(
                    (f64::from(out[r * n + c]) - exact).abs() <= magnitude * 2.0 * 2f64.powi(-9),
                    "({r}, {c}): {} vs {exact}",
                    out[r * n + c]
                );
            }
        }
    }

    #[test]
    fn two_layers_equal_one_layer_after_the_other() {
        if !available() {
            eprintln!(
                "*** SKIPPED: this CPU has no AVX512-BF16; the bf16 kernel cannot run here ***"
            );
            return;
        }
        // Rows around the fused block (32), a hidden width that is not a whole group.
        let (m, k, hidden, n) = (70, 40, 136, 24);
        let x = values(m * k, 6);
        let (w1, b1) = (values(hidden * k, 7), values(hidden, 8));
        let (w2, b2) = (values(n * hidden, 9), values(n, 10));
        let (p1, p2) = (
            PackedBf16::pack(&w1, k).unwrap(),
            PackedBf16::pack(&w2, hidden).unwrap(),
        );
        let first = Layer {
            weight: &p1,
            bias: &b1,
            activation: Activation::QuickGelu,
        };
        let second = Layer {
            weight: &p2,
            bias: &b2,
            activation: Activation::None,
        };
        let mut between = vec![0f32; m * hidden];
        linear(&x, first, &mut between);
        let mut expected = vec![0f32; m * n];
        linear(&between, second, &mut expected);
        let mut fused = vec![f32::NAN; m * n];
        two_layers(&x, first, second, &mut fused);
        assert_eq!(fused, expected);
    }

    #[test]
    fn vector_exp_matches_the_scalar_one_over_the_range_that_matters() {
        if !available() {
            eprintln!("*** SKIPPED: this CPU has no AVX-512; the vector exp cannot run here ***");
            return;
        }
        use std::arch::x86_64::*;
        let inputs: Vec<f32> = (-2000..=2000).map(|i| i as f32 * 0.05).collect();
        for chunk in inputs.chunks_exact(16) {
            let mut got = [0f32; 16];
            // SAFETY: available() checked AVX-512F; `chunk` and `got` hold 16 values.
            unsafe {
                _mm512_storeu_ps(got.as_mut_ptr(), exp(_mm512_loadu_ps(chunk.as_ptr())));
            }
            for (&x, &y) in chunk.iter().zip(&got) {
                let want = x.exp();
                assert!(
                    // Below e^-87.3 the result stays at that smallest normal value instead of a subnormal.
                    (y - want).abs() <= want * 4.0 * f32::EPSILON + 2e-38,
                    "exp({x}) = {y}, expected {want}"
                );
            }
        }
    }
}
