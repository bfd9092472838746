//! The ANN layer against exact search, on small synthetic catalogs.

use std::path::{Path, PathBuf};

use super::testdata::mixture;
use super::*;

const DIM: usize = 32;
const NLIST: usize = 32;

fn catalog() -> Matrix {
    mixture(4000, DIM, 11)
}

fn build(store: &Matrix, factory: &str) -> AnnIndex {
    let params = AnnParams::with_factory(factory)
        .with_train_size(4000)
        .with_seed(5);
    AnnIndex::build(store, &params, &()).unwrap()
}

fn exact_top(store: &Matrix, queries: &[f32], k: usize) -> Vec<Vec<Neighbor>> {
    crate::search::exact_search(queries, store.dim(), &store.blocks(), k, &|_| true)
}

fn write_and_open(ann: &mut AnnIndex, dir: &Path) -> (AnnIndex, PathBuf) {
    let path = dir.join("ivf.faiss");
    ann.write_file(&path).unwrap();
    let len = std::fs::metadata(&path).unwrap().len();
    (
        AnnIndex::open(&path, ann.record().clone(), len).unwrap(),
        path,
    )
}

#[test]
fn ivf_flat_probing_every_list_is_exact_search() {
    let store = catalog();
    let ann = build(&store, "IVF32,Flat");
    let queries = held_out_queries(&store, 100, 1).unwrap();
    for k in [10, 50] {
        let exact = exact_top(&store, queries.as_slice(), k);
        let all = Some(NLIST);
        let approx = ann
            .search_batch(&store, queries.as_slice(), k, all, None)
            .unwrap();
        assert_eq!(recall_at_k(&approx, &exact, k), 1.0, "k = {k}");
        for (a, e) in approx.iter().zip(&exact) {
            for (x, y) in a.iter().zip(e) {
                assert!((x.score - y.score).abs() < 1e-5);
            }
        }
    }
}

#[test]
fn the_data_is_not_trivial_for_ivf() {
    // If one probe already found every neighbor, none of the other tests would mean anything.
    let store = catalog();
    let ann = build(&store, "IVF32,Flat");
    let queries = held_out_queries(&store, 100, 2).unwrap();
    let exact = exact_top(&store, queries.as_slice(), 10);
    let one = ann
        .search_batch(&store, queries.as_slice(), 10, Some(1), None)
        .unwrap();
    let recall = recall_at_k(&one, &exact, 10);
    assert!(recall < 0.8, "recall@10 with nprobe = 1 is {recall}");
}

#[test]
fn tune_reaches_its_target_on_held_out_queries_and_the_choice_carries_over() {
    let store = catalog();
    let mut ann = build(&store, "IVF32,Flat");
    let tuning = held_out_queries(&store, 500, 3).unwrap();
    let report = tune_nprobe(&ann, &store, tuning.as_slice(), 10, 0.95).unwrap();
    let chosen = report
        .chosen
        .expect("IVF-Flat always reaches any target at nprobe = nlist");
    let at = |n: usize| {
        report
            .points
            .iter()
            .find(|p| p.nprobe == n)
            .map(|p| p.recall)
    };
    assert!(at(chosen).unwrap() >= 0.95);
    if chosen > 1 {
        assert!(at(chosen - 1).unwrap() < 0.95, "{report:?}");
    }
    ann.set_default_nprobe(chosen).unwrap();

    // Fresh queries, never seen by tune, searched with the recorded default: the target carries over up
    // to the sampling noise of a few hundred queries.
    let fresh = held_out_queries(&store, 500, 4).unwrap();
    let exact = exact_top(&store, fresh.as_slice(), 10);
    let approx = ann
        .search_batch(&store, fresh.as_slice(), 10, None, None)
        .unwrap();
    let recall = recall_at_k(&approx, &exact, 10);
    assert!(
        recall >= 0.92,
        "recall@10 on fresh held-out queries: {recall}; {report:?}"
    );

    // The choice survives writing and reopening.
    let dir = tempfile::tempdir().unwrap();
    let (reopened, _) = write_and_open(&mut ann, dir.path());
    assert_eq!(reopened.record().nprobe, chosen);
}

