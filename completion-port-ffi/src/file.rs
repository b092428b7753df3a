//! Files and the I/O control calls shared with sockets: `CreateFileA`, `ReadFile`,
//! `WriteFile`, `GetFileSizeEx`, `FlushFileBuffers`, `GetOverlappedResult`, `CancelIo`,
//! `CancelIoEx`, `SetFileCompletionNotificationModes`.
//!
//! An operation with an `OVERLAPPED` on an object associated with a port goes to the
//! kernel through the library and always completes with a packet (it returns FALSE with
//! `ERROR_IO_PENDING`). It runs on the caller's own memory (the library's raw
//! [`Buffer`](completion_port::Buffer) form), which the caller keeps valid until the packet,
//! as Windows requires: nothing is copied. On an object with no port, the operation runs
//! synchronously and returns TRUE, as Windows may.

use crate::error::code::*;
use crate::error::{self, ffi, status};
use crate::port::{blocking, deliver, finish, Ctx, Op};
use crate::regions::Regions;
use crate::table::{self, IoObj, IoState};
use crate::types::*;
use completion_port::MAX_BUFFER;
use completion_port::{Backend, Handle, Started};
use std::ffi::{c_char, c_void};
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};

const GENERIC_READ: DWORD = 0x8000_0000;
const GENERIC_WRITE: DWORD = 0x4000_0000;
const GENERIC_ALL: DWORD = 0x1000_0000;
const CREATE_NEW: DWORD = 1;
const CREATE_ALWAYS: DWORD = 2;
const OPEN_EXISTING: DWORD = 3;
const OPEN_ALWAYS: DWORD = 4;
const TRUNCATE_EXISTING: DWORD = 5;
/// `FILE_SKIP_COMPLETION_PORT_ON_SUCCESS`.
const FILE_SKIP_COMPLETION_PORT_ON_SUCCESS: u8 = 1;
/// `FILE_SKIP_SET_EVENT_ON_HANDLE`.
const FILE_SKIP_SET_EVENT_ON_HANDLE: u8 = 2;

/// `CreateFileA`: opens or creates a file. Access: `GENERIC_READ`, `GENERIC_WRITE`;
/// dispositions: `CREATE_NEW`, `CREATE_ALWAYS`, `OPEN_EXISTING`, `OPEN_ALWAYS`,
/// `TRUNCATE_EXISTING`. Share modes, attributes and flags (`FILE_FLAG_OVERLAPPED`
/// included: every handle here can do overlapped I/O) are accepted and ignored.
///
/// # Safety
///
/// `lpFileName` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn CreateFileA(
    lpFileName: *const c_char,
    dwDesiredAccess: DWORD,
    dwShareMode: DWORD,
    lpSecurityAttributes: *mut c_void,
    dwCreationDisposition: DWORD,
    dwFlagsAndAttributes: DWORD,
    hTemplateFile: HANDLE,
) -> HANDLE {
    let _ = (dwShareMode, lpSecurityAttributes, dwFlagsAndAttributes, hTemplateFile);
    ffi(INVALID_HANDLE_VALUE, || {
        if lpFileName.is_null() {
            return Err(ERROR_INVALID_PARAMETER);
        }
        let read = dwDesiredAccess & (GENERIC_READ | GENERIC_ALL) != 0;
        let write = dwDesiredAccess & (GENERIC_WRITE | GENERIC_ALL) != 0;
        let mut flags = libc::O_CLOEXEC
            | match (read, write) {
                (_, false) => libc::O_RDONLY,
                (false, true) => libc::O_WRONLY,
                (true, true) => libc::O_RDWR,
            };
        flags |= match dwCreationDisposition {
            CREATE_NEW => libc::O_CREAT | libc::O_EXCL,
            CREATE_ALWAYS => libc::O_CREAT | libc::O_TRUNC,
            OPEN_EXISTING => 0,
            OPEN_ALWAYS => libc::O_CREAT,
            TRUNCATE_EXISTING if write => libc::O_TRUNC,
            _ => return Err(ERROR_INVALID_PARAMETER),
        };
        // SAFETY: `lpFileName` is NUL-terminated (contract).
        let existed = unsafe { libc::access(lpFileName, libc::F_OK) } == 0;
        // SAFETY: as above; `open` with O_CREAT takes the mode as its third argument.
        let fd = unsafe { libc::open(lpFileName, flags, 0o666 as libc::c_uint) };
        if fd < 0 {
            return Err(error::last_file());
        }
        // SAFETY: `fd` was just opened and is owned by nobody else.
        let f = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        let h = table::insert_io(f, false);
        let created_over = matches!(dwCreationDisposition, CREATE_ALWAYS | OPEN_ALWAYS) && existed;
        error::set_last(if created_over { ERROR_ALREADY_EXISTS } else { ERROR_SUCCESS });
        Ok(h as HANDLE)
    })
}

