//! The file pool: regular files on the epoll backend (docs/semantics.md F3).
//!
//! epoll cannot watch a regular file (readiness means nothing for it), so a file read,
//! write or sync runs as one blocking call on one of at most [`MAX_THREADS`] threads that
//! the backend owns and starts on demand. They are never the port's workers: a slow disk
//! blocks a pool thread, not a thread waiting on the port. A pool thread queues the
//! packet and wakes the poller. A queued file operation can be cancelled; one a pool
//! thread has started finishes with its result (as a running io_uring file read does).
//!
//! A read is first tried on the submitting thread with `preadv2(RWF_NOWAIT)`
//! ([`attempt::read_nowait`]): a page-cache hit completes there, with no thread hop;
//! anything else (not cached, a short read, no support for the flag) goes to the pool.

use super::attempt::{self, complete, Pending};
use super::{FdState, OpRef, Shared};
use crate::op::Request;
use crate::sync::lock_std as lock;
use crate::sys::OpData;
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::thread::JoinHandle;

/// The most threads one backend's file pool runs.
pub(crate) const MAX_THREADS: usize = 4;

pub(super) struct Pool<C> {
    st: Mutex<PoolState<C>>,
    /// Signalled when a job is queued or the pool shuts down.
    cv: Condvar,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

struct PoolState<C> {
    jobs: VecDeque<Pending<C>>,
    /// Threads started and not yet exited.
    started: usize,
    /// Threads waiting for a job.
    idle: usize,
    /// No new jobs (the port closed).
    closed: bool,
    /// The threads exit once the queue is empty (the backend is being dropped).
    shutdown: bool,
}

/// A refused job: the error (`None`: the port is closed) and the operation.
type Refused<C> = (Option<io::Error>, OpData<C>);

impl<C: Send + 'static> Pool<C> {
    pub(super) fn new() -> Self {
        Self {
            st: Mutex::new(PoolState {
                jobs: VecDeque::new(),
                started: 0,
                idle: 0,
                closed: false,
                shutdown: false,
            }),
            cv: Condvar::new(),
            threads: Mutex::new(Vec::new()),
        }
    }

    /// Queues a file operation, starting a thread if none is idle and the bound allows. A
    /// read is first tried here, on the submitting thread, with `RWF_NOWAIT`: served from
    /// the page cache, it completes without a pool hop (its packet goes to the mailbox
    /// like any other completion produced outside `wait`, where a running thread that
    /// finds the port's queue empty takes it, `Epoll::take_ready`), and its reference is
    /// to an operation already done (no mark to allocate: a cancel finds nothing, as it
    /// would a moment later anyway).
    pub(super) fn submit(
        &self,
        sh: &Arc<Shared<C>>,
        mut data: OpData<C>,
        home: Weak<FdState<C>>,
    ) -> Result<OpRef<C>, Refused<C>> {
        if matches!(data.request, Request::ReadAt { .. }) {
            // As an inline submission (`Side::Inline`): refused once the port is closed.
            if sh.closed.load(SeqCst) {
                return Err((None, data));
            }
            sh.in_flight.fetch_add(1, SeqCst);
            if let Some(done) = attempt::read_nowait(&mut data) {
                sh.push_one(complete(data, done));
                return Ok(OpRef { mark: Weak::new(), home });
            }
            // Not served from the cache: the pool takes it (and counts it again).
            sh.in_flight.fetch_sub(1, SeqCst);
        }
        let mut st = lock(&self.st);
        if st.closed || sh.closed.load(SeqCst) {
            return Err((None, data));
        }
        if st.idle == 0 && st.started < MAX_THREADS {
            let shared = Arc::clone(sh);
            match std::thread::Builder::new().name("cport-file".into()).spawn(move || worker(&shared)) {
                Ok(t) => {
                    st.started += 1;
                    lock(&self.threads).push(t);
                }
                Err(e) if st.started == 0 => return Err((Some(e), data)),
                Err(e) => tracing::debug!(error = %e, "could not start another file pool thread"),
            }
        }
        sh.in_flight.fetch_add(1, SeqCst);
        let p = Pending::new(data);
        let op_ref = OpRef { mark: Arc::downgrade(&p.mark), home };
        st.jobs.push_back(p);
        drop(st);
        self.cv.notify_one();
        Ok(op_ref)
    }

    /// Removes the queued jobs `pred` selects (for a cancel).
    pub(super) fn remove(&self, mut pred: impl FnMut(&Pending<C>) -> bool) -> Vec<Pending<C>> {
        let mut st = lock(&self.st);
        let mut taken = Vec::new();
        let mut kept = VecDeque::with_capacity(st.jobs.len());
        for p in st.jobs.drain(..) {
            if pred(&p) {
                taken.push(p);
            } else {
                kept.push_back(p);
            }
        }
        st.jobs = kept;
        taken
    }
}

impl<C> Pool<C> {
    /// Refuses new jobs and hands back the queued ones.
    pub(super) fn close(&self) -> Vec<Pending<C>> {
        let mut st = lock(&self.st);
        st.closed = true;
        st.jobs.drain(..).collect()
    }

    /// Stops the threads once they finish what they run, and waits for them.
    pub(super) fn join(&self) {
        lock(&self.st).shutdown = true;
        self.cv.notify_all();
        let threads = std::mem::take(&mut *lock(&self.threads));
        let me = std::thread::current().id();
        for t in threads {
            if t.thread().id() != me {
                let _ = t.join();
            }
        }
    }
}

fn worker<C: Send + 'static>(sh: &Shared<C>) {
    loop {
        let mut p = {
            let mut st = lock(&sh.pool.st);
            loop {
                if let Some(p) = st.jobs.pop_front() {
                    break p;
                }
                if st.shutdown {
                    st.started -= 1;
                    return;
                }
                st.idle += 1;
                st = sh.pool.cv.wait(st).unwrap_or_else(PoisonError::into_inner);
                st.idle -= 1;
            }
        };
        let done = attempt::run_blocking(&mut p);
        sh.push_one(complete(p.data, done));
    }
}
