//! The structured records stored beside the vectors: what each item is, and which model made the vectors.

use serde::{Deserialize, Serialize};

/// Per-item metadata, stored bincode-encoded in the segment that holds the item.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ItemMeta {
    /// The catalog category (for FashionIQ: `dress`, `shirt`, `toptee`); empty when unknown.
    pub category: String,
    /// Where the item came from (an image path); empty when unknown.
    pub source: String,
}

/// The model and preprocessing that produced an index's vectors. A query vector made by another model
/// lives in another space: searching with it gives meaningless results, so fiq refuses it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ModelInfo {
    /// A human-readable name (`clip-vit-b-32`, or `external` for imported vectors).
    pub name: String,
    /// A digest of the model's configuration and weights; equal fingerprints mean the same space. A model
    /// whose image tower is digested apart writes `WHOLE/image:IMAGE` (see [`ModelInfo::image_tower`]).
    pub fingerprint: String,
    /// How images were turned into pixels (resize, crop, normalization).
    pub preprocessing: String,
}

/// Separates the whole model's digest from its image tower's inside [`ModelInfo::fingerprint`].
pub const IMAGE_TOWER_MARK: &str = "/image:";

impl ModelInfo {
    /// Whether vectors made by `query` may be searched among vectors made by `self`: `self` is an index
    /// of imported vectors (empty fingerprint: no model to check), or both come from the same model, or
    /// both record the same image tower. The last case is a text tower fine-tuned against an index's
    /// image vectors: the stored vectors are still what its image tower makes, so no rebuild is needed.
    pub fn accepts(&self, query: &ModelInfo) -> bool {
        if self.fingerprint.is_empty() || self.model_digest() == query.model_digest() {
            return true;
        }
        matches!((self.image_tower(), query.image_tower()), (Some(a), Some(b)) if a == b)
    }

    /// The whole model's digest: the fingerprint without its image-tower part.
    pub fn model_digest(&self) -> &str {
        match self.fingerprint.split_once(IMAGE_TOWER_MARK) {
            Some((whole, _)) => whole,
            None => &self.fingerprint,
        }
    }

    /// The image tower's digest (its configuration, weights and the preprocessing), when the model
    /// records one; models of families that do not split their towers have none.
    pub fn image_tower(&self) -> Option<&str> {
        self.fingerprint
            .split_once(IMAGE_TOWER_MARK)
            .map(|(_, image)| image)
            .filter(|image| !image.is_empty())
    }
}

/// Largest encoded [`ItemMeta`] a reader accepts: keeps a hostile file from asking for gigabytes.
pub const ITEM_META_LIMIT: usize = 64 * 1024;

/// Encodes one item's metadata as stored in a segment.
pub fn encode_item_meta(meta: &ItemMeta) -> crate::Result<Vec<u8>> {
    bincode::serde::encode_to_vec(meta, crate::codec::bincode_config::<ITEM_META_LIMIT>()).map_err(
        |e| crate::FormatError::Encode {
            what: "item metadata",
            detail: e.to_string(),
        },
    )
}

/// Decodes one item's metadata; `Err` carries bincode's reason.
pub fn decode_item_meta(bytes: &[u8]) -> Result<ItemMeta, String> {
    let (meta, used): (ItemMeta, usize) =
        bincode::serde::decode_from_slice(bytes, crate::codec::bincode_config::<ITEM_META_LIMIT>())
            .map_err(|e| e.to_string())?;
    if used != bytes.len() {
        return Err(format!(
            "{} trailing bytes after the record",
            bytes.len() - used
        ));
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(fingerprint: &str) -> ModelInfo {
        ModelInfo {
            fingerprint: fingerprint.into(),
            ..ModelInfo::default()
        }
    }

    #[test]
    fn a_fine_tuned_text_tower_queries_the_index_of_its_image_tower() {
        let index = model("aaaa/image:1111");
        // The same model, with or without the tower part (an index written before towers were split).
        assert!(index.accepts(&model("aaaa/image:1111")));
        assert!(model("aaaa").accepts(&model("aaaa/image:1111")));
        // Text tower fine-tuned: another whole digest, the same image tower.
        assert!(index.accepts(&model("bbbb/image:1111")));
        // Image tower fine-tuned: refused.
        assert!(!index.accepts(&model("cccc/image:2222")));
        // An old index cannot tell its image tower, so a changed model is refused.
        assert!(!model("aaaa").accepts(&model("bbbb/image:1111")));
        // Imported vectors accept anything.
        assert!(model("").accepts(&model("cccc/image:2222")));
        assert_eq!(index.model_digest(), "aaaa");
        assert_eq!(index.image_tower(), Some("1111"));
        assert_eq!(model("aaaa").image_tower(), None);
    }
}
