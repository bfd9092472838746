//! Printing helpers shared by the subcommands.

/// A reader that closed the pipe early (`fiq-index search ... | head`) is not an error.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Makes a closed stdout end the process quietly, as it does `cat` (`fiq-index info INDEX | head`).
///
/// Rust ignores SIGPIPE, so a write to a closed pipe returns an error, and `println!` turns that error
/// into a panic. The subcommands that stream results handle the error ([`is_broken_pipe`]); this covers
/// every other `println!`.
pub fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in `main`, before any other thread exists; setting a signal's action
    // to the default has no other precondition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Writes the images a build or an add skipped, one `name<TAB>path<TAB>reason` line each, to
/// `INDEX/skipped-images.tsv`; returns its path.
pub fn write_skipped_log(
    index: &std::path::Path,
    skipped: &[fiq::pipeline::SkippedImage],
) -> anyhow::Result<std::path::PathBuf> {
    use anyhow::Context;
    let log = index.join("skipped-images.tsv");
    let lines: String = skipped
        .iter()
        .map(|s| {
            format!(
                "{}\t{}\t{}\n",
                s.name,
                s.path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                s.reason
            )
        })
        .collect();
    std::fs::write(&log, lines).with_context(|| format!("writing {}", log.display()))?;
    Ok(log)
}
