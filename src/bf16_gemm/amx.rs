//! The same products on Intel's AMX tile units (Sapphire Rapids and later), where the CPU has them and
//! Linux lets this process use them: one `tdpbf16ps` multiplies a 16 × 32 tile of activations by a
//! 32 × 16 tile of weights into 16 × 16 f32 accumulators, eight times the multiply-adds per cycle of
//! the `vdpbf16ps` kernel.
//!
//! Nothing here needs its own layout: a weight panel of [`PackedBf16`] (16 columns of bf16 pairs) is
//! already the "VNNI" layout a tile's right operand wants (row `p` holds the pairs `2p, 2p+1` of 16
//! columns), read with the group's stride; the activation pairs are row-major, so 16 rows × 16 pairs are a
//! left operand tile. The kernel keeps 2 × 2 accumulator tiles (32 rows × 32 columns) and per step of
//! 32 values of `k` loads two activation and two weight tiles. Bias and activation are applied in AVX-512
//! on the way out, as in the `vdpbf16ps` kernel.
//!
//! Rust has no stable AMX intrinsics, so the tile instructions are inline assembly. The compiler never
//! allocates tile registers itself, so `tmm0`–`tmm7` keep their values between the `asm!` blocks of one
//! [`row_block`] call; each call loads its own tile configuration and releases the tiles at the end.

use std::sync::OnceLock;

use super::{lanes_mask, quick_gelu, Activation, PackedBf16, LANES, PANELS};

/// Pairs of `k` in one tile step: a tile row is 64 bytes, 16 pairs.
pub(super) const STEP_PAIRS: usize = 16;
/// Rows of one activation tile.
pub(super) const TILE_ROWS: usize = 16;

/// Whether the kernel may run: the CPU reports AMX-TILE and AMX-BF16, Linux granted this process the
/// tile data state (it is off until a process asks, and asking once covers every thread), and the
/// environment does not set `FIQ_CPU_AMX=off` (which keeps bf16 on the `vdpbf16ps` kernel, to compare
/// the two or to rule the tiles out). Checked once per process.
pub(super) fn ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| std::env::var_os("FIQ_CPU_AMX").is_none_or(|v| v != "off") && detect())
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn detect() -> bool {
    // CPUID leaf 7: EDX bit 22 is AMX-BF16, bit 24 AMX-TILE.
    let leaf = std::arch::x86_64::__cpuid_count(7, 0);
    if leaf.edx & (1 << 22) == 0 || leaf.edx & (1 << 24) == 0 || !super::available() {
        return false;
    }
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: arch_prctl(ARCH_REQ_XCOMP_PERM) takes two integers and changes only whether this process
    // may use the tile state; a kernel without AMX support answers with an error, which is "not ready".
    let granted = unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        )
    };
    granted == 0
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn detect() -> bool {
    false
}

/// A tile configuration (`ldtilecfg`'s 64-byte operand): palette 1, every tile 16 rows of 64 bytes.
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    bytes_per_row: [u16; 16],
    rows: [u8; 16],
}

const CONFIG: TileConfig = TileConfig {
    palette: 1,
    start_row: 0,
    reserved: [0; 14],
    bytes_per_row: [64, 64, 64, 64, 64, 64, 64, 64, 0, 0, 0, 0, 0, 0, 0, 0],
    rows: [16, 16, 16, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0],
};

