//! Loading one split of FashionIQ: triplets filtered to images that exist, and a gallery per category.

use super::annotations::{read_captions, read_split, RawTriplet};
use super::error::DatasetError;
use super::images::ImageDirectory;
use super::report::{CategoryCounts, LoadReport, MissingImage, MissingRole};
use super::{captions_path, split_path, Category, Split, Triplet};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// Whether [`Dataset::load`] looks for image files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImageRequirement {
    /// Resolve every name in `images/`; keep only triplets and gallery entries whose images exist.
    #[default]
    Resolve,
    /// Read captions and splits only (e.g. the public annotations without images): every triplet and gallery
    /// name is kept, no path is resolved, nothing is reported missing.
    AnnotationsOnly,
}

/// How [`Dataset::load`] treats images and duplicates.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Whether to resolve images.
    pub images: ImageRequirement,
    /// Keep repeated identical triplets instead of dropping (and counting) all but the first.
    pub keep_duplicates: bool,
}

impl LoadOptions {
    /// Options for reading annotations without images.
    pub fn annotations_only() -> Self {
        LoadOptions {
            images: ImageRequirement::AnnotationsOnly,
            ..LoadOptions::default()
        }
    }
}

/// An image of a category's gallery (the split's image list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GalleryImage {
    /// The image name, as in the split file.
    pub name: String,
    /// The resolved file; `None` in annotation-only mode.
    pub path: Option<PathBuf>,
}

#[derive(Debug)]
struct CategoryData {
    category: Category,
    triplets: Vec<Triplet>,
    gallery: Vec<GalleryImage>,
}

/// One split of FashionIQ for some categories. See the [module docs](super) for the layout.
#[derive(Debug)]
pub struct Dataset {
    root: PathBuf,
    split: Split,
    categories: Vec<CategoryData>,
    images: Option<ImageDirectory>,
    report: LoadReport,
}

impl Dataset {
    /// Reads `split` of each category under `root`.
    ///
    /// Triplets whose candidate or target image is missing, exact duplicates (unless
    /// [`LoadOptions::keep_duplicates`]) and triplets with two empty captions are left out and counted in
    /// [`Dataset::report`]; missing names are listed there too. A caption file that is malformed, has an
    /// entry with other than two captions, or (outside the test split) an entry without a target, is an error.
    pub fn load(
        root: impl AsRef<Path>,
        categories: &[Category],
        split: Split,
        options: LoadOptions,
    ) -> Result<Dataset, DatasetError> {
        let root = root.as_ref().to_owned();
        if categories.is_empty() {
            return Err(DatasetError::NoCategories);
        }
        let mut requested: Vec<Category> = Vec::new();
        for &category in categories {
            if !requested.contains(&category) {
                requested.push(category);
            }
        }
        let images = match options.images {
            ImageRequirement::AnnotationsOnly => None,
            ImageRequirement::Resolve => {
                let images_dir = root.join("images");
                if !images_dir.is_dir() {
                    return Err(DatasetError::NoImageFolder { path: images_dir });
                }
                Some(ImageDirectory::scan(&images_dir, &requested)?)
            }
        };

        let mut loaded = Vec::with_capacity(requested.len());
        let mut report = LoadReport {
            split,
            images_resolved: images.is_some(),
            categories: Vec::with_capacity(requested.len()),
            missing: Vec::new(),
            shadowed_image_files: images.as_ref().map_or(0, ImageDirectory::shadowed_files),
        };
        for category in requested {
            let mut loader = CategoryLoader {
                category,
                images: images.as_ref(),
                counts: CategoryCounts::default(),
                missing: BTreeMap::new(),
            };
            let gallery = loader.gallery(&split_path(&root, category, split))?;
            let triplets = loader.triplets(
                &captions_path(&root, category, split),
                split,
                options.keep_duplicates,
            )?;
            loader.counts.missing_images = loader.missing.len();
            report
                .missing
                .extend(loader.missing.into_iter().map(|(name, role)| MissingImage {
                    category,
                    name,
                    role,
                }));
            report.categories.push((category, loader.counts));
            loaded.push(CategoryData {
                category,
                triplets,
                gallery,
            });
        }
        Ok(Dataset {
            root,
            split,
            categories: loaded,
            images,
            report,
        })
    }

    /// The dataset root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The split loaded.
    pub fn split(&self) -> Split {
        self.split
    }