#[test]
fn compressed_codes_are_reranked_to_exact_scores() {
    let store = catalog();
    let queries = held_out_queries(&store, 50, 5).unwrap();
    for factory in ["IVF32,SQ8", "IVF32,PQ8np"] {
        let ann = build(&store, factory);
        assert!(!ann.record().exact_codes);
        let hits = ann
            .search_batch(&store, queries.as_slice(), 10, Some(8), None)
            .unwrap();
        for (q, list) in hits.iter().enumerate() {
            assert_eq!(list.len(), 10);
            for hit in list {
                let exact = crate::vector::dot(store.row(hit.id as usize), queries.row(q));
                assert_eq!(hit.score, exact, "{factory}: query {q}, id {}", hit.id);
            }
            assert!(list.windows(2).all(|w| w[0].score >= w[1].score));
        }
        let exact = exact_top(&store, queries.as_slice(), 10);
        let all = ann
            .search_batch(&store, queries.as_slice(), 10, Some(NLIST), None)
            .unwrap();
        let recall = recall_at_k(&all, &exact, 10);
        assert!(
            recall >= 0.9,
            "{factory}: recall@10 at nprobe = nlist is {recall}"
        );
    }
}

#[test]
fn reopening_gives_identical_results_and_maps_the_file() {
    let store = catalog();
    let queries = held_out_queries(&store, 40, 6).unwrap();
    for factory in ["IVF32,Flat", "IVF32,SQ8"] {
        let mut ann = build(&store, factory);
        let dir = tempfile::tempdir().unwrap();
        let (reopened, path) = write_and_open(&mut ann, dir.path());
        assert_eq!(reopened.record(), ann.record());
        assert_eq!(reopened.list_sizes(), ann.list_sizes());
        for nprobe in [1, 4, NLIST] {
            let mode = Some(nprobe);
            let before = ann
                .search_batch(&store, queries.as_slice(), 10, mode, None)
                .unwrap();
            let after = reopened
                .search_batch(&store, queries.as_slice(), 10, mode, None)
                .unwrap();
            assert_eq!(before, after, "{factory}, nprobe {nprobe}");
        }
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        assert!(
            maps.contains(path.to_str().unwrap()),
            "FAISS should serve {} from a memory map",
            path.display()
        );
    }
}

#[test]
fn the_same_seed_builds_the_same_file() {
    let store = catalog();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_, fa) = write_and_open(&mut build(&store, "IVF32,SQ8"), a.path());
    let (_, fb) = write_and_open(&mut build(&store, "IVF32,SQ8"), b.path());
    assert_eq!(std::fs::read(fa).unwrap(), std::fs::read(fb).unwrap());
}

#[test]
fn single_and_batched_searches_agree() {
    let store = catalog();
    let ann = build(&store, "IVF32,SQ8");
    let queries = held_out_queries(&store, 8, 7).unwrap();
    let mode = Some(4);
    let batch = ann
        .search_batch(&store, queries.as_slice(), 5, mode, None)
        .unwrap();
    for (q, expected) in batch.iter().enumerate() {
        assert_eq!(
            &ann.search(&store, queries.row(q), 5, mode).unwrap(),
            expected
        );
    }
}

#[test]
fn bad_input_is_refused_with_a_reason() {
    let store = catalog();
    let ann = build(&store, "IVF32,Flat");
    let q = store.row(0).to_vec();
    let ivf = |n| Some(n);

    let err = ann.search(&store, &q[..DIM - 1], 5, None).unwrap_err();
    assert!(
        matches!(err, AnnError::DimensionMismatch { expected: DIM, got, .. } if got == DIM - 1)
    );
    let mut nan = q.clone();
    nan[3] = f32::NAN;
    let err = ann.search(&store, &nan, 5, ivf(2)).unwrap_err();
    assert!(matches!(
        err,
        AnnError::NonFiniteQuery {
            query: 0,
            position: 3
        }
    ));
    for nprobe in [0, NLIST + 1] {
        let err = ann.search(&store, &q, 5, ivf(nprobe)).unwrap_err();
        assert!(
            matches!(err, AnnError::InvalidParameter { name: "nprobe", .. }),
            "{err}"
        );
    }
    assert!(matches!(
        ann.search(&store, &q, 0, ivf(2)).unwrap_err(),
        AnnError::InvalidParameter { name: "k", .. }
    ));
    let smaller = mixture(10, DIM, 1);
    assert!(matches!(
        ann.search(&smaller, &q, 5, ivf(2)).unwrap_err(),
        AnnError::SourceMismatch {
            index_len: 4000,
            source_len: 10
        }
    ));

    let not_ivf = AnnIndex::build(&store, &AnnParams::with_factory("Flat"), &()).unwrap_err();
    assert!(matches!(not_ivf, AnnError::NotIvf { .. }));
    let nonsense =
        AnnIndex::build(&store, &AnnParams::with_factory("IVF32,Bogus"), &()).unwrap_err();
    assert!(matches!(nonsense, AnnError::Faiss { .. }), "{nonsense}");
    let too_few =
        AnnIndex::build(&store, &AnnParams::ivf_flat(NLIST).with_train_size(10), &()).unwrap_err();
    assert!(matches!(
        too_few,
        AnnError::InvalidParameter {
            name: "train_size",
            ..
        }
    ));
    #[cfg(not(feature = "faiss-gpu"))]
    {
        let mut on_gpu = AnnParams::ivf_flat(4);
        on_gpu.gpu_device = Some(0);
        let err = AnnIndex::build(&store, &on_gpu, &()).unwrap_err();
        assert!(err.to_string().contains("faiss-gpu"), "{err}");
    }
    let empty = Matrix::new(DIM, Vec::new()).unwrap();
    assert!(matches!(
        AnnIndex::build(&empty, &AnnParams::ivf_flat(4), &()).unwrap_err(),
        AnnError::EmptySource
    ));
}

