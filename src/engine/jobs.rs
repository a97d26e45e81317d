//! Long-running work reports progress and can be cancelled. The CLI turns
//! progress into a bar on stderr; the console into a job row.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A progress report: `done` of `total` units in the named phase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgressEvent {
    pub phase: &'static str,
    pub done: u64,
    pub total: Option<u64>,
}

/// Receives progress of one job and tells it whether to stop.
pub trait Progress {
    fn update(&mut self, event: ProgressEvent);
    fn cancelled(&self) -> bool {
        false
    }
}

/// Ignores progress; never cancels.
pub struct Quiet;

impl Progress for Quiet {
    fn update(&mut self, _event: ProgressEvent) {}
}

/// Sleeps for `wait`, or less when `progress` says stop meanwhile (looked
/// at every 50 ms), so a stop request is never kept waiting by a pause.
pub fn sleep_unless_cancelled(wait: std::time::Duration, progress: &dyn Progress) {
    let until = std::time::Instant::now() + wait;
    loop {
        let now = std::time::Instant::now();
        if now >= until || progress.cancelled() {
            return;
        }
        std::thread::sleep((until - now).min(std::time::Duration::from_millis(50)));
    }
}

/// A cancellation flag shared between a job and whoever may stop it.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