/// Starts an overlapped read into the caller's `regions` on an associated object:
/// `Err(ERROR_IO_PENDING)` once submitted (a packet will come), `Ok(bytes)` if it completed
/// at once on a socket with `FILE_SKIP_COMPLETION_PORT_ON_SUCCESS` (no packet), or the error.
///
/// # Safety
///
/// The regions are writable and stay valid until the packet, as
/// [`Regions::buffer`] requires (the caller's contract for overlapped calls).
pub(crate) unsafe fn submit_read(
    obj: &Arc<IoObj>,
    mut st: MutexGuard<'_, IoState>,
    ov: usize,
    regions: Regions,
    offset: u64,
) -> Result<u32, u32> {
    let asked = regions.total();
    if asked > MAX_BUFFER {
        return Err(ERROR_INVALID_PARAMETER);
    }
    let IoState { assoc, pending } = &mut *st;
    let h = &assoc.as_ref().ok_or(ERROR_INVALID_PARAMETER)?.handle;
    // SAFETY: contract: the caller's memory, writable until the packet; the operation
    // holds the Buffer until then and delivery drops it before the caller hears.
    let buf = unsafe { regions.buffer(true, 0) };
    let ctx = Ctx::new(ov, Op::Read { asked, file: !obj.socket }, obj);
    // SAFETY: `ov` is the caller's OVERLAPPED, valid until the packet (Windows' contract).
    unsafe { write_overlapped(ov, status::STATUS_PENDING, 0) };
    if obj.socket && asked > 0 && starts_eagerly(obj, h) {
        let r = h.recv_eager(buf, ctx);
        return started(obj, ov, st, r);
    }
    let r = if obj.socket { h.recv(buf, ctx) } else { h.read_at(buf, offset, ctx) };
    match r {
        Ok(id) => {
            pending.insert(ov, id);
            Err(ERROR_IO_PENDING)
        }
        Err(e) => Err(submit_failed(ov, &e.error, obj.socket)),
    }
}

/// For an overlapped call (`ov` not 0) on an object associated with a port: the object's
/// state, locked, which `submit_read`/`submit_write` submit under (one lock per call: the
/// handle is borrowed, not cloned, and the operation recorded in the same hold). `None` for
/// a synchronous call or an unassociated object.
pub(crate) fn overlapped(obj: &IoObj, ov: usize) -> Option<MutexGuard<'_, IoState>> {
    if ov == 0 {
        return None;
    }
    let st = obj.state();
    st.assoc.is_some().then_some(st)
}

/// Whether a socket read or write is tried in the call (eagerly) rather than handed to the
/// port's backend. On io_uring it goes through the ring unless skip-on-success is set: the
/// port defers submissions (H9), so a ring operation costs no system call of its own (it
/// goes with the worker's next wait), where an attempt costs one, and a receive that
/// finds nothing costs two. Measured with the seeds' echo server against `cport serve`
/// (docs/benchmarks.md). With skip-on-success the caller handles a completion at once
/// itself, which saves the packet; on epoll the backend tries the call anyway.
fn starts_eagerly(obj: &IoObj, h: &Handle<Ctx>) -> bool {
    obj.skip_on_success.load(Ordering::Relaxed) || h.port().backend() != Some(Backend::Uring)
}

