//! Eager attempts: try a socket operation once without blocking, before handing it to the
//! backend. The Windows counterpart is `FILE_SKIP_COMPLETION_PORT_ON_SUCCESS`: an
//! overlapped call that completes at once returns its result directly and queues no
//! packet. These are plain non-blocking system calls; no memory is lent to the kernel
//! beyond the call.

use std::io;
use std::os::fd::BorrowedFd;

/// `send(fd, buf, MSG_DONTWAIT | MSG_NOSIGNAL)`. `None` if it would block.
pub(crate) fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> Option<io::Result<usize>> {
    use rustix::net::SendFlags;
    match rustix::net::send(fd, buf, SendFlags::DONTWAIT | SendFlags::NOSIGNAL) {
        Err(rustix::io::Errno::AGAIN) => None,
        r => Some(r.map_err(io::Error::from)),
    }
}

/// `recv(fd, spare capacity of buf, MSG_DONTWAIT)`, appending to `buf` (which the caller
/// cleared). `None` if it would block.
pub(crate) fn recv(fd: BorrowedFd<'_>, buf: &mut Vec<u8>) -> Option<io::Result<usize>> {
    use rustix::net::RecvFlags;
    match rustix::net::recv(fd, rustix::buffer::spare_capacity(buf), RecvFlags::DONTWAIT) {
        Err(rustix::io::Errno::AGAIN) => None,
        r => Some(r.map(|(n, _)| n).map_err(io::Error::from)),
    }
}
