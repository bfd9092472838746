//! One module per subcommand: each has `Args` (its flags) and `run`.

pub mod bench;
pub mod import;
pub mod info;
pub mod search;
pub mod synth;
pub mod train;
pub mod verify;
