//! fiq against a real Milvus server (Milvus 2.3.5 standalone from the PyPI `milvus` package).
//!
//! The server is found through `FIQ_MILVUS_SERVER` (the path of the package's `milvus-server` wrapper)
//! or `milvus-server` on PATH; where there is none, every test here says loudly that it is SKIPPED and
//! why (`.ci/run` installs it, so CI runs them). One server per test binary: the tests that need it run
//! one after another in one test function, on free loopback ports, in its own process group, which is
//! stopped as a whole at the end (the wrapper alone leaves the server running).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use fiq::milvus::{ConnectOptions, MilvusCollection, MilvusUrl};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fiq-index"))
}

fn tiny_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/clip-tiny")
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run fiq-index")
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "failed: {:?}\nstdout: {}\nstderr: {}",
        cmd,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `milvus-server` wrapper, or why the tests are skipped.
fn milvus_server() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("FIQ_MILVUS_SERVER") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "FIQ_MILVUS_SERVER={} is not a file",
                path.display()
            ))
        };
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("milvus-server"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "no milvus-server: set FIQ_MILVUS_SERVER to the PyPI `milvus` package's wrapper \
             (.ci/run installs it) or put it on PATH"
                .into()
        })
}

fn skip(test: &str, why: &str) {
    eprintln!("\n*** SKIPPED {test}: {why} ***\n*** the Milvus tests did NOT run ***\n");
}

/// A Milvus standalone server on free loopback ports, in its own process group; the whole group is
/// stopped when dropped.
struct Milvus {
    child: Child,
    port: u16,
    _data: tempfile::TempDir,
}

impl Milvus {
    fn start(wrapper: &Path) -> Milvus {
        use std::os::unix::process::CommandExt;
        let data = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut cmd = Command::new(wrapper);
        cmd.arg("--data").arg(data.path());
        // Every port the wrapper lets us choose, so that nothing else on the machine collides (etcd's
        // peer port and the metrics port 9091 are fixed: one server per machine at a time).
        for flag in [
            "--etcd-port",
            "--root-coord-port",
            "--proxy-internal-port",
            "--query-coord-port",
            "--query-node-port",
            "--index-coord-port",
            "--index-node-port",
            "--data-coord-port",
            "--data-node-port",
        ] {
            cmd.arg(flag).arg(free_port().to_string());
        }
        let log = std::fs::File::create(data.path().join("wrapper.log")).unwrap();
        let child = cmd
            .arg("--proxy-port")
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start milvus-server");
        let milvus = Milvus {
            child,
            port,
            _data: data,
        };
        milvus.wait_ready(Duration::from_secs(180));
        milvus
    }

