//! `fiq-index build`, `tune` and `eval-ann` end to end on a small generated catalog.

use std::path::Path;
use std::process::Command;

fn fiq_index() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fiq-index"))
}

/// Writes `n` L2-normalized rows of dimension `dim` as a version-1 .npy: 12 overlapping clusters plus
/// noise, from a fixed-seed xorshift generator.
fn write_catalog(path: &Path, n: usize, dim: usize) {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f32 / (1u64 << 53) as f32 - 0.5
    };
    let centers: Vec<f32> = (0..12 * dim).map(|_| uniform()).collect();
    let mut body = Vec::with_capacity(n * dim * 4);
    for i in 0..n {
        let c = i % 12;
        let row: Vec<f32> = (0..dim)
            .map(|j| centers[c * dim + j] + 0.6 * uniform())
            .collect();
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        row.iter()
            .for_each(|v| body.extend_from_slice(&(v / norm).to_le_bytes()));
    }
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({n}, {dim}), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&body);
    std::fs::write(path, bytes).unwrap();
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn recorded_nprobe(dir: &Path) -> usize {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("ann.json")).unwrap()).unwrap();
    let params: serde_json::Value =
        serde_json::from_str(manifest["files"][0]["params"].as_str().unwrap()).unwrap();
    params["nprobe"].as_u64().unwrap() as usize
}

#[test]
fn build_tune_and_eval_an_ivf_index() {
    let tmp = tempfile::tempdir().unwrap();
    let vectors = tmp.path().join("base.npy");
    write_catalog(&vectors, 3000, 24);
    let index = tmp.path().join("ivf");
    run(fiq_index()
        .arg("build-ann")
        .arg("--vectors")
        .arg(&vectors)
        .args(["--ivf", "32", "--nprobe", "1"])
        .arg(&index));
    assert_eq!(recorded_nprobe(&index), 1);

    let table =
        run(fiq_index()
            .arg("tune")
            .arg(&index)
            .args(["--target-recall", "0.95", "-k", "10"]));
    let chosen: usize = table
        .lines()
        .find(|l| l.ends_with("<- chosen"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no chosen row in:\n{table}"));
    assert_eq!(recorded_nprobe(&index), chosen, "{table}");

    // eval-ann without --nprobe uses the recorded default, on queries tune never saw.
    let report = tmp.path().join("eval.json");
    run(fiq_index()
        .arg("eval-ann")
        .arg(&index)
        .args(["--seed", "99", "--num-queries", "300", "--json"])
        .arg(&report));
    let eval: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let point = &eval["points"][0];
    assert_eq!(point["nprobe"].as_u64().unwrap() as usize, chosen);
    let recall = point["recall_at_10"].as_f64().unwrap();
    assert!(
        recall >= 0.92,
        "recall@10 {recall} on fresh queries at the tuned nprobe"
    );
    assert!(eval["open_ms"].as_f64().unwrap() > 0.0);
}

#[test]
fn vectors_that_are_not_normalized_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let vectors = tmp.path().join("base.npy");
    write_catalog(&vectors, 100, 8);
    let mut bytes = std::fs::read(&vectors).unwrap();
    let last = bytes.len() - 4;
    bytes[last..].copy_from_slice(&5.0f32.to_le_bytes());
    std::fs::write(&vectors, bytes).unwrap();
    let out = fiq_index()
        .arg("build-ann")
        .arg("--vectors")
        .arg(&vectors)
        .args(["--ivf", "4"])
        .arg(tmp.path().join("ivf"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("row 99 has L2 norm"), "{err}");
}
