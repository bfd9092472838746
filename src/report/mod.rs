//! The HTML evaluation report: one self-contained file (no CDN, thumbnails embedded as data URIs)
//! that shows what the tables cannot: recall@k curves and the queries themselves.
//!
//! This module only renders: it turns evaluation results ([`EvalReport`]s, [`QueryRanking`]s) and
//! sampled queries with their scores and thumbnails into HTML, SVG and a little JavaScript (the
//! filters). It knows no encoder and no index; [`crate::pipeline::html_report`] gathers what it shows.
//!
//! ```
//! use fiq::report::{recall_curve, HtmlReport};
//! let report = HtmlReport { title: "empty".into(), ..HtmlReport::default() };
//! let html = report.render();
//! assert!(html.starts_with("<!doctype html>") && !html.contains("https://"));
//! assert!(recall_curve(&[], 5).average.is_empty());
//! ```

mod chart;

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::eval::{EvalReport, QueryRanking};
use crate::fashioniq::Category;

const SCRIPT: &str = include_str!("report.js");
const STYLE: &str = include_str!("report.css");

/// Recall@k for k = 1..=K: per category, and their unweighted mean (the papers' average).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RecallCurve {
    /// Per category: recall at k = 1..=K (index k - 1).
    pub per_category: Vec<(Category, Vec<f64>)>,
    /// The mean of the categories' curves; empty when there is no query.
    pub average: Vec<f64>,
}

/// Recall@k for k = 1..=`max_k` from answered queries' rankings (each holding its results, best
/// first, and its target).
pub fn recall_curve(rankings: &[QueryRanking], max_k: usize) -> RecallCurve {
    let mut ranks: BTreeMap<Category, Vec<Option<usize>>> = BTreeMap::new();
    for ranking in rankings {
        let rank = ranking.results.iter().position(|k| *k == ranking.target);
        ranks.entry(ranking.category).or_default().push(rank);
    }
    let per_category: Vec<(Category, Vec<f64>)> = ranks
        .into_iter()
        .map(|(category, ranks)| {
            let curve = (1..=max_k)
                .map(|k| {
                    let hits = ranks.iter().filter(|r| r.is_some_and(|r| r < k)).count();
                    hits as f64 / ranks.len() as f64
                })
                .collect();
            (category, curve)
        })
        .collect();
    let average = if per_category.is_empty() {
        Vec::new()
    } else {
        (0..max_k)
            .map(|i| {
                per_category.iter().map(|(_, c)| c[i]).sum::<f64>() / per_category.len() as f64
            })
            .collect()
    };
    RecallCurve {
        per_category,
        average,
    }
}

/// One evaluation run of the report: a fusion searched one way (IVF or exact).
#[derive(Debug, Clone)]
pub struct ReportRun {
    /// What the run is, as the table and the chart's legend show it ("sum, exact").
    pub name: String,
    /// Whether it searched through the IVF index (drawn dashed).
    pub ivf: bool,
    /// Its metrics.
    pub report: EvalReport,
    /// Its recall@k curve.
    pub curve: RecallCurve,
}

/// One result of a sampled query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleHit {
    /// The item.
    pub key: String,
    /// Its cosine similarity with the query.
    pub score: f32,
}

/// A query shown in the report's browsable sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleQuery {
    /// Its category.
    pub category: Category,
    /// The reference image.
    pub reference: String,
    /// The two captions.
    pub captions: [String; 2],
    /// The image it should find.
    pub target: String,
    /// The first results, best first.
    pub hits: Vec<SampleHit>,
    /// The target's 1-based rank in the category's gallery; `None` when the index does not hold it.
    pub target_rank: Option<usize>,
    /// The target's score.
    pub target_score: Option<f32>,
    /// Whether the target is outside the run's first 50 results (the failure filter).
    pub missed_top_50: bool,
}

/// Everything the report shows.
#[derive(Debug, Clone, Default)]
pub struct HtmlReport {
    /// The page's title.
    pub title: String,
    /// Lines under the title: the model, the split, the command.
    pub notes: Vec<String>,
    /// The runs, in table and legend order.
    pub runs: Vec<ReportRun>,
    /// Which run the sample comes from (its name).
    pub sample_run: String,
    /// Queries answered in that run, sampled or not.
    pub sample_total: usize,
    /// The sampled queries, failures first.
    pub samples: Vec<SampleQuery>,
    /// Thumbnails by key, as `data:` URIs.
    pub thumbnails: BTreeMap<String, String>,
}

impl HtmlReport {
    /// The whole page, one self-contained HTML document.
    pub fn render(&self) -> String {
        let mut html = String::with_capacity(64 << 10);
        let _ = write!(
            html,
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{title}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<header><h1>{title}</h1>\n",
            title = escape(&self.title)
        );
        for note in &self.notes {
            let _ = writeln!(html, "<p class=\"note\">{}</p>", escape(note));
        }
        html.push_str("</header>\n<main>\n");
        self.metrics_table(&mut html);
        html.push_str(
            "<section id=\"curves\">\n<h2>Recall@k, k = 1 to 50 (average over categories)</h2>\n",
        );
        html.push_str(&chart::recall_chart(&self.runs));
        html.push_str("</section>\n");
        self.sample_section(&mut html);
        html.push_str("</main>\n");
        let data = serde_json::json!({
            "samples": self.samples,
            "thumbnails": self.thumbnails,
        });
        // `</` cannot end the script element early once escaped.
        let data = data.to_string().replace("</", "<\\/");
        let _ = write!(
            html,
            "<script type=\"application/json\" id=\"report-data\">{data}</script>\n<script>\n{SCRIPT}</script>\n</body>\n</html>\n"
        );
        html
    }

