//! `crash-drill`: kills `fiq-index` with SIGKILL at random moments of build, add, remove and compact,
//! and damages committed files (bit flips, torn writes), then checks what is left.
//!
//! After every kill: the index opens, passes `verify`, holds exactly the rows of one committed version
//! (the one before the command or the one after, compared row by row: key, vector bytes, metadata,
//! deleted flag), a command that had finished is never undone, searches return no deleted key, and the
//! next writer takes the lock and clears every leftover. After every damage: open, `verify` and a
//! search that reads every byte a search can read each answer with an error naming the file, or (for
//! bytes no reader ever reads, such as padding) every answer is unchanged.
//!
//! Run by `tools/crash_drill.sh` (1,000 kills, the table in RELIABILITY.md) and, bounded, by
//! `tools/tests/crash_drill.rs` in `cargo test`. Prints one JSON object per line; exits non-zero on the
//! first broken promise, naming it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use fiq::index::{Index, IndexWriter, SearchMode, SearchOptions};

/// Kill fiq-index at random moments and damage its files; check that nothing committed is lost.
#[derive(Debug, Parser)]
struct Args {
    /// Kills in total, spread evenly over build, add, remove and compact.
    #[arg(long, default_value_t = 1000)]
    kills: usize,
    /// Damaged copies (bit flips, truncations, zeroed pages) to check.
    #[arg(long, default_value_t = 200)]
    damages: usize,
    /// Seed of the kill moments and damages.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Rows of the base catalog.
    #[arg(long, default_value_t = 3000)]
    rows: usize,
    /// Work directory (default: a fresh temporary one, removed at the end).
    #[arg(long)]
    work: Option<PathBuf>,
}

const DIM: usize = 32;
const NLIST: usize = 16;
const OPS: [&str; 4] = ["build", "add", "remove", "compact"];

/// Reproducible kill moments and damages from `--seed` (fiq's one generator).
use fiq::rng::SplitMix64 as Rng;

/// One row as a reader sees it: key, a hash of its vector's bits, metadata, deleted flag.
type Row = (String, u64, String, bool);

/// Every row of the index at `path`, in id order; `None` when there is no index (no MANIFEST).
fn rows_of(path: &Path) -> anyhow::Result<Option<Vec<Row>>> {
    if !path.join("MANIFEST").exists() {
        return Ok(None);
    }
    let index = Index::open(path)?;
    let mut rows = Vec::with_capacity(index.total_rows() as usize);
    for id in 0..index.total_rows() {
        let vector = index.vector(id).context("row in range")?;
        let hash = vector.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, x| {
            (h ^ x.to_bits() as u64).wrapping_mul(0x100_0000_01b3)
        });
        let meta = index.meta(id)?;
        rows.push((
            index.key(id)?.to_owned(),
            hash,
            format!("{}|{}", meta.category, meta.source),
            index.is_deleted(id),
        ));
    }
    Ok(Some(rows))
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    if to.exists() {
        std::fs::remove_dir_all(to)?;
    }
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        // Locks are per process; a copy of one would mean nothing.
        if name.to_string_lossy().ends_with(".lock") {
            continue;
        }
        std::fs::copy(entry.path(), to.join(name))?;
    }
    Ok(())
}

fn write_npy(path: &Path, rows: usize, seed: u64) -> anyhow::Result<()> {
    let mut rng = Rng::new(seed);
    let data: Vec<f32> = (0..rows * DIM).map(|_| rng.uniform(-0.5, 0.5)).collect();
    fiq::npy::write_matrix(path, DIM, &data)?;
    Ok(())
}

fn write_keys(path: &Path, keys: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let text: String = keys.map(|k| k + "\n").collect();
    std::fs::write(path, text)?;
    Ok(())
}

/// The inputs and the `fiq-index` command line of one operation.
struct Op {
    name: &'static str,
    /// The index before the command (`None`: no index yet, for build).
    before: Option<PathBuf>,
    args: Vec<String>,
}

struct Drill {
    bin: PathBuf,
    work: PathBuf,
}

impl Drill {
    fn command(&self, op: &Op, index: &Path) -> Command {
        let mut cmd = Command::new(&self.bin);
        for arg in &op.args {
            cmd.arg(if arg == "INDEX" {
                index.as_os_str().to_owned()
            } else {
                arg.into()
            });
        }
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        cmd
    }

