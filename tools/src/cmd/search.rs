//! `fiq-index search`: nearest neighbors of query vectors.

use std::io::Write;
use std::path::PathBuf;

use fiq::index::{Index, SearchOptions};

/// Search an index with query vectors from a .npy file; prints the k best keys and scores per query.
/// (To search with an image and a text, use `fiq-index query`.)
///
/// Queries are L2-normalized; the score is cosine similarity. Search goes through the IVF index with its
/// recorded nprobe when the index has one (see `fiq-index tune`), and is exact (brute force) otherwise
/// or with --exact.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The index directory.
    index: PathBuf,
    /// Query vectors, a 2-D float32 .npy array (one query per row).
    #[arg(long)]
    query_npy: PathBuf,
    /// Results per query.
    #[arg(short, long, default_value_t = 10)]
    k: usize,
    /// Print JSON lines ({"query": i, "hits": [{"key", "score", "id"}]}) instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    search: crate::search_args::SearchArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let index = Index::open(&args.index)?;
    let queries = fiq::npy::read_matrix(&args.query_npy)?;
    let options = SearchOptions {
        filter: None,
        mode: args.search.mode(),
    };
    let results = index.search_batch(&queries.data, args.k, &options)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (q, hits) in results.iter().enumerate() {
        if args.json {
            let hits: Vec<_> = hits
                .iter()
                .map(|h| serde_json::json!({"key": h.key, "score": h.score, "id": h.id}))
                .collect();
            writeln!(out, "{}", serde_json::json!({"query": q, "hits": hits}))?;
        } else {
            writeln!(out, "query {q}")?;
            for (rank, hit) in hits.iter().enumerate() {
                writeln!(out, "  {:>3}  {:<24} {:.6}", rank + 1, hit.key, hit.score)?;
            }
        }
    }
    out.flush()?;
    Ok(())
}
