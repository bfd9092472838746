//! Arbitrary bytes in place of one file of a valid index, then everything a reader does: open, look up
//! every key and metadata record, read every vector, verify. Nothing may panic; errors are fine.
#![no_main]

use std::sync::Arc;

use fiq_index_format::{Directory, ItemMeta, ModelInfo, RamDirectory, Snapshot, SnapshotWriter, VectorType};
use libfuzzer_sys::fuzz_target;

fn valid_index(vector_type: VectorType) -> RamDirectory {
    let dir = RamDirectory::new();
    let mut writer = SnapshotWriter::create(Arc::new(dir.clone()), 3, vector_type, ModelInfo::default()).unwrap();
    for i in 0..5u32 {
        let meta = ItemMeta { category: "dress".into(), source: format!("{i}.jpg") };
        writer.add(&format!("key{i}"), &[i as f32, 1.0, -0.5], &meta).unwrap();
    }
    writer.commit().unwrap();
    writer.delete("key2").unwrap();
    writer.commit().unwrap();
    dir
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else { return };
    let dir = valid_index(if selector & 0x80 == 0 { VectorType::F32 } else { VectorType::F16 });
    let names = dir.list().unwrap();
    let names: Vec<&String> = names.iter().filter(|n| n.as_str() != "writer.lock").collect();
    let target = names[(selector & 0x7f) as usize % names.len()];
    dir.overwrite(target, bytes.to_vec());
    let Ok(snapshot) = Snapshot::open(Arc::new(dir)) else { return };
    for id in 0..snapshot.total_rows() {
        let _ = snapshot.key(id);
        let _ = snapshot.meta(id);
        if let Some((segment, row)) = snapshot.locate(id) {
            let _ = segment.vector(row);
        }
        let _ = snapshot.is_deleted(id);
    }
    let _ = snapshot.find("key3");
    let _ = snapshot.verify();
});
