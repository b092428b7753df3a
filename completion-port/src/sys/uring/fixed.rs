//! Registered files: each associated descriptor gets a slot in the ring's file table, and
//! its operations name the slot instead of the descriptor (`IOSQE_FIXED_FILE`). The kernel
//! then skips looking the descriptor up and taking and dropping a reference to its file
//! on every operation (`fget`/`fput`, about 2 % of an echo server's CPU; docs/benchmarks.md).
//!
//! The table is registered sparse when the ring is made, with room for [`MAX_SLOTS`]
//! descriptors (fewer if `RLIMIT_NOFILE` is lower, which the kernel requires). A kernel
//! that refuses it, or a table that is full, leaves descriptors to plain numbers: nothing
//! else changes.
//!
//! A slot is held by the descriptor's backend state (`Descriptor::state`), which is
//! dropped only after the descriptor's last operation completed (H6, H7): so no SQE that
//! names the slot can still be waiting to be submitted when the slot is emptied and given
//! to another descriptor. Cancelling by descriptor (`cancel_fd`) names the plain number:
//! the kernel matches requests by their file, which the slot and the number share.

use crate::sync::lock_std as lock;
use io_uring::IoUring;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};

/// The most slots a ring's table has.
const MAX_SLOTS: u32 = 16_384;
/// Below this `RLIMIT_NOFILE`, no table is registered: it would hold too few to matter.
const MIN_SLOTS: u32 = 64;

/// `IORING_REGISTER_FILES_UPDATE` (kernel ABI).
const REGISTER_FILES_UPDATE: libc::c_uint = 6;

/// The kernel's `struct io_uring_files_update`.
#[repr(C)]
struct FilesUpdate {
    offset: u32,
    resv: u32,
    fds: u64,
}

/// A ring's table of registered files.
pub(crate) struct FixedFiles {
    /// A duplicate of the ring's descriptor, for updating slots: slots are emptied when
    /// their descriptor closes, which may be while the ring drops (the ring itself must
    /// then have no other owner, so the table cannot share it).
    ring: OwnedFd,
    /// Slots free for reuse, and the first never used.
    free: Mutex<(Vec<u32>, u32)>,
    size: u32,
}

/// One descriptor's slot; emptied and freed on drop.
pub(crate) struct Slot {
    files: Arc<FixedFiles>,
    pub(crate) index: u32,
}

impl FixedFiles {
    /// Registers an empty table on `ring`, or `None` if the kernel refuses (too old, or
    /// limits): descriptors are then named by number.
    pub(crate) fn new(ring: &IoUring) -> Option<Arc<Self>> {
        Self::with_max(ring, MAX_SLOTS)
    }

    /// As [`FixedFiles::new`], with at most `max` slots.
    fn with_max(ring: &IoUring, max: u32) -> Option<Arc<Self>> {
        let size = nofile_limit().min(u64::from(max)) as u32;
        if size < MIN_SLOTS {
            tracing::debug!(size, "RLIMIT_NOFILE too low: no registered file table");
            return None;
        }
        if let Err(e) = ring.submitter().register_files_sparse(size) {
            tracing::debug!(error = %e, "no registered file table: descriptors are named by number");
            return None;
        }
        // SAFETY: the ring's descriptor stays open while `ring` is borrowed.
        let ring_fd = unsafe { BorrowedFd::borrow_raw(ring.as_raw_fd()) };
        let dup = match ring_fd.try_clone_to_owned() {
            Ok(fd) => fd,
            Err(e) => {
                tracing::debug!(error = %e, "no registered file table: cannot duplicate the ring");
                return None;
            }
        };
        Some(Arc::new(Self { ring: dup, free: Mutex::new((Vec::new(), 0)), size }))
    }

