//! The system calls behind each operation on the epoll backend: one non-blocking attempt
//! (sockets, pipes), or one blocking call (regular files, on the pool).

use crate::buffer::Buffer;
use crate::completion::Completion;
use crate::op::Request;
use crate::sys::vio;
use crate::sys::OpData;
use rustix::io::Errno;
use rustix::net::RecvFlags;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

/// An operation waiting in a descriptor's queue (or the file pool's).
pub(super) struct Pending<C> {
    pub(super) data: OpData<C>,
    /// Alive while the operation is; its weak form is the operation's [`OpRef`](super::OpRef).
    pub(super) mark: Arc<()>,
    /// A connect whose non-blocking `connect` said `EINPROGRESS`: the next writability
    /// tells how it ended.
    pub(super) connecting: bool,
}

impl<C> Pending<C> {
    pub(super) fn new(data: OpData<C>) -> Self {
        Self { data, mark: Arc::new(()), connecting: false }
    }
}

/// A zero-capacity receive (docs/semantics.md N6), which waits beside the receive queue.
pub(super) fn is_probe<C>(data: &OpData<C>) -> bool {
    matches!(data.request, Request::Recv) && data.buffer.as_ref().is_some_and(|b| b.room() == 0)
}

/// How an operation ended.
pub(super) struct Done {
    pub(super) result: io::Result<usize>,
    pub(super) accepted: Option<OwnedFd>,
    pub(super) addr: Option<SocketAddr>,
}

impl Done {
    fn bytes(result: io::Result<usize>) -> Self {
        Self { result, accepted: None, addr: None }
    }

    pub(super) fn ok() -> Self {
        Self::bytes(Ok(0))
    }

    pub(super) fn would_block() -> Self {
        Self::bytes(Err(io::Error::from_raw_os_error(libc::EAGAIN)))
    }

    pub(super) fn cancelled() -> Self {
        Self::bytes(Err(io::Error::from_raw_os_error(libc::ECANCELED)))
    }
}

/// Runs a non-blocking call, retrying on `EINTR`; `None` if it would block.
fn nonblocking<T>(mut f: impl FnMut() -> rustix::io::Result<T>) -> Option<io::Result<T>> {
    loop {
        match f() {
            Err(Errno::INTR) => continue,
            Err(Errno::AGAIN) => return None,
            r => return Some(r.map_err(io::Error::from)),
        }
    }
}

/// Runs a blocking call, retrying on `EINTR`.
fn blocking<T>(mut f: impl FnMut() -> rustix::io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(Errno::INTR) => continue,
            r => return r.map_err(io::Error::from),
        }
    }
}

fn no_buffer() -> Done {
    Done::bytes(Err(io::Error::new(io::ErrorKind::InvalidInput, "the operation has no buffer")))
}

/// One non-blocking attempt at the operation: `None` if the descriptor is not ready (the
/// operation stays queued until the next readiness), else how it ended. Reads fill the
/// buffer from its start up to its capacity, as on io_uring.
pub(super) fn attempt<C>(p: &mut Pending<C>) -> Option<Done> {
    attempt_op(&mut p.data, &mut p.connecting)
}

/// [`attempt`] on an operation not yet queued (no [`Pending`], no mark): `connecting` is
/// its connect-under-way flag, set when a connect answers `EINPROGRESS`.
pub(super) fn attempt_op<C>(data: &mut OpData<C>, connecting: &mut bool) -> Option<Done> {
    let OpData { handle, request, buffer, .. } = data;
    attempt_parts(handle.fd.as_fd(), request, buffer, connecting)
}

