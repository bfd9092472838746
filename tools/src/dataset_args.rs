//! The flags that choose a FashionIQ tree, its categories and its split, shared by `build` and `eval`.

use std::path::PathBuf;

use fiq::fashioniq::{Category, Dataset, LoadOptions, Split};

/// Which part of a FashionIQ tree to use.
#[derive(Debug, Clone, clap::Args)]
pub struct DatasetArgs {
    /// The FashionIQ root (captions/, image_splits/, images/).
    #[arg(long)]
    pub fashioniq: Option<PathBuf>,
    /// Categories to use (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "dress,shirt,toptee")]
    pub categories: Vec<Category>,
    /// The split: its gallery images for `build`; its triplets for `eval` (train or val, which have targets).
    #[arg(long, default_value = "val")]
    pub split: Split,
}

impl DatasetArgs {
    /// Loads the chosen categories of the split, with images resolved.
    pub fn load(&self) -> anyhow::Result<Dataset> {
        let Some(root) = &self.fashioniq else {
            anyhow::bail!("give the FashionIQ root with --fashioniq ROOT");
        };
        Ok(Dataset::load(
            root,
            &self.categories,
            self.split,
            LoadOptions::default(),
        )?)
    }
}
