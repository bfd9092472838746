//! A living index through the library: upserts, removals and compaction with an IVF index, readers that
//! refresh, one writer, and damage to the FAISS file caught by search, not only by `verify`.

use std::collections::BTreeSet;

use fiq::ann::AnnParams;
use fiq::index::{
    Index, IndexWriter, ItemMeta, IvfOutcome, ModelInfo, Retrain, SearchMode, SearchOptions,
};

const DIM: usize = 16;
const NLIST: usize = 8;

/// Deterministic rows around 8 centers, shifted by `shift` (a different region of space when not 0).
fn rows(n: usize, seed: u64, shift: f32) -> Vec<Vec<f32>> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f32 / (1u64 << 53) as f32 - 0.5
    };
    let centers: Vec<Vec<f32>> = (0..8)
        .map(|_| (0..DIM).map(|_| uniform()).collect())
        .collect();
    (0..n)
        .map(|i| {
            centers[i % 8]
                .iter()
                .enumerate()
                .map(|(c, x)| x + 0.3 * uniform() + if c == i % DIM { shift } else { 0.0 })
                .collect()
        })
        .collect()
}

fn build(dir: &std::path::Path, n: usize) {
    let mut writer = IndexWriter::create(dir, DIM, ModelInfo::default()).unwrap();
    for (i, row) in rows(n, 1, 0.0).iter().enumerate() {
        writer
            .add(&format!("k{i}"), row, &ItemMeta::default())
            .unwrap();
    }
    writer.commit().unwrap();
    writer
        .build_ann(&AnnParams::ivf_flat(NLIST).with_nprobe(2), &())
        .unwrap();
    writer.commit().unwrap();
}

fn all_lists() -> SearchOptions<'static> {
    SearchOptions::mode(SearchMode::Ivf {
        nprobe: Some(NLIST),
    })
}

fn keys_found(index: &Index, queries: &[Vec<f32>], k: usize) -> BTreeSet<String> {
    let flat: Vec<f32> = queries.iter().flatten().copied().collect();
    index
        .search_batch(&flat, k, &all_lists())
        .unwrap()
        .into_iter()
        .flatten()
        .map(|h| h.key)
        .collect()
}

#[test]
fn upserts_and_removals_are_seen_after_refresh_and_compaction_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 400);
    let mut reader = Index::open(dir.path()).unwrap();
    let before = reader.generation();
    assert!(!reader.refresh().unwrap(), "nothing changed");

    let mut writer = IndexWriter::open(dir.path()).unwrap();
    let removed: Vec<String> = (0..400).step_by(3).map(|i| format!("k{i}")).collect();
    let report = writer.remove_keys(&removed).unwrap();
    assert_eq!(report.removed, removed.len());
    assert!(writer
        .remove_keys(&["never-there".to_owned()])
        .unwrap()
        .missing
        .contains(&"never-there".to_owned()));
    // k1 is replaced by a vector far from its old one; n0.. are new.
    let moved = rows(1, 9, 3.0).remove(0);
    let (_, replaced) = writer.upsert("k1", &moved, &ItemMeta::default()).unwrap();
    assert_eq!(replaced, Some(1));
    for (i, row) in rows(50, 5, 0.0).iter().enumerate() {
        writer
            .upsert(&format!("n{i}"), row, &ItemMeta::default())
            .unwrap();
    }
    writer.commit().unwrap();

    // The reader keeps its version until it refreshes.
    let queries = rows(40, 1, 0.0);
    assert!(keys_found(&reader, &queries, 20).contains("k0"));
    assert_eq!(reader.generation(), before);
    assert!(reader.refresh().unwrap());
    let found = keys_found(&reader, &queries, 20);
    for key in &removed {
        assert!(!found.contains(key), "{key} was removed but is returned");
    }
    let k1 = reader.id_of("k1").unwrap().unwrap();
    assert_eq!(reader.search(&moved, 1).unwrap()[0].id, k1);

    // Compaction: removed keys stay removed, the replaced row is the new one, search is IVF over all.
    let report = writer.compact(Retrain::Auto, &()).unwrap();
    assert_eq!(report.rows_after, (400 - removed.len() + 50) as u64);
    assert!(matches!(
        report.ivf,
        IvfOutcome::Refilled | IvfOutcome::Retrained { .. }
    ));
    assert!(reader.refresh().unwrap());
    assert_eq!(reader.total_rows(), report.rows_after);
    assert_eq!(reader.ann_record().unwrap().len as u64, report.rows_after);
    let found = keys_found(&reader, &queries, 20);
    for key in &removed {
        assert!(!found.contains(key), "{key} came back after compaction");
    }
    assert_eq!(reader.search(&moved, 1).unwrap()[0].key, "k1");
    reader.verify().unwrap();
    // With every list probed, IVF equals exact after the compaction.
    let flat: Vec<f32> = queries.iter().flatten().copied().collect();
    let exact = reader
        .neighbors(&flat, 10, &SearchOptions::mode(SearchMode::Exact))
        .unwrap();
    let ivf = reader.neighbors(&flat, 10, &all_lists()).unwrap();
    let ids = |l: Vec<Vec<fiq::search::Neighbor>>| -> Vec<Vec<u64>> {
        l.into_iter()
            .map(|l| l.into_iter().map(|n| n.id).collect())
            .collect()
    };
    assert_eq!(ids(ivf), ids(exact));
}

