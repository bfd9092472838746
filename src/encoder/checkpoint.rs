//! A model directory in the Hugging Face layout: locating its files, checking the weights against the
//! config before anything is built, and fingerprinting the model.

use std::path::{Path, PathBuf};

use candle_core::safetensors::MmapedSafetensors;

use super::error::EncoderError;

pub(crate) const CONFIG_FILE: &str = "config.json";
pub(crate) const WEIGHTS_FILE: &str = "model.safetensors";
pub(crate) const TOKENIZER_FILE: &str = "tokenizer.json";

/// The three files of a model directory, each known to exist.
pub(crate) struct ModelFiles {
    pub config: PathBuf,
    pub weights: PathBuf,
    pub tokenizer: PathBuf,
}

impl ModelFiles {
    pub(crate) fn locate(dir: &Path) -> Result<Self, EncoderError> {
        Ok(Self {
            config: require_file(dir, CONFIG_FILE)?,
            weights: require_file(dir, WEIGHTS_FILE)?,
            tokenizer: require_file(dir, TOKENIZER_FILE)?,
        })
    }
}

/// Memory-maps the weights file.
pub(crate) fn map_weights(path: &Path) -> Result<MmapedSafetensors, EncoderError> {
    // SAFETY: the mapping stays valid only while no other process truncates or rewrites the file; model
    // directories are read-only inputs that fiq never writes, and candle copies each tensor out of the
    // mapping when the model is built, so a later change can corrupt at most a load in progress.
    unsafe { MmapedSafetensors::new(path) }.map_err(|source| EncoderError::Weights {
        path: path.to_path_buf(),
        source: Box::new(source),
    })
}

/// Checks that every tensor of `expected` (name and shape, as the config implies them) is present with
/// that shape and a float type, and feeds names, shapes, types and a sample of each tensor's bytes into
/// `hasher`.
pub(crate) fn check_tensors(
    weights: &MmapedSafetensors,
    path: &Path,
    expected: Vec<(String, Vec<usize>)>,
    hasher: &mut Fnv64,
) -> Result<(), EncoderError> {
    for (name, expected) in expected {
        let view = weights
            .get(&name)
            .map_err(|_| EncoderError::MissingTensor {
                path: path.to_path_buf(),
                name: name.clone(),
            })?;
        if view.shape() != expected.as_slice() {
            return Err(EncoderError::TensorShape {
                path: path.to_path_buf(),
                name,
                expected,
                found: view.shape().to_vec(),
            });
        }
        let dtype = format!("{:?}", view.dtype());
        if !matches!(dtype.as_str(), "F16" | "BF16" | "F32" | "F64") {
            return Err(EncoderError::TensorDtype {
                path: path.to_path_buf(),
                name,
                dtype,
            });
        }
        hasher.write(name.as_bytes());
        hasher.write(format!("{expected:?}{dtype}").as_bytes());
        // Head and tail of every tensor: any fine-tune moves them, and hashing 600 MB would not pay.
        let data = view.data();
        const SAMPLE: usize = 256;
        hasher.write(&data[..data.len().min(SAMPLE)]);
        hasher.write(&data[data.len().saturating_sub(SAMPLE)..]);
    }
    Ok(())
}

/// Maps the weights, checks them against `expected` and starts the model's fingerprint: the family's
/// `tag`, its parsed configuration (`config`, as its `Debug` text) and the checked tensors.
pub(crate) fn open_weights(
    path: &Path,
    tag: &str,
    config: &dyn std::fmt::Debug,
    expected: Vec<(String, Vec<usize>)>,
) -> Result<(MmapedSafetensors, Fnv64), EncoderError> {
    let weights = map_weights(path)?;
    let mut hasher = Fnv64::new();
    hasher.write(tag.as_bytes());
    hasher.write(format!("{config:?}").as_bytes());
    check_tensors(&weights, path, expected, &mut hasher)?;
    Ok((weights, hasher))
}

/// A model directory opened for loading: its parsed config, its checked weights, the fingerprint so far
/// and its tokenizer file.
pub(crate) struct OpenedModel<C> {
    pub config: C,
    pub weights: MmapedSafetensors,
    pub hasher: Fnv64,
    pub tokenizer: PathBuf,
}

/// Opens a model directory of one family: requires its `config`, `weights` and `tokenizer` files, parses
/// the config with `parse`, and checks the weights against the tensors `expected` lists for it (see
/// [`open_weights`], whose fingerprint starts with `tag`).
pub(crate) fn open_model<C: std::fmt::Debug>(
    dir: &Path,
    [config, weights, tokenizer]: [&'static str; 3],
    tag: &str,
    parse: impl FnOnce(&str, &Path) -> Result<C, EncoderError>,
    expected: impl FnOnce(&C) -> Vec<(String, Vec<usize>)>,
) -> Result<OpenedModel<C>, EncoderError> {
    let config_path = require_file(dir, config)?;
    let weights_path = require_file(dir, weights)?;
    let tokenizer = require_file(dir, tokenizer)?;
    let config = parse(&read_text(&config_path)?, &config_path)?;
    let (weights, hasher) = open_weights(&weights_path, tag, &config, expected(&config))?;
    Ok(OpenedModel {
        config,
        weights,
        hasher,
        tokenizer,
    })
}

/// FNV-1a, 64 bits: a stable, dependency-free hash for fingerprints (not for security).
pub(crate) struct Fnv64(u64);

impl Fnv64 {
    pub(crate) fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // A length separator keeps ("ab", "c") and ("a", "bc") apart.
        for b in (bytes.len() as u64).to_le_bytes() {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub(crate) fn finish_hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

/// Reads a model file to a string, naming it when that fails.
pub(crate) fn read_text(path: &Path) -> Result<String, EncoderError> {
    std::fs::read_to_string(path).map_err(|source| EncoderError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// `dir/name` if it is a file, else the error naming both.
pub(crate) fn require_file(dir: &Path, name: &'static str) -> Result<PathBuf, EncoderError> {
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(EncoderError::MissingFile {
            dir: dir.to_path_buf(),
            file: name,
        })
    }
}

/// The model directory's own name (after resolving `.` and links), for [`super::ModelInfo::name`].
pub(crate) fn dir_name(dir: &Path) -> String {
    dir.canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_is_stable_and_separates_fields() {
        let hash = |parts: &[&str]| {
            let mut h = Fnv64::new();
            parts.iter().for_each(|p| h.write(p.as_bytes()));
            h.finish_hex()
        };
        assert_eq!(hash(&["ab", "c"]), hash(&["ab", "c"]));
        assert_ne!(hash(&["ab", "c"]), hash(&["a", "bc"]));
        assert_eq!(hash(&[]).len(), 16);
    }

    #[test]
    fn missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE), "{}").unwrap();
        match ModelFiles::locate(dir.path()) {
            Err(EncoderError::MissingFile { file, .. }) => assert_eq!(file, WEIGHTS_FILE),
            other => panic!("expected MissingFile, got {:?}", other.err()),
        }
    }
}
