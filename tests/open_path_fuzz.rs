//! Seeded mutation fuzzing of the whole open path, FAISS file included, inside the normal build (the
//! cargo-fuzz targets in `fuzz/` cover the format crate's decoders; linking FAISS and candle into a
//! sanitizer build is a second 20-minute C++ build, too heavy for CI; see RELIABILITY.md).
//!
//! Random damage cannot reach FAISS's parser: fiq checks the CRC of the FAISS file's header section,
//! recorded in the checksummed manifest, before FAISS reads a byte. So this test *forges* consistent
//! checksums around its mutations, as a hostile writer would: it rewrites the IVF record (list extents,
//! sizes, counts, checksums) and the manifest's entry for the FAISS file, then opens and searches. Nothing
//! may panic or read out of bounds; every answer is an error or the results of the intact index. FAISS
//! allocates what a damaged size field says (up to 2^40 elements) before it can notice the file is
//! shorter, so the test process runs with its address space capped (2 GiB over its use): such an
//! allocation fails
//! (FAISS reports `bad_alloc` as an error) instead of filling a shared machine's memory.

use std::path::{Path, PathBuf};

use fiq::ann::{AnnParams, AnnRecord};
use fiq::index::{Index, IndexWriter, ItemMeta, ModelInfo, SearchMode, SearchOptions};
use fiq_index_format::manifest::{Manifest, MANIFEST_FILE};

const DIM: usize = 8;
const NLIST: usize = 4;

/// fiq's one generator, drawing `u64`s below a bound (the forged fields are `u64`s).
struct Rng(fiq::rng::SplitMix64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(fiq::rng::SplitMix64::new(seed))
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0.below(n.max(1) as usize) as u64
    }
}

fn build(dir: &Path, factory: &str) {
    let mut writer = IndexWriter::create(dir, DIM, ModelInfo::default()).unwrap();
    let mut rng = Rng::new(1);
    for i in 0..200 {
        let row: Vec<f32> = (0..DIM)
            .map(|_| (rng.below(1000) as f32 / 1000.0) - 0.5)
            .collect();
        writer
            .add(&format!("k{i}"), &row, &ItemMeta::default())
            .unwrap();
    }
    writer.commit().unwrap();
    writer
        .build_ann(&AnnParams::with_factory(factory).with_nprobe(2), &())
        .unwrap();
    writer.commit().unwrap();
}

fn copy(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if !entry.file_name().to_string_lossy().ends_with(".lock") {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// The search answers of an index that opened: keys of exact and every-list IVF searches.
fn answers(index: &Index) -> Result<Vec<Vec<String>>, Box<fiq::Error>> {
    let queries: Vec<f32> = (0..3 * DIM).map(|i| ((i * 7) % 5) as f32 - 2.0).collect();
    let mut out = Vec::new();
    let modes = [
        SearchMode::Exact,
        SearchMode::Ivf {
            nprobe: Some(NLIST),
        },
    ];
    for mode in modes {
        for hits in index.search_batch(&queries, 5, &SearchOptions::mode(mode))? {
            out.push(hits.into_iter().map(|h| h.key).collect());
        }
    }
    Ok(out)
}

/// Writes `manifest` with a FAISS file of `faiss` bytes and `record`, all checksums consistent.
fn forge(dir: &Path, mut manifest: Manifest, faiss_name: &str, faiss: &[u8], record: &AnnRecord) {
    std::fs::write(dir.join(faiss_name), faiss).unwrap();
    let entry = &mut manifest.ann_files[0].entry;
    entry.len = faiss.len() as u64;
    entry.crc32 = crc32fast::hash(faiss);
    manifest.ann_params = record.to_json();
    std::fs::write(dir.join(MANIFEST_FILE), manifest.encode().unwrap()).unwrap();
}

/// Caps this test process's address space at what it uses now plus 2 GiB, so that a size FAISS
/// believes makes an allocation fail. Called once the threads (rayon, BLAS) and their arenas exist.
fn cap_address_space() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let used_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    let limit = libc::rlimit {
        rlim_cur: used_kib * 1024 + (2 << 30),
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads the struct and changes only this process's limit.
    let code = unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) };
    assert_eq!(code, 0, "setrlimit");
}