/// The outcome of an eager submission on a socket, which is how socket reads and writes
/// start where [`starts_eagerly`] says so (one system call when the socket is ready): pending
/// (a packet will come), or completed at once. Completed at once, it returns the byte
/// count as Windows does (the call returns success), and its packet is queued all the
/// same unless `FILE_SKIP_COMPLETION_PORT_ON_SUCCESS` is set (then the caller's buffers
/// and `OVERLAPPED` are filled in here, and no packet comes). An immediate failure queues
/// no packet in either mode; the rest of a partial send continues as an overlapped
/// operation (`ERROR_IO_PENDING`, one packet once all of it is sent).
fn started(
    obj: &Arc<IoObj>,
    ov: usize,
    mut st: MutexGuard<'_, IoState>,
    r: Result<Started<Ctx>, completion_port::SubmitError<Ctx>>,
) -> Result<u32, u32> {
    match r {
        Ok(Started::Pending(id)) => {
            st.pending.insert(ov, id);
            Err(ERROR_IO_PENDING)
        }
        Ok(Started::Done(c)) => {
            let port = st.assoc.as_ref().map(|a| a.port.clone());
            // `deliver` takes the lock.
            drop(st);
            if let (false, Some(bytes)) = (obj.skip_on_success.load(Ordering::Relaxed), whole_success(&c)) {
                if let Some(port) = port {
                    // The OVERLAPPED says "done" before the packet can be taken (and the
                    // OVERLAPPED reused by whoever takes it).
                    // SAFETY: `ov` is the caller's OVERLAPPED, valid until its packet is taken.
                    unsafe { write_overlapped(ov, status::STATUS_SUCCESS, bytes as usize) };
                    match port.post_completion(c) {
                        Ok(()) => return Ok(bytes),
                        // The port was closed meanwhile: nobody will take the packet.
                        Err(c) => return deliver(*c).map_or(Err(ERROR_IO_PENDING), |d| Ok(d.bytes)),
                    }
                }
            }
            match deliver(c) {
                Some(d) if d.error == 0 => Ok(d.bytes),
                Some(d) => Err(d.error),
                // The rest of a partial send went out as an overlapped operation.
                None => Err(ERROR_IO_PENDING),
            }
        }
        Err(e) => Err(submit_failed(ov, &e.error, obj.socket)),
    }
}

/// The byte count of an immediate completion that is the whole operation's success (not
/// an error, not the first part of a send that must go on).
fn whole_success(c: &completion_port::Completion<Ctx>) -> Option<u32> {
    let n = *c.result.as_ref().ok()?;
    match &c.context.op {
        Op::Write { done, regions } if done + n < regions.total() => None,
        _ => u32::try_from(n).ok(),
    }
}

/// Starts an overlapped write of the caller's `regions` on an associated object; results as
/// [`submit_read`]. On a socket the packet comes once all of it is sent: a partial send is
/// continued from where it stopped, under the same `OVERLAPPED` (see `port::deliver`).
///
/// # Safety
///
/// The regions are readable and stay valid until the packet (as [`submit_read`]).
pub(crate) unsafe fn submit_write(
    obj: &Arc<IoObj>,
    mut st: MutexGuard<'_, IoState>,
    ov: usize,
    regions: Regions,
    offset: u64,
) -> Result<u32, u32> {
    if regions.total() > MAX_BUFFER {
        return Err(ERROR_INVALID_PARAMETER);
    }
    let IoState { assoc, pending } = &mut *st;
    let h = &assoc.as_ref().ok_or(ERROR_INVALID_PARAMETER)?.handle;
    // SAFETY: contract, as in `submit_read`.
    let buf = unsafe { regions.buffer(false, 0) };
    let ctx = Ctx::new(ov, Op::Write { done: 0, regions }, obj);
    // SAFETY: `ov` is the caller's OVERLAPPED, valid until the packet (Windows' contract).
    unsafe { write_overlapped(ov, status::STATUS_PENDING, 0) };
    if obj.socket && starts_eagerly(obj, h) {
        let r = h.send_eager(buf, ctx);
        return started(obj, ov, st, r);
    }
    let r = if obj.socket { h.send(buf, ctx) } else { h.write_at(buf, offset, ctx) };
    match r {
        Ok(id) => {
            pending.insert(ov, id);
            Err(ERROR_IO_PENDING)
        }
        Err(e) => Err(submit_failed(ov, &e.error, obj.socket)),
    }
}

