//! The io_uring backend.
//!
//! One ring per port, shared by every thread:
//!
//! * **Submission**: any thread pushes SQEs under the `sq` mutex (the only way to obtain the
//!   ring's submission queue), then calls `io_uring_enter` to submit, outside the lock.
//!   Inside [`Uring::batch`] the enter is deferred to the end of the batch, and inside a
//!   thread's deferred section ([`Uring::defer`], docs/semantics.md H9) to that thread's
//!   next wait, or to the sentry (`sys/sentry.rs`), which submits what has sat deferred
//!   for a tick.
//! * **Completion**: the port lets several threads wait in the kernel at once
//!   (`io_uring_enter(GETEVENTS, min_complete = 1)`, with the caller's timeout); the kernel
//!   wakes one of them per posting of completions (an exclusive wait queue). The
//!   completion queue is read under the `cq` mutex, so concurrent waiters and a `drain`
//!   are safe.
//! * **Wake-up**: another thread wakes one waiting thread by submitting a `NOP` whose
//!   completion carries [`WAKE`]; the reader skips it.
//!
//! # Ownership round trip
//!
//! An operation is an `Arc<Op<C>>`. [`op::prepare`] leaks one strong reference into
//! the SQE's `user_data`; [`op::from_user_data`] takes it back when the CQE arrives. Every
//! accepted SQE yields exactly one CQE (no multishot requests are used), so each reference
//! is taken back exactly once. Cancellation handles are `Weak`: they keep the allocation
//! (so its address, the `user_data`, cannot be reused by a new operation while a canceller
//! holds it) but never the buffer or context.
//!
//! # Dropping
//!
//! [`Uring`]'s `Drop` (0) stops and joins the sentry, which shares the ring, (1) refuses
//! new submissions, (2) cancels everything in flight,
//! (3) reaps until every operation's completion has come back, dropping each operation's
//! buffer and context once, and only then (4) lets the ring be unmapped and closed. The
//! kernel therefore never writes into freed memory, whatever the application leaked.

mod fixed;
mod op;
mod owner;

pub(crate) use op::OpRef;

use super::sentry::Sentry;
use super::{Descriptor, OpData};
use crate::completion::Completion;
use crate::op::SubmitError;
use crate::sync::lock_std as lock;
use io_uring::{opcode, squeue, types, IoUring};
use std::cell::Cell;
use std::io;
use std::marker::PhantomData;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// `user_data` of the NOP that wakes a waiting thread.
const WAKE: u64 = 0;
/// `user_data` of cancellation requests: their own completions carry nothing we need.
const CANCEL: u64 = 1;

/// Submission queue entries. Completions beyond the CQ's size wait in the kernel's
/// overflow list (IORING_FEAT_NODROP), so this bounds only one batch of submissions.
const SQ_ENTRIES: u32 = 1024;
/// Completion queue entries.
const CQ_ENTRIES: u32 = 8192;

thread_local! {
    /// The ring this thread is batching for (its address) and the depth of its `batch`
    /// sections: while the depth is above zero, submissions to that ring skip the
    /// `io_uring_enter`, and the outermost section submits once at its end. Submissions to
    /// any other ring inside the section are not batched.
    static BATCH: Cell<(usize, u32)> = const { Cell::new((0, 0)) };
    /// Whether this thread pushed an SQE inside its outermost `batch` section (outside a
    /// deferred section): the section's end then submits. A thread-local flag rather than
    /// the shared `deferred` count, so that a batched submission writes no shared line.
    static BATCH_PUSHED: Cell<bool> = const { Cell::new(false) };
    /// The ring (its address) whose deferred section this thread has open, or 0: the
    /// thread took packets from a port with deferred submission on and has not come back
    /// to it yet (docs/semantics.md H9). Its submissions to that ring are deferred like a
    /// batch's; the next `wait`/`peek` of that thread, its `settle`, or the ring's sentry
    /// hands them to the kernel.
    static DEFERRED: Cell<usize> = const { Cell::new(0) };
}

/// How often the sentry looks for deferred submissions: a deferred submission whose
/// thread does not come back to the port waits at most two ticks.
const SENTRY_TICK: Duration = Duration::from_millis(5);
/// Ticks in a row with nothing deferred before the sentry sleeps until the next deferral.
const SENTRY_QUIET_TICKS: u32 = 16;