/// One task's rows through one layer on the tile units.
///
/// # Safety
/// [`ready`] must have returned true; `w.pairs` must be a multiple of [`STEP_PAIRS`]; `x_block` holds
/// the `out.len() / w.n` rows' pairs, padded with rows to a multiple of [`TILE_ROWS`]; `bias` has `w.n`
/// values.
#[cfg(target_arch = "x86_64")]
pub(super) unsafe fn row_block(
    x_block: &[u32],
    w: &PackedBf16,
    bias: &[f32],
    activation: Activation,
    out: &mut [f32],
) {
    use std::arch::asm;
    let (n, pairs) = (w.n, w.pairs);
    let rows = out.len() / n;
    assert!(pairs.is_multiple_of(STEP_PAIRS) && bias.len() == n);
    assert!(x_block.len() >= rows.next_multiple_of(TILE_ROWS) * pairs);
    let panels = n.div_ceil(LANES);
    // Where panel `j`'s pairs start, and the bytes from one pair to the next (its group's width).
    let panel = |j: usize| {
        let group = j / PANELS;
        let in_group = PANELS.min(panels - group * PANELS);
        let start = group * PANELS * LANES * pairs + (j % PANELS) * LANES;
        (w.data[start..].as_ptr(), in_group * LANES * 4)
    };
    let mut tile_out = Accumulators([0.0; 4 * TILE_ROWS * LANES]);
    // SAFETY: `ready()` held, so the CPU has AMX and the process may use it; CONFIG is a valid palette-1
    // configuration, 64-byte aligned.
    unsafe {
        asm!("ldtilecfg [{0}]", in(reg) &CONFIG, options(nostack, readonly, preserves_flags))
    };
    for first_panel in (0..panels).step_by(2) {
        let columns = 2.min(panels - first_panel);
        let b = [panel(first_panel), panel(first_panel + columns - 1)];
        for first_row in (0..rows).step_by(2 * TILE_ROWS) {
            let tiles = if rows - first_row > TILE_ROWS { 2 } else { 1 };
            let a = (x_block[first_row * pairs..].as_ptr(), pairs * 4);
            let operands = Operands {
                a,
                b,
                steps: pairs / STEP_PAIRS,
                out: tile_out.0.as_mut_ptr(),
            };
            // SAFETY: the tiles are configured; `a` has `tiles` × 16 rows of `pairs` pairs from
            // first_row (x_block is padded to whole tiles), each `b` panel has `pairs` rows at its
            // stride, and tile_out holds four 16 × 16 tiles.
            unsafe {
                match (tiles, columns) {
                    (2, 2) => multiply::<2, 2>(operands),
                    (2, _) => multiply::<2, 1>(operands),
                    (_, 2) => multiply::<1, 2>(operands),
                    _ => multiply::<1, 1>(operands),
                }
            }
            let valid_rows = (rows - first_row).min(2 * TILE_ROWS);
            for r in 0..valid_rows {
                let (tile_row, row) = (r / TILE_ROWS, r % TILE_ROWS);
                for c in 0..columns {
                    let col = (first_panel + c) * LANES;
                    let from =
                        &tile_out.0[((tile_row * 2 + c) * TILE_ROWS + row) * LANES..][..LANES];
                    let to = &mut out[(first_row + r) * n..][..n];
                    // SAFETY: `ready()` implies AVX-512F (`super::available()`); col < n.
                    unsafe { finish(from, &bias[col..], activation, &mut to[col..]) };
                }
            }
        }
    }
    // SAFETY: the tiles were configured above; releasing returns them to their initial state.
    unsafe { asm!("tilerelease", options(nostack, nomem, preserves_flags)) };
}

#[cfg(not(target_arch = "x86_64"))]
pub(super) unsafe fn row_block(_: &[u32], _: &PackedBf16, _: &[f32], _: Activation, _: &mut [f32]) {
    unreachable!("AMX is never ready off x86_64")
}

/// Four accumulator tiles as they leave the tile registers: tile `2·row + column`, 16 rows of 16 f32.
#[repr(C, align(64))]
struct Accumulators([f32; 4 * TILE_ROWS * LANES]);

/// One 32 × 32 (at most) block: activation rows (pointer, bytes per row), two weight panels (pointer,
/// bytes per pair; the second equals the first when there is one), the `k` steps, and where the four
/// accumulator tiles go.
struct Operands {
    a: (*const u32, usize),
    b: [(*const u32, usize); 2],
    steps: usize,
    out: *mut f32,
}

