//! What the seeds' programs use around the port: threads, events, waits, `Sleep`, tick
//! counts and the last error. Every wait counts as blocking for the concurrency value of
//! the port the thread last took a packet from (docs/semantics.md P9).

use crate::error::code::*;
use crate::error::{self, ffi};
use crate::port::{blocking, timeout};
use crate::table::{self, lock, Obj};
use crate::types::*;
use std::ffi::c_void;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

/// `WAIT_OBJECT_0`.
const WAIT_OBJECT_0: DWORD = 0;
/// `WAIT_FAILED`.
const WAIT_FAILED: DWORD = 0xFFFF_FFFF;
/// `STILL_ACTIVE`: the exit code of a thread that has not exited.
const STILL_ACTIVE: DWORD = 259;
/// `CREATE_SUSPENDED` (not supported).
const CREATE_SUSPENDED: DWORD = 4;

/// A thread from `CreateThread`: its exit code once it has returned.
pub(crate) struct ThreadObj {
    exit: Mutex<Option<u32>>,
    done: Condvar,
}

/// An event from `CreateEventA`.
pub(crate) struct EventObj {
    set: Mutex<bool>,
    cv: Condvar,
    manual: bool,
}

impl EventObj {
    fn signal(&self) {
        *lock(&self.set) = true;
        if self.manual {
            self.cv.notify_all();
        } else {
            self.cv.notify_one();
        }
    }
}

/// Sets the event a handle value refers to, if it is one (an `OVERLAPPED`'s `hEvent`).
pub(crate) fn signal_event(h: usize) {
    // Most operations have no event: no table lookup for them (every packet comes here).
    if h == 0 {
        return;
    }
    if let Some(Obj::Event(e)) = table::get(h) {
        e.signal();
    }
}

/// Waits on a condition variable until `ready` holds or the timeout passes; returns
/// whether it holds.
fn wait_until<T>(m: &Mutex<T>, cv: &Condvar, ms: DWORD, mut ready: impl FnMut(&mut T) -> bool) -> bool {
    let t = timeout(ms);
    let start = Instant::now();
    let mut g = lock(m);
    loop {
        if ready(&mut g) {
            return true;
        }
        match t {
            None => g = cv.wait(g).unwrap_or_else(std::sync::PoisonError::into_inner),
            Some(t) => {
                let left = t.saturating_sub(start.elapsed());
                if left.is_zero() {
                    return false;
                }
                g = cv.wait_timeout(g, left).unwrap_or_else(std::sync::PoisonError::into_inner).0;
            }
        }
    }
}

/// Waits for one object; `Ok(true)` if it was signalled.
fn wait_one(h: usize, ms: DWORD) -> Result<bool, u32> {
    match table::get(h) {
        Some(Obj::Thread(t)) => Ok(blocking(|| wait_until(&t.exit, &t.done, ms, |e| e.is_some()))),
        Some(Obj::Event(e)) => Ok(blocking(|| {
            wait_until(&e.set, &e.cv, ms, |s| {
                let was = *s;
                if was && !e.manual {
                    *s = false;
                }
                was
            })
        })),
        _ => Err(ERROR_INVALID_HANDLE),
    }
}

/// `WaitForSingleObject` on a thread or an event: `WAIT_OBJECT_0`, `WAIT_TIMEOUT`, or
/// `WAIT_FAILED` (`ERROR_INVALID_HANDLE`).
///
/// # Safety
///
/// Callable with any value.
#[no_mangle]
pub unsafe extern "C" fn WaitForSingleObject(hHandle: HANDLE, dwMilliseconds: DWORD) -> DWORD {
    ffi(WAIT_FAILED, || {
        Ok(if wait_one(hval(hHandle), dwMilliseconds)? { WAIT_OBJECT_0 } else { WAIT_TIMEOUT })
    })
}

/// `WaitForMultipleObjects` with `bWaitAll` TRUE (every object, in turn) or FALSE (the
/// first signalled, checked every millisecond).
///
/// # Safety
///
/// `lpHandles` points to `nCount` handles.
#[no_mangle]
pub unsafe extern "C" fn WaitForMultipleObjects(
    nCount: DWORD,
    lpHandles: *const HANDLE,
    bWaitAll: BOOL,
    dwMilliseconds: DWORD,
) -> DWORD {
    ffi(WAIT_FAILED, || {
        if lpHandles.is_null() || nCount == 0 || nCount > 64 {
            return Err(ERROR_INVALID_PARAMETER);
        }
        // SAFETY: the caller passes `nCount` handles.
        let hs: Vec<usize> = unsafe { std::slice::from_raw_parts(lpHandles, nCount as usize) }
            .iter()
            .map(|h| hval(*h))
            .collect();
        let t = timeout(dwMilliseconds);
        let start = Instant::now();
        let left = || match t {
            None => INFINITE,
            Some(t) => t.saturating_sub(start.elapsed()).as_millis().min(u128::from(INFINITE - 1)) as DWORD,
        };
        if bWaitAll != 0 {
            for &h in &hs {
                if !wait_one(h, left())? {
                    return Ok(WAIT_TIMEOUT);
                }
            }
            return Ok(WAIT_OBJECT_0);
        }
        loop {
            for (i, &h) in hs.iter().enumerate() {
                if wait_one(h, 0)? {
                    return Ok(WAIT_OBJECT_0 + i as DWORD);
                }
            }
            if left() == 0 {
                return Ok(WAIT_TIMEOUT);
            }
            blocking(|| std::thread::sleep(std::time::Duration::from_millis(1)));
        }
    })
}

