//! `fiq-index eval-ann`: recall against exact search, throughput and latency, open time and resident
//! memory of an ANN index.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use fiq::ann::{recall_at_k, Neighbor};
use fiq::index::{Index, IndexError, SearchMode, SearchOptions};
use fiq::pipeline::{query_vectors, TuneQueries};
use serde::Serialize;

/// Measure an ANN index: recall@10/@50 vs exact search, QPS and p50/p99 latency for single queries and
/// batches, open time, resident memory after open and after the queries.
///
/// INDEX may be a Milvus collection (milvus://HOST:PORT/COLLECTION) with --local INDEX, the local index
/// holding the same vectors: recall is then Milvus's results against fiq's exact search over the local
/// index (by key), and QPS/latency are Milvus's (one query per call, and --batch queries per call).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The index (its IVF index made by `fiq-index build`), or a Milvus collection.
    pub index: PathBuf,
    /// With a Milvus INDEX: the local index with the same vectors (exact neighbors, held-out queries).
    #[arg(long)]
    pub local: Option<PathBuf>,
    #[command(flatten)]
    pub milvus: crate::milvus_args::MilvusArgs,
    /// Query vectors (2-D f32 .npy, L2-normalized). Default: synthetic held-out queries.
    #[arg(long)]
    pub queries: Option<PathBuf>,
    /// Synthetic queries to draw when --queries is not given.
    #[arg(long, default_value_t = 1000)]
    pub num_queries: usize,
    /// Seed of the synthetic queries (use another than tune's to measure on unseen queries).
    #[arg(long, default_value_t = 2)]
    pub seed: u64,
    /// nprobe values to measure, comma-separated (default: the recorded one).
    #[arg(long, value_delimiter = ',')]
    pub nprobe: Vec<usize>,
    /// Queries per batch for the batched measurement.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Write the measurements as JSON here too.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Reuse exact top-50 neighbors from this JSON file when it exists and matches the query count;
    /// otherwise compute them and write them here (exact search over a large store is the slow part).
    #[arg(long)]
    pub exact_cache: Option<PathBuf>,
}

/// Resident memory of this process from /proc/self/status, in KiB.
#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct Resident {
    pub total_kib: u64,
    pub anon_kib: u64,
    pub file_kib: u64,
}

impl Resident {
    /// Now; zeros where /proc is unavailable (not Linux).
    pub fn now() -> Resident {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Resident {
            total_kib: field("VmRSS:"),
            anon_kib: field("RssAnon:"),
            file_kib: field("RssFile:"),
        }
    }

    fn mib(&self) -> String {
        format!(
            "{:.1} MiB (anon {:.1}, file-backed {:.1})",
            self.total_kib as f64 / 1024.0,
            self.anon_kib as f64 / 1024.0,
            self.file_kib as f64 / 1024.0
        )
    }
}

#[derive(Debug, Serialize)]
struct Point {
    nprobe: usize,
    recall_at_10: f64,
    recall_at_50: f64,
    single_qps: f64,
    single_p50_ms: f64,
    single_p99_ms: f64,
    batch_size: usize,
    batch_qps: f64,
    batch_p50_ms: f64,
    batch_p99_ms: f64,
}

/// The latencies of one nprobe's passes over the queries: one query per call, then `batch` per call.
struct Latencies {
    single_ms: Vec<f64>,
    single_total_s: f64,
    batch_ms: Vec<f64>,
    batch_total_s: f64,
}

impl Latencies {
    /// The table's point for `queries` queries at `nprobe`, with the recalls measured.
    fn point(
        mut self,
        nprobe: usize,
        (recall_at_10, recall_at_50): (f64, f64),
        queries: usize,
        batch: usize,
    ) -> Point {
        self.single_ms.sort_by(f64::total_cmp);
        self.batch_ms.sort_by(f64::total_cmp);
        Point {
            nprobe,
            recall_at_10,
            recall_at_50,
            single_qps: queries as f64 / self.single_total_s,
            single_p50_ms: percentile(&self.single_ms, 50.0),
            single_p99_ms: percentile(&self.single_ms, 99.0),
            batch_size: batch,
            batch_qps: queries as f64 / self.batch_total_s,
            batch_p50_ms: percentile(&self.batch_ms, 50.0),
            batch_p99_ms: percentile(&self.batch_ms, 99.0),
        }
    }
}

