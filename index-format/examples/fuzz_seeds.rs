//! Writes the fuzz targets' seed corpus: valid files of every kind, so the fuzzer starts from
//! well-formed inputs and mutates inward. `cargo run -p fiq-index-format --example fuzz_seeds -- fuzz/corpus/seeds`
use std::path::PathBuf;
use std::sync::Arc;

use fiq_index_format::meta::{encode_item_meta, ItemMeta};
use fiq_index_format::{Directory, ModelInfo, RamDirectory, SnapshotWriter, VectorType};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::args().nth(1).ok_or("usage: fuzz_seeds OUT_DIR")?);
    let (open_dir, decoders_dir) = (out.join("open_index"), out.join("decoders"));
    std::fs::create_dir_all(&open_dir)?;
    std::fs::create_dir_all(&decoders_dir)?;
    for (tag, vector_type) in [(0u8, VectorType::F32), (0x80u8, VectorType::F16)] {
        let dir = RamDirectory::new();
        let mut writer =
            SnapshotWriter::create(Arc::new(dir.clone()), 3, vector_type, ModelInfo::default())?;
        for i in 0..5u32 {
            let meta = ItemMeta {
                category: "dress".into(),
                source: format!("{i}.jpg"),
            };
            writer.add(&format!("key{i}"), &[i as f32, 1.0, -0.5], &meta)?;
        }
        writer.commit()?;
        writer.delete("key2")?;
        writer.commit()?;
        let names: Vec<String> = dir
            .list()?
            .into_iter()
            .filter(|n| n != "writer.lock")
            .collect();
        for (i, name) in names.iter().enumerate() {
            let bytes = dir.open_read(name)?;
            // open_index: first byte selects the file to replace (and f16 with the high bit).
            let mut seed = vec![tag | i as u8];
            seed.extend_from_slice(&bytes);
            std::fs::write(open_dir.join(format!("{tag:02x}-{name}")), seed)?;
            // decoders: first byte selects the decoder (0 manifest, 1 segment, 2 tombstones).
            let which = if name == "MANIFEST" {
                0
            } else if name.starts_with("seg-") {
                1
            } else {
                2
            };
            let mut seed = vec![which];
            seed.extend_from_slice(&bytes);
            std::fs::write(decoders_dir.join(format!("{tag:02x}-{name}")), seed)?;
        }
    }
    let mut seed = vec![3u8];
    seed.extend(encode_item_meta(&ItemMeta {
        category: "shirt".into(),
        source: "a/b.png".into(),
    })?);
    std::fs::write(decoders_dir.join("item-meta"), seed)?;
    Ok(())
}
