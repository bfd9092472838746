//! `fiq-index`: a thin command line over the fiq library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

#[derive(Debug, Parser)]
#[command(
    name = "fiq-index",
    version,
    about = "Build, tune and measure fiq indexes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build an IVF (FAISS) index over L2-normalized vectors.
    Build(cmd::build_ann::Args),
    /// Choose nprobe for a recall target and record it.
    Tune(cmd::tune::Args),
    /// Measure recall, QPS, latency, open time and memory of an ANN index.
    EvalAnn(cmd::eval_ann::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Build(args) => cmd::build_ann::run(args),
        Command::Tune(args) => cmd::tune::run(args),
        Command::EvalAnn(args) => cmd::eval_ann::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if err.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
