//! CLIP's byte-level BPE through a Hugging Face `tokenizer.json`, truncated to the model's context.
//!
//! The tokenizer file carries CLIP's own text handling: NFC, whitespace collapsing and lower-casing in its
//! normalizer, and `<|startoftext|> … <|endoftext|>` from its post-processor. Truncation is configured
//! here, so that it keeps both special tokens: the end token is where the text tower pools.

use std::path::Path;

use rayon::prelude::*;

use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use super::error::EncoderError;

const END_OF_TEXT: &str = "<|endoftext|>";

pub(crate) struct ClipTokenizer {
    inner: Tokenizer,
    end_of_text: u32,
}

impl ClipTokenizer {
    /// Loads `tokenizer.json` and truncates to `context_length` tokens, special tokens included.
    pub(crate) fn load(path: &Path, context_length: usize) -> Result<Self, EncoderError> {
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
        let end_of_text = inner
            .token_to_id(END_OF_TEXT)
            .ok_or(EncoderError::MissingToken {
                path: path.to_path_buf(),
                token: END_OF_TEXT,
            })?;
        let tokenizer = Self { inner, end_of_text };
        // A tokenizer.json without CLIP's post-processor would silently drop the pooling position.
        let probe = tokenizer
            .encode(&["a"])
            .map_err(|_| EncoderError::MissingToken {
                path: path.to_path_buf(),
                token: END_OF_TEXT,
            })?;
        if probe[0].last() != Some(&end_of_text) {
            return Err(EncoderError::TokenizerLayout {
                path: path.to_path_buf(),
                reason:
                    "encoding does not end with <|endoftext|>: the CLIP post-processor is missing",
            });
        }
        Ok(tokenizer)
    }

    /// The id padding uses. Padding sits after the end token, which the causal mask hides from every
    /// earlier position, so its value never changes an embedding; CLIP's tokenizers pad with the end token.
    pub(crate) fn pad_id(&self) -> u32 {
        self.end_of_text
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
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clip-tiny/expected.json");
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let tokenizer = fixture();
        for entry in expected["texts"].as_array().unwrap() {
            let text = entry["text"].as_str().unwrap();
            let ids: Vec<u32> = entry["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            assert_eq!(tokenizer.encode(&[text]).unwrap()[0], ids, "{text:?}");
        }
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
