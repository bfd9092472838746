//! The `fiq-index` binary end to end: import, search, info, verify, and a writer killed mid-commit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fiq-index"))
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run fiq-index");
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn run_err(cmd: &mut Command) -> String {
    let out: Output = cmd.output().expect("run fiq-index");
    assert!(!out.status.success(), "unexpectedly succeeded");
    String::from_utf8(out.stderr).unwrap()
}

/// A synthetic FashionIQ tree of 40 images per category at `dir`.
fn synth_small(dir: &Path, seed: u64) {
    run_ok(bin().arg("synth").arg("--out").arg(dir).args([
        "--per-category",
        "40",
        "--seed",
        &seed.to_string(),
    ]));
}

fn write_npy(path: &Path, rows: usize, dim: usize, f: impl Fn(usize, usize) -> f32) {
    let data: Vec<f32> = (0..rows * dim).map(|i| f(i / dim, i % dim)).collect();
    fiq::npy::write_matrix(path, dim, &data).unwrap();
}

fn write_keys(path: &Path, prefix: &str, rows: usize) {
    let keys: String = (0..rows).map(|i| format!("{prefix}{i}\n")).collect();
    std::fs::write(path, keys).unwrap();
}

fn import(dir: &Path, rows: usize, dim: usize) -> PathBuf {
    let index = dir.join("index");
    write_npy(&dir.join("x.npy"), rows, dim, |r, c| {
        if c == r % dim {
            1.0
        } else {
            0.01 * c as f32
        }
    });
    write_keys(&dir.join("keys.txt"), "item", rows);
    run_ok(
        bin()
            .args(["import", "--vectors"])
            .arg(dir.join("x.npy"))
            .arg("--keys")
            .arg(dir.join("keys.txt"))
            .arg("--out")
            .arg(&index),
    );
    index
}

#[test]
fn import_search_info_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let index = import(tmp.path(), 50, 8);
    write_npy(&tmp.path().join("q.npy"), 2, 8, |r, c| {
        if c == r + 3 {
            1.0
        } else {
            0.0
        }
    });
    let out = run_ok(
        bin()
            .arg("search")
            .arg(&index)
            .arg("--query-npy")
            .arg(tmp.path().join("q.npy"))
            .args(["-k", "3", "--json"]),
    );
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["hits"].as_array().unwrap().len(), 3);
    // Row r has its spike at component r % 8: query 0 (spike at 3) is nearest item3, item11, ...
    assert_eq!(lines[0]["hits"][0]["key"], "item3");
    assert_eq!(lines[1]["hits"][0]["key"], "item4");

    let info = run_ok(bin().arg("info").arg(&index).arg("--json"));
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["items"], 50);
    assert_eq!(info["dim"], 8);

    let verified = run_ok(bin().arg("verify").arg(&index));
    assert!(verified.starts_with("ok:"), "{verified}");
}

#[test]
fn clear_errors_for_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let index = import(tmp.path(), 10, 4);
    // Query of the wrong dimension.
    write_npy(&tmp.path().join("q3.npy"), 1, 3, |_, _| 1.0);
    let err = run_err(
        bin()
            .arg("search")
            .arg(&index)
            .arg("--query-npy")
            .arg(tmp.path().join("q3.npy")),
    );
    assert!(
        err.contains("3 components") && err.contains("4-dimensional"),
        "{err}"
    );
    // Keys and vectors that do not match.
    write_keys(&tmp.path().join("short.txt"), "k", 3);
    let err = run_err(
        bin()
            .args(["import", "--vectors"])
            .arg(tmp.path().join("x.npy"))
            .arg("--keys")
            .arg(tmp.path().join("short.txt"))
            .arg("--out")
            .arg(tmp.path().join("other")),
    );
    assert!(err.contains("10 rows") && err.contains("3 keys"), "{err}");
    // NaN in a vector: refused, and nothing is committed.
    write_npy(&tmp.path().join("nan.npy"), 3, 4, |r, _| {
        if r == 2 {
            f32::NAN
        } else {
            1.0
        }
    });
    write_keys(&tmp.path().join("k3.txt"), "nan", 3);
    let err = run_err(
        bin()
            .args(["import", "--append", "--vectors"])
            .arg(tmp.path().join("nan.npy"))
            .arg("--keys")
            .arg(tmp.path().join("k3.txt"))
            .arg("--out")
            .arg(&index),
    );
    assert!(err.contains("row 2") && err.contains("NaN"), "{err}");
    let info: serde_json::Value =
        serde_json::from_str(&run_ok(bin().arg("info").arg(&index).arg("--json"))).unwrap();
    assert_eq!(info["items"], 10);
    // Not an index.
    let err = run_err(bin().arg("info").arg(tmp.path().join("nothing")));
    assert!(err.contains("not a fiq index"), "{err}");
    // A flipped byte.
    let seg = std::fs::read_dir(&index)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "fiqs"))
        .unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[300] ^= 1;
    std::fs::write(&seg, bytes).unwrap();
    let err = run_err(bin().arg("verify").arg(&index));
    assert!(
        err.contains("checksum mismatch in vectors section"),
        "{err}"
    );
}

