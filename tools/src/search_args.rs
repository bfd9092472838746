//! The flags that choose how a search runs (`--exact`, `--nprobe`), shared by `search`, `query` and
//! `bench query`.

use fiq::index::SearchMode;

/// Exact or IVF search.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SearchArgs {
    /// Exact search (brute force), even when the index has an IVF index.
    #[arg(long, conflicts_with = "nprobe")]
    pub exact: bool,
    /// IVF lists probed per query (default: the nprobe the index recorded when it was built or tuned).
    #[arg(long)]
    pub nprobe: Option<usize>,
}

impl SearchArgs {
    /// The mode these flags ask for; `None`: the index's default.
    pub fn mode(&self) -> Option<SearchMode> {
        match (self.exact, self.nprobe) {
            (true, _) => Some(SearchMode::Exact),
            (false, Some(nprobe)) => Some(SearchMode::Ivf {
                nprobe: Some(nprobe),
            }),
            (false, None) => None,
        }
    }
}
