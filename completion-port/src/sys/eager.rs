//! Eager attempts: try a socket operation once without blocking, before handing it to the
//! backend. The Windows counterpart is `FILE_SKIP_COMPLETION_PORT_ON_SUCCESS`: an
//! overlapped call that completes at once returns its result directly and queues no
//! packet. These are plain non-blocking system calls; no memory is lent to the kernel
//! beyond the call.

use crate::buffer::Buffer;
use std::io;
use std::os::fd::BorrowedFd;

/// `send(fd, buf, MSG_DONTWAIT | MSG_NOSIGNAL)` (`sendmsg` for a scatter/gather list).
/// `None` if it would block.
pub(crate) fn send(fd: BorrowedFd<'_>, buf: &mut Buffer) -> Option<io::Result<usize>> {
    loop {
        match super::vio::send(fd, buf, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::AGAIN) => return None,
            r => return Some(r.map_err(io::Error::from)),
        }
    }
}

/// `recv(fd, buf, MSG_DONTWAIT)` (`recvmsg` for a scatter/gather list), filling `buf`
/// from its start. `None` if it would block.
pub(crate) fn recv(fd: BorrowedFd<'_>, buf: &mut Buffer) -> Option<io::Result<usize>> {
    loop {
        match super::vio::recv(fd, buf, libc::MSG_DONTWAIT) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::AGAIN) => return None,
            r => return Some(r.map_err(io::Error::from)),
        }
    }
}

/// Runs one non-blocking call on `fd`, retrying on `EINTR`; `EAGAIN` is `WouldBlock`.
pub(crate) fn try_call(
    fd: BorrowedFd<'_>,
    mut call: impl FnMut(BorrowedFd<'_>) -> rustix::io::Result<usize>,
) -> io::Result<usize> {
    loop {
        match call(fd) {
            Err(rustix::io::Errno::INTR) => continue,
            r => return r.map_err(io::Error::from),
        }
    }
}