    fn wait_ready(&self, limit: Duration) {
        let started = Instant::now();
        loop {
            if healthy() && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                eprintln!("milvus up in {:.1?}", started.elapsed());
                return;
            }
            if started.elapsed() > limit {
                let log = std::fs::read_to_string(self._data.path().join("wrapper.log"))
                    .unwrap_or_default();
                panic!("milvus-server not healthy after {limit:?}; its output:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn url(&self, collection: &str) -> String {
        format!("milvus://127.0.0.1:{}/{collection}", self.port)
    }
}

/// Milvus's health endpoint (metrics port 9091) answers 200.
fn healthy() -> bool {
    let Ok(mut stream) = TcpStream::connect("127.0.0.1:9091") else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200")
}

impl Drop for Milvus {
    fn drop(&mut self) {
        let group = self.child.id() as i32;
        // SAFETY: kill(2) with a negative pid signals the process group this test started (its own
        // group, made by process_group(0)); no memory is involved.
        unsafe { libc::kill(-group, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        // SAFETY: as above; SIGKILL whatever of the group is left (the server outlives its wrapper).
        unsafe { libc::kill(-group, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

fn collection(url: &str) -> MilvusCollection {
    let url: MilvusUrl = url.parse().unwrap();
    MilvusCollection::open(&url, &ConnectOptions::default()).unwrap()
}

fn eval_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The metric rows (R@K, P@K per category and average) of an eval report.
fn metrics(report: &serde_json::Value) -> serde_json::Value {
    let mut report = report.clone();
    // Timings and the per-run notes differ; the metrics must not.
    if let Some(object) = report.as_object_mut() {
        object.retain(|k, _| k == "rows" || k == "average" || k == "categories");
    }
    report
}

#[test]
fn milvus_end_to_end() {
    let wrapper = match milvus_server() {
        Ok(path) => path,
        Err(why) => return skip("milvus_end_to_end", &why),
    };
    let milvus = Milvus::start(&wrapper);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fashioniq");
    let index = dir.path().join("index");
    let model = tiny_model();
    run_ok(bin().arg("synth").arg("--out").arg(&data).args([
        "--per-category",
        "60",
        "--seed",
        "7",
    ]));
    // The local index: the same catalog, the same model.
    run_ok(
        bin()
            .args([
                "build",
                "--quiet",
                "--ivf",
                "4",
                "--nprobe",
                "4",
                "--fashioniq",
            ])
            .arg(&data)
            .arg("--model")
            .arg(&model)
            .arg("--out")
            .arg(&index),
    );
    let local = fiq::Index::open(&index).unwrap();
    let rows = local.len() as usize;
    assert!(rows > 20, "{rows} rows");

    // Two parts of the catalog encoded at once into one collection.
    let url = milvus.url("shop");
    let part = |p: &str| {
        let mut cmd = bin();
        cmd.args(["build", "--quiet", "--ivf", "4", "--fashioniq"])
            .arg(&data)
            .arg("--model")
            .arg(&model)
            .args(["--sink", &url, "--part", p, "--milvus-batch", "16"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    };
    let first = part("1/2").spawn().unwrap();
    let second = part("2/2").spawn().unwrap();
    for child in [first, second] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "a part failed: {}", stderr(&out));
        assert!(
            stderr(&out).contains("rows stored (acknowledged)"),
            "{}",
            stderr(&out)
        );
    }
    let shop = collection(&url);
    assert_eq!(shop.count().unwrap(), rows, "both parts, every key once");
    assert_eq!(shop.record().nlist, 4);

    // A rerun of a part (as after a crash) stores nothing twice.
    let rerun = run_ok(&mut part("1/2"));
    assert!(
        stderr(&rerun).contains(" 0 rows stored"),
        "{}",
        stderr(&rerun)
    );
    assert_eq!(shop.count().unwrap(), rows, "a rerun adds no duplicates");
    // Upserting rows that are there replaces them.
    let keys: Vec<String> = (0..3).map(|id| local.key(id).unwrap().to_owned()).collect();
    let categories: Vec<String> = (0..3).map(|id| local.meta(id).unwrap().category).collect();
    let vectors: Vec<f32> = (0..3)
        .flat_map(|id| local.vector(id).unwrap().into_owned())
        .collect();
    assert_eq!(shop.upsert(&keys, &categories, &vectors).unwrap(), 3);
    shop.flush_and_load().unwrap();
    assert_eq!(
        shop.count().unwrap(),
        rows,
        "an upsert of stored keys adds no row"
    );

    // eval through Milvus at exact settings (IVF_FLAT, every list probed) equals eval through the
    // local index's exact search.
    let local_json = dir.path().join("local.json");
    run_ok(
        bin()
            .args(["eval", "--exact-only", "--fashioniq"])
            .arg(&data)
            .arg("--model")
            .arg(&model)
            .arg("--index")
            .arg(&index)
            .arg("--json")
            .arg(&local_json),
    );
    let milvus_json = dir.path().join("milvus.json");
    let out = run_ok(
        bin()
            .args(["eval", "--fashioniq"])
            .arg(&data)
            .arg("--model")
            .arg(&model)
            .args(["--index", &url, "--nprobe", "4", "--local"])
            .arg(&index)
            .arg("--json")
            .arg(&milvus_json),
    );
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    let local_report = &eval_json(&local_json)["reports"][0];
    let milvus_report = &eval_json(&milvus_json)["reports"][0];
    assert_eq!(
        metrics(&milvus_report["milvus"]),
        metrics(local_report),
        "{printed}"
    );
    assert_eq!(metrics(&milvus_report["exact"]), metrics(local_report));
    let agreement = &milvus_report["agreement"];
    let queries = agreement["queries"].as_u64().unwrap();
    let identical = agreement["identical"].as_u64().unwrap();
    assert!(queries > 0);
    eprintln!("Milvus vs local exact: {identical} of {queries} result lists identical");
    // Equal up to float ties: Milvus's and BLAS's inner products may round apart.
    assert!(identical * 100 >= queries * 95, "{printed}");
    for overlap in agreement["overlap_at"].as_array().unwrap() {
        assert!(overlap[1].as_f64().unwrap() >= 0.99, "{printed}");
    }

    // Without a local index, fiq's exact search runs over the vectors fetched from Milvus.
    let out = run_ok(
        bin()
            .args(["eval", "--fashioniq"])
            .arg(&data)
            .arg("--model")
            .arg(&model)
            .args(["--index", &url, "--nprobe", "4"]),
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("fetched from Milvus"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // A composed query through Milvus answers what the local index answers.
    let reference = local.key(0).unwrap().to_owned();
    let category = local.meta(0).unwrap().category;
    let query = |target: &str, extra: &[&str]| {
        let out = run_ok(
            bin()
                .arg("query")
                .arg(target)
                .arg("--model")
                .arg(&model)
                .args(["--ref", &reference, "--text", "is red and sleeveless"])
                .args(["--category", &category, "-k", "5", "--exact", "--json"])
                .args(extra),
        );
        let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        line["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["key"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let through_milvus = query(&url, &[]);
    assert_eq!(through_milvus.len(), 5);
    assert_eq!(through_milvus, query(index.to_str().unwrap(), &[]));
    // Bounded consistency (what a service wants) sees the same rows: they were written seconds ago,
    // beyond Milvus's staleness bound.
    assert_eq!(
        query(&url, &["--milvus-consistency", "bounded"]),
        through_milvus
    );

    // A query from another model (the built-in one) is refused.
    let refused = run(bin()
        .arg("query")
        .arg(&url)
        .args(["--text", "is red", "--quiet"]));
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("holds vectors of"),
        "{}",
        stderr(&refused)
    );

    // A missing collection is named.
    let missing = run(bin()
        .arg("query")
        .arg(milvus.url("no_such_collection"))
        .arg("--model")
        .arg(&model)
        .args(["--text", "is red"]));
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("has no collection \"no_such_collection\""),
        "{}",
        stderr(&missing)
    );

    // export: an existing index's store into a collection; a rerun replaces, never duplicates.
    let exported = milvus.url("exported");
    for _ in 0..2 {
        let out = run_ok(
            bin()
                .arg("export")
                .arg(&index)
                .args(["--to", &exported, "--quiet", "--nlist", "4"]),
        );
        assert!(
            stderr(&out).contains("rows stored (acknowledged)"),
            "{}",
            stderr(&out)
        );
    }
    let exported_collection = collection(&exported);
    assert_eq!(exported_collection.count().unwrap(), rows);
    // The local index's recorded (tuned) nlist and nprobe went with it.
    assert_eq!(
        (
            exported_collection.record().nlist,
            exported_collection.record().nprobe
        ),
        (4, 4)
    );
    let out = run_ok(
        bin()
            .args(["eval", "--fashioniq"])
            .arg(&data)
            .arg("--model")
            .arg(&model)
            .args(["--index", &exported, "--local"])
            .arg(&index)
            .arg("--json")
            .arg(&milvus_json),
    );
    let exported_report = &eval_json(&milvus_json)["reports"][0];
    assert_eq!(
        metrics(&exported_report["milvus"]),
        metrics(local_report),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // eval-ann through Milvus: recall against the local index's exact search.
    let out = run_ok(
        bin()
            .arg("eval-ann")
            .arg(&exported)
            .arg("--local")
            .arg(&index)
            .args(["--num-queries", "20", "--nprobe", "4"]),
    );
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let row = table
        .lines()
        .find(|l| l.trim_start().starts_with("4 "))
        .unwrap_or_else(|| panic!("{table}"));
    let recall10: f64 = row.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(recall10 >= 0.99, "{table}");
}

#[test]
fn a_refused_connection_is_a_clear_error() {
    // Needs no server: nothing listens on a port just freed.
    let port = free_port();
    let out = run(bin()
        .arg("query")
        .arg(format!("milvus://127.0.0.1:{port}/shop"))
        .arg("--model")
        .arg(tiny_model())
        .args(["--text", "is red", "--milvus-timeout", "10"]));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!(
            "cannot connect to Milvus at http://127.0.0.1:{port}"
        )),
        "{}",
        stderr(&out)
    );
    let bad = run(bin().args(["query", "milvus://127.0.0.1/shop", "--text", "x"]));
    assert!(stderr(&bad).contains("no port"), "{}", stderr(&bad));
}
