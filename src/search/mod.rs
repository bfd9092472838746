//! The search primitives under an index: [`exact`] brute force (the ground truth that every approximate
//! result is measured against), top-k selection and [`IdSet`] filters. Deciding how a search runs is the
//! index's job (`crate::index`), not this module's.

pub mod exact;
mod id_set;
mod topk;

pub use exact::{exact_search, VectorBlock};
pub use id_set::IdSet;
pub use topk::{Neighbor, TopK};
