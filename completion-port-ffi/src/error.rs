//! Win32 error codes: the thread's last error, and the mapping from `errno` and
//! `io::Error` to Windows' codes and to the NTSTATUS values `OVERLAPPED.Internal` holds.

use std::cell::Cell;
use std::io;

/// Windows' error codes (winerror.h), with their numeric values.
#[allow(missing_docs)]
pub mod code {
    pub const ERROR_SUCCESS: u32 = 0;
    pub const ERROR_FILE_NOT_FOUND: u32 = 2;
    pub const ERROR_PATH_NOT_FOUND: u32 = 3;
    pub const ERROR_TOO_MANY_OPEN_FILES: u32 = 4;
    pub const ERROR_ACCESS_DENIED: u32 = 5;
    pub const ERROR_INVALID_HANDLE: u32 = 6;
    pub const ERROR_NOT_ENOUGH_MEMORY: u32 = 8;
    pub const ERROR_GEN_FAILURE: u32 = 31;
    pub const ERROR_HANDLE_EOF: u32 = 38;
    pub const ERROR_NOT_SUPPORTED: u32 = 50;
    pub const ERROR_NETNAME_DELETED: u32 = 64;
    pub const ERROR_FILE_EXISTS: u32 = 80;
    pub const ERROR_INVALID_PARAMETER: u32 = 87;
    pub const ERROR_BROKEN_PIPE: u32 = 109;
    pub const ERROR_DISK_FULL: u32 = 112;
    pub const ERROR_SEM_TIMEOUT: u32 = 121;
    pub const ERROR_ALREADY_EXISTS: u32 = 183;
    pub const WAIT_TIMEOUT: u32 = 258;
    pub const ERROR_ABANDONED_WAIT_0: u32 = 735;
    pub const ERROR_OPERATION_ABORTED: u32 = 995;
    pub const ERROR_IO_INCOMPLETE: u32 = 996;
    pub const ERROR_IO_PENDING: u32 = 997;
    pub const ERROR_NOT_FOUND: u32 = 1168;
    pub const ERROR_CONNECTION_REFUSED: u32 = 1225;
    pub const ERROR_NETWORK_UNREACHABLE: u32 = 1231;
    pub const ERROR_HOST_UNREACHABLE: u32 = 1232;
    pub const ERROR_CONNECTION_ABORTED: u32 = 1236;
    pub const ERROR_INTERNAL_ERROR: u32 = 1359;
    pub const WSAEINTR: u32 = 10004;
    pub const WSAEBADF: u32 = 10009;
    pub const WSAEACCES: u32 = 10013;
    pub const WSAEFAULT: u32 = 10014;
    pub const WSAEINVAL: u32 = 10022;
    pub const WSAEMFILE: u32 = 10024;
    pub const WSAEWOULDBLOCK: u32 = 10035;
    pub const WSAEINPROGRESS: u32 = 10036;
    pub const WSAEALREADY: u32 = 10037;
    pub const WSAENOTSOCK: u32 = 10038;
    pub const WSAEDESTADDRREQ: u32 = 10039;
    pub const WSAEMSGSIZE: u32 = 10040;
    pub const WSAEPROTOTYPE: u32 = 10041;
    pub const WSAENOPROTOOPT: u32 = 10042;
    pub const WSAEPROTONOSUPPORT: u32 = 10043;
    pub const WSAEOPNOTSUPP: u32 = 10045;
    pub const WSAEAFNOSUPPORT: u32 = 10047;
    pub const WSAEADDRINUSE: u32 = 10048;
    pub const WSAEADDRNOTAVAIL: u32 = 10049;
    pub const WSAENETDOWN: u32 = 10050;
    pub const WSAENETUNREACH: u32 = 10051;
    pub const WSAECONNABORTED: u32 = 10053;
    pub const WSAECONNRESET: u32 = 10054;
    pub const WSAENOBUFS: u32 = 10055;
    pub const WSAEISCONN: u32 = 10056;
    pub const WSAENOTCONN: u32 = 10057;
    pub const WSAESHUTDOWN: u32 = 10058;
    pub const WSAETIMEDOUT: u32 = 10060;
    pub const WSAECONNREFUSED: u32 = 10061;
    pub const WSAEHOSTUNREACH: u32 = 10065;
    pub const WSANOTINITIALISED: u32 = 10093;
}
use code::*;

thread_local! {
    static LAST_ERROR: Cell<u32> = const { Cell::new(0) };
}

/// Sets the calling thread's last error.
pub(crate) fn set_last(code: u32) {
    let _ = LAST_ERROR.try_with(|c| c.set(code));
}

