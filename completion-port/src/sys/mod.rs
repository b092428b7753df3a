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
//!    into [`Completion`]s. Several threads may wait at once (the port's *pollers*, up
//!    to [`Driver::max_pollers`]); `wake` brings one of them back, and `wake`, `submit`
//!    and `cancel` come from any thread.
//! 3. **peek**: the same without blocking.
//! 4. **cancel** one operation, every operation on a descriptor, or everything (on close).
//! 5. **close**: refuse new submissions and cancel everything in flight, atomically with
//!    respect to `submit`, so that nothing submitted concurrently escapes cancellation.
//! 6. **Dropping**: a backend dropped with operations in flight cancels them and waits for
//!    their completions before it frees them or closes its kernel object (P10).
//!
//! Two backends exist: io_uring ([`uring`]) and readiness on epoll ([`epoll`]), chosen at
//! run time by [`Driver::open`] when the port creates its backend (its first `associate`).
//! A backend may keep state per descriptor: [`Driver::register`] creates it at association
//! and the handle holds it ([`HandleState`]), dropping it just before the descriptor closes.
//!
//! Under `--cfg loom` there is also a model backend (`fake`), for the loom tests of the
//! poller protocol; it does no I/O.

use crate::backend::Backend;
use crate::completion::Completion;
use crate::error::Closed;
use crate::op::{FdKind, Request, SubmitError};
use std::any::Any;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::time::Instant;

mod descriptor;
pub(crate) mod eager;

pub(crate) use descriptor::Descriptor;
pub(crate) mod epoll;
#[cfg(loom)]
pub(crate) mod fake;
pub mod sentry;
pub(crate) mod uring;
pub(crate) mod vio;

/// One operation as the front end hands it to a backend.
pub(crate) struct OpData<C> {
    pub(crate) handle: Arc<Descriptor>,
    pub(crate) key: usize,
    pub(crate) request: Request,
    pub(crate) buffer: Option<crate::buffer::Buffer>,
    pub(crate) context: C,
}

/// What an eager submission ([`Driver::submit_eager`]) became.
pub(crate) enum Eager<C> {
    /// Completed at once, before any operation was made: its result, with the caller's
    /// buffer and context back. No packet follows.
    Immediate(io::Result<usize>, crate::buffer::Buffer, C),
    /// In flight: its packet follows.
    Pending(OpRef<C>),
}

/// The backend behind a port, chosen when the port first needs one.
///
/// One per port, reached on every operation: its variants are not boxed, to spare that
/// indirection, whatever their sizes.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Driver<C> {
    /// Linux io_uring.
    Uring(uring::Uring<C>),
    /// Readiness (epoll), with a blocking pool for regular files.
    Epoll(epoll::Epoll<C>),
    /// The loom model kernel (tests only).
    #[cfg(loom)]
    Fake(fake::Fake<C>),
}

/// A backend's reference to an operation in flight, for cancellation. It never keeps the
/// operation's buffer or context alive.
pub(crate) enum OpRef<C> {
    /// An io_uring operation.
    Uring(uring::OpRef<C>),
    /// An epoll-backend operation.
    Epoll(epoll::OpRef<C>),
}

/// A backend's state for one associated descriptor, held by its handle
/// ([`Descriptor::state`]) and dropped just before the descriptor is closed.
pub(crate) type HandleState = Box<dyn Any + Send + Sync>;

