//! The readiness backend: epoll, for where io_uring is refused.
//!
//! The same contract as io_uring (`sys/mod.rs`), built from readiness:
//!
//! * **Per descriptor** ([`FdState`]): a socket, pipe or other pollable descriptor is made
//!   non-blocking and added to the epoll set once, at association, edge-triggered for
//!   `EPOLLIN | EPOLLOUT | EPOLLRDHUP`. Its operations wait in two FIFO queues, one per
//!   direction (receives, accepts and reads; sends, connects and writes), each with a
//!   *ready* flag: set by every readiness event, cleared only when an attempt at the
//!   queue's first operation answers `EAGAIN`, both under the descriptor's lock. So an
//!   edge is never lost: either the queue was empty when it came (the flag stays set and
//!   the next submission tries at once) or an operation is queued and is tried now.
//! * **Who performs the system call**: the thread that learns the descriptor is ready.
//!   That is the port's poller (the one thread in `epoll_wait`), which runs the ready
//!   queues' calls before it returns, so the packets it queues are complete and the
//!   worker that takes one does not enter the kernel for it (no extra thread hop, as with
//!   io_uring's completions). A submission whose queue is empty and whose descriptor is
//!   not known to be unready tries once itself: `EAGAIN` queues it (the common case for a
//!   receive) and anything else completes it at once, its packet queued for the poller.
//!   Shutdown and a pipe's `sync` complete at submission too; each still produces its
//!   packet through the port.
//! * **Regular files** (F3): epoll refuses them (`EPERM`), as readiness means nothing for
//!   them. Their operations run on a small pool of blocking threads owned by the backend
//!   ([`pool`], at most [`pool::MAX_THREADS`]), never on the port's workers; a pool
//!   thread queues the packet and wakes the poller.
//! * **Completions produced outside `wait`** (at submission, by a cancel, by the pool) go
//!   to the `ready` list, and the producer wakes the poller through an eventfd in the
//!   epoll set, only while a poller sleeps; a `notified` flag keeps that to one write per
//!   wake-up ([`wake`], checked under loom).
//! * **Cancel** removes a queued operation and completes it with `ECANCELED`; an operation
//!   the poller is running (under the descriptor's lock) or a file operation a pool thread
//!   has started finishes with its real result. Closing the port refuses new operations
//!   and cancels every queued one, atomically with submission: both take the descriptor's
//!   (or the pool's) lock and read `closed` there.
//!
//! Threads do not own operations here, so a submitting thread's exit changes nothing
//! (H4, H10 hold trivially).

mod attempt;
mod pool;
pub mod wake;

use self::attempt::{complete, is_probe, Done, Pending};
use self::wake::{Mailbox, Signal};
use super::{Descriptor, HandleState, OpData};
use crate::completion::Completion;
use crate::op::{FdKind, Request, SubmitError};
use crate::sync::lock_std as lock;
use rustix::event::epoll::{self, EventData, EventFlags};
use rustix::event::Timespec;
use rustix::io::Errno;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

/// The epoll token of the wake-up eventfd; descriptors get tokens from 1 on.
const WAKE: u64 = 0;
/// A zero timeout: `epoll_wait` looks and returns.
const ZERO: Timespec = Timespec { tv_sec: 0, tv_nsec: 0 };
/// Events read per `epoll_wait`.
const EVENTS: usize = 256;

/// The epoll backend of one port.
pub(crate) struct Epoll<C> {
    shared: Arc<Shared<C>>,
}

