//! The memory an operation reads into or writes from: owned (`Vec<u8>`, `Box<[u8]>`),
//! lent by the caller under a promise (raw pointers, for the C API's `OVERLAPPED`
//! buffers), or several of those as one scatter/gather list (`WSABUF` arrays).
//!
//! Whatever its form, a [`Buffer`] given to an operation belongs to the operation until its
//! packet is delivered, and comes back in the packet (docs/semantics.md H3, H11).

use std::fmt;

/// The most segments one vectored buffer may have (`IOV_MAX` on Linux).
pub const MAX_SEGMENTS: usize = 1024;

/// The memory of one operation.
///
/// * `Vec<u8>` (`Buffer::from(vec)`): reads fill it from its start up to its **capacity**
///   and set its length to the bytes read; writes send its `len()` bytes. The packet hands
///   it back in [`Completion::buffer`](crate::Completion::buffer), as a `Vec`.
/// * `Box<[u8]>` (`Buffer::from(boxed)`): reads fill it from its start up to its length
///   (the byte count says how far); writes send all of it.
/// * Raw memory ([`from_raw_parts`](Self::from_raw_parts) for writes,
///   [`from_raw_parts_mut`](Self::from_raw_parts_mut) for reads or writes): memory the
///   caller owns and promises to keep valid, and to leave alone, as long as the `Buffer`
///   lives, which is at least until the operation's packet is delivered. This is what
///   Windows asks of an `OVERLAPPED` buffer; the C API uses it to run operations on the
///   caller's memory without a copy.
/// * Vectored ([`vectored`](Self::vectored)): several of the above as one scatter/gather
///   list (`readv`/`writev`, `recvmsg`/`sendmsg` with several `iovec`s). Reads fill the
///   segments in order; writes send them in order.
///
/// Packets hand back every form but `Vec` in
/// [`Completion::memory`](crate::Completion::memory);
/// [`Completion::take_buffer`](crate::Completion::take_buffer) takes either.
///
/// # Examples
///
/// ```
/// use completion_port::{Buffer, CompletionPort};
/// use std::io::Write;
///
/// # fn main() -> std::io::Result<()> {
/// let path = std::env::temp_dir().join(format!("cp-buffer-doc-{}", std::process::id()));
/// std::fs::File::create(&path)?.write_all(b"scatter and gather")?;
/// let port: CompletionPort<()> = CompletionPort::new(0);
/// let file = port.associate(std::fs::File::open(&path)?, 1)?;
/// let parts = Buffer::vectored([vec![0u8; 7].into_boxed_slice(), vec![0u8; 32].into_boxed_slice()]);
/// file.read_at(parts, 0, ())?;
/// let mut packet = port.get(None)?;
/// assert_eq!(packet.result().unwrap(), 18);
/// let buffer = packet.take_buffer().unwrap();
/// assert_eq!(buffer.segments()[0].as_slice(), Some(&b"scatter"[..]));
/// assert_eq!(&buffer.segments()[1].as_slice().unwrap()[..11], b" and gather");
/// # std::fs::remove_file(&path)?;
/// # Ok(())
/// # }
/// ```
pub struct Buffer {
    repr: Repr,
}

enum Repr {
    Vec(Vec<u8>),
    Boxed(Box<[u8]>),
    Raw(Raw),
    /// Never nested: [`Buffer::vectored`] flattens.
    Vectored(Vec<Buffer>),
}

/// Caller-owned memory: `writable` when it came from `from_raw_parts_mut`.
struct Raw {
    ptr: *mut u8,
    len: usize,
    writable: bool,
}

// SAFETY: a `Raw` is, by the contract of `from_raw_parts(_mut)`, memory that nothing else
// touches while the `Buffer` lives: moving the sole access to another thread is as safe as
// moving a `Box<[u8]>`.
unsafe impl Send for Buffer {}
// SAFETY: shared references give only read access (`as_slice`), as for `Box<[u8]>`.
unsafe impl Sync for Buffer {}

