//! `fiq-index build`, `tune`, `eval-ann` and `search` on an IVF index, end to end on a small generated
//! catalog.

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

fn write_keys(path: &Path, n: usize, prefix: &str) {
    let keys: String = (0..n).map(|i| format!("{prefix}{i:05}\n")).collect();
    std::fs::write(path, keys).unwrap();
}

fn info(index: &Path) -> serde_json::Value {
    serde_json::from_str(&run(fiq_index().arg("info").arg(index).arg("--json"))).unwrap()
}

fn recorded_nprobe(index: &Path) -> usize {
    let params: serde_json::Value =
        serde_json::from_str(info(index)["ann_params"].as_str().unwrap()).unwrap();
    params["nprobe"].as_u64().unwrap() as usize
}

/// The nprobe of the row `tune` marks as chosen in its table.
fn chosen_nprobe(table: &str) -> usize {
    table
        .lines()
        .find(|line| line.ends_with("<- chosen"))
        .and_then(|line| line.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no chosen row in:\n{table}"))
}

/// Builds a 3000 x 24 index with IVF32,Flat (nprobe 1) in `dir`.
fn build_index(dir: &Path) -> std::path::PathBuf {
    let vectors = dir.join("base.npy");
    let keys = dir.join("keys.txt");
    write_catalog(&vectors, 3000, 24);
    write_keys(&keys, 3000, "item");
    let index = dir.join("index");
    run(fiq_index()
        .arg("build")
        .arg("--vectors")
        .arg(&vectors)
        .arg("--keys")
        .arg(&keys)
        .args(["--ivf", "32", "--nprobe", "1", "--out"])
        .arg(&index));
    index
}

fn search_json(index: &Path, queries: &Path, extra: &[&str]) -> Vec<Vec<String>> {
    run(fiq_index()
        .arg("search")
        .arg(index)
        .arg("--query-npy")
        .arg(queries)
        .args(["-k", "10", "--json"])
        .args(extra))
    .lines()
    .map(|line| {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["key"].as_str().unwrap().to_owned())
            .collect()
    })
    .collect()
}

#[test]
fn build_tune_and_eval_an_ivf_index() {
    let tmp = tempfile::tempdir().unwrap();
    let index = build_index(tmp.path());
    assert_eq!(recorded_nprobe(&index), 1);

    let table =
        run(fiq_index()
            .arg("tune")
            .arg(&index)
            .args(["--target-recall", "0.95", "-k", "10"]));
    let chosen = chosen_nprobe(&table);
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
fn search_through_the_ivf_index_exactly_and_after_appends() {
    let tmp = tempfile::tempdir().unwrap();
    let index = build_index(tmp.path());
    let queries = tmp.path().join("queries.npy");
    write_catalog(&queries, 20, 24);

    // Probing every list is exact search; probing one list is not (the data is not trivial).
    let exact = search_json(&index, &queries, &["--exact"]);
    assert_eq!(search_json(&index, &queries, &["--nprobe", "32"]), exact);
    assert_ne!(search_json(&index, &queries, &[]), exact);

    // Rows appended after the IVF build are found (scored exactly until the next build).
    let extra = tmp.path().join("extra.npy");
    let extra_keys = tmp.path().join("extra.txt");
    // The generator is seeded: these are the queries again, and the queries are rows 0..20 of the
    // catalog, so each query's two best are item{q} and new{q}, at the same score.
    write_catalog(&extra, 20, 24);
    write_keys(&extra_keys, 20, "new");
    run(fiq_index()
        .arg("import")
        .arg("--append")
        .arg("--vectors")
        .arg(&extra)
        .arg("--keys")
        .arg(&extra_keys)
        .arg("--out")
        .arg(&index));
    let found = search_json(&index, &queries, &[]);
    for (q, hits) in found.iter().enumerate() {
        let mut best_two = hits[..2].to_vec();
        best_two.sort();
        assert_eq!(
            best_two,
            [format!("item{q:05}"), format!("new{q:05}")],
            "query {q}: {hits:?}"
        );
    }

    // Rebuilding the IVF index over the existing index covers the new rows; verify checks its CRC.
    run(fiq_index()
        .arg("build")
        .arg("--ivf")
        .arg("16")
        .arg("--out")
        .arg(&index));
    let params: serde_json::Value =
        serde_json::from_str(info(&index)["ann_params"].as_str().unwrap()).unwrap();
    assert_eq!(params["len"], 3020);
    assert_eq!(params["nlist"], 16);
    // Without --nprobe, build records a measured nprobe: what `tune` (same defaults) chooses.
    let table = run(fiq_index().arg("tune").arg(&index).arg("--dry-run"));
    assert_eq!(recorded_nprobe(&index), chosen_nprobe(&table), "{table}");
    run(fiq_index().arg("verify").arg(&index));
    let ivf_file = std::fs::read_dir(&index)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("ann-ivf")
        })
        .expect("the IVF file lives in the index directory");
    let mut bytes = std::fs::read(&ivf_file).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x10;
    std::fs::write(&ivf_file, bytes).unwrap();
    let out = fiq_index().arg("verify").arg(&index).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ann-ivf") && err.contains("checksum mismatch"),
        "{err}"
    );
}

#[test]
fn build_without_input_names_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = fiq_index()
        .arg("build")
        .arg("--out")
        .arg(tmp.path().join("nothing"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--fashioniq") && err.contains("--vectors"),
        "{err}"
    );
}
