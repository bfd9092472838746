//! An index with its IVF index: built, committed, reopened and searched through the library API, against
//! exact search, with filters, deletions and appends.

use fiq::ann::AnnParams;
use fiq::index::{IdSet, Index, IndexWriter, ItemMeta, ModelInfo, SearchMode, SearchOptions};

const DIM: usize = 16;
const NLIST: usize = 16;

/// Deterministic, non-trivial rows: 10 overlapping clusters plus noise.
fn rows(n: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f32 / (1u64 << 53) as f32 - 0.5
    };
    let centers: Vec<Vec<f32>> = (0..10)
        .map(|_| (0..DIM).map(|_| uniform()).collect())
        .collect();
    (0..n)
        .map(|i| {
            centers[i % 10]
                .iter()
                .map(|c| c + 0.7 * uniform())
                .collect()
        })
        .collect()
}

fn category(i: usize) -> &'static str {
    ["dress", "shirt", "toptee"][i % 3]
}

fn build(dir: &std::path::Path, n: usize) {
    let mut writer = IndexWriter::create(dir, DIM, ModelInfo::default()).unwrap();
    for (i, row) in rows(n, 1).iter().enumerate() {
        let meta = ItemMeta {
            category: category(i).into(),
            source: String::new(),
        };
        writer.add(&format!("k{i}"), row, &meta).unwrap();
    }
    writer.commit().unwrap();
    writer
        .build_ann(&AnnParams::ivf_flat(NLIST).with_nprobe(2), &())
        .unwrap();
    writer.commit().unwrap();
}

fn flat(queries: &[Vec<f32>]) -> Vec<f32> {
    queries.iter().flatten().copied().collect()
}

fn ids(lists: Vec<Vec<fiq::search::Neighbor>>) -> Vec<Vec<u64>> {
    lists
        .into_iter()
        .map(|l| l.into_iter().map(|n| n.id).collect())
        .collect()
}

#[test]
fn every_list_probed_equals_exact_with_filters_and_deletions() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 2000);
    let queries = flat(&rows(30, 7));
    let all = SearchMode::Ivf {
        nprobe: Some(NLIST),
    };

    let index = Index::open(dir.path()).unwrap();
    let record = index
        .ann_record()
        .expect("the commit made the IVF index part of the index");
    assert_eq!((record.nlist, record.len, record.nprobe), (NLIST, 2000, 2));
    let exact = index
        .neighbors(&queries, 10, &SearchOptions::mode(SearchMode::Exact))
        .unwrap();
    let ivf = index
        .neighbors(&queries, 10, &SearchOptions::mode(all))
        .unwrap();
    assert_eq!(ids(ivf), ids(exact.clone()));
    // The default goes through the IVF index with the recorded nprobe = 2: not exact.
    let default = index
        .neighbors(&queries, 10, &SearchOptions::default())
        .unwrap();
    assert_ne!(ids(default), ids(exact.clone()));

    // A category filter (a third of the items) keeps IVF and exact equal at nprobe = nlist.
    let shirt_ids = IdSet::from_ids(
        2000,
        (0..2000).filter(|&id| category(id as usize) == "shirt"),
    );
    let shirts = |id: u64| shirt_ids.contains(id);
    let filtered = |mode| SearchOptions {
        filter: Some(&shirt_ids),
        mode: Some(mode),
    };
    let ivf = index.neighbors(&queries, 10, &filtered(all)).unwrap();
    assert!(ivf.iter().flatten().all(|n| shirts(n.id)));
    assert_eq!(
        ids(ivf),
        ids(index
            .neighbors(&queries, 10, &filtered(SearchMode::Exact))
            .unwrap())
    );

    // Deleting each query's best item removes it from IVF results.
    let best: Vec<u64> = exact.iter().map(|l| l[0].id).collect();
    let mut writer = IndexWriter::open(dir.path()).unwrap();
    for id in best
        .iter()
        .copied()
        .collect::<std::collections::BTreeSet<_>>()
    {
        writer.delete(&format!("k{id}")).unwrap();
    }
    writer.commit().unwrap();
    let index = Index::open(dir.path()).unwrap();
    let ivf = ids(index
        .neighbors(&queries, 10, &SearchOptions::mode(all))
        .unwrap());
    for (list, gone) in ivf.iter().zip(&best) {
        assert!(!list.contains(gone));
        assert_eq!(list.len(), 10);
    }
    assert_eq!(
        ivf,
        ids(index
            .neighbors(&queries, 10, &SearchOptions::mode(SearchMode::Exact))
            .unwrap())
    );
}

