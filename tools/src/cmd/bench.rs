//! `fiq-index bench`: measurements that go into BENCHMARKS.md. Each prints a table.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use fiq::index::{Index, SearchOptions};

/// Measure fiq on your machine; each benchmark prints a table (see BENCHMARKS.md for recorded runs).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    which: Which,
}

#[derive(Debug, clap::Subcommand)]
enum Which {
    /// Open time, memory touched by opening, and exact top-k throughput of an existing index.
    Exact(ExactArgs),
}

#[derive(Debug, clap::Args)]
struct ExactArgs {
    /// The index directory.
    index: PathBuf,
    /// Query vectors (.npy, rows × dim).
    #[arg(long)]
    queries: PathBuf,
    /// Results per query.
    #[arg(short, long, default_value_t = 10)]
    k: usize,
    /// Timed repetitions of the whole batch (the median is reported).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Also write the result ids as a .npy (int64 as f32 is lossy, so as JSON lines) for cross-checks.
    #[arg(long)]
    ids_out: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.which {
        Which::Exact(a) => exact(a),
    }
}

/// Resident memory and page faults of this process, from /proc (Linux).
#[derive(Debug, Clone, Copy, Default)]
struct ProcessMemory {
    rss_kib: u64,
    minor_faults: u64,
    major_faults: u64,
}

fn process_memory() -> ProcessMemory {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesized command name; minflt is field 10 and majflt field 12 (1-based).
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse().ok()).unwrap_or(0);
    ProcessMemory {
        rss_kib,
        minor_faults: field(10),
        major_faults: field(12),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn exact(args: ExactArgs) -> anyhow::Result<()> {
    let queries = fiq::npy::read_matrix(&args.queries)?;
    let before = process_memory();
    let mut opens = Vec::new();
    let mut index = None;
    for _ in 0..5 {
        let started = Instant::now();
        let opened = Index::open(&args.index)?;
        opens.push(started.elapsed());
        index = Some(opened);
    }
    let after_open = process_memory();
    let index = index.context("opened")?;
    let bytes = index
        .snapshot()
        .segments()
        .iter()
        .map(|s| std::fs::metadata(s.path()).map(|m| m.len()).unwrap_or(0))
        .sum::<u64>();

    let mut runs = Vec::new();
    let mut results = Vec::new();
    for _ in 0..args.repeat.max(1) {
        let started = Instant::now();
        results = index.exact_neighbors(&queries.data, args.k, &SearchOptions::default())?;
        runs.push(started.elapsed());
    }
    let search = median(runs.clone());
    let after_search = process_memory();
    if let Some(path) = &args.ids_out {
        let lines: Vec<String> = results
            .iter()
            .map(|r| {
                serde_json::to_string(&r.iter().map(|n| n.id).collect::<Vec<_>>()).expect("json")
            })
            .collect();
        std::fs::write(path, lines.join("\n") + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let threads = rayon::current_num_threads();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| index | {} rows x {} ({:.2} GiB of segments) |",
        index.len(),
        index.dim(),
        bytes as f64 / (1u64 << 30) as f64
    );
    println!(
        "| open, median of 5 | {:.3} ms |",
        median(opens).as_secs_f64() * 1e3
    );
    println!(
        "| RSS added by 5 opens | {} KiB |",
        after_open.rss_kib.saturating_sub(before.rss_kib)
    );
    println!(
        "| page faults during 5 opens (minor/major) | {}/{} |",
        after_open.minor_faults - before.minor_faults,
        after_open.major_faults - before.major_faults
    );
    println!(
        "| exact top-{} for {} queries, median of {} | {:.3} s = {:.1} queries/s ({} threads) |",
        args.k,
        queries.rows,
        runs.len(),
        search.as_secs_f64(),
        queries.rows as f64 / search.as_secs_f64(),
        threads
    );
    println!("| RSS after search | {} MiB |", after_search.rss_kib / 1024);
    Ok(())
}