/// The start routine of a thread.
pub type ThreadProc = unsafe extern "C" fn(*mut c_void) -> DWORD;

static THREAD_IDS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

/// `CreateThread`: runs `lpStartAddress(lpParameter)` on a new thread; returns its handle
/// (wait on it, read its exit code, close it). `CREATE_SUSPENDED` is not supported.
///
/// # Safety
///
/// `lpStartAddress` is a function that may be called with `lpParameter` on another thread.
#[no_mangle]
pub unsafe extern "C" fn CreateThread(
    lpThreadAttributes: *mut c_void,
    dwStackSize: usize,
    lpStartAddress: Option<ThreadProc>,
    lpParameter: *mut c_void,
    dwCreationFlags: DWORD,
    lpThreadId: *mut DWORD,
) -> HANDLE {
    let _ = lpThreadAttributes;
    ffi(std::ptr::null_mut(), || {
        let f = lpStartAddress.ok_or(ERROR_INVALID_PARAMETER)?;
        if dwCreationFlags & CREATE_SUSPENDED != 0 {
            return Err(ERROR_NOT_SUPPORTED);
        }
        let obj = Arc::new(ThreadObj { exit: Mutex::new(None), done: Condvar::new() });
        let t = Arc::clone(&obj);
        let param = lpParameter as usize;
        let id = THREAD_IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut b = std::thread::Builder::new();
        if dwStackSize != 0 {
            b = b.stack_size(dwStackSize.max(64 * 1024));
        }
        b.spawn(move || {
            // SAFETY: the caller's contract: `f` may run with `param` on this thread.
            let code = unsafe { f(param as *mut c_void) };
            *lock(&t.exit) = Some(code);
            t.done.notify_all();
        })
        .map_err(|e| error::from_io(&e, false))?;
        if !lpThreadId.is_null() {
            // SAFETY: non-null; the caller passes a writable DWORD.
            unsafe { *lpThreadId = id };
        }
        Ok(table::insert(Obj::Thread(obj)) as HANDLE)
    })
}

/// `GetExitCodeThread`: the thread's return value, or `STILL_ACTIVE`.
///
/// # Safety
///
/// `lpExitCode` is writable.
#[no_mangle]
pub unsafe extern "C" fn GetExitCodeThread(hThread: HANDLE, lpExitCode: *mut DWORD) -> BOOL {
    ffi(FALSE, || {
        let Some(Obj::Thread(t)) = table::get(hval(hThread)) else { return Err(ERROR_INVALID_HANDLE) };
        if lpExitCode.is_null() {
            return Err(ERROR_INVALID_PARAMETER);
        }
        let code = lock(&t.exit).unwrap_or(STILL_ACTIVE);
        // SAFETY: non-null; the caller passes a writable DWORD.
        unsafe { *lpExitCode = code };
        Ok(TRUE)
    })
}

/// `CreateEventA`: a manual-reset or auto-reset event. Named events are not supported.
///
/// # Safety
///
/// `lpName` is NULL.
#[no_mangle]
pub unsafe extern "C" fn CreateEventA(
    lpEventAttributes: *mut c_void,
    bManualReset: BOOL,
    bInitialState: BOOL,
    lpName: *const std::ffi::c_char,
) -> HANDLE {
    let _ = lpEventAttributes;
    ffi(std::ptr::null_mut(), || {
        if !lpName.is_null() {
            return Err(ERROR_NOT_SUPPORTED);
        }
        let e =
            EventObj { set: Mutex::new(bInitialState != 0), cv: Condvar::new(), manual: bManualReset != 0 };
        Ok(table::insert(Obj::Event(Arc::new(e))) as HANDLE)
    })
}

/// `SetEvent`.
///
/// # Safety
///
/// Callable with any value.
#[no_mangle]
pub unsafe extern "C" fn SetEvent(hEvent: HANDLE) -> BOOL {
    ffi(FALSE, || match table::get(hval(hEvent)) {
        Some(Obj::Event(e)) => {
            e.signal();
            Ok(TRUE)
        }
        _ => Err(ERROR_INVALID_HANDLE),
    })
}

