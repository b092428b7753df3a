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

/// Waits (at most `4 × PROMPT`, then kills it) for a child process that re-ran one test of
/// this binary; asserts that it succeeded and ran exactly that test, and returns its
/// stdout and stderr together.
pub fn finish_child(mut child: std::process::Child) -> String {
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > PROMPT * 4 {
            let _ = child.kill();
            panic!("the child hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(status.success(), "child failed:\n{text}");
    assert!(text.contains("1 passed"), "the child ran the test:\n{text}");
    text
}
