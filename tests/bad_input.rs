//! The malformed-input corpus: every kind of bad input gets a clear error naming the thing, or a
//! counted, logged skip, never a panic (RELIABILITY.md, "Bad input" has the table these tests back).

use std::path::{Path, PathBuf};

use fiq::ann::{AnnParams, AnnRecord};
use fiq::encoder::{ClipEncoder, Encoder, EncoderOptions};
use fiq::index::{Index, IndexWriter, ItemMeta, ModelInfo};
use fiq_index_format::manifest::{Manifest, MANIFEST_FILE};

/// A version 1.0 `.npy` file of little-endian f32 with the given shape text, e.g. `(3, 0)`.
fn raw_npy(path: &Path, shape: &str, values: &[f32]) {
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

fn small_index(dir: &Path, dim: usize) -> PathBuf {
    let index = dir.join("index");
    let mut writer = IndexWriter::create(&index, dim, ModelInfo::default()).unwrap();
    for i in 0..4 {
        let mut v = vec![0.1; dim];
        v[i % dim] = 1.0;
        writer
            .add(&format!("k{i}"), &v, &ItemMeta::default())
            .unwrap();
    }
    writer.commit().unwrap();
    index
}

/// Adds vectors to an existing index as `fiq-index add --vectors` does.
fn add_vectors(index: &Path, npy: &Path, keys: &Path) -> fiq::Result<fiq::pipeline::ImportReport> {
    let options = fiq::pipeline::ImportOptions {
        append: true,
        progress: false,
        ..Default::default()
    };
    fiq::pipeline::import_vectors(npy, keys, index, &options)
}

/// The whole error chain of adding `npy` with `keys` (one per line) to `index`.
fn add_err(index: &Path, npy: &Path, keys: &str) -> String {
    let keys_path = npy.with_extension("txt");
    std::fs::write(&keys_path, keys).unwrap();
    fiq::error::chain(&add_vectors(index, npy, &keys_path).unwrap_err())
}

#[test]
fn zero_huge_and_mismatched_dimensions_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let index = small_index(tmp.path(), 4);
    let zero = tmp.path().join("zero.npy");
    raw_npy(&zero, "(3, 0)", &[]);
    let err = add_err(&index, &zero, "a\nb\nc\n");
    assert!(err.contains("zero.npy"), "{err}");
    let wide = tmp.path().join("wide.npy");
    raw_npy(&wide, "(1, 70000)", &vec![0.5; 70_000]);
    let err = add_err(&index, &wide, "a\n");
    assert!(
        err.contains("70000-dimensional") && err.contains("holds 4"),
        "{err}"
    );
    for dim in [0, 70_000] {
        let err = IndexWriter::create(
            tmp.path().join(format!("d{dim}")),
            dim,
            ModelInfo::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains(&format!("dimension {dim}")), "{err}");
    }
    assert_eq!(
        Index::open(&index).unwrap().len(),
        4,
        "nothing was committed"
    );
}

#[test]
fn nan_inf_and_zero_vectors_are_refused_naming_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let index = small_index(tmp.path(), 2);
    for (name, bad) in [("nan", f32::NAN), ("inf", f32::INFINITY)] {
        let npy = tmp.path().join(format!("{name}.npy"));
        raw_npy(&npy, "(2, 2)", &[1.0, 0.0, bad, 1.0]);
        let err = add_err(&index, &npy, "good\nbad-row\n");
        assert!(err.contains("bad-row") && err.contains("finite"), "{err}");
    }
    let npy = tmp.path().join("zero-vector.npy");
    raw_npy(&npy, "(1, 2)", &[0.0, 0.0]);
    let err = add_err(&index, &npy, "zeros\n");
    assert!(err.contains("zeros"), "{err}");
    assert_eq!(
        Index::open(&index).unwrap().len(),
        4,
        "nothing was committed"
    );
}

#[test]
fn duplicate_empty_and_non_utf8_keys_are_refused_naming_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let index = small_index(tmp.path(), 2);
    let npy = tmp.path().join("three.npy");
    raw_npy(&npy, "(3, 2)", &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
    let err = add_err(&index, &npy, "a\nb\na\n");
    assert!(err.contains("\"a\"") && err.contains("line 3"), "{err}");
    let err = add_err(&index, &npy, "a\n\nc\n");
    assert!(err.contains("line 2 is empty"), "{err}");
    let keys = npy.with_extension("txt");
    std::fs::write(&keys, b"a\n\xff\xfe\nc\n").unwrap();
    let err = fiq::error::chain(&add_vectors(&index, &npy, &keys).unwrap_err());
    assert!(err.contains("line 2 is not UTF-8"), "{err}");
    let err = add_err(&index, &npy, "a\nb\n");
    assert!(err.contains("3 rows") && err.contains("2 keys"), "{err}");
}

