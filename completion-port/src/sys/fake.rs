//! A model "kernel" for the loom tests of the poller protocol (exists only under
//! `--cfg loom`).
//!
//! The io_uring backend cannot run under loom, so `ci/loom.sh` checks the port's
//! leader/follower protocol (one poller in the kernel, the others parked; docs/semantics.md P6, P7,
//! P8, P9, P10 with I/O attached) against this stand-in. It keeps what the port relies on
//! from a completion ring and nothing else:
//!
//! * a **completion queue** with a head (entries consumed) and a tail (entries posted):
//!   I/O completions, and wake-ups (the NOP that `wake` submits), which are consumed like
//!   any entry but produce no packet;
//! * **`wait(None)`** behaves like `io_uring_enter(GETEVENTS, min_complete = 1)`: it
//!   returns once an entry has been posted beyond the head it saw on entry (the kernel's
//!   `io_cqring_wait` computes its wake condition the same way), whoever consumed it, then
//!   consumes every ready entry. A **finite deadline** is modelled like the loom parker's:
//!   "may pass at any moment", so the wait looks once, yields to the other model threads
//!   (time passing) and returns what is ready, possibly nothing;
//! * **operations**: `fake_submit` puts one "in the kernel" (pending); `fake_complete`
//!   makes one complete at once (an operation submitted earlier whose completion arrives
//!   now); `close` cancels every pending operation, which completes with `ECANCELED`;
//! * **`in_flight`**: operations submitted whose completion the port has not yet queued
//!   (`delivered` counts them down), which is what `drain` waits on.
//! * **Several pollers** (`Fake::with_pollers(n)`, n > 1) model epoll instead: several
//!   threads may wait at once, and each posted entry wakes **one** of them (`epoll_wait`'s
//!   exclusive wait queue), which consumes every ready entry; a waiter that finds the queue
//!   empty keeps waiting, even if entries were posted and taken meanwhile. This is weaker
//!   than epoll, whose level-triggered wake-up descriptor may wake more than one: a
//!   protocol that works here works there.
//!
//! Real submission (`submit`, `cancel`, `cancel_fd`) is not modelled: it returns an error.

use crate::completion::Completion;
use crate::op::SubmitError;
use crate::sys::OpData;
use loom::sync::{Condvar, Mutex, MutexGuard};
use std::collections::VecDeque;
use std::io;
use std::time::Instant;

/// One completion queue entry.
enum Entry<C> {
    /// An operation's completion.
    Io(Completion<C>),
    /// The NOP `wake` submits: it only makes a waiter return.
    Wake,
}

struct FakeState<C> {
    /// Posted entries not yet consumed, oldest first.
    cq: VecDeque<Entry<C>>,
    /// Entries consumed since creation (the ring's CQ head).
    head: u64,
    /// Entries posted since creation (the ring's CQ tail); `tail - head == cq.len()`.
    tail: u64,
    /// Operations in the kernel that have not completed: their key and context.
    pending: Vec<(usize, C)>,
    /// Operations submitted whose completion the port has not yet queued.
    in_flight: usize,
    /// `close` was called: pending operations were cancelled.
    closed: bool,
}

/// The model kernel. See the module documentation.
pub(crate) struct Fake<C> {
    state: Mutex<FakeState<C>>,
    /// Signalled whenever an entry is posted.
    posted: Condvar,
    /// How many threads may wait at once: 1 models io_uring, more model epoll.
    pollers: usize,
}

