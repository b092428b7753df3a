//! The Win32 structures the API exchanges with C, laid out as `iocp.h` declares them.

#![allow(non_snake_case, non_camel_case_types)]

use std::ffi::{c_char, c_void};

/// `HANDLE`: a value from the handle table (see `table.rs`), never dereferenced.
pub type HANDLE = *mut c_void;
/// `SOCKET`: a value from the same table.
pub type SOCKET = usize;
/// `BOOL`.
pub type BOOL = i32;
/// `DWORD`.
pub type DWORD = u32;

/// `TRUE`.
pub const TRUE: BOOL = 1;
/// `FALSE`.
pub const FALSE: BOOL = 0;
/// `INFINITE`: wait without limit.
pub const INFINITE: DWORD = 0xFFFF_FFFF;
/// `INVALID_HANDLE_VALUE`.
pub const INVALID_HANDLE_VALUE: HANDLE = usize::MAX as HANDLE;
/// `INVALID_SOCKET`.
pub const INVALID_SOCKET: SOCKET = usize::MAX;
/// `SOCKET_ERROR`.
pub const SOCKET_ERROR: i32 = -1;

/// `OVERLAPPED`: the caller's per-operation structure; `Internal` is the NTSTATUS and
/// `InternalHigh` the byte count once the operation's packet is delivered.
#[repr(C)]
pub struct OVERLAPPED {
    /// NTSTATUS of the operation (`STATUS_PENDING` while in flight).
    pub Internal: usize,
    /// Bytes transferred.
    pub InternalHigh: usize,
    /// Low half of the file offset.
    pub Offset: u32,
    /// High half of the file offset.
    pub OffsetHigh: u32,
    /// An event to set when the operation completes, or NULL.
    pub hEvent: HANDLE,
}

/// `OVERLAPPED_ENTRY`: one packet of `GetQueuedCompletionStatusEx`.
#[repr(C)]
pub struct OVERLAPPED_ENTRY {
    /// The completion key.
    pub lpCompletionKey: usize,
    /// The operation's `OVERLAPPED` (or the posted pointer).
    pub lpOverlapped: *mut OVERLAPPED,
    /// Reserved (the NTSTATUS, as on Windows).
    pub Internal: usize,
    /// Bytes transferred.
    pub dwNumberOfBytesTransferred: DWORD,
}

/// `WSABUF`: one buffer of a scatter/gather list.
#[repr(C)]
pub struct WSABUF {
    /// Length in bytes.
    pub len: u32,
    /// The bytes.
    pub buf: *mut c_char,
}

/// `WSADATA` (the 64-bit Windows layout).
#[repr(C)]
pub struct WSADATA {
    /// Version in use.
    pub wVersion: u16,
    /// Highest version supported.
    pub wHighVersion: u16,
    /// Obsolete.
    pub iMaxSockets: u16,
    /// Obsolete.
    pub iMaxUdpDg: u16,
    /// Obsolete.
    pub lpVendorInfo: *mut c_char,
    /// Description.
    pub szDescription: [c_char; 257],
    /// Status.
    pub szSystemStatus: [c_char; 129],
}

/// The handle value as a table key.
pub(crate) fn hval(h: HANDLE) -> usize {
    h as usize
}

/// Writes the outcome of an operation into the caller's `OVERLAPPED`.
///
/// # Safety
///
/// `ov` is 0 or the address of an `OVERLAPPED` the caller gave with the operation; as on
/// Windows, the caller keeps it valid until the operation's packet has been delivered.
pub(crate) unsafe fn write_overlapped(ov: usize, internal: usize, bytes: usize) {
    if ov == 0 {
        return;
    }
    let p = ov as *mut OVERLAPPED;
    // SAFETY: per this function's contract `p` is a live OVERLAPPED; the writes are
    // volatile because another thread may poll `Internal` (HasOverlappedIoCompleted).
    unsafe {
        std::ptr::addr_of_mut!((*p).InternalHigh).write_volatile(bytes);
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        std::ptr::addr_of_mut!((*p).Internal).write_volatile(internal);
    }
}

/// Reads an `OVERLAPPED`'s event handle, offset and status.
///
/// # Safety
///
/// As [`write_overlapped`].
pub(crate) unsafe fn read_overlapped(ov: usize) -> (usize, u64, usize, usize) {
    let p = ov as *const OVERLAPPED;
    // SAFETY: per this function's contract `p` is a live OVERLAPPED.
    unsafe {
        let event = std::ptr::addr_of!((*p).hEvent).read_volatile() as usize;
        let offset = u64::from((*p).Offset) | (u64::from((*p).OffsetHigh) << 32);
        let internal = std::ptr::addr_of!((*p).Internal).read_volatile();
        std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
        let high = std::ptr::addr_of!((*p).InternalHigh).read_volatile();
        (event, offset, internal, high)
    }
}