/// One `iovec` per segment, without allocating for a contiguous buffer.
pub(crate) enum IoVecs {
    /// A contiguous buffer.
    One([libc::iovec; 1]),
    /// A vectored one.
    Many(Vec<libc::iovec>),
}

impl IoVecs {
    /// The `iovec`s.
    pub(crate) fn as_slice(&self) -> &[libc::iovec] {
        match self {
            IoVecs::One(one) => one,
            IoVecs::Many(many) => many,
        }
    }
}

fn iovec(ptr: *mut u8, len: usize) -> libc::iovec {
    libc::iovec { iov_base: ptr.cast(), iov_len: len }
}

impl Buffer {
    /// Memory the caller owns, for writes and sends (an operation that would write into it
    /// is refused with `InvalidInput` at submission).
    ///
    /// # Safety
    ///
    /// `ptr` must be valid for reads of `len` bytes, and stay so, with nothing writing to
    /// those bytes, until this `Buffer` is dropped (an operation holds it until its packet
    /// is delivered, and the packet hands it back). `ptr` may be dangling when `len` is 0.
    pub unsafe fn from_raw_parts(ptr: *const u8, len: usize) -> Self {
        Self { repr: Repr::Raw(Raw { ptr: ptr.cast_mut(), len, writable: false }) }
    }

    /// Memory the caller owns, for any operation: the kernel may write into it until the
    /// operation's packet is delivered.
    ///
    /// # Safety
    ///
    /// `ptr` must be valid for reads and writes of `len` bytes, and stay so, with nothing
    /// else reading or writing those bytes, until this `Buffer` is dropped (an operation
    /// holds it until its packet is delivered, and the packet hands it back). `ptr` may be
    /// dangling when `len` is 0.
    pub unsafe fn from_raw_parts_mut(ptr: *mut u8, len: usize) -> Self {
        Self { repr: Repr::Raw(Raw { ptr, len, writable: true }) }
    }

    /// Several buffers as one scatter/gather list, in order. A vectored buffer among
    /// `segments` contributes its own segments (the list is kept flat).
    pub fn vectored<B: Into<Buffer>>(segments: impl IntoIterator<Item = B>) -> Self {
        let mut flat = Vec::new();
        for s in segments {
            match s.into().repr {
                Repr::Vectored(inner) => flat.extend(inner),
                repr => flat.push(Buffer { repr }),
            }
        }
        Self { repr: Repr::Vectored(flat) }
    }

    /// Whether this is a scatter/gather list.
    pub fn is_vectored(&self) -> bool {
        matches!(self.repr, Repr::Vectored(_))
    }

    /// The segments of a vectored buffer; a contiguous buffer is its own one segment.
    pub fn segments(&self) -> &[Buffer] {
        match &self.repr {
            Repr::Vectored(s) => s,
            _ => std::slice::from_ref(self),
        }
    }

    /// Splits a vectored buffer into its segments; a contiguous buffer is one segment.
    pub fn into_segments(self) -> Vec<Buffer> {
        match self.repr {
            Repr::Vectored(s) => s,
            repr => vec![Buffer { repr }],
        }
    }

    /// The bytes of a contiguous buffer (a `Vec`'s length, the whole of the others);
    /// `None` for a vectored one.
    pub fn as_slice(&self) -> Option<&[u8]> {
        match &self.repr {
            Repr::Vec(v) => Some(v),
            Repr::Boxed(b) => Some(b),
            Repr::Raw(r) if r.len == 0 => Some(&[]),
            // SAFETY: `from_raw_parts(_mut)`'s contract: valid for reads of `len` bytes,
            // written by nobody else, while this `Buffer` lives (and the kernel is done
            // with it whenever a caller can hold `&self`: an operation owns its buffer).
            Repr::Raw(r) => Some(unsafe { std::slice::from_raw_parts(r.ptr, r.len) }),
            Repr::Vectored(_) => None,
        }
    }

