//! The format's contract, run against both directory implementations: what is written comes back
//! exactly, and every kind of damage yields its own error.

use std::sync::Arc;

use fiq_index_format::directory::Directory;
use fiq_index_format::manifest::MANIFEST_FILE;
use fiq_index_format::{
    AnnFileSource, FormatError, ItemMeta, MmapDirectory, ModelInfo, RamDirectory, Snapshot,
    SnapshotWriter, VectorType,
};
use proptest::prelude::*;

fn model() -> ModelInfo {
    ModelInfo {
        name: "test".into(),
        fingerprint: "abc".into(),
        preprocessing: "none".into(),
    }
}

fn meta(i: usize) -> ItemMeta {
    ItemMeta {
        category: ["dress", "shirt", "toptee"][i % 3].into(),
        source: format!("images/{i}.jpg"),
    }
}

/// Runs `check` against a RAM directory and a memory-mapped one.
fn for_each_directory(check: impl Fn(Arc<dyn Directory>)) {
    check(Arc::new(RamDirectory::new()));
    let tmp = tempfile::tempdir().unwrap();
    check(Arc::new(
        MmapDirectory::create(tmp.path().join("index")).unwrap(),
    ));
}

fn write_index(
    dir: Arc<dyn Directory>,
    dim: usize,
    batches: &[usize],
    vector_type: VectorType,
) -> Vec<(String, Vec<f32>)> {
    let mut writer = SnapshotWriter::create(dir, dim as u32, vector_type, model()).unwrap();
    let mut rows = Vec::new();
    for &n in batches {
        for _ in 0..n {
            let i = rows.len();
            let v: Vec<f32> = (0..dim)
                .map(|c| ((i * 31 + c * 7) % 17) as f32 / 17.0 - 0.4)
                .collect();
            let key = format!("B{:08}", (i * 7919) % 100_003);
            writer.add(&key, &v, &meta(i)).unwrap();
            rows.push((key, v));
        }
        writer.commit().unwrap();
    }
    rows
}

#[test]
fn round_trip_over_several_commits() {
    for_each_directory(|dir| {
        let rows = write_index(dir.clone(), 5, &[3, 0, 10, 1], VectorType::F32);
        let snapshot = Snapshot::open(dir).unwrap();
        assert_eq!(snapshot.total_rows(), rows.len() as u64);
        assert_eq!(
            snapshot.segments().len(),
            3,
            "an empty commit writes no segment"
        );
        for (id, (key, v)) in rows.iter().enumerate() {
            let (segment, row) = snapshot.locate(id as u64).unwrap();
            assert_eq!(&*segment.vector(row), v.as_slice());
            assert_eq!(snapshot.key(id as u64).unwrap(), key);
            assert_eq!(snapshot.meta(id as u64).unwrap(), meta(id));
            assert_eq!(snapshot.find(key).unwrap(), Some(id as u64));
        }
        assert_eq!(snapshot.find("nope").unwrap(), None);
        snapshot.verify().unwrap();
    });
}

#[test]
fn f16_vectors_round_trip_to_half_precision() {
    for_each_directory(|dir| {
        let rows = write_index(dir.clone(), 4, &[6], VectorType::F16);
        let snapshot = Snapshot::open(dir).unwrap();
        for (id, (_, v)) in rows.iter().enumerate() {
            let (segment, row) = snapshot.locate(id as u64).unwrap();
            for (a, b) in segment.vector(row).iter().zip(v) {
                assert!((a - b).abs() < 1e-3, "{a} vs {b}");
            }
        }
    });
}

#[test]
fn deletes_are_tombstones_and_keys_can_come_back() {
    for_each_directory(|dir| {
        let rows = write_index(dir.clone(), 3, &[4], VectorType::F32);
        let mut writer = SnapshotWriter::open(dir.clone()).unwrap();
        let id = writer.delete(&rows[1].0).unwrap();
        assert_eq!(id, 1);
        writer.commit().unwrap();
        let snapshot = Snapshot::open(dir.clone()).unwrap();
        assert!(snapshot.is_deleted(1));
        assert_eq!(snapshot.live_rows(), 3);
        assert_eq!(snapshot.find(&rows[1].0).unwrap(), None);
        // Re-adding a deleted key is allowed and gets a new id.
        writer
            .add(&rows[1].0, &[1.0, 0.0, 0.0], &ItemMeta::default())
            .unwrap();
        writer.commit().unwrap();
        let snapshot = Snapshot::open(dir).unwrap();
        assert_eq!(snapshot.find(&rows[1].0).unwrap(), Some(4));
        snapshot.verify().unwrap();
    });
}