/// A refused submission: no packet will come; the `OVERLAPPED` records the failure.
pub(crate) fn submit_failed(ov: usize, e: &std::io::Error, socket: bool) -> u32 {
    let code = error::from_io(e, socket);
    // SAFETY: `ov` is the caller's OVERLAPPED, valid during this call.
    unsafe { write_overlapped(ov, error::to_ntstatus(code), 0) };
    code
}

/// The result of a synchronous transfer, as `ReadFile`/`WriteFile` report it, with the
/// caller's `OVERLAPPED` (if any) filled in and its event set.
fn sync_result(n: isize, ov: usize, out: *mut DWORD, eof_check: bool, socket: bool) -> Result<BOOL, u32> {
    if n < 0 {
        let code = if socket { error::last_wsa() } else { error::last_file() };
        finish(ov, 0, code);
        return Err(code);
    }
    if !out.is_null() {
        // SAFETY: non-null; the caller passes a writable DWORD.
        unsafe { *out = n as DWORD };
    }
    if n == 0 && eof_check && ov != 0 {
        finish(ov, 0, ERROR_HANDLE_EOF);
        return Err(ERROR_HANDLE_EOF);
    }
    finish(ov, n as usize, 0);
    Ok(TRUE)
}

/// An operation on an associated handle completed at once (skip-on-success): TRUE, with
/// the byte count.
fn done_at_once(n: u32, out: *mut DWORD) -> BOOL {
    if !out.is_null() {
        // SAFETY: non-null; the caller passes a writable DWORD.
        unsafe { *out = n };
    }
    TRUE
}

/// The file offset an `OVERLAPPED` names.
fn offset_of(ov: usize) -> u64 {
    // SAFETY: `ov` is the caller's live OVERLAPPED.
    unsafe { read_overlapped(ov) }.1
}

/// `ReadFile`: with an `OVERLAPPED` on an associated handle, starts a read at its offset
/// and returns FALSE with `ERROR_IO_PENDING`; the bytes are in `lpBuffer` when the
/// packet is delivered. Otherwise reads synchronously (at the `OVERLAPPED`'s offset if
/// given); at end of file, an overlapped read fails with `ERROR_HANDLE_EOF`.
///
/// # Safety
///
/// `lpBuffer` is writable for `nNumberOfBytesToRead` bytes and, like `lpOverlapped`,
/// stays valid until the operation's packet is delivered.
#[no_mangle]
pub unsafe extern "C" fn ReadFile(
    hFile: HANDLE,
    lpBuffer: *mut c_void,
    nNumberOfBytesToRead: DWORD,
    lpNumberOfBytesRead: *mut DWORD,
    lpOverlapped: *mut OVERLAPPED,
) -> BOOL {
    ffi(FALSE, || {
        let obj = table::io(hval(hFile))?;
        if lpBuffer.is_null() && nNumberOfBytesToRead > 0 {
            return Err(ERROR_INVALID_PARAMETER);
        }
        if !lpNumberOfBytesRead.is_null() {
            // SAFETY: non-null; the caller passes a writable DWORD.
            unsafe { *lpNumberOfBytesRead = 0 };
        }
        let ov = lpOverlapped as usize;
        let len = nNumberOfBytesToRead as usize;
        if let Some(st) = overlapped(&obj, ov) {
            // SAFETY: the caller's buffer, writable until the packet (this function's contract).
            let n =
                unsafe { submit_read(&obj, st, ov, Regions::one(lpBuffer as usize, len), offset_of(ov)) }?;
            return Ok(done_at_once(n, lpNumberOfBytesRead));
        }
        let n = blocking(|| {
            obj.with_fd(|fd| {
                if ov != 0 && !obj.socket {
                    // SAFETY: the caller's buffer is writable for `len` bytes.
                    unsafe { libc::pread(fd, lpBuffer, len, offset_of(ov) as libc::off_t) }
                } else {
                    crate::net::as_blocking(fd, libc::POLLIN, || {
                        // SAFETY: as above.
                        unsafe { libc::read(fd, lpBuffer, len) }
                    })
                }
            })
        });
        sync_result(n, ov, lpNumberOfBytesRead, !obj.socket && len > 0, obj.socket)
    })
}

