//! The packet a thread receives from the port.

use crate::buffer::Buffer;
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
/// operation owned while it was in flight (docs/semantics.md H3 in the repository).
///
/// A failed operation is still a packet (docs/semantics.md P3 b): `result` is `Err`, and the
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
    /// gracefully (N3): it is a success that means end of stream.
    pub result: io::Result<usize>,
    /// The per-operation context given when the operation was submitted or posted.
    pub context: C,
    /// The buffer the operation owned, if it was a `Vec<u8>`, handed back with the bytes
    /// transferred in it (a read sets its length to the bytes read); `None` for posted
    /// packets, operations without a buffer and buffers of other forms.
    pub buffer: Option<Vec<u8>>,
    /// The buffer the operation owned, if it was of another form than `Vec<u8>`
    /// (`Box<[u8]>`, raw memory, a scatter/gather list: [`Buffer`]; docs/semantics.md H11).
    /// Its bytes are the operation's: a read filled the first `result` bytes of it.
    pub memory: Option<Buffer>,
    /// For an accept: the new, connected socket. It is not associated with any port until
    /// the caller does so (N1). See [`take_stream`](Self::take_stream).
    pub accepted: Option<OwnedFd>,
    /// For an accept: the peer's address; for `recv_from`: the sender's address.
    pub addr: Option<SocketAddr>,
}

impl<C> Completion<C> {
    /// A packet as `post` queues it.
    pub(crate) fn posted(key: usize, bytes: usize, context: C) -> Self {
        Self { key, result: Ok(bytes), context, buffer: None, memory: None, accepted: None, addr: None }
    }

    /// An I/O packet under construction by a backend.
    pub(crate) fn io(key: usize, context: C) -> Self {
        Self { key, result: Ok(0), context, buffer: None, memory: None, accepted: None, addr: None }
    }

    /// Hands the operation's buffer back in the field for its form.
    pub(crate) fn set_buffer(&mut self, buffer: Option<Buffer>) {
        (self.buffer, self.memory) = crate::buffer::split(buffer);
    }

    /// Takes the operation's buffer, whatever its form (a `Vec` comes back as the
    /// [`Buffer`] it was turned into; [`Buffer::into_vec`] turns it back).
    pub fn take_buffer(&mut self) -> Option<Buffer> {
        self.buffer.take().map(Buffer::from).or_else(|| self.memory.take())
    }

    /// Whether the operation was cancelled (`ECANCELED`): by `cancel`, by closing its
    /// handle, or by closing the port (docs/semantics.md H5, H6, P10 in the repository).
    pub fn is_cancelled(&self) -> bool {
        matches!(&self.result, Err(e) if e.raw_os_error() == Some(libc::ECANCELED))
    }

    /// The result without moving it out of the packet: the byte count, or a reference to
    /// the error.
    ///
    /// Matching on the field `result` moves the error out, after which the packet can no
    /// longer be asked [`is_cancelled`](Self::is_cancelled); matching on `result()` keeps the
    /// packet whole.
    ///
    /// # Examples
    ///
    /// ```
    /// use completion_port::CompletionPort;
    /// use std::time::Duration;
    ///
    /// let port: CompletionPort<&str> = CompletionPort::new(1);
    /// port.post(3, 512, "posted").unwrap();
    /// let packet = port.get(Some(Duration::from_secs(5))).unwrap();
    /// match packet.result() {
    ///     Ok(0) => println!("end of stream"),
    ///     Ok(n) => assert_eq!(n, 512),
    ///     Err(_) if packet.is_cancelled() => println!("cancelled"),
    ///     Err(e) => println!("failed: {e}"),
    /// }
    /// assert_eq!(packet.context, "posted"); // the packet is still whole
    /// ```
    pub fn result(&self) -> Result<usize, &io::Error> {
        self.result.as_ref().map(|n| *n)
    }

    /// The error of a failed operation, or `None` if it succeeded.
    ///
    /// ```
    /// use completion_port::CompletionPort;
    ///
    /// let port: CompletionPort<()> = CompletionPort::new(1);
    /// port.post(0, 1, ()).unwrap();
    /// assert!(port.get(None).unwrap().error().is_none());
    /// ```
    pub fn error(&self) -> Option<&io::Error> {
        self.result.as_ref().err()
    }

    /// The byte count of a successful packet, or a reference to its error. Same as
    /// [`result`](Self::result), kept under its first name.
    pub fn bytes(&self) -> Result<usize, &io::Error> {
        self.result()
    }

    /// The bytes the operation left in its buffer (what a read or receive filled in, what
    /// a write or send was given); empty when the packet carries no buffer. For a buffer
    /// that is not a `Vec`, the whole of it (a read filled the first `result` bytes), and
    /// nothing for a scatter/gather list: see [`memory`](Self::memory).
    ///
    /// ```
    /// use completion_port::CompletionPort;
    ///
    /// let port: CompletionPort<()> = CompletionPort::new(1);
    /// port.post(0, 0, ()).unwrap();
    /// assert!(port.get(None).unwrap().data().is_empty()); // posted packets carry no buffer
    /// ```
    pub fn data(&self) -> &[u8] {
        match (&self.buffer, &self.memory) {
            (Some(v), _) => v,
            (None, Some(m)) => m.as_slice().unwrap_or(&[]),
            (None, None) => &[],
        }
    }

