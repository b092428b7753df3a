//! Completion ports: `CreateIoCompletionPort`, `GetQueuedCompletionStatus(Ex)`,
//! `PostQueuedCompletionStatus`, `CloseHandle`, and the delivery of I/O packets (filling
//! the caller's `OVERLAPPED`; the bytes are already in its buffers: operations run on them).

use crate::error::code::*;
use crate::error::{self, ffi, status};
use crate::table::{self, Assoc, IoObj, IoState, Obj};
use crate::types::*;
use completion_port::{CompletionPort, GetError, Handle, Parts};
use std::cell::Cell;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The per-operation context every packet of a C port carries: the caller's `OVERLAPPED`
/// address and what delivery must do with the operation's result.
pub struct Ctx {
    /// Address of the caller's `OVERLAPPED` (or the pointer given to `post`).
    pub(crate) ov: usize,
    /// What kind of operation, and where its bytes go.
    pub(crate) op: Op,
    /// The handle value of the object the operation runs on, 0 for none: a packet never
    /// keeps a closed socket open, and holding or dropping it touches no shared memory.
    pub(crate) obj: usize,
    /// The object is a socket (errors are mapped the way Windows maps socket errors).
    pub(crate) socket: bool,
}

/// What delivery does for each kind of operation.
pub(crate) enum Op {
    /// `PostQueuedCompletionStatus`: delivered untouched.
    Posted,
    /// `ReadFile`/`WSARecv` of `asked` bytes into the caller's buffers. `file`: a read of 0
    /// bytes is end of file (`ERROR_HANDLE_EOF`).
    Read { asked: usize, file: bool },
    /// `WriteFile`/`WSASend` of the caller's `regions`; `done` bytes were sent by earlier
    /// parts of a partial send.
    Write { done: usize, regions: crate::regions::Regions },
    /// `AcceptEx`: the connection goes into `target`; the addresses into `buf`.
    Accept(crate::net::AcceptInfo),
    /// `AcceptEx` with a receive: the first data block, received through `tmp`.
    AcceptData { tmp: Handle<Ctx>, info: crate::net::AcceptInfo },
    /// `WSARecvFrom`: as `Read`, and the sender's address goes to `from` (a `sockaddr`
    /// of `*fromlen` bytes; both addresses may be 0).
    RecvFrom { from: usize, fromlen: usize },
    /// `ConnectEx`: once connected, the caller's `send` buffer (if not empty) is sent under
    /// the same `OVERLAPPED`, and the packet carries its byte count.
    Connect { send: crate::regions::Regions },
}

impl Ctx {
    pub(crate) fn new(ov: usize, op: Op, obj: &IoObj) -> Self {
        Self { ov, op, obj: obj.handle, socket: obj.socket }
    }
}

thread_local! {
    /// The port this thread last took a packet from, with its handle value. The shim's own
    /// blocking calls (`Sleep`, `WaitForSingleObject`, synchronous socket calls) stop
    /// counting against its concurrency value while they block (docs/semantics.md P9).
    /// Kept between calls so that a worker's next `GetQueuedCompletionStatus` does not
    /// look the port up in the handle table: that lookup writes a lock word and the
    /// port's reference count, two cache lines every worker of the port writes on every
    /// call (docs/benchmarks.md, "The C server's own cost").
    static WAITED: Cell<Option<(usize, CompletionPort<Ctx>)>> = const { Cell::new(None) };
}

/// Runs `f` on the port `h` refers to, and remembers it as the port whose concurrency
/// value this thread's blocking calls release. The remembered port is used while it is
/// open and `h` names it (handle values are never reused); once closed it is let go, and
/// `h` is looked up again (`CloseHandle` removes a port from the table before it closes
/// it, so the lookup then fails as for any closed handle). A closed port a thread still
/// remembers is let go at that thread's next wait, blocking call or exit.
fn with_waited_port<R>(h: usize, f: impl FnOnce(&CompletionPort<Ctx>) -> Result<R, u32>) -> Result<R, u32> {
    let port = match WAITED.try_with(Cell::take).ok().flatten() {
        Some((kept, p)) if kept == h && !p.is_closed() => p,
        _ => table::port(h)?,
    };
    let r = f(&port);
    // Fails only while the thread exits: then the port is simply dropped.
    let _ = WAITED.try_with(|c| c.set(Some((h, port))));
    r
}

/// Runs `f`, which blocks, without counting against the concurrency value of the port
/// this thread last took a packet from (if it is still open).
pub(crate) fn blocking<R>(f: impl FnOnce() -> R) -> R {
    let port = WAITED
        .try_with(|c| {
            // A closed port is let go here.
            let kept = c.take().filter(|(_, p)| !p.is_closed());
            let open = kept.as_ref().map(|(_, p)| p.clone());
            c.set(kept);
            open
        })
        .ok()
        .flatten();
    match port {
        Some(p) => {
            let _guard = p.blocking_guard();
            f()
        }
        None => f(),
    }
}