/// What the backend's threads (the port's, and the file pool's) share.
pub(crate) struct Shared<C> {
    epfd: OwnedFd,
    /// Set once by `close`: no new operations. Read under a descriptor's or the pool's
    /// lock by submissions, and set before `close` takes those locks.
    closed: AtomicBool,
    /// Registered descriptors by token, for routing events. Weak: a handle owns its state.
    fds: Mutex<HashMap<u64, Weak<FdState<C>>>>,
    next_token: AtomicU64,
    /// Completions produced outside `wait` (submission, cancel, the pool), and the wake
    /// protocol that brings the poller to them ([`wake`]). Its signal is an eventfd,
    /// registered in `epfd` (level-triggered) under [`WAKE`].
    mailbox: Mailbox<Completion<C>, EventFd>,
    /// Whether the next `wait` that finds the mailbox non-empty also looks at the
    /// descriptors (they alternate; see `Epoll::wait`).
    look_next: AtomicBool,
    /// Descriptors in the epoll set (sockets, pipes; not the pool's files). With none,
    /// a wait that finds completions in the mailbox has nothing else to look at.
    watched: AtomicUsize,
    /// Operations accepted whose completion the port has not yet queued.
    in_flight: AtomicUsize,
    pool: pool::Pool<C>,
}

/// The backend's state for one descriptor, held by its handle (as a [`HandleState`]).
pub(crate) struct FdState<C> {
    token: u64,
    /// epoll refused the descriptor (a regular file): its operations go to the pool.
    pooled: bool,
    shared: Weak<Shared<C>>,
    q: Mutex<Queues<C>>,
}

struct Queues<C> {
    /// Zero-byte receives (N6): each completes at the next readability, whatever the
    /// receive queue does, as independent polls do on io_uring.
    probes: Vec<Pending<C>>,
    read: VecDeque<Pending<C>>,
    write: VecDeque<Pending<C>>,
    /// The descriptor may be readable: set by readiness, cleared by `EAGAIN`.
    read_ready: bool,
    /// The descriptor may be writable: set by readiness, cleared by `EAGAIN`.
    write_ready: bool,
}

impl<C> Queues<C> {
    /// One direction's queue and its ready flag: receives (`read`) or sends.
    fn lane(&mut self, read: bool) -> (&mut VecDeque<Pending<C>>, &mut bool) {
        if read {
            (&mut self.read, &mut self.read_ready)
        } else {
            (&mut self.write, &mut self.write_ready)
        }
    }
}

impl<C> Drop for FdState<C> {
    fn drop(&mut self) {
        // The handle is going and its descriptor closes next, which removes it from the
        // epoll set; forget its token.
        if let Some(sh) = self.shared.upgrade() {
            lock(&sh.fds).remove(&self.token);
            if !self.pooled {
                sh.watched.fetch_sub(1, SeqCst);
            }
        }
    }
}

/// A reference to an operation in flight, for cancellation. Holds neither its buffer nor
/// its context.
pub(crate) struct OpRef<C> {
    mark: Weak<()>,
    home: Weak<FdState<C>>,
}

impl<C> OpRef<C> {
    pub(crate) fn is_done(&self) -> bool {
        self.mark.strong_count() == 0
    }
}

/// Where an operation waits.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    /// For readability.
    Read,
    /// For writability.
    Write,
    /// Nowhere: it completes at submission.
    Inline,
    /// On the file pool.
    Pool,
}

fn side(request: &Request, pooled: bool) -> Side {
    match request {
        Request::ReadAt { .. } | Request::WriteAt { .. } | Request::Sync { .. } if pooled => Side::Pool,
        Request::Sync { .. } | Request::Shutdown { .. } => Side::Inline,
        Request::ReadAt { .. } | Request::Recv | Request::RecvFrom | Request::Accept => Side::Read,
        Request::WriteAt { .. } | Request::Send | Request::SendTo { .. } | Request::Connect { .. } => {
            Side::Write
        }
    }
}

fn closed_refusal<C>(data: OpData<C>) -> SubmitError<C> {
    SubmitError::new(super::closed_error(), data.context, data.buffer)
}

fn not_found() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "no such operation is pending")
}

