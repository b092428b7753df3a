//! Sockets with Winsock's signatures: `WSAStartup`, `WSASocketA`, `closesocket`,
//! `WSARecv`, `WSASend`, `AcceptEx`, `GetAcceptExSockaddrs`, and the BSD calls, exported as
//! `iocp_bind`, `iocp_accept`... (`iocp.h` defines `bind`, `accept`... as inline functions
//! that call them: exporting the plain names would replace libc's for the whole process).
//!
//! Winsock's constants differ from Linux's for `AF_INET6` (23), `SOL_SOCKET` (0xffff) and
//! the `SO_*` options: the header keeps Windows' values and this module translates them.
//! The address structures have the same layout on both (only the `AF_INET6` family number
//! differs, and is translated both ways).

use crate::error::code::*;
use crate::error::{self, ffi};
use crate::file::{submit_failed, submit_read};
use crate::port::{blocking, finish, Ctx, Op};
use crate::regions::Regions;
use crate::table::{self, IoObj, IoState};
use crate::types::*;
use std::ffi::{c_char, c_int, c_void};
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

/// Winsock's `AF_INET6`.
const WIN_AF_INET6: u16 = 23;
/// Winsock's `SOL_SOCKET`.
const WIN_SOL_SOCKET: c_int = 0xffff;
/// `SO_UPDATE_ACCEPT_CONTEXT`, `SO_UPDATE_CONNECT_CONTEXT`: nothing to update here.
const SO_UPDATE_ACCEPT_CONTEXT: c_int = 0x700B;
const SO_UPDATE_CONNECT_CONTEXT: c_int = 0x7010;
/// `WSA_IO_PENDING`.
const WSA_IO_PENDING: u32 = ERROR_IO_PENDING;

/// `WSAStartup` calls not matched by `WSACleanup`.
static STARTED: AtomicUsize = AtomicUsize::new(0);

/// Translates a Winsock option (level, name) to Linux's.
fn sockopt(level: c_int, name: c_int) -> Option<(c_int, c_int)> {
    Some(match (level, name) {
        (WIN_SOL_SOCKET, 0x0004) => (libc::SOL_SOCKET, libc::SO_REUSEADDR),
        (WIN_SOL_SOCKET, 0x0008) => (libc::SOL_SOCKET, libc::SO_KEEPALIVE),
        (WIN_SOL_SOCKET, 0x0020) => (libc::SOL_SOCKET, libc::SO_BROADCAST),
        (WIN_SOL_SOCKET, 0x1001) => (libc::SOL_SOCKET, libc::SO_SNDBUF),
        (WIN_SOL_SOCKET, 0x1002) => (libc::SOL_SOCKET, libc::SO_RCVBUF),
        (WIN_SOL_SOCKET, 0x1007) => (libc::SOL_SOCKET, libc::SO_ERROR),
        (WIN_SOL_SOCKET, 0x1008) => (libc::SOL_SOCKET, libc::SO_TYPE),
        (WIN_SOL_SOCKET, 0x0002) => (libc::SOL_SOCKET, libc::SO_ACCEPTCONN),
        (libc::IPPROTO_TCP, 0x0001) => (libc::IPPROTO_TCP, libc::TCP_NODELAY),
        (libc::IPPROTO_IPV6, 27) => (libc::IPPROTO_IPV6, libc::IPV6_V6ONLY),
        (libc::IPPROTO_IP, 4) => (libc::IPPROTO_IP, libc::IP_TTL),
        _ => return None,
    })
}

/// Copies a caller's address into a `sockaddr_storage`, translating the family.
///
/// # Safety
///
/// `addr` is readable for `len` bytes.
unsafe fn addr_in(addr: *const c_void, len: c_int) -> Result<(libc::sockaddr_storage, libc::socklen_t), u32> {
    if addr.is_null() || len < 2 || len as usize > size_of::<libc::sockaddr_storage>() {
        return Err(WSAEFAULT);
    }
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    // SAFETY: `addr` is readable for `len` bytes (contract), `ss` is larger.
    unsafe { std::ptr::copy_nonoverlapping(addr.cast::<u8>(), (&raw mut ss).cast::<u8>(), len as usize) };
    if ss.ss_family == WIN_AF_INET6 {
        ss.ss_family = libc::AF_INET6 as u16;
    }
    Ok((ss, len as libc::socklen_t))
}

/// Copies an address out to the caller, translating the family, as Winsock does: fails
/// with `WSAEFAULT` if the caller's length is too small.
///
/// # Safety
///
/// `addr` is NULL or writable for `*len` bytes; `len` is NULL or writable.
unsafe fn addr_out(
    ss: &libc::sockaddr_storage,
    n: libc::socklen_t,
    addr: *mut c_void,
    len: *mut c_int,
) -> Result<(), u32> {
    if addr.is_null() || len.is_null() {
        return Ok(());
    }
    let mut ss = *ss;
    if c_int::from(ss.ss_family) == libc::AF_INET6 {
        ss.ss_family = WIN_AF_INET6;
    }
    // SAFETY: `len` is writable (contract).
    let room = unsafe { *len };
    if room < 0 || (room as usize) < n as usize {
        return Err(WSAEFAULT);
    }
    // SAFETY: `addr` is writable for `room >= n` bytes (contract).
    unsafe {
        std::ptr::copy_nonoverlapping((&raw const ss).cast::<u8>(), addr.cast::<u8>(), n as usize);
        *len = n as c_int;
    }
    Ok(())
}

/// The result of a BSD call: `r < 0` sets the Winsock error from `errno`.
fn check(r: c_int) -> Result<c_int, u32> {
    if r < 0 {
        Err(error::last_wsa())
    } else {
        Ok(r)
    }
}

/// Runs a socket call: 0 or the value on success, `SOCKET_ERROR` with the code otherwise.
/// Whether the epoll backend made `fd` non-blocking: an associated socket's open file
/// description is `O_NONBLOCK` there (the shim has no `ioctlsocket(FIONBIO)`, so the caller
/// cannot have done it).
fn made_nonblocking(fd: RawFd) -> bool {
    // SAFETY: plain system call on a descriptor the caller holds open.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    fl >= 0 && fl & libc::O_NONBLOCK != 0
}

/// Waits up to 200 ms for `events` on `fd`.
fn wait_for(fd: RawFd, events: i16) {
    let mut p = libc::pollfd { fd, events, revents: 0 };
    // SAFETY: one valid pollfd. A failure (EINTR) just means another try of the call.
    unsafe { libc::poll(&mut p, 1, 200) };
}

