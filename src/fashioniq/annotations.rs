//! Reading the caption and split JSON files, with errors that name the file and position.

use super::error::DatasetError;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::path::Path;

/// One entry of `cap.*.json` exactly as written; validated by the loader.
#[derive(Debug, Deserialize)]
pub(super) struct RawTriplet {
    pub candidate: String,
    #[serde(default)]
    pub target: Option<String>,
    pub captions: Vec<String>,
}

pub(super) fn read_captions(path: &Path) -> Result<Vec<RawTriplet>, DatasetError> {
    read_json(path)
}

pub(super) fn read_split(path: &Path) -> Result<Vec<String>, DatasetError> {
    read_json(path)
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, DatasetError> {
    let bytes = std::fs::read(path).map_err(|source| DatasetError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| DatasetError::Json {
        path: path.to_owned(),
        line: source.line(),
        column: source.column(),
        source,
    })
}