    /// Takes the socket an accept produced, as a `TcpStream`.
    pub fn take_stream(&mut self) -> Option<TcpStream> {
        self.accepted.take().map(TcpStream::from)
    }

    /// Splits the packet into its key, result, context and buffer, dropping the accepted
    /// socket and address (if any) and a buffer that is not a `Vec` (take that first with
    /// [`take_buffer`](Self::take_buffer)). [`into_all_parts`](Self::into_all_parts) returns every
    /// field.
    pub fn into_parts(self) -> (usize, io::Result<usize>, C, Option<Vec<u8>>) {
        (self.key, self.result, self.context, self.buffer)
    }

    /// Splits the packet into every field it has, as a [`Parts`] that can be destructured
    /// without `..`.
    ///
    /// ```
    /// use completion_port::{CompletionPort, Parts};
    ///
    /// let port: CompletionPort<u32> = CompletionPort::new(1);
    /// port.post(9, 4, 77).unwrap();
    /// let Parts { key, result, context, buffer, memory, accepted, addr } = port.get(None).unwrap().into_all_parts();
    /// assert_eq!((key, result.unwrap(), context), (9, 4, 77));
    /// assert!(buffer.is_none() && memory.is_none() && accepted.is_none() && addr.is_none());
    /// ```
    pub fn into_all_parts(self) -> Parts<C> {
        Parts {
            key: self.key,
            result: self.result,
            context: self.context,
            buffer: self.buffer,
            memory: self.memory,
            accepted: self.accepted,
            addr: self.addr,
        }
    }
}

/// Every field of a [`Completion`], from [`Completion::into_all_parts`].
///
/// Unlike `Completion` this struct is exhaustive: a pattern that names every field compiles,
/// and a field added in a later version is a compile error there rather than a value
/// silently dropped (an accepted socket closed unseen, say).
#[derive(Debug)]
pub struct Parts<C> {
    /// See [`Completion::key`].
    pub key: usize,
    /// See [`Completion::result`].
    pub result: io::Result<usize>,
    /// See [`Completion::context`].
    pub context: C,
    /// See [`Completion::buffer`].
    pub buffer: Option<Vec<u8>>,
    /// See [`Completion::memory`].
    pub memory: Option<Buffer>,
    /// See [`Completion::accepted`].
    pub accepted: Option<OwnedFd>,
    /// See [`Completion::addr`].
    pub addr: Option<SocketAddr>,
}

impl<C: fmt::Debug> fmt::Debug for Completion<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completion")
            .field("key", &self.key)
            .field("result", &self.result)
            .field("context", &self.context)
            .field("buffer_len", &self.buffer.as_ref().map(Vec::len))
            .field("memory", &self.memory)
            .field("accepted", &self.accepted)
            .field("addr", &self.addr)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(errno: i32) -> Completion<&'static str> {
        let mut c = Completion::io(5, "ctx");
        c.result = Err(io::Error::from_raw_os_error(errno));
        c.buffer = Some(b"kept".to_vec());
        c
    }

    #[test]
    fn result_and_error_do_not_move_the_error() {
        let c = failed(libc::ECANCELED);
        assert_eq!(c.result().unwrap_err().raw_os_error(), Some(libc::ECANCELED));
        assert_eq!(c.error().and_then(io::Error::raw_os_error), Some(libc::ECANCELED));
        // Still whole: the error can be asked about again, and the rest is there.
        assert!(c.is_cancelled());
        assert_eq!((c.key, c.context, c.data()), (5, "ctx", &b"kept"[..]));
        assert_eq!(c.bytes().unwrap_err().raw_os_error(), Some(libc::ECANCELED));
    }

    #[test]
    fn success_has_no_error() {
        let mut c = Completion::posted(1, 42, ());
        assert_eq!(c.result().unwrap(), 42);
        assert!(c.error().is_none() && !c.is_cancelled() && c.data().is_empty());
        c.addr = Some(SocketAddr::from(([127, 0, 0, 1], 9)));
        let parts = c.into_all_parts();
        assert_eq!((parts.key, parts.result.unwrap()), (1, 42));
        assert_eq!(parts.addr, Some(SocketAddr::from(([127, 0, 0, 1], 9))));
        assert!(parts.buffer.is_none() && parts.accepted.is_none());
    }

    #[test]
    fn into_parts_keeps_its_four_fields() {
        let (key, result, context, buffer) = failed(libc::EIO).into_parts();
        assert_eq!((key, context, buffer.as_deref()), (5, "ctx", Some(&b"kept"[..])));
        assert_eq!(result.unwrap_err().raw_os_error(), Some(libc::EIO));
    }
}