/// Whether [`Driver::open`] already logged why `Auto` fell back to epoll (once per process).
static FALLBACK_LOGGED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl<C: Send + 'static> Driver<C> {
    /// Creates the backend `choice` asks for: `Auto` tries io_uring and falls back to epoll
    /// on any setup failure, logging the reason once per process as a warning; `Uring`
    /// fails with the reason (and `kernel.io_uring_disabled` where that is the cause).
    pub(crate) fn open(choice: Backend) -> io::Result<Self> {
        match choice {
            Backend::Epoll => epoll::Epoll::new().map(Driver::Epoll),
            Backend::Uring => uring::Uring::new().map(Driver::Uring).map_err(explain_uring_failure),
            Backend::Auto => match uring::Uring::new() {
                Ok(u) => Ok(Driver::Uring(u)),
                Err(e) => {
                    let e = explain_uring_failure(e);
                    if !FALLBACK_LOGGED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                        tracing::warn!(reason = %e, "io_uring is unavailable; falling back to epoll");
                    } else {
                        tracing::debug!(reason = %e, "io_uring is unavailable; falling back to epoll");
                    }
                    epoll::Epoll::new().map(Driver::Epoll)
                }
            },
        }
    }

    /// Which backend this is (`None` for the loom model).
    pub(crate) fn kind(&self) -> Option<Backend> {
        match self {
            Driver::Uring(_) => Some(Backend::Uring),
            Driver::Epoll(_) => Some(Backend::Epoll),
            #[cfg(loom)]
            Driver::Fake(_) => None,
        }
    }

    /// Prepares a descriptor being associated: the epoll backend makes sockets and pipes
    /// non-blocking and adds them to its interest set, and keeps per-descriptor state; the
    /// io_uring backend gives it a slot in the ring's registered file table.
    pub(crate) fn register(&self, fd: BorrowedFd<'_>, kind: FdKind) -> io::Result<Option<HandleState>> {
        match self {
            Driver::Uring(u) => Ok(u.register(fd)),
            Driver::Epoll(e) => e.register(fd, kind).map(Some),
            #[cfg(loom)]
            Driver::Fake(_) => Ok(None),
        }
    }

    /// The loom model backend.
    #[cfg(loom)]
    pub(crate) fn fake(pollers: usize) -> Self {
        Driver::Fake(fake::Fake::with_pollers(pollers))
    }

    /// The loom model backend, for the test hooks; `None` for a real one.
    #[cfg(loom)]
    pub(crate) fn as_fake(&self) -> Option<&fake::Fake<C>> {
        match self {
            Driver::Fake(k) => Some(k),
            Driver::Uring(_) | Driver::Epoll(_) => None,
        }
    }

    /// The backend's name, for logs and reports.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Driver::Uring(_) => "io_uring",
            Driver::Epoll(_) => "epoll",
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
            Driver::Epoll(e) => e.submit(op).map(OpRef::Epoll),
            #[cfg(loom)]
            Driver::Fake(k) => Err(k.submit(op)),
        }
    }

    /// Whether the backend makes eager attempts itself ([`submit_eager`](Self::submit_eager)):
    /// epoll, which knows when a descriptor is not ready. Elsewhere the caller tries the
    /// system call directly, then submits.
    pub(crate) fn attempts_eagerly(&self) -> bool {
        matches!(self, Driver::Epoll(_))
    }

    /// Starts a socket send or receive eagerly (skip-on-success), on a backend that
    /// [`attempts_eagerly`](Self::attempts_eagerly). The operation is made (by `make`,
    /// which counts it on its descriptor) only if it must wait: one that completes at once
    /// comes back as [`Eager::Immediate`] with nothing allocated or counted. Without
    /// eager attempts, a plain submission.
    pub(crate) fn submit_eager(
        &self,
        desc: &Descriptor,
        request: Request,
        buffer: crate::buffer::Buffer,
        context: C,
        make: impl FnOnce(Request, Option<crate::buffer::Buffer>, C) -> OpData<C>,
    ) -> Result<Eager<C>, SubmitError<C>> {
        match self {
            Driver::Epoll(e) => e.submit_eager(desc, request, buffer, context, make),
            // A plain submission; the count `make` took is given back if it is refused.
            _ => self
                .submit(make(request, Some(buffer), context))
                .map(Eager::Pending)
                .inspect_err(|_| desc.op_finished()),
        }
    }

    /// One non-blocking attempt at a socket send or receive on the caller's own memory
    /// (`Handle::try_send`, `Handle::try_recv`): `call` makes the system call (with
    /// `MSG_DONTWAIT`); no operation, packet or context exists. `WouldBlock` if it cannot
    /// complete at once. On epoll it is refused with `WouldBlock` without a system call
    /// when an operation of the same direction waits in the descriptor's queue (the
    /// attempt must not overtake it); an `EAGAIN` clears the ready flag, under the
    /// descriptor's lock, as every attempt does.
    /// Elsewhere it is the plain call.
    pub(crate) fn try_io(
        &self,
        desc: &Descriptor,
        receive: bool,
        call: impl FnMut(BorrowedFd<'_>) -> rustix::io::Result<usize>,
    ) -> io::Result<usize> {
        match self {
            Driver::Epoll(e) => e.try_io(desc, receive, call),
            _ => eager::try_call(desc.fd.as_fd(), call),
        }
    }

    /// Opens the calling thread's deferred section (docs/semantics.md H9, deferred
    /// submission): its submissions wait until it next waits on the port, or `settle`s,
    /// or the backend's sentry hands them to the kernel (at most one tick later). Only
    /// io_uring defers; epoll starts every operation in its call anyway.
    pub(crate) fn defer(&self) {
        if let Driver::Uring(u) = self {
            u.defer();
        }
    }

    /// Closes the calling thread's deferred section, if any, and hands what it deferred
    /// to the kernel.
    pub(crate) fn settle(&self) {
        match self {
            Driver::Uring(u) => u.settle(),
            _ => self.flush(),
        }
    }

    /// Hands queued submissions (a transient submit failure's) to the kernel.
    pub(crate) fn flush(&self) {
        match self {
            Driver::Uring(u) => u.flush(),
            Driver::Epoll(e) => e.flush(),
            #[cfg(loom)]
            Driver::Fake(k) => k.flush(),
        }
    }

    pub(crate) fn wait(&self, deadline: Option<Instant>, out: &mut Vec<Completion<C>>) -> io::Result<()> {
        match self {
            Driver::Uring(u) => u.wait(deadline, out),
            Driver::Epoll(e) => e.wait(deadline, out),
            #[cfg(loom)]
            Driver::Fake(k) => k.wait(deadline, out),
        }
    }

    pub(crate) fn peek(&self, out: &mut Vec<Completion<C>>) -> io::Result<()> {
        match self {
            Driver::Uring(u) => u.peek(out),
            Driver::Epoll(e) => e.peek(out),
            #[cfg(loom)]
            Driver::Fake(k) => k.peek(out),
        }
    }

    /// Hands up to `max` completions the backend already holds to `put` without a system
    /// call, for a thread that holds a running slot and found the port's queue empty;
    /// returns how many (the caller then reports them with [`delivered`](Self::delivered)).
    /// epoll: those produced outside `wait` (a page-cache read at submission) while no
    /// descriptor is watched. io_uring and the loom model: none (their completions are
    /// reaped by the poller).
    pub(crate) fn take_ready(&self, max: usize, put: impl FnMut(Completion<C>)) -> usize {
        match self {
            Driver::Uring(_) => 0,
            Driver::Epoll(e) => e.take_ready(max, put),
            #[cfg(loom)]
            Driver::Fake(_) => 0,
        }
    }

    /// How many threads may wait in [`wait`](Self::wait) at once: any number on both (the
    /// port allows up to its concurrency value). `epoll_wait` wakes one waiter per event,
    /// the most recent first (its wait queue is exclusive and LIFO), and each thread runs
    /// the system calls of the descriptors it was told about. io_uring wakes one waiter in
    /// `io_uring_enter` per posting of completions (its wait queue is exclusive and FIFO);
    /// each reaps what is there under the CQ lock (docs/design.md, "Several pollers").
    pub(crate) fn max_pollers(&self) -> usize {
        match self {
            Driver::Uring(_) => usize::MAX,
            Driver::Epoll(_) => usize::MAX,
            #[cfg(loom)]
            Driver::Fake(k) => k.max_pollers(),
        }
    }

    pub(crate) fn wake(&self) {
        match self {
            Driver::Uring(u) => u.wake(),
            Driver::Epoll(e) => e.wake(),
            #[cfg(loom)]
            Driver::Fake(k) => k.wake(),
        }
    }

    pub(crate) fn cancel(&self, op: &OpRef<C>) -> io::Result<()> {
        match (self, op) {
            (Driver::Uring(u), OpRef::Uring(op)) => u.cancel(op),
            (Driver::Epoll(e), OpRef::Epoll(op)) => e.cancel(op),
            (Driver::Uring(_), _) | (Driver::Epoll(_), _) => {
                Err(io::Error::new(io::ErrorKind::InvalidInput, "the operation belongs to another backend"))
            }
            #[cfg(loom)]
            (Driver::Fake(k), _) => k.cancel(),
        }
    }

    pub(crate) fn cancel_fd(&self, handle: &Descriptor) -> io::Result<()> {
        match self {
            Driver::Uring(u) => u.cancel_fd(handle),
            Driver::Epoll(e) => e.cancel_fd(handle),
            #[cfg(loom)]
            Driver::Fake(k) => k.cancel(),
        }
    }

    pub(crate) fn close(&self) {
        match self {
            Driver::Uring(u) => u.close(),
            Driver::Epoll(e) => e.close(),
            #[cfg(loom)]
            Driver::Fake(k) => k.close(),
        }
    }

    /// Operations submitted whose completion has not yet been handed to the port.
    pub(crate) fn in_flight(&self) -> usize {
        match self {
            Driver::Uring(u) => u.in_flight(),
            Driver::Epoll(e) => e.in_flight(),
            #[cfg(loom)]
            Driver::Fake(k) => k.in_flight(),
        }
    }

    /// The port has queued `n` completions that `wait`/`peek` produced.
    pub(crate) fn delivered(&self, n: usize) {
        match self {
            Driver::Uring(u) => u.delivered(n),
            Driver::Epoll(e) => e.delivered(n),
            #[cfg(loom)]
            Driver::Fake(k) => k.delivered(n),
        }
    }

    /// Runs `f` with submissions from this thread batched into one kernel call when the
    /// outermost section ends.
    pub(crate) fn batch<R>(&self, f: impl FnOnce() -> R) -> R {
        match self {
            Driver::Uring(u) => u.batch(f),
            Driver::Epoll(e) => e.batch(f),
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
            OpRef::Epoll(op) => op.is_done(),
        }
    }
}

/// Converts a closed backend into the error a refused submission carries.
pub(crate) fn closed_error() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, Closed)
}

/// Adds to an io_uring setup failure what the administrator can change: the sysctl
/// `kernel.io_uring_disabled` when it is set (1: only a group may use io_uring; 2: nobody).
fn explain_uring_failure(e: io::Error) -> io::Error {
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|v| *v != 0);
    let msg = match disabled {
        Some(v) => format!(
            "io_uring is unavailable: {e} (kernel.io_uring_disabled = {v}; \
             set COMPLETION_PORT_BACKEND=epoll or Backend::Epoll to run without it)"
        ),
        None => format!(
            "io_uring is unavailable: {e} (kernel.io_uring_disabled is 0 or absent: a seccomp \
             filter, an old kernel or a memory limit refused it; use Backend::Epoll or \
             COMPLETION_PORT_BACKEND=epoll)"
        ),
    };
    io::Error::new(e.kind(), msg)
}
