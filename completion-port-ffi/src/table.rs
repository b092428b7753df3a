//! The handle table: every `HANDLE` and `SOCKET` the library gives out is a key in one
//! global table, never a pointer. A value that is not in the table (never issued, closed,
//! or made up) is refused with `ERROR_INVALID_HANDLE` (or `WSAENOTSOCK`), never followed.
//!
//! Values are multiples of 4 from 0x100 up, as Windows' are, and are never reused: a stale
//! handle cannot reach an object that took its number.

use crate::error::code::ERROR_INVALID_HANDLE;
use crate::port::Ctx;
use crate::sync::{EventObj, ThreadObj};
use completion_port::{CompletionPort, Handle, OpId};
use crossbeam_utils::CachePadded;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError, RwLock, Weak};

/// A hasher for keys that are handle values or addresses: they are distinct words
/// already, so one multiplication spreads them (SipHash would cost more than the lookup).
#[derive(Default)]
pub(crate) struct WordHasher(u64);

impl Hasher for WordHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
    }
}

/// A map keyed by handle values or addresses.
pub(crate) type WordMap<V> = HashMap<usize, V, BuildHasherDefault<WordHasher>>;

/// What a handle value refers to.
#[derive(Clone)]
pub(crate) enum Obj {
    /// A completion port.
    Port(CompletionPort<Ctx>),
    /// A file or a socket.
    Io(Arc<IoObj>),
    /// A thread from `CreateThread`.
    Thread(Arc<ThreadObj>),
    /// An event from `CreateEventA`.
    Event(Arc<EventObj>),
}

/// A file or socket: the descriptor, and its association with a port if it has one.
pub(crate) struct IoObj {
    /// Its own handle value: what a packet keeps to find it again (values are never
    /// reused, so this is a weak reference that costs nothing to hold or drop).
    pub(crate) handle: usize,
    /// The descriptor the synchronous calls use. An `AcceptEx` completion replaces it with
    /// the accepted connection.
    fd: RwLock<OwnedFd>,
    /// Made by `socket`/`WSASocketA`/`accept` (else by `CreateFileA`).
    pub(crate) socket: bool,
    /// The association and the operations in flight, under one lock: an overlapped call
    /// takes it once to find its handle, submit and record the operation.
    state: Mutex<IoState>,
    /// `FILE_SKIP_COMPLETION_PORT_ON_SUCCESS` was set.
    pub(crate) skip_on_success: AtomicBool,
    /// Removed from the table (closed): a thread's lookup cache no longer returns it.
    closed: AtomicBool,
}

/// What an object's lock guards.
pub(crate) struct IoState {
    /// The association, once `CreateIoCompletionPort` has made it.
    pub(crate) assoc: Option<Assoc>,
    /// Operations in flight, by the address of their `OVERLAPPED` (for `CancelIoEx`).
    pub(crate) pending: Pending,
}

/// The operations of one object by the address of their `OVERLAPPED`, for `CancelIoEx`.
///
/// An entry is not removed when its packet is delivered: that would cost every delivery
/// the object's lock and reference count, cache lines the submitting thread wrote last
/// (with two workers, about 2 % of the C echo server's CPU; docs/benchmarks.md, "The C
/// server's own cost"). It is replaced when its `OVERLAPPED` starts another operation, as
/// servers reuse one per connection, and entries of finished operations are dropped
/// whenever the map has doubled since it was last pruned, so it holds at most about twice
/// the operations in flight (and at least 16 entries). A finished entry answers
/// `CancelIoEx` as a missing one does: there is nothing to cancel (`ERROR_NOT_FOUND`).
/// It keeps no buffer or context alive, only the finished operation's allocation.
pub(crate) struct Pending {
    map: WordMap<OpId<Ctx>>,
    prune_at: usize,
}

impl Pending {
    /// The size below which the map is never pruned.
    const MIN_PRUNE: usize = 16;

    fn new() -> Self {
        Self { map: WordMap::default(), prune_at: Self::MIN_PRUNE }
    }

    /// Records the operation started with the `OVERLAPPED` at `ov`.
    pub(crate) fn insert(&mut self, ov: usize, id: OpId<Ctx>) {
        self.map.insert(ov, id);
        if self.map.len() >= self.prune_at {
            self.map.retain(|_, id| !id.is_done());
            self.prune_at = (self.map.len() * 2).max(Self::MIN_PRUNE);
        }
    }

    /// The operation last started with the `OVERLAPPED` at `ov` (possibly finished).
    pub(crate) fn get(&self, ov: usize) -> Option<&OpId<Ctx>> {
        self.map.get(&ov)
    }

    /// Entries held, finished ones included (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }
}

/// An object's association with a port.
pub(crate) struct Assoc {
    /// The port (kept so that an `AcceptEx` target can be associated again once its
    /// descriptor changes).
    pub(crate) port: CompletionPort<Ctx>,
    /// The completion key.
    pub(crate) key: usize,
    /// The library's handle, which owns a duplicate of the descriptor.
    pub(crate) handle: Handle<Ctx>,
}