    /// Puts the index before `op` at `index`.
    fn reset(&self, op: &Op, index: &Path) -> anyhow::Result<()> {
        match &op.before {
            Some(before) => copy_dir(before, index),
            None => {
                if index.exists() {
                    std::fs::remove_dir_all(index)?;
                }
                Ok(())
            }
        }
    }

    /// Runs `op` to completion on a fresh copy: the version after it, and how long it took.
    fn reference(&self, op: &Op) -> anyhow::Result<(PathBuf, Duration)> {
        let index = self.work.join(format!("after-{}", op.name));
        self.reset(op, &index)?;
        let started = Instant::now();
        let status = self.command(op, &index).status()?;
        let took = started.elapsed();
        if !status.success() {
            bail!("{} failed without being killed: {status}", op.name);
        }
        Ok((index, took))
    }
}

/// What the kills of one operation found.
#[derive(Debug, Default, serde::Serialize)]
struct KillTally {
    op: &'static str,
    kills: usize,
    recovered_previous: usize,
    recovered_new: usize,
    finished_before_kill: usize,
    verified: usize,
    versions_lost: usize,
    full_run_ms: u128,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let temp = tempfile::tempdir()?;
    let work = args.work.clone().unwrap_or_else(|| temp.path().to_owned());
    std::fs::create_dir_all(&work)?;
    let bin = std::env::current_exe()?
        .parent()
        .context("the drill lives next to fiq-index")?
        .join("fiq-index");
    if !bin.exists() {
        bail!(
            "{} not found; build the fiq-index binary first",
            bin.display()
        );
    }
    let drill = Drill {
        bin,
        work: work.clone(),
    };

    // Inputs: a base catalog; an add batch whose first quarter replaces existing keys; keys to remove.
    let rows = args.rows;
    write_npy(&work.join("base.npy"), rows, 11)?;
    write_keys(
        &work.join("base.txt"),
        (0..rows).map(|i| format!("item{i}")),
    )?;
    let added = rows / 5;
    write_npy(&work.join("add.npy"), added, 12)?;
    write_keys(
        &work.join("add.txt"),
        (0..added).map(|i| match i % 4 {
            0 => format!("item{}", i * 3),
            _ => format!("new{i}"),
        }),
    )?;
    write_keys(
        &work.join("remove.txt"),
        (0..rows).step_by(7).map(|i| format!("item{i}")),
    )?;
    let s = |x: &str| x.to_owned();
    let path = |name: &str| work.join(name).display().to_string();

    let build = Op {
        name: "build",
        before: None,
        args: vec![
            s("build"),
            s("--out"),
            s("INDEX"),
            s("--vectors"),
            path("base.npy"),
            s("--keys"),
            path("base.txt"),
            s("--ivf"),
            NLIST.to_string(),
            s("--nprobe"),
            s("4"),
        ],
    };
    let (built, build_ms) = drill.reference(&build)?;
    let add = Op {
        name: "add",
        before: Some(built.clone()),
        args: vec![
            s("add"),
            s("INDEX"),
            s("--vectors"),
            path("add.npy"),
            s("--keys"),
            path("add.txt"),
            s("--category"),
            s("dress"),
        ],
    };
    let (added_dir, add_ms) = drill.reference(&add)?;
    let remove = Op {
        name: "remove",
        before: Some(added_dir.clone()),
        args: vec![s("remove"), s("INDEX"), s("--keys"), path("remove.txt")],
    };
    let (removed_dir, remove_ms) = drill.reference(&remove)?;
    let compact = Op {
        name: "compact",
        before: Some(removed_dir.clone()),
        args: vec![s("compact"), s("INDEX"), s("--quiet")],
    };
    let (_compacted, compact_ms) = drill.reference(&compact)?;

    let mut rng = Rng::new(args.seed);
    let ops = [
        (&build, build_ms),
        (&add, add_ms),
        (&remove, remove_ms),
        (&compact, compact_ms),
    ];
    let mut tallies: Vec<KillTally> = OPS
        .iter()
        .zip(&ops)
        .map(|(&op, (_, ms))| KillTally {
            op,
            full_run_ms: ms.as_millis(),
            ..KillTally::default()
        })
        .collect();
    let mut expected = Vec::new();
    for (op, _) in &ops {
        let before = match &op.before {
            Some(dir) => rows_of(dir)?,
            None => None,
        };
        let after = rows_of(&work.join(format!("after-{}", op.name)))?;
        expected.push((before, after));
    }