    /// The categories loaded, in request order.
    pub fn categories(&self) -> impl Iterator<Item = Category> + '_ {
        self.categories.iter().map(|data| data.category)
    }

    /// The kept triplets of `category` (empty if it was not loaded).
    pub fn triplets(&self, category: Category) -> &[Triplet] {
        self.category(category)
            .map_or(&[], |data| data.triplets.as_slice())
    }

    /// The gallery of `category`: the split's images that resolve to files, in split-file order.
    pub fn gallery(&self, category: Category) -> &[GalleryImage] {
        self.category(category)
            .map_or(&[], |data| data.gallery.as_slice())
    }

    /// The file of image `name` of `category`; `None` if it does not exist or images were not resolved.
    pub fn image_path(&self, category: Category, name: &str) -> Option<&Path> {
        self.images.as_ref()?.resolve(category, name)
    }

    /// What was read, kept and left out.
    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    fn category(&self, category: Category) -> Option<&CategoryData> {
        self.categories
            .iter()
            .find(|data| data.category == category)
    }
}

/// The state of loading one category.
struct CategoryLoader<'a> {
    category: Category,
    images: Option<&'a ImageDirectory>,
    counts: CategoryCounts,
    missing: BTreeMap<String, MissingRole>,
}

impl CategoryLoader<'_> {
    /// Whether `name` resolves (always, in annotation-only mode), recording it as missing otherwise.
    fn check_image(&mut self, name: &str, role: MissingRole) -> Result<Option<PathBuf>, ()> {
        let Some(images) = self.images else {
            return Ok(None);
        };
        match images.resolve(self.category, name) {
            Some(path) => Ok(Some(path.to_owned())),
            None => {
                self.missing.entry(name.to_owned()).or_insert(role);
                Err(())
            }
        }
    }

    fn gallery(&mut self, path: &Path) -> Result<Vec<GalleryImage>, DatasetError> {
        let names = read_split(path)?;
        self.counts.gallery_listed = names.len();
        let mut seen = HashSet::with_capacity(names.len());
        let mut gallery = Vec::with_capacity(names.len());
        for name in names {
            let name = name.trim().to_owned();
            if !seen.insert(name.clone()) {
                self.counts.gallery_duplicates += 1;
                continue;
            }
            if let Ok(path) = self.check_image(&name, MissingRole::Gallery) {
                gallery.push(GalleryImage { name, path });
            }
        }
        self.counts.gallery_kept = gallery.len();
        Ok(gallery)
    }

    fn triplets(
        &mut self,
        path: &Path,
        split: Split,
        keep_duplicates: bool,
    ) -> Result<Vec<Triplet>, DatasetError> {
        let raw = read_captions(path)?;
        self.counts.triplets_read = raw.len();
        let mut seen = HashSet::with_capacity(raw.len());
        let mut kept = Vec::with_capacity(raw.len());
        for (entry, raw_triplet) in raw.into_iter().enumerate() {
            let triplet = self.validate(path, entry, raw_triplet, split)?;
            if triplet.captions.iter().all(String::is_empty) {
                self.counts.dropped_no_caption += 1;
                continue;
            }
            let candidate_found = self
                .check_image(&triplet.candidate, MissingRole::Candidate)
                .is_ok();
            let target_found = match &triplet.target {
                Some(target) => self.check_image(target, MissingRole::Target).is_ok(),
                None => true,
            };
            if !(candidate_found && target_found) {
                self.counts.dropped_missing_image += 1;
                continue;
            }
            if !keep_duplicates && !seen.insert(triplet.clone()) {
                self.counts.dropped_duplicate += 1;
                continue;
            }
            if triplet.target.is_none() {
                self.counts.without_target += 1;
            }
            kept.push(triplet);
        }
        self.counts.triplets_kept = kept.len();
        Ok(kept)
    }

    /// Checks the shape of one caption entry and trims its names and captions.
    fn validate(
        &mut self,
        path: &Path,
        entry: usize,
        raw: RawTriplet,
        split: Split,
    ) -> Result<Triplet, DatasetError> {
        let RawTriplet {
            candidate,
            target,
            captions,
        } = raw;
        let found = captions.len();
        let Ok([first, second]) = <[String; 2]>::try_from(captions) else {
            return Err(DatasetError::CaptionCount {
                path: path.to_owned(),
                entry,
                found,
            });
        };
        let candidate = non_empty_name(path, entry, "candidate", candidate)?;
        let target = match target {
            Some(target) => Some(non_empty_name(path, entry, "target", target)?),
            None if split == Split::Test => None,
            None => {
                return Err(DatasetError::MissingTarget {
                    path: path.to_owned(),
                    entry,
                })
            }
        };
        let captions = [first, second].map(|caption| {
            let trimmed = caption.trim();
            if trimmed.len() != caption.len() {
                self.counts.trimmed_captions += 1;
            }
            if trimmed.is_empty() {
                self.counts.empty_captions += 1;
            }
            trimmed.to_owned()
        });
        Ok(Triplet {
            candidate,
            target,
            captions,
        })
    }
}

fn non_empty_name(
    path: &Path,
    entry: usize,
    field: &'static str,
    name: String,
) -> Result<String, DatasetError> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(DatasetError::EmptyImageName {
            path: path.to_owned(),
            entry,
            field,
        });
    }
    Ok(trimmed.to_owned())
}
