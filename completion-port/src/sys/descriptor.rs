//! What a backend knows of an associated descriptor: the data the front end (`handle.rs`)
//! passes down, so that the backends depend on nothing above `sys/`.

use super::HandleState;
use crate::op::FdKind;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

/// An associated descriptor, shared by its handle and by every operation in flight on it:
/// the descriptor is closed only when the last of them lets go (H6, H7).
///
/// Fields drop in declaration order: `_on_drop` first (the front end forgets the number
/// while it is still open, so that it cannot be reused under it), then the backend's
/// `state` (which may still need the descriptor, e.g. to leave an epoll set), then `fd`.
pub(crate) struct Descriptor {
    /// Dropped first, before anything else of the descriptor: the front end's hook.
    _on_drop: Option<Box<dyn Send + Sync>>,
    /// The backend's state for this descriptor, if it keeps any (epoll: its queues).
    pub(crate) state: Option<HandleState>,
    pub(crate) fd: OwnedFd,
    pub(crate) kind: FdKind,
    /// The key every packet of this descriptor carries.
    pub(crate) key: usize,
    /// Operations accepted and not yet completed.
    pending: AtomicUsize,
    /// Incremented by every "cancel all" (and handle close) before its cancel request is
    /// queued; an operation that the kernel cancels while its epoch still matches was not
    /// cancelled by us (its submitting thread exited) and is restarted (docs/semantics.md H4).
    cancel_epoch: AtomicU32,
}

impl Descriptor {
    pub(crate) fn new(
        fd: OwnedFd,
        kind: FdKind,
        key: usize,
        state: Option<HandleState>,
        on_drop: Option<Box<dyn Send + Sync>>,
    ) -> Self {
        Self {
            _on_drop: on_drop,
            state,
            fd,
            kind,
            key,
            pending: AtomicUsize::new(0),
            cancel_epoch: AtomicU32::new(0),
        }
    }

    /// An operation of this descriptor was accepted (or is about to be submitted).
    pub(crate) fn op_started(&self) {
        self.pending.fetch_add(1, Ordering::SeqCst);
    }

    /// An operation of this descriptor produced its packet (or was refused).
    pub(crate) fn op_finished(&self) {
        self.pending.fetch_sub(1, Ordering::SeqCst);
    }

    /// Operations accepted and not yet completed.
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }

    /// The current cancel epoch.
    pub(crate) fn cancel_epoch(&self) -> u32 {
        self.cancel_epoch.load(Ordering::SeqCst)
    }

    /// Marks every operation submitted so far as cancelled by us.
    pub(crate) fn bump_cancel_epoch(&self) {
        self.cancel_epoch.fetch_add(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Descriptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::os::fd::AsRawFd;
        f.debug_struct("Descriptor")
            .field("fd", &self.fd.as_raw_fd())
            .field("kind", &self.kind)
            .field("key", &self.key)
            .field("pending", &self.pending())
            .finish_non_exhaustive()
    }
}
