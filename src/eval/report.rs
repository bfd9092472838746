//! The evaluation report: one row per category and their average, as a paper-like table or JSON.

use super::error::EvalError;
use super::metrics::{TargetRanks, PRECISION_DEFINITION};
use crate::fashioniq::{Category, Split};
use serde::Serialize;
use std::fmt;

/// Recall and precision at one K, as fractions in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MetricAtK {
    /// K.
    pub k: usize,
    /// Recall@K.
    pub recall: f64,
    /// Precision@K (see [`PRECISION_DEFINITION`]).
    pub precision: f64,
}

/// The metrics of one category.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CategoryRow {
    /// The category.
    pub category: Category,
    /// Queries scored.
    pub queries: usize,
    /// Gallery images searched.
    pub gallery: usize,
    /// Queries whose target is not in the gallery (they can never hit; 0 on FashionIQ val).
    pub targets_outside_gallery: usize,
    /// Gallery images the search could not return (not in the index); 0 when the whole gallery was
    /// searched.
    pub gallery_unsearchable: usize,
    /// Queries skipped because their reference could not be encoded (listed in
    /// [`EvalReport::skipped_queries`]); not scored.
    pub skipped_queries: usize,
    /// One entry per K, in the order asked.
    pub at: Vec<MetricAtK>,
}

/// A query the evaluation could not ask, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SkippedQuery {
    /// Its category.
    pub category: Category,
    /// Its reference image.
    pub candidate: String,
    /// Its target image.
    pub target: String,
    /// Why its reference has no vector.
    pub reason: String,
}

impl CategoryRow {
    /// Scores `ranks` at each of `ks`.
    pub fn from_ranks(
        category: Category,
        gallery: usize,
        targets_outside_gallery: usize,
        ranks: &TargetRanks,
        ks: &[usize],
    ) -> Result<CategoryRow, EvalError> {
        let at = ks
            .iter()
            .map(|&k| {
                Ok(MetricAtK {
                    k,
                    recall: ranks.recall_at(k).map_err(|error| match error {
                        EvalError::NoQueries { .. } => EvalError::NoQueries {
                            category: Some(category),
                        },
                        other => other,
                    })?,
                    precision: ranks.precision_at(k)?,
                })
            })
            .collect::<Result<_, EvalError>>()?;
        Ok(CategoryRow {
            category,
            queries: ranks.len(),
            gallery,
            targets_outside_gallery,
            gallery_unsearchable: 0,
            skipped_queries: 0,
            at,
        })
    }
}

/// Per-category metrics and their unweighted mean over categories (the papers' "average").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    /// The split evaluated.
    pub split: Split,
    /// The fusion used, as text.
    pub fusion: String,
    /// Whether each query's reference image was removed from its results.
    pub exclude_reference: bool,
    /// How precision is defined.
    pub precision_definition: &'static str,
    /// One row per category.
    pub rows: Vec<CategoryRow>,
    /// The mean of the rows at each K (each category weighs the same, whatever its query count).
    pub average: Vec<MetricAtK>,
    /// Queries that could not be asked (their reference could not be encoded), with the reason.
    pub skipped_queries: Vec<SkippedQuery>,
}

