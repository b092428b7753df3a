//! Helpers shared by the suite.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A context that counts how many times it is dropped, to prove "exactly once".
#[derive(Debug)]
pub struct DropCounter {
    pub id: u64,
    drops: Arc<AtomicUsize>,
}

impl DropCounter {
    pub fn new(id: u64, drops: &Arc<AtomicUsize>) -> Self {
        Self { id, drops: Arc::clone(drops) }
    }
}

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// Polls `cond` every millisecond until it holds, panicking after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A generous bound for "promptly" in tests: long enough that a loaded 2-core CI machine
/// never trips it, short enough that a hang fails the test instead of the CI run.
pub const PROMPT: Duration = Duration::from_secs(10);