impl<C: Send + 'static> Epoll<C> {
    pub(crate) fn new() -> io::Result<Self> {
        let epfd = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        let eventfd = rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        )?;
        epoll::add(&epfd, &eventfd, EventData::new_u64(WAKE), EventFlags::IN)?;
        tracing::debug!("epoll backend created");
        Ok(Self {
            shared: Arc::new(Shared {
                epfd,
                closed: AtomicBool::new(false),
                fds: Mutex::new(HashMap::new()),
                next_token: AtomicU64::new(WAKE + 1),
                mailbox: Mailbox::new(EventFd(eventfd)),
                look_next: AtomicBool::new(false),
                watched: AtomicUsize::new(0),
                in_flight: AtomicUsize::new(0),
                pool: pool::Pool::new(),
            }),
        })
    }

    /// Prepares a descriptor being associated: adds it to the epoll set (edge-triggered)
    /// and makes it non-blocking, or, if epoll refuses it (a regular file), marks it for
    /// the file pool.
    pub(crate) fn register(&self, fd: BorrowedFd<'_>, kind: FdKind) -> io::Result<HandleState> {
        let sh = &self.shared;
        let token = sh.next_token.fetch_add(1, SeqCst);
        let interest = EventFlags::IN | EventFlags::OUT | EventFlags::RDHUP | EventFlags::ET;
        let pooled = match epoll::add(&sh.epfd, fd, EventData::new_u64(token), interest) {
            Ok(()) => false,
            Err(Errno::PERM) if kind == FdKind::File => true,
            Err(e) => return Err(e.into()),
        };
        if !pooled {
            let set_nonblocking = rustix::fs::fcntl_getfl(fd).and_then(|flags| {
                if flags.contains(rustix::fs::OFlags::NONBLOCK) {
                    Ok(())
                } else {
                    rustix::fs::fcntl_setfl(fd, flags | rustix::fs::OFlags::NONBLOCK)
                }
            });
            if let Err(e) = set_nonblocking {
                let _ = epoll::delete(&sh.epfd, fd);
                return Err(e.into());
            }
        }
        let state = Arc::new(FdState {
            token,
            pooled,
            shared: Arc::downgrade(sh),
            q: Mutex::new(Queues {
                probes: Vec::new(),
                read: VecDeque::new(),
                write: VecDeque::new(),
                // Unknown until an attempt says otherwise: try.
                read_ready: true,
                write_ready: true,
            }),
        });
        lock(&sh.fds).insert(token, Arc::downgrade(&state));
        if !pooled {
            sh.watched.fetch_add(1, SeqCst);
        }
        Ok(Box::new(state))
    }

    /// Starts one operation. See the module documentation for who performs its call.
    pub(crate) fn submit(&self, data: OpData<C>) -> Result<OpRef<C>, SubmitError<C>> {
        let sh = &self.shared;
        let Some(fs) = fd_state::<C>(&data.handle).cloned() else {
            let e = io::Error::other("the descriptor was not registered with the epoll backend");
            return Err(SubmitError::new(e, data.context, data.buffer));
        };
        let home = Arc::downgrade(&fs);
        match side(&data.request, fs.pooled) {
            Side::Pool => sh.pool.submit(sh, data, home).map_err(|(e, data)| {
                SubmitError::new(e.unwrap_or_else(super::closed_error), data.context, data.buffer)
            }),
            Side::Inline => {
                if sh.closed.load(SeqCst) {
                    return Err(closed_refusal(data));
                }
                sh.in_flight.fetch_add(1, SeqCst);
                let mut p = Pending::new(data);
                let op_ref = OpRef { mark: Arc::downgrade(&p.mark), home };
                // Shutdown and sync never answer `EAGAIN`; if one did, it would be its result.
                let done = attempt::attempt(&mut p).unwrap_or_else(Done::would_block);
                sh.push_one(complete(p.data, done));
                Ok(op_ref)
            }
            dir => {
                let mut q = lock(&fs.q);
                if sh.closed.load(SeqCst) {
                    return Err(closed_refusal(data));
                }
                let q = &mut *q;
                if is_probe(&data) {
                    sh.in_flight.fetch_add(1, SeqCst);
                    let mut p = Pending::new(data);
                    let op_ref = OpRef { mark: Arc::downgrade(&p.mark), home };
                    // Readable now (a peek finds data, end of stream or an error)? Else it
                    // waits for the next readability; a peek's `EAGAIN` is as good as a
                    // receive's for the flag.
                    if q.read_ready {
                        match attempt::attempt(&mut p) {
                            Some(done) => {
                                sh.push_one(complete(p.data, done));
                                return Ok(op_ref);
                            }
                            None => q.read_ready = false,
                        }
                    }
                    q.probes.push(p);
                    return Ok(op_ref);
                }
                let (queue, ready) = q.lane(dir == Side::Read);
                // First in line and the descriptor may be ready (or a connect to start):
                // one attempt, before the operation is marked and queued, so that one
                // that completes costs no allocation.
                let (mut data, mut connecting) = (data, false);
                let starts_connect = matches!(data.request, Request::Connect { .. });
                if queue.is_empty() && (*ready || starts_connect) {
                    match attempt::attempt_op(&mut data, &mut connecting) {
                        Some(done) => {
                            sh.in_flight.fetch_add(1, SeqCst);
                            sh.push_one(complete(data, done));
                            // Already complete: a reference that says so (no cancel finds it).
                            return Ok(OpRef { mark: Weak::new(), home });
                        }
                        None => *ready = false,
                    }
                }
                sh.in_flight.fetch_add(1, SeqCst);
                let p = Pending { data, mark: Arc::new(()), connecting };
                let op_ref = OpRef { mark: Arc::downgrade(&p.mark), home };
                queue.push_back(p);
                Ok(op_ref)
            }
        }
    }

    /// Starts a socket send or receive eagerly (skip-on-success; `Driver::submit_eager`).
    /// First in line on a descriptor that may be ready, it is attempted on the caller's
    /// request and buffer, before any operation exists: a result comes back with nothing
    /// allocated, cloned or counted. Otherwise (`EAGAIN`, or the descriptor known not to be
    /// ready: its flag, set by every event and cleared by `EAGAIN`, says so, and no system
    /// call is made; or operations already waiting in the same direction, which it must
    /// not overtake) `make` builds the operation and it is queued, under the same hold of
    /// the descriptor's lock as the attempt, so that no event can slip between them.
    pub(crate) fn submit_eager(
        &self,
        desc: &super::Descriptor,
        mut request: Request,
        buffer: crate::buffer::Buffer,
        context: C,
        make: impl FnOnce(Request, Option<crate::buffer::Buffer>, C) -> OpData<C>,
    ) -> Result<super::Eager<C>, SubmitError<C>> {
        let Some(fs) = fd_state::<C>(desc) else {
            let e = io::Error::other("the descriptor was not registered with the epoll backend");
            return Err(SubmitError::new(e, context, Some(buffer)));
        };
        let dir = side(&request, fs.pooled);
        if !matches!(dir, Side::Read | Side::Write) {
            // Not a socket send or receive: a plain submission (the count `make` took is
            // given back if it is refused).
            return self
                .submit(make(request, Some(buffer), context))
                .map(|r| super::Eager::Pending(super::OpRef::Epoll(r)))
                .inspect_err(|_| desc.op_finished());
        }
        let sh = &self.shared;
        let mut q = lock(&fs.q);
        if sh.closed.load(SeqCst) {
            return Err(SubmitError::new(super::closed_error(), context, Some(buffer)));
        }
        let q = &mut *q;
        let (queue, ready) = q.lane(dir == Side::Read);
        let mut buffer = Some(buffer);
        if queue.is_empty() && *ready {
            let mut connecting = false;
            match attempt::attempt_parts(desc.fd.as_fd(), &mut request, &mut buffer, &mut connecting) {
                Some(done) => {
                    return match buffer {
                        Some(buf) => Ok(super::Eager::Immediate(done.result, buf, context)),
                        None => {
                            Err(SubmitError::new(io::Error::other("the buffer went missing"), context, None))
                        }
                    };
                }
                None => *ready = false,
            }
        }
        sh.in_flight.fetch_add(1, SeqCst);
        let p = Pending::new(make(request, buffer, context));
        let op_ref = OpRef { mark: Arc::downgrade(&p.mark), home: Arc::downgrade(fs) };
        queue.push_back(p);
        Ok(super::Eager::Pending(super::OpRef::Epoll(op_ref)))
    }

    /// One attempt on the caller's memory (`Driver::try_io`): refused with `WouldBlock`,
    /// and no system call made, while an operation of the same direction is queued (it
    /// must not be overtaken). Otherwise the call is made even when the ready flag says
    /// the descriptor is not ready: the flag learns of new data only when a thread polls
    /// the port, and a caller that retries without polling must still see it arrive. An
    /// `EAGAIN` clears the flag, under the descriptor's lock, as every attempt does.
    pub(crate) fn try_io(
        &self,
        desc: &Descriptor,
        receive: bool,
        call: impl FnMut(BorrowedFd<'_>) -> rustix::io::Result<usize>,
    ) -> io::Result<usize> {
        let Some(fs) = fd_state::<C>(desc) else {
            return Err(io::Error::other("the descriptor was not registered with the epoll backend"));
        };
        let mut q = lock(&fs.q);
        if self.shared.closed.load(SeqCst) {
            return Err(super::closed_error());
        }
        let q = &mut *q;
        let (queue, ready) = q.lane(receive);
        if !queue.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let r = super::eager::try_call(desc.fd.as_fd(), call);
        if r.as_ref().is_err_and(|e| e.kind() == io::ErrorKind::WouldBlock) {
            *ready = false;
        }
        r
    }

    /// Nothing is ever deferred: every submission reaches the kernel (or its queue) at once.
    pub(crate) fn flush(&self) {}

    /// Submissions are not batched on this backend: each is tried when it is made.
    pub(crate) fn batch<R>(&self, f: impl FnOnce() -> R) -> R {
        f()
    }

    /// Blocks in `epoll_wait` until a descriptor is ready, a wake-up comes or `deadline`
    /// passes; performs the ready operations' calls and returns their completions, with
    /// those produced elsewhere meanwhile.
    pub(crate) fn wait(&self, deadline: Option<Instant>, out: &mut Vec<Completion<C>>) -> io::Result<()> {
        let sh = &*self.shared;
        if sh.mailbox.has_ready() {
            // Completions produced outside the wait are there: take them without a system
            // call, if no descriptor is watched (only files: nothing else can be ready), or
            // every other time; the other time look at the descriptors as well (without
            // blocking), so that a steady stream of such completions cannot keep the
            // descriptors' events waiting. (A port wake-up raised meanwhile stays raised
            // for the next `epoll_wait`.)
            if sh.watched.load(SeqCst) == 0 || !sh.look_next.fetch_xor(true, SeqCst) {
                sh.mailbox.collect(false, out);
                return Ok(());
            }
            return self.poll(Some(ZERO), false, out);
        }
        let timeout = deadline.map(|d| {
            let left = d.saturating_duration_since(Instant::now());
            // Far deadlines are clamped; the port loops until its own deadline passes.
            let secs = left.as_secs().min(i32::MAX as u64) as i64;
            Timespec { tv_sec: secs, tv_nsec: i64::from(left.subsec_nanos()) }
        });
        if timeout.is_some_and(|t| t.tv_sec == 0 && t.tv_nsec == 0) || !sh.mailbox.begin_sleep() {
            return self.poll(Some(ZERO), false, out);
        }
        self.poll(timeout, true, out)
    }

    /// Hands up to `max` completions already produced outside `wait` to `put`, without a
    /// system call, and returns how many; the port then counts them as delivered. Only
    /// while no descriptor is watched (a port with files alone): then nothing but the
    /// mailbox can have completions, and taking them here skips nothing a poller would
    /// have found. With descriptors watched, returns 0: `wait` alternates the mailbox
    /// with a look at them, so that a steady stream of inline completions cannot keep
    /// their events waiting.
    pub(crate) fn take_ready(&self, max: usize, put: impl FnMut(Completion<C>)) -> usize {
        let sh = &*self.shared;
        if sh.watched.load(SeqCst) != 0 {
            return 0;
        }
        sh.mailbox.take_up_to(max, put)
    }

    /// Collects what is ready without blocking.
    pub(crate) fn peek(&self, out: &mut Vec<Completion<C>>) -> io::Result<()> {
        self.poll(Some(ZERO), false, out)
    }

    /// One `epoll_wait`, then the ready descriptors' calls and the mailbox. `sleeping`: the
    /// caller announced itself with `Mailbox::begin_sleep` (it may block), and is counted
    /// out as soon as the wait returns.
    fn poll(
        &self,
        timeout: Option<Timespec>,
        sleeping: bool,
        out: &mut Vec<Completion<C>>,
    ) -> io::Result<()> {
        let sh = &*self.shared;
        let mut buf = [MaybeUninit::<epoll::Event>::uninit(); EVENTS];
        let waited = epoll::wait(&sh.epfd, &mut buf, timeout.as_ref());
        if sleeping {
            sh.mailbox.end_sleep();
        }
        let events: &[epoll::Event] = match waited {
            Ok((events, _)) => events,
            Err(Errno::INTR) => &[],
            Err(e) => return Err(e.into()),
        };
        let mut woken = false;
        let mut ready = Vec::with_capacity(events.len());
        {
            let fds = lock(&sh.fds);
            for ev in events {
                let (token, flags) = (ev.data.u64(), ev.flags);
                if token == WAKE {
                    woken = true;
                } else if let Some(fs) = fds.get(&token).and_then(Weak::upgrade) {
                    ready.push((fs, flags));
                }
            }
        }
        // The map's lock is released before any `FdState` is dropped (its drop takes it).
        for (fs, flags) in &ready {
            fs.on_ready(*flags, out);
        }
        drop(ready);
        // Consumes the eventfd (if it woke us) before allowing new wake-ups, then takes
        // what was produced elsewhere (see `wake` for why in this order).
        sh.mailbox.collect(woken, out);
        Ok(())
    }

    /// Makes a thread blocked in `wait` return.
    pub(crate) fn wake(&self) {
        self.shared.wake();
    }

    /// Cancels one queued operation: it completes with `ECANCELED`. One that is running
    /// (its call under way, or a file operation on the pool) finishes with its result.
    pub(crate) fn cancel(&self, op: &OpRef<C>) -> io::Result<()> {
        let Some(mark) = op.mark.upgrade() else { return Err(not_found()) };
        let Some(fs) = op.home.upgrade() else { return Err(not_found()) };
        let sh = &self.shared;
        let found = if fs.pooled {
            sh.pool.remove(|p| Arc::ptr_eq(&p.mark, &mark))
        } else {
            let mut q = lock(&fs.q);
            let q = &mut *q;
            let mut found = Vec::new();
            if let Some(i) = q.probes.iter().position(|p| Arc::ptr_eq(&p.mark, &mark)) {
                found.push(q.probes.remove(i));
            }
            for queue in [&mut q.read, &mut q.write] {
                if let Some(i) = queue.iter().position(|p| Arc::ptr_eq(&p.mark, &mark)) {
                    found.extend(queue.remove(i));
                }
            }
            found
        };
        drop(mark);
        sh.push_ready(found.into_iter().map(|p| complete(p.data, Done::cancelled())).collect());
        Ok(())
    }

    /// Cancels every queued operation of a descriptor.
    pub(crate) fn cancel_fd(&self, handle: &Descriptor) -> io::Result<()> {
        let Some(fs) = fd_state::<C>(handle) else { return Err(not_found()) };
        let sh = &self.shared;
        let found = if fs.pooled {
            sh.pool.remove(|p| std::ptr::eq(Arc::as_ptr(&p.data.handle), handle))
        } else {
            fs.take_all()
        };
        sh.push_ready(found.into_iter().map(|p| complete(p.data, Done::cancelled())).collect());
        Ok(())
    }

    /// Refuses new operations and cancels every queued one (P10).
    pub(crate) fn close(&self) {
        let sh = &self.shared;
        if sh.closed.swap(true, SeqCst) {
            return;
        }
        let fds: Vec<Arc<FdState<C>>> = lock(&sh.fds).values().filter_map(Weak::upgrade).collect();
        let mut found: Vec<Pending<C>> = Vec::new();
        for fs in &fds {
            found.extend(fs.take_all());
        }
        found.extend(sh.pool.close());
        sh.push_ready(found.into_iter().map(|p| complete(p.data, Done::cancelled())).collect());
        drop(fds);
        sh.wake();
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.shared.in_flight.load(SeqCst)
    }

    pub(crate) fn delivered(&self, n: usize) {
        self.shared.in_flight.fetch_sub(n, SeqCst);
    }
}