/// Runs the synchronous socket call `f` so that it blocks, as Winsock's do, also on a socket
/// the epoll backend made non-blocking: while it fails with `EAGAIN` on such a socket, waits
/// with `poll` for `events` and calls again. The wait is sliced (200 ms) so that the call
/// is retried even if a wake-up is missed (a listener shut down by `closesocket`).
pub(crate) fn as_blocking(fd: RawFd, events: i16, mut f: impl FnMut() -> isize) -> isize {
    loop {
        let n = f();
        if n >= 0 || error::errno() != libc::EAGAIN || !made_nonblocking(fd) {
            return n;
        }
        wait_for(fd, events);
    }
}

fn wsa(f: impl FnOnce() -> Result<c_int, u32>) -> c_int {
    ffi(SOCKET_ERROR, f)
}

fn new_socket(fd: RawFd) -> SOCKET {
    // SAFETY: `fd` was just returned by socket()/accept4() and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    table::insert_io(fd, true)
}

/// `WSAStartup`: fills `lpWSAData` (version 2.2).
///
/// # Safety
///
/// `lpWSAData` is writable.
#[no_mangle]
pub unsafe extern "C" fn WSAStartup(wVersionRequested: u16, lpWSAData: *mut WSADATA) -> c_int {
    ffi(WSAEFAULT as c_int, || {
        if lpWSAData.is_null() {
            return Err(WSAEFAULT);
        }
        // SAFETY: all-zero is a valid WSADATA; the caller's pointer is writable.
        unsafe {
            let mut d: WSADATA = std::mem::zeroed();
            d.wVersion = wVersionRequested.min(0x0202);
            d.wHighVersion = 0x0202;
            for (i, b) in b"completion-port".iter().enumerate() {
                d.szDescription[i] = *b as c_char;
            }
            for (i, b) in b"Running".iter().enumerate() {
                d.szSystemStatus[i] = *b as c_char;
            }
            lpWSAData.write(d);
        }
        STARTED.fetch_add(1, Ordering::SeqCst);
        Ok(0)
    })
}

/// `WSACleanup`.
#[no_mangle]
pub extern "C" fn WSACleanup() -> c_int {
    wsa(|| {
        STARTED
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .map_err(|_| WSANOTINITIALISED)?;
        Ok(0)
    })
}

/// `WSASocketA`: a new socket (every socket can do overlapped I/O; protocol info and
/// groups are not supported).
///
/// # Safety
///
/// Callable with any values.
#[no_mangle]
pub unsafe extern "C" fn WSASocketA(
    af: c_int,
    type_: c_int,
    protocol: c_int,
    lpProtocolInfo: *mut c_void,
    g: u32,
    dwFlags: DWORD,
) -> SOCKET {
    let _ = (g, dwFlags);
    ffi(INVALID_SOCKET, || {
        if STARTED.load(Ordering::SeqCst) == 0 {
            return Err(WSANOTINITIALISED);
        }
        if !lpProtocolInfo.is_null() {
            return Err(WSAEINVAL);
        }
        let af = if af == c_int::from(WIN_AF_INET6) { libc::AF_INET6 } else { af };
        // SAFETY: plain system call.
        let fd = check(unsafe { libc::socket(af, type_ | libc::SOCK_CLOEXEC, protocol) })?;
        Ok(new_socket(fd))
    })
}

/// `socket`.
///
/// # Safety
///
/// Callable with any values.
#[no_mangle]
pub unsafe extern "C" fn iocp_socket(af: c_int, type_: c_int, protocol: c_int) -> SOCKET {
    // SAFETY: any values are accepted.
    unsafe { WSASocketA(af, type_, protocol, std::ptr::null_mut(), 0, 0) }
}

/// `closesocket`: pending operations complete with `ERROR_OPERATION_ABORTED`; a thread
/// blocked in `accept` on it returns `INVALID_SOCKET` with `WSAEINTR`, as on Windows.
///
/// # Safety
///
/// Callable with any value.
#[no_mangle]
pub unsafe extern "C" fn closesocket(s: SOCKET) -> c_int {
    wsa(|| {
        let o = table::socket(s)?;
        table::remove(s);
        o.with_fd(|fd| {
            let mut listening: c_int = 0;
            let mut len = size_of::<c_int>() as libc::socklen_t;
            // SAFETY: `listening` and `len` are writable and describe each other.
            let r = unsafe {
                libc::getsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_ACCEPTCONN,
                    (&raw mut listening).cast(),
                    &mut len,
                )
            };
            if r == 0 && listening != 0 {
                // Wakes a thread blocked in accept() on it (the descriptor itself closes
                // when that thread lets go of the object). Only listeners: on a
                // connection, shutting down first would turn a reset into a graceful close.
                // SAFETY: plain system call on an open descriptor.
                unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
            }
        });
        Ok(0)
    })
}

/// `bind`.
///
/// # Safety
///
/// `name` is readable for `namelen` bytes.
#[no_mangle]
pub unsafe extern "C" fn iocp_bind(s: SOCKET, name: *const c_void, namelen: c_int) -> c_int {
    wsa(|| {
        let o = table::socket(s)?;
        // SAFETY: contract.
        let (ss, n) = unsafe { addr_in(name, namelen) }?;
        // SAFETY: `ss` holds `n` valid bytes.
        o.with_fd(|fd| check(unsafe { libc::bind(fd, (&raw const ss).cast(), n) }))?;
        Ok(0)
    })
}

/// `listen`.
///
/// # Safety
///
/// Callable with any values.
#[no_mangle]
pub unsafe extern "C" fn iocp_listen(s: SOCKET, backlog: c_int) -> c_int {
    wsa(|| {
        let o = table::socket(s)?;
        let backlog = if backlog == 0x7fff_ffff { libc::SOMAXCONN } else { backlog };
        // SAFETY: plain system call.
        o.with_fd(|fd| check(unsafe { libc::listen(fd, backlog) }))?;
        Ok(0)
    })
}

/// `connect` (blocking).
///
/// # Safety
///
/// `name` is readable for `namelen` bytes.
#[no_mangle]
pub unsafe extern "C" fn iocp_connect(s: SOCKET, name: *const c_void, namelen: c_int) -> c_int {
    wsa(|| {
        let o = table::socket(s)?;
        // SAFETY: contract.
        let (ss, n) = unsafe { addr_in(name, namelen) }?;
        blocking(|| {
            o.with_fd(|fd| {
                // SAFETY: `ss` holds `n` valid bytes.
                let r = unsafe { libc::connect(fd, (&raw const ss).cast(), n) };
                if r == 0 || error::errno() != libc::EINPROGRESS || !made_nonblocking(fd) {
                    return check(r);
                }
                // Non-blocking by the epoll backend's doing: wait for the outcome, as a
                // blocking connect does.
                loop {
                    let mut p = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
                    // SAFETY: one valid pollfd.
                    if unsafe { libc::poll(&mut p, 1, -1) } == 1 {
                        break;
                    }
                }
                let mut err: c_int = 0;
                let mut len = size_of::<c_int>() as libc::socklen_t;
                // SAFETY: `err` and `len` are writable and describe each other.
                unsafe {
                    libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_ERROR, (&raw mut err).cast(), &mut len)
                };
                if err == 0 {
                    Ok(0)
                } else {
                    Err(error::from_errno_wsa(err))
                }
            })
        })?;
        Ok(0)
    })
}