/// The io_uring backend of one port.
pub(crate) struct Uring<C> {
    /// Shared with the sentry thread, if one runs; `Drop` stops and joins it before it
    /// uses the ring alone.
    ring: Arc<IoUring>,
    /// Guards the submission queue; `true` once the port is closed (no new operations).
    sq: Mutex<bool>,
    /// Guards the completion queue.
    cq: Mutex<()>,
    /// Operations pushed whose completion has not yet been delivered to the port queue.
    in_flight: AtomicUsize,
    /// SQEs pushed but not yet submitted inside a deferred section or after a transient
    /// submit failure; the next `wait`, `peek` or `flush` hands them to the kernel, or the
    /// sentry does. (A `batch` section's pushes are noted in `BATCH_PUSHED` instead, and
    /// its end submits them.)
    deferred: Arc<AtomicUsize>,
    /// Deferred submission's safety net (`sys/sentry.rs`), started by the first deferred
    /// section's first submission: `None` inside if the thread could not be started (then
    /// deferred sections submit at once).
    sentry: Arc<Sentry>,
    sentry_thread: OnceLock<Option<JoinHandle<()>>>,
    /// The registered file table, if the kernel accepted one (`fixed.rs`).
    fixed: Option<Arc<fixed::FixedFiles>>,
    /// ThreadSanitizer builds only (`--cfg completion_port_tsan`, set by `ci/tsan.sh`): the
    /// kernel orders an operation's SQE before its CQE, through the two rings' tail
    /// pointers, which ThreadSanitizer cannot pair. Every push (and restart) releases this
    /// counter and every reap acquires it, so the hand-over of an operation's memory from
    /// the submitting thread to the reaping one is visible to it. Not compiled otherwise.
    #[cfg(completion_port_tsan)]
    tsan_handoff: AtomicUsize,
    _context: PhantomData<fn(C) -> C>,
}

