//! The fuzz interpreter: runs a sequence of operations on the public API, decoded from bytes
//! by `arbitrary`, and checks after every step what docs/semantics.md promises for any sequence:
//!
//! * H2, P7: every accepted operation and every post yields exactly one packet, carrying its
//!   key and its context (and its buffer, with a byte count the buffer can hold); a refused
//!   submission or post yields none and hands back its context and buffer.
//! * H5, H6, P8, P10: cancelled operations, those of a dropped handle and those of a closed
//!   port still produce their packet, promptly; `drain` returns every packet still owed; a
//!   dropped port drops every context exactly once.
//! * Bounded completion: operations that must finish (file I/O, posts, small sends, connects,
//!   receives after the peer closed, anything cancelled) are all delivered within
//!   [`LIMIT`] when the interpreter waits for them (`Quiesce`).
//! * No hang: every call that may block runs under a watchdog that aborts the process,
//!   printing the program, if it exceeds [`LIMIT`]. No panic anywhere.
//!
//! The same file drives two runners without change: the proptest run in the suite
//! (`fuzz.rs`) and the libFuzzer target in `fuzz/` (which includes this file by path), so
//! it uses nothing of the suite, only the library and its dev-dependencies.

#![allow(dead_code)] // each runner uses its own part of the entry points

use arbitrary::{Arbitrary, Unstructured};
use completion_port::{Completion, CompletionPort, GetError, Handle, OpId, Started, SubmitError, MAX_BUFFER};
use socket2::{Domain, SockRef, Socket, Type};
use std::fmt;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long any single blocking call, or any wait for operations that must finish, may take
/// before the run is declared hung. Generous for a loaded CI machine and for sanitizers.
pub const LIMIT: Duration = Duration::from_secs(10);

/// At most this many operations of a program run; the rest is ignored (bounds a case).
pub const MAX_OPS: usize = 160;

// ---------------------------------------------------------------------------------------
// The grammar.

/// A buffer size: mostly small and odd, sometimes 0, a page, 1 MiB, or (rarely) one byte
/// more than the kernel accepts ([`MAX_BUFFER`] + 1, allocated lazily, never touched).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Size(pub usize);

impl<'a> Arbitrary<'a> for Size {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let pick: u8 = u.arbitrary()?;
        Ok(Size(match pick {
            0 => MAX_BUFFER + 1,
            1..=39 => 0,
            40..=69 => 1,
            70..=89 => 4096,
            90..=95 => 1 << 20,
            _ => usize::from(u.arbitrary::<u16>()?) | 1,
        }))
    }
}

impl fmt::Debug for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A file offset: mostly small, sometimes odd and large, past any file, or at the edges of
/// what `pread` accepts (`i64::MAX`) and beyond (`i64::MAX + 1`, `u64::MAX`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Offset(pub u64);

impl<'a> Arbitrary<'a> for Offset {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let pick: u8 = u.arbitrary()?;
        Ok(Offset(match pick {
            0..=79 => 0,
            80..=159 => u64::from(u.arbitrary::<u16>()?),
            160..=199 => u64::from(u.arbitrary::<u32>()?) | 1,
            200..=219 => (1 << 40) - 1,
            220..=229 => i64::MAX as u64,
            230..=239 => i64::MAX as u64 + 1,
            _ => u64::MAX,
        }))
    }
}

impl fmt::Debug for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A bounded wait for `get`/`get_many`: zero (a poll), some microseconds or a few ms.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Wait(pub Duration);

impl<'a> Arbitrary<'a> for Wait {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let pick: u8 = u.arbitrary()?;
        Ok(Wait(match pick {
            0..=99 => Duration::ZERO,
            100..=199 => Duration::from_micros(u64::from(pick)),
            _ => Duration::from_millis(u64::from(pick % 8)),
        }))
    }
}

/// What a new handle wraps.
#[derive(Arbitrary, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Object {
    /// An anonymous temporary file with 4 KiB in it.
    File,
    /// Our end of a connected TCP pair on 127.0.0.1; the peer is a plain socket.
    TcpPair,
    /// An unconnected TCP socket (for `connect`).
    TcpUnconnected,
    /// A UDP socket bound to 127.0.0.1.
    Udp,
    /// A listening TCP socket.
    Listener,
    /// A TCP socket that starts listening only after it was associated.
    ListenerLate,
}

/// What the plain peer of a handle does, synchronously, on the interpreter's thread.
#[derive(Arbitrary, Clone, Copy, PartialEq, Eq, Debug)]
pub enum PeerAct {
    /// Writes up to 64 KiB without blocking (TCP), or sends one datagram (UDP).
    Write(Size),
    /// Reads what is there without blocking.
    Read,
    /// Shuts down its writing side (our receives see end of stream).
    ShutdownWrite,
    /// Closes gracefully.
    Close,
    /// Closes with a reset (`SO_LINGER` 0).
    Reset,
    /// Connects a plain client to a listener.
    Connect,
}

/// An operation a short-lived thread submits before it exits (docs/semantics.md H4: the operation
/// outlives its thread).
#[derive(Arbitrary, Clone, Copy, PartialEq, Eq, Debug)]
pub enum ThreadAct {
    Recv(Size),
    ReadAt(Size, Offset),
    WriteAt(Size, Offset),
    Send(Size),
    Sync,
    Accept,
}