impl<C> Drop for Epoll<C> {
    fn drop(&mut self) {
        // Refuse and cancel (P10); a file operation a pool thread has started finishes
        // first: the pool's threads are joined before the completions are freed.
        let sh = &self.shared;
        if !sh.closed.swap(true, SeqCst) {
            let fds: Vec<Arc<FdState<C>>> = lock(&sh.fds).values().filter_map(Weak::upgrade).collect();
            for fs in &fds {
                drop(fs.take_all());
            }
            drop(fds);
        }
        drop(sh.pool.close());
        sh.pool.join();
        // What is left in `ready` is dropped with `shared`, each context once.
    }
}

impl<C> FdState<C> {
    /// Removes every queued operation (for a cancel).
    fn take_all(&self) -> Vec<Pending<C>> {
        let mut q = lock(&self.q);
        let mut all: Vec<Pending<C>> = q.probes.drain(..).collect();
        all.extend(q.read.drain(..));
        all.extend(q.write.drain(..));
        all
    }

    /// A readiness event: performs the calls of the operations it lets run, in queue order.
    fn on_ready(&self, flags: EventFlags, out: &mut Vec<Completion<C>>) {
        let mut q = lock(&self.q);
        let q = &mut *q;
        if flags.intersects(
            EventFlags::IN | EventFlags::PRI | EventFlags::RDHUP | EventFlags::HUP | EventFlags::ERR,
        ) {
            q.read_ready = true;
            // Readable at this moment: every zero-byte receive waiting completes (N6),
            // before the receives below take the data.
            out.extend(q.probes.drain(..).map(|p| complete(p.data, Done::ok())));
        }
        if flags.intersects(EventFlags::OUT | EventFlags::HUP | EventFlags::ERR) {
            q.write_ready = true;
        }
        run_queue(&mut q.read, &mut q.read_ready, out);
        run_queue(&mut q.write, &mut q.write_ready, out);
    }
}