impl<C: Send + 'static> Uring<C> {
    pub(crate) fn new() -> io::Result<Self> {
        // COOP_TASKRUN (5.19): the kernel does not interrupt a thread running in user
        // space to run the completion work of its operations; the thread runs it at its
        // next entry into the kernel (a system call, or the next timer tick's return to
        // user space). Sleeping threads are still woken for it. Measured: about 8 % less
        // server CPU per echoed message (docs/benchmarks.md). Older kernels refuse the
        // flag: then without it.
        let build = |coop: bool| {
            let mut b = IoUring::builder();
            b.setup_cqsize(CQ_ENTRIES).setup_clamp();
            if coop {
                b.setup_coop_taskrun();
            }
            b.build(SQ_ENTRIES)
        };
        let ring = match build(true) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => build(false)?,
            r => r?,
        };
        if !ring.params().is_feature_nodrop() || !ring.params().is_feature_ext_arg() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "io_uring lacks IORING_FEAT_NODROP or IORING_FEAT_EXT_ARG (kernel 5.11+ needed)",
            ));
        }
        let mut probe = io_uring::Probe::new();
        ring.submitter().register_probe(&mut probe)?;
        for (code, name) in [
            (opcode::AsyncCancel2::CODE, "ASYNC_CANCEL with flags (5.19)"),
            (opcode::Shutdown::CODE, "SHUTDOWN (5.11)"),
            (opcode::Send::CODE, "SEND (5.6)"),
        ] {
            if !probe.is_supported(code) {
                return Err(io::Error::new(io::ErrorKind::Unsupported, format!("io_uring lacks {name}")));
            }
        }
        tracing::debug!(sq = SQ_ENTRIES, cq = CQ_ENTRIES, "io_uring ring created");
        Ok(Self {
            fixed: fixed::FixedFiles::new(&ring),
            ring: Arc::new(ring),
            sq: Mutex::new(false),
            cq: Mutex::new(()),
            in_flight: AtomicUsize::new(0),
            deferred: Arc::new(AtomicUsize::new(0)),
            sentry: Arc::new(Sentry::new()),
            sentry_thread: OnceLock::new(),
            #[cfg(completion_port_tsan)]
            tsan_handoff: AtomicUsize::new(0),
            _context: PhantomData,
        })
    }

    /// Prepares a descriptor being associated: a slot in the registered file table, which
    /// its operations then name instead of the descriptor (`None`: by number).
    pub(crate) fn register(&self, fd: std::os::fd::BorrowedFd<'_>) -> Option<super::HandleState> {
        let slot = self.fixed.as_ref()?.install(fd.as_raw_fd())?;
        Some(Box::new(slot))
    }

    /// Starts one operation: its SQE is handed to the kernel at once, at the end of this
    /// thread's `batch` section, or, inside its deferred section, with its next wait (the
    /// sentry's at the latest).
    pub(crate) fn submit(&self, data: OpData<C>) -> Result<OpRef<C>, SubmitError<C>> {
        let epoch = data.handle.cancel_epoch();
        let (entry, op_ref, user_data) = op::prepare(data, epoch);
        #[cfg(completion_port_tsan)]
        self.tsan_handoff.fetch_add(1, Ordering::Release);
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        if let Err(e) = self.push(&entry, false) {
            // Never reached the kernel: take the operation back and hand its parts back.
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            let (context, buffer) = op::reclaim(user_data);
            return Err(SubmitError::new(e, context, buffer));
        }
        if self.in_deferred_section() {
            self.deferred.fetch_add(1, Ordering::SeqCst);
            if self.sentry_running() {
                // After the count is raised (the sentry's protocol).
                self.sentry.note_deferred();
            } else {
                self.submit_now();
            }
        } else if self.in_batch() {
            // The section's end submits it.
            BATCH_PUSHED.with(|p| p.set(true));
        } else {
            self.submit_now();
        }
        Ok(op_ref)
    }

    /// Pushes one SQE, submitting to make room when the queue is full. Refused after
    /// `close` unless `force` (close's own cancel).
    fn push(&self, entry: &squeue::Entry, force: bool) -> io::Result<()> {
        let closed = lock(&self.sq);
        if *closed && !force {
            return Err(super::closed_error());
        }
        self.push_locked(&closed, entry)
    }

    /// Pushes one SQE; the caller holds the `sq` lock (the guard proves it).
    fn push_locked(&self, _sq_lock: &MutexGuard<'_, bool>, entry: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: the `sq` mutex is held, so this is the only `SubmissionQueue` in
            // existence (the io-uring crate's requirement for `submission_shared`).
            let mut sq = unsafe { self.ring.submission_shared() };
            // SAFETY: `entry` points only at memory owned by the operation's `Arc`, whose
            // strong reference was leaked into `user_data` by `op::prepare`; that memory
            // lives until the CQE hands the reference back, so the kernel never touches
            // freed memory. Wake and cancel entries point at nothing.
            let pushed = unsafe { sq.push(entry) };
            // Dropping the queue publishes its tail, so the kernel sees the entry. It must
            // drop while the `sq` lock is held: one dropped after the guard (a temporary in
            // a block's tail expression outlives the block's locals in edition 2021)
            // publishes a stale tail over a newer one, and the kernel then runs old
            // entries a second time (seen in an experiment; docs/benchmarks.md).
            drop(sq);
            if pushed.is_ok() {
                return Ok(());
            }
            // Full: hand what is queued to the kernel, then try again.
            match self.ring.submit() {
                Ok(_) => {}
                Err(e) if is_transient(&e) => std::thread::yield_now(),
                Err(e) => return Err(e),
            }
        }
    }

    /// Hands deferred SQEs to the kernel, if there are any.
    pub(crate) fn flush(&self) {
        // The thread-local first: inside a section (every `get` of a deferring worker) this
        // skips reading `deferred`, a line every submitting thread writes.
        if !self.batching() && self.deferred.load(Ordering::SeqCst) > 0 {
            self.submit_now();
        }
    }

    fn id(&self) -> usize {
        self as *const Self as usize
    }

    /// Whether this thread is inside a `batch` or a deferred section for this ring.
    fn batching(&self) -> bool {
        self.in_batch() || self.in_deferred_section()
    }

    fn in_batch(&self) -> bool {
        let (ring, depth) = BATCH.with(Cell::get);
        depth > 0 && ring == self.id()
    }

    fn in_deferred_section(&self) -> bool {
        DEFERRED.with(Cell::get) == self.id()
    }

    /// Opens this thread's deferred section for this ring (the port hands it packets with
    /// deferred submission on). A section open for another ring is left to that ring's
    /// sentry.
    pub(crate) fn defer(&self) {
        DEFERRED.with(|d| d.set(self.id()));
    }

    /// Closes this thread's deferred section for this ring, if open, and hands what is
    /// deferred to the kernel (unless an explicit `batch` is still open).
    pub(crate) fn settle(&self) {
        self.end_deferred_section();
        self.flush();
    }

    fn end_deferred_section(&self) {
        DEFERRED.with(|d| {
            if d.get() == self.id() {
                d.set(0);
            }
        });
    }

    /// Whether the sentry thread runs, starting it on the first call.
    fn sentry_running(&self) -> bool {
        self.sentry_thread
            .get_or_init(|| {
                let (ring, deferred, sentry) =
                    (Arc::clone(&self.ring), Arc::clone(&self.deferred), Arc::clone(&self.sentry));
                std::thread::Builder::new()
                    .name("cport-sentry".into())
                    .spawn(move || {
                        sentry.run(
                            SENTRY_TICK,
                            SENTRY_QUIET_TICKS,
                            || deferred.load(Ordering::SeqCst),
                            || submit_queued(&ring, &deferred),
                        )
                    })
                    .inspect_err(|e| {
                        tracing::warn!(error = %e, "no sentry thread: deferred submission is off");
                    })
                    .ok()
            })
            .is_some()
    }

    /// Hands queued SQEs to the kernel. A transient failure leaves them queued: the next
    /// enter by any thread (the waiting thread's included) submits them.
    fn submit_now(&self) {
        submit_queued(&self.ring, &self.deferred);
    }

    /// Runs `f` with this thread's submissions to this ring batched: at the end of the
    /// outermost section they are submitted with one system call. A nested section for
    /// another ring is run unbatched.
    pub(crate) fn batch<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Section<'a, C: Send + 'static> {
            ring: &'a Uring<C>,
            outer: (usize, u32),
        }
        impl<C: Send + 'static> Drop for Section<'_, C> {
            fn drop(&mut self) {
                BATCH.with(|b| b.set(self.outer));
                if self.outer.1 == 0 {
                    // What this section pushed goes to the kernel now (even if a deferred
                    // section opened meanwhile: those pushes are not in its count), else
                    // anything left queued by a transient failure.
                    if BATCH_PUSHED.with(|p| p.replace(false)) {
                        self.ring.submit_now();
                    } else {
                        self.ring.flush();
                    }
                }
            }
        }
        let outer = BATCH.with(Cell::get);
        if outer.1 > 0 && outer.0 != self.id() {
            return f();
        }
        if outer.1 == 0 {
            BATCH_PUSHED.with(|p| p.set(false));
        }
        BATCH.with(|b| b.set((self.id(), outer.1 + 1)));
        let _section = Section { ring: self, outer };
        f()
    }

    /// Blocks until at least one CQE is ready (a wake-up included) or `deadline` passes,
    /// submitting anything queued on the way, then converts every ready CQE.
    pub(crate) fn wait(&self, deadline: Option<Instant>, out: &mut Vec<Completion<C>>) -> io::Result<()> {
        // This enter submits everything queued, deferred SQEs included.
        self.end_deferred_section();
        self.deferred.store(0, Ordering::SeqCst);
        let submitter = self.ring.submitter();
        let r = match deadline {
            None => submitter.submit_and_wait(1),
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                let ts = timespec(left);
                let args = types::SubmitArgs::new().timespec(&ts);
                submitter.submit_with_args(1, &args)
            }
        };
        match r {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ETIME) || is_transient(&e) => {}
            Err(e) => return Err(e),
        }
        self.reap(out);
        Ok(())
    }

    /// Converts every ready CQE without blocking.
    pub(crate) fn peek(&self, out: &mut Vec<Completion<C>>) -> io::Result<()> {
        // Flush anything queued and let the kernel post overflowed completions.
        self.end_deferred_section();
        self.deferred.store(0, Ordering::SeqCst);
        match self.ring.submit() {
            Ok(_) => {}
            Err(e) if is_transient(&e) => {}
            Err(e) => return Err(e),
        }
        self.reap(out);
        Ok(())
    }

    fn reap(&self, out: &mut Vec<Completion<C>>) {
        let mut resubmitted = false;
        {
            let _cq_guard = lock(&self.cq);
            // SAFETY: the `cq` mutex is held, so this is the only `CompletionQueue` in
            // existence (the io-uring crate's requirement for `completion_shared`).
            let cq = unsafe { self.ring.completion_shared() };
            for cqe in cq {
                let user_data = cqe.user_data();
                if user_data == WAKE || user_data == CANCEL {
                    continue;
                }
                #[cfg(completion_port_tsan)]
                self.tsan_handoff.load(Ordering::Acquire);
                // SAFETY: any other `user_data` came from `op::prepare` with this ring's
                // `C`; each push yields exactly one CQE (no multishot requests), and its
                // arrival means the kernel is done with the operation's memory.
                let op = unsafe { op::from_user_data::<C>(user_data) };
                let res = cqe.result();
                if res != -libc::ECANCELED {
                    out.push(op::complete(op, res));
                    continue;
                }
                match self.after_cancel(op) {
                    Ok(()) => resubmitted = true,
                    Err((op, res)) => out.push(op::complete(op, res)),
                }
            }
        }
        if resubmitted {
            self.submit_now_ignoring_batch();
        }
    }

    /// An operation came back `ECANCELED`. If we asked for that (`cancel`, `cancel_all` or
    /// a handle close, the port's close), it completes cancelled. Otherwise the kernel did
    /// it on its own: because the thread that submitted it exited (it is restarted from
    /// this live thread, so that it outlives its thread, H4, H10), or because the kernel
    /// could not run it (it completes with `EAGAIN`). The checks run under the SQ lock,
    /// which every cancellation takes after recording itself, so a cancel is never lost:
    /// it is either seen here or queued behind the restarted operation.
    #[allow(clippy::type_complexity)]
    fn after_cancel(&self, op: Arc<op::Op<C>>) -> Result<(), (Arc<op::Op<C>>, i32)> {
        let closed = lock(&self.sq);
        if *closed || op.cancel_requested.load(Ordering::SeqCst) || op::handle_epoch(&op) != op.epoch {
            return Err((op, -libc::ECANCELED));
        }
        let entry = match op::after_kernel_cancel(&op) {
            op::KernelCancel::Restart(entry) => {
                #[cfg(completion_port_tsan)]
                self.tsan_handoff.fetch_add(1, Ordering::Release);
                entry
            }
            op::KernelCancel::Complete(res) => {
                tracing::debug!(res, "an operation the kernel cancelled on its own completes");
                return Err((op, res));
            }
        };
        if let Err(e) = self.push_locked(&closed, &entry) {
            tracing::warn!(error = %e, "could not restart an operation cancelled by its thread's exit");
            return Err((op, -libc::ECANCELED));
        }
        tracing::debug!("restarted an operation its exiting thread left behind");
        // The kernel owns the reference again.
        let _ = Arc::into_raw(op);
        Ok(())
    }

    /// The port queued `n` completions produced by `wait`/`peek`.
    pub(crate) fn delivered(&self, n: usize) {
        self.in_flight.fetch_sub(n, Ordering::SeqCst);
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Makes a thread blocked in `wait` return.
    pub(crate) fn wake(&self) {
        let nop = opcode::Nop::new().build().user_data(WAKE);
        if self.push(&nop, true).is_ok() {
            self.submit_now_ignoring_batch();
        }
    }

    fn submit_now_ignoring_batch(&self) {
        loop {
            match self.ring.submit() {
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                _ => return,
            }
        }
    }

    /// Requests cancellation of one operation (`IORING_OP_ASYNC_CANCEL` by user data).
    ///
    /// The `OpRef` is weak, so while the caller holds it the operation's address (its
    /// `user_data`) cannot be reused by another operation; the strong reference taken here
    /// keeps it until the cancel request has been submitted.
    pub(crate) fn cancel(&self, op: &OpRef<C>) -> io::Result<()> {
        let Some(op) = op.upgrade() else {
            return Err(not_found());
        };
        op.cancel_requested.store(true, Ordering::SeqCst);
        let entry = opcode::AsyncCancel2::new(types::CancelBuilder::user_data(op.user_data()))
            .build()
            .user_data(CANCEL);
        self.push(&entry, true)?;
        self.submit_now_ignoring_batch();
        drop(op);
        Ok(())
    }

    /// Requests cancellation of every operation on a descriptor
    /// (`IORING_OP_ASYNC_CANCEL` with `IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL`).
    pub(crate) fn cancel_fd(&self, handle: &Descriptor) -> io::Result<()> {
        handle.bump_cancel_epoch();
        let fd = types::Fd(handle.fd.as_raw_fd());
        let entry = opcode::AsyncCancel2::new(types::CancelBuilder::fd(fd).all()).build().user_data(CANCEL);
        self.push(&entry, true)?;
        self.submit_now_ignoring_batch();
        Ok(())
    }

    /// Refuses new submissions and cancels everything in flight
    /// (`IORING_ASYNC_CANCEL_ANY`), in one critical section with submission so that no
    /// operation slips in after the cancel.
    pub(crate) fn close(&self) {
        {
            let mut closed = lock(&self.sq);
            if *closed {
                return;
            }
            *closed = true;
        }
        let entry = opcode::AsyncCancel2::new(types::CancelBuilder::any()).build().user_data(CANCEL);
        // SQEs are consumed in order, so every operation pushed before `closed` was set is
        // ahead of this cancel.
        if let Err(e) = self.push(&entry, true) {
            tracing::warn!(error = %e, "could not queue the close-time cancel");
        }
        self.submit_now_ignoring_batch();
    }
}

