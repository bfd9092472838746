//! `fiq-index serve`: the JSON API and the search page over an index (the library's `fiq::server`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fiq::server::{Server, ServerOptions};
use fiq::Retriever;

/// Serve an index over HTTP: a search page (pick or upload a reference image, type a modification,
/// see the results) and a JSON API.
///
/// Routes: `GET /` (the page), `POST /query` (JSON {"text", "key", "k", "fusion", "category"}, or a
/// multipart form with an "image" file), `GET /items`, `GET /items/{key}`, `GET /items/{key}/image`,
/// `GET /info`, `GET /healthz`, `GET /metrics`. Queries of concurrent requests are answered together
/// in batches by one shared retriever. Stops cleanly on SIGTERM or Ctrl-C.
///
/// On a machine with few cores, start it with OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1: the batches
/// are the parallelism, and FAISS's and OpenBLAS's own threads inside each batch otherwise contend
/// with the server's (measured: batching then halves the requests/s; BENCHMARKS.md, "Serving").
///
/// Example:
///
///   fiq-index serve INDEX --addr 127.0.0.1:8080
///
///   curl -s localhost:8080/query -H 'content-type: application/json' \
///     -d '{"key": "B00A0I8E7O", "text": "is red and sleeveless", "k": 5}'
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The index directory.
    pub index: PathBuf,
    /// The address to listen on (port 0: any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// The largest request body (uploads included), in bytes.
    #[arg(long, default_value_t = 8 << 20)]
    pub max_body_bytes: usize,
    /// The largest k a query may ask for.
    #[arg(long, default_value_t = 1000)]
    pub max_k: usize,
    /// How long a batch waits for more queries after its first, in milliseconds.
    #[arg(long, default_value_t = 2)]
    pub batch_window_ms: u64,
    /// The most queries answered in one batch.
    #[arg(long, default_value_t = 64)]
    pub max_batch: usize,
    #[command(flatten)]
    pub fusion: crate::fusion_args::FusionArgs,
    #[command(flatten)]
    pub model: crate::model_args::ModelArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let index = fiq::Index::open(&args.index)?;
    let encoder: Arc<dyn fiq::encoder::Encoder> = Arc::new(args.model.load()?);
    let fusion = args.fusion.fusion(index.dim())?;
    let retriever = Arc::new(Retriever::new(index, encoder, fusion)?);
    let options = ServerOptions {
        max_body_bytes: args.max_body_bytes,
        max_k: args.max_k,
        batch_window: Duration::from_millis(args.batch_window_ms),
        max_batch: args.max_batch,
    };
    let server = Server::bind(retriever, args.addr, options)?;
    // Tests and scripts read the port from this line.
    println!(
        "fiq serving {} on http://{}",
        args.index.display(),
        server.local_addr()?
    );
    server.run_until_signal()?;
    eprintln!("fiq: stopped");
    Ok(())
}