#[derive(Debug, Serialize)]
struct Report {
    factory: String,
    nlist: usize,
    vectors: usize,
    dim: usize,
    queries: usize,
    faiss_simd: String,
    open_ms: f64,
    resident_before_open: Resident,
    resident_after_open: Resident,
    resident_after_queries: Resident,
    exact_batch_qps: f64,
    points: Vec<Point>,
}

fn percentile(sorted_ms: &[f64], p: f64) -> f64 {
    if sorted_ms.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted_ms.len() as f64).ceil() as usize;
    sorted_ms[rank.clamp(1, sorted_ms.len()) - 1]
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed().as_secs_f64() * 1e3)
}

pub fn run(args: Args) -> Result<()> {
    if let Some(url) = crate::milvus_args::milvus_url(&args.index)? {
        return run_milvus(&args, &url);
    }
    let resident_before_open = Resident::now();
    let (index, open_ms) = timed(|| Index::open(&args.index));
    let index = index.with_context(|| format!("opening {}", args.index.display()))?;
    let resident_after_open = Resident::now();
    let ann = index.ann().ok_or_else(|| IndexError::NoAnn {
        index: args.index.clone(),
    })?;

    let queries = match &args.queries {
        Some(path) => TuneQueries::Vectors(fiq::npy::read_matrix(path)?.data),
        None => TuneQueries::HeldOut {
            count: args.num_queries,
            seed: args.seed,
        },
    };
    let queries = query_vectors(&index, &queries)?;
    let search = |queries: &[f32], k: usize, mode: SearchMode| {
        index.neighbors(queries, k, &SearchOptions::mode(mode))
    };
    let dim = ann.dim();
    let nq = queries.len() / dim;
    let nprobes = if args.nprobe.is_empty() {
        vec![ann.record().nprobe]
    } else {
        args.nprobe.clone()
    };
    let batch = args.batch.max(1);

    // Approximate searches first, so that "after queries" shows what serving costs, before exact search
    // pages in the whole store.
    let mut measured = Vec::new();
    for &nprobe in &nprobes {
        let mode = SearchMode::Ivf {
            nprobe: Some(nprobe),
        };
        let mut single_ms = Vec::with_capacity(nq);
        let mut found10 = Vec::with_capacity(nq);
        let single_start = Instant::now();
        for q in queries.chunks_exact(dim) {
            let (hits, ms) = timed(|| search(q, 10, mode));
            single_ms.push(ms);
            found10.extend(hits?);
        }
        let single_total = single_start.elapsed().as_secs_f64();
        let mut batch_ms = Vec::new();
        let batch_start = Instant::now();
        for chunk in queries.chunks(batch * dim) {
            let (hits, ms) = timed(|| search(chunk, 10, mode));
            hits?;
            batch_ms.push(ms);
        }
        let batch_total = batch_start.elapsed().as_secs_f64();
        let found50 = search(&queries, 50, mode)?;
        let latencies = Latencies {
            single_ms,
            single_total_s: single_total,
            batch_ms,
            batch_total_s: batch_total,
        };
        measured.push((nprobe, found10, found50, latencies));
    }
    let resident_after_queries = Resident::now();

    let cached = args
        .exact_cache
        .as_deref()
        .and_then(read_exact_cache)
        .filter(|e| e.len() == nq);
    let (exact, exact_ms) = match cached {
        Some(exact) => (exact, f64::NAN),
        None => {
            let (exact, ms) = timed(|| search(&queries, 50, SearchMode::Exact));
            let exact = exact?;
            if let Some(path) = &args.exact_cache {
                write_exact_cache(path, &exact)?;
            }
            (exact, ms)
        }
    };
    let mut points = Vec::new();
    for (nprobe, found10, found50, latencies) in measured {
        let recalls = (
            recall_at_k(&found10, &exact, 10),
            recall_at_k(&found50, &exact, 50),
        );
        points.push(latencies.point(nprobe, recalls, nq, batch));
    }
    let r = ann.record();
    let report = Report {
        factory: r.factory.clone(),
        nlist: r.nlist,
        vectors: r.len,
        dim: r.dim,
        queries: nq,
        // How the FAISS in this binary was compiled (the record says how the writer's was).
        faiss_simd: fiq::ann::faiss_simd_level().to_owned(),
        open_ms,
        resident_before_open,
        resident_after_open,
        resident_after_queries,
        exact_batch_qps: nq as f64 / (exact_ms / 1e3),
        points,
    };
    print_report(&report);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn read_exact_cache(path: &std::path::Path) -> Option<Vec<Vec<Neighbor>>> {
    let text = std::fs::read_to_string(path).ok()?;
    let lists: Vec<Vec<(u64, f32)>> = serde_json::from_str(&text).ok()?;
    Some(
        lists
            .into_iter()
            .map(|l| {
                l.into_iter()
                    .map(|(id, score)| Neighbor { id, score })
                    .collect()
            })
            .collect(),
    )
}

fn write_exact_cache(path: &std::path::Path, exact: &[Vec<Neighbor>]) -> Result<()> {
    let lists: Vec<Vec<(u64, f32)>> = exact
        .iter()
        .map(|l| l.iter().map(|n| (n.id, n.score)).collect())
        .collect();
    std::fs::write(path, serde_json::to_string(&lists)?)
        .with_context(|| format!("writing {}", path.display()))
}

fn print_report(r: &Report) {
    println!(
        "{}: {} x {}, nlist {}, FAISS {}, {} queries",
        r.factory, r.vectors, r.dim, r.nlist, r.faiss_simd, r.queries
    );
    println!("open: {:.2} ms", r.open_ms);
    println!("resident before open: {}", r.resident_before_open.mib());
    println!("resident after open:  {}", r.resident_after_open.mib());
    println!(
        "resident after ANN queries: {}",
        r.resident_after_queries.mib()
    );
    if r.exact_batch_qps.is_finite() {
        println!("exact search (batch): {:.1} QPS", r.exact_batch_qps);
    } else {
        println!("exact search: neighbors read from the exact cache");
    }
    print_points(&r.points);
}

fn print_points(points: &[Point]) {
    println!(
        "{:>6} {:>9} {:>9} {:>10} {:>9} {:>9} {:>10} {:>10} {:>10}",
        "nprobe",
        "R@10",
        "R@50",
        "1-q QPS",
        "p50 ms",
        "p99 ms",
        "batch QPS",
        "b.p50 ms",
        "b.p99 ms"
    );
    for p in points {
        println!(
            "{:>6} {:>9.4} {:>9.4} {:>10.1} {:>9.3} {:>9.3} {:>10.1} {:>10.2} {:>10.2}",
            p.nprobe,
            p.recall_at_10,
            p.recall_at_50,
            p.single_qps,
            p.single_p50_ms,
            p.single_p99_ms,
            p.batch_qps,
            p.batch_p50_ms,
            p.batch_p99_ms
        );
    }
}

#[derive(Debug, Serialize)]
struct MilvusReport {
    collection: String,
    consistency: fiq::milvus::SearchConsistency,
    coverage: fiq::milvus::IndexCoverage,
    nlist: usize,
    rows: usize,
    dim: usize,
    queries: usize,
    exact_over: String,
    points: Vec<Point>,
}

/// Recall@k of `found` against `exact`, both as keys.
fn key_recall(found: &[Vec<String>], exact: &[Vec<String>], k: usize) -> f64 {
    let mut hit = 0usize;
    let mut total = 0usize;
    for (f, e) in found.iter().zip(exact) {
        let truth: std::collections::HashSet<&String> = e.iter().take(k).collect();
        total += truth.len();
        hit += f.iter().take(k).filter(|key| truth.contains(key)).count();
    }
    if total == 0 {
        1.0
    } else {
        hit as f64 / total as f64
    }
}

fn run_milvus(args: &Args, url: &fiq::milvus::MilvusUrl) -> Result<()> {
    let Some(local) = &args.local else {
        anyhow::bail!(
            "eval-ann of a Milvus collection needs --local INDEX, the local index holding the same \
             vectors: fiq's exact search over it is the ground truth"
        );
    };
    let index = Index::open(local).with_context(|| format!("opening {}", local.display()))?;
    let connect = args.milvus.connect()?;
    let collection = fiq::milvus::MilvusCollection::open(url, &connect)?;
    let collection = collection.checked(index.model(), index.dim())?;
    // Measure what Milvus serves through its IVF index, not segments still waiting for theirs.
    let started = Instant::now();
    let coverage = collection.flush_and_load()?;
    eprintln!(
        "{url}: {} of {} rows served through the IVF index ({} in segments too small to index; \
         waited {:.1} s)",
        coverage.indexed_rows,
        coverage.rows,
        coverage.brute_force_rows,
        started.elapsed().as_secs_f64()
    );
    let queries = match &args.queries {
        Some(path) => TuneQueries::Vectors(fiq::npy::read_matrix(path)?.data),
        None => TuneQueries::HeldOut {
            count: args.num_queries,
            seed: args.seed,
        },
    };
    let queries = query_vectors(&index, &queries)?;
    let dim = index.dim();
    let nq = queries.len() / dim;
    let keys_of = |lists: Vec<Vec<Neighbor>>| -> Result<Vec<Vec<String>>> {
        lists
            .into_iter()
            .map(|l| {
                l.into_iter()
                    .map(|n| Ok(index.key(n.id)?.to_owned()))
                    .collect::<Result<Vec<String>>>()
            })
            .collect()
    };
    let cached = args
        .exact_cache
        .as_deref()
        .and_then(read_exact_cache)
        .filter(|e| e.len() == nq);
    let exact = match cached {
        Some(exact) => exact,
        None => {
            let exact = index.neighbors(&queries, 50, &SearchOptions::mode(SearchMode::Exact))?;
            if let Some(path) = &args.exact_cache {
                write_exact_cache(path, &exact)?;
            }
            exact
        }
    };
    let exact = keys_of(exact)?;
    let nprobes = if args.nprobe.is_empty() {
        vec![collection.record().nprobe]
    } else {
        args.nprobe.clone()
    };
    let batch = args.batch.max(1);
    let keys = |lists: Vec<Vec<fiq::milvus::MilvusHit>>| -> Vec<Vec<String>> {
        lists
            .into_iter()
            .map(|l| l.into_iter().map(|h| h.key).collect())
            .collect()
    };
    let mut points = Vec::new();
    for &nprobe in &nprobes {
        let mut single_ms = Vec::with_capacity(nq);
        let mut found10 = Vec::with_capacity(nq);
        let single_start = Instant::now();
        for q in queries.chunks_exact(dim) {
            let (hits, ms) = timed(|| collection.search(q, 10, Some(nprobe), None));
            single_ms.push(ms);
            found10.extend(keys(hits?));
        }
        let single_total = single_start.elapsed().as_secs_f64();
        let mut batch_ms = Vec::new();
        let mut found50 = Vec::with_capacity(nq);
        let batch_start = Instant::now();
        for chunk in queries.chunks(batch * dim) {
            let (hits, ms) = timed(|| collection.search(chunk, 10, Some(nprobe), None));
            hits?;
            batch_ms.push(ms);
        }
        let batch_total = batch_start.elapsed().as_secs_f64();
        for chunk in queries.chunks(batch * dim) {
            found50.extend(keys(collection.search(chunk, 50, Some(nprobe), None)?));
        }
        let latencies = Latencies {
            single_ms,
            single_total_s: single_total,
            batch_ms,
            batch_total_s: batch_total,
        };
        let recalls = (
            key_recall(&found10, &exact, 10),
            key_recall(&found50, &exact, 50),
        );
        points.push(latencies.point(nprobe, recalls, nq, batch));
    }
    let report = MilvusReport {
        collection: url.to_string(),
        consistency: connect.search_consistency,
        coverage,
        nlist: collection.record().nlist,
        rows: collection.count()?,
        dim,
        queries: nq,
        exact_over: local.display().to_string(),
        points,
    };
    println!(
        "Milvus {}: IVF_FLAT (IP), {} x {}, nlist {}, {} queries, {:?} consistency; recall against \
         fiq's exact search over {}",
        report.collection,
        report.rows,
        report.dim,
        report.nlist,
        report.queries,
        report.consistency,
        report.exact_over
    );
    print_points(&report.points);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