impl<C> Drop for Uring<C> {
    fn drop(&mut self) {
        // 0. The sentry shares the ring: stop it and wait until it has let go.
        self.sentry.stop();
        if let Some(Some(thread)) = self.sentry_thread.take() {
            let _ = thread.join();
        }
        let Some(ring) = Arc::get_mut(&mut self.ring) else {
            // Unreachable (the sentry was the only other owner). Never free what the
            // kernel may still write: leak the operations in flight instead.
            tracing::error!("io_uring ring still shared at drop; leaking its operations");
            return;
        };
        // 1. No new operations: nothing else holds the ring any more (we are in its drop).
        // 2. Cancel everything still in flight.
        let cancel = opcode::AsyncCancel2::new(types::CancelBuilder::any()).build().user_data(CANCEL);
        let _ = ring.submission().push_cancel(&cancel);
        // 3. Reap until every operation has come back; each op is dropped here, once.
        let mut idle_rounds = 0u32;
        while *self.in_flight.get_mut() > 0 {
            let ts = timespec(Duration::from_millis(100));
            let args = types::SubmitArgs::new().timespec(&ts);
            let _ = ring.submitter().submit_with_args(1, &args);
            let mut reaped = 0usize;
            for cqe in ring.completion() {
                match cqe.user_data() {
                    WAKE | CANCEL => {}
                    user_data => {
                        // SAFETY: as in `reap`: this CQE hands back the kernel's reference.
                        let op = unsafe { op::from_user_data::<C>(user_data) };
                        drop(op::complete(op, cqe.result()));
                        reaped += 1;
                    }
                }
            }
            *self.in_flight.get_mut() -= reaped;
            idle_rounds = if reaped == 0 { idle_rounds + 1 } else { 0 };
            if idle_rounds > 0 && idle_rounds.is_multiple_of(50) {
                // Something ignores cancellation (an uninterruptible file read): keep
                // waiting rather than free memory the kernel may still write.
                tracing::warn!(
                    in_flight = *self.in_flight.get_mut(),
                    "waiting for io_uring operations to finish"
                );
                let _ = ring.submission().push_cancel(&cancel);
            }
        }
        // 4. The ring is unmapped and closed when this returns: nothing references it.
    }
}

