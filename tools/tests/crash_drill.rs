//! The crash drill, bounded for `cargo test`: 24 kills (six each during build, add, remove and compact)
//! and 40 damaged copies. `tools/crash_drill.sh` runs the full 1,000 kills for RELIABILITY.md.

use std::process::Command;

#[test]
fn kills_and_damage_lose_no_committed_version() {
    let out = Command::new(env!("CARGO_BIN_EXE_crash-drill"))
        .args([
            "--kills",
            "24",
            "--damages",
            "40",
            "--rows",
            "1500",
            "--seed",
            "7",
        ])
        .output()
        .expect("run crash-drill");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "crash-drill failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kills: u64 = lines.iter().filter_map(|l| l["kills"].as_u64()).sum();
    let verified: u64 = lines.iter().filter_map(|l| l["verified"].as_u64()).sum();
    let lost: u64 = lines
        .iter()
        .filter_map(|l| l["versions_lost"].as_u64())
        .sum();
    assert_eq!((kills, verified, lost), (24, 24, 0), "{stdout}");
    let damage = lines.last().unwrap();
    assert_eq!(damage["damages"], 40, "{stdout}");
    let caught =
        damage["caught_at_open"].as_u64().unwrap() + damage["caught_by_search"].as_u64().unwrap();
    assert!(caught > 0, "{stdout}");
}

/// The load test, small: no reader error and no removed key returned once its removal committed.
#[test]
fn readers_never_fail_or_see_removed_keys_while_a_writer_commits() {
    let out = Command::new(env!("CARGO_BIN_EXE_load-test"))
        .args([
            "--rows",
            "4000",
            "--dim",
            "16",
            "--nlist",
            "16",
            "--nprobe",
            "4",
            "--batch",
            "200",
            "--rounds",
            "4",
            "--readers",
            "2",
            "--quiet-secs",
            "0.3",
            "--recall-queries",
            "100",
        ])
        .output()
        .expect("run load-test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["removed_keys_returned_after_refresh"], 0, "{stdout}");
    for phase in report["phases"].as_array().unwrap() {
        assert_eq!(phase["errors"], 0, "{stdout}");
        assert!(phase["queries"].as_u64().unwrap() > 0, "{stdout}");
    }
    let recall = &report["recall_at_10"];
    assert!(
        recall["after_compact_minus_fresh"].as_f64().unwrap().abs() <= 0.05,
        "{stdout}"
    );
}
