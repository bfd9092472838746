//! One listing of the image folder, so that resolving thousands of names costs no `stat` each.

use super::error::DatasetError;
use super::Category;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Extensions an image name may resolve to, in order of preference when several exist.
const IMAGE_EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "webp"];

/// A file found in the listing that an image name may resolve to.
#[derive(Debug)]
struct ImageFile {
    stem: String,
    extension_rank: usize,
    path: PathBuf,
}

/// Image files by lower-cased name, for the flat folder and each per-category folder.
#[derive(Debug, Default)]
pub(super) struct ImageDirectory {
    flat: HashMap<String, Vec<ImageFile>>,
    per_category: HashMap<Category, HashMap<String, Vec<ImageFile>>>,
}

impl ImageDirectory {
    /// Lists `images_dir` and, for each requested category, `images_dir/{category}` (folder name in any case).
    pub(super) fn scan(images_dir: &Path, categories: &[Category]) -> Result<Self, DatasetError> {
        let mut directory = ImageDirectory::default();
        for entry in list(images_dir)? {
            let (path, is_dir) = entry;
            let Some(file_name) = path.file_name().and_then(|name| name.to_str()) else {
                continue;
            };
            if is_dir {
                let category = categories
                    .iter()
                    .find(|category| category.as_str().eq_ignore_ascii_case(file_name));
                if let Some(&category) = category {
                    let files = directory.per_category.entry(category).or_default();
                    for (inner, inner_is_dir) in list(&path)? {
                        if !inner_is_dir {
                            insert_image(files, inner);
                        }
                    }
                }
            } else {
                insert_image(&mut directory.flat, path);
            }
        }
        for files in directory
            .per_category
            .values_mut()
            .chain(std::iter::once(&mut directory.flat))
        {
            for candidates in files.values_mut() {
                candidates.sort_by(|a, b| {
                    (a.extension_rank, &a.stem, &a.path).cmp(&(b.extension_rank, &b.stem, &b.path))
                });
            }
        }
        Ok(directory)
    }

    /// The file for `name`: the category folder first, then the flat folder; an exact-case name before a
    /// case-insensitive one; `.jpg` before `.jpeg`, `.png`, `.webp`.
    pub(super) fn resolve(&self, category: Category, name: &str) -> Option<&Path> {
        let key = name.to_lowercase();
        let category_files = self.per_category.get(&category);
        [category_files, Some(&self.flat)]
            .into_iter()
            .flatten()
            .filter_map(|files| files.get(&key))
            .find_map(|candidates| {
                candidates
                    .iter()
                    .find(|file| file.stem == name)
                    .or_else(|| candidates.first())
                    .map(|file| file.path.as_path())
            })
    }

    /// Files hidden by another file of the same name (`X.jpg` next to `X.png`, or `x.jpg` next to `X.jpg`).
    pub(super) fn shadowed_files(&self) -> usize {
        self.per_category
            .values()
            .chain(std::iter::once(&self.flat))
            .flat_map(|files| files.values())
            .map(|candidates| candidates.len().saturating_sub(1))
            .sum()
    }
}

fn insert_image(files: &mut HashMap<String, Vec<ImageFile>>, path: PathBuf) {
    let (Some(stem), Some(extension)) = (
        path.file_stem().and_then(|stem| stem.to_str()),
        path.extension().and_then(|extension| extension.to_str()),
    ) else {
        return;
    };
    let extension = extension.to_ascii_lowercase();
    let Some(extension_rank) = IMAGE_EXTENSIONS
        .iter()
        .position(|known| *known == extension)
    else {
        return;
    };
    let stem = stem.to_owned();
    files
        .entry(stem.to_lowercase())
        .or_default()
        .push(ImageFile {
            stem,
            extension_rank,
            path,
        });
}

/// The entries of `dir` with whether each is a folder (following symbolic links).
fn list(dir: &Path) -> Result<Vec<(PathBuf, bool)>, DatasetError> {
    let io_error = |source| DatasetError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error)? {
        let entry = entry.map_err(io_error)?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(|source| DatasetError::Io {
            path: path.clone(),
            source,
        })?;
        let is_dir = if file_type.is_symlink() {
            // A dangling link is not an image; it is reported missing like any absent file.
            std::fs::metadata(&path)
                .map(|meta| meta.is_dir())
                .unwrap_or(false)
        } else {
            file_type.is_dir()
        };
        entries.push((path, is_dir));
    }
    Ok(entries)
}
