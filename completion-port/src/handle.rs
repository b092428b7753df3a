//! Handles: files and sockets associated with a port under a key (docs/semantics.md H1–H8, F, N).

use crate::buffer::Buffer;
use crate::op::{FdKind, Request, SubmitError};
use crate::port::CompletionPort;
use crate::sys::{Descriptor, OpData, OpRef};
use socket2::SockAddr;
use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;

/// A file or socket associated with a [`CompletionPort`]: every operation started through
/// it completes to that port, carrying the handle's key (docs/semantics.md H1).
///
/// Each operation takes a buffer and a context; the buffer belongs to the operation until
/// its packet is delivered, and comes back in the packet with the bytes transferred (H3).
/// A buffer is anything that converts into a [`Buffer`]: a `Vec<u8>` (reads and receives
/// fill it from its start up to its **capacity** and set its length to the bytes read;
/// writes and sends send its `len()` bytes), a `Box<[u8]>`, caller-owned raw memory or a
/// scatter/gather list of those (H11). Every accepted operation produces exactly one packet (H2); a refused one returns
/// a [`SubmitError`] holding the context and buffer, and produces none.
///
/// # Examples
///
/// ```
/// use completion_port::CompletionPort;
/// use std::io::Write;
/// use std::time::Duration;
///
/// # fn main() -> std::io::Result<()> {
/// let path = std::env::temp_dir().join(format!("cp-doc-{}", std::process::id()));
/// std::fs::File::create(&path)?.write_all(b"hello, port")?;
/// let port: CompletionPort<&str> = CompletionPort::new(0);
/// let file = port.associate(std::fs::File::open(&path)?, 7)?;
/// file.read_at(Vec::with_capacity(64), 0, "first read")?;
/// let packet = port.get(Some(Duration::from_secs(5)))?;
/// assert_eq!((packet.key, packet.context), (7, "first read"));
/// assert_eq!(packet.buffer.as_deref(), Some(&b"hello, port"[..]));
/// # std::fs::remove_file(&path)?;
/// # Ok(())
/// # }
/// ```
///
/// # Dropping
///
/// Dropping (or [`close`](Self::close)-ing) a handle cancels its pending operations; each
/// still produces its one packet, with a cancelled error or its real result if it finished
/// first. The descriptor is closed only after the last of those packets has been produced,
/// so a new descriptor that reuses the number can never receive an old packet (H6, H7).
///
/// # Cloning
///
/// A `Handle` is a shared reference, like a duplicated Windows handle: clones start
/// operations on the same descriptor, under the same key, and the handle is closed (its
/// pending operations cancelled) when the last clone is dropped.
pub struct Handle<C: Send + 'static> {
    o: Arc<HandleOwner<C>>,
}

impl<C: Send + 'static> Clone for Handle<C> {
    fn clone(&self) -> Self {
        Self { o: Arc::clone(&self.o) }
    }
}

/// What the user's clones of a [`Handle`] share; dropping it closes the handle (H6).
struct HandleOwner<C: Send + 'static> {
    port: CompletionPort<C>,
    shared: Arc<Descriptor>,
}

/// What an eager call ([`Handle::send_eager`], [`Handle::recv_eager`]) did.
#[derive(Debug)]
pub enum Started<C> {
    /// It completed at once; this is its result, and no packet will be queued for it.
    Done(crate::Completion<C>),
    /// It is in flight; its packet will arrive on the port.
    Pending(OpId<C>),
}

/// Identifies one operation in flight, for [`Handle::cancel`]. Holding it never keeps the
/// operation's buffer or context alive.
pub struct OpId<C>(OpRef<C>);

impl<C> OpId<C> {
    /// Whether the operation's packet has been produced (it can no longer be cancelled).
    pub fn is_done(&self) -> bool {
        self.0.is_done()
    }
}

impl<C> fmt::Debug for OpId<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpId").field("done", &self.is_done()).finish()
    }
}

/// Classifies a descriptor, or explains why it cannot be associated.
fn classify(fd: &OwnedFd) -> io::Result<FdKind> {
    use rustix::fs::FileType;
    let stat = rustix::fs::fstat(fd)?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::Socket {
        return Ok(FdKind::File);
    }
    if rustix::net::sockopt::socket_acceptconn(fd)? {
        return Ok(FdKind::Listener);
    }
    Ok(match rustix::net::sockopt::socket_type(fd)? {
        rustix::net::SocketType::DGRAM => FdKind::Datagram,
        _ => FdKind::Stream,
    })
}

