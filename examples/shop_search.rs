//! A shop's search backend in a few lines: open an index built by `fiq-index build`, load the model that
//! built it, and answer composed queries ("this dress, but red and sleeveless") typed on the command
//! line, using nothing but fiq's public API.
//!
//! ```text
//! cargo run --release --example shop_search -- INDEX MODEL_DIR [--ref KEY | --image PATH] [--category C] [-k N] TEXT...
//! ```
//!
//! For example, after the quickstart (`bash tools/quickstart.sh`):
//!
//! ```text
//! cargo run --release --example shop_search -- fiq-quickstart/index models/fiq-default \
//!     --ref B000DRESS0001 --category dress is red and sleeveless
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use fiq::encoder::{ClipEncoder, EncoderOptions};
use fiq::fusion::Fusion;
use fiq::{Query, QueryFilter, Reference, Retriever};

struct Args {
    index: PathBuf,
    model: PathBuf,
    reference: Option<Reference>,
    category: Option<String>,
    k: usize,
    text: String,
}

fn parse() -> Result<Args, String> {
    let usage = "usage: shop_search INDEX MODEL_DIR [--ref KEY | --image PATH] [--category C] [-k N] TEXT...";
    let mut rest = std::env::args().skip(1);
    let index = rest.next().ok_or(usage)?.into();
    let model = rest.next().ok_or(usage)?.into();
    let (mut reference, mut category, mut k, mut words) = (None, None, 10, Vec::new());
    while let Some(arg) = rest.next() {
        let mut value = || rest.next().ok_or(format!("{arg} needs a value\n{usage}"));
        match arg.as_str() {
            "--ref" => reference = Some(Reference::Key(value()?)),
            "--image" => reference = Some(Reference::ImagePath(value()?.into())),
            "--category" => category = Some(value()?),
            "-k" => k = value()?.parse().map_err(|e| format!("-k: {e}"))?,
            _ => words.push(arg),
        }
    }
    Ok(Args {
        index,
        model,
        reference,
        category,
        k,
        text: words.join(" "),
    })
}

fn run(args: Args) -> fiq::Result<()> {
    let encoder = ClipEncoder::load(&args.model, &EncoderOptions::default())?;
    // The retriever checks that the index was built by this model.
    let retriever = Retriever::open(&args.index, Arc::new(encoder), Fusion::Sum)?;
    let query = Query {
        reference: args.reference,
        text: args.text,
        filter: args.category.map(QueryFilter::Category),
        fusion: None,
    };
    let answer = retriever.query(&query, args.k)?;
    for (rank, hit) in answer.hits.iter().enumerate() {
        println!(
            "{:>3}  {:<20} {:.4}  {}",
            rank + 1,
            hit.key,
            hit.score,
            hit.category
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}
