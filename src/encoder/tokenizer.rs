//! A Hugging Face `tokenizer.json` truncated to the model's context: CLIP's byte-level BPE, or BLIP's
//! BERT WordPiece.
//!
//! The tokenizer file carries the model's own text handling: for CLIP, NFC, whitespace collapsing and
//! lower-casing in its normalizer and `<|startoftext|> … <|endoftext|>` from its post-processor; for BERT,
//! lower-casing and accent stripping and `[CLS] … [SEP]`. Truncation is configured here, so that it keeps
//! both special tokens: CLIP's text tower pools at the end token.

use std::path::Path;

use rayon::prelude::*;

use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use super::error::EncoderError;

/// The special tokens a family's tokenizer must end every text with and pad with.
pub(crate) struct Specials {
    end: &'static str,
    pad: &'static str,
    /// Why a tokenizer whose encodings lack `end` is refused.
    missing_end: &'static str,
}

/// CLIP's BPE (also OpenCLIP's): pads with the end token, which the causal mask hides.
pub(crate) const CLIP_SPECIALS: Specials = Specials {
    end: "<|endoftext|>",
    pad: "<|endoftext|>",
    missing_end: "encoding does not end with <|endoftext|>: the CLIP post-processor is missing",
};

/// BERT's WordPiece (BLIP): `[CLS] … [SEP]`, padded with `[PAD]` under an attention mask.
pub(crate) const BERT_SPECIALS: Specials = Specials {
    end: "[SEP]",
    pad: "[PAD]",
    missing_end: "encoding does not end with [SEP]: the BERT post-processor is missing",
};

pub(crate) struct ClipTokenizer {
    inner: Tokenizer,
    pad: u32,
}

impl ClipTokenizer {
    /// Loads a CLIP `tokenizer.json` and truncates to `context_length` tokens, special tokens included.
    pub(crate) fn load(path: &Path, context_length: usize) -> Result<Self, EncoderError> {
        Self::load_with(path, context_length, &CLIP_SPECIALS)
    }

    /// [`load`](Self::load) for a tokenizer whose encodings end with `specials.end`.
    pub(crate) fn load_with(
        path: &Path,
        context_length: usize,
        specials: &Specials,
    ) -> Result<Self, EncoderError> {
        let tokenizer_error = |source| EncoderError::Tokenizer {
            path: path.to_path_buf(),
            source,
        };
        let mut inner = Tokenizer::from_file(path).map_err(tokenizer_error)?;
        inner
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: context_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(tokenizer_error)?;
        inner.with_padding(None);
        let id_of = |token: &'static str| {
            inner.token_to_id(token).ok_or(EncoderError::MissingToken {
                path: path.to_path_buf(),
                token,
            })
        };
        let end = id_of(specials.end)?;
        let pad = id_of(specials.pad)?;
        let tokenizer = Self { inner, pad };
        // A tokenizer.json without the family's post-processor would silently drop the pooling position.
        let probe = tokenizer
            .encode(&["a"])
            .map_err(|_| EncoderError::MissingToken {
                path: path.to_path_buf(),
                token: specials.end,
            })?;
        if probe[0].last() != Some(&end) {
            return Err(EncoderError::TokenizerLayout {
                path: path.to_path_buf(),
                reason: specials.missing_end,
            });
        }
        Ok(tokenizer)
    }

    /// The id padding uses. For CLIP, padding sits after the end token, which the causal mask hides from
    /// every earlier position, so its value never changes an embedding; CLIP's tokenizers pad with the end
    /// token. BERT pads with `[PAD]` and masks it out.
    pub(crate) fn pad_id(&self) -> u32 {
        self.pad
    }

    /// Token ids of each text, with start and end tokens, at most the context length, unpadded.
    pub(crate) fn encode(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>, EncoderError> {
        if let Some(index) = texts.iter().position(|t| t.trim().is_empty()) {
            return Err(EncoderError::EmptyText { index });
        }
        // Tokenizing is a CPU cost a GPU model waits on; texts are independent, so spread them.
        texts
            .par_iter()
            .enumerate()
            .map(|(index, text)| {
                self.inner
                    .encode_fast(*text, true)
                    .map(|encoding| encoding.get_ids().to_vec())
                    .map_err(|source| EncoderError::Tokenize { index, source })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> ClipTokenizer {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clip-tiny/tokenizer.json");
        ClipTokenizer::load(&path, 77).expect("fixture tokenizer loads")
    }

    #[test]
    fn wraps_text_in_start_and_end_tokens() {
        let tokenizer = fixture();
        let ids = &tokenizer.encode(&["a red dress"]).unwrap()[0];
        assert_eq!(ids.first(), Some(&49406));
        assert_eq!(ids.last(), Some(&49407));
        assert_eq!(ids.len(), 5);
    }

    #[test]
    fn ids_match_the_reference_tokenizer() {
        assert_ids_match("clip-tiny", &fixture());
    }

    /// The ids a family's reference tokenizer gave for `fixture`'s texts, against ours.
    fn assert_ids_match(fixture: &str, tokenizer: &ClipTokenizer) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(fixture)
            .join("expected.json");
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        for entry in expected["texts"].as_array().unwrap() {
            let text = entry["text"].as_str().unwrap();
            let ids: Vec<u32> = entry["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            assert_eq!(
                tokenizer.encode(&[text]).unwrap()[0],
                ids,
                "{fixture} {text:?}"
            );
        }
    }

    #[test]
    fn ids_match_open_clip_and_blip_tokenizers() {
        // open_clip's own SimpleTokenizer, truncation included, against CLIP's tokenizer.json.
        assert_ids_match("openclip-vit-tiny", &fixture());
        let blip =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/blip-tiny/tokenizer.json");
        // The fixture's BLIP text tower has 64 positions.
        let blip = ClipTokenizer::load_with(&blip, 64, &BERT_SPECIALS).unwrap();
        assert_ids_match("blip-tiny", &blip);
        assert_eq!(blip.pad_id(), 0);
    }

    #[test]
    fn lower_cases_and_collapses_whitespace() {
        let tokenizer = fixture();
        let ids = tokenizer.encode(&["A RED   Dress", "a red dress"]).unwrap();
        assert_eq!(ids[0], ids[1]);
    }

    #[test]
    fn truncation_keeps_the_end_token() {
        let tokenizer = fixture();
        let long = "red ".repeat(200);
        let ids = &tokenizer.encode(&[long.as_str()]).unwrap()[0];
        assert_eq!(ids.len(), 77);
        assert_eq!(ids[0], 49406);
        assert_eq!(ids[76], 49407);
        assert!(ids[1..76].iter().all(|&id| id != 49407));
    }

    #[test]
    fn empty_text_is_an_error_naming_its_index() {
        let tokenizer = fixture();
        match tokenizer.encode(&["fine", "  \t"]) {
            Err(EncoderError::EmptyText { index }) => assert_eq!(index, 1),
            other => panic!("expected EmptyText, got {other:?}"),
        }
    }

    #[test]
    fn tokenizer_without_clip_post_processor_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        let json = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,
            "pre_tokenizer":{"type":"Whitespace"},"post_processor":null,"decoder":null,
            "model":{"type":"WordLevel","vocab":{"a":0,"<|endoftext|>":1},"unk_token":"<|endoftext|>"}}"#;
        std::fs::write(&path, json).unwrap();
        assert!(matches!(
            ClipTokenizer::load(&path, 77),
            Err(EncoderError::TokenizerLayout { .. })
        ));
    }
}