#[test]
fn damaged_files_are_reported_not_crashed_on() {
    let store = catalog();
    let mut ann = build(&store, "IVF32,Flat");
    let dir = tempfile::tempdir().unwrap();
    let (_, path) = write_and_open(&mut ann, dir.path());
    let record = ann.record().clone();
    let bytes = std::fs::read(&path).unwrap();
    let len = bytes.len() as u64;
    let reopen = |bytes: &[u8], expected_len: u64| {
        std::fs::write(&path, bytes).unwrap();
        AnnIndex::open(&path, record.clone(), expected_len)
    };

    // Truncated against the manifest: caught before FAISS sees it.
    let err = reopen(&bytes[..bytes.len() - 100], len).unwrap_err();
    assert!(matches!(err, AnnError::CorruptFile { .. }), "{err}");
    // Truncated inside the lists, with the manifest updated to match: FAISS checks only where the lists
    // start, so fiq's own check of their end must catch it (else a search would fault past the map).
    let short = &bytes[..bytes.len() - 100];
    let err = reopen(short, short.len() as u64).unwrap_err();
    assert!(err.to_string().contains("inverted lists"), "{err}");
    // Truncated inside the header: the header checksum (format 3) refuses it before FAISS parses it;
    // without checksums (a format-2 record), FAISS's reader reports it.
    let err = reopen(&bytes[..1000], 1000).unwrap_err();
    assert!(matches!(err, AnnError::CorruptFile { .. }), "{err}");
    let mut unchecked = record.clone();
    unchecked.format = 2;
    unchecked.head_crc32 = 0;
    unchecked.list_crc32.clear();
    std::fs::write(&path, &bytes[..1000]).unwrap();
    let err = AnnIndex::open(&path, unchecked.clone(), 1000).unwrap_err();
    assert!(matches!(err, AnnError::Faiss { .. }), "{err}");

    // One list size changed (they are the u64s right before the lists): the header checksum catches it,
    // and without checksums the sizes no longer add up to the file, so open refuses instead of
    // pointing lists outside it.
    let mut grown = bytes.clone();
    let size_of_list_5 = record.lists_offset as usize - 8 * (NLIST - 5);
    grown[size_of_list_5 + 1] ^= 0x01;
    let err = reopen(&grown, len).unwrap_err();
    assert!(err.to_string().contains("header section"), "{err}");
    std::fs::write(&path, &grown).unwrap();
    let err = AnnIndex::open(&path, unchecked.clone(), len).unwrap_err();
    assert!(err.to_string().contains("inverted lists"), "{err}");

    // A flipped byte inside a list's codes: open works (lists are mapped, not read), and the first
    // search that probes the list reports its checksum mismatch instead of answering differently.
    let mut flipped = bytes.clone();
    flipped[record.lists_offset as usize + 10] ^= 0x40;
    let damaged = reopen(&flipped, len).unwrap();
    let err = damaged
        .search(&store, store.row(0), 10, Some(NLIST))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("checksum mismatch in inverted list"),
        "{err}"
    );
    // Without checksums every returned id is still a real row (ids are range-checked).
    let damaged = AnnIndex::open(&path, unchecked, len).unwrap();
    let hits = damaged.search(&store, store.row(0), 10, Some(4)).unwrap();
    assert!(hits.iter().all(|h| (h.id as usize) < store.len()));

    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        AnnIndex::open(&path, record.clone(), len).unwrap_err(),
        AnnError::Io { .. }
    ));
}
