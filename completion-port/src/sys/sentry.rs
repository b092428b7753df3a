//! The safety net of deferred submission (docs/semantics.md H9): a thread that hands
//! deferred submissions to the kernel when nobody else does, within one tick.
//!
//! With deferred submission on, a thread's submissions after it took packets from the port
//! wait in the submission queue until that thread comes back to the port (or enters a
//! `blocking` section). A thread that instead blocks somewhere else, or computes for long,
//! would leave them there; the sentry bounds that wait. It runs one loop per backend:
//!
//! * **ticking**: every tick it reads the deferred count. A count that is not zero and has
//!   not dropped since the last tick means no thread has entered the kernel meanwhile (an
//!   enter submits everything queued and zeroes the count), so deferred submissions may be
//!   stranded: it hands them to the kernel itself. A deferral therefore waits at most two
//!   ticks, and under load, where the workers' own enters keep resetting the count, the
//!   sentry rarely makes a system call. After `quiet` ticks in a row with nothing deferred
//!   it goes **idle**;
//! * **idle**: it sleeps without a timeout until a thread defers a submission again and
//!   wakes it ([`Sentry::note_deferred`]). Under load it almost never gets here, so the
//!   submitting threads almost never make a system call for it.
//!
//! The race between going idle and a new deferral is the classic one, closed by order
//! alone: the sentry announces `IDLE` and **then** looks at the deferred count; a deferring
//! thread raises the count and **then** reads the state, each with a `SeqCst` fence between
//! its write and its read, so at least one of them sees the other's write: the sentry sees
//! the deferral and keeps ticking, or the thread sees `IDLE` and wakes it. (Without the
//! fences loom finds the interleaving where both read old values, and the sentry sleeps
//! beside a deferral: its model checks SeqCst accesses more weakly than the fences.) `completion-port/tests/loom.rs` (`sentry_*`)
//! checks that a deferral never waits beside an idle sentry.
//!
//! The state word is also what the sentry sleeps on (a futex), so one `FUTEX_WAKE` ends a
//! tick early (stop) or an idle sleep (deferral, stop). Under `--cfg loom` a loom mutex and
//! condition variable stand in for the futex and a tick is a yield.

use std::time::Duration;

#[cfg(not(loom))]
use std::sync::atomic::{fence, AtomicU32, Ordering::SeqCst};

#[cfg(loom)]
use loom::sync::atomic::{fence, AtomicU32, Ordering::SeqCst};

/// Ticking: looks every tick.
const TICKING: u32 = 0;
/// Idle: sleeps until woken.
const IDLE: u32 = 1;
/// Stopped: the loop returns.
const STOPPED: u32 = 2;

/// The sentry's state and the word it sleeps on. The loop itself is [`Sentry::run`].
#[derive(Debug)]
pub struct Sentry {
    state: AtomicU32,
    #[cfg(loom)]
    sleep: (loom::sync::Mutex<()>, loom::sync::Condvar),
}

impl Default for Sentry {
    fn default() -> Self {
        Self::new()
    }
}

impl Sentry {
    /// A sentry that starts ticking.
    pub fn new() -> Self {
        Self {
            state: AtomicU32::new(TICKING),
            #[cfg(loom)]
            sleep: (loom::sync::Mutex::new(()), loom::sync::Condvar::new()),
        }
    }

    /// Called by a thread right after it raised the deferred count: wakes the sentry if
    /// it is idle. A fence and one load when it is ticking.
    pub fn note_deferred(&self) {
        fence(SeqCst);
        if self.state.load(SeqCst) == IDLE
            && self.state.compare_exchange(IDLE, TICKING, SeqCst, SeqCst).is_ok()
        {
            self.wake();
        }
    }

    /// Makes [`run`](Self::run) return promptly, from any state.
    pub fn stop(&self) {
        // A swap, not a store: with a plain store here, loom 0.7 let the sentry's next
        // check still read `IDLE` from the announcement just before the store (a limit of
        // its store model, not a schedule the hardware allows) and reported a deadlock; a
        // read-modify-write is ordered after that announcement under loom as on hardware.
        self.state.swap(STOPPED, SeqCst);
        self.wake();
    }

    /// Whether [`stop`](Self::stop) was called.
    pub fn is_stopped(&self) -> bool {
        self.state.load(SeqCst) == STOPPED
    }

    /// Whether the sentry sleeps without a timeout.
    #[cfg_attr(not(loom), allow(dead_code))]
    pub fn is_idle(&self) -> bool {
        self.state.load(SeqCst) == IDLE
    }

    /// The sentry's loop, until [`stop`](Self::stop): every `tick` it reads `deferred()`
    /// (the count of deferred submissions, zeroed by every submission to the kernel) and
    /// calls `submit()` when the count is not zero and has not dropped since the last
    /// tick; after `quiet` ticks in a row with nothing deferred, it sleeps until
    /// [`note_deferred`](Self::note_deferred) or `stop`.
    pub fn run(&self, tick: Duration, quiet: u32, deferred: impl Fn() -> usize, submit: impl Fn()) {
        let mut quiet_ticks = 0u32;
        let mut last = 0usize;
        loop {
            match self.state.load(SeqCst) {
                STOPPED => return,
                IDLE => self.sleep(IDLE, None),
                _ => self.sleep(TICKING, Some(tick)),
            }
            if self.is_stopped() {
                return;
            }
            let now = deferred();
            if now > 0 {
                quiet_ticks = 0;
                if last > 0 && now >= last {
                    submit();
                    last = 0;
                } else {
                    last = now;
                }
                continue;
            }
            last = 0;
            quiet_ticks += 1;
            if quiet_ticks < quiet {
                continue;
            }
            // Announce, then look: a deferral that missed the announcement is seen here.
            if self.state.compare_exchange(TICKING, IDLE, SeqCst, SeqCst).is_ok() && {
                fence(SeqCst);
                deferred() > 0
            } {
                // Keep ticking; a thread that saw IDLE meanwhile may have set TICKING
                // already (then this fails harmlessly) and woken us (a spare wake-up).
                let _ = self.state.compare_exchange(IDLE, TICKING, SeqCst, SeqCst);
                quiet_ticks = 0;
                submit();
            }
        }
    }

    /// Sleeps while the state is `expected`, at most `timeout` (`None`: until woken).
    #[cfg(not(loom))]
    fn sleep(&self, expected: u32, timeout: Option<Duration>) {
        use rustix::thread::futex;
        let ts = timeout
            .map(|t| futex::Timespec { tv_sec: t.as_secs() as i64, tv_nsec: i64::from(t.subsec_nanos()) });
        // EINTR, EAGAIN (the state changed already) and timeouts all return to the loop,
        // which reads the state again.
        let _ = futex::wait(&self.state, futex::Flags::PRIVATE, expected, ts.as_ref());
    }

    #[cfg(not(loom))]
    fn wake(&self) {
        let _ = rustix::thread::futex::wake(&self.state, rustix::thread::futex::Flags::PRIVATE, 1);
    }

    /// loom: a tick is a yield (time passes); an idle sleep waits on the condition variable.
    #[cfg(loom)]
    fn sleep(&self, expected: u32, timeout: Option<Duration>) {
        if timeout.is_some() {
            loom::thread::yield_now();
            return;
        }
        let mut g = self.sleep.0.lock().unwrap();
        while self.state.load(SeqCst) == expected {
            g = self.sleep.1.wait(g).unwrap();
        }
    }

    #[cfg(loom)]
    fn wake(&self) {
        let _g = self.sleep.0.lock().unwrap();
        self.sleep.1.notify_all();
    }
}