impl IoObj {
    fn new(handle: usize, fd: OwnedFd, socket: bool) -> Self {
        Self {
            handle,
            fd: RwLock::new(fd),
            socket,
            state: Mutex::new(IoState { assoc: None, pending: Pending::new() }),
            skip_on_success: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }
    }

    /// Runs `f` with the descriptor (read-locked: an `AcceptEx` completion cannot swap it
    /// meanwhile).
    pub(crate) fn with_fd<R>(&self, f: impl FnOnce(RawFd) -> R) -> R {
        let fd = self.fd.read().unwrap_or_else(PoisonError::into_inner);
        f(fd.as_raw_fd())
    }

    /// Replaces the descriptor (an accepted connection into the `AcceptEx` target); the
    /// association, if any, is made again for the new descriptor under the same key.
    pub(crate) fn replace_fd(&self, new: OwnedFd) -> std::io::Result<()> {
        let mut st = self.state();
        if let Some(a) = st.assoc.as_mut() {
            let handle = a.port.associate(new.try_clone()?, a.key)?;
            a.handle = handle;
        }
        *self.fd.write().unwrap_or_else(PoisonError::into_inner) = new;
        Ok(())
    }

    /// Whether the object is associated with a port (without cloning its handle).
    pub(crate) fn is_associated(&self) -> bool {
        self.state().assoc.is_some()
    }

    /// The port the object is associated with.
    pub(crate) fn port(&self) -> Option<CompletionPort<Ctx>> {
        self.state().assoc.as_ref().map(|a| a.port.clone())
    }

    /// Locks the association and the operations in flight.
    pub(crate) fn state(&self) -> MutexGuard<'_, IoState> {
        lock(&self.state)
    }
}

/// Locks a mutex, ignoring poisoning (a panic is already reported at the boundary).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Stripes of the handle table (a power of two). Every overlapped call looks its handles
/// up here; with one lock, the lock word's cache line moved between the worker threads on
/// every call. Handle values are taken in turn (4 apart), so consecutive objects (the
/// sockets of one server) land on different stripes.
const STRIPES: usize = 16;

static TABLE: LazyLock<[CachePadded<RwLock<WordMap<Obj>>>; STRIPES]> =
    LazyLock::new(|| std::array::from_fn(|_| CachePadded::new(RwLock::new(WordMap::default()))));
static NEXT: AtomicUsize = AtomicUsize::new(0x100);

/// The stripe that holds handle `h`.
fn stripe(h: usize) -> &'static RwLock<WordMap<Obj>> {
    &TABLE[(h >> 2) % STRIPES]
}

/// Enters an object in the table and returns its new handle value.
pub(crate) fn insert(obj: Obj) -> usize {
    insert_with(|_| obj)
}

/// Enters a file (`socket == false`) or socket in the table and returns its new handle
/// value, which the object keeps.
pub(crate) fn insert_io(fd: OwnedFd, socket: bool) -> usize {
    insert_with(|h| Obj::Io(Arc::new(IoObj::new(h, fd, socket))))
}

/// Takes the next handle value, enters the object `make` builds for it, and returns it.
fn insert_with(make: impl FnOnce(usize) -> Obj) -> usize {
    let h = NEXT.fetch_add(4, Ordering::Relaxed);
    let obj = make(h);
    stripe(h).write().unwrap_or_else(PoisonError::into_inner).insert(h, obj);
    h
}

/// The object a handle value refers to.
pub(crate) fn get(h: usize) -> Option<Obj> {
    stripe(h).read().unwrap_or_else(PoisonError::into_inner).get(&h).cloned()
}

/// Removes a handle from the table (`CloseHandle`), returning what it referred to.
pub(crate) fn remove(h: usize) -> Option<Obj> {
    let removed = stripe(h).write().unwrap_or_else(PoisonError::into_inner).remove(&h);
    if let Some(Obj::Io(o)) = &removed {
        o.closed.store(true, Ordering::Release);
    }
    removed
}

/// Slots of a thread's cache of files and sockets (a power of two).
const CACHE_SLOTS: usize = 64;

thread_local! {
    /// Files and sockets this thread looked up lately, by handle value (direct-mapped):
    /// a worker's `WSARecv` and `WSASend` find their socket here without the table's
    /// stripe lock, a cache line every worker writes (with two workers it was about 2 %
    /// of the C echo server's CPU; docs/benchmarks.md, "The C server's own cost"). The
    /// references are weak: the cache never keeps a closed object, or its descriptor,
    /// alive; an object's `closed` flag, set when it leaves the table, retires its entry.
    static IO_CACHE: std::cell::RefCell<[(usize, Weak<IoObj>); CACHE_SLOTS]> =
        std::cell::RefCell::new(std::array::from_fn(|_| (0, Weak::new())));
}