impl<C: Send + 'static> CompletionPort<C> {
    /// Associates a file or socket with the port under `key`
    /// (`CreateIoCompletionPort(handle, port, key, 0)`, docs/semantics.md H1). Accepts anything that
    /// owns a descriptor: `std::fs::File`, `std::net::{TcpListener, TcpStream, UdpSocket}`,
    /// `socket2::Socket`, `OwnedFd`. The handle owns the descriptor from now on.
    ///
    /// The first association creates the port's kernel backend (io_uring or epoll; see
    /// [`Backend`](crate::Backend)). With the epoll backend, a socket, pipe or other pollable
    /// descriptor is made non-blocking (`O_NONBLOCK`) here: the handle owns it from now on.
    ///
    /// # Errors
    ///
    /// * `InvalidInput`: the descriptor is already associated with this port, or is not
    ///   open (`EBADF`). Such a descriptor is not closed here: it was never ours to close.
    /// * `BrokenPipe`: the port is closed.
    /// * The OS error if the backend cannot be created: io_uring forced
    ///   ([`Backend::Uring`](crate::Backend::Uring)) where it is missing or disabled, or
    ///   `InvalidInput` if `COMPLETION_PORT_BACKEND` holds an unknown value.
    pub fn associate(&self, object: impl Into<OwnedFd>, key: usize) -> io::Result<Handle<C>> {
        let fd: OwnedFd = object.into();
        let kind = match classify(&fd) {
            Ok(kind) => kind,
            Err(e) if e.raw_os_error() == Some(libc::EBADF) => {
                // Not a descriptor we could own: closing it could close someone else's.
                std::mem::forget(fd);
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "not an open file descriptor"));
            }
            Err(e) => return Err(e),
        };
        let (driver, registry) = self.driver()?;
        if self.is_closed() {
            return Err(crate::sys::closed_error());
        }
        let Some(entry) = registry.enter(fd.as_raw_fd()) else {
            // Another handle of this port owns this number: closing it here would pull the
            // descriptor from under that handle.
            std::mem::forget(fd);
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the descriptor is already associated with this port",
            ));
        };
        // On failure `entry` drops here, before `fd` closes.
        let state = driver.register(fd.as_fd(), kind)?;
        tracing::trace!(fd = fd.as_raw_fd(), key, ?kind, backend = driver.name(), "associated");
        let shared = Descriptor::new(fd, kind, key, state, Some(Box::new(entry)));
        Ok(Handle { o: Arc::new(HandleOwner { port: self.clone(), shared: Arc::new(shared) }) })
    }
}