/// `accept` (blocking): a new `SOCKET`.
///
/// # Safety
///
/// `addr` and `addrlen` are NULL or writable (`*addrlen` bytes).
#[no_mangle]
pub unsafe extern "C" fn iocp_accept(s: SOCKET, addr: *mut c_void, addrlen: *mut c_int) -> SOCKET {
    ffi(INVALID_SOCKET, || {
        let o = table::socket(s)?;
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut n = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        let fd = blocking(|| {
            o.with_fd(|fd| {
                check(as_blocking(fd, libc::POLLIN, || {
                    // SAFETY: `ss` and `n` are writable and describe each other.
                    unsafe { libc::accept4(fd, (&raw mut ss).cast(), &mut n, libc::SOCK_CLOEXEC) as isize }
                }) as c_int)
            })
        })
        // Closed by another thread while this one waited.
        .map_err(|e| if table::socket(s).is_err() { WSAEINTR } else { e })?;
        let sock = new_socket(fd);
        // SAFETY: contract.
        if let Err(e) = unsafe { addr_out(&ss, n, addr, addrlen) } {
            table::remove(sock);
            return Err(e);
        }
        Ok(sock)
    })
}

fn name_call(
    s: SOCKET,
    addr: *mut c_void,
    len: *mut c_int,
    f: unsafe extern "C" fn(c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> c_int,
) -> c_int {
    wsa(|| {
        let o = table::socket(s)?;
        if addr.is_null() || len.is_null() {
            return Err(WSAEFAULT);
        }
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut n = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: `ss` and `n` are writable and describe each other.
        o.with_fd(|fd| check(unsafe { f(fd, (&raw mut ss).cast(), &mut n) }))?;
        // SAFETY: the caller's pointers (checked non-null) are writable.
        unsafe { addr_out(&ss, n, addr, len) }?;
        Ok(0)
    })
}

/// `getsockname`.
///
/// # Safety
///
/// `name` is writable for `*namelen` bytes.
#[no_mangle]
pub unsafe extern "C" fn iocp_getsockname(s: SOCKET, name: *mut c_void, namelen: *mut c_int) -> c_int {
    name_call(s, name, namelen, libc::getsockname)
}

/// `getpeername`.
///
/// # Safety
///
/// `name` is writable for `*namelen` bytes.
#[no_mangle]
pub unsafe extern "C" fn iocp_getpeername(s: SOCKET, name: *mut c_void, namelen: *mut c_int) -> c_int {
    name_call(s, name, namelen, libc::getpeername)
}

/// `setsockopt` with Winsock's levels and names; `SO_UPDATE_ACCEPT_CONTEXT` and
/// `SO_UPDATE_CONNECT_CONTEXT` are accepted and do nothing (the accepted socket is a
/// complete socket already). Unknown options: `WSAENOPROTOOPT`.
///
/// # Safety
///
/// `optval` is readable for `optlen` bytes.
#[no_mangle]
pub unsafe extern "C" fn iocp_setsockopt(
    s: SOCKET,
    level: c_int,
    optname: c_int,
    optval: *const c_char,
    optlen: c_int,
) -> c_int {
    wsa(|| {
        let o = table::socket(s)?;
        if level == WIN_SOL_SOCKET
            && (optname == SO_UPDATE_ACCEPT_CONTEXT || optname == SO_UPDATE_CONNECT_CONTEXT)
        {
            return Ok(0);
        }
        let (l, n) = sockopt(level, optname).ok_or(WSAENOPROTOOPT)?;
        if optval.is_null() || optlen < 1 {
            return Err(WSAEFAULT);
        }
        // Winsock's BOOL and int options may be given as 1 to 4 bytes.
        let mut v: c_int = 0;
        // SAFETY: `optval` is readable for `optlen` bytes; at most 4 are copied into `v`.
        unsafe {
            std::ptr::copy_nonoverlapping(
                optval.cast::<u8>(),
                (&raw mut v).cast::<u8>(),
                (optlen as usize).min(4),
            )
        };
        o.with_fd(|fd| {
            // SAFETY: `v` is a readable int.
            check(unsafe { libc::setsockopt(fd, l, n, (&raw const v).cast(), size_of::<c_int>() as u32) })
        })?;
        Ok(0)
    })
}

/// `getsockopt` for the options `setsockopt` knows (int-valued).
///
/// # Safety
///
/// `optval` is writable for `*optlen` bytes.
#[no_mangle]
pub unsafe extern "C" fn iocp_getsockopt(
    s: SOCKET,
    level: c_int,
    optname: c_int,
    optval: *mut c_char,
    optlen: *mut c_int,
) -> c_int {
    wsa(|| {
        let o = table::socket(s)?;
        let (l, n) = sockopt(level, optname).ok_or(WSAENOPROTOOPT)?;
        // SAFETY: checked below before use.
        if optval.is_null() || optlen.is_null() || unsafe { *optlen } < 4 {
            return Err(WSAEFAULT);
        }
        let mut v: c_int = 0;
        let mut len = size_of::<c_int>() as libc::socklen_t;
        // SAFETY: `v` and `len` are writable and describe each other.
        o.with_fd(|fd| check(unsafe { libc::getsockopt(fd, l, n, (&raw mut v).cast(), &mut len) }))?;
        if n == libc::SO_ERROR && l == libc::SOL_SOCKET && v != 0 {
            v = error::from_errno_wsa(v) as c_int;
        }
        // SAFETY: the caller's buffer holds at least 4 bytes (checked).
        unsafe {
            optval.cast::<c_int>().write_unaligned(v);
            *optlen = 4;
        }
        Ok(0)
    })
}

/// `shutdown` (`SD_RECEIVE`, `SD_SEND`, `SD_BOTH` equal Linux's values).
///
/// # Safety
///
/// Callable with any values.
#[no_mangle]
pub unsafe extern "C" fn iocp_shutdown(s: SOCKET, how: c_int) -> c_int {
    wsa(|| {
        let o = table::socket(s)?;
        // SAFETY: plain system call.
        o.with_fd(|fd| check(unsafe { libc::shutdown(fd, how) }))?;
        Ok(0)
    })
}

/// `send` (blocking, never raises SIGPIPE).
///
/// # Safety
///
/// `buf` is readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn iocp_send(s: SOCKET, buf: *const c_char, len: c_int, flags: c_int) -> c_int {
    wsa(|| {
        let o = table::socket(s)?;
        let n = blocking(|| {
            o.with_fd(|fd| {
                as_blocking(fd, libc::POLLOUT, || {
                    // SAFETY: the caller's buffer is readable for `len` bytes.
                    unsafe { libc::send(fd, buf.cast(), len.max(0) as usize, flags | libc::MSG_NOSIGNAL) }
                })
            })
        });
        check(n as c_int)
    })
}