    fn metrics_table(&self, html: &mut String) {
        html.push_str("<section id=\"metrics\">\n<h2>Metrics</h2>\n");
        let Some(first) = self.runs.first() else {
            html.push_str("<p>No evaluation run.</p>\n</section>\n");
            return;
        };
        let categories: Vec<Category> = first.report.rows.iter().map(|r| r.category).collect();
        let ks: Vec<usize> = first.report.average.iter().map(|m| m.k).collect();
        html.push_str("<table class=\"metrics\">\n<thead><tr><th rowspan=\"2\">run</th>");
        for category in &categories {
            let _ = write!(html, "<th colspan=\"{}\">{category}</th>", ks.len());
        }
        let _ = write!(
            html,
            "<th colspan=\"{}\">average</th></tr>\n<tr>",
            ks.len() + 1
        );
        for _ in 0..=categories.len() {
            for k in &ks {
                let _ = write!(html, "<th>R@{k}</th>");
            }
        }
        html.push_str("<th>mean</th></tr></thead>\n<tbody>\n");
        for run in &self.runs {
            let _ = write!(html, "<tr><th>{}</th>", escape(&run.name));
            for category in &categories {
                let row = run.report.rows.iter().find(|r| r.category == *category);
                for k in &ks {
                    let value = row.and_then(|r| r.at.iter().find(|m| m.k == *k));
                    match value {
                        Some(m) => {
                            let _ = write!(html, "<td>{:.2}</td>", 100.0 * m.recall);
                        }
                        None => html.push_str("<td>–</td>"),
                    }
                }
            }
            for m in &run.report.average {
                let _ = write!(html, "<td>{:.2}</td>", 100.0 * m.recall);
            }
            let mean = run.report.average.iter().map(|m| m.recall).sum::<f64>()
                / run.report.average.len().max(1) as f64;
            let _ = writeln!(html, "<td class=\"mean\">{:.2}</td></tr>", 100.0 * mean);
        }
        html.push_str("</tbody>\n</table>\n");
        let _ = writeln!(
            html,
            "<p class=\"note\">Recall@K in percent; precision@K = recall@K / K (one target per query). \
             Queries and gallery per category: {}.</p>",
            first
                .report
                .rows
                .iter()
                .map(|r| format!("{} {} / {}", r.category, r.queries, r.gallery))
                .collect::<Vec<_>>()
                .join(", ")
        );
        html.push_str("</section>\n");
    }

    fn sample_section(&self, html: &mut String) {
        let misses = self.samples.iter().filter(|s| s.missed_top_50).count();
        let _ = write!(
            html,
            "<section id=\"queries\">\n<h2>Queries ({shown} of {total} from {run}, failures first)</h2>\n\
             <div class=\"filters\"><label><input type=\"checkbox\" id=\"only-misses\"> only queries whose target \
             is not in the top 50 (<span id=\"miss-count\">{misses}</span>)</label>\
             <label>category <select id=\"sample-category\"><option value=\"\">all</option>",
            shown = self.samples.len(),
            total = self.sample_total,
            run = escape(&self.sample_run),
        );
        let mut categories: Vec<Category> = self.samples.iter().map(|s| s.category).collect();
        categories.sort();
        categories.dedup();
        for category in categories {
            let _ = write!(html, "<option value=\"{category}\">{category}</option>");
        }
        html.push_str(
            "</select></label> <span id=\"shown-count\"></span></div>\n<div id=\"samples\"></div>\n</section>\n",
        );
    }
}

/// `text` safe inside HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Standard base64 (RFC 4648, with padding), for `data:` URIs.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected, "{input:?}");
        }
    }

    fn ranking(category: Category, target: &str, results: &[&str]) -> QueryRanking {
        QueryRanking {
            category,
            candidate: "ref".into(),
            text: String::new(),
            captions: [String::new(), String::new()],
            target: target.into(),
            results: results.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn recall_curve_averages_categories_equally() {
        let rankings = [
            ranking(Category::Dress, "a", &["a", "b", "c"]),
            ranking(Category::Dress, "c", &["a", "b", "c"]),
            ranking(Category::Shirt, "z", &["x", "z", "y"]),
        ];
        let curve = recall_curve(&rankings, 3);
        assert_eq!(
            curve.per_category[0],
            (Category::Dress, vec![0.5, 0.5, 1.0])
        );
        assert_eq!(
            curve.per_category[1],
            (Category::Shirt, vec![0.0, 1.0, 1.0])
        );
        assert_eq!(curve.average, vec![0.25, 0.75, 1.0]);
    }

    #[test]
    fn text_is_escaped_and_the_data_cannot_close_its_script() {
        let report = HtmlReport {
            title: "<b>".into(),
            samples: vec![SampleQuery {
                category: Category::Dress,
                reference: "</script><script>alert(1)</script>".into(),
                captions: ["a".into(), "b".into()],
                target: "t".into(),
                hits: vec![],
                target_rank: None,
                target_score: None,
                missed_top_50: true,
            }],
            ..HtmlReport::default()
        };
        let html = report.render();
        assert!(html.contains("<title>&lt;b&gt;</title>"));
        assert!(!html.contains("</script><script>alert"));
    }
}
