//! `fiq-index eval`: Recall and Precision at 10 and 50 by the FashionIQ protocol.

use std::path::PathBuf;

use anyhow::Context;
use fiq::encoder::Encoder;
use fiq::eval::EvalOptions;
use fiq::eval::{EvalReport, QueryRanking};
use fiq::fusion::Fusion;
use fiq::index::Index;
use fiq::pipeline::{
    evaluate_index_both_ways, evaluate_index_ranked, html_report, HtmlReportOptions, RunResults,
};

/// Evaluate composed retrieval on a FashionIQ split: each triplet's reference image and its two
/// captions ("C1 and c2") form a query, searched in its category's gallery.
///
/// Recall@K: the fraction of queries whose target is among the first K results. Precision@K: the number
/// of relevant results in the first K divided by K, averaged over queries; FashionIQ has exactly one
/// relevant target per query, so P@K = R@K / K. Averages are unweighted means over categories, as in the
/// papers. The reference image stays in the gallery (FashionIQ protocol) unless --exclude-reference.
///
/// When the index has an IVF index, every table is computed twice, through the IVF index (its recorded
/// nprobe) and by exact search, with their agreement (recall@K of the IVF results against exact), so
/// that approximate search never hides a retrieval loss.
///
/// --index milvus://HOST:PORT/COLLECTION evaluates through a Milvus collection (references from its
/// stored vectors, each category's gallery as a filter expression, --nprobe or the collection's recorded
/// nprobe) and beside it fiq's own exact search over the same vectors (--local INDEX's, or the gallery
/// vectors fetched from the collection), with their agreement.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The index built from this split's gallery with the same model, or a Milvus collection
    /// (milvus://HOST:PORT/COLLECTION).
    #[arg(long)]
    index: PathBuf,
    /// With a Milvus --index: the local index whose exact search Milvus is compared with (default:
    /// exact search over the gallery vectors fetched from the collection).
    #[arg(long)]
    local: Option<PathBuf>,
    /// With a Milvus --index: IVF lists probed per query (default: the collection's recorded nprobe).
    #[arg(long)]
    nprobe: Option<usize>,
    #[command(flatten)]
    milvus: crate::milvus_args::MilvusArgs,
    #[command(flatten)]
    fusion: crate::fusion_args::FusionArgs,
    /// Remove each query's reference image from its results.
    #[arg(long)]
    exclude_reference: bool,
    /// Also report the text-only and image-only baselines.
    #[arg(long)]
    baselines: bool,
    /// Write the report(s) as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Search exactly only, even when the index has an IVF index.
    #[arg(long)]
    exact_only: bool,
    /// Also write an HTML report to this file: the metrics, recall@k curves for k = 1..50 of every
    /// run, and a browsable sample of queries (failures first) with thumbnails embedded. One file,
    /// viewable offline.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Queries in the HTML report's sample.
    #[arg(long, default_value_t = 100, requires = "html")]
    html_sample: usize,
    #[command(flatten)]
    dataset: crate::dataset_args::DatasetArgs,
    #[command(flatten)]
    model: crate::model_args::ModelArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(url) = crate::milvus_args::milvus_url(&args.index)? {
        return run_milvus(&args, &url);
    }
    if args.local.is_some() || args.nprobe.is_some() {
        anyhow::bail!("--local and --nprobe apply to a Milvus --index (milvus://...)");
    }
    let dataset = args.dataset.load()?;
    // What the loader left out is part of the result: a query dropped for a missing image is not scored.
    eprint!("{}", dataset.report());
    let index = Index::open(&args.index)?;
    let encoder = args.model.load()?;
    // The tables name the encoder and preprocessing they came from.
    let info = encoder.info();
    println!(
        "encoder {} (fingerprint {}), preprocessing {}\n",
        info.name, info.fingerprint, info.preprocessing
    );
    let chosen = args.fusion.fusion(index.dim())?;
    let mut fusions = vec![(args.fusion.fusion.clone(), chosen)];
    if args.baselines {
        fusions.push(("text only".into(), Fusion::Weighted { alpha: 1.0 }));
        fusions.push(("image only".into(), Fusion::Weighted { alpha: 0.0 }));
    }
    let mut reports: Vec<serde_json::Value> = Vec::new();
    // For the HTML report: (name, through IVF, metrics, rankings, fusion), in table order.
    let mut runs: Vec<(String, bool, EvalReport, Vec<QueryRanking>, Fusion)> = Vec::new();
    for (name, fusion) in fusions {
        let options = EvalOptions {
            fusion: fusion.clone(),
            exclude_reference: args.exclude_reference,
            ..EvalOptions::default()
        };
        if index.ann().is_some() && !args.exact_only {
            let both = evaluate_index_both_ways(&dataset, &index, &encoder, &options)?;
            println!(
                "through the IVF index (nprobe {}):\n{}",
                both.nprobe, both.ivf
            );
            println!("exact search:\n{}", both.exact);
            let overlap: Vec<String> = both
                .agreement
                .overlap_at
                .iter()
                .map(|(k, o)| format!("{:.2}% of exact top-{k}", 100.0 * o))
                .collect();
            println!(
                "IVF vs exact over {} queries: IVF returns {}; {} result lists identical; \
                 {} IVF queries answered exactly (their probed lists held too few gallery images); \
                 search {:.2} s (IVF) vs {:.2} s (exact)\n",
                both.agreement.queries,
                overlap.join(", "),
                both.agreement.identical,
                both.ivf_exact_fallbacks,
                both.ivf_search_time.as_secs_f64(),
                both.exact_search_time.as_secs_f64()
            );
            reports.push(serde_json::to_value(&both)?);
            if args.html.is_some() {
                let ivf_name = format!("{name}, IVF (nprobe {})", both.nprobe);
                runs.push((ivf_name, true, both.ivf, both.ivf_rankings, fusion.clone()));
                let exact_name = format!("{name}, exact");
                runs.push((exact_name, false, both.exact, both.exact_rankings, fusion));
            }
        } else {
            let ranked = evaluate_index_ranked(&dataset, &index, &encoder, &options)?;
            println!("{}", ranked.report);
            reports.push(serde_json::from_str(&ranked.report.to_json()?)?);
            if args.html.is_some() {
                let run_name = format!("{name}, exact");
                runs.push((run_name, false, ranked.report, ranked.rankings, fusion));
            }
        }
    }
    if let Some(path) = &args.html {
        let results: Vec<RunResults<'_>> = runs
            .iter()
            .map(|(name, ivf, report, rankings, fusion)| RunResults {
                name,
                ivf: *ivf,
                report,
                rankings,
                fusion,
            })
            .collect();
        // The sample comes from the chosen fusion's exact run: its scores are its ranking's.
        let sample_run = runs.iter().position(|run| !run.1).unwrap_or(0);
        let info = encoder.info();
        let options = HtmlReportOptions {
            title: format!("fiq evaluation: {} split", dataset.split()),
            notes: vec![
                format!(
                    "encoder {} (fingerprint {}), preprocessing {}",
                    info.name, info.fingerprint, info.preprocessing
                ),
                format!(
                    "index {} ({} items); reference {} its results",
                    args.index.display(),
                    index.len(),
                    if args.exclude_reference {
                        "removed from"
                    } else {
                        "kept in"
                    }
                ),
            ],
            sample: args.html_sample,
            ..HtmlReportOptions::default()
        };
        let html = html_report(&dataset, &index, &encoder, &results, sample_run, &options)?;
        std::fs::write(path, html).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote the HTML report {}", path.display());
    }
    if let Some(timings) = encoder.timings() {
        eprintln!(
            "encoding: text tower {:.2} s, image tower {:.2} s, image decoding {:.2} s",
            timings.text_forward.as_secs_f64(),
            timings.image_forward.as_secs_f64(),
            timings.decode.as_secs_f64()
        );
    }
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "encoder": encoder.info(),
            "dataset": dataset.report(),
            "reports": reports,
        });
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn run_milvus(args: &Args, url: &fiq::milvus::MilvusUrl) -> anyhow::Result<()> {
    if args.html.is_some() || args.exact_only {
        anyhow::bail!("--html and --exact-only are not supported with a Milvus --index yet");
    }
    let dataset = args.dataset.load()?;
    eprint!("{}", dataset.report());
    let collection = fiq::milvus::MilvusCollection::open(url, &args.milvus.connect()?)?;
    let encoder = args.model.load()?;
    let collection = collection.checked(encoder.info(), encoder.dim())?;
    let local = args.local.as_ref().map(Index::open).transpose()?;
    let info = encoder.info();
    println!(
        "encoder {} (fingerprint {}), preprocessing {}\n",
        info.name, info.fingerprint, info.preprocessing
    );
    let chosen = args.fusion.fusion(collection.record().dim)?;
    let mut fusions = vec![(args.fusion.fusion.clone(), chosen)];
    if args.baselines {
        fusions.push(("text only".into(), Fusion::Weighted { alpha: 1.0 }));
        fusions.push(("image only".into(), Fusion::Weighted { alpha: 0.0 }));
    }
    let mut reports = Vec::new();
    for (name, fusion) in fusions {
        let options = EvalOptions {
            fusion,
            exclude_reference: args.exclude_reference,
            ..EvalOptions::default()
        };
        let both = fiq::pipeline::evaluate_milvus(
            &dataset,
            &collection,
            &encoder,
            &options,
            args.nprobe,
            local.as_ref(),
        )?;
        println!(
            "{name}: through Milvus {url} (IVF_FLAT, nprobe {} of {} lists):\n{}",
            both.nprobe, both.nlist, both.milvus
        );
        println!(
            "{name}: fiq's exact search over {}:\n{}",
            both.exact_over, both.exact
        );
        let overlap: Vec<String> = both
            .agreement
            .overlap_at
            .iter()
            .map(|(k, o)| format!("{:.2}% of exact top-{k}", 100.0 * o))
            .collect();
        println!(
            "Milvus vs exact over {} queries: Milvus returns {}; {} result lists identical; Milvus \
             search {:.2} s\n",
            both.agreement.queries,
            overlap.join(", "),
            both.agreement.identical,
            both.milvus_search_time.as_secs_f64()
        );
        reports.push(serde_json::to_value(&both)?);
    }
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "encoder": encoder.info(),
            "dataset": dataset.report(),
            "milvus": url.to_string(),
            "reports": reports,
        });
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