#[test]
fn writer_refuses_bad_input_without_losing_the_batch() {
    for_each_directory(|dir| {
        let mut writer = SnapshotWriter::create(dir.clone(), 2, VectorType::F32, model()).unwrap();
        writer.add("a", &[1.0, 0.0], &ItemMeta::default()).unwrap();
        assert!(matches!(
            writer.add("b", &[1.0], &ItemMeta::default()),
            Err(FormatError::DimensionMismatch {
                expected: 2,
                actual: 1,
                ..
            })
        ));
        let nan = writer
            .add("c", &[f32::NAN, 0.0], &ItemMeta::default())
            .unwrap_err();
        assert!(nan.to_string().contains("component 0 is NaN"), "{nan}");
        assert!(matches!(
            writer.add("a", &[0.0, 1.0], &ItemMeta::default()),
            Err(FormatError::DuplicateKey { .. })
        ));
        assert!(writer.add("", &[0.0, 1.0], &ItemMeta::default()).is_err());
        writer.commit().unwrap();
        assert_eq!(Snapshot::open(dir).unwrap().total_rows(), 1);
    });
}

#[test]
fn one_writer_at_a_time() {
    for_each_directory(|dir| {
        let _first = SnapshotWriter::create(dir.clone(), 2, VectorType::F32, model()).unwrap();
        let second = SnapshotWriter::open(dir.clone()).unwrap_err();
        assert!(second.to_string().contains("another"), "{second}");
    });
}

