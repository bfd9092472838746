//! One file per subcommand.

pub mod ann_store;
pub mod build_ann;
pub mod eval_ann;
pub mod tune;
