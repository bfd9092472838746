//! `fiq-index query`: composed queries ("this dress, but red and sleeveless") against an index.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use fiq::index::SearchMode;
use fiq::{Answer, Query, QueryFilter, QueryOptions, Reference, Retriever};
use serde::Deserialize;

/// Ask an index composed queries: a reference (an image file, or the key of an item already in the
/// index) plus a modification text, or either alone.
///
/// The reference and text are encoded by the model (which must be the index's: a query from another
/// model is refused), fused (--fusion), and searched, through the IVF index with its recorded nprobe
/// when there is one. A reference given by key uses the vector stored in the index; nothing is
/// re-encoded. Prints the k best items with their scores (cosine similarity), categories and image
/// files.
///
/// Examples:
///
///   fiq-index query INDEX --ref B00A0I8E7O --text "is red and sleeveless" --category dress
///
///   fiq-index query INDEX --image my-dress.jpg --text "in blue" -k 5 --json
///
///   fiq-index query INDEX --queries queries.jsonl --json
///
/// Each line of a --queries file is a JSON object with any of "image" (a path), "ref" (a key), "text",
/// "category" and "keys" (a list of keys to search among). A query that cannot be answered (an
/// unreadable image, an unknown key) is reported on its own line; the others are answered.
///
/// INDEX may be a Milvus collection (milvus://HOST:PORT/COLLECTION, made by `build --sink` or
/// `export`): the same encoding and fusion, references by key from the collection's stored vectors,
/// the category or keys filter as a Milvus expression, --nprobe (or --exact: every list) per query.
/// Results then carry no image file.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The index directory, or a Milvus collection (milvus://HOST:PORT/COLLECTION).
    pub index: PathBuf,
    /// The reference image file.
    #[arg(long, conflicts_with_all = ["reference", "queries"])]
    pub image: Option<PathBuf>,
    /// The reference: the key of an item of the index (its stored vector is used).
    #[arg(long = "ref", conflicts_with = "queries")]
    pub reference: Option<String>,
    /// The modification text ("is red and sleeveless"); leave out for an image-only query.
    #[arg(long, default_value = "", conflicts_with = "queries")]
    pub text: String,
    /// Only return items of this category.
    #[arg(long, conflicts_with = "queries")]
    pub category: Option<String>,
    /// Many queries, one JSON object per line (see above).
    #[arg(long)]
    pub queries: Option<PathBuf>,
    /// Results per query.
    #[arg(short, default_value_t = 10)]
    pub k: usize,
    /// Leave a reference given by --ref out of its own results.
    #[arg(long)]
    pub exclude_reference: bool,
    /// Print one JSON object per query instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub search: crate::search_args::SearchArgs,
    #[command(flatten)]
    pub fusion: crate::fusion_args::FusionArgs,
    #[command(flatten)]
    pub model: crate::model_args::ModelArgs,
    #[command(flatten)]
    pub milvus: crate::milvus_args::MilvusArgs,
}

/// One line of a --queries file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryLine {
    image: Option<PathBuf>,
    #[serde(rename = "ref")]
    reference: Option<String>,
    #[serde(default)]
    text: String,
    category: Option<String>,
    keys: Option<Vec<String>>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let queries = match &args.queries {
        Some(path) => read_queries(path)?,
        None => vec![single_query(&args)?],
    };
    let options = QueryOptions {
        mode: args.search.mode(),
        exclude_reference: args.exclude_reference,
    };
    let encoder: Arc<dyn fiq::encoder::Encoder> = Arc::new(args.model.load()?);
    let answers = match crate::milvus_args::milvus_url(&args.index)? {
        Some(url) => {
            let collection = fiq::milvus::MilvusCollection::open(&url, &args.milvus.connect()?)?;
            let fusion = args.fusion.fusion(collection.record().dim)?;
            let retriever = fiq::milvus::MilvusRetriever::new(collection, encoder, fusion)?;
            retriever.query_batch(&queries, args.k, &options)?
        }
        None => {
            let index = fiq::Index::open(&args.index)?;
            let fusion = args.fusion.fusion(index.dim())?;
            let retriever = Retriever::new(index, encoder, fusion)?;
            retriever.query_batch(&queries, args.k, &options)?
        }
    };

    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut failed = 0;
    for (i, answer) in answers.iter().enumerate() {
        match answer {
            Ok(answer) if args.json => writeln!(out, "{}", answer_json(i, answer))?,
            Ok(answer) => print_table(&mut out, i, &queries[i], answer, queries.len() > 1)?,
            Err(error) => {
                failed += 1;
                if args.json {
                    let json = serde_json::json!({"query": i, "error": fiq::error::chain(error)});
                    writeln!(out, "{json}")?;
                } else {
                    writeln!(out, "query {i}: error: {}", fiq::error::chain(error))?;
                }
            }
        }
    }
    out.flush()?;
    if failed > 0 {
        bail!(
            "{failed} of {} queries could not be answered",
            queries.len()
        );
    }
    Ok(())
}

