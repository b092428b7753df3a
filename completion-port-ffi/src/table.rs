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
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError, RwLock};

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
}

/// What an object's lock guards.
pub(crate) struct IoState {
    /// The association, once `CreateIoCompletionPort` has made it.
    pub(crate) assoc: Option<Assoc>,
    /// Operations in flight, by the address of their `OVERLAPPED` (for `CancelIoEx`).
    pub(crate) pending: WordMap<OpId<Ctx>>,
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
    pub(crate) fn new(fd: OwnedFd, socket: bool) -> Self {
        Self {
            fd: RwLock::new(fd),
            socket,
            state: Mutex::new(IoState { assoc: None, pending: WordMap::default() }),
            skip_on_success: AtomicBool::new(false),
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
    let h = NEXT.fetch_add(4, Ordering::Relaxed);
    stripe(h).write().unwrap_or_else(PoisonError::into_inner).insert(h, obj);
    h
}

/// The object a handle value refers to.
pub(crate) fn get(h: usize) -> Option<Obj> {
    stripe(h).read().unwrap_or_else(PoisonError::into_inner).get(&h).cloned()
}

/// Removes a handle from the table (`CloseHandle`), returning what it referred to.
pub(crate) fn remove(h: usize) -> Option<Obj> {
    stripe(h).write().unwrap_or_else(PoisonError::into_inner).remove(&h)
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
    match get(h) {
        Some(Obj::Io(o)) => Ok(o),
        _ => Err(ERROR_INVALID_HANDLE),
    }
}

/// The socket a `SOCKET` value refers to, or `WSAENOTSOCK`.
pub(crate) fn socket(s: usize) -> Result<Arc<IoObj>, u32> {
    match get(s) {
        Some(Obj::Io(o)) if o.socket => Ok(o),
        _ => Err(crate::error::code::WSAENOTSOCK),
    }
}