/// `R` × `P` accumulator tiles over all of `k`: tmm0/tmm1 are the first activation tile's products with
/// the two panels, tmm2/tmm3 the second's; tmm4/tmm5 hold activations, tmm6/tmm7 weights.
///
/// # Safety
/// Tiles configured by [`row_block`]; the operands as [`Operands`] describes, readable for `steps` steps.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn multiply<const R: usize, const P: usize>(operands: Operands) {
    use std::arch::asm;
    let Operands { a, b, steps, out } = operands;
    macro_rules! tile {
        (zero $t:literal) => {
            asm!(concat!("tilezero ", $t), options(nostack, nomem, preserves_flags))
        };
        (load $t:literal, $ptr:expr, $stride:expr) => {
            asm!(concat!("tileloadd ", $t, ", [{p} + {s}]"), p = in(reg) $ptr, s = in(reg) $stride,
                 options(nostack, readonly, preserves_flags))
        };
        (dot $c:literal, $a:literal, $b:literal) => {
            asm!(concat!("tdpbf16ps ", $c, ", ", $a, ", ", $b), options(nostack, nomem, preserves_flags))
        };
        (store $t:literal, $ptr:expr) => {
            asm!(concat!("tilestored [{p} + {s}], ", $t), p = in(reg) $ptr,
                 s = in(reg) LANES * 4, options(nostack, preserves_flags))
        };
    }
    // SAFETY (all blocks below): the caller configured the tiles; every load reads 16 rows of 64 bytes
    // inside the operands the caller vouched for, every store writes one 1 KiB tile of `out`.
    unsafe {
        tile!(zero "tmm0");
        tile!(zero "tmm1");
        tile!(zero "tmm2");
        tile!(zero "tmm3");
        // wrapping: with one activation tile there are no second rows, and this pointer is never read.
        let second_rows = a.0.wrapping_add(TILE_ROWS * a.1 / 4);
        for step in 0..steps {
            let along = step * STEP_PAIRS;
            tile!(load "tmm4", a.0.add(along), a.1);
            tile!(load "tmm6", b[0].0.add(along * b[0].1 / 4), b[0].1);
            tile!(dot "tmm0", "tmm4", "tmm6");
            if P == 2 {
                tile!(load "tmm7", b[1].0.add(along * b[1].1 / 4), b[1].1);
                tile!(dot "tmm1", "tmm4", "tmm7");
            }
            if R == 2 {
                tile!(load "tmm5", second_rows.add(along), a.1);
                tile!(dot "tmm2", "tmm5", "tmm6");
                if P == 2 {
                    tile!(dot "tmm3", "tmm5", "tmm7");
                }
            }
        }
        let tile_floats = TILE_ROWS * LANES;
        tile!(store "tmm0", out);
        tile!(store "tmm1", out.add(tile_floats));
        tile!(store "tmm2", out.add(2 * tile_floats));
        tile!(store "tmm3", out.add(3 * tile_floats));
    }
}

/// Up to 16 outputs of one row: `activation(products + bias)` into `to`, clipped to its length.
///
/// # Safety
/// The CPU must have AVX-512F; `from` holds 16 values and `bias` at least as many as `to` keeps.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn finish(from: &[f32], bias: &[f32], activation: Activation, to: &mut [f32]) {
    use std::arch::x86_64::*;
    let valid = LANES.min(to.len()).min(bias.len());
    let mask = lanes_mask(valid);
    assert!(from.len() >= LANES);
    // SAFETY: the masked lanes are the first `valid` values of `bias` and `to`; `from` holds 16.
    unsafe {
        let y = _mm512_add_ps(
            _mm512_loadu_ps(from.as_ptr()),
            _mm512_maskz_loadu_ps(mask, bias.as_ptr()),
        );
        let y = match activation {
            Activation::None => y,
            Activation::QuickGelu => quick_gelu(y),
        };
        _mm512_mask_storeu_ps(to.as_mut_ptr(), mask, y);
    }
}