#[test]
fn ann_files_commit_from_memory_or_staged_and_params_change_alone() {
    for_each_directory(|dir| {
        write_index(dir.clone(), 3, &[4], VectorType::F32);
        let mut writer = SnapshotWriter::open(dir.clone()).unwrap();
        let staged_bytes = b"written by another library".to_vec();
        let staged = writer.staging_path("faiss").unwrap_or_else(|| {
            std::env::temp_dir().join(format!("fiq-staged-{}", std::process::id()))
        });
        std::fs::write(&staged, &staged_bytes).unwrap();
        // A staged file left behind by a writer that died before its commit.
        let leftover = writer.staging_path("faiss");
        if let Some(leftover) = &leftover {
            std::fs::write(leftover, b"orphan").unwrap();
        }
        writer.set_ann(
            vec![
                ("ivf".into(), AnnFileSource::Staged(staged.clone())),
                ("extra".into(), AnnFileSource::Bytes(vec![1, 2, 3])),
            ],
            r#"{"nprobe":4}"#.into(),
        );
        writer.commit().unwrap();
        assert!(!staged.exists(), "the commit moves the staged file in");
        if let Some(leftover) = &leftover {
            assert!(
                !leftover.exists(),
                "garbage collection removes orphaned staged files"
            );
        }

        let snapshot = Snapshot::open(dir.clone()).unwrap();
        assert_eq!(
            &*snapshot.ann_file("ivf").unwrap().unwrap(),
            &staged_bytes[..]
        );
        assert_eq!(&*snapshot.ann_file("extra").unwrap().unwrap(), &[1, 2, 3]);
        assert_eq!(snapshot.manifest().ann_params, r#"{"nprobe":4}"#);
        assert_eq!(snapshot.verify().unwrap().ann_files, 2);
        let files_before = snapshot.manifest().ann_files.clone();

        writer.set_ann_params(r#"{"nprobe":9}"#.into()).unwrap();
        writer.commit().unwrap();
        let snapshot = Snapshot::open(dir.clone()).unwrap();
        assert_eq!(snapshot.manifest().ann_params, r#"{"nprobe":9}"#);
        assert_eq!(
            snapshot.manifest().ann_files,
            files_before,
            "files are not rewritten"
        );

        writer.set_ann(Vec::new(), String::new());
        writer.commit().unwrap();
        let snapshot = Snapshot::open(dir.clone()).unwrap();
        assert!(snapshot.manifest().ann_files.is_empty());
        let err = writer.set_ann_params("{}".into()).unwrap_err();
        assert!(err.to_string().contains("no ANN files"), "{err}");
    });
}

#[test]
fn interrupted_commit_leaves_the_previous_version() {
    for_each_directory(|dir| {
        let rows = write_index(dir.clone(), 3, &[5], VectorType::F32);
        // Crash after the segment was written, before the manifest was replaced.
        {
            let mut writer = SnapshotWriter::open(dir.clone()).unwrap();
            writer
                .add("new", &[0.0, 1.0, 0.0], &ItemMeta::default())
                .unwrap();
            // Dropping the writer without commit is what a kill between steps leaves behind,
            // plus a half-written MANIFEST.tmp:
            dir.atomic_write("MANIFEST.tmp.partial", b"FIQMANIF\x01")
                .unwrap();
        }
        let seg_before = dir.list().unwrap();
        let snapshot = Snapshot::open(dir.clone()).unwrap();
        assert_eq!(snapshot.total_rows(), rows.len() as u64);
        assert_eq!(snapshot.find("new").unwrap(), None);
        // The next writer collects the leftover segment and commits normally.
        let mut writer = SnapshotWriter::open(dir.clone()).unwrap();
        writer
            .add("new", &[0.0, 1.0, 0.0], &ItemMeta::default())
            .unwrap();
        writer.commit().unwrap();
        assert_eq!(
            Snapshot::open(dir.clone()).unwrap().find("new").unwrap(),
            Some(5)
        );
        // Reader leases (the live writer holds one on its version) are not index files.
        let files = |names: Vec<String>| {
            names
                .into_iter()
                .filter(|n| !n.starts_with("lease-"))
                .count()
        };
        assert!(files(seg_before) >= files(dir.list().unwrap()) - 1);
    });
}

// ---- corruption: each class gives its own error -------------------------------------------------

fn corrupted(mutate: impl Fn(&str, &mut Vec<u8>)) -> FormatError {
    let dir = RamDirectory::new();
    let shared: Arc<dyn Directory> = Arc::new(dir.clone());
    write_index(shared.clone(), 4, &[20], VectorType::F32);
    for name in dir.list().unwrap() {
        let mut bytes = dir.open_read(&name).unwrap().to_vec();
        mutate(&name, &mut bytes);
        dir.overwrite(&name, bytes);
    }
    match Snapshot::open(shared) {
        Err(e) => e,
        Ok(snapshot) => snapshot.verify().expect_err("corruption must be detected"),
    }
}

#[test]
fn truncated_segment() {
    let err = corrupted(|name, b| {
        if name.starts_with("seg-") {
            b.truncate(b.len() - 10)
        }
    });
    assert!(matches!(err, FormatError::Truncated { .. }), "{err}");
    assert!(err.to_string().contains("seg-"), "{err}");
}

#[test]
fn truncated_manifest() {
    let err = corrupted(|name, b| {
        if name == MANIFEST_FILE {
            b.truncate(b.len() / 2)
        }
    });
    assert!(matches!(err, FormatError::Truncated { .. }), "{err}");
}

#[test]
fn wrong_magic() {
    let err = corrupted(|name, b| {
        if name.starts_with("seg-") {
            b[0..8].copy_from_slice(b"PK\x03\x04....")
        }
    });
    assert!(
        matches!(
            err,
            FormatError::BadMagic {
                expected: "segment",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn future_version() {
    let err = corrupted(|name, b| {
        if name == MANIFEST_FILE {
            b[8] = 9;
        }
    });
    assert!(
        matches!(err, FormatError::UnsupportedVersion { found: 9, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade"), "{err}");
}

#[test]
fn flipped_byte_in_each_region() {
    // header, section table, vectors, keys, metadata: each flip is caught by open or verify.
    for offset_from in [10usize, 70, 300] {
        let err = corrupted(|name, b| {
            if name.starts_with("seg-") {
                b[offset_from] ^= 0x40;
            }
        });
        assert!(
            matches!(err, FormatError::ChecksumMismatch { .. }),
            "offset {offset_from}: {err}"
        );
    }
    let err = corrupted(|name, b| {
        if name.starts_with("seg-") {
            let n = b.len();
            b[n - 3] ^= 0x01; // inside the metadata section
        }
    });
    assert!(matches!(err, FormatError::ChecksumMismatch { .. }), "{err}");
    let err = corrupted(|name, b| {
        if name == MANIFEST_FILE {
            b[30] ^= 0x01;
        }
    });
    assert!(matches!(err, FormatError::ChecksumMismatch { .. }), "{err}");
}

#[test]
fn nan_in_vectors_is_reported_by_verify() {
    // A foreign writer that stores a NaN with consistent checksums: structure is fine, verify names the row.
    let dir = RamDirectory::new();
    write_index(Arc::new(dir.clone()), 4, &[20], VectorType::F32);
    let name = dir
        .list()
        .unwrap()
        .into_iter()
        .find(|n| n.starts_with("seg-"))
        .unwrap();
    let mut b = dir.open_read(&name).unwrap().to_vec();
    let vectors_at = 256 + 4 * 4 * 3; // row 3
    b[vectors_at + 8..vectors_at + 12].copy_from_slice(&f32::NAN.to_le_bytes());
    let crc = crc32fast::hash(&b[256..256 + 20 * 4 * 4]);
    b[64 + 24..64 + 28].copy_from_slice(&crc.to_le_bytes());
    let table_crc = crc32fast::hash(&b[64..64 + 6 * 32]);
    b[48..52].copy_from_slice(&table_crc.to_le_bytes());
    let header_crc = crc32fast::hash(&b[..60]);
    b[60..64].copy_from_slice(&header_crc.to_le_bytes());
    let segment =
        fiq_index_format::Segment::open(fiq_index_format::FileBytes::from_vec(b, &name)).unwrap();
    let err = segment.verify().unwrap_err();
    assert!(
        matches!(
            err,
            FormatError::NonFiniteVector {
                row: 3,
                component: 2,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn segment_swapped_for_another_is_caught_at_open() {
    let a = RamDirectory::new();
    let b = RamDirectory::new();
    write_index(Arc::new(a.clone()), 4, &[20], VectorType::F32);
    let mut writer =
        SnapshotWriter::create(Arc::new(b.clone()), 4, VectorType::F32, model()).unwrap();
    for i in 0..20 {
        // Same key and metadata lengths, other vectors: the file length matches, the header does not.
        writer
            .add(&format!("X{:08}", i), &[1.0, 0.0, 0.0, 0.0], &meta(i))
            .unwrap();
    }
    writer.commit().unwrap();
    let name = a
        .list()
        .unwrap()
        .into_iter()
        .find(|n| n.starts_with("seg-"))
        .unwrap();
    a.overwrite(&name, b.open_read(&name).unwrap().to_vec());
    let err = Snapshot::open(Arc::new(a)).unwrap_err();
    assert!(err.to_string().contains("header checksum"), "{err}");
}

/// Found by `cargo fuzz run decoders`: a tombstone count whose byte length overflowed when the header was
/// added panicked (debug) or wrapped (release) instead of being reported.
#[test]
fn regression_tombstone_count_overflow_is_an_error() {
    let mut bytes = b"FIQTOMB\0\x01\0\0\0\0\0\0\0".to_vec();
    bytes.extend_from_slice(&0x1fff_ffff_ffff_fffeu64.to_le_bytes());
    bytes.extend_from_slice(&[0xff; 32]);
    let err = fiq_index_format::tombstones::decode_tombstones(
        &bytes,
        u64::MAX,
        std::path::Path::new("t"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("overflows"), "{err}");
}

#[test]
fn not_an_index() {
    let tmp = tempfile::tempdir().unwrap();
    let err = Snapshot::open(Arc::new(MmapDirectory::open(tmp.path()).unwrap())).unwrap_err();
    assert!(matches!(err, FormatError::NotAnIndex { .. }), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn write_open_read_gives_back_what_was_written(
        dim in 1usize..40,
        batches in proptest::collection::vec(0usize..30, 1..4),
        f16 in any::<bool>(),
        seed in any::<u32>(),
    ) {
        let dir: Arc<dyn Directory> = Arc::new(RamDirectory::new());
        let vector_type = if f16 { VectorType::F16 } else { VectorType::F32 };
        let mut writer = SnapshotWriter::create(dir.clone(), dim as u32, vector_type, model()).unwrap();
        let mut expected = Vec::new();
        for n in batches {
            for _ in 0..n {
                let i = expected.len();
                let v: Vec<f32> = (0..dim).map(|c| (((i as u32 ^ seed).wrapping_mul(2654435761).wrapping_add(c as u32 * 97)) % 2001) as f32 / 1000.0 - 1.0).collect();
                let key = format!("k{}-{}", seed % 1000, i);
                let m = ItemMeta { category: format!("c{}", i % 4), source: "é/ü".repeat(i % 3) };
                writer.add(&key, &v, &m).unwrap();
                expected.push((key, v, m));
            }
            writer.commit().unwrap();
        }
        let snapshot = Snapshot::open(dir).unwrap();
        prop_assert_eq!(snapshot.total_rows(), expected.len() as u64);
        for (id, (key, v, m)) in expected.iter().enumerate() {
            let (segment, row) = snapshot.locate(id as u64).unwrap();
            let got = segment.vector(row);
            for (a, b) in got.iter().zip(v) {
                let tolerance = if f16 { 1e-3 } else { 0.0 };
                prop_assert!((a - b).abs() <= tolerance);
            }
            prop_assert_eq!(snapshot.key(id as u64).unwrap(), key.as_str());
            prop_assert_eq!(&snapshot.meta(id as u64).unwrap(), m);
            prop_assert_eq!(snapshot.find(key).unwrap(), Some(id as u64));
        }
        snapshot.verify().unwrap();
    }
}

/// Every supported version's saved index keeps opening with the same contents.
#[test]
fn saved_v1_index_still_opens() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat/v1");
    let snapshot = Snapshot::open(Arc::new(MmapDirectory::open(path).unwrap())).unwrap();
    assert_eq!(snapshot.manifest().model.fingerprint, "0123456789abcdef");
    assert_eq!((snapshot.total_rows(), snapshot.live_rows()), (6, 5));
    assert!(snapshot.is_deleted(3));
    let id = snapshot.find("B000000005").unwrap().unwrap();
    assert_eq!(&*snapshot.segments()[0].vector(id), &[5.0, 1.0, 0.5, -0.25]);
    assert_eq!(snapshot.meta(id).unwrap().category, "toptee");
    snapshot.verify().unwrap();
}