/// A packet ready for the caller.
pub(crate) struct Delivered {
    key: usize,
    ov: usize,
    /// Bytes transferred.
    pub(crate) bytes: u32,
    /// 0 for success, else the Win32 code.
    pub(crate) error: u32,
}

/// Finishes an operation: records its outcome in the caller's `OVERLAPPED` and sets its
/// event. `error` 0 is success.
pub(crate) fn finish(ov: usize, bytes: usize, error: u32) {
    let st = if error == 0 { status::STATUS_SUCCESS } else { error::to_ntstatus(error) };
    if ov == 0 {
        return;
    }
    // SAFETY: `ov` was given with the operation; the caller keeps it alive until its
    // packet is delivered, which is now (Windows' contract for overlapped I/O).
    let (event, ..) = unsafe { read_overlapped(ov) };
    // SAFETY: as above.
    unsafe { write_overlapped(ov, st, bytes) };
    crate::sync::signal_event(event & !1);
}

/// Turns a packet into what the caller receives, or `None` if the shim continued the
/// operation (the rest of a partial send, the receive of an `AcceptEx`) and the caller
/// gets nothing yet.
pub(crate) fn deliver(c: completion_port::Completion<Ctx>) -> Option<Delivered> {
    let Parts { key, result, context, buffer, memory, accepted, addr } = c.into_all_parts();
    // The operation ran on the caller's memory (a raw Buffer): let go of it before the
    // caller hears of the packet and may free it.
    drop((buffer, memory));
    let Ctx { ov, op, obj, socket } = context;
    if let Op::Posted = op {
        return Some(Delivered { key, ov, bytes: result.unwrap_or(0) as u32, error: 0 });
    }
    // Only operations the shim continues need their object (looked up in the table: a
    // closed object is gone from it). The others leave their entry in the object's
    // `pending` map (see `table::Pending`).
    let o = || table::io(obj).ok();
    let mut error = match &result {
        Ok(_) => 0,
        Err(e) => error::from_io(e, socket),
    };
    let mut bytes = *result.as_ref().unwrap_or(&0);
    match op {
        Op::Posted => unreachable!("handled above"),
        Op::Read { asked, file } => {
            if error == 0 && bytes == 0 && file && asked > 0 {
                error = ERROR_HANDLE_EOF;
            }
        }
        Op::RecvFrom { from, fromlen } => {
            if error == 0 {
                if let Some(a) = addr {
                    crate::net::write_from(&a, from, fromlen);
                }
            }
        }
        Op::Connect { send } => {
            bytes = 0;
            if error == 0 && send.total() > 0 {
                if let Some(code) = continue_send(o().as_ref(), ov, send, 0) {
                    error = code;
                } else {
                    return None;
                }
            }
        }
        Op::Write { done, regions } => {
            if error == 0 && socket && bytes > 0 && done + bytes < regions.total() {
                // Windows completes an overlapped send when all of it is sent: send the
                // rest under the same OVERLAPPED.
                match continue_send(o().as_ref(), ov, regions, done + bytes) {
                    None => return None,
                    Some(code) => error = code,
                }
            }
            bytes += done;
        }
        Op::Accept(info) => {
            if error == 0 {
                match crate::net::accepted(key, ov, info, accepted, o().as_ref()) {
                    Ok(None) => return None,
                    Ok(Some(())) => {}
                    Err(code) => error = code,
                }
            }
            bytes = 0;
        }
        Op::AcceptData { tmp, info } => {
            drop(tmp);
            bytes = bytes.min(info.recv_len);
        }
    }
    if error != 0 {
        bytes = 0;
    }
    finish(ov, bytes, error);
    Some(Delivered { key, ov, bytes: bytes as u32, error })
}

/// Sends the caller's `regions` from byte `done` on, under the same `OVERLAPPED`: `None`
/// once submitted (its packet continues the operation), else the error code.
fn continue_send(
    o: Option<&Arc<IoObj>>,
    ov: usize,
    regions: crate::regions::Regions,
    done: usize,
) -> Option<u32> {
    // The socket was closed while its send was under way.
    let Some(o) = o else { return Some(ERROR_OPERATION_ABORTED) };
    let mut st = o.state();
    let IoState { assoc, pending } = &mut *st;
    let Some(a) = assoc.as_ref() else { return Some(ERROR_OPERATION_ABORTED) };
    // SAFETY: the caller's buffers of this overlapped call, readable until its packet,
    // which has not been delivered: this send is part of it.
    let buf = unsafe { regions.buffer(false, done) };
    let ctx = Ctx::new(ov, Op::Write { done, regions }, o);
    match a.handle.send(buf, ctx) {
        Ok(id) => {
            pending.insert(ov, id);
            None
        }
        Err(e) => Some(error::from_io(&e.error, true)),
    }
}

