//! How the linked FAISS was compiled, and whether this CPU can run it.
//!
//! faiss-sys builds FAISS at its `generic` level. fiq's `.cargo/config.toml` passes
//! `-mavx2 -mfma -mf16c -mpopcnt` through `CXXFLAGS_x86_64_unknown_linux_gnu`, which the `cmake`/`cc`
//! crates hand to FAISS's compiler; that is exactly what FAISS's own `avx2` level adds, and it turns on
//! FAISS's AVX2 kernels (`#ifdef __AVX2__`). The same variable is visible here at compile time, so fiq
//! knows which FAISS it links and can refuse to call AVX2 code on a CPU without AVX2 instead of dying
//! with SIGILL.
//!
//! Caveat: faiss-sys's build script declares no `rerun-if-env-changed`, so changing the flags does not
//! rebuild FAISS by itself (`cargo clean -p faiss-sys` does). Between such a change and the clean,
//! the level reported here describes the flags, not the stale FAISS library.

use super::AnnError;

/// The C++ flags the build environment gave the FAISS build (all the variables `cc` reads, in order).
pub fn faiss_cxxflags() -> String {
    [
        option_env!("CXXFLAGS"),
        option_env!("TARGET_CXXFLAGS"),
        option_env!("CXXFLAGS_x86_64_unknown_linux_gnu"),
        option_env!("CXXFLAGS_x86_64-unknown-linux-gnu"),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ")
    .trim()
    .to_owned()
}

/// `avx2` when FAISS was compiled with AVX2 and FMA enabled, `generic` otherwise.
pub fn faiss_simd_level() -> &'static str {
    let flags = faiss_cxxflags();
    if flags.contains("-mavx2")
        || flags.contains("-march=x86-64-v3")
        || flags.contains("-march=native")
    {
        "avx2"
    } else {
        "generic"
    }
}

/// Fails when FAISS was compiled for instructions this CPU lacks.
pub(crate) fn check_cpu() -> Result<(), AnnError> {
    if faiss_simd_level() != "avx2" {
        return Ok(());
    }
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        for (feature, present) in [
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("fma", std::arch::is_x86_feature_detected!("fma")),
            ("f16c", std::arch::is_x86_feature_detected!("f16c")),
        ] {
            if !present {
                return Err(AnnError::CpuUnsupported {
                    flags: faiss_cxxflags(),
                    missing: feature,
                });
            }
        }
    }
    Ok(())
}
