//! One entry point for every model family: tell the family from a directory's files (or take it as
//! given) and load it behind the [`super::Encoder`] trait.

use std::path::Path;

use super::checkpoint::{read_text, CONFIG_FILE, WEIGHTS_FILE};
use super::clip::ClipEncoder;
use super::error::EncoderError;
use super::{blip, openclip, EncoderOptions, Normalization, Resize};

/// A family of checkpoints fiq can load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// transformers' `CLIPModel` layout: `config.json` (`model_type: "clip"`), `model.safetensors`,
    /// `tokenizer.json`.
    Clip,
    /// OpenCLIP's hub layout: `open_clip_config.json`, `open_clip_model.safetensors`, `tokenizer.json`;
    /// ViT or modified-ResNet image tower.
    OpenClip,
    /// transformers' `BlipForImageTextRetrieval` (`config.json` with `model_type: "blip"`), contrastive
    /// (ITC) embeddings.
    Blip,
}

impl Family {
    /// The preprocessing the family's reference implementation applies: CLIP's short-side resize and
    /// center crop with CLIP's statistics, or BLIP's square resize with the same statistics.
    pub fn default_preprocessing(self) -> (Resize, Normalization) {
        match self {
            Family::Clip | Family::OpenClip => (Resize::ShortSide, Normalization::Clip),
            Family::Blip => (Resize::Squash, Normalization::Clip),
        }
    }

    /// The name `--arch` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Clip => "clip",
            Family::OpenClip => "openclip",
            Family::Blip => "blip",
        }
    }
}

impl std::str::FromStr for Family {
    type Err = String;

    /// `clip`, `openclip` or `blip`.
    ///
    /// ```
    /// use fiq::encoder::Family;
    /// assert_eq!("openclip".parse::<Family>(), Ok(Family::OpenClip));
    /// assert!("siglip".parse::<Family>().is_err());
    /// ```
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "clip" => Ok(Family::Clip),
            "openclip" => Ok(Family::OpenClip),
            "blip" => Ok(Family::Blip),
            _ => Err(format!(
                "model family {text:?}: expected clip, openclip or blip"
            )),
        }
    }
}

/// Which family the files in `dir` belong to.
///
/// A transformers `config.json` beside `model.safetensors` decides by its `model_type` (`clip`, or absent
/// as in old CLIP uploads; `blip`); otherwise `open_clip_config.json` means OpenCLIP. Some OpenCLIP hub
/// repositories carry both layouts of the same weights; the transformers one is then read.
pub fn detect_family(dir: &Path) -> Result<Family, EncoderError> {
    let unknown = |reason: String| EncoderError::UnknownFamily {
        dir: dir.to_path_buf(),
        family: "any known family".into(),
        reason,
    };
    let config = dir.join(CONFIG_FILE);
    if config.is_file() && dir.join(WEIGHTS_FILE).is_file() {
        let json: serde_json::Value =
            serde_json::from_str(&read_text(&config)?).map_err(|source| {
                EncoderError::ConfigParse {
                    path: config.clone(),
                    source,
                }
            })?;
        return match json.get("model_type").and_then(|t| t.as_str()) {
            None | Some("clip") => Ok(Family::Clip),
            Some("blip") => Ok(Family::Blip),
            Some(other) => Err(unknown(format!(
                "{CONFIG_FILE} says model_type {other:?}; fiq loads \"clip\" and \"blip\""
            ))),
        };
    }
    if dir.join(openclip::CONFIG_FILE).is_file() {
        return Ok(Family::OpenClip);
    }
    Err(unknown(format!(
        "expected {CONFIG_FILE} with {WEIGHTS_FILE} (transformers CLIP or BLIP) or {} (OpenCLIP)",
        openclip::CONFIG_FILE
    )))
}

/// Loads the model in `dir`: of `family` when given, else of the family [`detect_family`] finds.
///
/// Every family runs through [`ClipEncoder`]'s batching and decoding; the returned encoder's
/// [`ModelInfo`](super::ModelInfo) names the family (`openclip-RN50/<dir>`, `blip-itc/<dir>`; a
/// transformers CLIP keeps its plain directory name, as indexes built before the other families recorded
/// it) and hashes it into the fingerprint, so an index refuses queries from another family.
///
/// ```no_run
/// use std::path::Path;
/// use fiq::encoder::{load_encoder, Encoder, EncoderOptions, Family};
///
/// let dir = Path::new("models/blip-itm-base-coco");
/// let (resize, normalization) = Family::Blip.default_preprocessing();
/// let options = EncoderOptions { resize, normalization, ..EncoderOptions::default() };
/// let encoder = load_encoder(dir, None, &options)?;
/// assert_eq!(encoder.dim(), 256);
/// # Ok::<(), fiq::encoder::EncoderError>(())
/// ```
pub fn load_encoder(
    dir: &Path,
    family: Option<Family>,
    options: &EncoderOptions,
) -> Result<ClipEncoder, EncoderError> {
    let family = match family {
        Some(family) => family,
        None => detect_family(dir)?,
    };
    match family {
        Family::Clip => ClipEncoder::load(dir, options),
        Family::OpenClip => Ok(ClipEncoder::from_parts(
            openclip::load(dir, options)?,
            options,
        )),
        Family::Blip => Ok(ClipEncoder::from_parts(blip::load(dir, options)?, options)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_told_apart_by_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        assert!(matches!(
            detect_family(path),
            Err(EncoderError::UnknownFamily { .. })
        ));
        std::fs::write(path.join(openclip::CONFIG_FILE), "{}").unwrap();
        assert_eq!(detect_family(path).unwrap(), Family::OpenClip);
        std::fs::write(path.join(WEIGHTS_FILE), "").unwrap();
        std::fs::write(path.join(CONFIG_FILE), r#"{"model_type": "blip"}"#).unwrap();
        assert_eq!(detect_family(path).unwrap(), Family::Blip);
        std::fs::write(path.join(CONFIG_FILE), r#"{"model_type": "clip"}"#).unwrap();
        assert_eq!(detect_family(path).unwrap(), Family::Clip);
        std::fs::write(path.join(CONFIG_FILE), r#"{"model_type": "siglip"}"#).unwrap();
        let err = detect_family(path).unwrap_err().to_string();
        assert!(err.contains("siglip"), "{err}");
    }
}
