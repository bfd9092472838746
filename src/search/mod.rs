//! Search over an index's vectors. [`exact`] is brute force and the ground truth that every
//! approximate result is measured against.

pub mod exact;
mod topk;

pub use exact::{exact_search, VectorBlock};
pub use topk::{Neighbor, TopK};