/// `recv` (blocking).
///
/// # Safety
///
/// `buf` is writable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn iocp_recv(s: SOCKET, buf: *mut c_char, len: c_int, flags: c_int) -> c_int {
    wsa(|| {
        let o = table::socket(s)?;
        let n = blocking(|| {
            o.with_fd(|fd| {
                as_blocking(fd, libc::POLLIN, || {
                    // SAFETY: the caller's buffer is writable for `len` bytes.
                    unsafe { libc::recv(fd, buf.cast(), len.max(0) as usize, flags) }
                })
            })
        });
        check(n as c_int)
    })
}

/// The caller's regions as `iovec`s, for the synchronous calls.
fn iovecs(r: &Regions) -> Vec<libc::iovec> {
    r.as_slice().iter().map(|&(b, l)| libc::iovec { iov_base: b as *mut c_void, iov_len: l }).collect()
}

/// `WSARecv`: with an `OVERLAPPED` on an associated socket, starts a receive into the
/// buffers (the kernel writes into them directly; several `WSABUF`s are one scatter
/// list) and returns `SOCKET_ERROR` with `WSA_IO_PENDING`; the packet says how many bytes
/// are there (0 bytes: the peer closed gracefully; failure `ERROR_NETNAME_DELETED`: it
/// reset). Otherwise receives synchronously. Completion
/// routines are not supported.
///
/// # Safety
///
/// `lpBuffers` points to `dwBufferCount` `WSABUF`s whose memory, like `lpOverlapped`,
/// stays valid until the packet is delivered.
#[no_mangle]
pub unsafe extern "C" fn WSARecv(
    s: SOCKET,
    lpBuffers: *mut WSABUF,
    dwBufferCount: DWORD,
    lpNumberOfBytesRecvd: *mut DWORD,
    lpFlags: *mut DWORD,
    lpOverlapped: *mut OVERLAPPED,
    lpCompletionRoutine: *mut c_void,
) -> c_int {
    wsa(|| {
        let o = table::socket(s)?;
        if !lpCompletionRoutine.is_null() {
            return Err(WSAEOPNOTSUPP);
        }
        // SAFETY: contract.
        let bufs = unsafe { Regions::wsabufs(lpBuffers, dwBufferCount) }?;
        let ov = lpOverlapped as usize;
        let flags = if lpFlags.is_null() { 0 } else { unsafe_read(lpFlags) };
        if let Some(st) = crate::file::overlapped(&o, ov) {
            // SAFETY: the WSABUFs' memory is writable until the packet (contract).
            return unsafe { submit_read(&o, st, ov, bufs, 0) }
                .map(|n| out_bytes(n, lpNumberOfBytesRecvd))
                .map_err(|c| if c == ERROR_IO_PENDING { WSA_IO_PENDING } else { c });
        }
        let iov = iovecs(&bufs);
        // SAFETY: all-zero is a valid msghdr; the iovecs describe the caller's buffers.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = iov.as_ptr().cast_mut();
        msg.msg_iovlen = iov.len();
        let n = blocking(|| {
            o.with_fd(|fd| {
                // SAFETY: `msg` describes writable memory (the caller's buffers).
                as_blocking(fd, libc::POLLIN, || unsafe { libc::recvmsg(fd, &mut msg, flags as c_int) })
            })
        });
        sync_done(n, ov, lpNumberOfBytesRecvd)
    })
}

/// An operation that completed at once (skip-on-success): 0, with the byte count.
fn out_bytes(n: u32, out: *mut DWORD) -> c_int {
    if !out.is_null() {
        // SAFETY: non-null; the caller passes a writable DWORD.
        unsafe { *out = n };
    }
    0
}

/// Reads a DWORD the caller passed.
fn unsafe_read(p: *const DWORD) -> DWORD {
    // SAFETY: callers pass a non-null pointer the C caller made readable.
    unsafe { p.read_unaligned() }
}

/// The result of a synchronous `WSARecv`/`WSASend`.
fn sync_done(n: isize, ov: usize, out: *mut DWORD) -> Result<c_int, u32> {
    if n < 0 {
        let code = error::last_wsa();
        finish(ov, 0, code);
        return Err(code);
    }
    if !out.is_null() {
        // SAFETY: non-null; the caller passes a writable DWORD.
        unsafe { *out = n as DWORD };
    }
    finish(ov, n as usize, 0);
    Ok(0)
}

/// `WSASend`: as [`WSARecv`], sending from the buffers (a gather list; not copied), and
/// the packet comes when all of them are sent (or the send failed).
///
/// # Safety
///
/// `lpBuffers` points to `dwBufferCount` readable `WSABUF`s (read during the call) whose
/// memory, like `lpOverlapped`, stays valid and unmodified until the packet is delivered.
#[no_mangle]
pub unsafe extern "C" fn WSASend(
    s: SOCKET,
    lpBuffers: *mut WSABUF,
    dwBufferCount: DWORD,
    lpNumberOfBytesSent: *mut DWORD,
    dwFlags: DWORD,
    lpOverlapped: *mut OVERLAPPED,
    lpCompletionRoutine: *mut c_void,
) -> c_int {
    wsa(|| {
        let o = table::socket(s)?;
        if !lpCompletionRoutine.is_null() {
            return Err(WSAEOPNOTSUPP);
        }
        // SAFETY: contract.
        let bufs = unsafe { Regions::wsabufs(lpBuffers, dwBufferCount) }?;
        let ov = lpOverlapped as usize;
        if let Some(st) = crate::file::overlapped(&o, ov) {
            // SAFETY: the WSABUFs' memory is readable until the packet (contract).
            return unsafe { crate::file::submit_write(&o, st, ov, bufs, 0) }
                .map(|n| out_bytes(n, lpNumberOfBytesSent))
                .map_err(|c| if c == ERROR_IO_PENDING { WSA_IO_PENDING } else { c });
        }
        let iov = iovecs(&bufs);
        // SAFETY: all-zero is a valid msghdr; the iovecs describe the caller's buffers.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = iov.as_ptr().cast_mut();
        msg.msg_iovlen = iov.len();
        let n = blocking(|| {
            o.with_fd(|fd| {
                // SAFETY: `msg` describes readable memory.
                as_blocking(fd, libc::POLLOUT, || unsafe {
                    libc::sendmsg(fd, &msg, dwFlags as c_int | libc::MSG_NOSIGNAL)
                })
            })
        });
        sync_done(n, ov, lpNumberOfBytesSent)
    })
}