#[test]
fn filtered_ivf_search_agrees_with_filtered_exact_search_at_the_recorded_nprobe() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 3000);
    // Record the nprobe that tuning measures for recall@10 >= 0.95, as `build` does.
    let target = fiq::pipeline::TuneTarget::default_for(false);
    let (_, chosen) = fiq::pipeline::tune_and_record(dir.path(), &target).unwrap();
    let index = Index::open(dir.path()).unwrap();
    assert_eq!(Some(index.ann_record().unwrap().nprobe), chosen);

    let queries = flat(&rows(200, 11));
    for category_name in ["dress", "shirt", "toptee"] {
        let ids = index.categories().unwrap().remove(category_name).unwrap();
        assert_eq!(ids.len(), 1000);
        let options = SearchOptions::default().filtered(&ids);
        let (ivf, stats) = index.search_with_stats(&queries, 10, &options).unwrap();
        assert!(matches!(stats.mode, SearchMode::Ivf { nprobe: Some(_) }));
        let exact = index
            .neighbors(
                &queries,
                10,
                &SearchOptions::mode(SearchMode::Exact).filtered(&ids),
            )
            .unwrap();
        // FAISS applied the filter while scanning: every result is of the category, and the lists
        // are full, so no query had to fall back to exact search.
        assert!(ivf.iter().flatten().all(|n| ids.contains(n.id)));
        assert!(ivf.iter().all(|l| l.len() == 10));
        assert!(stats.exact_fallbacks.is_empty(), "{stats:?}");
        let recall = fiq::ann::recall_at_k(&ivf, &exact, 10);
        assert!(
            recall >= 0.9,
            "{category_name}: filtered IVF recall@10 {recall}"
        );
    }

    // A filter so narrow that the probed lists hold too few of its ids: exact search answers, and
    // the statistics say which queries it answered.
    let few = IdSet::from_ids(3000, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    let options = SearchOptions::mode(SearchMode::Ivf { nprobe: Some(1) }).filtered(&few);
    let (lists, stats) = index.search_with_stats(&queries, 10, &options).unwrap();
    assert!(!stats.exact_fallbacks.is_empty());
    let exact = index
        .neighbors(
            &queries,
            10,
            &SearchOptions::mode(SearchMode::Exact).filtered(&few),
        )
        .unwrap();
    for &q in &stats.exact_fallbacks {
        assert_eq!(ids(vec![lists[q].clone()]), ids(vec![exact[q].clone()]));
    }
}

#[test]
fn tuned_nprobe_is_recorded_without_rewriting_the_faiss_file() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 1000);
    let before = Index::open(dir.path()).unwrap();
    let mut record = before.ann_record().unwrap().clone();
    let files_before = before.snapshot().manifest().ann_files.clone();
    record.nprobe = 5;
    let mut writer = IndexWriter::open(dir.path()).unwrap();
    writer.set_ann_record(&record).unwrap();
    writer.commit().unwrap();
    let after = Index::open(dir.path()).unwrap();
    assert_eq!(after.ann_record().unwrap().nprobe, 5);
    assert_eq!(after.snapshot().manifest().ann_files, files_before);

    // Removing the IVF index makes searches exact; IVF search then says what to do.
    writer.remove_ann();
    writer.commit().unwrap();
    let exact_only = Index::open(dir.path()).unwrap();
    assert!(exact_only.ann().is_none());
    let err = exact_only
        .neighbors(
            &rows(1, 3)[0],
            5,
            &SearchOptions::mode(SearchMode::IVF_DEFAULT),
        )
        .unwrap_err();
    assert!(err.to_string().contains("--ivf"), "{err}");
}

#[test]
fn a_missing_or_truncated_ivf_file_fails_open_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 1000);
    let file = Index::open(dir.path())
        .unwrap()
        .snapshot()
        .manifest()
        .ann_files[0]
        .entry
        .file
        .clone();
    let path = dir.path().join(&file);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 8]).unwrap();
    let err = Index::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains(&file), "{err}");
    std::fs::remove_file(&path).unwrap();
    let err = Index::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains(&file), "{err}");
}