/// Hands every queued SQE to the kernel. A transient failure leaves them queued (and
/// counted in `deferred`): the next enter by any thread (the waiting thread's included)
/// submits them.
fn submit_queued(ring: &IoUring, deferred: &AtomicUsize) {
    deferred.store(0, Ordering::SeqCst);
    loop {
        match ring.submit() {
            Ok(_) => return,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) => {
                // The kernel pushes back (completions overflowing): they are read soon,
                // and the next enter, the poller's included, submits what is queued.
                tracing::debug!(error = %e, "io_uring submit deferred");
                deferred.fetch_add(1, Ordering::SeqCst);
                return;
            }
        }
    }
}

/// Pushing through `&mut IoUring` (used only by `Drop`, which has exclusive access).
trait PushCancel {
    fn push_cancel(&mut self, entry: &squeue::Entry) -> io::Result<()>;
}

impl PushCancel for io_uring::SubmissionQueue<'_> {
    fn push_cancel(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        // SAFETY: a cancel entry references no memory.
        unsafe { self.push(entry) }.map_err(|_| io::Error::from(io::ErrorKind::WouldBlock))
    }
}

fn timespec(d: Duration) -> types::Timespec {
    // Far deadlines are clamped; the port loops until its own deadline passes.
    let d = d.min(Duration::from_secs(i32::MAX as u64));
    types::Timespec::new().sec(d.as_secs()).nsec(d.subsec_nanos())
}

fn is_transient(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EINTR | libc::EAGAIN | libc::EBUSY))
}

fn not_found() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "no such operation is pending")
}
