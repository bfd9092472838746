//! The stand-alone ANN directory the ANN commands use until the store's manifest records ANN files:
//! `ann.json` (the vectors' path and the [`AnnFile`] records) next to the FAISS file. The vectors stay
//! where they are, in a memory-mapped `.npy`, which plays the store's role as the [`VectorSource`].

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use fiq::ann::{AnnFile, AnnIndex, VectorSource};
use serde::{Deserialize, Serialize};

/// The manifest file of a stand-alone ANN directory.
pub const MANIFEST: &str = "ann.json";

#[derive(Debug, Serialize, Deserialize)]
struct ManifestFile {
    name: String,
    len: u64,
    crc32: u32,
    params: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    vectors: PathBuf,
    files: Vec<ManifestFile>,
}

/// A stand-alone ANN directory, opened.
pub struct AnnDir {
    pub dir: PathBuf,
    pub vectors_path: PathBuf,
    pub files: Vec<AnnFile>,
}

impl AnnDir {
    /// Reads `dir/ann.json`.
    pub fn read(dir: &Path) -> Result<AnnDir> {
        let path = dir.join(MANIFEST);
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let manifest: Manifest =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        Ok(AnnDir {
            dir: dir.to_path_buf(),
            vectors_path: manifest.vectors,
            files: manifest
                .files
                .into_iter()
                .map(|f| AnnFile {
                    name: f.name,
                    len: f.len,
                    crc32: f.crc32,
                    params: f.params,
                })
                .collect(),
        })
    }

    /// Writes `dir/ann.json` atomically (temporary file, fsync, rename), so a crash leaves the old
    /// manifest or the new one.
    pub fn write(&self) -> Result<()> {
        let manifest = Manifest {
            vectors: self.vectors_path.clone(),
            files: self
                .files
                .iter()
                .map(|f| ManifestFile {
                    name: f.name.clone(),
                    len: f.len,
                    crc32: f.crc32,
                    params: f.params.clone(),
                })
                .collect(),
        };
        let text = serde_json::to_string_pretty(&manifest)?;
        let tmp = self.dir.join(format!(".{MANIFEST}.tmp"));
        fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("syncing {}", tmp.display()))?;
        let path = self.dir.join(MANIFEST);
        fs::rename(&tmp, &path).with_context(|| format!("replacing {}", path.display()))?;
        if let Ok(d) = File::open(&self.dir) {
            d.sync_all().ok();
        }
        Ok(())
    }

    /// Maps the vectors and opens the ANN index.
    pub fn open(&self) -> Result<(MappedNpy, AnnIndex)> {
        let vectors = MappedNpy::open(&self.vectors_path, true)?;
        let ann = AnnIndex::open(&self.dir, &self.files)
            .with_context(|| format!("opening the ANN index in {}", self.dir.display()))?;
        Ok((vectors, ann))
    }
}

/// A 2-D little-endian f32 `.npy` file, memory-mapped: rows are read in place.
pub struct MappedNpy {
    map: memmap2::Mmap,
    offset: usize,
    rows: usize,
    dim: usize,
    path: PathBuf,
}

impl MappedNpy {
    /// Maps `path` and checks its header: version 1-3, `<f4`, C order, 2-D, a body of exactly rows*dim
    /// floats. `random_rows`: the caller will read scattered rows (searching), not scan (building).
    pub fn open(path: &Path, random_rows: bool) -> Result<MappedNpy> {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        // SAFETY: the map is read-only. The .npy is an input the user names and must not be rewritten
        // while fiq runs; fiq never writes to it. Bounds come from the checked header, not from the bytes
        // of the body, so a concurrent change can alter values but not make fiq read outside the map.
        let map = unsafe { memmap2::Mmap::map(&file) }
            .with_context(|| format!("mapping {}", path.display()))?;
        if random_rows {
            // Serving reads rows one at a time (re-ranking): without this hint the kernel maps 64 KiB
            // around every faulted 2 KiB row ("fault-around") and resident memory grows ~30x faster
            // than the rows read. Not for builds: it also turns off read-ahead. Advice only.
            map.advise(memmap2::Advice::Random).ok();
        }
        let bad = |what: &str| {
            anyhow::anyhow!(
                "{}: not a 2-D little-endian f32 .npy ({what})",
                path.display()
            )
        };
        ensure!(
            map.len() >= 10 && &map[..6] == b"\x93NUMPY",
            bad("no NUMPY magic")
        );
        let (header_len, header_start) = match map[6] {
            1 => (u16::from_le_bytes([map[8], map[9]]) as usize, 10),
            2 | 3 if map.len() >= 12 => (
                u32::from_le_bytes([map[8], map[9], map[10], map[11]]) as usize,
                12,
            ),
            v => bail!(bad(&format!("format version {v}"))),
        };
        let offset = header_start + header_len;
        ensure!(offset <= map.len(), bad("header longer than the file"));
        let header = std::str::from_utf8(&map[header_start..offset])
            .map_err(|_| bad("header is not text"))?;
        ensure!(
            header.contains("'descr': '<f4'") || header.contains("'descr':'<f4'"),
            bad(&format!("dtype is not <f4: {}", header.trim()))
        );
        ensure!(
            header.contains("'fortran_order': False"),
            bad("Fortran order")
        );
        let shape = header
            .split("'shape':")
            .nth(1)
            .and_then(|s| s.split(')').next())
            .map(|s| s.trim().trim_start_matches('('))
            .ok_or_else(|| bad("no shape"))?;
        let dims: Vec<usize> = shape
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<usize>())
            .collect::<Result<_, _>>()
            .map_err(|_| bad(&format!("shape ({shape})")))?;
        let [rows, dim] = dims[..] else {
            bail!(bad(&format!("shape ({shape}) is not 2-D")));
        };
        ensure!(dim > 0, bad("zero columns"));
        ensure!(
            rows.checked_mul(dim).and_then(|n| n.checked_mul(4)) == Some(map.len() - offset),
            bad(&format!(
                "body is {} bytes, shape ({rows}, {dim}) needs {}",
                map.len() - offset,
                rows * dim * 4
            ))
        );
        ensure!(offset % 4 == 0, bad("data not 4-byte aligned"));
        Ok(MappedNpy {
            map,
            offset,
            rows,
            dim,
            path: path.to_path_buf(),
        })
    }

    fn all(&self) -> &[f32] {
        bytemuck::cast_slice(&self.map[self.offset..])
    }

    /// Fails unless every row has unit L2 norm (the inner product is then the cosine similarity).
    pub fn check_normalized(&self) -> Result<()> {
        for id in 0..self.rows {
            let norm = self.row(id).iter().map(|v| v * v).sum::<f32>().sqrt();
            ensure!(
                (norm - 1.0).abs() < 1e-3,
                "{}: row {id} has L2 norm {norm}; fiq indexes L2-normalized vectors",
                self.path.display()
            );
        }
        Ok(())
    }
}

impl VectorSource for MappedNpy {
    fn dim(&self) -> usize {
        self.dim
    }
    fn len(&self) -> usize {
        self.rows
    }
    fn row(&self, id: usize) -> &[f32] {
        &self.all()[id * self.dim..(id + 1) * self.dim]
    }
    fn contiguous_rows(&self, start: usize, end: usize) -> Option<&[f32]> {
        self.all().get(start * self.dim..end * self.dim)
    }
}