/// The calling thread's last error.
pub(crate) fn last() -> u32 {
    LAST_ERROR.try_with(Cell::get).unwrap_or(0)
}

/// The Win32 code for an `errno`, as the file and completion calls report it.
/// `socket`: the error came from a socket operation (a reset is then the network name
/// deleted, as Windows reports a failed overlapped socket operation).
pub(crate) fn from_errno(errno: i32, socket: bool) -> u32 {
    match errno {
        0 => ERROR_SUCCESS,
        libc::ECANCELED => ERROR_OPERATION_ABORTED,
        libc::ECONNRESET | libc::EPIPE if socket => ERROR_NETNAME_DELETED,
        libc::EPIPE => ERROR_BROKEN_PIPE,
        libc::ECONNREFUSED => ERROR_CONNECTION_REFUSED,
        libc::ECONNABORTED => ERROR_CONNECTION_ABORTED,
        libc::ENETUNREACH => ERROR_NETWORK_UNREACHABLE,
        libc::EHOSTUNREACH => ERROR_HOST_UNREACHABLE,
        libc::ETIMEDOUT => ERROR_SEM_TIMEOUT,
        libc::ENOENT => ERROR_FILE_NOT_FOUND,
        libc::ENOTDIR => ERROR_PATH_NOT_FOUND,
        libc::EACCES | libc::EPERM | libc::EROFS | libc::EISDIR => ERROR_ACCESS_DENIED,
        libc::EEXIST => ERROR_FILE_EXISTS,
        libc::EBADF => ERROR_INVALID_HANDLE,
        libc::EINVAL | libc::EFAULT => ERROR_INVALID_PARAMETER,
        libc::ENOMEM => ERROR_NOT_ENOUGH_MEMORY,
        libc::ENOSPC => ERROR_DISK_FULL,
        libc::EMFILE | libc::ENFILE => ERROR_TOO_MANY_OPEN_FILES,
        libc::EOPNOTSUPP => ERROR_NOT_SUPPORTED,
        _ if socket => from_errno_wsa(errno),
        _ => ERROR_GEN_FAILURE,
    }
}

/// The Winsock code for an `errno`, as the synchronous socket calls report it.
pub(crate) fn from_errno_wsa(errno: i32) -> u32 {
    match errno {
        libc::EINTR => WSAEINTR,
        libc::EBADF => WSAEBADF,
        libc::EACCES | libc::EPERM => WSAEACCES,
        libc::EFAULT => WSAEFAULT,
        libc::EINVAL => WSAEINVAL,
        libc::EMFILE | libc::ENFILE => WSAEMFILE,
        libc::EAGAIN => WSAEWOULDBLOCK,
        libc::EINPROGRESS => WSAEINPROGRESS,
        libc::EALREADY => WSAEALREADY,
        libc::ENOTSOCK => WSAENOTSOCK,
        libc::EDESTADDRREQ => WSAEDESTADDRREQ,
        libc::EMSGSIZE => WSAEMSGSIZE,
        libc::EPROTOTYPE => WSAEPROTOTYPE,
        libc::ENOPROTOOPT => WSAENOPROTOOPT,
        libc::EPROTONOSUPPORT => WSAEPROTONOSUPPORT,
        libc::EOPNOTSUPP => WSAEOPNOTSUPP,
        libc::EAFNOSUPPORT => WSAEAFNOSUPPORT,
        libc::EADDRINUSE => WSAEADDRINUSE,
        libc::EADDRNOTAVAIL => WSAEADDRNOTAVAIL,
        libc::ENETDOWN => WSAENETDOWN,
        libc::ENETUNREACH => WSAENETUNREACH,
        libc::ECONNABORTED => WSAECONNABORTED,
        libc::ECONNRESET | libc::EPIPE => WSAECONNRESET,
        libc::ENOBUFS | libc::ENOMEM => WSAENOBUFS,
        libc::EISCONN => WSAEISCONN,
        libc::ENOTCONN => WSAENOTCONN,
        libc::ESHUTDOWN => WSAESHUTDOWN,
        libc::ETIMEDOUT => WSAETIMEDOUT,
        libc::ECONNREFUSED => WSAECONNREFUSED,
        libc::EHOSTUNREACH => WSAEHOSTUNREACH,
        libc::ECANCELED => ERROR_OPERATION_ABORTED,
        _ => WSAEINVAL,
    }
}