/// Where an `AcceptEx` puts its results.
pub(crate) struct AcceptInfo {
    /// The socket that becomes the connection.
    pub(crate) target: Weak<IoObj>,
    /// The caller's output buffer.
    pub(crate) buf: usize,
    /// Bytes of it for the first data block.
    pub(crate) recv_len: usize,
    /// Bytes for the local address.
    pub(crate) local_len: usize,
    /// Bytes for the remote address.
    pub(crate) remote_len: usize,
}

/// Writes an address into an `AcceptEx` buffer slot: its length (4 bytes), then the
/// `sockaddr` with Winsock's family. `GetAcceptExSockaddrs` reads it back.
fn put_addr(slot: usize, room: usize, ss: &libc::sockaddr_storage, n: libc::socklen_t) {
    let mut ss = *ss;
    if c_int::from(ss.ss_family) == libc::AF_INET6 {
        ss.ss_family = WIN_AF_INET6;
    }
    let n = (n as usize).min(room.saturating_sub(4));
    if room < 4 {
        return;
    }
    // SAFETY: `slot` is inside the caller's AcceptEx buffer, writable for `room` bytes
    // until the packet is delivered (contract of AcceptEx); `4 + n <= room`.
    unsafe {
        (slot as *mut u32).write_unaligned(n as u32);
        std::ptr::copy_nonoverlapping((&raw const ss).cast::<u8>(), (slot + 4) as *mut u8, n);
    }
}

/// An `AcceptEx` completed with `fd`: the connection goes into the target socket, the
/// addresses into the caller's buffer. `Ok(None)`: a receive of the first data block was
/// started (the caller hears of the accept when it completes).
pub(crate) fn accepted(
    key: usize,
    ov: usize,
    info: AcceptInfo,
    fd: Option<OwnedFd>,
    listener: Option<&Arc<IoObj>>,
) -> Result<Option<()>, u32> {
    let fd = fd.ok_or(ERROR_GEN_FAILURE)?;
    let target = info.target.upgrade().ok_or(ERROR_OPERATION_ABORTED)?;
    for (slot, room, f) in [
        (info.buf + info.recv_len, info.local_len, libc::getsockname as unsafe extern "C" fn(_, _, _) -> _),
        (info.buf + info.recv_len + info.local_len, info.remote_len, libc::getpeername),
    ] {
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut n = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: `ss` and `n` are writable and describe each other.
        if unsafe { f(fd.as_raw_fd(), (&raw mut ss).cast(), &mut n) } == 0 {
            put_addr(slot, room, &ss, n);
        }
    }
    let dup =
        if info.recv_len > 0 { Some(fd.try_clone().map_err(|e| error::from_io(&e, true))?) } else { None };
    target.replace_fd(fd).map_err(|e| error::from_io(&e, true))?;
    let (Some(dup), Some(listener)) = (dup, listener) else { return Ok(Some(())) };
    // The first data block: received through a temporary handle on the listener's port
    // under the listener's key, which the packet carries as Windows' does.
    let port = listener.port().ok_or(ERROR_INVALID_HANDLE)?;
    let tmp = port.associate(dup, key).map_err(|e| error::from_io(&e, true))?;
    // SAFETY: the data part of the caller's AcceptEx buffer, writable for `recv_len` bytes
    // until the AcceptEx packet, which this receive's packet is (AcceptEx's contract).
    let buf = unsafe { Regions::one(info.buf, info.recv_len).buffer(true, 0) };
    let ctx = Ctx::new(ov, Op::AcceptData { tmp: tmp.clone(), info }, listener);
    let mut st = listener.state();
    match tmp.recv(buf, ctx) {
        Ok(id) => {
            st.pending.insert(ov, id);
            Ok(None)
        }
        Err(e) => Err(error::from_io(&e.error, true)),
    }
}

/// `AcceptEx`: starts accepting a connection on an associated listening socket into
/// `sAcceptSocket` (made by `socket`/`WSASocketA`, not associated). Returns FALSE with
/// `ERROR_IO_PENDING`; the packet (the listener's key) comes once a connection is accepted
/// and, if `dwReceiveDataLength > 0`, its first data block received (the byte count).
/// The addresses are in the buffer after the data, for `GetAcceptExSockaddrs`.
///
/// # Safety
///
/// `lpOutputBuffer` is writable for `dwReceiveDataLength + dwLocalAddressLength +
/// dwRemoteAddressLength` bytes and, like `lpOverlapped`, stays valid until the packet is
/// delivered.
#[no_mangle]
pub unsafe extern "C" fn AcceptEx(
    sListenSocket: SOCKET,
    sAcceptSocket: SOCKET,
    lpOutputBuffer: *mut c_void,
    dwReceiveDataLength: DWORD,
    dwLocalAddressLength: DWORD,
    dwRemoteAddressLength: DWORD,
    lpdwBytesReceived: *mut DWORD,
    lpOverlapped: *mut OVERLAPPED,
) -> BOOL {
    ffi(FALSE, || {
        let l = table::socket(sListenSocket)?;
        let target = table::socket(sAcceptSocket)?;
        if lpOverlapped.is_null() || lpOutputBuffer.is_null() {
            return Err(WSAEFAULT);
        }
        let min = size_of::<libc::sockaddr_in>() as DWORD + 16;
        if dwLocalAddressLength < min || dwRemoteAddressLength < min {
            return Err(WSAEINVAL);
        }
        if target.is_associated() {
            // Its association would be remade for the new descriptor; Windows programs
            // associate the accepted socket after the accept, as the library expects.
            return Err(WSAEINVAL);
        }
        if !lpdwBytesReceived.is_null() {
            // SAFETY: non-null; the caller passes a writable DWORD.
            unsafe { *lpdwBytesReceived = 0 };
        }
        let ov = lpOverlapped as usize;
        let info = AcceptInfo {
            target: Arc::downgrade(&target),
            buf: lpOutputBuffer as usize,
            recv_len: dwReceiveDataLength as usize,
            local_len: dwLocalAddressLength as usize,
            remote_len: dwRemoteAddressLength as usize,
        };
        let ctx = Ctx::new(ov, Op::Accept(info), &l);
        // WSA_IO_PENDING is ERROR_IO_PENDING (997): FALSE with it, as Windows returns.
        submit_socket(&l, ov, |h| h.accept(ctx).map_err(|e| e.error)).map(|_| TRUE)
    })
}

