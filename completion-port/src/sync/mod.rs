//! The synchronization primitives the port is built on, through one shim.
//!
//! Normal builds use `std` and a futex-based [`Parker`]; builds with `--cfg loom` swap in
//! loom's model-checked types so that `ci/loom.sh` can explore every interleaving of the
//! port's hand-off, LIFO release, concurrency accounting and close.

mod parker;

pub(crate) use parker::{Parker, Wake};

#[cfg(not(loom))]
pub(crate) use std::sync::{
    atomic::{AtomicU32, Ordering},
    Arc, Mutex, MutexGuard, Weak,
};

// The loom parker is built on loom's `Mutex` and `Condvar`; no atomics are needed here.
#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};

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