/// `dwMilliseconds` as a timeout.
pub(crate) fn timeout(ms: DWORD) -> Option<Duration> {
    (ms != INFINITE).then(|| Duration::from_millis(u64::from(ms)))
}

/// What is left of a timeout that started at `start` (`None` for no timeout: then the
/// clock is never read).
fn remaining(t: Option<Duration>, start: Option<Instant>) -> Option<Duration> {
    t.zip(start).map(|(t, start)| t.saturating_sub(start.elapsed()))
}

/// Duplicates a descriptor (the library's handle owns the duplicate; the table keeps the
/// original for the synchronous calls).
fn dup(fd: i32) -> Result<OwnedFd, u32> {
    // SAFETY: the descriptor is open for the duration of this call: the caller holds the
    // object's read lock.
    let b = unsafe { BorrowedFd::borrow_raw(fd) };
    b.try_clone_to_owned().map_err(|e| error::from_io(&e, false))
}

/// Associates an object with a port under a key.
fn associate(obj: &Arc<IoObj>, port: &CompletionPort<Ctx>, key: usize) -> Result<(), u32> {
    let mut st = obj.state();
    if st.assoc.is_some() {
        return Err(ERROR_INVALID_PARAMETER);
    }
    let fd = obj.with_fd(dup)?;
    let handle = port.associate(fd, key).map_err(|e| error::from_io(&e, obj.socket))?;
    st.assoc = Some(Assoc { port: port.clone(), key, handle });
    Ok(())
}

/// `CreateIoCompletionPort`: creates a port (`FileHandle == INVALID_HANDLE_VALUE`), or
/// associates a file or socket with a port under `CompletionKey`. Returns the port, or
/// NULL with the last error set.
///
/// # Safety
///
/// Callable with any values: handles are checked against the table.
#[no_mangle]
pub unsafe extern "C" fn CreateIoCompletionPort(
    FileHandle: HANDLE,
    ExistingCompletionPort: HANDLE,
    CompletionKey: usize,
    NumberOfConcurrentThreads: DWORD,
) -> HANDLE {
    ffi(std::ptr::null_mut(), || {
        let existing = hval(ExistingCompletionPort);
        if FileHandle == INVALID_HANDLE_VALUE {
            if existing != 0 {
                return Err(ERROR_INVALID_PARAMETER);
            }
            let port = CompletionPort::new(NumberOfConcurrentThreads as usize);
            port.defer_submissions(true);
            return Ok(table::insert(Obj::Port(port)) as HANDLE);
        }
        let obj = table::io(hval(FileHandle))?;
        if existing == 0 {
            let port = CompletionPort::new(NumberOfConcurrentThreads as usize);
            port.defer_submissions(true);
            associate(&obj, &port, CompletionKey)?;
            return Ok(table::insert(Obj::Port(port)) as HANDLE);
        }
        let port = table::port(existing)?;
        associate(&obj, &port, CompletionKey)?;
        Ok(ExistingCompletionPort)
    })
}

/// `GetQueuedCompletionStatus`: waits up to `dwMilliseconds` for a packet.
///
/// TRUE: a successful operation or a posted packet. FALSE with `*lpOverlapped` set: a
/// failed operation, its code in the last error. FALSE with `*lpOverlapped == NULL`:
/// `WAIT_TIMEOUT`, or `ERROR_ABANDONED_WAIT_0` if the port was closed while waiting.
///
/// # Safety
///
/// The four out-pointers are NULL (refused with `ERROR_INVALID_PARAMETER`) or writable.
#[no_mangle]
pub unsafe extern "C" fn GetQueuedCompletionStatus(
    CompletionPort: HANDLE,
    lpNumberOfBytesTransferred: *mut DWORD,
    lpCompletionKey: *mut usize,
    lpOverlapped: *mut *mut OVERLAPPED,
    dwMilliseconds: DWORD,
) -> BOOL {
    ffi(FALSE, || {
        if lpNumberOfBytesTransferred.is_null() || lpCompletionKey.is_null() || lpOverlapped.is_null() {
            return Err(ERROR_INVALID_PARAMETER);
        }
        // SAFETY: checked non-null; the caller passes writable pointers.
        unsafe { *lpOverlapped = std::ptr::null_mut() };
        let t = timeout(dwMilliseconds);
        let start = t.map(|_| Instant::now());
        with_waited_port(hval(CompletionPort), |port| loop {
            let packet = match port.get(remaining(t, start)) {
                Ok(p) => p,
                Err(GetError::TimedOut) => return Err(WAIT_TIMEOUT),
                Err(_) => return Err(ERROR_ABANDONED_WAIT_0),
            };
            let Some(d) = deliver(packet) else { continue };
            // SAFETY: checked non-null; the caller passes writable pointers.
            unsafe {
                *lpNumberOfBytesTransferred = d.bytes;
                *lpCompletionKey = d.key;
                *lpOverlapped = d.ov as *mut OVERLAPPED;
            }
            return if d.error == 0 { Ok(TRUE) } else { Err(d.error) };
        })
    })
}