/// `GetAcceptExSockaddrs`: the local and remote addresses an `AcceptEx` wrote.
///
/// # Safety
///
/// `lpOutputBuffer` is the buffer of a completed `AcceptEx` with these lengths; the out
/// pointers are writable.
#[no_mangle]
pub unsafe extern "C" fn GetAcceptExSockaddrs(
    lpOutputBuffer: *mut c_void,
    dwReceiveDataLength: DWORD,
    dwLocalAddressLength: DWORD,
    dwRemoteAddressLength: DWORD,
    LocalSockaddr: *mut *mut c_void,
    LocalSockaddrLength: *mut c_int,
    RemoteSockaddr: *mut *mut c_void,
    RemoteSockaddrLength: *mut c_int,
) {
    ffi((), || {
        if lpOutputBuffer.is_null() {
            return Err(WSAEFAULT);
        }
        let base = lpOutputBuffer as usize + dwReceiveDataLength as usize;
        for (slot, room, p, len) in [
            (base, dwLocalAddressLength, LocalSockaddr, LocalSockaddrLength),
            (
                base + dwLocalAddressLength as usize,
                dwRemoteAddressLength,
                RemoteSockaddr,
                RemoteSockaddrLength,
            ),
        ] {
            if room < 4 {
                continue;
            }
            // SAFETY: the slot lies in the caller's AcceptEx buffer (contract).
            let n = unsafe { (slot as *const u32).read_unaligned() } as c_int;
            // SAFETY: the out pointers are NULL or writable (contract).
            unsafe {
                if !p.is_null() {
                    *p = (slot + 4) as *mut c_void;
                }
                if !len.is_null() {
                    *len = n;
                }
            }
        }
        Ok(())
    })
}

/// `inet_pton` for `AF_INET` (2) and `AF_INET6` (23): 1, 0 for a malformed string, -1
/// for an unknown family.
///
/// # Safety
///
/// `src` is a NUL-terminated string; `dst` is writable (4 or 16 bytes).
#[no_mangle]
pub unsafe extern "C" fn iocp_inet_pton(family: c_int, src: *const c_char, dst: *mut c_void) -> c_int {
    ffi(-1, || {
        if src.is_null() || dst.is_null() {
            return Err(WSAEFAULT);
        }
        // SAFETY: NUL-terminated (contract).
        let s = unsafe { std::ffi::CStr::from_ptr(src) }.to_str().map_err(|_| WSAEINVAL);
        let Ok(s) = s else { return Ok(0) };
        match family {
            libc::AF_INET => match s.parse::<std::net::Ipv4Addr>() {
                // SAFETY: `dst` is writable for 4 bytes (contract).
                Ok(a) => unsafe { std::ptr::copy_nonoverlapping(a.octets().as_ptr(), dst.cast(), 4) },
                Err(_) => return Ok(0),
            },
            f if f == c_int::from(WIN_AF_INET6) => match s.parse::<std::net::Ipv6Addr>() {
                // SAFETY: `dst` is writable for 16 bytes (contract).
                Ok(a) => unsafe { std::ptr::copy_nonoverlapping(a.octets().as_ptr(), dst.cast(), 16) },
                Err(_) => return Ok(0),
            },
            _ => return Err(WSAEAFNOSUPPORT),
        }
        Ok(1)
    })
}

