//! The packet a thread receives from the port.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::OwnedFd;

/// One completion packet: what `GetQueuedCompletionStatus` fills in, as one owned value.
///
/// A packet is either a user packet from [`CompletionPort::post`] or the completion of an
/// overlapped operation. Either way it carries the **key** of the handle (or the key given
/// to `post`), the **result** (bytes transferred, or the OS error of a failed operation),
/// the caller's **context** (the safe `OVERLAPPED_PLUS`) and, for I/O, the **buffer** the
/// operation owned while it was in flight (IOCP.md H3).
///
/// A failed operation is still a packet (IOCP.md P3 b): `result` is `Err`, and the
/// context and buffer are delivered so the caller can release them. It can never be
/// confused with a timeout or a closed port, which are [`GetError`] values instead.
///
/// [`CompletionPort::post`]: crate::CompletionPort::post
/// [`GetError`]: crate::GetError
#[non_exhaustive]
pub struct Completion<C> {
    /// The completion key: the key the handle was associated under, or the key given to
    /// `post`.
    pub key: usize,
    /// Bytes transferred (or the byte count given to `post`), or the error the operation
    /// failed with. `Ok(0)` on a socket receive means the peer closed the connection
    /// gracefully (IOCP.md N3): it is a success that means end of stream.
    pub result: io::Result<usize>,
    /// The per-operation context given when the operation was submitted or posted.
    pub context: C,
    /// The buffer the operation owned, handed back with the bytes transferred in it; `None`
    /// for posted packets and operations without a buffer.
    pub buffer: Option<Vec<u8>>,
    /// For an accept: the new, connected socket. It is not associated with any port until
    /// the caller does so (IOCP.md N1). See [`take_stream`](Self::take_stream).
    pub accepted: Option<OwnedFd>,
    /// For an accept: the peer's address; for `recv_from`: the sender's address.
    pub addr: Option<SocketAddr>,
}

impl<C> Completion<C> {
    /// A packet as `post` queues it.
    pub(crate) fn posted(key: usize, bytes: usize, context: C) -> Self {
        Self { key, result: Ok(bytes), context, buffer: None, accepted: None, addr: None }
    }

    /// An I/O packet under construction by a backend.
    pub(crate) fn io(key: usize, context: C) -> Self {
        Self { key, result: Ok(0), context, buffer: None, accepted: None, addr: None }
    }

    /// Whether the operation was cancelled (`ECANCELED`): by `cancel`, by closing its
    /// handle, or by closing the port (IOCP.md H5, H6, P10).
    pub fn is_cancelled(&self) -> bool {
        matches!(&self.result, Err(e) if e.raw_os_error() == Some(libc::ECANCELED))
    }

    /// Takes the socket an accept produced, as a `TcpStream`.
    pub fn take_stream(&mut self) -> Option<TcpStream> {
        self.accepted.take().map(TcpStream::from)
    }

    /// The byte count of a successful packet, or a reference to its error.
    pub fn bytes(&self) -> Result<usize, &io::Error> {
        self.result.as_ref().map(|n| *n)
    }

    /// Splits the packet into its key, result, context and buffer.
    pub fn into_parts(self) -> (usize, io::Result<usize>, C, Option<Vec<u8>>) {
        (self.key, self.result, self.context, self.buffer)
    }
}

impl<C: fmt::Debug> fmt::Debug for Completion<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completion")
            .field("key", &self.key)
            .field("result", &self.result)
            .field("context", &self.context)
            .field("buffer_len", &self.buffer.as_ref().map(Vec::len))
            .field("accepted", &self.accepted)
            .field("addr", &self.addr)
            .finish()
    }
}
