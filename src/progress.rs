//! Progress bars in one style for every long-running job.

/// A bar for `len` steps of `what`; indicatif hides it when stderr is not a terminal.
///
/// ```
/// let bar = fiq::progress::bar(3, "encoding");
/// bar.inc(3);
/// bar.finish_and_clear();
/// ```
pub fn bar(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:>12} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

/// [`bar`] when `show`, else a hidden bar (for `--quiet` and library callers that asked for silence).
pub fn bar_if(show: bool, len: u64, what: &str) -> indicatif::ProgressBar {
    if show {
        bar(len, what)
    } else {
        indicatif::ProgressBar::hidden()
    }
}

/// Prints `line` above `bar` when progress was asked for (`show`), on plain stderr when the bar draws
/// nothing because stderr is not a terminal: a long run's per-epoch lines reach its log either way.
pub fn println_above(bar: &indicatif::ProgressBar, show: bool, line: String) {
    match (show, bar.is_hidden()) {
        (false, _) => {}
        (true, true) => eprintln!("{line}"),
        (true, false) => bar.println(line),
    }
}
