//! A living index at the format level: replacing rows, compaction, one writer, and readers whose files
//! are kept until they let go (leases), on both directory implementations.

use std::collections::BTreeMap;
use std::sync::Arc;

use fiq_index_format::directory::Directory;
use fiq_index_format::{
    FormatError, ItemMeta, MmapDirectory, ModelInfo, RamDirectory, Snapshot, SnapshotWriter,
    VectorType,
};

fn for_each_directory(check: impl Fn(Arc<dyn Directory>)) {
    check(Arc::new(RamDirectory::new()));
    let tmp = tempfile::tempdir().unwrap();
    check(Arc::new(
        MmapDirectory::create(tmp.path().join("index")).unwrap(),
    ));
}

fn meta(tag: &str) -> ItemMeta {
    ItemMeta {
        category: "dress".into(),
        source: tag.into(),
    }
}

/// Every live row, by key: (vector, metadata source).
fn live(snapshot: &Snapshot) -> BTreeMap<String, (Vec<f32>, String)> {
    (0..snapshot.total_rows())
        .filter(|&id| !snapshot.is_deleted(id))
        .map(|id| {
            let (segment, row) = snapshot.locate(id).unwrap();
            (
                snapshot.key(id).unwrap().to_owned(),
                (
                    segment.vector(row).into_owned(),
                    snapshot.meta(id).unwrap().source,
                ),
            )
        })
        .collect()
}

#[test]
fn upsert_replaces_a_live_key_in_one_commit() {
    for_each_directory(|dir| {
        let mut writer =
            SnapshotWriter::create(dir.clone(), 2, VectorType::F32, ModelInfo::default()).unwrap();
        writer.add("a", &[1.0, 0.0], &meta("a1")).unwrap();
        writer.add("b", &[0.0, 1.0], &meta("b1")).unwrap();
        writer.commit().unwrap();
        let (id, replaced) = writer.upsert("a", &[0.5, 0.5], &meta("a2")).unwrap();
        assert_eq!((id, replaced), (2, Some(0)));
        // A second row for the same key in the same commit is a duplicate in the input.
        assert!(matches!(
            writer.upsert("a", &[0.1, 0.1], &meta("a3")),
            Err(FormatError::DuplicateKey { .. })
        ));
        // A refused row changes nothing: "b" keeps its row.
        assert!(writer.upsert("b", &[f32::NAN, 0.0], &meta("b2")).is_err());
        writer.commit().unwrap();
        let snapshot = Snapshot::open(dir.clone()).unwrap();
        let rows = live(&snapshot);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows["a"], (vec![0.5, 0.5], "a2".to_owned()));
        assert_eq!(rows["b"], (vec![0.0, 1.0], "b1".to_owned()));
        assert_eq!(snapshot.find("a").unwrap(), Some(2));
    });
}

#[test]
fn compaction_keeps_exactly_the_live_rows_and_drops_ann_files() {
    for_each_directory(|dir| {
        let mut writer =
            SnapshotWriter::create(dir.clone(), 3, VectorType::F16, ModelInfo::default()).unwrap();
        for batch in 0..3 {
            for i in 0..10 {
                let v = [i as f32 * 0.25, batch as f32, 1.0];
                writer
                    .add(&format!("k{batch}-{i}"), &v, &meta("x"))
                    .unwrap();
            }
            writer.commit().unwrap();
        }
        for key in ["k0-3", "k1-0", "k2-9"] {
            writer.delete(key).unwrap();
        }
        writer.commit().unwrap();
        writer.set_ann(
            vec![(
                "ivf".into(),
                fiq_index_format::AnnFileSource::Bytes(vec![1, 2]),
            )],
            "{}".into(),
        );
        writer.commit().unwrap();
        let before = live(&Snapshot::open(dir.clone()).unwrap());

        writer.delete("k1-5").unwrap(); // a pending delete is applied by the compaction
        let segment = writer.compact().unwrap().unwrap();
        assert_eq!(segment.len(), 26);
        assert!(matches!(
            writer.add("late", &[1.0, 0.0, 0.0], &meta("x")),
            Err(FormatError::Conflict { .. })
        ));
        writer.commit().unwrap();

        let after = Snapshot::open(dir.clone()).unwrap();
        let mut expected = before;
        expected.remove("k1-5");
        assert_eq!(live(&after), expected);
        assert_eq!(after.total_rows(), 26);
        assert!(after.deleted_ids().is_empty());
        assert!(after.manifest().ann_files.is_empty(), "ids changed");
        after.verify().unwrap();
        // A removed key does not come back through compaction, and can be added again afterwards.
        assert_eq!(after.find("k0-3").unwrap(), None);
        writer.add("k0-3", &[0.0, 0.0, 1.0], &meta("new")).unwrap();
        writer.commit().unwrap();
        assert_eq!(
            Snapshot::open(dir.clone()).unwrap().find("k0-3").unwrap(),
            Some(26)
        );
    });
}

