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
    /// A digest of the model's configuration and weights layout; equal fingerprints mean the same space.
    pub fingerprint: String,
    /// How images were turned into pixels (resize, crop, normalization).
    pub preprocessing: String,
}

impl ModelInfo {
    /// Whether vectors made by `query` may be searched among vectors made by `self`: the same
    /// fingerprint, or `self` is an index of imported vectors (empty fingerprint: no model to check).
    pub fn accepts(&self, query: &ModelInfo) -> bool {
        self.fingerprint.is_empty() || self.fingerprint == query.fingerprint
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