    /// The bytes of every segment, in order, copied into one `Vec`.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        for s in self.segments() {
            out.extend_from_slice(s.as_slice().unwrap_or(&[]));
        }
        out
    }

    /// The `Vec` this buffer was made from, or the buffer itself if it was not a `Vec`.
    pub fn into_vec(self) -> Result<Vec<u8>, Buffer> {
        match self.repr {
            Repr::Vec(v) => Ok(v),
            repr => Err(Buffer { repr }),
        }
    }

    /// Bytes a write would send: a `Vec`'s length, the others' whole length, summed over
    /// segments.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Vec(v) => v.len(),
            Repr::Boxed(b) => b.len(),
            Repr::Raw(r) => r.len,
            Repr::Vectored(s) => s.iter().map(Buffer::len).sum(),
        }
    }

    /// Whether a write would send nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes a read may fill: a `Vec`'s capacity, the others' length, summed over
    /// segments.
    pub fn room(&self) -> usize {
        match &self.repr {
            Repr::Vec(v) => v.capacity(),
            Repr::Boxed(b) => b.len(),
            Repr::Raw(r) => r.len,
            Repr::Vectored(s) => s.iter().map(Buffer::room).sum(),
        }
    }

    /// Whether the kernel may write into every segment (raw memory from
    /// [`from_raw_parts`](Self::from_raw_parts) is read-only).
    pub(crate) fn writable(&self) -> bool {
        match &self.repr {
            Repr::Raw(r) => r.writable,
            Repr::Vectored(s) => s.iter().all(Buffer::writable),
            Repr::Vec(_) | Repr::Boxed(_) => true,
        }
    }

    /// How many segments the kernel sees.
    pub(crate) fn segment_count(&self) -> usize {
        self.segments().len()
    }

    /// The `(pointer, room)` of a contiguous buffer for a read, its `Vec` emptied first;
    /// `None` if vectored.
    pub(crate) fn read_region(&mut self) -> Option<(*mut u8, usize)> {
        match &mut self.repr {
            Repr::Vec(v) => {
                v.clear();
                Some((v.as_mut_ptr(), v.capacity()))
            }
            Repr::Boxed(b) => Some((b.as_mut_ptr(), b.len())),
            Repr::Raw(r) => Some((r.ptr, r.len)),
            Repr::Vectored(_) => None,
        }
    }

    /// The `(pointer, length)` of a contiguous buffer for a write; `None` if vectored.
    pub(crate) fn write_region(&mut self) -> Option<(*mut u8, usize)> {
        match &mut self.repr {
            Repr::Vec(v) => Some((v.as_mut_ptr(), v.len())),
            Repr::Boxed(b) => Some((b.as_mut_ptr(), b.len())),
            Repr::Raw(r) => Some((r.ptr, r.len)),
            Repr::Vectored(_) => None,
        }
    }

    /// The `iovec`s a read fills (each `Vec` segment emptied, offered up to its capacity).
    pub(crate) fn read_iovecs(&mut self) -> IoVecs {
        match &mut self.repr {
            Repr::Vectored(s) => {
                IoVecs::Many(s.iter_mut().filter_map(Buffer::read_region).map(|(p, n)| iovec(p, n)).collect())
            }
            _ => {
                let (p, n) = self.read_region().unwrap_or((std::ptr::null_mut(), 0));
                IoVecs::One([iovec(p, n)])
            }
        }
    }

    /// The `iovec`s a write sends.
    pub(crate) fn write_iovecs(&mut self) -> IoVecs {
        match &mut self.repr {
            Repr::Vectored(s) => IoVecs::Many(
                s.iter_mut().filter_map(Buffer::write_region).map(|(p, n)| iovec(p, n)).collect(),
            ),
            _ => {
                let (p, n) = self.write_region().unwrap_or((std::ptr::null_mut(), 0));
                IoVecs::One([iovec(p, n)])
            }
        }
    }

    /// Records that a read filled the first `n` bytes (in segment order): each `Vec`
    /// segment's length becomes what it received.
    ///
    /// # Safety
    ///
    /// The kernel wrote the first `n` bytes of the regions [`read_iovecs`](Self::read_iovecs)
    /// (or [`read_region`](Self::read_region)) gave, and nothing changed the buffer since.
    pub(crate) unsafe fn filled(&mut self, n: usize) {
        if let Repr::Vectored(s) = &mut self.repr {
            let mut n = n;
            for seg in s {
                // SAFETY: forwarded from this function's contract, segment by segment.
                n = unsafe { seg.fill_one(n) };
            }
        } else {
            // SAFETY: forwarded from this function's contract.
            unsafe { self.fill_one(n) };
        }
    }

    /// [`filled`](Self::filled) for one contiguous segment; returns what is left of `n`.
    ///
    /// # Safety
    ///
    /// As [`filled`](Self::filled).
    unsafe fn fill_one(&mut self, n: usize) -> usize {
        let got = n.min(self.room());
        if let Repr::Vec(v) = &mut self.repr {
            // SAFETY: the kernel initialised these `got <= capacity` bytes at the start of
            // the Vec (this function's contract).
            unsafe { v.set_len(got) };
        }
        n - got
    }
}