#[test]
fn drift_decides_whether_compaction_retrains() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 400);
    let index = Index::open(dir.path()).unwrap();
    let drift = index.ivf_drift().unwrap().unwrap();
    assert_eq!((drift.added_rows, drift.ratio), (0, 1.0));
    assert!(drift.retrain_reason(index.len()).is_none());

    // Rows like the old ones: no drift to speak of; compaction keeps the centroids.
    let mut writer = IndexWriter::open(dir.path()).unwrap();
    for (i, row) in rows(100, 1, 0.0).iter().enumerate().skip(50) {
        writer
            .add(&format!("same{i}"), row, &ItemMeta::default())
            .unwrap();
    }
    writer.commit().unwrap();
    let report = writer.compact(Retrain::Auto, &()).unwrap();
    let ratio = report.drift.as_ref().unwrap().ratio;
    assert!(ratio < fiq::ann::RETRAIN_RATIO, "drift {ratio}");
    assert_eq!(report.ivf, IvfOutcome::Refilled);

    // Rows from elsewhere: the drift measure says so, and compaction retrains.
    for (i, row) in rows(200, 77, 2.5).iter().enumerate() {
        writer
            .add(&format!("far{i}"), row, &ItemMeta::default())
            .unwrap();
    }
    writer.commit().unwrap();
    let drifted = Index::open(dir.path())
        .unwrap()
        .ivf_drift()
        .unwrap()
        .unwrap();
    assert!(
        drifted.ratio > fiq::ann::RETRAIN_RATIO,
        "drift {}",
        drifted.ratio
    );
    let report = writer.compact(Retrain::Auto, &()).unwrap();
    assert!(
        matches!(report.ivf, IvfOutcome::Retrained { .. }),
        "{:?}",
        report.ivf
    );
    Index::open(dir.path()).unwrap().verify().unwrap();
}

#[test]
fn a_second_writer_is_refused_with_a_typed_error_and_readers_go_on() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 100);
    let _writer = IndexWriter::open(dir.path()).unwrap();
    let err = IndexWriter::open(dir.path()).unwrap_err();
    assert!(
        matches!(
            err,
            fiq::Error::Format(fiq_index_format::FormatError::WriterBusy { .. })
        ),
        "{err}"
    );
    let reader = Index::open(dir.path()).unwrap();
    assert_eq!(reader.len(), 100);
}

fn ivf_file(dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("ann-ivf-0")
        })
        .unwrap()
}

