//! Which thread submitted an operation, and whether that thread is still alive.
//!
//! io_uring ties each request to the task that submitted it. When that thread exits, the
//! kernel fails its pending requests with `ECANCELED`: pollable ones (sockets) when their
//! readiness fires, queued worker-pool ones (file writes, fsync) at once. The kernel also
//! answers `ECANCELED` when it cannot start a worker thread for offloaded work (under
//! `RLIMIT_NPROC` or a container's pids limit), while the submitting thread is alive. The
//! reaper tells the two apart with an [`Owner`] token taken at submission: only an
//! operation whose owner has exited is restarted (docs/semantics.md H10).
//!
//! A token is a slot (a leaked `AtomicU64`, reused by later threads) and the generation the
//! slot had when the thread took it. The thread's exit bumps the generation, before the
//! kernel sees the exit, so a token whose generation still matches belongs to a live
//! thread. Slots are recycled through a free list: memory grows with the most threads
//! alive at once, not with the number ever started.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Slots of exited threads, ready for new ones.
static FREE: Mutex<Vec<&'static AtomicU64>> = Mutex::new(Vec::new());
/// The slot of threads that submit while their thread-local storage is being torn down:
/// its generation (1) never equals a token's (0), so such owners count as exited.
static EXITING: AtomicU64 = AtomicU64::new(1);

/// The submitting thread of an operation, as a token that can be checked later.
#[derive(Clone, Copy)]
pub(crate) struct Owner {
    slot: &'static AtomicU64,
    generation: u64,
}

impl Owner {
    /// The calling thread.
    pub(crate) fn current() -> Self {
        SLOT.try_with(|s| Owner { slot: s.0, generation: s.0.load(Ordering::Relaxed) })
            .unwrap_or(Owner { slot: &EXITING, generation: 0 })
    }

    /// Whether the thread has not yet started to exit.
    pub(crate) fn is_alive(&self) -> bool {
        self.slot.load(Ordering::Acquire) == self.generation
    }
}

/// A live thread's slot; its destructor runs when the thread exits.
struct Slot(&'static AtomicU64);

impl Slot {
    fn take() -> Self {
        let recycled = crate::sync::lock_std(&FREE).pop();
        Slot(recycled.unwrap_or_else(|| Box::leak(Box::new(AtomicU64::new(0)))))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Release: pairs with `is_alive`'s acquire on the reaping thread.
        self.0.fetch_add(1, Ordering::Release);
        crate::sync::lock_std(&FREE).push(self.0);
    }
}

std::thread_local! {
    static SLOT: Slot = Slot::take();
}

#[cfg(test)]
mod tests {
    use super::Owner;

    #[test]
    fn a_token_outlives_its_thread_as_dead_and_slots_are_reused() {
        let here = Owner::current();
        assert!(here.is_alive());
        let there = std::thread::spawn(Owner::current).join().unwrap();
        assert!(!there.is_alive(), "the thread exited");
        // A new thread may reuse the slot with a new generation: the old token stays dead.
        let next = std::thread::spawn(|| {
            let o = Owner::current();
            assert!(o.is_alive());
            o
        })
        .join()
        .unwrap();
        assert!(!next.is_alive());
        assert!(!there.is_alive());
        assert!(here.is_alive());
    }
}
