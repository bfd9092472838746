//! One module per subcommand: each has `Args` (its flags) and `run`.

pub mod add;
pub mod bench;
pub mod build;
pub mod compact;
pub mod embed;
pub mod eval;
pub mod eval_ann;
pub mod export;
pub mod import;
pub mod info;
pub mod init_model;
pub mod pretrain;
pub mod query;
pub mod remove;
pub mod search;
pub mod serve;
pub mod synth;
pub mod train;
pub mod tune;
pub mod verify;
