//! Handles are values checked against a table, never pointers: stale, closed and made-up
//! values fail with `ERROR_INVALID_HANDLE` while other threads create, use and close real
//! ones, and nothing crashes (issue 11: "a stale, closed or made-up handle is
//! ERROR_INVALID_HANDLE, never a crash").

use iocp::types::{HANDLE, INVALID_HANDLE_VALUE, OVERLAPPED, WSADATA};
use iocp::{
    closesocket, iocp_accept, iocp_bind, iocp_connect, iocp_getsockname, iocp_listen, iocp_recv, iocp_send,
    iocp_socket, CloseHandle, CreateIoCompletionPort, GetLastError, GetQueuedCompletionStatus,
    PostQueuedCompletionStatus, WSAGetLastError, WSAStartup,
};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

const ERROR_INVALID_HANDLE: u32 = 6;
const WAIT_TIMEOUT: u32 = 258;
const WSAENOTSOCK: i32 = 10038;

/// One GQCS poll on `h`: `Ok(key)` or `Err(last error)`.
fn poll(h: HANDLE) -> Result<usize, u32> {
    let (mut bytes, mut key, mut ov) = (0u32, 0usize, std::ptr::null_mut::<OVERLAPPED>());
    // SAFETY: the out-pointers are valid locals; the handle is any value (that is the test).
    let ok = unsafe { GetQueuedCompletionStatus(h, &mut bytes, &mut key, &mut ov, 0) };
    if ok != 0 {
        Ok(key)
    } else {
        Err(GetLastError())
    }
}

