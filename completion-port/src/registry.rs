//! The descriptors associated with one port (docs/semantics.md H1: associating one twice is
//! an error). Shared by the port, which owns it, and the handles, which enter and leave it.

use std::collections::HashSet;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, Weak};

/// Descriptor numbers currently associated with one port.
#[derive(Default)]
pub(crate) struct Registry {
    fds: Mutex<HashSet<RawFd>>,
}

impl Registry {
    /// Records `fd`; returns an entry that forgets it when dropped, or `None` if the number
    /// is already associated with this port.
    pub(crate) fn enter(self: &Arc<Self>, fd: RawFd) -> Option<Entry> {
        crate::sync::lock_std(&self.fds).insert(fd).then(|| Entry { registry: Arc::downgrade(self), fd })
    }
}

/// One descriptor's place in a [`Registry`]; dropping it forgets the number. It must be
/// dropped before the descriptor is closed: once closed, the number may be reused at once.
pub(crate) struct Entry {
    registry: Weak<Registry>,
    fd: RawFd,
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Some(reg) = self.registry.upgrade() {
            crate::sync::lock_std(&reg.fds).remove(&self.fd);
        }
    }
}