    let index = work.join("victim");
    for kill in 0..args.kills {
        let which = kill % ops.len();
        let (op, full) = ops[which];
        drill.reset(op, &index)?;
        // Up to 1.2x the full run: some kills land after the command finished, which must be kept.
        let delay = full.mul_f64(rng.unit_f64() * 1.2);
        let mut child = drill.command(op, &index).spawn()?;
        std::thread::sleep(delay);
        let finished = matches!(child.try_wait()?, Some(status) if status.success());
        child.kill().ok(); // SIGKILL; an error means it had already exited
        child.wait()?;
        let tally = &mut tallies[which];
        tally.kills += 1;
        tally.finished_before_kill += finished as usize;
        let (before, after) = &expected[which];
        check_recovered(&index, before, after, finished, tally)
            .with_context(|| format!("kill {kill} ({} after {delay:?})", op.name))?;
    }
    for tally in &tallies {
        println!("{}", serde_json::to_string(tally)?);
    }

    let damage = damage_drill(&drill, &removed_dir, args.damages, &mut rng)?;
    println!("{}", serde_json::to_string(&damage)?);
    Ok(())
}

/// The checks after one kill; counts into `tally`, errors on a broken promise.
fn check_recovered(
    index: &Path,
    before: &Option<Vec<Row>>,
    after: &Option<Vec<Row>>,
    finished: bool,
    tally: &mut KillTally,
) -> anyhow::Result<()> {
    let found = rows_of(index)?;
    let empty_index = Some(Vec::new()); // build's first commit: an empty index
    let which = if &found == after {
        tally.recovered_new += 1;
        "new"
    } else if &found == before || (before.is_none() && found == empty_index) {
        tally.recovered_previous += 1;
        "previous"
    } else {
        tally.versions_lost += 1;
        bail!(
            "the index holds {} rows matching neither the version before ({}) nor after ({})",
            found.as_ref().map_or(0, Vec::len),
            before.as_ref().map_or(0, Vec::len),
            after.as_ref().map_or(0, Vec::len)
        );
    };
    if finished && which != "new" {
        tally.versions_lost += 1;
        bail!("the command had finished, but the index is back at the previous version");
    }
    if found.is_none() {
        tally.verified += 1; // nothing was ever committed: nothing to verify
        return Ok(());
    }
    let opened = Index::open(index)?;
    opened.verify()?;
    search_everything(&opened)?;
    drop(opened);
    // The next writer takes the lock (a killed writer's lock died with it) and clears the leftovers.
    drop(IndexWriter::open(index)?);
    let manifest_files: BTreeSet<String> = Index::open(index)?
        .snapshot()
        .manifest()
        .files()
        .map(str::to_owned)
        .collect();
    for entry in std::fs::read_dir(index)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let ours = ["seg-", "tomb-", "ann-", ".staged-", "MANIFEST.tmp"]
            .iter()
            .any(|p| name.starts_with(p));
        if ours && !manifest_files.contains(&name) {
            bail!("{name} is left over after the next writer opened the index");
        }
    }
    tally.verified += 1;
    Ok(())
}

/// Exact and every-list IVF searches, and the key of every hit: reads every byte a search may read.
/// Returns the hits' keys, and fails if a deleted row is returned.
fn search_everything(index: &Index) -> anyhow::Result<Vec<Vec<String>>> {
    if index.is_empty() {
        return Ok(Vec::new());
    }
    let mut rng = Rng::new(5);
    let queries: Vec<f32> = (0..4 * DIM).map(|_| rng.uniform(-0.5, 0.5)).collect();
    let mut modes = vec![SearchMode::Exact];
    if let Some(record) = index.ann_record() {
        modes.push(SearchMode::Ivf {
            nprobe: Some(record.nlist),
        });
    }
    let mut all = Vec::new();
    for mode in modes {
        for hits in index.search_batch(&queries, 10, &SearchOptions::mode(mode))? {
            for hit in &hits {
                if index.is_deleted(hit.id) {
                    bail!("search returned deleted row {} ({})", hit.id, hit.key);
                }
            }
            all.push(hits.into_iter().map(|h| h.key).collect());
        }
    }
    Ok(all)
}

/// What the damage drill found.
#[derive(Debug, Default, serde::Serialize)]
struct DamageTally {
    damages: usize,
    bit_flips: usize,
    truncations: usize,
    zeroed_pages: usize,
    caught_at_open: usize,
    caught_by_verify: usize,
    caught_by_search: usize,
    /// Damage to the trained IVF template, which searches never read: caught by verify and refused
    /// by the next add (which reads it), searches unchanged.
    template_caught_by_verify_and_next_add: usize,
    unread_bytes_results_unchanged: usize,
}