/// `ResetEvent`.
///
/// # Safety
///
/// Callable with any value.
#[no_mangle]
pub unsafe extern "C" fn ResetEvent(hEvent: HANDLE) -> BOOL {
    ffi(FALSE, || match table::get(hval(hEvent)) {
        Some(Obj::Event(e)) => {
            *lock(&e.set) = false;
            Ok(TRUE)
        }
        _ => Err(ERROR_INVALID_HANDLE),
    })
}

/// `Sleep`: counts as blocking for the concurrency value (P9).
#[no_mangle]
pub extern "C" fn Sleep(dwMilliseconds: DWORD) {
    ffi((), || {
        let d = timeout(dwMilliseconds).unwrap_or(std::time::Duration::MAX);
        blocking(|| {
            if d == std::time::Duration::MAX {
                loop {
                    std::thread::park();
                }
            }
            std::thread::sleep(d)
        });
        Ok(())
    })
}

/// Milliseconds since an arbitrary start (`CLOCK_MONOTONIC`).
fn ticks() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// `GetTickCount`: milliseconds since boot, wrapping every 49.7 days.
#[no_mangle]
pub extern "C" fn GetTickCount() -> DWORD {
    ticks() as DWORD
}

/// `GetTickCount64`.
#[no_mangle]
pub extern "C" fn GetTickCount64() -> u64 {
    ticks()
}

/// `GetLastError`: the calling thread's last error.
#[no_mangle]
pub extern "C" fn GetLastError() -> DWORD {
    error::last()
}

/// `SetLastError`.
#[no_mangle]
pub extern "C" fn SetLastError(dwErrCode: DWORD) {
    error::set_last(dwErrCode)
}

/// `WSAGetLastError`: the same thread-local value as `GetLastError`, as on Windows.
#[no_mangle]
pub extern "C" fn WSAGetLastError() -> i32 {
    error::last() as i32
}

/// `WSASetLastError`.
#[no_mangle]
pub extern "C" fn WSASetLastError(iError: i32) {
    error::set_last(iError as u32)
}

/// `SYSTEM_INFO`, as `iocp.h` declares it.
#[repr(C)]
pub struct SYSTEM_INFO {
    /// `wProcessorArchitecture` and `wReserved` (or the obsolete `dwOemId`).
    pub dwOemId: u32,
    /// Page size.
    pub dwPageSize: u32,
    /// Lowest application address.
    pub lpMinimumApplicationAddress: *mut c_void,
    /// Highest application address.
    pub lpMaximumApplicationAddress: *mut c_void,
    /// One bit per processor the process may run on (the first 64).
    pub dwActiveProcessorMask: usize,
    /// Logical processors the process may run on.
    pub dwNumberOfProcessors: u32,
    /// Obsolete.
    pub dwProcessorType: u32,
    /// Allocation granularity (the page size here).
    pub dwAllocationGranularity: u32,
    /// Architecture-dependent.
    pub wProcessorLevel: u16,
    /// Architecture-dependent.
    pub wProcessorRevision: u16,
}

/// `GetSystemInfo`: `dwNumberOfProcessors` is the number of logical CPUs this process may
/// run on (what servers size their worker pools by); the page size is the system's.
///
/// # Safety
///
/// `lpSystemInfo` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn GetSystemInfo(lpSystemInfo: *mut SYSTEM_INFO) {
    ffi((), || {
        if lpSystemInfo.is_null() {
            return Err(ERROR_INVALID_PARAMETER);
        }
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        // SAFETY: plain query.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u32;
        let arch: u32 = if cfg!(target_arch = "x86_64") {
            9 // PROCESSOR_ARCHITECTURE_AMD64
        } else if cfg!(target_arch = "aarch64") {
            12 // PROCESSOR_ARCHITECTURE_ARM64
        } else {
            0xffff // PROCESSOR_ARCHITECTURE_UNKNOWN
        };
        let info = SYSTEM_INFO {
            dwOemId: arch,
            dwPageSize: page,
            lpMinimumApplicationAddress: 0x10000 as *mut c_void,
            lpMaximumApplicationAddress: 0x7fff_ffff_ffff_usize as *mut c_void,
            dwActiveProcessorMask: if cpus >= 64 { usize::MAX } else { (1usize << cpus) - 1 },
            dwNumberOfProcessors: cpus as u32,
            dwProcessorType: 0,
            dwAllocationGranularity: page,
            wProcessorLevel: 0,
            wProcessorRevision: 0,
        };
        // SAFETY: non-null; the caller passes a writable SYSTEM_INFO.
        unsafe { lpSystemInfo.write(info) };
        Ok(())
    })
}

/// `GetCurrentThreadId`: the kernel's thread id.
#[no_mangle]
pub extern "C" fn GetCurrentThreadId() -> DWORD {
    // SAFETY: plain system call.
    (unsafe { libc::gettid() }) as DWORD
}
