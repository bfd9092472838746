//! Where the built-in default model is found, wherever the binary runs from.
//!
//! The model (a small CLIP trained on fiq's synthetic garments, `models/fiq-default` in the repository,
//! 18 MB) is compiled into the binary, so a `cargo install`ed `fiq-index` run from any directory has it.
//! Looked for in order:
//!
//! 1. `$FIQ_DEFAULT_MODEL`, a model directory (to use another default);
//! 2. the repository the binary was built from, when it is still there (no copy needed);
//! 3. the copy compiled into the binary, unpacked once into `$XDG_DATA_HOME/fiq/models/` (or
//!    `~/.local/share/fiq/models/`, or the temporary directory when neither is set) under a name that
//!    holds its checksum, so a binary with another model never reads a stale copy.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// The model's directory in the repository the binary was built from.
const SOURCE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/fiq-default");

/// The model's files, compiled in.
const FILES: [(&str, &[u8]); 3] = [
    (
        "config.json",
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../models/fiq-default/config.json"
        )),
    ),
    (
        "model.safetensors",
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../models/fiq-default/model.safetensors"
        )),
    ),
    (
        "tokenizer.json",
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../models/fiq-default/tokenizer.json"
        )),
    ),
];

/// The environment variable that names another default model directory.
pub const ENV_VAR: &str = "FIQ_DEFAULT_MODEL";

/// The default model's directory (see the module's order).
pub fn dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os(ENV_VAR) {
        let dir = PathBuf::from(dir);
        if !dir.join("config.json").is_file() {
            bail!(
                "${ENV_VAR} is {} but that directory holds no config.json; point it at a model \
                 directory (config.json, model.safetensors, tokenizer.json) or unset it",
                dir.display()
            );
        }
        return Ok(dir);
    }
    if is_complete(Path::new(SOURCE_DIR)) {
        return Ok(PathBuf::from(SOURCE_DIR));
    }
    unpacked()
}

fn is_complete(dir: &Path) -> bool {
    FILES.iter().all(|(name, bytes)| {
        std::fs::metadata(dir.join(name)).is_ok_and(|m| m.len() == bytes.len() as u64)
    })
}

/// The compiled-in copy, unpacked on first use.
fn unpacked() -> anyhow::Result<PathBuf> {
    let mut hasher = crc32fast::Hasher::new();
    for (name, bytes) in FILES {
        hasher.update(name.as_bytes());
        hasher.update(bytes);
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))
        .unwrap_or_else(std::env::temp_dir)
        .join("fiq/models");
    let dir = base.join(format!("fiq-default-{:08x}", hasher.finalize()));
    if is_complete(&dir) {
        return Ok(dir);
    }
    // Unpack beside the destination and rename: a reader never sees a half-written model, and two
    // processes unpacking at once both end with a complete one.
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let staging = base.join(format!(".unpacking-{}", std::process::id()));
    std::fs::create_dir_all(&staging).with_context(|| format!("creating {}", staging.display()))?;
    for (name, bytes) in FILES {
        let path = staging.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    if std::fs::rename(&staging, &dir).is_err() {
        // Another process won the race (or the directory exists): use it if complete.
        let _ = std::fs::remove_dir_all(&staging);
        if !is_complete(&dir) {
            bail!("could not unpack the built-in model into {}", dir.display());
        }
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_in_model_unpacks_into_a_complete_directory() {
        let home = tempfile::tempdir().unwrap();
        std::env::set_var("XDG_DATA_HOME", home.path());
        let dir = unpacked().unwrap();
        assert!(dir.starts_with(home.path()), "{}", dir.display());
        assert!(is_complete(&dir));
        // A second call reuses it.
        assert_eq!(unpacked().unwrap(), dir);
    }
}