/// `GetQueuedCompletionStatusEx`: takes up to `ulCount` packets in one call. Failed
/// operations are entries too (their status is in their `OVERLAPPED`'s `Internal`).
/// `fAlertable` is ignored (there are no APCs).
///
/// # Safety
///
/// `lpCompletionPortEntries` points to `ulCount` writable entries; `ulNumEntriesRemoved`
/// is writable.
#[no_mangle]
pub unsafe extern "C" fn GetQueuedCompletionStatusEx(
    CompletionPort: HANDLE,
    lpCompletionPortEntries: *mut OVERLAPPED_ENTRY,
    ulCount: u32,
    ulNumEntriesRemoved: *mut u32,
    dwMilliseconds: DWORD,
    fAlertable: BOOL,
) -> BOOL {
    let _ = fAlertable;
    ffi(FALSE, || {
        if lpCompletionPortEntries.is_null() || ulNumEntriesRemoved.is_null() || ulCount == 0 {
            return Err(ERROR_INVALID_PARAMETER);
        }
        // SAFETY: checked non-null; the caller passes a writable count.
        unsafe { *ulNumEntriesRemoved = 0 };
        let t = timeout(dwMilliseconds);
        let start = t.map(|_| Instant::now());
        with_waited_port(hval(CompletionPort), |port| loop {
            let packets = match port.get_many(ulCount as usize, remaining(t, start)) {
                Ok(p) => p,
                Err(GetError::TimedOut) => return Err(WAIT_TIMEOUT),
                Err(_) => return Err(ERROR_ABANDONED_WAIT_0),
            };
            let mut n = 0usize;
            for d in packets.into_iter().filter_map(deliver) {
                let st = if d.error == 0 { 0 } else { error::to_ntstatus(d.error) };
                let e = OVERLAPPED_ENTRY {
                    lpCompletionKey: d.key,
                    lpOverlapped: d.ov as *mut OVERLAPPED,
                    Internal: st,
                    dwNumberOfBytesTransferred: d.bytes,
                };
                // SAFETY: `n < ulCount` (get_many returns at most that many), and the
                // caller's array holds `ulCount` entries.
                unsafe { lpCompletionPortEntries.add(n).write(e) };
                n += 1;
            }
            if n == 0 {
                continue;
            }
            // SAFETY: checked non-null.
            unsafe { *ulNumEntriesRemoved = n as u32 };
            return Ok(TRUE);
        })
    })
}

/// `PostQueuedCompletionStatus`: queues a packet with these values, returned untouched.
///
/// # Safety
///
/// Callable with any values: `lpOverlapped` is handed back, never read.
#[no_mangle]
pub unsafe extern "C" fn PostQueuedCompletionStatus(
    CompletionPort: HANDLE,
    dwNumberOfBytesTransferred: DWORD,
    dwCompletionKey: usize,
    lpOverlapped: *mut OVERLAPPED,
) -> BOOL {
    ffi(FALSE, || {
        let port = table::port(hval(CompletionPort))?;
        let ctx = Ctx { ov: lpOverlapped as usize, op: Op::Posted, obj: 0, socket: false };
        port.post(dwCompletionKey, dwNumberOfBytesTransferred as usize, ctx)
            .map_err(|_| ERROR_INVALID_HANDLE)?;
        Ok(TRUE)
    })
}

/// `CloseHandle`: closes a port (threads waiting on it return `ERROR_ABANDONED_WAIT_0`),
/// a file or socket (its pending operations complete with `ERROR_OPERATION_ABORTED`), a
/// thread handle or an event.
///
/// # Safety
///
/// Callable with any value.
#[no_mangle]
pub unsafe extern "C" fn CloseHandle(hObject: HANDLE) -> BOOL {
    ffi(FALSE, || match table::remove(hval(hObject)) {
        Some(Obj::Port(p)) => {
            p.close();
            // This thread lets go of it now; other threads at their next call.
            let _ = WAITED.try_with(|c| {
                let kept = c.take();
                c.set(kept.filter(|(h, _)| *h != hval(hObject)));
            });
            Ok(TRUE)
        }
        Some(_) => Ok(TRUE),
        None => Err(ERROR_INVALID_HANDLE),
    })
}