/// Runs a queue's operations from the front while the descriptor is ready for them.
fn run_queue<C>(queue: &mut VecDeque<Pending<C>>, ready: &mut bool, out: &mut Vec<Completion<C>>) {
    while *ready {
        let Some(front) = queue.front_mut() else { break };
        match attempt::attempt(front) {
            None => *ready = false,
            Some(done) => {
                if let Some(p) = queue.pop_front() {
                    out.push(complete(p.data, done));
                }
            }
        }
    }
}

impl<C> Shared<C> {
    /// Queues completions produced outside `wait` and wakes the poller.
    fn push_ready(&self, completions: Vec<Completion<C>>) {
        self.mailbox.push(completions);
    }

    /// Queues one completion produced outside `wait` and wakes the poller.
    fn push_one(&self, completion: Completion<C>) {
        self.mailbox.push_one(completion);
    }

    fn wake(&self) {
        self.mailbox.wake();
    }
}

/// The poller's wake-up signal: a non-blocking eventfd in the epoll set.
struct EventFd(OwnedFd);

impl Signal for EventFd {
    fn raise(&self) {
        // Only `EAGAIN` (the counter at its maximum, so already readable) can fail here.
        let _ = rustix::io::write(&self.0, &1u64.to_ne_bytes());
    }

    fn consume(&self) {
        // `EAGAIN` if a level-triggered report raced an earlier read: nothing to consume.
        let mut counter = [0u8; 8];
        let _ = rustix::io::read(&self.0, &mut counter);
    }
}

/// The epoll state of a handle, if the handle was registered with this backend.
fn fd_state<C: Send + 'static>(handle: &Descriptor) -> Option<&Arc<FdState<C>>> {
    handle.state.as_ref()?.downcast_ref::<Arc<FdState<C>>>()
}