impl From<Vec<u8>> for Buffer {
    fn from(v: Vec<u8>) -> Self {
        Self { repr: Repr::Vec(v) }
    }
}

impl From<Box<[u8]>> for Buffer {
    fn from(b: Box<[u8]>) -> Self {
        Self { repr: Repr::Boxed(b) }
    }
}

impl fmt::Debug for Buffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.repr {
            Repr::Vec(_) => "Vec",
            Repr::Boxed(_) => "Box",
            Repr::Raw(r) if r.writable => "RawMut",
            Repr::Raw(_) => "Raw",
            Repr::Vectored(_) => "Vectored",
        };
        f.debug_struct("Buffer")
            .field("kind", &kind)
            .field("len", &self.len())
            .field("segments", &self.segment_count())
            .finish()
    }
}

/// A buffer as packets and refused calls hand it back: a `Vec` in the first place (as it
/// was given), any other form in the second.
pub(crate) fn split(buffer: Option<Buffer>) -> (Option<Vec<u8>>, Option<Buffer>) {
    match buffer.map(Buffer::into_vec) {
        None => (None, None),
        Some(Ok(v)) => (Some(v), None),
        Some(Err(b)) => (None, Some(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectored_is_flat_and_filled_in_order() {
        let inner = Buffer::vectored([Vec::with_capacity(2), Vec::with_capacity(3)]);
        let mut b = Buffer::vectored([inner, Buffer::from(vec![0u8; 4].into_boxed_slice())]);
        assert_eq!((b.segment_count(), b.room(), b.len()), (3, 9, 4));
        let iov = b.read_iovecs();
        assert_eq!(iov.as_slice().iter().map(|v| v.iov_len).collect::<Vec<_>>(), [2, 3, 4]);
        // What a 4-byte read does: the first segment, then half of the second.
        for (v, n) in iov.as_slice().iter().zip([2, 2]) {
            // SAFETY: each iovec is a live region of `b`, writable for its length (>= n).
            unsafe { std::ptr::write_bytes(v.iov_base.cast::<u8>(), 7, n) };
        }
        // SAFETY: the first 4 bytes were written just above.
        unsafe { b.filled(4) };
        let s = b.segments();
        assert_eq!((s[0].as_slice(), s[1].as_slice()), (Some(&[7u8, 7][..]), Some(&[7u8, 7][..])));
        assert_eq!(s[2].as_slice(), Some(&[0u8; 4][..]));
        assert_eq!((b.len(), b.to_vec()), (8, vec![7, 7, 7, 7, 0, 0, 0, 0]));
    }

    #[test]
    fn into_vec_only_for_vecs() {
        assert_eq!(Buffer::from(vec![1u8]).into_vec().unwrap(), [1]);
        let b = Buffer::from(vec![1u8].into_boxed_slice());
        assert!(b.into_vec().is_err());
        let ro = [1u8, 2];
        // SAFETY: `ro` outlives the buffer and is not written.
        let raw = unsafe { Buffer::from_raw_parts(ro.as_ptr(), ro.len()) };
        assert!(!raw.writable());
        assert_eq!(raw.as_slice(), Some(&ro[..]));
    }
}
