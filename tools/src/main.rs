//! `fiq-index`: the command-line face of the fiq library.

use std::process::ExitCode;

use clap::Parser;

mod cmd {
    pub mod embed;
}

#[derive(Debug, Parser)]
#[command(
    name = "fiq-index",
    version,
    about = "Build, search and evaluate fiq composed-retrieval indexes"
)]
enum Command {
    /// Encode images or texts with a CLIP checkpoint into an .npy matrix.
    Embed(cmd::embed::Args),
}

fn main() -> ExitCode {
    let result = match Command::parse() {
        Command::Embed(args) => cmd::embed::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