#[test]
fn compacting_everything_away_leaves_an_empty_index() {
    for_each_directory(|dir| {
        let mut writer =
            SnapshotWriter::create(dir.clone(), 2, VectorType::F32, ModelInfo::default()).unwrap();
        writer.add("only", &[1.0, 0.0], &meta("x")).unwrap();
        writer.commit().unwrap();
        writer.delete("only").unwrap();
        assert!(writer.compact().unwrap().is_none());
        writer.commit().unwrap();
        let snapshot = Snapshot::open(dir.clone()).unwrap();
        assert_eq!((snapshot.total_rows(), snapshot.live_rows()), (0, 0));
    });
}

#[test]
fn a_second_writer_gets_a_typed_error() {
    for_each_directory(|dir| {
        let _first =
            SnapshotWriter::create(dir.clone(), 2, VectorType::F32, ModelInfo::default()).unwrap();
        let err = SnapshotWriter::open(dir.clone()).unwrap_err();
        assert!(matches!(err, FormatError::WriterBusy { .. }), "{err}");
        assert!(err.to_string().contains("writer lock"), "{err}");
    });
}

#[test]
fn files_of_a_leased_version_outlive_newer_commits_until_released() {
    for_each_directory(|dir| {
        let mut writer =
            SnapshotWriter::create(dir.clone(), 2, VectorType::F32, ModelInfo::default()).unwrap();
        writer.add("a", &[1.0, 0.0], &meta("x")).unwrap();
        writer.commit().unwrap();
        let old = Snapshot::open(dir.clone()).unwrap();
        let old_files: Vec<String> = old.manifest().files().map(str::to_owned).collect();
        assert_eq!(
            Snapshot::current_generation(dir.as_ref()).unwrap(),
            old.generation()
        );

        writer.add("b", &[0.0, 1.0], &meta("x")).unwrap();
        writer.commit().unwrap();
        writer.delete("a").unwrap();
        writer.compact().unwrap();
        writer.commit().unwrap();
        assert!(Snapshot::current_generation(dir.as_ref()).unwrap() > old.generation());
        let names = dir.list().unwrap();
        for file in &old_files {
            assert!(names.contains(file), "{file} was collected while leased");
        }
        // The old snapshot still reads its version.
        assert_eq!(live(&old).keys().collect::<Vec<_>>(), ["a"]);
        old.verify().unwrap();

        drop(old);
        writer.set_setting("touch", "1");
        writer.commit().unwrap();
        let names = dir.list().unwrap();
        for file in &old_files {
            assert!(!names.contains(file), "{file} outlived its last reader");
        }
    });
}

#[test]
fn current_generation_needs_no_full_decode_but_checks_the_magic() {
    let dir = RamDirectory::new();
    dir.overwrite(
        "MANIFEST",
        b"NOTMANIF\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x05\0\0\0\0\0\0\0".to_vec(),
    );
    let err = Snapshot::current_generation(&dir).unwrap_err();
    assert!(matches!(err, FormatError::BadMagic { .. }), "{err}");
    dir.overwrite("MANIFEST", b"FIQMANIF".to_vec());
    assert!(Snapshot::current_generation(&dir).is_err());
}

#[test]
fn sections_are_checked_on_first_use_once() {
    let dir = RamDirectory::new();
    let shared: Arc<dyn Directory> = Arc::new(dir.clone());
    let mut writer =
        SnapshotWriter::create(shared.clone(), 4, VectorType::F32, ModelInfo::default()).unwrap();
    for i in 0..20 {
        writer
            .add(&format!("key{i}"), &[i as f32, 1.0, 0.0, 0.5], &meta("x"))
            .unwrap();
    }
    writer.commit().unwrap();
    drop(writer);
    let name = dir
        .list()
        .unwrap()
        .into_iter()
        .find(|n| n.ends_with(".fiqs"))
        .unwrap();
    let pristine = dir.open_read(&name).unwrap().to_vec();
    let snapshot = Snapshot::open(shared.clone()).unwrap();
    let vectors_at = 256 + 5; // the vectors section starts right after the table (SPEC.md)
    snapshot.segments()[0].check_on_first_use(true).unwrap();

    let mut bytes = pristine.clone();
    bytes[vectors_at] ^= 0x10;
    dir.overwrite(&name, bytes);
    let damaged = Snapshot::open(shared.clone()).unwrap();
    damaged.segments()[0].check_on_first_use(false).unwrap();
    let err = damaged.segments()[0].check_on_first_use(true).unwrap_err();
    assert!(err.to_string().contains("vectors section"), "{err}");
    assert!(err.to_string().contains(&name), "{err}");
    // Remembered: the second call answers the same without a new pass.
    assert!(damaged.segments()[0].check_on_first_use(true).is_err());

    let mut bytes = pristine.clone();
    let last = bytes.len() - 1; // metadata bytes come last
    bytes[last] ^= 0x01;
    dir.overwrite(&name, bytes);
    let damaged = Snapshot::open(shared).unwrap();
    let err = damaged.segments()[0].check_on_first_use(false).unwrap_err();
    assert!(
        err.to_string().contains("checksum mismatch in meta"),
        "{err}"
    );
}