fn default_encoder() -> ClipEncoder {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/fiq-default");
    let options = EncoderOptions {
        progress: false,
        ..EncoderOptions::default()
    };
    ClipEncoder::load(&dir, &options).unwrap()
}

fn png_bytes(seed: u8) -> Vec<u8> {
    let image = image::RgbImage::from_fn(40, 48, |x, y| {
        image::Rgb([x as u8 * 5, y as u8 * 4, seed.wrapping_mul(37)])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[test]
fn bad_images_are_counted_and_logged_skips_and_the_rest_is_added_in_one_commit() {
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().unwrap();
    let encoder = default_encoder();
    let index = tmp.path().join("index");
    IndexWriter::create(&index, encoder.dim(), encoder.info().clone()).unwrap();

    let images = tmp.path().join("images");
    std::fs::create_dir(&images).unwrap();
    let good = png_bytes(1);
    std::fs::write(images.join("good.png"), &good).unwrap();
    std::fs::write(images.join("dup.PNG"), png_bytes(2)).unwrap();
    std::fs::write(images.join("dup.png"), png_bytes(3)).unwrap();
    std::fs::write(images.join("truncated.png"), &good[..good.len() / 2]).unwrap();
    std::fs::write(images.join("garbage.jpg"), b"this is not a JPEG at all").unwrap();
    std::fs::write(images.join("empty.jpg"), b"").unwrap();
    let odd = std::ffi::OsStr::from_bytes(b"caf\xe9.png");
    std::fs::write(images.join(odd), &good).unwrap();
    std::fs::write(images.join("notes.txt"), b"not an image extension: ignored").unwrap();

    let report =
        fiq::pipeline::upsert_image_dir(&index, &images, "dress", &encoder, false).unwrap();
    assert_eq!(
        (report.added, report.replaced),
        (2, 0),
        "{:?}",
        report.skipped
    );
    let mut skipped: Vec<(&str, &str)> = report
        .skipped
        .iter()
        .map(|s| (s.name.as_str(), s.reason.as_str()))
        .collect();
    skipped.sort();
    assert_eq!(skipped.len(), 5, "{skipped:?}");
    let reason = |name: &str| skipped.iter().find(|s| s.0 == name).map(|s| s.1).unwrap();
    assert!(reason("dup").contains("same key"), "{skipped:?}");
    assert!(reason("caf\u{fffd}").contains("not UTF-8"), "{skipped:?}");
    for name in ["truncated", "garbage", "empty"] {
        assert!(!reason(name).is_empty(), "{skipped:?}");
    }
    let opened = Index::open(&index).unwrap();
    assert_eq!(opened.len(), 2);
    assert_eq!(
        opened
            .meta(opened.id_of("good").unwrap().unwrap())
            .unwrap()
            .category,
        "dress"
    );

    // Again: the same keys are replaced, not duplicated.
    let again = fiq::pipeline::upsert_image_dir(&index, &images, "dress", &encoder, false).unwrap();
    assert_eq!((again.added, again.replaced), (0, 2));
    assert_eq!(Index::open(&index).unwrap().len(), 2);
}

/// The FAISS file's header damaged: with the checksums of format 3 the error names the header section;
/// a format-2 record (no checksums) leaves it to FAISS's reader, whose error names the file.
#[test]
fn a_faiss_file_with_a_corrupt_header_fails_open_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("index");
    let mut writer = IndexWriter::create(&index, 4, ModelInfo::default()).unwrap();
    for i in 0..64 {
        let angle = i as f32 / 7.0;
        let v = [angle.cos(), angle.sin(), 0.3, (i % 5) as f32 / 5.0];
        writer
            .add(&format!("k{i}"), &v, &ItemMeta::default())
            .unwrap();
    }
    writer.commit().unwrap();
    writer.build_ann(&AnnParams::ivf_flat(4), &()).unwrap();
    writer.commit().unwrap();
    drop(writer);
    let manifest_path = index.join(MANIFEST_FILE);
    let mut manifest =
        Manifest::decode(&std::fs::read(&manifest_path).unwrap(), &manifest_path).unwrap();
    let file = manifest.ann_files[0].entry.file.clone();
    let mut bytes = std::fs::read(index.join(&file)).unwrap();
    bytes[0..4].copy_from_slice(b"XXXX"); // the fourcc
    std::fs::write(index.join(&file), &bytes).unwrap();
    let err = Index::open(&index).unwrap_err().to_string();
    assert!(
        err.contains(&file) && err.contains("header section"),
        "{err}"
    );

    let mut record = AnnRecord::from_json(&manifest.ann_params).unwrap();
    record.format = 2;
    record.head_crc32 = 0;
    record.list_crc32.clear();
    manifest.ann_params = record.to_json();
    std::fs::write(&manifest_path, manifest.encode().unwrap()).unwrap();
    let err = Index::open(&index).unwrap_err().to_string();
    assert!(err.contains(&file), "{err}");
}