/// The file or socket handle value `h` refers to: from this thread's cache, or from the
/// table (then cached).
fn io_obj(h: usize) -> Option<Arc<IoObj>> {
    let slot = (h >> 2) % CACHE_SLOTS;
    let cached = IO_CACHE
        .try_with(|c| {
            let c = c.borrow();
            let (key, weak) = &c[slot];
            if *key != h {
                return None;
            }
            weak.upgrade().filter(|o| !o.closed.load(Ordering::Acquire))
        })
        .ok()
        .flatten();
    if cached.is_some() {
        return cached;
    }
    let Some(Obj::Io(o)) = get(h) else { return None };
    let _ = IO_CACHE.try_with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            c[slot] = (h, Arc::downgrade(&o));
        }
    });
    Some(o)
}

/// The port a handle value refers to, or `ERROR_INVALID_HANDLE`.
pub(crate) fn port(h: usize) -> Result<CompletionPort<Ctx>, u32> {
    match get(h) {
        Some(Obj::Port(p)) => Ok(p),
        _ => Err(ERROR_INVALID_HANDLE),
    }
}

/// The file or socket a handle value refers to, or `ERROR_INVALID_HANDLE`.
pub(crate) fn io(h: usize) -> Result<Arc<IoObj>, u32> {
    io_obj(h).ok_or(ERROR_INVALID_HANDLE)
}

/// The socket a `SOCKET` value refers to, or `WSAENOTSOCK`.
pub(crate) fn socket(s: usize) -> Result<Arc<IoObj>, u32> {
    match io_obj(s) {
        Some(o) if o.socket => Ok(o),
        _ => Err(crate::error::code::WSAENOTSOCK),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{HANDLE, OVERLAPPED};
    use crate::{
        CancelIoEx, CloseHandle, CreateFileA, CreateIoCompletionPort, GetLastError,
        GetQueuedCompletionStatus, ReadFile,
    };
    use std::io::Write;

    /// `Pending` keeps the entries of finished operations only until the map has doubled:
    /// a program that reads with a new `OVERLAPPED` every time does not grow it without
    /// bound, and `CancelIoEx` on a finished operation's `OVERLAPPED` finds nothing.
    #[test]
    fn finished_operations_leave_the_pending_map() {
        const ERROR_IO_PENDING: u32 = 997;
        const ERROR_NOT_FOUND: u32 = 1168;
        let mut file = tempfile::NamedTempFile::new().expect("temporary file");
        file.write_all(&[7u8; 4096]).expect("write");
        let path = std::ffi::CString::new(file.path().to_str().expect("utf-8 path")).expect("no NUL");
        // SAFETY: a NUL-terminated path; plain values.
        let h = unsafe {
            CreateFileA(
                path.as_ptr(),
                0x8000_0000,
                0,
                std::ptr::null_mut(),
                3,
                0x4000_0000,
                std::ptr::null_mut(),
            )
        };
        // SAFETY: plain values.
        let port = unsafe { CreateIoCompletionPort(h, std::ptr::null_mut(), 1, 0) };
        assert!(!port.is_null());
        // Every read has its own OVERLAPPED, kept alive (and distinct) until the end.
        let mut ovs: Vec<Box<OVERLAPPED>> = Vec::new();
        let mut buf = [0u8; 64];
        for i in 0..500u32 {
            // SAFETY: all-zero is a valid OVERLAPPED.
            let mut ov: Box<OVERLAPPED> = Box::new(unsafe { std::mem::zeroed() });
            ov.Offset = (i * 8) % 4096;
            // SAFETY: `buf` and `ov` stay valid until the packet, taken below.
            let ok = unsafe { ReadFile(h, buf.as_mut_ptr().cast(), 8, std::ptr::null_mut(), &mut *ov) };
            assert!(ok != 0 || GetLastError() == ERROR_IO_PENDING);
            let (mut bytes, mut key, mut got) = (0u32, 0usize, std::ptr::null_mut::<OVERLAPPED>());
            // SAFETY: writable out-pointers.
            let ok = unsafe { GetQueuedCompletionStatus(port, &mut bytes, &mut key, &mut got, 5000) };
            assert!(ok != 0 && bytes == 8 && std::ptr::eq(got, &*ov));
            ovs.push(ov);
        }
        let held = io(h as usize).expect("open file").state().pending.len();
        assert!(held <= 2 * Pending::MIN_PRUNE, "{held} entries for 500 finished reads");
        // The last one's entry may still be there: cancelling it finds nothing.
        let last: *mut OVERLAPPED = &mut **ovs.last_mut().expect("reads");
        // SAFETY: plain values; the OVERLAPPED is only compared.
        assert_eq!(unsafe { CancelIoEx(h, last) }, 0);
        assert_eq!(GetLastError(), ERROR_NOT_FOUND);
        // SAFETY: plain values.
        unsafe {
            assert_eq!(CloseHandle(h), 1);
            assert_eq!(CloseHandle(port as HANDLE), 1);
        }
    }
}
