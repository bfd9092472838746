//! The flags of every command that talks to Milvus (`build --sink`, `export`, and `query`, `eval`,
//! `eval-ann` given a `milvus://` address).

use std::time::Duration;

use fiq::milvus::{ConnectOptions, MilvusUrl, SearchConsistency};

/// How fiq talks to a Milvus server.
#[derive(Debug, Clone, clap::Args)]
pub struct MilvusArgs {
    /// Seconds to wait for Milvus to connect or answer one call before giving up.
    #[arg(long, default_value_t = 60.0)]
    pub milvus_timeout: f64,
    /// Attempts of one insert batch (with exponential backoff) before it is reported as not stored.
    #[arg(long, default_value_t = 5)]
    pub milvus_attempts: u32,
    /// Rows per insert call.
    #[arg(long, default_value_t = 1024)]
    pub milvus_batch: usize,
    /// Which acknowledged rows a search must see: `strong` (every one; Milvus waits about 200 ms per
    /// search for its query nodes to catch up) or `bounded` (rows older than a few seconds; answers at
    /// once: what a long-running service over a catalog wants). Lookups by key are always strong.
    #[arg(long, value_enum, default_value_t = Consistency::Strong)]
    pub milvus_consistency: Consistency,
}

/// `--milvus-consistency`: Milvus's consistency levels for searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Consistency {
    /// Every write acknowledged before the search.
    Strong,
    /// Every write of this process.
    Session,
    /// Writes older than Milvus's staleness bound (5 s by default).
    Bounded,
    /// Whatever the query nodes hold.
    Eventually,
}

impl MilvusArgs {
    /// The connection options.
    pub fn connect(&self) -> anyhow::Result<ConnectOptions> {
        if !(self.milvus_timeout.is_finite() && self.milvus_timeout > 0.0) {
            anyhow::bail!("--milvus-timeout must be a positive number of seconds");
        }
        Ok(ConnectOptions {
            timeout: Duration::from_secs_f64(self.milvus_timeout),
            attempts: self.milvus_attempts.max(1),
            search_consistency: match self.milvus_consistency {
                Consistency::Strong => SearchConsistency::Strong,
                Consistency::Session => SearchConsistency::Session,
                Consistency::Bounded => SearchConsistency::Bounded,
                Consistency::Eventually => SearchConsistency::Eventually,
            },
            ..ConnectOptions::default()
        })
    }
}

/// The Milvus address in `text`, when it is one (`milvus://...`); an error when it starts like one but
/// does not parse.
pub fn milvus_url(text: &std::path::Path) -> anyhow::Result<Option<MilvusUrl>> {
    let Some(text) = text.to_str() else {
        return Ok(None);
    };
    if !MilvusUrl::is_milvus(text) {
        return Ok(None);
    }
    Ok(Some(text.parse()?))
}
