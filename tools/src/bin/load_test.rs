//! `load-test`: readers query continuously while one writer adds and removes items in batches.
//!
//! Four reader threads (`--readers`) search with the index's default IVF setting, refreshing before
//! every query (cheap when nothing changed); the writer adds `--batch` new items and commits, then
//! removes `--batch` old ones and commits, `--rounds` times, then compacts. Measured: throughput and p99
//! latency before, during, after the writes and after the compaction; errors; results naming a key
//! whose removal had committed before the reader's version (must be 0); then IVF recall@10 against
//! exact search, after `compact`, beside an index freshly built from the same rows with the same
//! parameters. Prints one JSON object.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use fiq::ann::AnnParams;
use fiq::index::{Index, IndexWriter, ItemMeta, ModelInfo, Retrain, SearchMode, SearchOptions};

/// Readers searching while a writer adds and removes items; see the module documentation.
#[derive(Debug, Parser)]
struct Args {
    /// Rows in the index before the writer starts.
    #[arg(long, default_value_t = 100_000)]
    rows: usize,
    /// Vector dimension.
    #[arg(long, default_value_t = 64)]
    dim: usize,
    /// IVF lists.
    #[arg(long, default_value_t = 256)]
    nlist: usize,
    /// Lists probed by default.
    #[arg(long, default_value_t = 16)]
    nprobe: usize,
    /// Items per add batch and per remove batch.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Rounds of (add a batch, commit, remove a batch, commit).
    #[arg(long, default_value_t = 100)]
    rounds: usize,
    /// Reader threads.
    #[arg(long, default_value_t = 4)]
    readers: usize,
    /// Seconds of reading alone before and after the writer.
    #[arg(long, default_value_t = 10.0)]
    quiet_secs: f64,
    /// Queries for the recall measurement.
    #[arg(long, default_value_t = 1000)]
    recall_queries: usize,
}

use fiq::rng::SplitMix64 as Rng;

/// Clustered rows: 1024 centers plus wide noise, so that IVF has structure to find and still misses
/// some true neighbors at a small `nprobe` (recall well below 1 says the measurement can see a loss).
struct Data {
    dim: usize,
    centers: Vec<Vec<f32>>,
}

impl Data {
    fn row(&self, i: u64) -> Vec<f32> {
        let mut rng = Rng::new(i.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0xA5A5);
        let center = &self.centers[rng.below(self.centers.len())];
        (0..self.dim)
            .map(|c| center[c] + 0.35 * rng.uniform(-0.5, 0.5))
            .collect()
    }
}

/// Latencies and errors of one phase, from all readers.
#[derive(Default)]
struct Phase {
    latencies_us: Vec<u64>,
    errors: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("index");
    let mut rng = Rng::new(3);
    let data = Arc::new(Data {
        dim: args.dim,
        centers: (0..1024)
            .map(|_| (0..args.dim).map(|_| rng.uniform(-0.5, 0.5)).collect())
            .collect(),
    });

    let started = Instant::now();
    let mut writer = IndexWriter::create(&path, args.dim, ModelInfo::default())?;
    for i in 0..args.rows as u64 {
        writer.add(&format!("k{i}"), &data.row(i), &ItemMeta::default())?;
    }
    writer.commit()?;
    let params = AnnParams::ivf_flat(args.nlist).with_nprobe(args.nprobe);
    writer.build_ann(&params, &())?;
    writer.commit()?;
    let build_secs = started.elapsed().as_secs_f64();