/// `WriteFile`: as [`ReadFile`], writing from `lpBuffer` (not copied: as on Windows, the
/// caller leaves it alone until the packet).
///
/// # Safety
///
/// `lpBuffer` is readable for `nNumberOfBytesToWrite` bytes and, like `lpOverlapped`,
/// stays valid and unmodified until the operation's packet is delivered.
#[no_mangle]
pub unsafe extern "C" fn WriteFile(
    hFile: HANDLE,
    lpBuffer: *const c_void,
    nNumberOfBytesToWrite: DWORD,
    lpNumberOfBytesWritten: *mut DWORD,
    lpOverlapped: *mut OVERLAPPED,
) -> BOOL {
    ffi(FALSE, || {
        let obj = table::io(hval(hFile))?;
        if lpBuffer.is_null() && nNumberOfBytesToWrite > 0 {
            return Err(ERROR_INVALID_PARAMETER);
        }
        if !lpNumberOfBytesWritten.is_null() {
            // SAFETY: non-null; the caller passes a writable DWORD.
            unsafe { *lpNumberOfBytesWritten = 0 };
        }
        let ov = lpOverlapped as usize;
        let len = nNumberOfBytesToWrite as usize;
        if let Some(st) = overlapped(&obj, ov) {
            // SAFETY: the caller's buffer, readable until the packet (this function's contract).
            let n =
                unsafe { submit_write(&obj, st, ov, Regions::one(lpBuffer as usize, len), offset_of(ov)) }?;
            return Ok(done_at_once(n, lpNumberOfBytesWritten));
        }
        let n = blocking(|| {
            obj.with_fd(|fd| {
                if ov != 0 && !obj.socket {
                    // SAFETY: the caller's buffer is readable for `len` bytes.
                    unsafe { libc::pwrite(fd, lpBuffer, len, offset_of(ov) as libc::off_t) }
                } else if obj.socket {
                    crate::net::as_blocking(fd, libc::POLLOUT, || {
                        // SAFETY: as above.
                        unsafe { libc::send(fd, lpBuffer, len, libc::MSG_NOSIGNAL) }
                    })
                } else {
                    crate::net::as_blocking(fd, libc::POLLOUT, || {
                        // SAFETY: as above.
                        unsafe { libc::write(fd, lpBuffer, len) }
                    })
                }
            })
        });
        sync_result(n, ov, lpNumberOfBytesWritten, false, obj.socket)
    })
}

/// `GetFileSizeEx`.
///
/// # Safety
///
/// `lpFileSize` points to a writable 64-bit `LARGE_INTEGER`.
#[no_mangle]
pub unsafe extern "C" fn GetFileSizeEx(hFile: HANDLE, lpFileSize: *mut i64) -> BOOL {
    ffi(FALSE, || {
        let obj = table::io(hval(hFile))?;
        if lpFileSize.is_null() {
            return Err(ERROR_INVALID_PARAMETER);
        }
        // SAFETY: an all-zero `stat` is a valid value to be overwritten.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `st` is writable; the descriptor is open while the read lock is held.
        if obj.with_fd(|fd| unsafe { libc::fstat(fd, &mut st) }) != 0 {
            return Err(error::last_file());
        }
        // SAFETY: non-null; the caller passes a writable LARGE_INTEGER.
        unsafe { *lpFileSize = st.st_size };
        Ok(TRUE)
    })
}

/// `FlushFileBuffers`: `fsync`, synchronously.
///
/// # Safety
///
/// Callable with any value.
#[no_mangle]
pub unsafe extern "C" fn FlushFileBuffers(hFile: HANDLE) -> BOOL {
    ffi(FALSE, || {
        let obj = table::io(hval(hFile))?;
        // SAFETY: the descriptor is open while the read lock is held.
        if blocking(|| obj.with_fd(|fd| unsafe { libc::fsync(fd) })) != 0 {
            return Err(error::last_file());
        }
        Ok(TRUE)
    })
}