#[test]
fn stale_and_forged_handles_fail_while_others_churn() {
    let stop = Arc::new(AtomicBool::new(false));
    let last_closed = Arc::new(AtomicUsize::new(0));
    let churners: Vec<_> = (0..2)
        .map(|_| {
            let (stop, last_closed) = (Arc::clone(&stop), Arc::clone(&last_closed));
            std::thread::spawn(move || {
                let mut rounds = 0;
                while !stop.load(Ordering::Relaxed) || rounds < 100 {
                    // SAFETY: plain values.
                    let p =
                        unsafe { CreateIoCompletionPort(INVALID_HANDLE_VALUE, std::ptr::null_mut(), 0, 0) };
                    assert!(!p.is_null());
                    // SAFETY: plain values; the OVERLAPPED pointer is never read.
                    assert_eq!(unsafe { PostQueuedCompletionStatus(p, 1, 7, std::ptr::null_mut()) }, 1);
                    assert_eq!(poll(p), Ok(7));
                    // SAFETY: plain value.
                    assert_eq!(unsafe { CloseHandle(p) }, 1);
                    last_closed.store(p as usize, Ordering::Relaxed);
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();
    let mut checked = 0;
    for i in 0..20_000usize {
        // Closed handles, values near live ones, odd values, pointers to real memory.
        let stale = last_closed.load(Ordering::Relaxed);
        let local = 0u64;
        for h in [
            stale,
            i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            i | 1,
            &local as *const u64 as usize,
            usize::MAX - 1,
        ] {
            if h == 0 && stale == 0 {
                continue;
            }
            assert_eq!(poll(h as HANDLE), Err(ERROR_INVALID_HANDLE), "handle {h:#x}");
            // SAFETY: plain values.
            assert_eq!(unsafe { CloseHandle(h as HANDLE) }, 0);
            checked += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let rounds: usize = churners.into_iter().map(|t| t.join().expect("churner")).sum();
    assert!(rounds >= 200 && checked > 90_000, "rounds {rounds}, checked {checked}");
}

/// A thread keeps the port it waited on between calls (`port.rs`, `WAITED`): once another
/// thread closes it, the next wait on that handle fails as for any closed handle, and
/// does not wait on the closed port.
#[test]
fn a_port_closed_by_another_thread_is_invalid_for_a_thread_that_waited_on_it() {
    // SAFETY: plain values.
    let p = unsafe { CreateIoCompletionPort(INVALID_HANDLE_VALUE, std::ptr::null_mut(), 0, 0) } as usize;
    assert_ne!(p, 0);
    // This thread waits on it (and remembers it): empty, so a timeout.
    assert_eq!(poll(p as HANDLE), Err(WAIT_TIMEOUT));
    // SAFETY: plain value.
    let closed = std::thread::spawn(move || unsafe { CloseHandle(p as HANDLE) }).join().expect("closer");
    assert_eq!(closed, 1);
    assert_eq!(poll(p as HANDLE), Err(ERROR_INVALID_HANDLE));
    // SAFETY: plain values; the OVERLAPPED pointer is never read.
    assert_eq!(unsafe { PostQueuedCompletionStatus(p as HANDLE, 0, 0, std::ptr::null_mut()) }, 0);
    assert_eq!(GetLastError(), ERROR_INVALID_HANDLE);
}

/// `getsockname` on `s`: `Ok(())` or `Err(WSAGetLastError())`.
fn sockname(s: usize) -> Result<(), i32> {
    let mut addr = [0u8; 128];
    let mut len = addr.len() as i32;
    // SAFETY: `addr` is writable for `len` bytes; the socket is any value.
    let r = unsafe { iocp_getsockname(s, addr.as_mut_ptr().cast(), &mut len) };
    if r == 0 {
        Ok(())
    } else {
        Err(WSAGetLastError())
    }
}

const AF_INET: i32 = 2;
const SOCK_STREAM: i32 = 1;

/// `WSAStartup`, as a Winsock program begins.
fn startup() {
    // SAFETY: an all-zero WSADATA is valid, and writable here.
    let mut data: WSADATA = unsafe { std::mem::zeroed() };
    // SAFETY: `data` is writable.
    assert_eq!(unsafe { WSAStartup(0x0202, &mut data) }, 0);
}

/// A thread keeps the sockets it used lately (`table.rs`, `IO_CACHE`): a socket closed by
/// another thread, or by this one, is `WSAENOTSOCK` at once, however recently it was used.
#[test]
fn a_closed_socket_is_not_a_socket_for_a_thread_that_used_it() {
    startup();
    // SAFETY: plain values.
    let (a, b) = unsafe { (iocp_socket(AF_INET, SOCK_STREAM, 0), iocp_socket(AF_INET, SOCK_STREAM, 0)) };
    assert!(a != usize::MAX && b != usize::MAX);
    for _ in 0..3 {
        sockname(a).expect("an open socket has a name");
        sockname(b).expect("an open socket has a name");
    }
    // SAFETY: plain value.
    assert_eq!(std::thread::spawn(move || unsafe { closesocket(a) }).join().expect("closer"), 0);
    assert_eq!(sockname(a), Err(WSAENOTSOCK));
    // SAFETY: plain value.
    assert_eq!(unsafe { closesocket(b) }, 0);
    assert_eq!(sockname(b), Err(WSAENOTSOCK));
    // SAFETY: plain values.
    assert_ne!(unsafe { closesocket(a) }, 0);
    assert_eq!(WSAGetLastError(), WSAENOTSOCK);
}

/// A closed socket that another thread still holds (blocked in a synchronous `recv`, so
/// its object stays alive) is `WSAENOTSOCK` at once for a thread that used it before: the
/// lookup cache retires it by its `closed` flag, not only when the object is freed.
#[test]
fn a_closed_socket_still_in_use_elsewhere_is_not_a_socket() {
    startup();
    // sockaddr_in for 127.0.0.1, port 0: family, port (big-endian), address, padding.
    let mut addr = [0u8; 16];
    addr[..2].copy_from_slice(&(AF_INET as u16).to_ne_bytes());
    addr[4..8].copy_from_slice(&[127, 0, 0, 1]);
    // SAFETY: plain values; `addr` is readable and writable for its 16 bytes.
    let (listener, client, server) = unsafe {
        let listener = iocp_socket(AF_INET, SOCK_STREAM, 0);
        assert_eq!(iocp_bind(listener, addr.as_ptr().cast(), 16), 0);
        assert_eq!(iocp_listen(listener, 1), 0);
        let mut len = 16;
        assert_eq!(iocp_getsockname(listener, addr.as_mut_ptr().cast(), &mut len), 0);
        let client = iocp_socket(AF_INET, SOCK_STREAM, 0);
        assert_eq!(iocp_connect(client, addr.as_ptr().cast(), 16), 0);
        let server = iocp_accept(listener, std::ptr::null_mut(), std::ptr::null_mut());
        assert_ne!(server, usize::MAX);
        (listener, client, server)
    };
    // This thread uses (and caches) the server side.
    sockname(server).expect("an open socket has a name");
    let started = Arc::new(std::sync::Barrier::new(2));
    let reader = {
        let started = Arc::clone(&started);
        std::thread::spawn(move || {
            let mut byte = 0u8;
            started.wait();
            // SAFETY: `byte` is writable for 1 byte. Blocks until the client sends.
            unsafe { iocp_recv(server, (&raw mut byte).cast(), 1, 0) }
        })
    };
    started.wait();
    // Let the reader block in `recv` (holding the object). If it has not yet, the
    // assertions below hold all the same; they only test less.
    std::thread::sleep(std::time::Duration::from_millis(50));
    // SAFETY: plain value.
    assert_eq!(unsafe { closesocket(server) }, 0);
    assert_eq!(sockname(server), Err(WSAENOTSOCK));
    // SAFETY: the byte is readable. Wakes the reader.
    assert_eq!(unsafe { iocp_send(client, b"x".as_ptr().cast(), 1, 0) }, 1);
    let got = reader.join().expect("reader");
    assert!(got == 1 || got == -1, "recv returned {got}");
    // SAFETY: plain values.
    unsafe {
        assert_eq!(closesocket(client), 0);
        assert_eq!(closesocket(listener), 0);
    }
}
