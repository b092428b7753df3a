//! The epoll backend's wake protocol, apart from epoll so that loom can check it.
//!
//! Completions produced outside the poller's `wait` (at submission, by a cancel, by a file
//! pool thread) go to a `ready` list, and their producer wakes the poller through a
//! [`Signal`] (an eventfd in the epoll set, level-triggered: readable while its counter is
//! non-zero). The `notified` flag keeps that to one eventfd write per wake-up:
//!
//! * a producer pushes to `ready`, then sets `notified` and raises the signal only if the
//!   flag was clear ([`Mailbox::push`], [`Mailbox::wake`]);
//! * the poller, woken by the signal, consumes it and **then** clears `notified`, then
//!   takes `ready` ([`Mailbox::collect`]); before it blocks it looks at `ready`
//!   ([`Mailbox::has_ready`]) and does not block if something is there.
//!
//! A producer raises the signal only while a poller sleeps: a poller that is about to
//! block announces itself in `sleepers` and then looks at `ready` ([`Mailbox::begin_sleep`]);
//! a producer appends to `ready` and then reads `sleepers` ([`Mailbox::push`]). Both looks
//! go through the `ready` mutex's order: if the poller's look comes after the append it
//! sees the completion and does not block; if before, the producer's read comes after the
//! poller's announcement and raises the signal. So a thread that submits and later takes
//! its own completion (a page-cache read, a send that finished at once) costs no eventfd
//! write and read when nobody sleeps.
//!
//! Whichever order these steps interleave in, a completion is never stranded: the poller
//! takes it now, or the signal stays raised and its next wait returns at once. The
//! invariant is: *while `notified` is set, the signal is raised or about to be*. Clearing
//! `notified` before consuming would break it (a raise landing between the clear and the
//! consume would be eaten, leaving `notified` set with nothing raised, and every later
//! wake-up suppressed): `completion-port/tests/loom.rs` (`wake_*`) checks both orders.
//!
//! Under `--cfg loom` this module is reachable from the loom tests (`completion_port::
//! loom_wake`), with loom's atomics and mutex under it, and a model signal in place of the
//! eventfd.

use crate::sync::{lock, AtomicBool, AtomicUsize, Mutex, Ordering::SeqCst};

/// What wakes the poller: the epoll backend's eventfd, or a model of it under loom.
pub trait Signal {
    /// Makes the poller's wait return (an eventfd write); stays raised until consumed.
    fn raise(&self);
    /// Consumes every raise so far (a non-blocking eventfd read).
    fn consume(&self);
}

/// The `ready` list and the `notified` flag of the wake protocol (module documentation),
/// with the signal they guard.
pub struct Mailbox<T, S> {
    /// Completions produced outside `wait`, oldest first.
    ready: Mutex<Vec<T>>,
    /// A wake-up is on its way (the signal was raised, or is about to be) and the poller
    /// has not yet consumed it.
    notified: AtomicBool,
    /// Pollers blocked (or about to block) in the wait; a push raises the signal only
    /// while this is not zero.
    sleepers: AtomicUsize,
    signal: S,
}

impl<T, S: Signal> Mailbox<T, S> {
    /// An empty mailbox, its signal clear.
    pub fn new(signal: S) -> Self {
        Self {
            ready: Mutex::new(Vec::new()),
            notified: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            signal,
        }
    }

    /// The signal (for the loom models' poller, which waits on it as `epoll_wait` does).
    #[cfg(loom)]
    pub fn signal(&self) -> &S {
        &self.signal
    }

    /// Whether completions are waiting: the poller must not block.
    pub fn has_ready(&self) -> bool {
        !lock(&self.ready).is_empty()
    }

    /// Queues completions, and wakes a poller if one sleeps (else the next wait, which
    /// looks at `ready` first, takes them without blocking).
    pub fn push(&self, mut items: Vec<T>) {
        if items.is_empty() {
            return;
        }
        lock(&self.ready).append(&mut items);
        // After the append (the mutex orders it with `begin_sleep`'s look at `ready`).
        if self.sleepers.load(SeqCst) > 0 {
            self.wake();
        }
    }

    /// Queues one completion, as [`push`](Self::push) does, without a vector to carry it.
    pub fn push_one(&self, item: T) {
        lock(&self.ready).push(item);
        // After the push (the mutex orders it with `begin_sleep`'s look at `ready`).
        if self.sleepers.load(SeqCst) > 0 {
            self.wake();
        }
    }

    /// A poller is about to block in the wait: announces itself, then looks at `ready`.
    /// Returns `true` if it may block (nothing is ready), and must then call
    /// [`end_sleep`](Self::end_sleep) once the wait returns; `false` if completions are
    /// ready (it must not block, and is not counted).
    pub fn begin_sleep(&self) -> bool {
        self.sleepers.fetch_add(1, SeqCst);
        if self.has_ready() {
            self.sleepers.fetch_sub(1, SeqCst);
            return false;
        }
        true
    }

    /// The wait that [`begin_sleep`](Self::begin_sleep) allowed has returned.
    pub fn end_sleep(&self) {
        self.sleepers.fetch_sub(1, SeqCst);
    }

    /// Makes a poller's wait return, whether or not one sleeps now (the port's explicit
    /// wake-ups): raises the signal unless a wake-up is already on its way.
    pub fn wake(&self) {
        if !self.notified.swap(true, SeqCst) {
            self.signal.raise();
        }
    }

    /// The poller, after its wait: if the signal woke it, consumes the signal and then
    /// allows new wake-ups (in this order, see the module documentation); then moves every
    /// queued completion into `out`.
    pub fn collect(&self, woken: bool, out: &mut Vec<T>) {
        if woken {
            self.signal.consume();
            self.rearm();
        }
        self.take(out);
    }

    /// Allows new wake-ups (clears `notified`). Only [`collect`](Self::collect) calls it,
    /// after consuming the signal; public for the loom model of the wrong order.
    pub fn rearm(&self) {
        // A swap, not a store: every access that writes the flag is then a
        // read-modify-write, totally ordered with the producers' swaps. loom orders a
        // plain store only after the writes its thread has seen, and would otherwise let
        // a later load read a producer's older `true` (an execution the C++ model
        // forbids, as a producer's swap must read the newest value). On x86 a `SeqCst`
        // store is an `xchg` anyway.
        self.notified.swap(false, SeqCst);
    }

    /// Moves every queued completion into `out`.
    pub fn take(&self, out: &mut Vec<T>) {
        out.append(&mut lock(&self.ready));
    }

    /// Hands the oldest `max` queued completions (or all, if fewer) to `put`, oldest
    /// first, and returns how many. Outside the wake protocol: it only removes what a
    /// poller would have collected, and the completions it leaves were pushed under the
    /// protocol (a sleeping poller was signalled for them, or will see them before it
    /// blocks). A poller woken for completions taken here finds fewer, perhaps none, and
    /// waits again.
    pub fn take_up_to(&self, max: usize, put: impl FnMut(T)) -> usize {
        let mut ready = lock(&self.ready);
        let n = max.min(ready.len());
        ready.drain(..n).for_each(put);
        n
    }

    /// Whether a wake-up is on its way (for the loom models' invariant check).
    #[cfg(loom)]
    pub fn is_notified(&self) -> bool {
        self.notified.load(SeqCst)
    }
}