fn fuzz(factory: &str, iterations: usize, seed: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let pristine = tmp.path().join("pristine");
    build(&pristine, factory);
    let reference = answers(&Index::open(&pristine).unwrap()).unwrap();
    cap_address_space();
    let manifest = Manifest::decode(
        &std::fs::read(pristine.join(MANIFEST_FILE)).unwrap(),
        Path::new("m"),
    )
    .unwrap();
    let faiss_name = manifest.ann_files[0].entry.file.clone();
    let faiss = std::fs::read(pristine.join(&faiss_name)).unwrap();
    let record = AnnRecord::from_json(&manifest.ann_params).unwrap();
    let victim: PathBuf = tmp.path().join("victim");
    let mut rng = Rng::new(seed);
    let (mut refused, mut same) = (0, 0);
    for i in 0..iterations {
        copy(&pristine, &victim);
        let mut bytes = faiss.clone();
        let mut rec = record.clone();
        let what = match rng.below(6) {
            // The list extents the record claims.
            0 => {
                rec.lists_offset = match rng.below(3) {
                    0 => rng.below(bytes.len() as u64 * 2),
                    1 => rec.lists_offset ^ (1 << rng.below(20)),
                    _ => u64::MAX - rng.below(100),
                };
                "lists_offset"
            }
            1 => {
                rec.len = match rng.below(3) {
                    0 => rng.below(1000) as usize,
                    1 => rec.len ^ (1 << rng.below(40)),
                    _ => usize::MAX - rng.below(100) as usize,
                };
                "len"
            }
            2 => {
                rec.code_size = rng.below(1 << 16) as usize;
                "code_size"
            }
            3 => {
                rec.nlist = 1 + rng.below(64) as usize;
                rec.nprobe = rec.nprobe.min(rec.nlist);
                "nlist"
            }
            // The file cut short or grown, with the record's extents left as they were.
            4 => {
                let at = rng.below(bytes.len() as u64 + 64) as usize;
                bytes.resize(at, 0x5a);
                "file length"
            }
            // A byte of the centroids or of the list sizes (the last `nlist` u64 before the lists)
            // changed, and the header checksum forged to match. FAISS's own header fields are left
            // alone: a forged one crashes FAISS (see RELIABILITY.md, "What fuzzing found").
            _ => {
                let centroids = 98..98 + NLIST * DIM * 4; // after IVF and quantizer headers
                let lists_at = rec.lists_offset as usize;
                let sizes = lists_at - NLIST * 8..lists_at;
                let at = match rng.below(2) {
                    0 => centroids.start + rng.below(centroids.len() as u64) as usize,
                    _ => sizes.start + rng.below(sizes.len() as u64) as usize,
                };
                bytes[at] ^= 1 << rng.below(8);
                "header byte"
            }
        };
        if let Some(head) = bytes.get(..rec.lists_offset.min(usize::MAX as u64) as usize) {
            rec.head_crc32 = crc32fast::hash(head);
        }
        forge(&victim, manifest.clone(), &faiss_name, &bytes, &rec);
        let outcome = std::panic::catch_unwind(|| match Index::open(&victim) {
            Err(_) => None,
            Ok(index) => Some(answers(&index)),
        });
        match outcome {
            Err(_) => panic!("iteration {i} ({what}): open or search panicked"),
            Ok(None) | Ok(Some(Err(_))) => refused += 1,
            Ok(Some(Ok(found))) => {
                // A forged header byte can move a centroid (a different, valid index); extents and
                // sizes must never produce an answer other than the intact one.
                if what != "header byte" {
                    assert_eq!(
                        found, reference,
                        "iteration {i} ({what}) answered differently"
                    );
                }
                same += 1;
            }
        }
    }
    assert!(refused > 0 && refused + same == iterations);
}

#[test]
fn forged_extents_and_headers_never_crash_ivf_flat() {
    fuzz("IVF4,Flat", 300, 1);
}

#[test]
fn forged_extents_and_headers_never_crash_ivf_sq8() {
    fuzz("IVF4,SQ8", 300, 2);
}