/// The experiment: random single-byte flips in a small index's FAISS file. Each must be caught
/// by open or by a search probing every list, with an error naming the file and the section; none may
/// change results silently.
#[test]
fn every_byte_flip_in_the_faiss_file_is_caught_by_open_or_search() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 300);
    let path = ivf_file(dir.path());
    let pristine = std::fs::read(&path).unwrap();
    let queries: Vec<f32> = rows(8, 3, 0.0).into_iter().flatten().collect();
    let mut state = 0x5EED_u64;
    let (mut at_open, mut at_search) = (0, 0);
    for _ in 0..200 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let at = (state >> 33) as usize % pristine.len();
        let mut bytes = pristine.clone();
        bytes[at] ^= 1 << ((state >> 20) % 8);
        std::fs::write(&path, &bytes).unwrap();
        let err = match Index::open(dir.path()) {
            Err(err) => {
                at_open += 1;
                err
            }
            Ok(index) => {
                at_search += 1;
                index
                    .neighbors(&queries, 5, &all_lists())
                    .expect_err(&format!("flip at byte {at} went unnoticed by search"))
            }
        };
        let message = err.to_string();
        assert!(
            message.contains(path.file_name().unwrap().to_str().unwrap()),
            "byte {at}: {message}"
        );
        assert!(
            message.contains("checksum mismatch in"),
            "byte {at}: {message}"
        );
    }
    std::fs::write(&path, &pristine).unwrap();
    Index::open(dir.path()).unwrap().verify().unwrap();
    assert!(
        at_open > 0 && at_search > 0,
        "{at_open} at open, {at_search} at search"
    );
}

/// Rows added after the IVF build go into the lists of their nearest trained centroids (no k-means):
/// the record covers every row, a probe of one list finds an added row by its own vector, the appended
/// lists grow with each add and compaction folds them back into one built index.
#[test]
fn added_rows_are_filed_in_the_ivf_lists_without_retraining() {
    let tmp = tempfile::tempdir().unwrap();
    build(tmp.path(), 400);
    let trained = Index::open(tmp.path())
        .unwrap()
        .ann_record()
        .unwrap()
        .clone();
    assert!(trained.appended.is_none());

    let added = rows(60, 7, 0.0);
    let mut writer = IndexWriter::open(tmp.path()).unwrap();
    for (i, row) in added.iter().enumerate().take(30) {
        writer
            .add(&format!("new{i}"), row, &ItemMeta::default())
            .unwrap();
    }
    writer.commit().unwrap();
    let index = Index::open(tmp.path()).unwrap();
    let record = index.ann_record().unwrap();
    assert_eq!(record.len, 400, "the built lists are untouched");
    let appended = record
        .appended
        .as_ref()
        .expect("appended lists after an add");
    assert_eq!((appended.first_id, appended.len), (400, 30));
    assert_eq!(record.covered_rows() as u64, index.total_rows());
    // The same centroids: with one probed list (the query's nearest), every added row finds itself.
    let one_list = SearchOptions::mode(SearchMode::Ivf { nprobe: Some(1) });
    for (i, row) in added.iter().enumerate().take(30) {
        let hits = index.search_batch(row, 1, &one_list).unwrap();
        assert_eq!(hits[0][0].key, format!("new{i}"));
    }

    // A second add grows the appended lists; a replaced key's old row is never found again.
    for (i, row) in added.iter().enumerate().skip(30) {
        writer
            .add(&format!("new{i}"), row, &ItemMeta::default())
            .unwrap();
    }
    writer
        .upsert("k5", &added[0], &ItemMeta::default())
        .unwrap();
    writer.commit().unwrap();
    drop(writer);
    let index = Index::open(tmp.path()).unwrap();
    let record = index.ann_record().unwrap();
    assert_eq!(
        record.appended.as_ref().unwrap().len,
        61,
        "30, then 30 more and k5 again"
    );
    assert_eq!(record.covered_rows() as u64, index.total_rows());
    assert_eq!(
        record.list_crc32, trained.list_crc32,
        "the built lists are kept as they were"
    );
    // k5 now holds new0's vector: both are found by it, and k5 only once (its old row is deleted).
    let hits = index.search_batch(&added[0], 3, &all_lists()).unwrap();
    let keys: Vec<&str> = hits[0].iter().map(|h| h.key.as_str()).collect();
    assert!(
        keys[..2].contains(&"k5") && keys[..2].contains(&"new0"),
        "{keys:?}"
    );
    assert_eq!(keys.iter().filter(|k| **k == "k5").count(), 1, "{keys:?}");
    index.verify().unwrap();

    // Compaction folds the appended lists into one built index over the live rows.
    let mut writer = IndexWriter::open(tmp.path()).unwrap();
    writer.compact(Retrain::Never, &()).unwrap();
    drop(writer);
    let index = Index::open(tmp.path()).unwrap();
    let record = index.ann_record().unwrap();
    assert!(record.appended.is_none());
    assert_eq!(record.len as u64, index.total_rows());
    index.verify().unwrap();
}