/// Kills an appending writer at many points of its run; every time, the index reopens whole, at either
/// the old or the new version, and verifies.
#[test]
fn writer_killed_mid_commit_leaves_a_whole_index() {
    let tmp = tempfile::tempdir().unwrap();
    let index = import(tmp.path(), 100, 32);
    let rows = 60_000;
    write_npy(&tmp.path().join("big.npy"), rows, 32, |r, c| {
        ((r * 7 + c) % 13) as f32 + 1.0
    });
    write_keys(&tmp.path().join("big.txt"), "big", rows);
    let append = || {
        let mut cmd = bin();
        cmd.args(["import", "--append", "--vectors"])
            .arg(tmp.path().join("big.npy"))
            .arg("--keys")
            .arg(tmp.path().join("big.txt"))
            .arg("--out")
            .arg(&index);
        cmd
    };
    // How long a whole append takes, measured on a scratch copy.
    let scratch = tmp.path().join("scratch");
    copy_dir(&index, &scratch);
    let started = Instant::now();
    run_ok(
        bin()
            .args(["import", "--append", "--vectors"])
            .arg(tmp.path().join("big.npy"))
            .arg("--keys")
            .arg(tmp.path().join("big.txt"))
            .arg("--out")
            .arg(&scratch),
    );
    let full = started.elapsed();

    let mut saw_old = 0;
    for step in 0..12u32 {
        let mut child = append()
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(full.mul_f64(step as f64 / 12.0) + Duration::from_millis(5));
        let _ = child.kill();
        let _ = child.wait();
        let info: serde_json::Value =
            serde_json::from_str(&run_ok(bin().arg("info").arg(&index).arg("--json"))).unwrap();
        let items = info["items"].as_u64().unwrap();
        assert!(
            items == 100 || items == 100 + rows as u64,
            "step {step}: {items} items"
        );
        run_ok(bin().arg("verify").arg(&index));
        if items == 100 {
            saw_old += 1;
        } else {
            break; // committed: later appends would be refused as duplicates
        }
    }
    assert!(saw_old > 0, "no kill landed before the commit");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// The main job on a small synthetic catalog with the tiny test model: synth, build, rebuild (resumes,
/// adds nothing), eval with baselines; the report has every category plus the average, metrics in range.
#[test]
fn synth_build_eval_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/clip-tiny");
    let data = tmp.path().join("fashioniq");
    let index = tmp.path().join("index");
    synth_small(&data, 3);
    let build = |extra: &[&str]| {
        let out = bin()
            .arg("build")
            .arg("--fashioniq")
            .arg(&data)
            .arg("--model")
            .arg(&model)
            .arg("--out")
            .arg(&index)
            .args(["--quiet", "--commit-every", "16"])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stderr).unwrap()
    };
    let first = build(&[]);
    assert!(
        first.contains("added") && first.contains("(0 already present)"),
        "{first}"
    );
    let again = build(&[]);
    assert!(
        again.contains("added 0 images"),
        "a rebuild must resume, not re-encode: {again}"
    );
    run_ok(bin().arg("verify").arg(&index));

    let json = tmp.path().join("report.json");
    let table = run_ok(
        bin()
            .arg("eval")
            .arg("--fashioniq")
            .arg(&data)
            .arg("--model")
            .arg(&model)
            .arg("--index")
            .arg(&index)
            .args(["--quiet", "--baselines", "--json"])
            .arg(&json),
    );
    assert!(table.contains("dress") && table.contains("R@10"), "{table}");
    let document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    // The report names the model and preprocessing it used, and keeps the loader's report.
    assert!(!document["encoder"]["fingerprint"]
        .as_str()
        .unwrap()
        .is_empty());
    assert!(document["encoder"]["preprocessing"]
        .as_str()
        .unwrap()
        .contains("norm"));
    assert!(document["dataset"]["categories"].is_array());
    let reports = document["reports"].as_array().unwrap();
    assert_eq!(
        reports.len(),
        3,
        "chosen fusion plus text-only and image-only"
    );
    // The build made an IVF index (one list for so few images), so every report comes through the
    // IVF index and exactly; with one list, probing it is exact search, and the two must agree.
    for report in reports {
        assert_eq!(report["ivf"], report["exact"], "{report}");
        assert_eq!(
            report["agreement"]["identical"],
            report["agreement"]["queries"]
        );
        assert!(report["agreement"]["queries"].as_u64().unwrap() > 0);
    }
    let text = reports[0].to_string();
    for category in ["dress", "shirt", "toptee"] {
        assert!(text.contains(category), "{text}");
    }
    // Every number that looks like a recall or precision lies in [0, 1] or [0, 100].
    fn walk(v: &serde_json::Value, out: &mut Vec<f64>) {
        match v {
            serde_json::Value::Number(n) => out.push(n.as_f64().unwrap()),
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            serde_json::Value::Object(o) => o.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut numbers = Vec::new();
    walk(&reports[0], &mut numbers);
    assert!(
        numbers.iter().all(|x| x.is_finite() && *x >= 0.0),
        "{numbers:?}"
    );
}

/// Without --model, the tools use the built-in default model; a Combiner trained with `fiq-index train` on
/// that model's features (text cache from `fiq-index embed --texts`) evaluates with --fusion combiner.
#[test]
fn default_model_and_trained_combiner_end_to_end() {
    use fiq::fashioniq::{
        eval_query_text, training_query_text, Category, Dataset, LoadOptions, Split,
        TrainingCaption,
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("fashioniq");
    let index = tmp.path().join("index");
    synth_small(&data, 5);
    let help = run_ok(bin().args(["build", "--help"]));
    assert!(help.contains("models/fiq-default"), "{help}");
    for split in ["val", "train"] {
        run_ok(
            bin()
                .arg("build")
                .arg("--fashioniq")
                .arg(&data)
                .arg("--out")
                .arg(&index)
                .args(["--quiet", "--split", split]),
        );
    }

    // `train` encodes the texts itself with the index's model (the built-in one here) and keeps them.
    let combiner = tmp.path().join("combiner");
    let train_command = |out: &Path| {
        let mut command = bin();
        command
            .arg("train")
            .arg("--fashioniq")
            .arg(&data)
            .arg("--index")
            .arg(&index)
            .arg("--out")
            .arg(out)
            .args(["--epochs", "2", "--batch-size", "16", "--warmup", "2"])
            .args(["--projection-dim", "32", "--hidden-dim", "64"])
            .args(["--mined-negatives", "4", "--mine-every", "1"]);
        command
    };
    let train = |out: &Path, extra: &[&std::ffi::OsStr]| {
        let output = train_command(out).args(extra).output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    train(&combiner, &[]);
    let cache = combiner.join("text-features");
    let texts: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(cache.join("texts.json")).unwrap()).unwrap();
    let features = fiq::npy::read_matrix(cache.join("features.npy")).unwrap();
    assert_eq!((features.rows, features.dim), (texts.len(), 128));
    let val = Dataset::load(
        &data,
        &Category::ALL,
        Split::Val,
        LoadOptions::annotations_only(),
    )
    .unwrap();
    let needed = eval_query_text(&val.triplets(Category::Dress)[0].captions);
    assert!(texts.contains(&needed), "{needed:?} not encoded");
    let train_set = Dataset::load(
        &data,
        &Category::ALL,
        Split::Train,
        LoadOptions::annotations_only(),
    )
    .unwrap();
    let variant = training_query_text(
        &train_set.triplets(Category::Shirt)[0].captions,
        TrainingCaption::ALL[1],
    );
    assert!(texts.contains(&variant), "{variant:?} not encoded");
    // A rerun into the same folder reuses them; a cache made elsewhere is read as it is.
    let rerun = train(&combiner, &[]);
    assert!(rerun.contains("text vectors reused"), "{rerun}");
    // (mining the nearest, drawn from a pool; the runs above mine positive-aware, the default)
    train(
        &tmp.path().join("from-cache"),
        &[
            "--text-features".as_ref(),
            cache.as_os_str(),
            "--mine-pool".as_ref(),
            "8".as_ref(),
            "--mine-below-target".as_ref(),
            "off".as_ref(),
        ],
    );
    let refused = run_err(
        train_command(&tmp.path().join("refused"))
            .arg("--text-features")
            .arg(&cache)
            .args(["--mine-below-target", "NaN"]),
    );
    assert!(
        refused.contains("--mine-below-target") && refused.contains("positive fraction"),
        "{refused}"
    );

    let eval_combiner = || {
        let mut command = bin();
        command
            .arg("eval")
            .arg("--fashioniq")
            .arg(&data)
            .arg("--index")
            .arg(&index)
            .args(["--quiet", "--fusion", "combiner"]);
        command
    };
    let missing = run_err(&mut eval_combiner());
    assert!(missing.contains("--combiner"), "{missing}");

    let json = tmp.path().join("report.json");
    let table = run_ok(
        eval_combiner()
            .arg("--combiner")
            .arg(combiner.join("best"))
            .arg("--json")
            .arg(&json),
    );
    assert!(
        table.contains("toptee") && table.contains("R@50"),
        "{table}"
    );
    let document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let report = document["reports"][0].to_string();
    assert!(report.contains("Combiner"), "{report}");
}

#[test]
fn query_answers_as_the_library_does_and_reports_each_bad_query() {
    use fiq::encoder::{ClipEncoder, EncoderOptions};
    use fiq::{Query, Reference, Retriever};
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("fashioniq");
    let index = tmp.path().join("index");
    synth_small(&data, 9);
    run_ok(
        bin()
            .arg("build")
            .arg("--fashioniq")
            .arg(&data)
            .arg("--out")
            .arg(&index)
            .arg("--quiet"),
    );
    // The loader's report is kept with the index.
    assert!(index.join("missing-images.tsv").exists());

    let opened = fiq::Index::open(&index).unwrap();
    let (key, image) = (0..opened.total_rows())
        .find_map(|id| {
            let meta = opened.meta(id).unwrap();
            (meta.category == "dress").then(|| (opened.key(id).unwrap().to_owned(), meta.source))
        })
        .unwrap();
    let query = |extra: &[&str]| {
        let out = run_ok(
            bin()
                .arg("query")
                .arg(&index)
                .args(extra)
                .args(["-k", "5", "--json"]),
        );
        let line: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        line
    };
    let by_key = query(&[
        "--ref",
        &key,
        "--text",
        "is red and sleeveless",
        "--category",
        "dress",
    ]);
    let hits = by_key["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 5);
    assert!(hits.iter().all(|h| h["category"] == "dress"));

    // The library, asked the same, answers the same.
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/fiq-default");
    let encoder = ClipEncoder::load(&model, &EncoderOptions::default()).unwrap();
    let retriever = Retriever::open(
        &index,
        std::sync::Arc::new(encoder),
        fiq::fusion::Fusion::Sum,
    )
    .unwrap();
    let answer = retriever
        .query(
            &Query::new("is red and sleeveless")
                .reference(Reference::Key(key.clone()))
                .category("dress"),
            5,
        )
        .unwrap();
    for (ours, theirs) in hits.iter().zip(&answer.hits) {
        assert_eq!(ours["key"], theirs.key.as_str());
        assert!((ours["score"].as_f64().unwrap() - f64::from(theirs.score)).abs() < 1e-6);
    }
    // The reference's image file gives the same answer as its key, and --exact agrees here.
    let by_image = query(&[
        "--image",
        &image,
        "--text",
        "is red and sleeveless",
        "--category",
        "dress",
    ]);
    let keys_of = |v: &serde_json::Value| -> Vec<String> {
        v["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["key"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(keys_of(&by_image), keys_of(&by_key));
    let exact = query(&[
        "--ref",
        &key,
        "--text",
        "is red and sleeveless",
        "--category",
        "dress",
        "--exact",
    ]);
    assert_eq!(exact["mode"], "exact");
    assert_eq!(keys_of(&exact), keys_of(&by_key));

    // A file of queries: the bad ones are reported on their own lines, the good one answered.
    let queries = tmp.path().join("queries.jsonl");
    let corrupt = tmp.path().join("corrupt.jpg");
    std::fs::write(&corrupt, b"\xff\xd8\xff not a jpeg").unwrap();
    std::fs::write(
        &queries,
        format!(
            "{}\n{}\n{}\n",
            serde_json::json!({"ref": key, "text": "is darker"}),
            serde_json::json!({"image": corrupt, "text": "is darker"}),
            serde_json::json!({"ref": "NO-SUCH-KEY", "text": "is darker", "category": "dress"}),
        ),
    )
    .unwrap();
    let out = bin()
        .arg("query")
        .arg(&index)
        .arg("--queries")
        .arg(&queries)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "two queries failed: the exit status says so"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2 of 3 queries"), "{stderr}");
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["hits"].as_array().unwrap().len(), 10);
    assert!(
        lines[1]["error"].as_str().unwrap().contains("corrupt.jpg"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2]["error"].as_str().unwrap().contains("NO-SUCH-KEY"),
        "{}",
        lines[2]
    );

    // Another model than the index's is refused, naming both.
    let tiny = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/clip-tiny");
    let error = run_err(
        bin()
            .arg("query")
            .arg(&index)
            .arg("--model")
            .arg(&tiny)
            .args(["--text", "is red"]),
    );
    assert!(
        error.contains("fiq-default") && error.contains("clip-tiny"),
        "{error}"
    );
}

/// `add` (new and replaced keys), `remove` (present and absent keys), `info` with the IVF drift,
/// `compact`, `verify`, and searches that never name a removed key.
#[test]
fn add_remove_compact_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let index = import(tmp.path(), 60, 8);
    run_ok(
        bin()
            .args(["build", "--out"])
            .arg(&index)
            .args(["--ivf", "4", "--nprobe", "2", "--quiet"]),
    );
    // 10 rows: item0..item4 replaced, new0..new4 added.
    write_npy(&tmp.path().join("add.npy"), 10, 8, |r, c| {
        if c == (r + 4) % 8 {
            2.0
        } else {
            0.05
        }
    });
    let keys: String = (0..10)
        .map(|i| {
            if i < 5 {
                format!("item{i}\n")
            } else {
                format!("new{i}\n")
            }
        })
        .collect();
    std::fs::write(tmp.path().join("add.txt"), keys).unwrap();
    let out = run_ok(
        bin()
            .arg("add")
            .arg(&index)
            .arg("--vectors")
            .arg(tmp.path().join("add.npy"))
            .arg("--keys")
            .arg(tmp.path().join("add.txt"))
            .args(["--category", "dress"]),
    );
    assert!(out.contains("5 added, 5 replaced"), "{out}");
    std::fs::write(
        tmp.path().join("rm.txt"),
        "item10\nitem11\nnew7\nnot-there\n",
    )
    .unwrap();
    let out = run_ok(
        bin()
            .arg("remove")
            .arg(&index)
            .arg("--keys")
            .arg(tmp.path().join("rm.txt")),
    );
    assert!(out.contains("3 removed, 1 not found"), "{out}");
    let info: serde_json::Value =
        serde_json::from_str(&run_ok(bin().arg("info").arg(&index).arg("--json"))).unwrap();
    assert_eq!(info["items"], 60 + 5 - 3);
    assert_eq!(info["ivf_drift"]["added_rows"], 9, "{info}"); // 10 added, new7 removed

    let searched = |index: &Path| -> String {
        write_npy(&tmp.path().join("q.npy"), 8, 8, |r, c| {
            if c == r {
                1.0
            } else {
                0.0
            }
        });
        run_ok(
            bin()
                .arg("search")
                .arg(index)
                .arg("--query-npy")
                .arg(tmp.path().join("q.npy"))
                .args(["-k", "20", "--json"]),
        )
    };
    for key in ["\"item10\"", "\"item11\"", "\"new7\""] {
        assert!(!searched(&index).contains(key), "{key} was removed");
    }
    let out = run_ok(bin().arg("compact").arg(&index).arg("--quiet"));
    assert!(out.contains("70 rows -> 62"), "{out}");
    let info: serde_json::Value =
        serde_json::from_str(&run_ok(bin().arg("info").arg(&index).arg("--json"))).unwrap();
    assert_eq!(
        (info["items"].as_u64(), info["deleted"].as_u64()),
        (Some(62), Some(0))
    );
    for key in ["\"item10\"", "\"item11\"", "\"new7\""] {
        assert!(
            !searched(&index).contains(key),
            "{key} came back after compact"
        );
    }
    assert!(run_ok(bin().arg("verify").arg(&index)).starts_with("ok:"));
    // Only the committed version's files are left (and no staging or temporary file).
    let names: Vec<String> = std::fs::read_dir(&index)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().filter(|n| n.starts_with("seg-")).count() == 1
            && !names
                .iter()
                .any(|n| n.starts_with(".staged-") || n.ends_with(".tmp")),
        "{names:?}"
    );
}

#[test]
fn encoder_fine_tuning_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("fashioniq");
    let index = tmp.path().join("index");
    synth_small(&data, 8);
    for split in ["val", "train"] {
        run_ok(
            bin()
                .arg("build")
                .arg("--fashioniq")
                .arg(&data)
                .arg("--out")
                .arg(&index)
                .args(["--quiet", "--split", split]),
        );
    }
    let train = |what: &str, out: &Path| {
        run_ok(
            bin()
                .args(["train", "--what", what, "--fashioniq"])
                .arg(&data)
                .arg("--index")
                .arg(&index)
                .arg("--out")
                .arg(out)
                .args([
                    "--epochs",
                    "1",
                    "--batch-size",
                    "16",
                    "--trainable-blocks",
                    "1",
                ]),
        )
    };
    let eval = |model: &Path, index: &Path| {
        bin()
            .arg("eval")
            .arg("--fashioniq")
            .arg(&data)
            .arg("--index")
            .arg(index)
            .arg("--model")
            .arg(model)
            .args(["--split", "val", "--exact-only", "--quiet"])
            .output()
            .unwrap()
    };
    // A text-tower run: its checkpoint evaluates on the index the base model built.
    let text = tmp.path().join("text");
    let printed = train("text-encoder", &text);
    assert!(
        printed.contains("the image tower is unchanged"),
        "{printed}"
    );
    let record = std::fs::read_to_string(text.join("best/fiq-train.json")).unwrap();
    assert!(record.contains("\"towers\": \"text\""), "{record}");
    let out = eval(&text.join("best"), &index);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An image-tower run: the old index refuses its checkpoint, saying why.
    let vision = tmp.path().join("vision");
    let printed = train("vision-encoder", &vision);
    assert!(printed.contains("rebuild the index"), "{printed}");
    let out = eval(&vision.join("best"), &index);
    assert!(
        !out.status.success(),
        "the old index accepted a new image tower"
    );
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(message.contains("fingerprint"), "{message}");
    // Flags of the other kind of training are refused, not ignored.
    let message = run_err(
        bin()
            .args([
                "train",
                "--what",
                "text-encoder",
                "--synthetic-features",
                "--fashioniq",
            ])
            .arg(&data)
            .arg("--index")
            .arg(&index)
            .arg("--out")
            .arg(tmp.path().join("x")),
    );
    assert!(message.contains("--synthetic-features"), "{message}");
}
