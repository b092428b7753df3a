//! A one-shot parking slot for a thread waiting on the port.
//!
//! The waker changes the state (under the port lock) with [`Parker::set`] and then, after
//! releasing the port lock, calls [`Parker::wake`]. The parked thread sleeps in
//! [`Parker::park`] until the state is no longer [`Parker::WAITING`] or its deadline passes.
//!
//! On Linux the state word is a futex: `set` is a release store, `wake` one `FUTEX_WAKE`,
//! and a parked thread is one `FUTEX_WAIT`, the same system calls a raw ping-pong makes.

use std::time::Instant;

/// What [`Parker::park`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// The state changed; read it with [`Parker::state`].
    Notified,
    /// The deadline passed with the state still `WAITING`.
    TimedOut,
}

#[cfg(not(loom))]
mod imp {
    use super::Wake;
    use crate::sync::{AtomicU32, Ordering};
    use rustix::thread::futex;
    use std::time::Instant;

    /// A futex word a single thread parks on.
    #[derive(Debug)]
    pub(crate) struct Parker {
        // Invariant: moves away from WAITING only through `set`, called under the port
        // lock, and never back. The parked thread reads it with Acquire.
        state: AtomicU32,
    }

    impl Parker {
        pub(crate) fn new() -> Self {
            Self { state: AtomicU32::new(Self::WAITING) }
        }

        pub(crate) fn set(&self, state: u32) {
            self.state.store(state, Ordering::Release);
        }

        pub(crate) fn state(&self) -> u32 {
            self.state.load(Ordering::Acquire)
        }

        pub(crate) fn wake(&self) {
            // An error here (none is documented for a private futex) would at worst leave
            // the waiter to its timeout; nothing is lost because the state is already set.
            let _ = futex::wake(&self.state, futex::Flags::PRIVATE, 1);
        }

        pub(crate) fn park(&self, deadline: Option<Instant>) -> Wake {
            loop {
                if self.state() != Self::WAITING {
                    return Wake::Notified;
                }
                let timeout = match deadline {
                    None => None,
                    Some(d) => {
                        let now = Instant::now();
                        if now >= d {
                            return Wake::TimedOut;
                        }
                        Some(to_timespec(d - now))
                    }
                };
                // EINTR, EAGAIN (the word already changed) and spurious wake-ups all just
                // loop back to re-read the state and the clock.
                let _ = futex::wait(&self.state, futex::Flags::PRIVATE, Self::WAITING, timeout.as_ref());
            }
        }
    }

    fn to_timespec(d: std::time::Duration) -> rustix::thread::futex::Timespec {
        // Clamp absurd values: the loop re-checks the deadline anyway, so a shorter sleep
        // is harmless and a longer one impossible to express.
        const MAX_SECS: u64 = i32::MAX as u64;
        let secs = d.as_secs().min(MAX_SECS);
        rustix::thread::futex::Timespec { tv_sec: secs as i64, tv_nsec: i64::from(d.subsec_nanos()) }
    }
}

#[cfg(loom)]
mod imp {
    use super::Wake;
    use loom::sync::{Condvar, Mutex};
    use std::time::Instant;

    /// loom model of the futex parker. A finite deadline is modelled as "may time out at
    /// any point": the thread checks once and gives up, which is the hardest case for the
    /// timeout/hand-off race.
    #[derive(Debug)]
    pub(crate) struct Parker {
        state: Mutex<u32>,
        cv: Condvar,
    }

    impl Parker {
        pub(crate) fn new() -> Self {
            Self { state: Mutex::new(Self::WAITING), cv: Condvar::new() }
        }
        pub(crate) fn set(&self, state: u32) {
            *self.state.lock().unwrap() = state;
        }
        pub(crate) fn state(&self) -> u32 {
            *self.state.lock().unwrap()
        }
        pub(crate) fn wake(&self) {
            let _g = self.state.lock().unwrap();
            self.cv.notify_one();
        }
        pub(crate) fn park(&self, deadline: Option<Instant>) -> Wake {
            let mut g = self.state.lock().unwrap();
            if deadline.is_some() {
                return if *g == Self::WAITING { Wake::TimedOut } else { Wake::Notified };
            }
            while *g == Self::WAITING {
                g = self.cv.wait(g).unwrap();
            }
            Wake::Notified
        }
    }
}

pub(crate) use imp::Parker;

impl Parker {
    /// The initial state: the thread is (or is about to be) parked.
    pub(crate) const WAITING: u32 = 0;
}

/// Keeps `Instant` in the signature of both implementations.
#[allow(dead_code)]
fn _assert_instant(_: Instant) {}