impl EvalReport {
    /// Builds the report and its average from rows that share the same Ks.
    pub fn new(
        split: Split,
        fusion: String,
        exclude_reference: bool,
        rows: Vec<CategoryRow>,
    ) -> EvalReport {
        let ks: Vec<usize> = rows
            .first()
            .map(|row| row.at.iter().map(|metric| metric.k).collect())
            .unwrap_or_default();
        let average = ks
            .iter()
            .enumerate()
            .map(|(position, &k)| {
                let mean = |value: fn(&MetricAtK) -> f64| {
                    rows.iter().map(|row| value(&row.at[position])).sum::<f64>() / rows.len() as f64
                };
                MetricAtK {
                    k,
                    recall: mean(|metric| metric.recall),
                    precision: mean(|metric| metric.precision),
                }
            })
            .collect();
        EvalReport {
            split,
            fusion,
            exclude_reference,
            precision_definition: PRECISION_DEFINITION,
            rows,
            average,
            skipped_queries: Vec::new(),
        }
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> Result<String, EvalError> {
        serde_json::to_string_pretty(self).map_err(EvalError::Json)
    }

    /// The mean of the average recalls over all K, the papers' single "Avg" number (with K = 10, 50).
    pub fn mean_recall(&self) -> f64 {
        if self.average.is_empty() {
            return 0.0;
        }
        self.average.iter().map(|metric| metric.recall).sum::<f64>() / self.average.len() as f64
    }
}

impl fmt::Display for EvalReport {
    /// A plain-text table in percent: categories as column groups, then the average, as in the papers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ks: Vec<usize> = self.average.iter().map(|metric| metric.k).collect();
        let group_width = ks.len() * 8;
        writeln!(
            f,
            "FashionIQ {} | fusion: {} | reference image {} the gallery | values in %",
            self.split,
            self.fusion,
            if self.exclude_reference {
                "removed from"
            } else {
                "kept in"
            }
        )?;
        write!(f, "{:<10}", "")?;
        for row in &self.rows {
            write!(f, "{:<group_width$}", row.category.as_str())?;
        }
        writeln!(f, "{:<group_width$}mean", "average")?;
        for (label, prefix, value) in [
            (
                "recall",
                "R",
                (|metric: &MetricAtK| metric.recall) as fn(&MetricAtK) -> f64,
            ),
            ("precision", "P", |metric: &MetricAtK| metric.precision),
        ] {
            write!(f, "{:<10}", "")?;
            for _ in 0..=self.rows.len() {
                for k in &ks {
                    write!(f, "{:<8}", format!("{prefix}@{k}"))?;
                }
            }
            writeln!(f)?;
            write!(f, "{label:<10}")?;
            for metrics in self.rows.iter().map(|row| &row.at).chain([&self.average]) {
                for metric in metrics {
                    write!(f, "{:<8.2}", 100.0 * value(metric))?;
                }
            }
            let mean =
                self.average.iter().map(value).sum::<f64>() / self.average.len().max(1) as f64;
            writeln!(f, "{:.2}", 100.0 * mean)?;
        }
        write!(f, "{:<10}", "queries")?;
        for row in &self.rows {
            write!(f, "{:<group_width$}", row.queries)?;
        }
        writeln!(f)?;
        write!(f, "{:<10}", "gallery")?;
        for row in &self.rows {
            write!(f, "{:<group_width$}", row.gallery)?;
        }
        writeln!(f)?;
        let outside: usize = self
            .rows
            .iter()
            .map(|row| row.targets_outside_gallery)
            .sum();
        if outside > 0 {
            writeln!(
                f,
                "{outside} queries have a target outside the gallery (always a miss)"
            )?;
        }
        for row in self.rows.iter().filter(|row| row.gallery_unsearchable > 0) {
            writeln!(
                f,
                "{}: {} of {} gallery images are not in the index and were not searched",
                row.category, row.gallery_unsearchable, row.gallery
            )?;
        }
        for row in self.rows.iter().filter(|row| row.skipped_queries > 0) {
            writeln!(
                f,
                "{}: {} queries skipped, their reference could not be encoded (listed in the JSON report)",
                row.category, row.skipped_queries
            )?;
        }
        writeln!(
            f,
            "average = unweighted mean over categories; {}",
            self.precision_definition
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(category: Category, ranks: Vec<Option<usize>>) -> CategoryRow {
        CategoryRow::from_ranks(category, 100, 0, &TargetRanks::from_ranks(ranks), &[10, 50])
            .unwrap()
    }

    #[test]
    fn average_is_the_unweighted_mean_of_categories() {
        // dress: 1 of 2 within 10, 2 of 2 within 50; shirt: 0 of 4 within 10, 1 of 4 within 50.
        let rows = vec![
            row(Category::Dress, vec![Some(3), Some(20)]),
            row(Category::Shirt, vec![None, Some(60), Some(49), None]),
        ];
        let report = EvalReport::new(Split::Val, "sum".into(), false, rows);
        assert_eq!(report.rows[0].at[0].recall, 0.5);
        assert_eq!(report.rows[1].at[1].recall, 0.25);
        assert_eq!(report.average[0].recall, 0.25); // (0.5 + 0) / 2, not 1/6 over queries
        assert_eq!(report.average[1].recall, 0.625); // (1 + 0.25) / 2
        assert_eq!(report.average[0].precision, 0.025);
        assert!((report.mean_recall() - 0.4375).abs() < 1e-12);
        let table = report.to_string();
        for expected in [
            "dress", "shirt", "average", "R@10", "P@50", "50.00", "62.50", "43.75", "P@K =",
        ] {
            assert!(table.contains(expected), "{expected} missing from\n{table}");
        }
        let json: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
        assert_eq!(json["rows"][0]["category"], "dress");
        assert_eq!(json["average"][1]["recall"], 0.625);
        assert_eq!(json["precision_definition"], PRECISION_DEFINITION);
    }

    #[test]
    fn empty_category_is_an_error_naming_it() {
        let error = CategoryRow::from_ranks(
            Category::Toptee,
            0,
            0,
            &TargetRanks::from_ranks(vec![]),
            &[10],
        );
        assert!(matches!(
            error,
            Err(EvalError::NoQueries {
                category: Some(Category::Toptee)
            })
        ));
    }
}