/// The Win32 code for an `io::Error` (the OS error if it has one, else by kind).
pub(crate) fn from_io(e: &io::Error, socket: bool) -> u32 {
    if let Some(errno) = e.raw_os_error() {
        return from_errno(errno, socket);
    }
    match e.kind() {
        io::ErrorKind::InvalidInput => ERROR_INVALID_PARAMETER,
        io::ErrorKind::NotFound => ERROR_NOT_FOUND,
        // The library's "port closed" error.
        io::ErrorKind::BrokenPipe => ERROR_INVALID_HANDLE,
        io::ErrorKind::OutOfMemory => ERROR_NOT_ENOUGH_MEMORY,
        io::ErrorKind::Unsupported => ERROR_NOT_SUPPORTED,
        _ => ERROR_GEN_FAILURE,
    }
}

/// The calling thread's `errno`.
pub(crate) fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// The current `errno` as a Winsock code.
pub(crate) fn last_wsa() -> u32 {
    from_errno_wsa(io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

/// The current `errno` as a Win32 code (files).
pub(crate) fn last_file() -> u32 {
    from_errno(io::Error::last_os_error().raw_os_error().unwrap_or(0), false)
}

/// NTSTATUS values Windows stores in `OVERLAPPED.Internal`.
pub(crate) mod status {
    pub const STATUS_SUCCESS: usize = 0;
    pub const STATUS_PENDING: usize = 0x103;
    pub const STATUS_END_OF_FILE: usize = 0xC000_0011;
    pub const STATUS_CANCELLED: usize = 0xC000_0120;
    pub const STATUS_CONNECTION_RESET: usize = 0xC000_020D;
    pub const STATUS_CONNECTION_REFUSED: usize = 0xC000_0236;
    /// Codes with no NTSTATUS of their own are stored as `CUSTOMER | win32`: the customer
    /// bit marks an application-defined status, so no real NTSTATUS is mistaken for one.
    pub const CUSTOMER: usize = 0xE000_0000;
}

/// The NTSTATUS for a Win32 code (what `OVERLAPPED.Internal` holds after a failure).
pub(crate) fn to_ntstatus(code: u32) -> usize {
    use status::*;
    match code {
        ERROR_SUCCESS => STATUS_SUCCESS,
        ERROR_HANDLE_EOF => STATUS_END_OF_FILE,
        ERROR_OPERATION_ABORTED => STATUS_CANCELLED,
        ERROR_NETNAME_DELETED => STATUS_CONNECTION_RESET,
        ERROR_CONNECTION_REFUSED => STATUS_CONNECTION_REFUSED,
        other => CUSTOMER | other as usize,
    }
}

/// The Win32 code for an NTSTATUS written by [`to_ntstatus`].
pub(crate) fn from_ntstatus(st: usize) -> u32 {
    use status::*;
    match st {
        STATUS_SUCCESS => ERROR_SUCCESS,
        STATUS_PENDING => ERROR_IO_INCOMPLETE,
        STATUS_END_OF_FILE => ERROR_HANDLE_EOF,
        STATUS_CANCELLED => ERROR_OPERATION_ABORTED,
        STATUS_CONNECTION_RESET => ERROR_NETNAME_DELETED,
        STATUS_CONNECTION_REFUSED => ERROR_CONNECTION_REFUSED,
        s if s & 0xF000_0000 == CUSTOMER => (s & 0x0FFF_FFFF) as u32,
        _ => ERROR_GEN_FAILURE,
    }
}

/// Runs the body of an exported function: `Ok(v)` is returned as is; `Err(code)` sets the
/// thread's last error and returns `fail`; a panic is caught here (it must never unwind
/// into C), logged to stderr once, and reported as `ERROR_INTERNAL_ERROR`.
pub(crate) fn ffi<R>(fail: R, f: impl FnOnce() -> Result<R, u32>) -> R {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(v)) => v,
        Ok(Err(code)) => {
            set_last(code);
            fail
        }
        Err(_) => {
            set_last(ERROR_INTERNAL_ERROR);
            fail
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntstatus_round_trips_every_code() {
        for c in [
            0,
            ERROR_HANDLE_EOF,
            ERROR_OPERATION_ABORTED,
            ERROR_NETNAME_DELETED,
            ERROR_ACCESS_DENIED,
            WSAECONNRESET,
        ] {
            assert_eq!(from_ntstatus(to_ntstatus(c)), c);
        }
    }

    #[test]
    fn a_panic_becomes_an_error_code() {
        let r = ffi(-1, || -> Result<i32, u32> { panic!("boom") });
        assert_eq!((r, last()), (-1, ERROR_INTERNAL_ERROR));
    }

    #[test]
    fn socket_resets_map_to_netname_deleted() {
        assert_eq!(from_errno(libc::ECONNRESET, true), ERROR_NETNAME_DELETED);
        assert_eq!(from_errno(libc::ECANCELED, true), ERROR_OPERATION_ABORTED);
        assert_eq!(from_errno_wsa(libc::ECONNREFUSED), WSAECONNREFUSED);
    }
}
