//! Every decoder of `fiq-index-format` on arbitrary bytes, and round trips where a decode succeeds:
//! decode(encode(x)) == x.
#![no_main]

use std::path::Path;

use fiq_index_format::manifest::Manifest;
use fiq_index_format::meta::{decode_item_meta, encode_item_meta};
use fiq_index_format::tombstones::{decode_tombstones, encode_tombstones};
use fiq_index_format::{FileBytes, Segment};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else { return };
    let path = Path::new("fuzz");
    match which % 4 {
        0 => {
            if let Ok(manifest) = Manifest::decode(bytes, path) {
                let again = Manifest::decode(&manifest.encode().unwrap(), path).unwrap();
                assert_eq!(manifest, again);
            }
        }
        1 => {
            if let Ok(segment) = Segment::open(FileBytes::from_vec(bytes.to_vec(), path)) {
                for row in 0..segment.len().min(64) {
                    let _ = segment.key(row);
                    let _ = segment.meta(row);
                    let _ = segment.vector(row);
                }
                let _ = segment.find("a");
                let _ = segment.verify();
            }
        }
        2 => {
            if let Ok(ids) = decode_tombstones(bytes, u64::MAX, path) {
                assert_eq!(decode_tombstones(&encode_tombstones(&ids), u64::MAX, path).unwrap(), ids);
            }
        }
        _ => {
            if let Ok(meta) = decode_item_meta(bytes) {
                assert_eq!(decode_item_meta(&encode_item_meta(&meta).unwrap()).unwrap(), meta);
            }
        }
    }
});
