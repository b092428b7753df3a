//! Which port the current thread counts as running on (docs/semantics.md P9).
//!
//! Windows ties a thread to the last completion port it waited on: from the moment `get`
//! hands it a packet until it calls `get` again (on that port or another) or exits, it
//! counts against that port's concurrency limit. We keep the same rule with one
//! thread-local record per thread. Its destructor runs at thread exit and returns the
//! thread's slot to the port, so a worker that dies never leaks concurrency.

use crate::sync::port_thread_local;
use std::cell::RefCell;

/// What a port does when a thread stops counting against it from outside `get`.
pub(crate) trait Account: Send + Sync {
    /// The thread stopped running on the port: decrement `running` and release waiters
    /// if packets are queued. Called without any port lock held.
    fn uncount(&self);
}

struct Assoc {
    /// The port's identity (its shared allocation's address, kept alive by `port`).
    id: usize,
    /// Whether this thread currently counts in the port's `running`.
    counted: bool,
    /// A weak reference: a thread's record never keeps a port alive.
    port: Box<dyn Account>,
}

impl Drop for Assoc {
    fn drop(&mut self) {
        if self.counted {
            self.port.uncount();
        }
    }
}

port_thread_local! {
    static CURRENT: RefCell<Option<Assoc>> = const { RefCell::new(None) };
}

/// Start of a wait on port `id`. Returns whether the thread was counted on that port; the
/// count then belongs to the caller, which either carries the slot into its next running
/// period (it takes a packet at once) or gives it back (`running` is decremented).
/// A count on another port is given back to that port first (outside any lock).
pub(crate) fn begin_wait(id: usize) -> bool {
    let other = with_current(Ok(false), |cur| {
        let mut cur = cur.borrow_mut();
        match cur.as_mut() {
            Some(a) if a.id == id => Ok(std::mem::replace(&mut a.counted, false)),
            _ => Err(cur.take()),
        }
    });
    match other {
        Ok(counted) => counted,
        Err(old) => {
            drop(old); // uncounts on the other port, no borrow or lock held
            false
        }
    }
}

/// The wait ended without a packet: the thread no longer belongs to any port.
pub(crate) fn end_wait(id: usize) {
    let old = with_current(None, |cur| {
        let mut cur = cur.borrow_mut();
        match cur.as_ref() {
            Some(a) if a.id == id && !a.counted => cur.take(),
            _ => None,
        }
    });
    drop(old);
}

/// The thread was handed a packet from port `id` (and `running` already counts it).
/// Returns false if the record could not be kept (the thread is exiting); the caller
/// must then give the count back itself.
pub(crate) fn set_counted(id: usize, port: impl FnOnce() -> Box<dyn Account>) -> bool {
    let old = with_current(Err(()), |cur| {
        let mut cur = cur.borrow_mut();
        match cur.as_mut() {
            Some(a) if a.id == id => {
                debug_assert!(!a.counted, "a thread is counted twice on one port");
                a.counted = true;
                Ok(None)
            }
            _ => Ok(cur.replace(Assoc { id, counted: true, port: port() })),
        }
    });
    match old {
        Ok(old) => {
            drop(old);
            true
        }
        Err(()) => false,
    }
}

/// If the thread counts on port `id`, stop counting it there (the caller decrements
/// `running`) and return true.
pub(crate) fn take_count(id: usize) -> bool {
    with_current(false, |cur| match cur.borrow_mut().as_mut() {
        Some(a) if a.id == id => std::mem::replace(&mut a.counted, false),
        _ => false,
    })
}

/// Whether the thread currently counts on port `id`.
pub(crate) fn is_counted(id: usize) -> bool {
    with_current(false, |cur| matches!(cur.borrow().as_ref(), Some(a) if a.id == id && a.counted))
}

/// Runs `f` on the record, or returns `default` once the thread's locals are being torn
/// down (a `get` from another thread-local's destructor simply counts nowhere).
fn with_current<R>(default: R, f: impl FnOnce(&RefCell<Option<Assoc>>) -> R) -> R {
    CURRENT.try_with(f).unwrap_or(default)
}
