//! `fiq-index`: the command-line face of the fiq library. It parses arguments, calls the library and
//! prints; all the work is in `fiq`.

mod ann_args;
mod cmd;
mod dataset_args;
mod default_model;
mod fusion_args;
mod milvus_args;
mod model_args;
mod output;
mod search_args;

use clap::{Parser, Subcommand};

/// mimalloc rather than the system allocator: see its entry in Cargo.toml (training's per-operation
/// tensors made glibc return and re-fault the same pages on every step).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Build, query, verify and evaluate fiq indexes: composed image retrieval ("this dress, but red").
///
/// An index is a directory holding memory-mapped vectors, their keys and metadata, and a FAISS IVF
/// index. Start with `fiq-index build --fashioniq ROOT --out INDEX` (encode a catalog's images) or
/// `fiq-index build --vectors X.npy --keys K.txt --out INDEX` (vectors from numpy), then ask
/// `fiq-index query INDEX --ref KEY --text "is red and sleeveless"`.
#[derive(Debug, Parser)]
#[command(name = "fiq-index", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Query(cmd::query::Args),
    Import(cmd::import::Args),
    Add(cmd::add::Args),
    Remove(cmd::remove::Args),
    Compact(cmd::compact::Args),
    Search(cmd::search::Args),
    Info(cmd::info::Args),
    Verify(cmd::verify::Args),
    Bench(cmd::bench::Args),
    Synth(cmd::synth::Args),
    Embed(cmd::embed::Args),
    Build(cmd::build::Args),
    Eval(cmd::eval::Args),
    Tune(cmd::tune::Args),
    EvalAnn(cmd::eval_ann::Args),
    Train(cmd::train::Args),
    InitModel(cmd::init_model::Args),
    Pretrain(cmd::pretrain::Args),
    Serve(cmd::serve::Args),
    Export(cmd::export::Args),
}

fn main() {
    output::restore_default_sigpipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Query(args) => cmd::query::run(args),
        Command::Import(args) => cmd::import::run(args),
        Command::Add(args) => cmd::add::run(args),
        Command::Remove(args) => cmd::remove::run(args),
        Command::Compact(args) => cmd::compact::run(args),
        Command::Search(args) => cmd::search::run(args),
        Command::Info(args) => cmd::info::run(args),
        Command::Verify(args) => cmd::verify::run(args),
        Command::Bench(args) => cmd::bench::run(args),
        Command::Synth(args) => cmd::synth::run(args),
        Command::Embed(args) => cmd::embed::run(args),
        Command::Build(args) => cmd::build::run(args),
        Command::Eval(args) => cmd::eval::run(args),
        Command::Tune(args) => cmd::tune::run(args),
        Command::EvalAnn(args) => cmd::eval_ann::run(args),
        Command::Train(args) => cmd::train::run(args),
        Command::InitModel(args) => cmd::init_model::run(args),
        Command::Pretrain(args) => cmd::pretrain::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Export(args) => cmd::export::run(args),
    };
    if let Err(err) = result {
        if output::is_broken_pipe(&err) {
            std::process::exit(0);
        }
        eprintln!("error: {err}");
        for cause in err.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
        std::process::exit(1);
    }
}
