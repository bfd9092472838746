//! Text features kept on disk between training runs: a folder with `texts.json` (a JSON array of the
//! texts) and `features.npy` (float32, one row per text), plus `model.json` naming the model that made
//! them when fiq encoded them itself. Training encodes each distinct text once with the model and keeps
//! the result, so a rerun or a resumed run encodes nothing again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::TrainError;
use crate::encoder::{Encoder, ModelInfo};
use crate::eval::BackendError;

const TEXTS_FILE: &str = "texts.json";
const FEATURES_FILE: &str = "features.npy";
const MODEL_FILE: &str = "model.json";

/// Text vectors by text, read from and written to a cache folder.
#[derive(Debug)]
pub struct TextCache {
    dir: PathBuf,
    dim: usize,
    rows: Mutex<HashMap<String, Vec<f32>>>,
}

impl TextCache {
    /// Reads the cache in `dir` if there is one (empty otherwise). A cache written by another model
    /// than `model` is refused; one without `model.json` (made outside fiq) is trusted as it is.
    pub fn open(
        dir: &Path,
        dim: usize,
        model: Option<&ModelInfo>,
    ) -> Result<TextCache, TrainError> {
        let error = |detail: String| TrainError::Checkpoint {
            path: dir.to_owned(),
            detail,
        };
        let cache = TextCache {
            dir: dir.to_owned(),
            dim,
            rows: Mutex::default(),
        };
        let texts_path = dir.join(TEXTS_FILE);
        if !texts_path.exists() {
            return Ok(cache);
        }
        if let (Some(model), Ok(text)) = (model, std::fs::read_to_string(dir.join(MODEL_FILE))) {
            let made_by: ModelInfo = serde_json::from_str(&text)
                .map_err(|e| error(format!("{MODEL_FILE} is not a model record: {e}")))?;
            if made_by.fingerprint != model.fingerprint {
                return Err(error(format!(
                    "the text features were made by model {} ({}), not {} ({}); remove the folder to \
                     encode them again",
                    made_by.name, made_by.fingerprint, model.name, model.fingerprint
                )));
            }
        }
        let texts: Vec<String> = serde_json::from_str(
            &std::fs::read_to_string(&texts_path)
                .map_err(|e| error(format!("reading {TEXTS_FILE}: {e}")))?,
        )
        .map_err(|e| error(format!("{TEXTS_FILE} is not a JSON array of strings: {e}")))?;
        let matrix = crate::npy::read_matrix(dir.join(FEATURES_FILE))
            .map_err(|e| error(format!("reading {FEATURES_FILE}: {e}")))?;
        if matrix.rows != texts.len() || matrix.dim != dim {
            return Err(error(format!(
                "{FEATURES_FILE} holds {} rows of {} values, but there are {} texts and the index has \
                 dimension {dim}",
                matrix.rows,
                matrix.dim,
                texts.len()
            )));
        }
        *cache.rows.lock().unwrap_or_else(|e| e.into_inner()) = texts
            .into_iter()
            .enumerate()
            .map(|(row, text)| (text, matrix.row(row).to_vec()))
            .collect();
        Ok(cache)
    }

    /// Texts held.
    pub fn len(&self) -> usize {
        self.rows.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether the cache holds no text.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The vectors of `texts` from the cache alone; a text it lacks is an error naming it.
    pub fn lookup(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, BackendError> {
        let rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        texts
            .iter()
            .map(|text| {
                rows.get(text).cloned().ok_or_else(|| {
                    format!(
                        "text {text:?} is not in the text feature cache {}",
                        self.dir.display()
                    )
                    .into()
                })
            })
            .collect()
    }

    /// The vectors of `texts`: from the cache, and the ones it lacks encoded by `encoder` and kept.
    pub fn encode(
        &self,
        texts: &[String],
        encoder: &dyn Encoder,
    ) -> Result<Vec<Vec<f32>>, BackendError> {
        let mut rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        let mut missing: Vec<&str> = texts
            .iter()
            .filter(|t| !rows.contains_key(*t))
            .map(String::as_str)
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if !missing.is_empty() {
            let vectors = encoder.encode_texts(&missing)?;
            for (text, vector) in missing.into_iter().zip(vectors) {
                rows.insert(text.to_owned(), vector);
            }
        }
        Ok(texts.iter().map(|t| rows[t].clone()).collect())
    }

    /// Writes every text held to the cache folder (replacing what was there), with `model`'s record.
    pub fn save(&self, model: Option<&ModelInfo>) -> Result<(), TrainError> {
        let error = |detail: String| TrainError::Checkpoint {
            path: self.dir.clone(),
            detail,
        };
        std::fs::create_dir_all(&self.dir).map_err(|e| error(e.to_string()))?;
        let rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        let mut texts: Vec<&String> = rows.keys().collect();
        texts.sort_unstable();
        let data: Vec<f32> = texts
            .iter()
            .flat_map(|t| rows[*t].iter().copied())
            .collect();
        crate::npy::write_matrix(self.dir.join(FEATURES_FILE), self.dim, &data)
            .map_err(|e| error(e.to_string()))?;
        let json = serde_json::to_string(&texts).map_err(|e| error(e.to_string()))?;
        std::fs::write(self.dir.join(TEXTS_FILE), json).map_err(|e| error(e.to_string()))?;
        if let Some(model) = model {
            let json = serde_json::to_string_pretty(model).map_err(|e| error(e.to_string()))?;
            std::fs::write(self.dir.join(MODEL_FILE), json).map_err(|e| error(e.to_string()))?;
        }
        Ok(())
    }
}