impl<C: Send + 'static> Fake<C> {
    pub(crate) fn with_pollers(pollers: usize) -> Self {
        Self {
            pollers: pollers.max(1),
            state: Mutex::new(FakeState {
                cq: VecDeque::new(),
                head: 0,
                tail: 0,
                pending: Vec::new(),
                in_flight: 0,
                closed: false,
            }),
            posted: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, FakeState<C>> {
        crate::sync::lock(&self.state)
    }

    /// Posts one entry and wakes every thread waiting in the kernel.
    fn post_locked(&self, st: &mut FakeState<C>, entry: Entry<C>) {
        st.cq.push_back(entry);
        st.tail += 1;
        if self.pollers > 1 {
            self.posted.notify_one();
        } else {
            self.posted.notify_all();
        }
    }

    /// Consumes every ready entry, moving the completions into `out`.
    fn reap_locked(st: &mut FakeState<C>, out: &mut Vec<Completion<C>>) {
        for entry in st.cq.drain(..) {
            if let Entry::Io(c) = entry {
                out.push(c);
            }
        }
        st.head = st.tail;
    }

    /// Test hook: an operation enters the kernel and stays there until `close` cancels it.
    pub(crate) fn submit_pending(&self, key: usize, context: C) {
        let mut st = self.lock();
        st.in_flight += 1;
        st.pending.push((key, context));
    }

    /// Test hook: an operation completes with `bytes` transferred (its submission and its
    /// completion in one step).
    pub(crate) fn complete(&self, key: usize, bytes: usize, context: C) {
        let mut st = self.lock();
        st.in_flight += 1;
        let mut c = Completion::io(key, context);
        c.result = Ok(bytes);
        self.post_locked(&mut st, Entry::Io(c));
    }

    /// Real submissions are not modelled.
    pub(crate) fn submit(&self, op: OpData<C>) -> SubmitError<C> {
        SubmitError::new(unsupported(), op.context, op.buffer)
    }

    pub(crate) fn cancel(&self) -> io::Result<()> {
        Err(unsupported())
    }

    pub(crate) fn flush(&self) {}

    pub(crate) fn batch<R>(&self, f: impl FnOnce() -> R) -> R {
        f()
    }

    /// `io_uring_enter(GETEVENTS, min_complete = 1)`: see the module documentation.
    pub(crate) fn wait(&self, deadline: Option<Instant>, out: &mut Vec<Completion<C>>) -> io::Result<()> {
        let mut st = self.lock();
        if deadline.is_some() {
            if st.cq.is_empty() {
                // The deadline may pass now: let the other threads run meanwhile (a
                // caller that loops on a timed wait must not starve them).
                drop(st);
                loom::thread::yield_now();
                st = self.lock();
            }
        } else if self.pollers > 1 {
            // epoll: sleep until an entry is there for this waiter to take.
            while st.cq.is_empty() {
                st = self.posted.wait(st).unwrap_or_else(std::sync::PoisonError::into_inner);
            }
        } else {
            // Wake once an entry is posted beyond the head seen on entry, even if another
            // thread has consumed it since.
            let target = st.head + 1;
            while st.tail < target {
                st = self.posted.wait(st).unwrap_or_else(std::sync::PoisonError::into_inner);
            }
        }
        Self::reap_locked(&mut st, out);
        Ok(())
    }

    /// Consumes every ready entry without blocking.
    pub(crate) fn peek(&self, out: &mut Vec<Completion<C>>) -> io::Result<()> {
        Self::reap_locked(&mut self.lock(), out);
        Ok(())
    }

    pub(crate) fn max_pollers(&self) -> usize {
        self.pollers
    }

    /// Posts a wake-up entry (the NOP, or the eventfd write).
    pub(crate) fn wake(&self) {
        let mut st = self.lock();
        self.post_locked(&mut st, Entry::Wake);
    }

    /// Cancels every pending operation: each completes with `ECANCELED` (docs/semantics.md P10).
    pub(crate) fn close(&self) {
        let mut st = self.lock();
        if st.closed {
            return;
        }
        st.closed = true;
        let cancelled: Vec<_> = st.pending.drain(..).collect();
        for (key, context) in cancelled {
            let mut c = Completion::io(key, context);
            c.result = Err(io::Error::from_raw_os_error(libc::ECANCELED));
            self.post_locked(&mut st, Entry::Io(c));
        }
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.lock().in_flight
    }

    pub(crate) fn delivered(&self, n: usize) {
        let mut st = self.lock();
        debug_assert!(st.in_flight >= n, "more completions delivered than were in flight");
        st.in_flight -= n;
    }
}

fn unsupported() -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, "the loom fake backend does not perform I/O")
}
