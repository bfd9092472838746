//! `checksum-cost`: what checking checksums on first use costs a search (RELIABILITY.md). Builds an
//! IVF-Flat index, then times, each in a fresh process state (a new `Index`, files in the page cache):
//! open; the first exact search (which checks every segment section) against the second; the first
//! every-list IVF search (which checks every list) against the second. Prints one JSON object.

use std::time::Instant;

use clap::Parser;
use fiq::ann::AnnParams;
use fiq::index::{Index, IndexWriter, ItemMeta, ModelInfo, SearchMode, SearchOptions};

/// Times searches with and without their first-use checksum checks.
#[derive(Debug, Parser)]
struct Args {
    /// Rows.
    #[arg(long, default_value_t = 200_000)]
    rows: usize,
    /// Dimension.
    #[arg(long, default_value_t = 128)]
    dim: usize,
    /// IVF lists.
    #[arg(long, default_value_t = 256)]
    nlist: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let mut writer = IndexWriter::create(dir.path(), args.dim, ModelInfo::default())?;
    let mut state = 7u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    for i in 0..args.rows {
        let row: Vec<f32> = (0..args.dim).map(|_| next()).collect();
        writer.add(&format!("k{i}"), &row, &ItemMeta::default())?;
    }
    writer.commit()?;
    writer.build_ann(&AnnParams::ivf_flat(args.nlist).with_nprobe(8), &())?;
    writer.commit()?;
    drop(writer);
    let query: Vec<f32> = (0..args.dim).map(|_| next()).collect();
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1000.0;
    let mut report = serde_json::Map::new();
    let modes = [
        ("exact", SearchMode::Exact),
        (
            "ivf_every_list",
            SearchMode::Ivf {
                nprobe: Some(args.nlist),
            },
        ),
    ];
    // Warm the page cache so that the first search's extra time is the checksums, not the disk.
    Index::open(dir.path())?.verify()?;
    for (name, mode) in modes {
        let t = Instant::now();
        let index = Index::open(dir.path())?;
        report.insert(format!("{name}_open_ms"), ms(t).into());
        let options = SearchOptions::mode(mode);
        let t = Instant::now();
        index.search_batch(&query, 10, &options)?;
        report.insert(format!("{name}_first_search_ms"), ms(t).into());
        let t = Instant::now();
        index.search_batch(&query, 10, &options)?;
        report.insert(format!("{name}_second_search_ms"), ms(t).into());
    }
    let bytes = vec![0x5au8; 256 << 20];
    let t = Instant::now();
    let crc = crc32fast::hash(&bytes);
    let secs = t.elapsed().as_secs_f64();
    report.insert("crc32_gib_per_s".into(), (0.25 / secs).into());
    report.insert("crc_of_256_mib".into(), crc.into());
    report.insert("rows".into(), args.rows.into());
    report.insert("dim".into(), args.dim.into());
    report.insert("nlist".into(), args.nlist.into());
    let store_mib = (args.rows * args.dim * 4) as f64 / (1 << 20) as f64;
    report.insert("vectors_mib".into(), store_mib.into());
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
