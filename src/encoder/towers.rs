//! The model half of an encoder: what each family's forward pass offers the shared batching code in
//! [`super::clip`], which owns decoding, batching, progress and normalization.

use candle_core::{Device, Result, Tensor};

/// An image tower and a text tower that map into one joint space.
pub(crate) trait Towers: Send + Sync {
    /// Unnormalized image embeddings (batch, dim) of preprocessed `pixels` (batch, 3, size, size).
    fn image_features(&self, pixels: &Tensor) -> Result<Tensor>;

    /// Unnormalized text embeddings (batch, dim) of unpadded token sequences; `pad_id` fills the rows to
    /// the longest.
    fn text_features(&self, sequences: &[&[u32]], pad_id: u32, device: &Device) -> Result<Tensor>;
}

/// `sequences` padded with `pad_id` to the longest, as a (batch, longest) u32 tensor.
pub(crate) fn padded_ids(sequences: &[&[u32]], pad_id: u32, device: &Device) -> Result<Tensor> {
    let longest = sequences.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut ids = Vec::with_capacity(sequences.len() * longest);
    for sequence in sequences {
        ids.extend_from_slice(sequence);
        ids.extend(std::iter::repeat_n(pad_id, longest - sequence.len()));
    }
    Tensor::from_vec(ids, (sequences.len(), longest), device)
}
