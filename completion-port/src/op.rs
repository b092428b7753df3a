//! Overlapped operations, defined once for every backend.
//!
//! An operation is a [`Request`] (what to do), the handle it runs on, the caller's context
//! and the buffer it owns until its packet is delivered (docs/semantics.md H3). Backends under
//! `sys/` turn a request into kernel calls and the kernel's result back into a
//! [`Completion`](crate::Completion); they decide no policy.

use crate::buffer::{Buffer, MAX_SEGMENTS};
use socket2::SockAddr;
use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::fd::BorrowedFd;

/// The largest buffer one operation accepts: the kernel's length fields are 32-bit.
pub const MAX_BUFFER: usize = u32::MAX as usize;

/// What an operation asks the kernel to do. Each variant names the syscall it equals.
#[derive(Debug)]
pub(crate) enum Request {
    /// `pread(fd, buf, buf.capacity(), offset)`.
    ReadAt { offset: u64 },
    /// `pwrite(fd, buf, buf.len(), offset)`.
    WriteAt { offset: u64 },
    /// `fsync(fd)`, or `fdatasync(fd)` when `data_only`.
    Sync { data_only: bool },
    /// `accept4(fd, &addr, &len, SOCK_CLOEXEC)`.
    Accept,
    /// `connect(fd, addr)`.
    Connect { addr: Box<SockAddr> },
    /// `recv(fd, buf, buf.capacity(), 0)`; a zero-capacity buffer is `poll(fd, POLLIN)`
    /// instead, which completes when data is readable without consuming it (docs/semantics.md N6).
    Recv,
    /// `send(fd, buf, buf.len(), MSG_NOSIGNAL)`.
    Send,
    /// `shutdown(fd, how)`.
    Shutdown { how: Shutdown },
    /// `recvmsg(fd, {buf, &addr}, 0)`.
    RecvFrom,
    /// `sendmsg(fd, {buf, addr}, MSG_NOSIGNAL)`.
    SendTo { addr: Box<SockAddr> },
}

/// The largest file offset `pread`/`pwrite` accept (`off_t` is signed); io_uring would
/// read a larger one, `u64::MAX` (-1), as "the current file position" (docs/semantics.md F4).
pub(crate) const MAX_OFFSET: u64 = i64::MAX as u64;

impl Request {
    /// Refuses arguments the kernel would misread or refuse, before anything is submitted,
    /// whatever the backend: offsets above `i64::MAX` (docs/semantics.md F4) and buffers
    /// longer than the kernel's 32-bit length fields ([`MAX_BUFFER`]).
    ///
    /// Also refuses, for any buffer form (docs/semantics.md H11), a read into read-only raw
    /// memory and a scatter/gather list of more than [`MAX_SEGMENTS`] segments.
    pub(crate) fn check_args(&self, buffer: Option<&Buffer>) -> io::Result<()> {
        if let Some(buf) = buffer {
            let len = if self.fills_buffer() { buf.room() } else { buf.len() };
            if len > MAX_BUFFER {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("buffer of {len} bytes is longer than the kernel accepts ({MAX_BUFFER})"),
                ));
            }
            if self.fills_buffer() && !buf.writable() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a read needs writable memory: this buffer came from Buffer::from_raw_parts",
                ));
            }
            let n = buf.segment_count();
            if n > MAX_SEGMENTS {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("a buffer of {n} segments has more than the kernel accepts ({MAX_SEGMENTS})"),
                ));
            }
        }
        match self {
            Request::ReadAt { offset } | Request::WriteAt { offset } if *offset > MAX_OFFSET => {
                Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "file offset {offset} is above the largest one pread/pwrite accept ({MAX_OFFSET})"
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    /// Whether the request reads into the buffer (its capacity is the length asked for).
    pub(crate) fn fills_buffer(&self) -> bool {
        matches!(self, Request::ReadAt { .. } | Request::Recv | Request::RecvFrom)
    }
}

/// What kind of object a handle wraps, learned once at association.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FdKind {
    /// A regular file, block device or anything else that is not a socket.
    File,
    /// A connection-oriented socket that is not listening (TCP, Unix stream).
    Stream,
    /// A listening socket.
    Listener,
    /// A datagram socket (UDP, Unix datagram).
    Datagram,
}