/// [`attempt`] on the parts of an operation: its descriptor, request and buffer.
pub(super) fn attempt_parts(
    fd: BorrowedFd<'_>,
    request: &mut Request,
    buffer: &mut Option<Buffer>,
    connecting: &mut bool,
) -> Option<Done> {
    let result = match request {
        // docs/semantics.md N6: a zero-capacity receive completes once the socket is
        // readable, consuming nothing. Readable includes end of stream and a pending error
        // (io_uring's poll reports those as a ready mask too): all are `Ok(0)`.
        Request::Recv if buffer.as_ref().is_some_and(|b| b.room() == 0) => {
            let mut probe = [0u8; 1];
            match nonblocking(|| rustix::net::recv(fd, &mut probe[..], RecvFlags::PEEK | RecvFlags::DONTWAIT))
            {
                None => return None,
                Some(_) => Ok(0),
            }
        }
        Request::Recv => {
            let Some(buf) = buffer.as_mut() else { return Some(no_buffer()) };
            nonblocking(|| vio::recv(fd, buf, libc::MSG_DONTWAIT))?
        }
        Request::RecvFrom => {
            let Some(buf) = buffer.as_mut() else { return Some(no_buffer()) };
            // A zero-length datagram receive still takes one datagram (and its sender).
            let r = nonblocking(|| vio::recv_from(fd, buf, libc::MSG_DONTWAIT))?;
            return Some(match r {
                Ok((n, addr)) => Done { result: Ok(n), accepted: None, addr },
                Err(e) => Done::bytes(Err(e)),
            });
        }
        Request::Send => {
            let Some(buf) = buffer.as_mut() else { return Some(no_buffer()) };
            nonblocking(|| vio::send(fd, buf, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL))?
        }
        Request::SendTo { addr } => {
            let Some(buf) = buffer.as_mut() else { return Some(no_buffer()) };
            nonblocking(|| vio::send_to(fd, buf, addr, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL))?
        }
        Request::Accept => {
            let r = nonblocking(|| rustix::net::acceptfrom_with(fd, rustix::net::SocketFlags::CLOEXEC))?;
            return Some(match r {
                Ok((socket, addr)) => Done {
                    result: Ok(0),
                    accepted: Some(socket),
                    addr: addr.and_then(|a| SocketAddr::try_from(a).ok()),
                },
                Err(e) => Done::bytes(Err(e)),
            });
        }
        Request::Connect { addr } if !*connecting => {
            let Some(to) = addr.as_socket() else {
                return Some(Done::bytes(Err(io::Error::from(io::ErrorKind::InvalidInput))));
            };
            match rustix::net::connect(fd, &to) {
                Ok(()) => Ok(0),
                // Under way: the socket turns writable when it ends, either way.
                Err(Errno::INPROGRESS | Errno::INTR) => {
                    *connecting = true;
                    return None;
                }
                Err(e) => Err(e.into()),
            }
        }
        // Under way: ask the socket again, as io_uring does. A pending error (refused,
        // unreachable) comes first; then `connect` itself says how it stands: connected
        // (`EISCONN`), still under way (`EALREADY`), or failed. Looking only for a peer
        // address is not enough: a socket whose attempt ended without an error and
        // without a connection (shut down before it connected) would wait forever for a
        // writability that never comes again.
        Request::Connect { addr } => match rustix::net::sockopt::socket_error(fd) {
            Ok(Err(e)) => Err(e.into()),
            Err(e) => Err(e.into()),
            Ok(Ok(())) => {
                let Some(to) = addr.as_socket() else {
                    return Some(Done::bytes(Err(io::Error::from(io::ErrorKind::InvalidInput))));
                };
                match rustix::net::connect(fd, &to) {
                    Ok(()) | Err(Errno::ISCONN) => Ok(0),
                    Err(Errno::ALREADY | Errno::INPROGRESS | Errno::INTR) => return None,
                    Err(e) => Err(e.into()),
                }
            }
        },
        // A pipe, FIFO or terminal: no positions (docs/semantics.md F5), the offset is ignored.
        Request::ReadAt { .. } => {
            let Some(buf) = buffer.as_mut() else { return Some(no_buffer()) };
            nonblocking(|| vio::read(fd, buf, None))?
        }
        Request::WriteAt { .. } => {
            let Some(buf) = buffer.as_mut() else { return Some(no_buffer()) };
            nonblocking(|| vio::write(fd, buf, None))?
        }
        Request::Shutdown { how } => {
            let how = match how {
                std::net::Shutdown::Read => rustix::net::Shutdown::Read,
                std::net::Shutdown::Write => rustix::net::Shutdown::Write,
                std::net::Shutdown::Both => rustix::net::Shutdown::Both,
            };
            rustix::net::shutdown(fd, how).map(|()| 0).map_err(io::Error::from)
        }
        Request::Sync { data_only } => sync(fd, *data_only),
    };
    Some(Done::bytes(result))
}

