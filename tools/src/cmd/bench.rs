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
    /// Latency of one composed query at a time (p50/p99): text-only and composed (a reference by key
    /// plus a text), end to end through the retriever, and by stage (tokenize + text tower, fuse,
    /// search, keys out).
    Query(QueryArgs),
}

#[derive(Debug, clap::Args)]
struct QueryArgs {
    /// The index directory; its vectors must be the model's (or imported: any model is accepted).
    index: PathBuf,
    /// Queries timed of each kind, one at a time.
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// Untimed queries first (page cache, allocator, BLAS threads).
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// Results per query.
    #[arg(short, default_value_t = 10)]
    k: usize,
    /// Seed choosing the reference keys.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Modification texts, one per line (default: a built-in list of FashionIQ-style captions).
    #[arg(long)]
    texts: Option<PathBuf>,
    /// Write every query's text, reference key and measured milliseconds here as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    #[command(flatten)]
    search: crate::search_args::SearchArgs,
    #[command(flatten)]
    model: crate::model_args::ModelArgs,
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
        Which::Query(a) => query(a),
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

/// FashionIQ-style modification texts ("C1 and c2", as the evaluation joins two captions).
const CAPTIONS: [&str; 12] = [
    "Is red and sleeveless and has a shorter hem",
    "Is darker blue and has long sleeves",
    "Is more casual and has a floral print",
    "Has a v-neck and is black",
    "Is white with thin stripes and shorter",
    "Is longer and more formal and has no sleeves",
    "Has a graphic print and is grey",
    "Is lighter and has buttons",
    "Is solid green and has a collar",
    "Is pink and more fitted",
    "Has polka dots and is knee length",
    "Is a darker shade and has lace",
];

fn percentile_ms(times: &mut [Duration], p: f64) -> f64 {
    times.sort();
    let rank = ((p / 100.0) * times.len() as f64).ceil() as usize;
    times[rank.clamp(1, times.len()) - 1].as_secs_f64() * 1e3
}

fn query(args: QueryArgs) -> anyhow::Result<()> {
    use fiq::index::SearchOptions;
    use fiq::{Query, QueryOptions, Reference, Retriever};

    let texts: Vec<String> = match &args.texts {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect(),
        None => CAPTIONS.iter().map(|t| t.to_string()).collect(),
    };
    anyhow::ensure!(!texts.is_empty(), "no texts to query with");
    let started = Instant::now();
    let index = Index::open(&args.index)?;
    let open_ms = started.elapsed().as_secs_f64() * 1e3;
    anyhow::ensure!(!index.is_empty(), "{} is empty", args.index.display());
    let encoder: std::sync::Arc<dyn fiq::encoder::Encoder> =
        std::sync::Arc::new(args.model.load()?);
    let retriever = Retriever::new(index, encoder, fiq::fusion::Fusion::Sum)?;
    let index = retriever.index();
    let options = QueryOptions {
        mode: args.search.mode(),
        exclude_reference: false,
    };
    let search_options = SearchOptions {
        filter: None,
        mode: args.search.mode(),
    };

    // Reference keys: live ids drawn with fiq's seeded generator.
    let mut rng = fiq::rng::SplitMix64::new(args.seed);
    let mut next_id = || rng.below(index.total_rows() as usize) as u64;
    let total = args.warmup + args.queries;
    let mut cases = Vec::with_capacity(total);
    while cases.len() < total {
        let id = next_id();
        if !index.is_deleted(id) {
            let text = texts[cases.len() % texts.len()].clone();
            cases.push((text, index.key(id)?.to_owned()));
        }
    }

    #[derive(Default, serde::Serialize)]
    struct Timings {
        text_only_ms: Vec<f64>,
        composed_ms: Vec<f64>,
        text_encode_ms: Vec<f64>,
        fuse_ms: Vec<f64>,
        search_ms: Vec<f64>,
        keys_ms: Vec<f64>,
    }
    let mut t = Timings::default();
    let (mut text_only, mut composed) = (Vec::new(), Vec::new());
    let (mut encode, mut fuse, mut search, mut keys) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (n, (text, key)) in cases.iter().enumerate() {
        let timed = n >= args.warmup;
        // End to end through the retriever: what a caller of the library waits for.
        let started = Instant::now();
        let answer = retriever.query_with(&Query::new(text.as_str()), args.k, &options)?;
        let text_time = started.elapsed();
        std::hint::black_box(answer);
        let started = Instant::now();
        let query = Query::new(text.as_str()).reference(Reference::Key(key.clone()));
        let answer = retriever.query_with(&query, args.k, &options)?;
        let composed_time = started.elapsed();
        std::hint::black_box(answer);

        // The same composed query, stage by stage, through the layers the retriever calls.
        let started = Instant::now();
        let text_vector = retriever
            .encoder()
            .encode_texts(&[text.as_str()])?
            .remove(0);
        let encode_time = started.elapsed();
        let started = Instant::now();
        let id = index.id_of(key)?.context("reference key")?;
        let image_vector = index.vector(id).context("reference vector")?;
        let fused = fiq::fusion::fuse(&image_vector, &text_vector, retriever.fusion())?;
        let fuse_time = started.elapsed();
        let started = Instant::now();
        let (lists, _) = index.search_with_stats(&fused, args.k, &search_options)?;
        let search_time = started.elapsed();
        let started = Instant::now();
        let found: Vec<&str> = lists[0]
            .iter()
            .map(|n| index.key(n.id))
            .collect::<fiq::Result<_>>()?;
        let keys_time = started.elapsed();
        std::hint::black_box(found);
        if timed {
            text_only.push(text_time);
            composed.push(composed_time);
            encode.push(encode_time);
            fuse.push(fuse_time);
            search.push(search_time);
            keys.push(keys_time);
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            t.text_only_ms.push(ms(text_time));
            t.composed_ms.push(ms(composed_time));
            t.text_encode_ms.push(ms(encode_time));
            t.fuse_ms.push(ms(fuse_time));
            t.search_ms.push(ms(search_time));
            t.keys_ms.push(ms(keys_time));
        }
    }
    let mode = match (index.ann_record(), args.search.mode()) {
        (_, Some(fiq::index::SearchMode::Exact)) | (None, _) => "exact".to_string(),
        (Some(record), Some(fiq::index::SearchMode::Ivf { nprobe: Some(n) })) => {
            format!("IVF {} nprobe {n}", record.factory)
        }
        (Some(record), _) => format!("IVF {} nprobe {}", record.factory, record.nprobe),
    };
    println!(
        "index {} ({} x {}, {mode}, opened in {open_ms:.1} ms); model {}; k = {}; {} queries of each kind, \
         one at a time, after {} warm-up; {} threads",
        args.index.display(),
        index.len(),
        index.dim(),
        retriever.encoder().info().name,
        args.k,
        args.queries,
        args.warmup,
        rayon::current_num_threads()
    );
    println!("| stage | p50 ms | p99 ms |");
    println!("|---|---|---|");
    for (name, times) in [
        ("text-only query, end to end", &mut text_only),
        ("composed query, end to end", &mut composed),
        ("  tokenize + text tower", &mut encode),
        ("  reference vector + fuse", &mut fuse),
        ("  search", &mut search),
        ("  keys out", &mut keys),
    ] {
        println!(
            "| {name} | {:.3} | {:.3} |",
            percentile_ms(times, 50.0),
            percentile_ms(times, 99.0)
        );
    }
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "queries": cases[args.warmup..].iter().map(|(text, key)| serde_json::json!({"text": text, "ref": key})).collect::<Vec<_>>(),
            "timings": t,
            "mode": mode,
        });
        std::fs::write(path, serde_json::to_string(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