/// Replaces row 0 of the index at `dir` with itself and commits: an add, which files the row in the
/// IVF lists (reading the trained template).
fn add_one_row(dir: &Path) -> anyhow::Result<()> {
    let index = Index::open(dir)?;
    let key = index.key(0)?.to_owned();
    let vector = index
        .vector(0)
        .ok_or_else(|| anyhow::anyhow!("row 0 of {} has no vector", dir.display()))?
        .into_owned();
    let meta = index.meta(0)?;
    drop(index);
    let mut writer = fiq::index::IndexWriter::open(dir)?;
    writer.upsert(&key, &vector, &meta)?;
    writer.commit()?;
    Ok(())
}

/// Damages copies of `pristine` and checks that each damage is caught by open, by verify and by
/// search with an error naming the file, or changes nothing a reader reads.
fn damage_drill(
    drill: &Drill,
    pristine: &Path,
    damages: usize,
    rng: &mut Rng,
) -> anyhow::Result<DamageTally> {
    let mut tally = DamageTally::default();
    let reference = search_everything(&Index::open(pristine)?)?;
    let files: Vec<String> = Index::open(pristine)?
        .snapshot()
        .manifest()
        .files()
        .map(str::to_owned)
        .chain(["MANIFEST".to_owned()])
        .collect();
    let victim = drill.work.join("damaged");
    for n in 0..damages {
        copy_dir(pristine, &victim)?;
        let file = &files[rng.below(files.len())];
        let path = victim.join(file);
        let mut bytes = std::fs::read(&path)?;
        let at = rng.below(bytes.len());
        let what = match rng.below(10) {
            0 | 1 => {
                tally.truncations += 1;
                bytes.truncate(at);
                "truncated"
            }
            2 | 3 => {
                tally.zeroed_pages += 1;
                let page = at / 4096 * 4096;
                let end = (page + 4096).min(bytes.len());
                if bytes[page..end].iter().all(|&b| b == 0) {
                    bytes[at] = 0xff; // a zero page over zeros changes nothing; tear it otherwise
                } else {
                    bytes[page..end].fill(0);
                }
                "zeroed page"
            }
            _ => {
                tally.bit_flips += 1;
                bytes[at] ^= 1 << rng.below(8);
                "bit flip"
            }
        };
        std::fs::write(&path, &bytes)?;
        tally.damages += 1;
        let context = || format!("damage {n}: {what} at byte {at} of {file}");
        let names_file = |err: &anyhow::Error| format!("{err:#}").contains(file.as_str());
        let index = match Index::open(&victim) {
            Err(err) => {
                let err = anyhow::Error::from(err);
                if !names_file(&err) {
                    bail!("{}: the error does not name the file: {err:#}", context());
                }
                tally.caught_at_open += 1;
                continue;
            }
            Ok(index) => index,
        };
        let verified = index.verify();
        let searched = search_everything(&index);
        match (verified, searched) {
            (Err(v), Err(s)) => {
                let (v, s) = (anyhow::Error::from(v), s);
                if !names_file(&v) || !names_file(&s) {
                    bail!(
                        "{}: an error does not name the file: {v:#} / {s:#}",
                        context()
                    );
                }
                tally.caught_by_verify += 1;
                tally.caught_by_search += 1;
            }
            (Ok(_), Ok(found)) if found == reference => tally.unread_bytes_results_unchanged += 1,
            (Err(v), Ok(found)) if found == reference && file.contains("ivf-trained") => {
                drop(index);
                let v = anyhow::Error::from(v);
                let added = add_one_row(&victim);
                match added {
                    Err(a) if names_file(&v) && names_file(&a) => {
                        tally.caught_by_verify += 1;
                        tally.template_caught_by_verify_and_next_add += 1;
                    }
                    other => bail!(
                        "{}: verify {v:#}, search unchanged, the next add {:?}",
                        context(),
                        other.map_err(|e| format!("{e:#}"))
                    ),
                }
            }
            (v, s) => {
                bail!(
                    "{}: verify {:?}, search {}",
                    context(),
                    v.err().map(|e| e.to_string()),
                    match s {
                        Ok(found) if found != reference =>
                            "answered differently, without an error".to_owned(),
                        Ok(_) => "answered as before".to_owned(),
                        Err(e) => format!("failed: {e:#}"),
                    }
                );
            }
        }
    }
    Ok(tally)
}