    // Key -> generation whose commit removed it.
    let removed: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    // 0 before, 1 during, 2 after the writes (before compaction), 3 after compaction.
    let phase = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let stale_results = Arc::new(AtomicU64::new(0));
    let phases: Arc<Mutex<[Phase; 4]>> = Arc::default();
    let mut readers = Vec::new();
    for r in 0..args.readers {
        let (path, data, removed, phase, stop, stale, phases) = (
            path.clone(),
            data.clone(),
            removed.clone(),
            phase.clone(),
            stop.clone(),
            stale_results.clone(),
            phases.clone(),
        );
        readers.push(std::thread::spawn(move || -> anyhow::Result<()> {
            let mut index = Index::open(&path)?;
            let mut local: [Phase; 4] = Default::default();
            let mut q = r as u64 * 1_000_003;
            while !stop.load(Ordering::Relaxed) {
                let p = phase.load(Ordering::Relaxed) as usize;
                q += 1;
                let query = data.row(u64::MAX / 2 + q);
                let t = Instant::now();
                let result = match index.refresh() {
                    Ok(_) => index.search(&query, 10),
                    Err(e) => Err(e),
                };
                local[p].latencies_us.push(t.elapsed().as_micros() as u64);
                match result {
                    Err(_) => local[p].errors += 1,
                    Ok(hits) => {
                        let removed = removed.lock().expect("removed map");
                        for hit in hits {
                            if removed
                                .get(&hit.key)
                                .is_some_and(|&g| g <= index.generation())
                            {
                                stale.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
            }
            let mut all = phases.lock().expect("phases");
            for (into, from) in all.iter_mut().zip(local) {
                into.latencies_us.extend(from.latencies_us);
                into.errors += from.errors;
            }
            Ok(())
        }));
    }

    let quiet = Duration::from_secs_f64(args.quiet_secs);
    std::thread::sleep(quiet);
    phase.store(1, Ordering::Relaxed);
    let during_started = Instant::now();
    let mut next_new = args.rows as u64;
    let mut next_old = 0u64;
    let mut commits = 0;
    for _ in 0..args.rounds {
        for _ in 0..args.batch {
            writer.add(
                &format!("k{next_new}"),
                &data.row(next_new),
                &ItemMeta::default(),
            )?;
            next_new += 1;
        }
        writer.commit()?;
        // Remove a batch of the oldest live items; record the generation that removes them.
        let keys: Vec<String> = (next_old..next_old + args.batch as u64)
            .map(|i| format!("k{i}"))
            .collect();
        next_old += args.batch as u64;
        writer.remove_keys(&keys)?;
        let generation = writer.commit()?;
        let mut map = removed.lock().expect("removed map");
        for key in keys {
            map.insert(key, generation);
        }
        commits += 2;
    }
    let during = during_started.elapsed();
    phase.store(2, Ordering::Relaxed);
    std::thread::sleep(quiet);

    // Recall before compaction (appended rows scored exactly), then compact while the readers go on.
    let queries: Vec<f32> = (0..args.recall_queries as u64)
        .flat_map(|q| data.row(u64::MAX / 3 + q))
        .collect();
    let recall_now = recall(&Index::open(&path)?, &queries)?;
    let compact_started = Instant::now();
    let compaction = writer.compact(Retrain::Auto, &())?;
    let compact_secs = compact_started.elapsed().as_secs_f64();
    drop(writer);
    phase.store(3, Ordering::Relaxed);
    std::thread::sleep(quiet);
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.join().expect("reader thread")?;
    }
    let compacted = Index::open(&path)?;
    let recall_compacted = recall(&compacted, &queries)?;
    let fresh_path = dir.path().join("fresh");
    let recall_fresh = recall(&fresh_copy(&compacted, &fresh_path, &params)?, &queries)?;

    let phases = phases.lock().expect("phases");
    let names = ["before", "during", "after_writes", "after_compact"];
    let spans = [quiet, during, quiet, quiet];
    let report: Vec<serde_json::Value> = phases
        .iter()
        .zip(names.iter().zip(spans))
        .map(|(p, (name, span))| {
            let mut l = p.latencies_us.clone();
            l.sort_unstable();
            let pct = |q: f64| {
                l.get(((l.len() as f64 * q) as usize).min(l.len().saturating_sub(1)))
                    .copied()
                    .unwrap_or(0)
            };
            serde_json::json!({
                "phase": name,
                "seconds": span.as_secs_f64(),
                "queries": l.len(),
                "qps": l.len() as f64 / span.as_secs_f64(),
                "p50_ms": pct(0.50) as f64 / 1000.0,
                "p99_ms": pct(0.99) as f64 / 1000.0,
                "errors": p.errors,
            })
        })
        .collect();
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "rows": args.rows, "dim": args.dim, "nlist": args.nlist, "nprobe": args.nprobe,
            "readers": args.readers, "batch": args.batch, "rounds": args.rounds,
            "added": args.rounds * args.batch, "removed": args.rounds * args.batch,
            "commits": commits, "build_secs": build_secs,
            "phases": report,
            "removed_keys_returned_after_refresh": stale_results.load(Ordering::Relaxed),
            "recall_at_10": {
                "before_compact": recall_now,
                "after_compact": recall_compacted,
                "fresh_index": recall_fresh,
                "after_compact_minus_fresh": recall_compacted - recall_fresh,
            },
            "compact": {
                "seconds": compact_secs,
                "rows_after": compaction.rows_after,
                "drift": compaction.drift.as_ref().map(|d| if d.ratio.is_finite() { d.ratio.to_string() } else { "no trained row left".into() }),
                "ivf": format!("{:?}", compaction.ivf),
            },
        }))?
    );
    Ok(())
}

/// Recall@10 of the default IVF search against exact search.
fn recall(index: &Index, queries: &[f32]) -> anyhow::Result<f64> {
    let exact = index.neighbors(queries, 10, &SearchOptions::mode(SearchMode::Exact))?;
    let ivf = index.neighbors(queries, 10, &SearchOptions::mode(SearchMode::IVF_DEFAULT))?;
    let hits: usize = exact
        .iter()
        .zip(&ivf)
        .map(|(e, a)| a.iter().filter(|n| e.iter().any(|m| m.id == n.id)).count())
        .sum();
    Ok(hits as f64 / (exact.len() * 10) as f64)
}

/// A new index of the live rows of `index`, with an IVF index built by `params`.
fn fresh_copy(index: &Index, path: &Path, params: &AnnParams) -> anyhow::Result<Index> {
    let mut writer = IndexWriter::create(path, index.dim(), ModelInfo::default())?;
    for id in (0..index.total_rows()).filter(|&id| !index.is_deleted(id)) {
        let vector = index.vector(id).expect("id in range");
        writer.add(index.key(id)?, &vector, &index.meta(id)?)?;
    }
    writer.commit()?;
    writer.build_ann(params, &())?;
    writer.commit()?;
    Ok(Index::open(path)?)
}