/// A caller's `sockaddr` (Winsock family numbers) as a `SocketAddr`.
///
/// # Safety
///
/// `name` is readable for `namelen` bytes.
unsafe fn socket_addr(name: *const c_void, namelen: c_int) -> Result<std::net::SocketAddr, u32> {
    // SAFETY: contract.
    let (ss, _) = unsafe { addr_in(name, namelen) }?;
    let p = (&raw const ss).cast::<u8>();
    match c_int::from(ss.ss_family) {
        libc::AF_INET if namelen as usize >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: `ss` holds a sockaddr_in (family checked, length checked).
            let a = unsafe { p.cast::<libc::sockaddr_in>().read_unaligned() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Ok(std::net::SocketAddr::from((ip, u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 if namelen as usize >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: `ss` holds a sockaddr_in6 (family checked, length checked).
            let a = unsafe { p.cast::<libc::sockaddr_in6>().read_unaligned() };
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            Ok(std::net::SocketAddr::V6(std::net::SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => Err(WSAEAFNOSUPPORT),
    }
}

/// Writes a sender's address into a `WSARecvFrom` caller's `lpFrom`/`lpFromlen` (Winsock
/// family numbers), if it gave them and there is room.
pub(crate) fn write_from(a: &std::net::SocketAddr, from: usize, fromlen: usize) {
    if from == 0 || fromlen == 0 {
        return;
    }
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let p = (&raw mut ss).cast::<u8>();
    let n = match a {
        std::net::SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as u16,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from(*v4.ip()).to_be() },
                sin_zero: [0; 8],
            };
            // SAFETY: a sockaddr_in fits in a sockaddr_storage.
            unsafe { p.cast::<libc::sockaddr_in>().write_unaligned(sin) };
            size_of::<libc::sockaddr_in>()
        }
        std::net::SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as u16,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr { s6_addr: v6.ip().octets() },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: a sockaddr_in6 fits in a sockaddr_storage.
            unsafe { p.cast::<libc::sockaddr_in6>().write_unaligned(sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    // SAFETY: the caller gave `from` (writable for `*fromlen` bytes) and `fromlen` with the
    // operation and keeps them valid until its packet is delivered (WSARecvFrom's contract).
    let _ = unsafe { addr_out(&ss, n as libc::socklen_t, from as *mut c_void, fromlen as *mut c_int) };
}

/// Submits an operation on an associated socket, recording it for `CancelIoEx`: the
/// result is `WSA_IO_PENDING` once submitted.
fn submit_socket(
    o: &Arc<IoObj>,
    ov: usize,
    f: impl FnOnce(&completion_port::Handle<Ctx>) -> Result<completion_port::OpId<Ctx>, std::io::Error>,
) -> Result<c_int, u32> {
    let mut st = o.state();
    let IoState { assoc, pending } = &mut *st;
    let h = &assoc.as_ref().ok_or(WSAEINVAL)?.handle;
    // SAFETY: the caller's OVERLAPPED, valid until the packet.
    unsafe { write_overlapped(ov, crate::error::status::STATUS_PENDING, 0) };
    match f(h) {
        Ok(id) => {
            pending.insert(ov, id);
            Err(WSA_IO_PENDING)
        }
        Err(e) => Err(submit_failed(ov, &e, true)),
    }
}

/// `ConnectEx`: connects an associated socket (bound or not) and then sends
/// `lpSendBuffer` (not copied), completing with one packet whose byte count is what was
/// sent. Returns FALSE with `ERROR_IO_PENDING`.
///
/// # Safety
///
/// `name` is readable for `namelen` bytes during the call; `lpSendBuffer` (readable for
/// `dwSendDataLength` bytes) and `lpOverlapped` stay valid until the packet is delivered.
#[no_mangle]
pub unsafe extern "C" fn ConnectEx(
    s: SOCKET,
    name: *const c_void,
    namelen: c_int,
    lpSendBuffer: *const c_void,
    dwSendDataLength: DWORD,
    lpdwBytesSent: *mut DWORD,
    lpOverlapped: *mut OVERLAPPED,
) -> BOOL {
    ffi(FALSE, || {
        let o = table::socket(s)?;
        if lpOverlapped.is_null() {
            return Err(WSAEFAULT);
        }
        // SAFETY: contract.
        let addr = unsafe { socket_addr(name, namelen) }?;
        let send = if lpSendBuffer.is_null() {
            Regions::one(0, 0)
        } else {
            Regions::one(lpSendBuffer as usize, dwSendDataLength as usize)
        };
        if !lpdwBytesSent.is_null() {
            // SAFETY: non-null; the caller passes a writable DWORD.
            unsafe { *lpdwBytesSent = 0 };
        }
        let ov = lpOverlapped as usize;
        let ctx = Ctx::new(ov, Op::Connect { send }, &o);
        submit_socket(&o, ov, |h| h.connect(addr, ctx).map_err(|e| e.error))?;
        Ok(TRUE)
    })
}

/// `WSARecvFrom`: receives one datagram on an associated socket into the buffers; the
/// sender's address is written to `lpFrom`/`lpFromlen` when the packet is delivered.
/// Without an `OVERLAPPED` or a port it receives synchronously.
///
/// # Safety
///
/// As [`WSARecv`]; `lpFrom` (writable for `*lpFromlen` bytes) and `lpFromlen` stay valid
/// until the packet is delivered.
#[no_mangle]
pub unsafe extern "C" fn WSARecvFrom(
    s: SOCKET,
    lpBuffers: *mut WSABUF,
    dwBufferCount: DWORD,
    lpNumberOfBytesRecvd: *mut DWORD,
    lpFlags: *mut DWORD,
    lpFrom: *mut c_void,
    lpFromlen: *mut c_int,
    lpOverlapped: *mut OVERLAPPED,
    lpCompletionRoutine: *mut c_void,
) -> c_int {
    wsa(|| {
        let o = table::socket(s)?;
        if !lpCompletionRoutine.is_null() {
            return Err(WSAEOPNOTSUPP);
        }
        // SAFETY: contract.
        let bufs = unsafe { Regions::wsabufs(lpBuffers, dwBufferCount) }?;
        let ov = lpOverlapped as usize;
        if ov != 0 && o.is_associated() {
            // SAFETY: the WSABUFs' memory is writable until the packet (contract).
            let buf = unsafe { bufs.buffer(true, 0) };
            let op = Op::RecvFrom { from: lpFrom as usize, fromlen: lpFromlen as usize };
            let ctx = Ctx::new(ov, op, &o);
            return submit_socket(&o, ov, |h| h.recv_from(buf, ctx).map_err(|e| e.error));
        }
        let flags = if lpFlags.is_null() { 0 } else { unsafe_read(lpFlags) };
        let iov = iovecs(&bufs);
        // SAFETY: all-zero is valid for both.
        let (mut msg, mut ss): (libc::msghdr, libc::sockaddr_storage) = unsafe { std::mem::zeroed() };
        msg.msg_iov = iov.as_ptr().cast_mut();
        msg.msg_iovlen = iov.len();
        msg.msg_name = (&raw mut ss).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_storage>() as u32;
        let n = blocking(|| {
            o.with_fd(|fd| {
                // SAFETY: `msg` describes writable memory (the caller's buffers and `ss`).
                as_blocking(fd, libc::POLLIN, || unsafe { libc::recvmsg(fd, &mut msg, flags as c_int) })
            })
        });
        if n >= 0 {
            // SAFETY: the caller's address buffer (contract).
            unsafe { addr_out(&ss, msg.msg_namelen, lpFrom, lpFromlen) }?;
        }
        sync_done(n, ov, lpNumberOfBytesRecvd)
    })
}

/// `WSASendTo`: sends one datagram to `lpTo` (the address is copied at submission; the
/// buffers are not).
///
/// # Safety
///
/// As [`WSASend`]; `lpTo` is readable for `iTolen` bytes during the call.
#[no_mangle]
pub unsafe extern "C" fn WSASendTo(
    s: SOCKET,
    lpBuffers: *mut WSABUF,
    dwBufferCount: DWORD,
    lpNumberOfBytesSent: *mut DWORD,
    dwFlags: DWORD,
    lpTo: *const c_void,
    iTolen: c_int,
    lpOverlapped: *mut OVERLAPPED,
    lpCompletionRoutine: *mut c_void,
) -> c_int {
    wsa(|| {
        let o = table::socket(s)?;
        if !lpCompletionRoutine.is_null() {
            return Err(WSAEOPNOTSUPP);
        }
        // SAFETY: contract.
        let bufs = unsafe { Regions::wsabufs(lpBuffers, dwBufferCount) }?;
        let ov = lpOverlapped as usize;
        if ov != 0 && o.is_associated() {
            // SAFETY: contract.
            let to = unsafe { socket_addr(lpTo, iTolen) }?;
            // SAFETY: the WSABUFs' memory is readable until the packet (contract).
            let buf = unsafe { bufs.buffer(false, 0) };
            // A datagram goes whole or not at all: no continuation (done = its length).
            let ctx = Ctx::new(ov, Op::Write { done: 0, regions: Regions::one(0, 0) }, &o);
            return submit_socket(&o, ov, |h| h.send_to(buf, to, ctx).map_err(|e| e.error));
        }
        // SAFETY: contract.
        let (mut ss, n) = unsafe { addr_in(lpTo, iTolen) }?;
        let iov = iovecs(&bufs);
        // SAFETY: all-zero is a valid msghdr.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = iov.as_ptr().cast_mut();
        msg.msg_iovlen = iov.len();
        msg.msg_name = (&raw mut ss).cast();
        msg.msg_namelen = n;
        let r = blocking(|| {
            o.with_fd(|fd| {
                // SAFETY: `msg` describes readable memory (the caller's buffers and `ss`).
                as_blocking(fd, libc::POLLOUT, || unsafe {
                    libc::sendmsg(fd, &msg, dwFlags as c_int | libc::MSG_NOSIGNAL)
                })
            })
        });
        sync_done(r, ov, lpNumberOfBytesSent)
    })
}

/// `SIO_GET_EXTENSION_FUNCTION_POINTER`.
const SIO_GET_EXTENSION_FUNCTION_POINTER: DWORD = 0xC800_0006;
/// `WSAID_ACCEPTEX`, `WSAID_CONNECTEX`, `WSAID_GETACCEPTEXSOCKADDRS` as their 16 bytes.
const WSAID_ACCEPTEX: [u8; 16] =
    guid(0xb536_7df1, 0xcbac, 0x11cf, [0x95, 0xca, 0x00, 0x80, 0x5f, 0x48, 0xa1, 0x92]);
const WSAID_CONNECTEX: [u8; 16] =
    guid(0x25a2_07b9, 0xddf3, 0x4660, [0x8e, 0xe9, 0x76, 0xe5, 0x8c, 0x74, 0x06, 0x3e]);
const WSAID_GETACCEPTEXSOCKADDRS: [u8; 16] =
    guid(0xb536_7df2, 0xcbac, 0x11cf, [0x95, 0xca, 0x00, 0x80, 0x5f, 0x48, 0xa1, 0x92]);

/// A GUID's in-memory bytes (little-endian fields, as on x86 and arm64).
const fn guid(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let a = a.to_le_bytes();
    let b = b.to_le_bytes();
    let c = c.to_le_bytes();
    [a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]
}

/// `WSAIoctl`: only `SIO_GET_EXTENSION_FUNCTION_POINTER` for `AcceptEx`, `ConnectEx` and
/// `GetAcceptExSockaddrs`, the way Windows programs find them; anything else is
/// `WSAEOPNOTSUPP`. Completes at once (no `OVERLAPPED` needed).
///
/// # Safety
///
/// `lpvInBuffer` is readable for `cbInBuffer` bytes, `lpvOutBuffer` writable for
/// `cbOutBuffer` bytes, `lpcbBytesReturned` writable.
#[no_mangle]
pub unsafe extern "C" fn WSAIoctl(
    s: SOCKET,
    dwIoControlCode: DWORD,
    lpvInBuffer: *const c_void,
    cbInBuffer: DWORD,
    lpvOutBuffer: *mut c_void,
    cbOutBuffer: DWORD,
    lpcbBytesReturned: *mut DWORD,
    lpOverlapped: *mut OVERLAPPED,
    lpCompletionRoutine: *mut c_void,
) -> c_int {
    let _ = (lpOverlapped, lpCompletionRoutine);
    wsa(|| {
        table::socket(s)?;
        if dwIoControlCode != SIO_GET_EXTENSION_FUNCTION_POINTER {
            return Err(WSAEOPNOTSUPP);
        }
        if lpvInBuffer.is_null()
            || cbInBuffer < 16
            || lpvOutBuffer.is_null()
            || (cbOutBuffer as usize) < size_of::<usize>()
        {
            return Err(WSAEFAULT);
        }
        let mut id = [0u8; 16];
        // SAFETY: readable for `cbInBuffer >= 16` bytes (contract).
        unsafe { std::ptr::copy_nonoverlapping(lpvInBuffer.cast::<u8>(), id.as_mut_ptr(), 16) };
        let f: usize = if id == WSAID_ACCEPTEX {
            AcceptEx as *const () as usize
        } else if id == WSAID_CONNECTEX {
            ConnectEx as *const () as usize
        } else if id == WSAID_GETACCEPTEXSOCKADDRS {
            GetAcceptExSockaddrs as *const () as usize
        } else {
            return Err(WSAEINVAL);
        };
        // SAFETY: writable for at least a pointer (checked) and `lpcbBytesReturned` writable (contract).
        unsafe {
            lpvOutBuffer.cast::<usize>().write_unaligned(f);
            if !lpcbBytesReturned.is_null() {
                *lpcbBytesReturned = size_of::<usize>() as DWORD;
            }
        }
        Ok(0)
    })
}

/// `inet_ntop` for `AF_INET` (2) and `AF_INET6` (23): writes the text form and returns
/// `dst`, or NULL (`WSAEINVAL` for a buffer too small, `WSAEAFNOSUPPORT`).
///
/// # Safety
///
/// `src` is readable (4 or 16 bytes); `dst` is writable for `size` bytes.
#[no_mangle]
pub unsafe extern "C" fn iocp_inet_ntop(
    family: c_int,
    src: *const c_void,
    dst: *mut c_char,
    size: usize,
) -> *const c_char {
    ffi(std::ptr::null(), || {
        if src.is_null() || dst.is_null() {
            return Err(WSAEFAULT);
        }
        let text = match family {
            libc::AF_INET => {
                let mut b = [0u8; 4];
                // SAFETY: readable for 4 bytes (contract).
                unsafe { std::ptr::copy_nonoverlapping(src.cast::<u8>(), b.as_mut_ptr(), 4) };
                std::net::Ipv4Addr::from(b).to_string()
            }
            f if f == c_int::from(WIN_AF_INET6) => {
                let mut b = [0u8; 16];
                // SAFETY: readable for 16 bytes (contract).
                unsafe { std::ptr::copy_nonoverlapping(src.cast::<u8>(), b.as_mut_ptr(), 16) };
                std::net::Ipv6Addr::from(b).to_string()
            }
            _ => return Err(WSAEAFNOSUPPORT),
        };
        if text.len() + 1 > size {
            return Err(WSAEINVAL);
        }
        // SAFETY: `dst` is writable for `size > text.len()` bytes (contract).
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), dst.cast::<u8>(), text.len());
            *dst.add(text.len()) = 0;
        }
        Ok(dst.cast_const())
    })
}

std::thread_local! {
    /// `inet_ntoa`'s result: one buffer per thread, overwritten by the next call, as on
    /// Windows.
    static NTOA: std::cell::UnsafeCell<[c_char; 16]> = const { std::cell::UnsafeCell::new([0; 16]) };
}

/// `inet_ntoa`: the dotted form of an IPv4 address (network byte order), in a per-thread
/// buffer valid until the thread's next call.
#[no_mangle]
pub extern "C" fn iocp_inet_ntoa(s_addr: u32) -> *const c_char {
    ffi(std::ptr::null(), || {
        let text = std::net::Ipv4Addr::from(u32::from_be(s_addr)).to_string();
        NTOA.try_with(|b| {
            let p = b.get().cast::<c_char>();
            // SAFETY: the buffer is this thread's; at most 15 characters and the NUL fit in
            // its 16 bytes; no reference to it is alive (C holds only the pointer).
            unsafe {
                std::ptr::copy_nonoverlapping(text.as_ptr().cast::<c_char>(), p, text.len());
                *p.add(text.len()) = 0;
            }
            p.cast_const()
        })
        .map_err(|_| ERROR_INTERNAL_ERROR)
    })
}
