//! Backends: the mechanism under the port's rules.
//!
//! Every backend provides the same small set of services to `port.rs`, which alone holds
//! the rules of docs/semantics.md (timeouts, closed port, FIFO/LIFO, concurrency, drain):
//!
//! 1. **submit**: start one operation (an [`OpData`]: request, handle, key, context,
//!    buffer) and return an [`OpRef`] that can later cancel it. A refused submission hands
//!    the context and buffer back and produces nothing. An accepted one produces exactly
//!    one completion (H2), and its buffer and context stay owned by the backend, never
//!    freed, until the kernel is done with them (H3).
//! 2. **wait**: block the calling thread in the kernel until at least one completion is
//!    ready, [`Driver::wake`] is called, or a deadline passes; then convert what is ready
//!    into [`Completion`]s. Only one thread at a time is asked to wait (the port's
//!    *poller*), but `wake`, `submit` and `cancel` come from any thread.
//! 3. **peek**: the same without blocking.
//! 4. **cancel** one operation, every operation on a descriptor, or everything (on close).
//! 5. **close**: refuse new submissions and cancel everything in flight, atomically with
//!    respect to `submit`, so that nothing submitted concurrently escapes cancellation.
//! 6. **Dropping**: a backend dropped with operations in flight cancels them and waits for
//!    their completions before it frees them or closes its kernel object (P10).
//!
//! Today there is one backend, io_uring ([`uring`]). The readiness fallback (epoll) and a
//! native Windows backend would slot in as further variants of [`Driver`] and [`OpRef`],
//! chosen at run time when the port creates its backend ([`Driver::uring`] is that place
//! today).
//!
//! Under `--cfg loom` there is also a model backend (`fake`), for the loom tests of the
//! poller protocol; it does no I/O.

use crate::completion::Completion;
use crate::error::Closed;
use crate::handle::HandleShared;
use crate::op::{Request, SubmitError};
use std::io;
use std::sync::Arc;
use std::time::Instant;

pub(crate) mod eager;
#[cfg(loom)]
pub(crate) mod fake;
pub(crate) mod uring;

/// One operation as the front end hands it to a backend.
pub(crate) struct OpData<C> {
    pub(crate) handle: Arc<HandleShared>,
    pub(crate) key: usize,
    pub(crate) request: Request,
    pub(crate) buffer: Option<Vec<u8>>,
    pub(crate) context: C,
}

/// The backend behind a port, chosen when the port first needs one.
pub(crate) enum Driver<C> {
    /// Linux io_uring.
    Uring(uring::Uring<C>),
    /// The loom model kernel (tests only).
    #[cfg(loom)]
    Fake(fake::Fake<C>),
}

/// A backend's reference to an operation in flight, for cancellation. It never keeps the
/// operation's buffer or context alive.
pub(crate) enum OpRef<C> {
    /// An io_uring operation.
    Uring(uring::OpRef<C>),
}

impl<C: Send + 'static> Driver<C> {
    /// Creates the io_uring backend.
    pub(crate) fn uring() -> io::Result<Self> {
        uring::Uring::new().map(Driver::Uring)
    }

    /// The loom model backend.
    #[cfg(loom)]
    pub(crate) fn fake() -> Self {
        Driver::Fake(fake::Fake::new())
    }

    /// The loom model backend, for the test hooks; `None` for a real one.
    #[cfg(loom)]
    pub(crate) fn as_fake(&self) -> Option<&fake::Fake<C>> {
        match self {
            Driver::Fake(k) => Some(k),
            Driver::Uring(_) => None,
        }
    }

    /// The backend's name, for logs and reports.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Driver::Uring(_) => "io_uring",
            #[cfg(loom)]
            Driver::Fake(_) => "loom fake",
        }
    }

    /// Starts one operation: it reaches the kernel before this returns (docs/semantics.md
    /// H9), unless this thread is inside a [`batch`](Self::batch) section for this backend,
    /// which hands it over when the section ends.
    pub(crate) fn submit(&self, op: OpData<C>) -> Result<OpRef<C>, SubmitError<C>> {
        match self {
            Driver::Uring(u) => u.submit(op).map(OpRef::Uring),
            #[cfg(loom)]
            Driver::Fake(k) => Err(k.submit(op)),
        }
    }

    /// Hands queued submissions (a transient submit failure's) to the kernel.
    pub(crate) fn flush(&self) {
        match self {
            Driver::Uring(u) => u.flush(),
            #[cfg(loom)]
            Driver::Fake(k) => k.flush(),
        }
    }

    pub(crate) fn wait(&self, deadline: Option<Instant>, out: &mut Vec<Completion<C>>) -> io::Result<()> {
        match self {
            Driver::Uring(u) => u.wait(deadline, out),
            #[cfg(loom)]
            Driver::Fake(k) => k.wait(deadline, out),
        }
    }

    pub(crate) fn peek(&self, out: &mut Vec<Completion<C>>) -> io::Result<()> {
        match self {
            Driver::Uring(u) => u.peek(out),
            #[cfg(loom)]
            Driver::Fake(k) => k.peek(out),
        }
    }

    pub(crate) fn wake(&self) {
        match self {
            Driver::Uring(u) => u.wake(),
            #[cfg(loom)]
            Driver::Fake(k) => k.wake(),
        }
    }

    pub(crate) fn cancel(&self, op: &OpRef<C>) -> io::Result<()> {
        match (self, op) {
            (Driver::Uring(u), OpRef::Uring(op)) => u.cancel(op),
            #[cfg(loom)]
            (Driver::Fake(k), _) => k.cancel(),
        }
    }

    pub(crate) fn cancel_fd(&self, handle: &HandleShared) -> io::Result<()> {
        match self {
            Driver::Uring(u) => u.cancel_fd(handle),
            #[cfg(loom)]
            Driver::Fake(k) => k.cancel(),
        }
    }

    pub(crate) fn close(&self) {
        match self {
            Driver::Uring(u) => u.close(),
            #[cfg(loom)]
            Driver::Fake(k) => k.close(),
        }
    }

    /// Operations submitted whose completion has not yet been handed to the port.
    pub(crate) fn in_flight(&self) -> usize {
        match self {
            Driver::Uring(u) => u.in_flight(),
            #[cfg(loom)]
            Driver::Fake(k) => k.in_flight(),
        }
    }

    /// The port has queued `n` completions that `wait`/`peek` produced.
    pub(crate) fn delivered(&self, n: usize) {
        match self {
            Driver::Uring(u) => u.delivered(n),
            #[cfg(loom)]
            Driver::Fake(k) => k.delivered(n),
        }
    }

    /// Runs `f` with submissions from this thread batched into one kernel call when the
    /// outermost section ends.
    pub(crate) fn batch<R>(&self, f: impl FnOnce() -> R) -> R {
        match self {
            Driver::Uring(u) => u.batch(f),
            #[cfg(loom)]
            Driver::Fake(k) => k.batch(f),
        }
    }
}

impl<C> OpRef<C> {
    /// Whether the operation's completion has already been produced.
    pub(crate) fn is_done(&self) -> bool {
        match self {
            OpRef::Uring(op) => op.is_done(),
        }
    }
}

/// Converts a closed backend into the error a refused submission carries.
pub(crate) fn closed_error() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, Closed)
}