impl<C: Send + 'static> Handle<C> {
    /// The key packets of this handle carry.
    pub fn key(&self) -> usize {
        self.o.shared.key
    }

    /// The port this handle completes to.
    pub fn port(&self) -> &CompletionPort<C> {
        &self.o.port
    }

    /// Number of operations submitted whose packet has not yet been produced.
    pub fn pending(&self) -> usize {
        self.o.shared.pending()
    }

    fn submit(
        &self,
        request: Request,
        buffer: Option<Buffer>,
        context: C,
    ) -> Result<OpId<C>, SubmitError<C>> {
        let (driver, op) = self.prepare(request, buffer, context)?;
        // Handed to the kernel now (H9), unless this thread is inside a `batch` section,
        // which submits when it ends.
        driver.submit(op).map(OpId).inspect_err(|_| {
            self.o.shared.op_finished();
        })
    }

    /// Checks an operation and makes its [`OpData`], counted as started on the handle;
    /// the caller submits it to the driver returned with it.
    fn prepare(
        &self,
        request: Request,
        buffer: Option<Buffer>,
        context: C,
    ) -> Result<(&crate::sys::Driver<C>, OpData<C>), SubmitError<C>> {
        if let Err(e) = request
            .check_args(buffer.as_ref())
            .and_then(|()| self.o.shared.kind.check(&request, self.o.shared.fd.as_fd()))
        {
            return Err(SubmitError::new(e, context, buffer));
        }
        let Some(driver) = self.o.port.existing_driver() else {
            return Err(SubmitError::new(crate::sys::closed_error(), context, buffer));
        };
        // A positional write on a socket is a send (the offset means nothing there, F5),
        // with MSG_NOSIGNAL: a peer that is gone must fail the operation with EPIPE, not
        // kill the process with SIGPIPE, as `write` on a socket would.
        let request = match (request, self.o.shared.kind) {
            (Request::WriteAt { .. }, FdKind::Stream | FdKind::Datagram) => Request::Send,
            (request, _) => request,
        };
        Ok((driver, self.new_op(request, buffer, context)))
    }

    /// An operation of this handle, counted as started on its descriptor.
    fn new_op(&self, request: Request, buffer: Option<Buffer>, context: C) -> OpData<C> {
        let shared = &self.o.shared;
        shared.op_started();
        OpData { handle: Arc::clone(shared), key: shared.key, request, buffer, context }
    }

    /// The eager form of `submit`, for a backend that makes the attempt itself
    /// ([`Driver::attempts_eagerly`](crate::sys::Driver::attempts_eagerly)): the operation
    /// is made (and counted on the descriptor) only if it must wait. The caller has made
    /// `check_eager`'s checks.
    fn submit_eager(
        &self,
        request: Request,
        buffer: Buffer,
        context: C,
    ) -> Result<Started<C>, SubmitError<C>> {
        let Some(driver) = self.o.port.existing_driver() else {
            return Err(SubmitError::new(crate::sys::closed_error(), context, Some(buffer)));
        };
        let make = |request, buffer, context| self.new_op(request, buffer, context);
        match driver.submit_eager(&self.o.shared, request, buffer, context, make)? {
            crate::sys::Eager::Immediate(result, buf, context) => {
                Ok(Started::Done(self.immediate(result, buf, context)))
            }
            crate::sys::Eager::Pending(op_ref) => Ok(Started::Pending(OpId(op_ref))),
        }
    }

    /// Reads into `buf` (up to its capacity) from `offset` (`pread`; docs/semantics.md F1). Many
    /// reads may be in flight on one handle and complete in any order. A read at end of
    /// file completes with `Ok(0)`. On a descriptor without positions (a pipe, a FIFO, a
    /// terminal) the offset is ignored, as Windows ignores it there, and reads take the
    /// data in the order the kernel runs them: keep one in flight (F5).
    ///
    /// It reaches the kernel before this call returns, unless this thread is inside a
    /// [`CompletionPort::batch`] section (docs/semantics.md H9).
    ///
    /// # Errors
    ///
    /// A [`SubmitError`] (with `buf` and `context`): `InvalidInput` if `offset` is above
    /// `i64::MAX` (F4) or the buffer is longer than [`MAX_BUFFER`](crate::MAX_BUFFER);
    /// `BrokenPipe` if the port is closed.
    pub fn read_at(
        &self,
        buf: impl Into<Buffer>,
        offset: u64,
        context: C,
    ) -> Result<OpId<C>, SubmitError<C>> {
        self.submit(Request::ReadAt { offset }, Some(buf.into()), context)
    }

    /// Writes `buf[..len]` at `offset` (`pwrite`; docs/semantics.md F1). On a descriptor without
    /// positions (a pipe, a FIFO, a terminal) the offset is ignored and the data is
    /// appended in the order the kernel runs the writes: keep one in flight (F5).
    ///
    /// It reaches the kernel before this call returns, unless this thread is inside a
    /// [`CompletionPort::batch`] section (docs/semantics.md H9).
    ///
    /// # Errors
    ///
    /// As [`read_at`](Self::read_at).
    pub fn write_at(
        &self,
        buf: impl Into<Buffer>,
        offset: u64,
        context: C,
    ) -> Result<OpId<C>, SubmitError<C>> {
        self.submit(Request::WriteAt { offset }, Some(buf.into()), context)
    }

    /// Flushes data and metadata to the device (`fsync`; docs/semantics.md F2).
    ///
    /// It reaches the kernel before this call returns, unless this thread is inside a
    /// [`CompletionPort::batch`] section (docs/semantics.md H9).
    ///
    /// # Errors
    ///
    /// A [`SubmitError`] if the port is closed.
    pub fn sync_all(&self, context: C) -> Result<OpId<C>, SubmitError<C>> {
        self.submit(Request::Sync { data_only: false }, None, context)
    }

    /// Flushes data, and metadata only where needed to read it back (`fdatasync`; F2).
    ///
    /// It reaches the kernel before this call returns, unless this thread is inside a
    /// [`CompletionPort::batch`] section (docs/semantics.md H9).
    ///
    /// # Errors
    ///
    /// As [`sync_all`](Self::sync_all).
    pub fn sync_data(&self, context: C) -> Result<OpId<C>, SubmitError<C>> {
        self.submit(Request::Sync { data_only: true }, None, context)
    }

    /// Accepts a connection on a listening socket (`accept4`; docs/semantics.md N1). The packet
    /// carries this (the listener's) key, the new socket in
    /// [`Completion::accepted`](crate::Completion::accepted) and the peer in
    /// [`Completion::addr`](crate::Completion::addr).
    ///
    /// It reaches the kernel before this call returns, unless this thread is inside a
    /// [`CompletionPort::batch`] section (docs/semantics.md H9).
    ///
    /// # Errors
    ///
    /// `InvalidInput` if the handle is not a listening socket; `BrokenPipe` if the port is
    /// closed.
    pub fn accept(&self, context: C) -> Result<OpId<C>, SubmitError<C>> {
        self.submit(Request::Accept, None, context)
    }

    /// Connects a socket (`connect`; N2). Associate an unconnected socket, such as a
    /// `socket2::Socket`, to use it.
    ///
    /// It reaches the kernel before this call returns, unless this thread is inside a
    /// [`CompletionPort::batch`] section (docs/semantics.md H9).
    ///
    /// # Errors
    ///
    /// `InvalidInput` if the handle is not a stream or datagram socket.
    pub fn connect(&self, addr: SocketAddr, context: C) -> Result<OpId<C>, SubmitError<C>> {
        self.submit(Request::Connect { addr: Box::new(SockAddr::from(addr)) }, None, context)
    }

    /// Receives into `buf`, up to its capacity (`recv`; N2). The peer closing gracefully
    /// completes it with `Ok(0)` (N3); a reset with `ConnectionReset` (N4). A buffer of
    /// capacity 0 completes when data is readable, without consuming it (N6).
    ///
    /// It reaches the kernel before this call returns, unless this thread is inside a
    /// [`CompletionPort::batch`] section (docs/semantics.md H9).
    ///
    /// # Errors
    ///
    /// `InvalidInput` if the handle is not a connected-style socket (a file or a listener).
    pub fn recv(&self, buf: impl Into<Buffer>, context: C) -> Result<OpId<C>, SubmitError<C>> {
        self.submit(Request::Recv, Some(buf.into()), context)
    }

    /// Sends `buf[..len]` (`send` with `MSG_NOSIGNAL`; N2). It may complete partially: the
    /// byte count says how much went.
    ///
    /// It reaches the kernel before this call returns, unless this thread is inside a
    /// [`CompletionPort::batch`] section (docs/semantics.md H9).
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    pub fn send(&self, buf: impl Into<Buffer>, context: C) -> Result<OpId<C>, SubmitError<C>> {
        self.submit(Request::Send, Some(buf.into()), context)
    }

    /// Sends `buf[..len]` at once if the socket can take it without blocking, else starts
    /// an overlapped send as [`send`](Self::send) does.
    ///
    /// This is Windows' `FILE_SKIP_COMPLETION_PORT_ON_SUCCESS`: an operation that completes
    /// immediately returns [`Started::Done`] with its result, buffer and context, and
    /// **queues no packet**; otherwise [`Started::Pending`] and the packet arrives later.
    /// It saves a trip through the kernel queue and the port for the common case of a
    /// writable socket. `Done` may carry a partial count or an error, as a packet would.
    /// Do not mix with another send in flight on the same socket: the eager send would
    /// overtake it.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub fn send_eager(&self, buf: impl Into<Buffer>, context: C) -> Result<Started<C>, SubmitError<C>> {
        let mut buf = buf.into();
        if let Err(e) = self.check_eager(&Request::Send, &buf) {
            return Err(SubmitError::new(e, context, Some(buf)));
        }
        if self.attempts_eagerly() {
            return self.submit_eager(Request::Send, buf, context);
        }
        match crate::sys::eager::send(self.o.shared.fd.as_fd(), &mut buf) {
            Some(result) => Ok(Started::Done(self.immediate(result, buf, context))),
            None => self.send(buf, context).map(Started::Pending),
        }
    }

    /// Receives into `buf` at once if data (or end of stream, or an error) is already
    /// there, else starts an overlapped receive as [`recv`](Self::recv) does. See
    /// [`send_eager`](Self::send_eager) for what `Done` and `Pending` mean. A zero-capacity
    /// buffer always goes the overlapped way (docs/semantics.md N6).
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    pub fn recv_eager(&self, buf: impl Into<Buffer>, context: C) -> Result<Started<C>, SubmitError<C>> {
        let mut buf = buf.into();
        if let Err(e) = self.check_eager(&Request::Recv, &buf) {
            return Err(SubmitError::new(e, context, Some(buf)));
        }
        if buf.room() == 0 {
            return self.recv(buf, context).map(Started::Pending);
        }
        if self.attempts_eagerly() {
            return self.submit_eager(Request::Recv, buf, context);
        }
        match crate::sys::eager::recv(self.o.shared.fd.as_fd(), &mut buf) {
            Some(result) => Ok(Started::Done(self.immediate(result, buf, context))),
            None => self.recv(buf, context).map(Started::Pending),
        }
    }

    /// Sends from `buf` now, if the socket takes bytes without blocking: the readiness
    /// style of mio's and tokio's `try_write`, on a handle of the port. Nothing is
    /// submitted: no operation, context or packet exists, and the memory is only lent for
    /// the call. Returns how many bytes went (possibly fewer than `buf.len()`).
    ///
    /// It is the cheapest way to answer on a socket that is usually writable (an echo, a
    /// reply); when it returns `WouldBlock`, start an overlapped [`send`](Self::send) for
    /// the rest, whose packet says when it went (docs/semantics.md N8).
    ///
    /// # Errors
    ///
    /// `WouldBlock` if the socket cannot take a byte now, or, on the epoll backend, while
    /// an overlapped send of this handle waits (this call must not overtake it; on io_uring
    /// do not call it while one is in flight: the order of the bytes between them is then
    /// the kernel's). `InvalidInput` if the handle is not a stream or datagram socket;
    /// `BrokenPipe` if the port is closed; else the socket's error (`EPIPE`, `ECONNRESET`...).
    pub fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        let driver = self.try_driver(&Request::Send)?;
        let flags = rustix::net::SendFlags::DONTWAIT | rustix::net::SendFlags::NOSIGNAL;
        driver.try_io(&self.o.shared, false, |fd| rustix::net::send(fd, buf, flags))
    }

    /// Receives into `buf` now, if data (or the end of the stream, or an error) is already
    /// there: the readiness style of `try_read`, on a handle of the port, with nothing
    /// submitted (see [`try_send`](Self::try_send)). As an overlapped receive does, it
    /// fills `buf` from its start up to its capacity: `buf` is cleared first and its
    /// length is then the byte count returned. `Ok(0)` is the end of the stream (N3).
    ///
    /// # Errors
    ///
    /// `WouldBlock` if nothing is there yet, or, on the epoll backend, while an overlapped
    /// receive of this handle waits (the same rule as `try_send`); `InvalidInput` if `buf`
    /// has no capacity (a zero-byte receive is [`recv`](Self::recv) with an empty buffer,
    /// N6) or the handle is not a stream or datagram socket; `BrokenPipe` if the port is
    /// closed; else the socket's error.
    pub fn try_recv(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        if buf.capacity() == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "try_recv needs a buffer with capacity (a zero-byte receive is recv with an empty buffer)",
            ));
        }
        let driver = self.try_driver(&Request::Recv)?;
        buf.clear();
        let flags = rustix::net::RecvFlags::DONTWAIT;
        driver.try_io(&self.o.shared, true, |fd| {
            rustix::net::recv(fd, rustix::buffer::spare_capacity(buf), flags).map(|(n, _)| n)
        })
    }

    /// The backend, for a `try_` call, after [`check_kind_open`](Self::check_kind_open).
    fn try_driver(&self, request: &Request) -> io::Result<&crate::sys::Driver<C>> {
        self.check_kind_open(request)?;
        self.o.port.existing_driver().ok_or_else(crate::sys::closed_error)
    }

    /// Whether the backend makes eager attempts itself (epoll: it knows when the
    /// descriptor is not ready, and skips the system call then).
    fn attempts_eagerly(&self) -> bool {
        self.o.port.existing_driver().is_some_and(crate::sys::Driver::attempts_eagerly)
    }

    fn check_eager(&self, request: &Request, buf: &Buffer) -> io::Result<()> {
        request.check_args(Some(buf))?;
        self.check_kind_open(request)
    }

    /// The handle's kind allows `request`, and the port is open (for the calls that do
    /// not go through `submit`'s checks).
    fn check_kind_open(&self, request: &Request) -> io::Result<()> {
        self.o.shared.kind.check(request, self.o.shared.fd.as_fd())?;
        if self.o.port.is_closed() {
            return Err(crate::sys::closed_error());
        }
        Ok(())
    }

    fn immediate(&self, result: io::Result<usize>, buf: Buffer, context: C) -> crate::Completion<C> {
        let mut c = crate::Completion::io(self.o.shared.key, context);
        c.result = result;
        c.set_buffer(Some(buf));
        c
    }

    /// Shuts down one or both directions (`shutdown`; N2).
    ///
    /// It reaches the kernel before this call returns, unless this thread is inside a
    /// [`CompletionPort::batch`] section (docs/semantics.md H9).
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    pub fn shutdown(&self, how: Shutdown, context: C) -> Result<OpId<C>, SubmitError<C>> {
        self.submit(Request::Shutdown { how }, None, context)
    }

    /// Receives one datagram into `buf` (`recvmsg`; N2); the packet's `addr` is the sender.
    ///
    /// It reaches the kernel before this call returns, unless this thread is inside a
    /// [`CompletionPort::batch`] section (docs/semantics.md H9).
    ///
    /// # Errors
    ///
    /// `InvalidInput` if the handle is not a datagram socket.
    pub fn recv_from(&self, buf: impl Into<Buffer>, context: C) -> Result<OpId<C>, SubmitError<C>> {
        self.submit(Request::RecvFrom, Some(buf.into()), context)
    }

    /// Sends `buf[..len]` as one datagram to `addr` (`sendmsg`; N2).
    ///
    /// It reaches the kernel before this call returns, unless this thread is inside a
    /// [`CompletionPort::batch`] section (docs/semantics.md H9).
    ///
    /// # Errors
    ///
    /// As [`recv_from`](Self::recv_from).
    pub fn send_to(
        &self,
        buf: impl Into<Buffer>,
        addr: SocketAddr,
        context: C,
    ) -> Result<OpId<C>, SubmitError<C>> {
        self.submit(Request::SendTo { addr: Box::new(SockAddr::from(addr)) }, Some(buf.into()), context)
    }

    /// Requests cancellation of one operation and returns at once (`CancelIoEx` with an
    /// `OVERLAPPED`; docs/semantics.md H5). The operation still produces its one packet: cancelled,
    /// or with its real result if it finished first.
    ///
    /// # Errors
    ///
    /// `NotFound` if the operation's packet was already produced.
    pub fn cancel(&self, op: &OpId<C>) -> io::Result<()> {
        let driver = self.o.port.existing_driver().ok_or_else(crate::sys::closed_error)?;
        driver.cancel(&op.0)
    }

    /// Requests cancellation of every pending operation of this handle (`CancelIoEx` with
    /// no `OVERLAPPED`; H5). Returns at once; each still produces its one packet.
    ///
    /// # Errors
    ///
    /// `NotFound` if nothing is pending.
    pub fn cancel_all(&self) -> io::Result<()> {
        if self.pending() == 0 {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no operation is pending on this handle"));
        }
        let driver = self.o.port.existing_driver().ok_or_else(crate::sys::closed_error)?;
        driver.cancel_fd(&self.o.shared)
    }

    /// Drops this clone of the handle. When it is the last one, the handle closes: what is
    /// pending is cancelled, and the descriptor is closed once the last packet is produced
    /// (H6). Same as dropping it.
    pub fn close(self) {}
}

impl<C: Send + 'static> AsFd for Handle<C> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.o.shared.fd.as_fd()
    }
}

impl<C: Send + 'static> AsRawFd for Handle<C> {
    fn as_raw_fd(&self) -> RawFd {
        self.o.shared.fd.as_raw_fd()
    }
}

impl<C: Send + 'static> fmt::Debug for Handle<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("fd", &self.o.shared.fd.as_raw_fd())
            .field("key", &self.o.shared.key)
            .field("kind", &self.o.shared.kind)
            .field("pending", &self.pending())
            .finish()
    }
}

impl<C: Send + 'static> Drop for HandleOwner<C> {
    fn drop(&mut self) {
        // H6: Windows and io_uring both leave operations hanging when a handle closes; we
        // cancel them. The descriptor stays open in `shared` until their packets exist.
        if self.shared.pending() == 0 {
            return;
        }
        if let Some(driver) = self.port.existing_driver() {
            if let Err(e) = driver.cancel_fd(&self.shared) {
                tracing::debug!(error = %e, "cancel on handle drop");
            }
        }
    }
}
