//! The caller's memory of one overlapped call (`lpBuffer`, or a `WSABUF` array), lent to
//! the library as it is: operations run on it directly, with no copy, as Windows' do.

use crate::error::code::*;
use crate::types::{DWORD, WSABUF};
use completion_port::{Buffer, MAX_BUFFER, MAX_SEGMENTS};

/// `(address, length)` of each of the caller's buffers, in order: inline for one (the
/// common case: no allocation per operation).
pub(crate) enum Regions {
    One([(usize, usize); 1]),
    Many(Box<[(usize, usize)]>),
}

impl Regions {
    /// One buffer.
    pub(crate) fn one(addr: usize, len: usize) -> Self {
        Regions::One([(addr, len)])
    }

    /// The caller's `WSABUF` array, refused (`WSAEFAULT`, `WSAEINVAL`) if it is NULL with a
    /// count, longer than the kernel accepts, or more than `MAX_BUFFER` bytes in all.
    ///
    /// # Safety
    ///
    /// `bufs` points to `count` readable `WSABUF`s (read during this call only).
    pub(crate) unsafe fn wsabufs(bufs: *const WSABUF, count: DWORD) -> Result<Self, u32> {
        if count == 0 {
            return Ok(Self::one(0, 0));
        }
        if bufs.is_null() {
            return Err(WSAEFAULT);
        }
        if count as usize > MAX_SEGMENTS {
            return Err(WSAEINVAL);
        }
        // SAFETY: contract.
        let s = unsafe { std::slice::from_raw_parts(bufs, count as usize) };
        let r = match s {
            [one] => Self::one(one.buf as usize, one.len as usize),
            _ => Regions::Many(s.iter().map(|b| (b.buf as usize, b.len as usize)).collect()),
        };
        if r.total() > MAX_BUFFER {
            return Err(WSAEINVAL);
        }
        Ok(r)
    }

    /// The regions.
    pub(crate) fn as_slice(&self) -> &[(usize, usize)] {
        match self {
            Regions::One(one) => one,
            Regions::Many(m) => m,
        }
    }

    /// Bytes in all.
    pub(crate) fn total(&self) -> usize {
        self.as_slice().iter().map(|r| r.1).sum()
    }

    /// The regions as a library [`Buffer`] on the caller's memory, without their first
    /// `skip` bytes; `writable` for reads.
    ///
    /// # Safety
    ///
    /// Each region is memory the C caller gave with an overlapped call and keeps valid
    /// (writable, if `writable`), and leaves alone, until that call's packet is delivered:
    /// Windows' contract for `OVERLAPPED` buffers. The `Buffer` must be given to that call's
    /// operation (which holds it until its packet) and dropped by the time the packet is
    /// handed to the caller.
    pub(crate) unsafe fn buffer(&self, writable: bool, mut skip: usize) -> Buffer {
        let mut segs = self.as_slice().iter().filter_map(|&(addr, len)| {
            if skip >= len && len > 0 {
                skip -= len;
                return None;
            }
            let (addr, len) = (addr + skip, len - skip.min(len));
            skip = 0;
            // SAFETY: the region lies in the caller's buffer (this function's contract),
            // which stays valid and untouched by the caller until the packet; the Buffer
            // lives no longer than that.
            Some(unsafe {
                if writable {
                    Buffer::from_raw_parts_mut(addr as *mut u8, len)
                } else {
                    Buffer::from_raw_parts(addr as *const u8, len)
                }
            })
        });
        match self {
            Regions::One(_) => segs.next().unwrap_or_else(|| Buffer::from(Vec::new())),
            Regions::Many(_) => Buffer::vectored(segs),
        }
    }
}
