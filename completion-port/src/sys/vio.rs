//! Single system calls on a [`Buffer`] of any form, for the backends that make the calls
//! themselves (epoll's attempts and file pool, the eager calls): a contiguous buffer goes
//! to `recv`/`send`/`read`/`write` (or their positional forms), a scatter/gather list to
//! `recvmsg`/`sendmsg`/`readv`/`writev` (or `preadv`/`pwritev`). Each returns the raw
//! result; the caller retries on `EINTR` and decides what `EAGAIN` means.
//!
//! The buffer is borrowed only for the call: when it returns the kernel keeps no pointer
//! into it.

use crate::buffer::Buffer;
use rustix::io::Errno;
use socket2::{SockAddr, SockAddrStorage};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

/// A `ssize_t` system call result as a byte count or the errno.
fn ret(n: isize) -> rustix::io::Result<usize> {
    if n < 0 {
        Err(Errno::from_raw_os_error(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)))
    } else {
        Ok(n as usize)
    }
}

/// Records `n` bytes read into `buf` (the regions its `read_iovecs` gave).
fn filled(buf: &mut Buffer, r: rustix::io::Result<usize>) -> rustix::io::Result<usize> {
    if let Ok(n) = r {
        // SAFETY: the call that returned `n` wrote the first `n` bytes of the regions
        // `read_iovecs` gave for it, and nothing touched the buffer since.
        unsafe { buf.filled(n) };
    }
    r
}

/// A `msghdr` over `iov` (and `name`, if any). All-zero is a valid `msghdr`.
fn msghdr(iov: &[libc::iovec], name: Option<(*mut libc::c_void, libc::socklen_t)>) -> libc::msghdr {
    // SAFETY: `msghdr` is a plain C struct for which all-zero is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_ptr().cast_mut();
    msg.msg_iovlen = iov.len();
    if let Some((p, n)) = name {
        msg.msg_name = p;
        msg.msg_namelen = n;
    }
    msg
}

/// `recv(fd, buf, flags)`, or `recvmsg` with several segments; fills `buf`.
pub(crate) fn recv(fd: BorrowedFd<'_>, buf: &mut Buffer, flags: i32) -> rustix::io::Result<usize> {
    let iov = buf.read_iovecs();
    let iov = iov.as_slice();
    let r = if let [one] = iov {
        // SAFETY: `one` is writable for its length for as long as `buf` lives (Buffer's
        // invariants), and the call keeps no pointer to it once it returns.
        ret(unsafe { libc::recv(fd.as_raw_fd(), one.iov_base, one.iov_len, flags) })
    } else {
        let mut msg = msghdr(iov, None);
        // SAFETY: `msg` points at `iov`, whose regions are writable (as above); nothing is
        // kept past the call.
        ret(unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, flags) })
    };
    filled(buf, r)
}

/// `recvmsg(fd, {buf, &addr}, flags)`; fills `buf` and returns the sender.
pub(crate) fn recv_from(
    fd: BorrowedFd<'_>,
    buf: &mut Buffer,
    flags: i32,
) -> rustix::io::Result<(usize, Option<SocketAddr>)> {
    let mut addr = SockAddrStorage::zeroed();
    let size = addr.size_of();
    let iov = buf.read_iovecs();
    let mut msg = msghdr(iov.as_slice(), Some(((&mut addr as *mut SockAddrStorage).cast(), size)));
    // SAFETY: `msg` points at the buffer's writable regions and at `addr`, both alive for
    // the call; nothing is kept past it.
    let r = filled(buf, ret(unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, flags) }));
    let n = r?;
    let from = if msg.msg_namelen == 0 {
        None
    } else {
        // SAFETY: the kernel filled `addr` and reported `msg_namelen` bytes of it.
        unsafe { SockAddr::new(addr, msg.msg_namelen) }.as_socket()
    };
    Ok((n, from))
}

/// `send(fd, buf, flags)`, or `sendmsg` with several segments.
pub(crate) fn send(fd: BorrowedFd<'_>, buf: &mut Buffer, flags: i32) -> rustix::io::Result<usize> {
    let iov = buf.write_iovecs();
    let iov = iov.as_slice();
    if let [one] = iov {
        // SAFETY: `one` is readable for its length while `buf` lives; nothing is kept.
        ret(unsafe { libc::send(fd.as_raw_fd(), one.iov_base, one.iov_len, flags) })
    } else {
        let msg = msghdr(iov, None);
        // SAFETY: `msg` points at `iov`, whose regions are readable; nothing is kept.
        ret(unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, flags) })
    }
}

/// `sendmsg(fd, {buf, to}, flags)`.
pub(crate) fn send_to(
    fd: BorrowedFd<'_>,
    buf: &mut Buffer,
    to: &SockAddr,
    flags: i32,
) -> rustix::io::Result<usize> {
    let iov = buf.write_iovecs();
    let msg = msghdr(iov.as_slice(), Some((to.as_ptr() as *mut libc::c_void, to.len())));
    // SAFETY: `msg` points at readable regions and at `to`, alive for the call; the kernel
    // does not write through `msg_name` for a send.
    ret(unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, flags) })
}

/// `read`/`readv`, or `pread`/`preadv` at `offset`; fills `buf`.
pub(crate) fn read(fd: BorrowedFd<'_>, buf: &mut Buffer, offset: Option<u64>) -> rustix::io::Result<usize> {
    let iov = buf.read_iovecs();
    let iov = iov.as_slice();
    let fd = fd.as_raw_fd();
    // SAFETY: the regions are writable for their lengths while `buf` lives; the call
    // keeps no pointer to them once it returns.
    let n = unsafe {
        match (iov, offset) {
            ([one], None) => libc::read(fd, one.iov_base, one.iov_len),
            ([one], Some(off)) => libc::pread(fd, one.iov_base, one.iov_len, off as libc::off_t),
            (many, None) => libc::readv(fd, many.as_ptr(), many.len() as i32),
            (many, Some(off)) => libc::preadv(fd, many.as_ptr(), many.len() as i32, off as libc::off_t),
        }
    };
    filled(buf, ret(n))
}

/// `write`/`writev`, or `pwrite`/`pwritev` at `offset`.
pub(crate) fn write(fd: BorrowedFd<'_>, buf: &mut Buffer, offset: Option<u64>) -> rustix::io::Result<usize> {
    let iov = buf.write_iovecs();
    let iov = iov.as_slice();
    let fd = fd.as_raw_fd();
    // SAFETY: the regions are readable for their lengths while `buf` lives; the call
    // keeps no pointer to them once it returns.
    let n = unsafe {
        match (iov, offset) {
            ([one], None) => libc::write(fd, one.iov_base, one.iov_len),
            ([one], Some(off)) => libc::pwrite(fd, one.iov_base, one.iov_len, off as libc::off_t),
            (many, None) => libc::writev(fd, many.as_ptr(), many.len() as i32),
            (many, Some(off)) => libc::pwritev(fd, many.as_ptr(), many.len() as i32, off as libc::off_t),
        }
    };
    ret(n)
}