/// One step of a program. `h` picks a handle slot (modulo the number of slots; a step on an
/// empty or dropped slot does nothing).
#[derive(Arbitrary, Clone, PartialEq, Eq, Debug)]
pub enum Op {
    Open(Object),
    ReadAt {
        h: u8,
        size: Size,
        offset: Offset,
    },
    WriteAt {
        h: u8,
        size: Size,
        offset: Offset,
    },
    Sync {
        h: u8,
        data_only: bool,
    },
    Accept {
        h: u8,
    },
    Connect {
        h: u8,
        to: u8,
    },
    Recv {
        h: u8,
        size: Size,
        eager: bool,
    },
    Send {
        h: u8,
        size: Size,
        eager: bool,
    },
    Shutdown {
        h: u8,
        how: u8,
    },
    RecvFrom {
        h: u8,
        size: Size,
    },
    SendTo {
        h: u8,
        to: u8,
        size: Size,
    },
    /// Cancels one of the recent operations.
    Cancel {
        recent: u8,
    },
    CancelAll {
        h: u8,
    },
    DropHandle {
        h: u8,
    },
    Post {
        key: u8,
        bytes: u16,
    },
    Get(Wait),
    GetMany {
        max: u8,
        wait: Wait,
    },
    Peer {
        h: u8,
        act: PeerAct,
    },
    /// A thread (optionally after taking a packet, so that it is a worker) submits one
    /// operation and exits; the interpreter joins it at once.
    OnThread {
        h: u8,
        act: ThreadAct,
        take_packet_first: bool,
    },
    /// A thread (after posting a packet, with `post`) waits once with `get`, concurrently
    /// with what follows.
    Getter {
        wait: Wait,
        post: bool,
    },
    /// The interpreter's thread becomes a worker (posts a packet and takes one), sends a
    /// byte on a TCP pair, and, without calling `get` again, waits for the peer to see it.
    PromptSend {
        h: u8,
    },
    /// Waits until every operation that must finish has been delivered.
    Quiesce,
    /// Runs the next `steps % 8 + 1` steps inside `CompletionPort::batch` (their
    /// submissions reach the kernel together at its end, or at a worker's next `get`).
    /// `Drain`, `DropPort`, `Batch` and `PromptSend` inside it do nothing: the batch holds
    /// the port, and defers its submissions to its end.
    Batch {
        steps: u8,
    },
    Close,
    Drain,
    /// Drops the port and every handle without draining, then starts a new port.
    DropPort {
        concurrency: u8,
    },
    /// Turns deferred submission on or off (docs/semantics.md H9): a worker's submissions
    /// then wait for its next `get`, and a `PromptSend` (which never calls `get` again)
    /// depends on the backend's sentry to reach its peer.
    Defer {
        on: bool,
    },
}

