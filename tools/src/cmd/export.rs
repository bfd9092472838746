//! `fiq-index export`: copy an index's stored vectors into a Milvus collection.

use std::path::PathBuf;

use anyhow::Context;
use fiq::index::Index;
use fiq::milvus::MilvusUrl;
use fiq::pipeline::{export_to_milvus, SinkOptions};

/// Copy the live items of an index (keys, categories, stored vectors) into a Milvus collection.
///
/// The collection is created when it does not exist: key (primary), category and vector fields, fiq's
/// model record as its description (so that queries from another model are refused), and an IVF_FLAT
/// inner-product index with the index's recorded nlist; its recorded (tuned) nprobe becomes the
/// collection's default. Rows are upserted by key in acknowledged batches with retries: a rerun
/// replaces rows, never duplicates them. Then the collection is flushed and loaded for search.
///
/// Example: fiq-index export INDEX --to milvus://127.0.0.1:19530/shop
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The index to export.
    pub index: PathBuf,
    /// The collection: milvus://HOST:PORT/COLLECTION.
    #[arg(long)]
    pub to: MilvusUrl,
    /// IVF lists of the collection's index when the local index has no IVF index (its nprobe is then
    /// nlist: exact).
    #[arg(long, default_value_t = 1024)]
    pub nlist: usize,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub milvus: crate::milvus_args::MilvusArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let index = Index::open(&args.index)?;
    let options = SinkOptions {
        batch: args.milvus.milvus_batch,
        connect: args.milvus.connect()?,
        progress: !args.quiet,
    };
    let report = export_to_milvus(&index, &args.to, args.nlist, &options)
        .with_context(|| format!("exporting {} to {}", args.index.display(), args.to))?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    let record = report
        .record
        .as_ref()
        .expect("a finished export has its record");
    eprintln!(
        "{}: {} rows stored (acknowledged) in {:.2} s of inserts ({:.0} vectors/s), flush and load \
         {:.2} s; the collection holds {} rows ({} served through the IVF index, {} in segments too small to index); IVF_FLAT nlist {}, \
         nprobe {}",
        args.to,
        report.stored,
        report.upsert_time.as_secs_f64(),
        report.upsert_rate(),
        report.flush_time.as_secs_f64(),
        report.collection_rows,
        report.coverage.indexed_rows,
        report.coverage.brute_force_rows,
        record.nlist,
        record.nprobe
    );
    Ok(())
}
