//! Build progress reporting without tying the library to a terminal: the CLI passes an
//! `indicatif::ProgressBar`, tests pass `&()`.

/// Receives the stages and counts of a long-running build.
pub trait Progress: Sync {
    /// A new stage begins (`train`, `add`) with `total` units of work.
    fn stage(&self, name: &'static str, total: u64);
    /// `done` more units of the current stage are finished.
    fn advance(&self, done: u64);
    /// The current stage is finished.
    fn finish_stage(&self);
}

/// Reports nothing.
impl Progress for () {
    fn stage(&self, _: &'static str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish_stage(&self) {}
}

impl Progress for indicatif::ProgressBar {
    fn stage(&self, name: &'static str, total: u64) {
        self.reset();
        self.set_length(total);
        self.set_message(name);
    }
    fn advance(&self, done: u64) {
        self.inc(done);
    }
    fn finish_stage(&self) {
        self.finish();
    }
}
