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