/// `GetOverlappedResult`: the outcome recorded in an `OVERLAPPED`. An operation on a
/// port records it when its packet is delivered; with `bWait`, this waits for that (on
/// the `OVERLAPPED`'s event if it has one).
///
/// # Safety
///
/// `lpOverlapped` is the `OVERLAPPED` of an operation started on `hFile`.
#[no_mangle]
pub unsafe extern "C" fn GetOverlappedResult(
    hFile: HANDLE,
    lpOverlapped: *mut OVERLAPPED,
    lpNumberOfBytesTransferred: *mut DWORD,
    bWait: BOOL,
) -> BOOL {
    ffi(FALSE, || {
        table::io(hval(hFile))?;
        if lpOverlapped.is_null() || lpNumberOfBytesTransferred.is_null() {
            return Err(ERROR_INVALID_PARAMETER);
        }
        let ov = lpOverlapped as usize;
        loop {
            // SAFETY: the caller's live OVERLAPPED.
            let (event, _, st, bytes) = unsafe { read_overlapped(ov) };
            if st != status::STATUS_PENDING {
                // SAFETY: non-null; the caller passes a writable DWORD.
                unsafe { *lpNumberOfBytesTransferred = bytes as DWORD };
                let code = error::from_ntstatus(st);
                return if code == 0 { Ok(TRUE) } else { Err(code) };
            }
            if bWait == 0 {
                return Err(ERROR_IO_INCOMPLETE);
            }
            if event != 0 {
                // SAFETY: any value is accepted by the wait.
                unsafe { crate::sync::WaitForSingleObject(event as HANDLE, INFINITE) };
            } else {
                blocking(|| std::thread::sleep(std::time::Duration::from_millis(1)));
            }
        }
    })
}

/// `CancelIoEx`: cancels the operation of `lpOverlapped`, or every operation of the
/// handle if it is NULL. Each still completes with a packet (`ERROR_OPERATION_ABORTED`,
/// or its real result if it finished first). Nothing to cancel: `ERROR_NOT_FOUND`.
///
/// # Safety
///
/// Callable with any values: `lpOverlapped` is only compared.
#[no_mangle]
pub unsafe extern "C" fn CancelIoEx(hFile: HANDLE, lpOverlapped: *mut OVERLAPPED) -> BOOL {
    ffi(FALSE, || {
        let obj = table::io(hval(hFile))?;
        let st = obj.state();
        let h = &st.assoc.as_ref().ok_or(ERROR_NOT_FOUND)?.handle;
        let r = if lpOverlapped.is_null() {
            h.cancel_all()
        } else {
            let id = st.pending.get(lpOverlapped as usize).ok_or(ERROR_NOT_FOUND)?;
            h.cancel(id)
        };
        drop(st);
        r.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ERROR_NOT_FOUND
            } else {
                error::from_io(&e, obj.socket)
            }
        })?;
        Ok(TRUE)
    })
}

/// `CancelIo`: cancels every operation of the handle (Windows limits it to those the
/// calling thread started; the library does not record the thread).
///
/// # Safety
///
/// Callable with any value.
#[no_mangle]
pub unsafe extern "C" fn CancelIo(hFile: HANDLE) -> BOOL {
    // SAFETY: any values are accepted.
    unsafe { CancelIoEx(hFile, std::ptr::null_mut()) }
}

/// `SetFileCompletionNotificationModes`: with `FILE_SKIP_COMPLETION_PORT_ON_SUCCESS`, a
/// receive or send on an associated socket that can complete at once does so (the call
/// succeeds with the byte count, the `OVERLAPPED` is filled in) and queues no packet; one
/// that cannot is started as usual and pends. File operations always pend.
///
/// # Safety
///
/// Callable with any values.
#[no_mangle]
pub unsafe extern "C" fn SetFileCompletionNotificationModes(FileHandle: HANDLE, Flags: u8) -> BOOL {
    ffi(FALSE, || {
        let obj = table::io(hval(FileHandle))?;
        if Flags & !(FILE_SKIP_COMPLETION_PORT_ON_SUCCESS | FILE_SKIP_SET_EVENT_ON_HANDLE) != 0 {
            return Err(ERROR_INVALID_PARAMETER);
        }
        obj.skip_on_success
            .store(Flags & FILE_SKIP_COMPLETION_PORT_ON_SUCCESS != 0, std::sync::atomic::Ordering::Relaxed);
        Ok(TRUE)
    })
}