impl FdKind {
    /// Refuses requests that cannot work on this kind of descriptor (docs/semantics.md H2: a clear
    /// error at submission, no packet). `fd` is asked whether it listens now when the kind
    /// learned at association says it did not (docs/semantics.md N7: `listen` may come
    /// after `associate`).
    pub(crate) fn check(self, req: &Request, fd: BorrowedFd<'_>) -> io::Result<()> {
        use FdKind::*;
        let ok = match req {
            Request::ReadAt { .. } | Request::WriteAt { .. } | Request::Sync { .. } => true,
            Request::Accept => {
                self == Listener
                    || (self == Stream && rustix::net::sockopt::socket_acceptconn(fd).unwrap_or(false))
            }
            Request::Connect { .. } => matches!(self, Stream | Datagram),
            Request::Recv | Request::Send | Request::Shutdown { .. } => matches!(self, Stream | Datagram),
            Request::RecvFrom | Request::SendTo { .. } => self == Datagram,
        };
        if ok {
            return Ok(());
        }
        let msg = match (self, req) {
            (File, _) => "the handle is not a socket",
            (Listener, _) => "the handle is a listening socket: only accept is valid on it",
            (_, Request::Accept) => "accept needs a listening socket",
            _ => "send_to/recv_from need a datagram socket",
        };
        Err(io::Error::new(io::ErrorKind::InvalidInput, msg))
    }
}

/// A refused submission (docs/semantics.md H2): the error, with the context and buffer handed back.
/// No packet will be produced for it.
pub struct SubmitError<C> {
    /// Why the operation was refused.
    pub error: io::Error,
    /// The context given to the refused call.
    pub context: C,
    /// The buffer given to the refused call, if it took one and it was a `Vec<u8>`.
    pub buffer: Option<Vec<u8>>,
    /// The buffer given to the refused call, if it took one of another form (a
    /// `Box<[u8]>`, raw memory, a scatter/gather list; docs/semantics.md H11).
    pub memory: Option<Buffer>,
}

impl<C> SubmitError<C> {
    pub(crate) fn new(error: io::Error, context: C, buffer: Option<Buffer>) -> Self {
        let (buffer, memory) = crate::buffer::split(buffer);
        Self { error, context, buffer, memory }
    }

    /// Takes the refused call's buffer, whatever its form (a `Vec` comes back as the
    /// [`Buffer`] it was turned into).
    pub fn take_buffer(&mut self) -> Option<Buffer> {
        self.buffer.take().map(Buffer::from).or_else(|| self.memory.take())
    }

    /// The error's kind.
    pub fn kind(&self) -> io::ErrorKind {
        self.error.kind()
    }

    /// Whether the operation was refused because the port is closed (as opposed to a bad
    /// argument or an OS error).
    pub fn is_closed(&self) -> bool {
        self.error.get_ref().is_some_and(|e| e.is::<crate::Closed>())
    }

    /// Splits into the error, the context and the buffer (a `Vec`; a buffer of another
    /// form is dropped: take it first with [`take_buffer`](Self::take_buffer)).
    pub fn into_parts(self) -> (io::Error, C, Option<Vec<u8>>) {
        (self.error, self.context, self.buffer)
    }
}

impl<C> fmt::Debug for SubmitError<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubmitError")
            .field("error", &self.error)
            .field("buffer_len", &self.buffer.as_ref().map(Vec::len))
            .field("memory", &self.memory)
            .finish_non_exhaustive()
    }
}

impl<C> fmt::Display for SubmitError<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "operation refused: {}", self.error)
    }
}

impl<C> std::error::Error for SubmitError<C> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl<C> From<SubmitError<C>> for io::Error {
    /// Keeps the error; the context and buffer are dropped.
    fn from(e: SubmitError<C>) -> Self {
        e.error
    }
}
