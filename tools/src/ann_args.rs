//! The flags that choose and configure the IVF index `build` makes.

use fiq::ann::AnnParams;

/// How the IVF (FAISS) index is built.
#[derive(Debug, Clone, clap::Args)]
pub struct AnnArgs {
    /// IVF-Flat with this many lists. Default: about 4·√n lists (a power of two), fewer when k-means
    /// would get under 39 training vectors per list.
    #[arg(long, conflicts_with_all = ["factory", "no_ivf"])]
    pub ivf: Option<usize>,
    /// Any FAISS IVF factory string: IVF1024,Flat | IVF1024,SQ8 | IVF1024,PQ64 ... Compressed codes
    /// (SQ, PQ) are re-scored with the exact vectors of the index (see --rerank-factor).
    #[arg(long, conflicts_with = "no_ivf")]
    pub factory: Option<String>,
    /// Build no IVF index: every search is exact (brute force).
    #[arg(long)]
    pub no_ivf: bool,
    /// Vectors sampled to train k-means (default 64 * nlist, at most all of them).
    #[arg(long)]
    pub train_size: Option<usize>,
    /// Seed of the k-means training sample.
    #[arg(long, default_value_t = 0x000F_1A55)]
    pub ivf_seed: u64,
    /// Lists probed per query by default. Without it, `build` measures and records the smallest nprobe
    /// that reaches --tune-recall (as `fiq-index tune` does, on 500 held-out queries).
    #[arg(long)]
    pub nprobe: Option<usize>,
    /// Recall@--tune-k against exact search that the recorded nprobe must reach. Default: 0.99 with
    /// --fashioniq (whose evaluation reads the top 50), else 0.95.
    #[arg(long, conflicts_with = "nprobe")]
    pub tune_recall: Option<f64>,
    /// Neighbors per query for --tune-recall. Default: 50 with --fashioniq, else 10.
    #[arg(long, conflicts_with = "nprobe")]
    pub tune_k: Option<usize>,
    /// Record nlist / 32 as nprobe instead of measuring (a faster build; run `fiq-index tune` later).
    #[arg(long, conflicts_with_all = ["nprobe", "tune_recall", "tune_k"])]
    pub no_tune: bool,
    /// Compressed codes: candidates re-scored exactly per wanted result.
    #[arg(long, default_value_t = 4)]
    pub rerank_factor: usize,
    /// Vectors handed to FAISS per add call.
    #[arg(long, default_value_t = 65_536)]
    pub add_batch: usize,
    /// Train k-means and add on this CUDA device (a fiq built with `--features faiss-gpu`, unverified).
    #[arg(long)]
    pub gpu: Option<usize>,
}

impl AnnArgs {
    /// The build parameters for an index of `rows` vectors, or `None` with --no-ivf.
    pub fn params(&self, rows: usize) -> Option<AnnParams> {
        if self.no_ivf {
            return None;
        }
        let factory = match (&self.factory, self.ivf) {
            (Some(factory), _) => factory.clone(),
            (None, Some(nlist)) => format!("IVF{nlist},Flat"),
            (None, None) => format!("IVF{},Flat", default_nlist(rows)),
        };
        let mut params = AnnParams::with_factory(factory)
            .with_seed(self.ivf_seed)
            .with_rerank_factor(self.rerank_factor);
        params.train_size = self.train_size;
        params.nprobe = self.nprobe;
        params.add_batch = self.add_batch;
        params.gpu_device = self.gpu;
        Some(params)
    }
}

impl AnnArgs {
    /// IVF lists for a catalog of `rows`: --ivf, else the default rule.
    pub fn nlist(&self, rows: usize) -> usize {
        self.ivf.unwrap_or_else(|| default_nlist(rows))
    }
}

/// FAISS's rule of thumb, 4·√n lists, rounded to a power of two, capped so that k-means sees at least
/// 39 vectors per centroid.
fn default_nlist(rows: usize) -> usize {
    let by_size = (4.0 * (rows as f64).sqrt()).round().max(1.0) as usize;
    let cap = (rows / 39).max(1);
    let pow2_floor = |n: usize| 1usize << (usize::BITS - 1 - n.max(1).leading_zeros());
    pow2_floor(by_size.next_power_of_two().min(cap))
}

#[cfg(test)]
mod tests {
    use super::default_nlist;

    #[test]
    fn default_nlist_grows_with_the_catalog_and_leaves_k_means_enough_data() {
        assert_eq!(default_nlist(0), 1);
        assert_eq!(default_nlist(30), 1);
        assert_eq!(default_nlist(300), 4); // 300 / 39 = 7 -> 4
        assert_eq!(default_nlist(15_000), 256); // 4·√15000 = 490 -> 512, capped at 384 -> 256
        assert_eq!(default_nlist(1_000_000), 4096);
    }
}
