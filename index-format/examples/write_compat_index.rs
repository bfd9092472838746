//! Writes the small index kept under `tests/compat/v<N>/` for the current format version; run once per
//! new version: `cargo run -p fiq-index-format --example write_compat_index -- index-format/tests/compat/v1`
use std::sync::Arc;

use fiq_index_format::{ItemMeta, MmapDirectory, ModelInfo, SnapshotWriter, VectorType};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .ok_or("usage: write_compat_index OUT_DIR")?;
    let dir = Arc::new(MmapDirectory::create(&out)?);
    let model = ModelInfo {
        name: "compat".into(),
        fingerprint: "0123456789abcdef".into(),
        preprocessing: "none".into(),
    };
    let mut writer = SnapshotWriter::create(dir, 4, VectorType::F32, model)?;
    for i in 0..6u32 {
        let meta = ItemMeta {
            category: ["dress", "shirt", "toptee"][i as usize % 3].into(),
            source: format!("images/B{i:09}.jpg"),
        };
        writer.add(&format!("B{i:09}"), &[i as f32, 1.0, 0.5, -0.25], &meta)?;
    }
    writer.commit()?;
    writer.delete("B000000003")?;
    writer.commit()?;
    Ok(())
}