/// Decodes a program from fuzzer bytes.
pub fn decode(bytes: &[u8]) -> Vec<Op> {
    let mut u = Unstructured::new(bytes);
    let mut ops = Vec::new();
    while ops.len() < MAX_OPS && !u.is_empty() {
        match Op::arbitrary(&mut u) {
            // Steps that end the port's life are kept one time in eight, so that most
            // programs do a good deal on an open port first.
            Ok(op @ (Op::Close | Op::Drain | Op::DropPort { .. })) => {
                if u.arbitrary::<u8>().unwrap_or(0) < 32 {
                    ops.push(op);
                }
            }
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    ops
}

/// Decodes and runs a program; panics (or aborts, for a hang) on any broken promise.
pub fn run_bytes(bytes: &[u8]) {
    run(&decode(bytes));
}

// ---------------------------------------------------------------------------------------
// The watchdog.

/// Aborts the process if a guarded call outlives [`LIMIT`]: a hang must fail the run, not
/// stall it, and a panic from another thread could not stop a blocked one.
mod watchdog {
    use super::LIMIT;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Mutex, Once};
    use std::time::{Duration, Instant};

    static ARMED: Mutex<Vec<(u64, Instant, String)>> = Mutex::new(Vec::new());
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static START: Once = Once::new();
    /// The program being run, printed when the watchdog fires.
    pub static PROGRAM: Mutex<String> = Mutex::new(String::new());

    pub struct Guard(u64);

    pub fn guard(what: impl Into<String>) -> Guard {
        START.call_once(|| {
            std::thread::Builder::new()
                .name("fuzz-watchdog".into())
                .spawn(watch)
                .expect("spawn the watchdog");
        });
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let deadline = Instant::now() + LIMIT;
        ARMED.lock().unwrap_or_else(|e| e.into_inner()).push((id, deadline, what.into()));
        Guard(id)
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            ARMED.lock().unwrap_or_else(|e| e.into_inner()).retain(|(id, _, _)| *id != self.0);
        }
    }

    fn watch() {
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let now = Instant::now();
            let armed = ARMED.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, _, what)) = armed.iter().find(|(_, deadline, _)| now > *deadline) {
                let program = PROGRAM.lock().map(|p| p.clone()).unwrap_or_default();
                eprintln!("fuzz watchdog: HANG: {what} did not return within {LIMIT:?}\nprogram: {program}");
                std::process::abort();
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The ledger: one entry per context made.

/// The per-operation context: its ledger index, and a count of its drops.
#[derive(Debug)]
pub struct Ctx {
    id: usize,
    drops: Arc<AtomicUsize>,
}

impl Drop for Ctx {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    /// Accepted: exactly one packet is owed.
    Pending,
    /// Refused: no packet may come.
    Refused,
    /// Its one packet came (or an eager call completed it at once).
    Delivered,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum BufUse {
    /// No buffer (sync, accept, connect, shutdown, posts).
    None,
    /// Filled up to its capacity (reads, receives).
    Fill { cap: usize },
    /// Its `len` bytes are written (writes, sends).
    Drain { cap: usize, len: usize },
}

struct Entry {
    what: String,
    /// The port generation it belongs to (a new port after `DropPort`).
    generation: u64,
    /// The slot of its handle (`None` for posts).
    slot: Option<usize>,
    key: usize,
    state: State,
    buf: BufUse,
    /// It must complete without help: `Quiesce` waits for it.
    finite: bool,
    /// A post's byte count, delivered unchanged (P2).
    posted: Option<usize>,
    /// An accept: a success carries the new socket.
    accept: bool,
    /// Its result must be an error (an offset `pread` refuses).
    must_fail: bool,
    drops: Arc<AtomicUsize>,
}

/// What all threads of one run share.
struct Shared {
    ledger: Mutex<Vec<Entry>>,
    /// Whether the current port is closed (only the interpreter closes it).
    closed: AtomicBool,
    generation: AtomicU64,
}

impl Shared {
    fn ledger(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes a context for a new operation described by `entry`.
    fn make(&self, mut entry: Entry) -> Ctx {
        entry.generation = self.generation.load(Ordering::SeqCst);
        let drops = Arc::clone(&entry.drops);
        let mut ledger = self.ledger();
        ledger.push(entry);
        Ctx { id: ledger.len() - 1, drops }
    }

    /// Records the outcome of a submission; an accepted operation becomes owed, a refused
    /// one must hand back its context and buffer unchanged.
    fn submitted(&self, id: usize, result: Result<OpId<Ctx>, SubmitError<Ctx>>) -> Option<OpId<Ctx>> {
        match result {
            Ok(op) => Some(op),
            Err(e) => {
                self.refused(id, e.context.id, e.buffer.as_ref(), &e.error);
                None
            }
        }
    }

    fn refused(&self, id: usize, back: usize, buffer: Option<&Vec<u8>>, error: &std::io::Error) {
        let mut ledger = self.ledger();
        let e = &mut ledger[id];
        assert_eq!(back, id, "{}: refused, but handed back another context", e.what);
        assert_eq!(e.state, State::Pending, "{}: refused after being {:?}", e.what, e.state);
        match (e.buf, buffer) {
            (BufUse::None, None) => {}
            (BufUse::Fill { cap } | BufUse::Drain { cap, .. }, Some(b)) => {
                assert_eq!(b.capacity(), cap, "{}: refused; its buffer came back changed", e.what)
            }
            (want, got) => {
                panic!("{}: refused ({error}); buffer {want:?} came back as {:?}", e.what, got.map(Vec::len))
            }
        }
        e.state = State::Refused;
    }

    /// Records one packet (from `get`, `get_many`, `drain` or an eager call) and checks it.
    fn deliver(&self, c: Completion<Ctx>) {
        let mut ledger = self.ledger();
        let id = c.context.id;
        let e = ledger.get_mut(id).unwrap_or_else(|| panic!("a packet carries unknown context {id}"));
        let what = &e.what;
        assert_eq!(
            e.state,
            State::Pending,
            "{what}: a packet came when it was already {:?} (result {:?})",
            e.state,
            c.result
        );
        assert_eq!(e.generation, self.generation.load(Ordering::SeqCst), "{what}: a packet of an older port");
        assert_eq!(c.key, e.key, "{what}: the packet carries another key");
        match (e.buf, &c.buffer) {
            (BufUse::None, None) => {}
            (BufUse::Fill { cap }, Some(b)) => {
                assert_eq!(b.capacity(), cap, "{what}: its buffer came back with another capacity");
                if let Ok(n) = c.result {
                    assert!(
                        n <= cap && b.len() == n,
                        "{what}: read {n} bytes into a buffer of capacity {cap} (len {})",
                        b.len()
                    );
                }
            }
            (BufUse::Drain { cap, len }, Some(b)) => {
                assert_eq!((b.capacity(), b.len()), (cap, len), "{what}: its buffer came back changed");
                if let Ok(n) = c.result {
                    assert!(n <= len, "{what}: wrote {n} of {len} bytes");
                }
            }
            (want, got) => panic!("{what}: buffer {want:?} came back as {:?}", got.as_ref().map(Vec::len)),
        }
        if let Some(bytes) = e.posted {
            assert_eq!(c.bytes().ok(), Some(bytes), "{what}: a post's byte count changed");
        }
        if e.accept && c.result.is_ok() {
            assert!(c.accepted.is_some(), "{what}: a successful accept carries no socket");
        }
        if e.must_fail {
            assert!(c.result.is_err(), "{what}: succeeded ({:?}) where pread/pwrite fail", c.result);
        }
        e.state = State::Delivered;
        drop(ledger);
        drop(c); // the context's one drop, outside the lock
    }

    /// Marks the pending operations of `slot` (or all, for `None`) as bound to finish
    /// (they were cancelled, or their handle or port closed).
    fn make_finite(&self, slot: Option<usize>) {
        let generation = self.generation.load(Ordering::SeqCst);
        for e in self.ledger().iter_mut() {
            if e.generation == generation && e.state == State::Pending && (slot.is_none() || e.slot == slot) {
                e.finite = true;
            }
        }
    }

    /// The pending operations matching `filter`, described.
    fn owed(&self, filter: impl Fn(&Entry) -> bool) -> Vec<String> {
        let generation = self.generation.load(Ordering::SeqCst);
        self.ledger()
            .iter()
            .enumerate()
            .filter(|(_, e)| e.generation == generation && e.state == State::Pending && filter(e))
            .map(|(i, e)| format!("#{i} {}", e.what))
            .collect()
    }
}

fn entry(what: String, slot: Option<usize>, key: usize, buf: BufUse, finite: bool) -> Entry {
    Entry {
        what,
        generation: 0,
        slot,
        key,
        state: State::Pending,
        buf,
        finite,
        posted: None,
        accept: false,
        must_fail: false,
        drops: Arc::new(AtomicUsize::new(0)),
    }
}

// ---------------------------------------------------------------------------------------
// The interpreter.

struct Slot {
    object: Object,
    handle: Option<Arc<Handle<Ctx>>>,
    /// Our local address (listeners, UDP sockets).
    addr: Option<SocketAddr>,
    /// The plain other end of a TCP pair.
    peer: Option<TcpStream>,
    /// Plain clients connected to a listener (kept open).
    clients: Vec<TcpStream>,
    /// Connection attempts made to this listener (bounded, below the backlog).
    connects: usize,
    /// Bytes submitted for sending; sends stay bound to finish while this is small.
    sent: usize,
    /// The peer closed or shut down its writing side: our receives see end of stream.
    peer_eof: bool,
    /// The peer is gone: our sends fail.
    peer_gone: bool,
    /// We asked to shut down our writing side: our sends fail.
    shut_write: bool,
}

const ALL: &[Object] = &[
    Object::File,
    Object::TcpPair,
    Object::TcpUnconnected,
    Object::Udp,
    Object::Listener,
    Object::ListenerLate,
];
const FILES: &[Object] = &[Object::File];
const LISTENERS: &[Object] = &[Object::Listener, Object::ListenerLate];
const CONNECTABLE: &[Object] = &[Object::TcpUnconnected, Object::Udp, Object::TcpPair];
const STREAMS: &[Object] = &[Object::TcpPair, Object::Udp];
const DATAGRAMS: &[Object] = &[Object::Udp];

/// Sends below this total stay bound to finish (loopback buffers hold far more).
const SEND_ROOM: usize = 32 * 1024;
/// Connection attempts per listener, well below its backlog.
const MAX_CONNECTS: usize = 32;
/// Threads left waiting in `get` at once (`Getter`).
const MAX_GETTERS: usize = 4;

struct Run {
    shared: Arc<Shared>,
    port: CompletionPort<Ctx>,
    slots: Vec<Slot>,
    recent: Vec<(usize, OpId<Ctx>, usize)>,
    getters: Vec<JoinHandle<()>>,
    /// An address where nothing listens (connects are refused).
    refused_addr: SocketAddr,
    udp_peer: UdpSocket,
}

/// Runs a program, then closes, drains and drops the port, checking every promise.
pub fn run(ops: &[Op]) {
    let program = format!("{ops:?}");
    *watchdog::PROGRAM.lock().unwrap_or_else(|e| e.into_inner()) = program;
    let refused_addr = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        l.local_addr().expect("local address")
    };
    let mut run = Run {
        shared: Arc::new(Shared {
            ledger: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            generation: AtomicU64::new(0),
        }),
        port: CompletionPort::new(2),
        slots: Vec::new(),
        recent: Vec::new(),
        getters: Vec::new(),
        refused_addr,
        udp_peer: UdpSocket::bind("127.0.0.1:0").expect("bind udp"),
    };
    // A stage of one object of each kind, so that most steps act on something.
    for object in [Object::File, Object::TcpPair, Object::Udp, Object::Listener, Object::TcpUnconnected] {
        run.open(object);
    }
    let mut rest = ops;
    while let Some((op, tail)) = rest.split_first() {
        rest = tail;
        if let Op::Batch { steps } = *op {
            let (inside, tail) = rest.split_at(rest.len().min(usize::from(steps % 8) + 1));
            rest = tail;
            let port = run.port.clone();
            port.batch(|| {
                for op in inside {
                    // A prompt send waits for its data: inside a batch it is handed to the
                    // kernel only when the section ends (H9), so it is not run there.
                    if !matches!(
                        op,
                        Op::Drain | Op::DropPort { .. } | Op::Batch { .. } | Op::PromptSend { .. }
                    ) {
                        run.step(op);
                    }
                }
            });
        } else {
            run.step(op);
        }
    }
    if std::env::var_os("CPFUZZ_STATS").is_some() {
        let ledger = run.shared.ledger();
        let count = |s: State| ledger.iter().filter(|e| e.state == s).count();
        eprintln!(
            "fuzz: {} steps, {} contexts: {} delivered, {} refused, {} pending before the final drain",
            ops.len(),
            ledger.len(),
            count(State::Delivered),
            count(State::Refused),
            count(State::Pending)
        );
    }
    run.step(&Op::Quiesce);
    run.step(&Op::Drain);
    run.new_port(2);
}

impl Run {
    /// The slot `h` picks: mostly among the objects the operation suits (`suits`), so
    /// that most steps do something; one time in eight among all of them, so that
    /// refusals are exercised too.
    fn slot_for(&self, h: u8, suits: &[Object]) -> Option<(usize, Arc<Handle<Ctx>>)> {
        let suited: Vec<usize> = (0..self.slots.len())
            .filter(|&i| self.slots[i].handle.is_some() && suits.contains(&self.slots[i].object))
            .collect();
        let i = if h >= 224 || suited.is_empty() {
            if self.slots.is_empty() {
                return None;
            }
            usize::from(h) % self.slots.len()
        } else {
            suited[usize::from(h) % suited.len()]
        };
        self.slots[i].handle.clone().map(|handle| (i, handle))
    }

    fn slot(&self, h: u8) -> Option<(usize, Arc<Handle<Ctx>>)> {
        self.slot_for(h, ALL)
    }

    fn closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    fn step(&mut self, op: &Op) {
        match *op {
            Op::Open(object) => self.open(object),
            Op::ReadAt { h, size, offset } => self.read_write_at(h, size, offset, false),
            Op::WriteAt { h, size, offset } => self.read_write_at(h, size, offset, true),
            Op::Sync { h, data_only } => {
                let Some((i, handle)) = self.slot_for(h, FILES) else { return };
                let ctx = self.shared.make(entry(
                    format!("sync(data_only={data_only}) on {i}"),
                    Some(i),
                    handle.key(),
                    BufUse::None,
                    true,
                ));
                let id = ctx.id;
                let r = if data_only { handle.sync_data(ctx) } else { handle.sync_all(ctx) };
                self.track(i, id, r);
            }
            Op::Accept { h } => {
                let Some((i, handle)) = self.slot_for(h, LISTENERS) else { return };
                let mut e = entry(format!("accept on {i}"), Some(i), handle.key(), BufUse::None, false);
                e.accept = true;
                let ctx = self.shared.make(e);
                let id = ctx.id;
                let r = handle.accept(ctx);
                self.track(i, id, r);
            }
            Op::Connect { h, to } => {
                let Some((i, handle)) = self.slot_for(h, CONNECTABLE) else { return };
                let (addr, finite) = self.target(to, false);
                let ctx = self.shared.make(entry(
                    format!("connect {addr} on {i}"),
                    Some(i),
                    handle.key(),
                    BufUse::None,
                    finite,
                ));
                let id = ctx.id;
                let r = handle.connect(addr, ctx);
                self.track(i, id, r);
            }
            Op::Recv { h, size, eager } => {
                let Some((i, handle)) = self.slot_for(h, STREAMS) else { return };
                let buf = Vec::with_capacity(size.0);
                let finite = self.slots[i].object == Object::TcpPair && self.slots[i].peer_eof;
                let what = format!("recv{} cap {} on {i}", if eager { "_eager" } else { "" }, buf.capacity());
                let ctx = self.shared.make(entry(
                    what,
                    Some(i),
                    handle.key(),
                    BufUse::Fill { cap: buf.capacity() },
                    finite,
                ));
                let id = ctx.id;
                if eager {
                    let r = handle.recv_eager(buf, ctx);
                    self.track_eager(i, id, r);
                } else {
                    let r = handle.recv(buf, ctx);
                    self.track(i, id, r);
                }
            }
            Op::Send { h, size, eager } => {
                let Some((i, handle)) = self.slot_for(h, STREAMS) else { return };
                let buf = vec![0u8; size.0];
                let finite = self.send_finite(i, buf.len());
                let what = format!("send{} {} bytes on {i}", if eager { "_eager" } else { "" }, buf.len());
                let ctx = self.shared.make(entry(what, Some(i), handle.key(), drain_use(&buf), finite));
                let id = ctx.id;
                if eager {
                    let r = handle.send_eager(buf, ctx);
                    self.track_eager(i, id, r);
                } else {
                    let r = handle.send(buf, ctx);
                    self.track(i, id, r);
                }
            }
            Op::Shutdown { h, how } => {
                let Some((i, handle)) = self.slot_for(h, STREAMS) else { return };
                let how = [Shutdown::Read, Shutdown::Write, Shutdown::Both][usize::from(how) % 3];
                self.slots[i].shut_write |= how != Shutdown::Read;
                let ctx = self.shared.make(entry(
                    format!("shutdown {how:?} on {i}"),
                    Some(i),
                    handle.key(),
                    BufUse::None,
                    true,
                ));
                let id = ctx.id;
                let r = handle.shutdown(how, ctx);
                self.track(i, id, r);
            }
            Op::RecvFrom { h, size } => {
                let Some((i, handle)) = self.slot_for(h, DATAGRAMS) else { return };
                let buf = Vec::with_capacity(size.0);
                let what = format!("recv_from cap {} on {i}", buf.capacity());
                let ctx = self.shared.make(entry(
                    what,
                    Some(i),
                    handle.key(),
                    BufUse::Fill { cap: buf.capacity() },
                    false,
                ));
                let id = ctx.id;
                let r = handle.recv_from(buf, ctx);
                self.track(i, id, r);
            }
            Op::SendTo { h, to, size } => {
                let Some((i, handle)) = self.slot_for(h, DATAGRAMS) else { return };
                let (addr, _) = self.target(to, true);
                let buf = vec![0u8; size.0];
                // A datagram never waits for the receiver on loopback; a TCP sendmsg with an
                // address is refused or sent as a send.
                let finite = self.slots[i].object == Object::Udp || self.send_finite(i, buf.len());
                let what = format!("send_to {addr} {} bytes on {i}", buf.len());
                let ctx = self.shared.make(entry(what, Some(i), handle.key(), drain_use(&buf), finite));
                let id = ctx.id;
                let r = handle.send_to(buf, addr, ctx);
                self.track(i, id, r);
            }
            Op::Cancel { recent } => {
                if self.recent.is_empty() {
                    return;
                }
                let (i, op, id) = self.recent.swap_remove(usize::from(recent) % self.recent.len());
                let Some(handle) = self.slots[i].handle.clone() else { return };
                match handle.cancel(&op) {
                    Ok(()) => self.finite_one(id),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        assert!(op.is_done(), "cancel #{id}: NotFound while its operation is not done");
                    }
                    Err(e) => assert!(self.closed(), "cancel #{id} on an open port failed: {e}"),
                }
            }
            Op::CancelAll { h } => {
                let Some((i, handle)) = self.slot(h) else { return };
                match handle.cancel_all() {
                    Ok(()) => self.shared.make_finite(Some(i)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => assert!(self.closed(), "cancel_all on {i} on an open port failed: {e}"),
                }
            }
            Op::DropHandle { h } => {
                let Some((i, handle)) = self.slot(h) else { return };
                self.slots[i].handle = None;
                drop(handle); // the last reference: its operations are cancelled (H6)
                self.shared.make_finite(Some(i));
            }
            Op::Post { key, bytes } => {
                let mut e = entry(
                    format!("post key {key} bytes {bytes}"),
                    None,
                    usize::from(key),
                    BufUse::None,
                    true,
                );
                e.posted = Some(usize::from(bytes));
                let ctx = self.shared.make(e);
                let id = ctx.id;
                if let Err(e) = self.port.post(usize::from(key), usize::from(bytes), ctx) {
                    assert!(self.closed(), "post #{id} refused on an open port");
                    let back = e.into_inner();
                    self.shared.refused(id, back.id, None, &std::io::Error::other("closed"));
                }
            }
            Op::Get(wait) => {
                let r = {
                    let _g = watchdog::guard(format!("get({:?})", wait.0));
                    self.port.get(Some(wait.0))
                };
                got(&self.shared, r.map(|c| vec![c]), 1);
            }
            Op::GetMany { max, wait } => {
                let max = usize::from(max % 17);
                let r = {
                    let _g = watchdog::guard(format!("get_many({max}, {:?})", wait.0));
                    self.port.get_many(max, Some(wait.0))
                };
                got(&self.shared, r, max);
            }
            Op::Peer { h, act } => self.peer(h, act),
            Op::OnThread { h, act, take_packet_first } => self.on_thread(h, act, take_packet_first),
            Op::Getter { wait, post } => {
                if self.getters.len() >= MAX_GETTERS {
                    self.join_getters();
                }
                let (port, shared) = (self.port.clone(), Arc::clone(&self.shared));
                self.getters.push(std::thread::spawn(move || {
                    if post {
                        let mut e = entry("post from a getter thread".into(), None, 7, BufUse::None, true);
                        e.posted = Some(7);
                        let ctx = shared.make(e);
                        let id = ctx.id;
                        if let Err(e) = port.post(7, 7, ctx) {
                            assert!(
                                shared.closed.load(Ordering::SeqCst),
                                "post #{id} refused on an open port"
                            );
                            let back = e.into_inner();
                            shared.refused(id, back.id, None, &std::io::Error::other("closed"));
                        }
                    }
                    let r = {
                        let _g = watchdog::guard(format!("getter thread get({:?})", wait.0));
                        port.get(Some(wait.0))
                    };
                    got(&shared, r.map(|c| vec![c]), 1);
                }));
            }
            Op::PromptSend { h } => self.prompt_send(h),
            Op::Quiesce => self.quiesce(),
            Op::Close => {
                // The flag first: a getter thread may see `Closed` as soon as `close` starts.
                self.shared.closed.store(true, Ordering::SeqCst);
                self.port.close();
                self.shared.make_finite(None);
                self.join_getters();
                // P8: a closed port answers `Closed` at once, even with packets queued.
                let _g = watchdog::guard("get on a closed port");
                assert_eq!(self.port.get(Some(Duration::from_secs(1))).err(), Some(GetError::Closed));
            }
            Op::Drain => {
                self.shared.closed.store(true, Ordering::SeqCst);
                // Getter threads may still be waiting (one as the poller): drain races them.
                let drained = {
                    let _g = watchdog::guard("drain");
                    self.port.drain()
                };
                self.join_getters();
                for c in drained {
                    self.shared.deliver(c);
                }
                let owed = self.shared.owed(|_| true);
                assert!(owed.is_empty(), "P10: drain returned, but these packets never came: {owed:?}");
            }
            Op::DropPort { concurrency } => self.new_port(usize::from(concurrency % 4)),
            Op::Batch { .. } => {} // run by `run`
            Op::Defer { on } => self.port.defer_submissions(on),
        }
    }

    /// Records an ordinary submission; an accepted one is remembered for `Cancel`.
    fn track(&mut self, slot: usize, id: usize, r: Result<OpId<Ctx>, SubmitError<Ctx>>) {
        if let Some(op) = self.shared.submitted(id, r) {
            self.recent.push((slot, op, id));
            if self.recent.len() > 32 {
                self.recent.remove(0);
            }
        }
    }

    fn track_eager(&mut self, slot: usize, id: usize, r: Result<Started<Ctx>, SubmitError<Ctx>>) {
        match r {
            Ok(Started::Done(c)) => {
                assert_eq!(c.context.id, id, "an eager call completed with another context");
                self.shared.deliver(c);
            }
            Ok(Started::Pending(op)) => self.track(slot, id, Ok(op)),
            Err(e) => self.track(slot, id, Err(e)),
        }
    }

    fn finite_one(&self, id: usize) {
        let mut ledger = self.shared.ledger();
        if ledger[id].state == State::Pending {
            ledger[id].finite = true;
        }
    }

    fn send_finite(&mut self, i: usize, len: usize) -> bool {
        let s = &mut self.slots[i];
        s.sent = s.sent.saturating_add(len);
        match s.object {
            Object::TcpPair => s.peer_gone || s.sent <= SEND_ROOM,
            Object::Udp => true,
            _ => false,
        }
    }

    /// A destination: one of our listeners or UDP sockets, or an address nobody listens on.
    /// Also says whether a connect there is bound to finish.
    fn target(&mut self, to: u8, datagram: bool) -> (SocketAddr, bool) {
        let candidates: Vec<usize> = (0..self.slots.len())
            .filter(|&i| {
                let s = &self.slots[i];
                s.addr.is_some()
                    && if datagram {
                        s.object == Object::Udp
                    } else {
                        matches!(s.object, Object::Listener | Object::ListenerLate | Object::Udp)
                    }
            })
            .collect();
        let pick = usize::from(to) % (candidates.len() + 1);
        let Some(&i) = candidates.get(pick) else { return (self.refused_addr, true) };
        let s = &mut self.slots[i];
        s.connects += 1;
        (s.addr.expect("filtered on addr"), s.connects <= MAX_CONNECTS)
    }

    fn open(&mut self, object: Object) {
        let key = self.slots.len() + 1000;
        let mut slot = Slot {
            object,
            handle: None,
            addr: None,
            peer: None,
            clients: Vec::new(),
            connects: 0,
            sent: 0,
            peer_eof: false,
            peer_gone: false,
            shut_write: false,
        };
        let associated = match object {
            Object::File => {
                let mut f = tempfile::tempfile().expect("a temporary file");
                f.write_all(&[0x5a; 4096]).expect("fill the temporary file");
                self.port.associate(f, key)
            }
            Object::TcpPair => {
                let l = TcpListener::bind("127.0.0.1:0").expect("bind");
                let peer = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
                let (ours, _) = l.accept().expect("accept");
                peer.set_nonblocking(true).expect("nonblocking peer");
                slot.peer = Some(peer);
                self.port.associate(ours, key)
            }
            Object::TcpUnconnected => {
                self.port.associate(Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket"), key)
            }
            Object::Udp => {
                let u = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
                slot.addr = u.local_addr().ok();
                self.port.associate(u, key)
            }
            Object::Listener => {
                let l = TcpListener::bind("127.0.0.1:0").expect("bind");
                slot.addr = l.local_addr().ok();
                self.port.associate(l, key)
            }
            Object::ListenerLate => {
                let s = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
                s.bind(&"127.0.0.1:0".parse::<SocketAddr>().expect("addr").into()).expect("bind");
                slot.addr = s.local_addr().ok().and_then(|a| a.as_socket());
                self.port.associate(s, key).inspect(|h| SockRef::from(h).listen(64).expect("listen"))
            }
        };
        match associated {
            Ok(h) => slot.handle = Some(Arc::new(h)),
            Err(e) => assert!(self.closed(), "associate {object:?} on an open port failed: {e}"),
        }
        self.slots.push(slot);
    }

    fn read_write_at(&mut self, h: u8, size: Size, offset: Offset, write: bool) {
        let Some((i, handle)) = self.slot_for(h, FILES) else { return };
        let object = self.slots[i].object;
        let (buf, buf_use, finite) = if write {
            let buf = vec![0u8; size.0];
            let finite = object == Object::File || self.send_finite(i, buf.len());
            let u = drain_use(&buf);
            (buf, u, finite)
        } else {
            let buf = Vec::with_capacity(size.0);
            let cap = buf.capacity();
            (buf, BufUse::Fill { cap }, object == Object::File)
        };
        let name = if write { "write_at" } else { "read_at" };
        let mut e = entry(
            format!("{name} {size:?} at {offset:?} on {i} ({object:?})"),
            Some(i),
            handle.key(),
            buf_use,
            finite,
        );
        e.must_fail = object == Object::File && offset.0 > i64::MAX as u64; // F4
        let ctx = self.shared.make(e);
        let id = ctx.id;
        let r = if write { handle.write_at(buf, offset.0, ctx) } else { handle.read_at(buf, offset.0, ctx) };
        self.track(i, id, r);
    }

    fn peer(&mut self, h: u8, act: PeerAct) {
        let suits = match act {
            PeerAct::Write(_) => STREAMS,
            PeerAct::Connect => LISTENERS,
            _ => &[Object::TcpPair][..],
        };
        let suited: Vec<usize> =
            (0..self.slots.len()).filter(|&i| suits.contains(&self.slots[i].object)).collect();
        let Some(&i) = suited.get(usize::from(h) % suited.len().max(1)) else { return };
        let object = self.slots[i].object;
        match (object, act) {
            (Object::TcpPair, PeerAct::Write(size)) => {
                if let Some(p) = &mut self.slots[i].peer {
                    let _ = p.write(&vec![0x33u8; size.0.min(64 * 1024)]);
                }
            }
            (Object::TcpPair, PeerAct::Read) => {
                if let Some(p) = &mut self.slots[i].peer {
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(n @ 1..) = p.read(&mut buf) {
                        let _ = n;
                    }
                }
            }
            (Object::TcpPair, PeerAct::ShutdownWrite) => {
                if let Some(p) = &self.slots[i].peer {
                    let _ = p.shutdown(Shutdown::Write);
                    self.slots[i].peer_eof = true;
                    self.shared.make_finite_recvs(i);
                }
            }
            (Object::TcpPair, PeerAct::Close | PeerAct::Reset) => {
                if let Some(p) = self.slots[i].peer.take() {
                    if act == PeerAct::Reset {
                        let _ = SockRef::from(&p).set_linger(Some(Duration::ZERO));
                    }
                    drop(p);
                    let s = &mut self.slots[i];
                    s.peer_eof = true;
                    s.peer_gone = true;
                    self.shared.make_finite_recvs(i);
                }
            }
            (Object::Udp, PeerAct::Write(size)) => {
                if let Some(addr) = self.slots[i].addr {
                    let _ = self.udp_peer.send_to(&vec![0x44u8; size.0.min(1400)], addr);
                }
            }
            (Object::Listener | Object::ListenerLate, PeerAct::Connect) => {
                let s = &mut self.slots[i];
                if let (Some(addr), true) = (s.addr, s.connects < MAX_CONNECTS) {
                    s.connects += 1;
                    let _g = watchdog::guard("a plain client's connect");
                    if let Ok(c) = TcpStream::connect_timeout(&addr, LIMIT / 2) {
                        s.clients.push(c);
                    }
                }
            }
            _ => {}
        }
    }

    fn on_thread(&mut self, h: u8, act: ThreadAct, take_packet_first: bool) {
        let suits = match act {
            ThreadAct::Recv(_) | ThreadAct::Send(_) => STREAMS,
            ThreadAct::ReadAt(..) | ThreadAct::WriteAt(..) | ThreadAct::Sync => FILES,
            ThreadAct::Accept => LISTENERS,
        };
        let Some((i, handle)) = self.slot_for(h, suits) else { return };
        let object = self.slots[i].object;
        let (what, buf, buf_use, finite) = match act {
            ThreadAct::Recv(size) => {
                let b = Vec::with_capacity(size.0);
                let cap = b.capacity();
                let finite = object == Object::TcpPair && self.slots[i].peer_eof;
                ("recv", Some(b), BufUse::Fill { cap }, finite)
            }
            ThreadAct::ReadAt(size, _) => {
                let b = Vec::with_capacity(size.0);
                let cap = b.capacity();
                ("read_at", Some(b), BufUse::Fill { cap }, object == Object::File)
            }
            ThreadAct::WriteAt(size, _) | ThreadAct::Send(size) => {
                let b = vec![0u8; size.0];
                let u = drain_use(&b);
                let finite = (object == Object::File && matches!(act, ThreadAct::WriteAt(..)))
                    || self.send_finite(i, b.len());
                (if matches!(act, ThreadAct::Send(_)) { "send" } else { "write_at" }, Some(b), u, finite)
            }
            ThreadAct::Sync => ("sync_all", None, BufUse::None, true),
            ThreadAct::Accept => ("accept", None, BufUse::None, false),
        };
        let mut e = entry(
            format!("{act:?} (as {what}) on {i} from an exiting thread"),
            Some(i),
            handle.key(),
            buf_use,
            finite,
        );
        e.accept = act == ThreadAct::Accept;
        if let ThreadAct::ReadAt(_, o) | ThreadAct::WriteAt(_, o) = act {
            e.must_fail = object == Object::File && o.0 > i64::MAX as u64; // F4
        }
        let ctx = self.shared.make(e);
        let id = ctx.id;
        let (port, shared) = (self.port.clone(), Arc::clone(&self.shared));
        let t = std::thread::spawn(move || {
            if take_packet_first {
                let r = {
                    let _g = watchdog::guard("a thread's get before it submits");
                    port.get(Some(Duration::from_millis(1)))
                };
                got(&shared, r.map(|c| vec![c]), 1);
            }
            let r = match act {
                ThreadAct::Recv(_) => handle.recv(buf.unwrap_or_default(), ctx),
                ThreadAct::ReadAt(_, o) => handle.read_at(buf.unwrap_or_default(), o.0, ctx),
                ThreadAct::WriteAt(_, o) => handle.write_at(buf.unwrap_or_default(), o.0, ctx),
                ThreadAct::Send(_) => handle.send(buf.unwrap_or_default(), ctx),
                ThreadAct::Sync => handle.sync_all(ctx),
                ThreadAct::Accept => handle.accept(ctx),
            };
            // The operation id is dropped with the thread: it cannot be cancelled one by one.
            let _ = shared.submitted(id, r);
        });
        let _g = watchdog::guard("join a submitting thread");
        if let Err(panic) = t.join() {
            std::panic::resume_unwind(panic);
        }
    }

    fn prompt_send(&mut self, h: u8) {
        let Some((i, handle)) = self.slot_for(h, &[Object::TcpPair]) else { return };
        let s = &self.slots[i];
        if self.closed()
            || s.object != Object::TcpPair
            || s.peer_gone
            || s.shut_write
            || s.sent + 1 > SEND_ROOM
        {
            return;
        }
        // Become a worker: hold a packet from this port.
        self.step(&Op::Post { key: 9, bytes: 9 });
        let r = {
            let _g = watchdog::guard("get a packet to become a worker");
            self.port.get(Some(LIMIT / 2))
        };
        got(&self.shared, r.map(|c| vec![c]), 1);
        // What the peer can read now came before this send.
        self.peer(h, PeerAct::Read);
        let finite = self.send_finite(i, 1);
        let ctx = self.shared.make(entry(
            format!("prompt send on {i}"),
            Some(i),
            handle.key(),
            BufUse::Drain { cap: 1, len: 1 },
            finite,
        ));
        let id = ctx.id;
        let r = handle.send(vec![b'P'], ctx);
        let accepted = r.is_ok();
        self.track(i, id, r);
        if !accepted {
            return;
        }
        let Some(peer) = &mut self.slots[i].peer else { return };
        let start = Instant::now();
        let mut byte = [0u8; 1];
        loop {
            match peer.read(&mut byte) {
                Ok(1..) => return,
                Ok(0) => panic!("prompt send on {i}: the peer saw end of stream"),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("prompt send on {i}: the peer's read failed: {e}"),
            }
            assert!(
                start.elapsed() < LIMIT,
                "a send started by a worker thread did not reach the peer within {LIMIT:?} (the thread did not call get again)"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn join_getters(&mut self) {
        for t in self.getters.drain(..) {
            let _g = watchdog::guard("join a getter thread");
            if let Err(panic) = t.join() {
                std::panic::resume_unwind(panic);
            }
        }
    }

    /// Takes packets until every operation bound to finish has delivered its packet.
    fn quiesce(&mut self) {
        self.join_getters();
        if self.closed() {
            return; // only `drain` hands out packets now
        }
        let start = Instant::now();
        loop {
            let owed = self.shared.owed(|e| e.finite);
            if owed.is_empty() {
                return;
            }
            assert!(
                start.elapsed() < LIMIT,
                "these operations are bound to finish but gave no packet within {LIMIT:?}: {owed:?}"
            );
            let r = {
                let _g = watchdog::guard("get_many while quiescing");
                self.port.get_many(16, Some(Duration::from_millis(20)))
            };
            got(&self.shared, r, 16);
        }
    }

    /// Drops every handle and the port without draining (P10: each context still dropped
    /// exactly once, by the drop), then starts a new port.
    fn new_port(&mut self, concurrency: usize) {
        self.join_getters();
        self.recent.clear();
        self.slots.clear();
        let old = std::mem::replace(&mut self.port, CompletionPort::new(concurrency));
        {
            let _g = watchdog::guard("drop a port");
            drop(old);
        }
        let generation = self.shared.generation.load(Ordering::SeqCst);
        for (i, e) in self.shared.ledger().iter().enumerate() {
            if e.generation == generation {
                let drops = e.drops.load(Ordering::SeqCst);
                assert_eq!(
                    drops, 1,
                    "P10: #{i} {} ({:?}) dropped {drops} times once its port was dropped",
                    e.what, e.state
                );
            }
        }
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
        self.shared.closed.store(false, Ordering::SeqCst);
    }
}

impl Shared {
    fn make_finite_recvs(&self, slot: usize) {
        let generation = self.generation.load(Ordering::SeqCst);
        for e in self.ledger().iter_mut() {
            if e.generation == generation
                && e.state == State::Pending
                && e.slot == Some(slot)
                && matches!(e.buf, BufUse::Fill { .. })
            {
                e.finite = true;
            }
        }
    }
}

fn drain_use(buf: &Vec<u8>) -> BufUse {
    BufUse::Drain { cap: buf.capacity(), len: buf.len() }
}

/// Records what a `get`/`get_many` returned, checking its shape.
fn got(shared: &Shared, r: Result<Vec<Completion<Ctx>>, GetError>, max: usize) {
    match r {
        Ok(packets) => {
            assert!(
                max > 0 && !packets.is_empty() && packets.len() <= max,
                "P4: get_many({max}) returned {}",
                packets.len()
            );
            for c in packets {
                shared.deliver(c);
            }
        }
        Err(GetError::TimedOut) => assert!(max > 0, "P4: get_many(0) timed out instead of InvalidArgument"),
        Err(GetError::Closed) => {
            assert!(max > 0, "P4: get_many(0) said Closed instead of InvalidArgument");
            assert!(shared.closed.load(Ordering::SeqCst), "get said Closed on an open port");
        }
        Err(GetError::InvalidArgument(why)) => assert_eq!(max, 0, "get_many({max}) refused: {why}"),
        Err(e) => panic!("unexpected get error {e:?}"),
    }
}
