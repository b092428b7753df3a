//! The synchronization primitives the port is built on, through one shim.
//!
//! Normal builds use `std` and a futex-based [`Parker`]; builds with `--cfg loom` swap in
//! loom's model-checked types so that `ci/loom.sh` can explore every interleaving of the
//! port's hand-off, LIFO release, concurrency accounting and close.

mod parker;

pub(crate) use parker::{Parker, Wake};

#[cfg(not(loom))]
pub(crate) use std::sync::{
    atomic::{fence, AtomicBool, AtomicU32, AtomicUsize, Ordering},
    Arc, Mutex, MutexGuard, Weak,
};

// The loom parker is built on loom's `Mutex` and `Condvar`; the port's own counters are
// loom atomics, so that loom explores their weak-memory behaviour too.
#[cfg(loom)]
pub(crate) use loom::sync::{
    atomic::{fence, AtomicBool, AtomicUsize, Ordering},
    Arc, Mutex, MutexGuard,
};

/// The port's packet queue: a lock-free, unbounded, linearizable FIFO (`push`, `pop`,
/// `is_empty`, `len`). Normal builds use crossbeam's segmented queue.
#[cfg(not(loom))]
pub(crate) use crossbeam_queue::SegQueue as Queue;

/// loom model of the packet queue: the same API over a loom `Mutex<VecDeque>`, so every
/// push and pop is a step loom schedules around. `is_empty` and `len` read a separate
/// loom atomic, without the mutex, as `SegQueue` reads its head and tail indices: loom
/// then also explores a getter that reads a stale "empty", which is what the port's
/// `SeqCst` fences must make harmless (see `port.rs`, `Inner::parked`).
#[cfg(loom)]
pub(crate) struct Queue<T> {
    items: Mutex<std::collections::VecDeque<T>>,
    /// `items.len()`, written under `items`' lock, read without it.
    len: AtomicUsize,
}

#[cfg(loom)]
impl<T> Queue<T> {
    pub(crate) fn new() -> Self {
        Self { items: Mutex::new(std::collections::VecDeque::new()), len: AtomicUsize::new(0) }
    }

    pub(crate) fn push(&self, value: T) {
        let mut items = lock(&self.items);
        items.push_back(value);
        self.len.store(items.len(), Ordering::Release);
    }

    pub(crate) fn pop(&self) -> Option<T> {
        let mut items = lock(&self.items);
        let value = items.pop_front();
        self.len.store(items.len(), Ordering::Release);
        value
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len.load(Ordering::Acquire) == 0
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }
}

/// Reads a counter for an observer (`running()`, or `drain` waiting for posts in
/// progress). Under loom, a read-modify-write: it always returns the newest value, where a
/// plain load may return an older one any number of times and make a spin loop that polls
/// it explode loom's search. Normal builds use a plain load (coherence makes it see new
/// values soon enough, and an observer must not write to the port's hot cache lines).
pub(crate) fn load_latest(a: &AtomicUsize) -> usize {
    #[cfg(loom)]
    {
        a.fetch_add(0, Ordering::SeqCst)
    }
    #[cfg(not(loom))]
    {
        a.load(Ordering::SeqCst)
    }
}

/// Lets other threads run while spinning on something that changes within a few
/// instructions (a `post` between its closed check and the end of its push).
pub(crate) fn spin_yield() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::thread::yield_now();
}

/// A weak reference to a port's shared state.
#[cfg(not(loom))]
pub(crate) fn downgrade<T>(a: &Arc<T>) -> Weak<T> {
    Arc::downgrade(a)
}

/// The address of an `Arc`'s value: a port's identity while any reference (strong or weak)
/// keeps the allocation.
#[cfg(not(loom))]
pub(crate) fn arc_addr<T>(a: &Arc<T>) -> usize {
    Arc::as_ptr(a) as *const () as usize
}

/// loom has no `Weak`; under loom the thread record keeps a strong reference instead,
/// which only delays the port's drop inside a model and changes no rule being checked.
#[cfg(loom)]
pub(crate) struct Weak<T>(Arc<T>);

#[cfg(loom)]
impl<T> Weak<T> {
    pub(crate) fn upgrade(&self) -> Option<Arc<T>> {
        Some(Arc::clone(&self.0))
    }
}

#[cfg(loom)]
pub(crate) fn downgrade<T>(a: &Arc<T>) -> Weak<T> {
    Weak(Arc::clone(a))
}

#[cfg(loom)]
pub(crate) fn arc_addr<T>(a: &Arc<T>) -> usize {
    &**a as *const T as *const () as usize
}

/// Locks `m`, ignoring poisoning: the port never runs user code while holding its lock,
/// so a poisoned lock can only come from a panic inside our own bookkeeping, after which
/// the state is still consistent (every mutation is a single push/pop).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Declares a thread-local through std or loom.
///
/// loom's `thread_local!` does not accept std's `const { .. }` initialiser, so under loom
/// that form is declared with the plain initialiser instead (same value, lazily made).
macro_rules! port_thread_local {
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = const { $init:expr };) => {
        #[cfg(not(loom))]
        std::thread_local!($(#[$attr])* $vis static $name: $t = const { $init };);
        #[cfg(loom)]
        loom::thread_local!($(#[$attr])* $vis static $name: $t = $init;);
    };
    ($($tt:tt)*) => {
        #[cfg(not(loom))]
        std::thread_local!($($tt)*);
        #[cfg(loom)]
        loom::thread_local!($($tt)*);
    };
}
pub(crate) use port_thread_local;

/// Locks a `std` mutex (one that loom never models: the backend's and the registry's),
/// ignoring poisoning for the same reason as [`lock`].
pub(crate) fn lock_std<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