    /// Puts `fd` in a free slot, or `None` if the table is full or the kernel refuses.
    pub(crate) fn install(self: &Arc<Self>, fd: RawFd) -> Option<Slot> {
        let index = {
            let mut free = lock(&self.free);
            match free.0.pop() {
                Some(i) => i,
                None if free.1 < self.size => {
                    free.1 += 1;
                    free.1 - 1
                }
                None => return None,
            }
        };
        match self.update(index, fd) {
            Ok(()) => Some(Slot { files: Arc::clone(self), index }),
            Err(e) => {
                tracing::debug!(error = %e, fd, "could not register a descriptor: it is named by number");
                lock(&self.free).0.push(index);
                None
            }
        }
    }

    /// Puts `fd` (-1: nothing) in slot `index`.
    fn update(&self, index: u32, fd: RawFd) -> io::Result<()> {
        let fds = [fd];
        let arg = FilesUpdate { offset: index, resv: 0, fds: fds.as_ptr() as u64 };
        // SAFETY: `arg` and the one-entry array it points at live across the call; the
        // kernel only reads them. The ring descriptor is ours (a duplicate we own).
        let r = unsafe {
            libc::syscall(
                libc::SYS_io_uring_register,
                self.ring.as_raw_fd(),
                REGISTER_FILES_UPDATE,
                &arg as *const FilesUpdate,
                1 as libc::c_uint,
            )
        };
        match r {
            1 => Ok(()),
            0 => Err(io::Error::other("the kernel updated no slot")),
            _ => Err(io::Error::last_os_error()),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Every operation of the descriptor has completed (this state drops after the
        // last one), so no SQE names this slot any more.
        match self.files.update(self.index, -1) {
            Ok(()) => lock(&self.files.free).0.push(self.index),
            // Not expected; the slot is not reused, so nothing can reach the old file
            // through it but the table's own reference, dropped with the ring.
            Err(e) => tracing::warn!(error = %e, slot = self.index, "could not empty a registered file slot"),
        }
    }
}

/// The soft `RLIMIT_NOFILE`: the kernel refuses a larger table.
fn nofile_limit() -> u64 {
    // `None`: unlimited.
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current.unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use io_uring::{opcode, types};
    use std::io::Read;

    /// A table fills up (then descriptors go by number), gives a closed descriptor's slot
    /// to the next, and I/O named by slot reaches the descriptor in it.
    #[test]
    fn slots_are_handed_out_reused_and_reach_their_file() {
        let ring = IoUring::new(8).unwrap();
        let Some(files) = FixedFiles::with_max(&ring, MIN_SLOTS) else {
            // The kernel refused a table (older than 5.19, or limits): nothing to test.
            return;
        };
        let pipes: Vec<_> = (0..=MIN_SLOTS).map(|_| rustix::pipe::pipe().unwrap()).collect();
        let mut slots: Vec<_> = pipes[..MIN_SLOTS as usize]
            .iter()
            .map(|(_, w)| files.install(w.as_raw_fd()).expect("a free slot"))
            .collect();
        let last = &pipes[MIN_SLOTS as usize].1;
        assert!(files.install(last.as_raw_fd()).is_none(), "the table is full");
        let freed = slots.remove(3);
        let index = freed.index;
        drop(freed);
        let slot = files.install(last.as_raw_fd()).expect("the freed slot");
        assert_eq!(slot.index, index, "a freed slot is reused");

        // A write named by the slot lands in the pipe now in it.
        let msg = b"fixed";
        let write =
            opcode::Write::new(types::Fixed(slot.index), msg.as_ptr(), msg.len() as u32).build().user_data(7);
        // SAFETY: only this thread uses the submission queue; `msg` outlives the write,
        // which completes (the wait below) before it goes.
        unsafe { ring.submission_shared().push(&write).unwrap() };
        ring.submit_and_wait(1).unwrap();
        // SAFETY: only this thread uses the completion queue.
        let cqe = unsafe { ring.completion_shared() }.next().unwrap();
        assert_eq!((cqe.user_data(), cqe.result()), (7, msg.len() as i32));
        let mut got = [0u8; 5];
        std::fs::File::from(pipes[MIN_SLOTS as usize].0.try_clone().unwrap()).read_exact(&mut got).unwrap();
        assert_eq!(&got, msg);
    }
}