fn sync(fd: std::os::fd::BorrowedFd<'_>, data_only: bool) -> io::Result<usize> {
    let r =
        if data_only { blocking(|| rustix::fs::fdatasync(fd)) } else { blocking(|| rustix::fs::fsync(fd)) };
    r.map(|()| 0)
}

/// The operation as one blocking call, for a descriptor epoll cannot watch (a regular
/// file, a block device): run on the backend's file pool.
pub(super) fn run_blocking<C>(p: &mut Pending<C>) -> Done {
    let OpData { handle, request, buffer, .. } = &mut p.data;
    let fd = handle.fd.as_fd();
    let result = match request {
        // As io_uring, a zero-length read completes with 0 (or the descriptor's error).
        Request::ReadAt { offset } => {
            let Some(buf) = buffer.as_mut() else { return no_buffer() };
            match blocking(|| vio::read(fd, buf, Some(*offset))) {
                // Not seekable after all: the offset is ignored (docs/semantics.md F5).
                Err(e) if e.raw_os_error() == Some(libc::ESPIPE) => blocking(|| vio::read(fd, buf, None)),
                r => r,
            }
        }
        Request::WriteAt { offset } => {
            let Some(buf) = buffer.as_mut() else { return no_buffer() };
            match blocking(|| vio::write(fd, buf, Some(*offset))) {
                Err(e) if e.raw_os_error() == Some(libc::ESPIPE) => blocking(|| vio::write(fd, buf, None)),
                r => r,
            }
        }
        Request::Sync { data_only } => sync(fd, *data_only),
        // Socket requests never reach the pool (a socket is always watched by epoll).
        _ => Err(io::Error::new(io::ErrorKind::InvalidInput, "not a file operation")),
    };
    Done::bytes(result)
}

/// A file read tried on the submitting thread without blocking: `preadv2` with
/// `RWF_NOWAIT`, which the kernel serves only from the page cache. `Some` if it read the
/// whole buffer (or found the end of the file at `offset`); `None` otherwise, for the
/// pool to run it as a blocking read: the data is not all cached (`EAGAIN`, or a short
/// read, which could be a cache boundary as well as the end of the file), the flag is not
/// supported there (`EOPNOTSUPP`, kernels before 4.14: `EINVAL`/`ENOSYS`), or any other
/// error, which the blocking read then reports as it always did.
pub(super) fn read_nowait<C>(data: &mut OpData<C>) -> Option<Done> {
    use std::os::fd::AsRawFd;
    let OpData { handle, request, buffer, .. } = data;
    let Request::ReadAt { offset } = request else { return None };
    let buf = buffer.as_mut()?;
    let offset = libc::off_t::try_from(*offset).ok()?;
    let want = buf.room();
    if want == 0 {
        return None;
    }
    let iov = buf.read_iovecs();
    let iov = iov.as_slice();
    let count = libc::c_int::try_from(iov.len()).ok()?;
    let n = loop {
        // SAFETY: `iov` covers the buffer's writable regions (the buffer's invariants),
        // which this thread owns for the call (the operation is not yet visible to any
        // other thread) and which the kernel writes at most `want` bytes of; the kernel
        // keeps no pointer once the call returns; the descriptor is open while `handle`
        // lives.
        let n =
            unsafe { libc::preadv2(handle.fd.as_raw_fd(), iov.as_ptr(), count, offset, libc::RWF_NOWAIT) };
        match usize::try_from(n) {
            Ok(n) => break n,
            Err(_) if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => continue,
            Err(_) => return None,
        }
    };
    if n != 0 && n != want {
        // The blocking read in the pool reads the whole range again, from the start.
        return None;
    }
    // SAFETY: the call that returned `n` wrote the first `n` bytes of the regions
    // `read_iovecs` gave for it, and nothing touched the buffer since.
    unsafe { buf.filled(n) };
    Some(Done::bytes(Ok(n)))
}

/// Turns a finished operation into its one packet (docs/semantics.md H2, H3).
pub(super) fn complete<C>(data: OpData<C>, done: Done) -> Completion<C> {
    let OpData { handle, key, buffer, context, .. } = data;
    let mut c = Completion::io(key, context);
    c.result = done.result;
    c.set_buffer(buffer);
    c.accepted = done.accepted;
    c.addr = done.addr;
    // The handle's last in-flight reference may go here, closing the descriptor only now
    // that its packet exists (docs/semantics.md H6).
    handle.op_finished();
    drop(handle);
    c
}