fn single_query(args: &Args) -> anyhow::Result<Query> {
    let reference = match (&args.image, &args.reference) {
        (Some(path), _) => Some(Reference::ImagePath(path.clone())),
        (None, Some(key)) => Some(Reference::Key(key.clone())),
        (None, None) => None,
    };
    if reference.is_none() && args.text.trim().is_empty() {
        bail!("give a reference (--image PATH or --ref KEY), a --text, or both");
    }
    Ok(Query {
        reference,
        text: args.text.clone(),
        filter: args.category.clone().map(QueryFilter::Category),
        fusion: None,
    })
}

fn read_queries(path: &std::path::Path) -> anyhow::Result<Vec<Query>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut queries = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {} line {}", path.display(), n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: QueryLine = serde_json::from_str(&line)
            .with_context(|| format!("{} line {}: not a query object", path.display(), n + 1))?;
        if parsed.image.is_some() && parsed.reference.is_some() {
            bail!(
                "{} line {}: give \"image\" or \"ref\", not both",
                path.display(),
                n + 1
            );
        }
        if parsed.category.is_some() && parsed.keys.is_some() {
            bail!(
                "{} line {}: give \"category\" or \"keys\", not both",
                path.display(),
                n + 1
            );
        }
        let reference = match (parsed.image, parsed.reference) {
            (Some(image), _) => Some(Reference::ImagePath(image)),
            (None, Some(key)) => Some(Reference::Key(key)),
            (None, None) => None,
        };
        let filter = match (parsed.category, parsed.keys) {
            (Some(category), _) => Some(QueryFilter::Category(category)),
            (None, Some(keys)) => Some(QueryFilter::Keys(keys)),
            (None, None) => None,
        };
        queries.push(Query {
            reference,
            text: parsed.text,
            filter,
            fusion: None,
        });
    }
    if queries.is_empty() {
        bail!("{} holds no query", path.display());
    }
    Ok(queries)
}

/// How a search ran, as printed: `exact`, `ivf(nprobe=N)`, or `exact (IVF fallback)`.
fn mode_text(answer: &Answer) -> String {
    match (answer.mode, answer.exact_fallback) {
        (_, true) => "exact (the probed IVF lists held too few allowed items)".into(),
        (SearchMode::Exact, false) => "exact".into(),
        (SearchMode::Ivf { nprobe }, false) => format!(
            "ivf (nprobe {})",
            nprobe.map_or("default".into(), |n| n.to_string())
        ),
    }
}

fn answer_json(query: usize, answer: &Answer) -> serde_json::Value {
    let hits: Vec<_> = answer
        .hits
        .iter()
        .map(|h| {
            serde_json::json!({
                "key": h.key,
                "score": h.score,
                "category": h.category,
                "image": h.image,
            })
        })
        .collect();
    let (mode, nprobe) = match answer.mode {
        SearchMode::Exact => ("exact", None),
        SearchMode::Ivf { nprobe } => ("ivf", nprobe),
    };
    serde_json::json!({
        "query": query,
        "hits": hits,
        "mode": mode,
        "nprobe": nprobe,
        "exact_fallback": answer.exact_fallback,
    })
}

fn print_table(
    out: &mut impl Write,
    i: usize,
    query: &Query,
    answer: &Answer,
    numbered: bool,
) -> std::io::Result<()> {
    if numbered {
        writeln!(out, "query {i}: {}", describe(query))?;
    }
    for (rank, hit) in answer.hits.iter().enumerate() {
        let image = hit
            .image
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        writeln!(
            out,
            "{:>3}  {:<24} {:>8.4}  {:<8} {image}",
            rank + 1,
            hit.key,
            hit.score,
            hit.category
        )?;
    }
    writeln!(out, "     searched: {}", mode_text(answer))
}

fn describe(query: &Query) -> String {
    let reference = match &query.reference {
        Some(Reference::Key(key)) => format!("ref {key}"),
        Some(Reference::ImagePath(path)) => format!("image {}", path.display()),
        Some(Reference::ImageBytes { name, .. }) => format!("image {name}"),
        Some(Reference::Vector(_)) => "vector".into(),
        None => "no reference".into(),
    };
    format!("{reference}, text {:?}", query.text)
}
