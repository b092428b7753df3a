//! Handles are values checked against a table, never pointers: stale, closed and made-up
//! values fail with `ERROR_INVALID_HANDLE` while other threads create, use and close real
//! ones, and nothing crashes (issue 11: "a stale, closed or made-up handle is
//! ERROR_INVALID_HANDLE, never a crash").

use iocp::types::{HANDLE, INVALID_HANDLE_VALUE, OVERLAPPED};
use iocp::{
    CloseHandle, CreateIoCompletionPort, GetLastError, GetQueuedCompletionStatus, PostQueuedCompletionStatus,
};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

const ERROR_INVALID_HANDLE: u32 = 6;

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
