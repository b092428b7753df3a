//! `cport serve`: the seeds' NetworkSystem, an echo server on one completion port.
//!
//! One port, one pool of worker threads, never a thread per connection. With `--ports N`
//! the server runs N such ports side by side, each with its own listener on the same
//! address (`SO_REUSEPORT`, the kernel spreading connections between them), its share of
//! the workers and of the connection limit: one port per group of threads, as an IOCP
//! server spreads over NUMA nodes, so that threads of different ports never hand work to
//! each other. A connection has
//! at most one operation in flight at any moment, so its state travels in the operation's
//! context and needs no lock:
//!
//! ```text
//! accept ──► readable ──► recv ──Ok(n)──► send (rest, if partial) ──all sent──► recv ...
//!  (zero-byte receive)      └─Ok(0) (peer's FIN) / error ──► close
//! ```
//!
//! A connection's first receive is a zero-byte one (N6): a client that connects and stays
//! silent holds no buffer, only a few hundred bytes of state. With `--zero-byte-receive`
//! every message is awaited that way. Because the next receive is issued only once the
//! echo is fully sent, a client that never reads stops its own connection: memory per
//! connection is at most one buffer. A graceful
//! close is honoured after everything received has been echoed. SIGINT/SIGTERM stop the
//! server: stop accepting, cancel, drain, print a summary, exit 0.

use crate::split::share;
use crate::{limits, units};
use completion_port::{Completion, CompletionPort, GetError, Handle, Started};
use serde::Serialize;
use std::cell::Cell;
use std::collections::HashMap;
use std::net::{TcpListener, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::thread;
use std::time::{Duration, Instant};

/// Options of `cport serve`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on: IP:PORT or HOST:PORT (the first address HOST resolves to
    /// that can be bound).
    #[arg(long, default_value = "127.0.0.1:7000")]
    addr: String,
    /// Worker threads waiting on the port (default: logical CPUs).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    workers: Option<u32>,
    /// Most workers running at once, the port's concurrency value (0: logical CPUs).
    #[arg(long, default_value_t = 0)]
    concurrency: usize,
    /// Completion ports to run side by side (at most --workers), each with its own
    /// SO_REUSEPORT listener on the address and an equal share of the workers, of the
    /// concurrency value and of --max-connections. 1: one port shared by every worker.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4096))]
    ports: u32,
    /// Most connections open at once (at least 1); further clients wait in the listen
    /// backlog. The soft descriptor limit is raised to the hard limit if this needs it.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    max_connections: u64,
    /// Receive buffer per connection (suffixes K, M, powers of 1024; at most 64M).
    #[arg(long, default_value = "16K", value_parser = parse_buffer_size)]
    buffer_size: u64,
    /// Length of the listen backlog: connections the kernel completes before they are
    /// accepted (the kernel caps it at net.core.somaxconn).
    #[arg(long, default_value_t = libc::SOMAXCONN as u32, value_parser = clap::value_parser!(u32).range(1..=(i32::MAX as i64)))]
    backlog: u32,
    /// Set SO_REUSEPORT on the listener, so that other processes can listen on the same
    /// address and the kernel spreads connections between them.
    #[arg(long)]
    reuse_port: bool,
    /// Wait for every message with a zero-byte receive, and take the data only once it is
    /// there: a connection holds no buffer between messages, at the cost of one more
    /// packet per message. Without it, only a connection's first receive is zero-byte (an
    /// idle client that never sends holds no buffer either way).
    #[arg(long)]
    zero_byte_receive: bool,
    /// Most packets a worker takes from the port at once (GetQueuedCompletionStatusEx's
    /// count). A smaller batch spreads a burst of completions over more workers; where
    /// every port has one worker there is nobody to spread to. Default: 1024 when
    /// `--workers` equals `--ports` (one worker per port), else 64.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    batch: Option<u32>,
    /// Accepts kept in flight on the listener.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=4096))]
    accepts: u16,
    /// Close a connection that has received nothing and sent nothing for this long
    /// (e.g. 30s, 5m; default: never).
    #[arg(long, value_parser = units::parse_duration)]
    idle_timeout: Option<Duration>,
    /// Skip the port while a connection answers at once: send each echo directly when
    /// the socket can take it, then receive the next message directly if it is already
    /// there, up to `--eager-rounds` messages in a row (skip-on-success, the
    /// drain-until-it-would-block loop of a readiness server). Costs a system call per
    /// step that the port otherwise batches into its wait call; pays where clients answer
    /// at once, e.g. on the same host (docs/benchmarks.md).
    #[arg(long)]
    eager: bool,
    /// With `--eager`: most messages of one connection echoed in a row without the port,
    /// before its next echo goes through the port and other connections' packets get
    /// their turn. Deeper is faster for clients on the same host and less even between
    /// connections (mio's drain has no bound; tokio's cooperative budget is 128).
    #[arg(long, default_value_t = 1024, requires = "eager", value_parser = clap::value_parser!(u32).range(1..=65536))]
    eager_rounds: u32,
    /// Deferred submission (docs/semantics.md H9): the operations a worker starts go to
    /// the kernel with its next wait instead of at the end of each batch, as the C API's
    /// ports do; with `--batch 1` the server runs as the seeds' C echo server does (one
    /// packet per call), for comparing the two (docs/benchmarks.md).
    #[arg(long)]
    defer: bool,
    /// Print the summary at exit as one JSON object on stdout (instead of a line on stderr).
    #[arg(long)]
    json: bool,
}

/// A receive buffer size of at most 64 MiB.
fn parse_buffer_size(text: &str) -> Result<u64, String> {
    units::parse_size_at_most(text, 64 << 20, "buffer size")
}

/// How often the main thread looks at the accepts parked by a descriptor shortage and at
/// idle connections.
const TICK: Duration = Duration::from_millis(50);

/// Packets a worker takes per call where workers share a port: a burst is spread over them.
const BATCH_SHARED: u32 = 64;
/// Packets a worker takes per call where it is its port's only worker: as many as are
/// ready, within reason. At 64 B x 500 connections (250 per worker) the server's CPU per
/// message was 1.08x monoio's against 1.33x with 64 over ten rounds, and 0.96x against
/// 1.24x in an eight-round rerun (docs/benchmarks.md, "A worker alone on its port takes
/// the whole batch"): a worker that returns to user space four times as often per round
/// is preempted about four times as often.
const BATCH_ALONE: u32 = 1024;

/// The completion key of the listener; connections use their id (from 1).
const LISTENER: usize = 0;

/// The per-operation context: the safe `OVERLAPPED_PLUS`.
enum Op {
    Accept,
    /// A zero-byte receive: the connection is readable (data, end of stream or an error).
    Readable(Arc<Conn>),
    Recv(Arc<Conn>),
    Send(Arc<Conn>),
}

/// One client connection. Dropped (and its socket closed) when its last operation's
/// context is dropped.
struct Conn {
    id: usize,
    handle: Handle<Op>,
    server: Arc<Server>,
    /// With `--idle-timeout`: when the connection last made progress, in milliseconds
    /// since the server started.
    last_active: AtomicU64,
    /// Set once it is being closed for idleness: no new operation is started.
    closing: AtomicBool,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.server.connection_closed(self.id);
    }
}

impl Conn {
    fn touch(&self) {
        if self.server.idle_timeout.is_some() {
            self.last_active.store(self.server.now_ms(), Ordering::Relaxed);
        }
    }
}

/// State shared by the workers.
struct Server {
    port: CompletionPort<Op>,
    listener: Mutex<Option<Handle<Op>>>,
    /// This port's share of `--max-connections`.
    max_connections: usize,
    buffer_size: usize,
    /// With `--eager`: its bound, `--eager-rounds`; `None` without the drain.
    eager: Option<usize>,
    zero_byte_receive: bool,
    batch: usize,
    idle_timeout: Option<Duration>,
    started: Instant,
    /// Connection slots and the accepts that wait for one.
    slots: Mutex<Slots>,
    /// With `--idle-timeout`: the open connections, by id.
    conns: Mutex<HashMap<usize, Weak<Conn>>>,
    next_id: AtomicU64,
    /// Shared by every port of the server.
    stats: Arc<Stats>,
}

/// The accounting of connection slots. Invariants: `open + armed <= max_connections`
/// (an accept in flight holds a slot, so the limit is never exceeded however many
/// accepts are in flight), and `armed + parked` is the number of accepts (`--accepts`).
#[derive(Default)]
struct Slots {
    /// Connections open.
    open: usize,
    /// Accepts in flight on the listener.
    armed: usize,
    /// Accepts not in flight: no free slot, or descriptors ran out.
    parked: usize,
    /// An accept failed for lack of descriptors (or memory) and none has succeeded
    /// since: accepts stay parked until a connection closes or a [`TICK`] retries one.
    starved: bool,
    /// When the last "descriptors ran out" warning was logged.
    warned: Option<Instant>,
}

/// At most one "descriptors ran out" warning this often.
const WARN_EVERY: Duration = Duration::from_secs(10);
thread_local! {
    /// Messages and bytes this worker received since it last added them to its server's
    /// totals (after each batch): no counter shared between threads is touched per message.
    static TALLY: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// Counts one received message of `n` bytes in this thread's tally.
fn count_message(n: usize) {
    TALLY.with(|t| {
        let (messages, bytes) = t.get();
        t.set((messages + 1, bytes + n as u64));
    });
}

impl Slots {
    /// Takes a slot for an accept, if one is free and descriptors have not run out; else
    /// parks the accept. Returns whether to arm it.
    fn take_or_park(&mut self, max: usize) -> bool {
        if !self.starved && self.open + self.armed < max {
            self.armed += 1;
            true
        } else {
            self.parked += 1;
            false
        }
    }

    /// Unparks one accept if a slot is free (even while starved: the caller knows a
    /// descriptor may be free). Returns whether to arm it.
    fn unpark(&mut self, max: usize) -> bool {
        if self.parked > 0 && self.open + self.armed < max {
            self.parked -= 1;
            self.armed += 1;
            true
        } else {
            false
        }
    }
}

#[derive(Default)]
struct Stats {
    connections: AtomicU64,
    messages: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    idle_closed: AtomicU64,
}

/// The summary printed at exit.
#[derive(Serialize)]
struct Summary {
    addr: String,
    workers: usize,
    /// Completion ports (`--ports`).
    ports: usize,
    /// The concurrency values of the ports, added up.
    concurrency: usize,
    /// The port's I/O backend: "io_uring" or "epoll".
    backend: String,
    /// With `--eager`: its bound (`--eager-rounds`); `null` without the drain.
    eager_rounds: Option<u32>,
    /// Most packets a worker takes per call (`--batch`, or its default for the layout).
    batch: u32,
    connections: u64,
    messages: u64,
    bytes: u64,
    errors: u64,
    idle_closed: u64,
    cancelled_at_shutdown: usize,
    seconds: f64,
    cpu_seconds: f64,
}

/// The port's backend, once the listener's association created it.
fn backend_name<C: Send + 'static>(port: &CompletionPort<C>) -> String {
    port.backend().map_or_else(|| "none".to_owned(), |b| b.name().to_owned())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Listens on the first address `addr` resolves to that can be bound, with `backlog`
/// (and `SO_REUSEPORT` when asked).
fn listen(addr: &str, backlog: u32, reuse_port: bool) -> Result<TcpListener, String> {
    let targets = addr.to_socket_addrs().map_err(|e| format!("cannot resolve '{addr}': {e}"))?;
    let mut last = None;
    let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
    for t in targets {
        let bound = (|| {
            let s = socket2::Socket::new(socket2::Domain::for_address(t), socket2::Type::STREAM, None)?;
            s.set_reuse_address(true)?;
            if reuse_port {
                s.set_reuse_port(true)?;
            }
            s.bind(&t.into())?;
            s.listen(backlog)?;
            Ok::<_, std::io::Error>(TcpListener::from(s))
        })();
        match bound {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    let why = last.map_or_else(|| "no address".to_string(), |e| limits::explain(&e));
    Err(format!("cannot listen on {addr}: {why}"))
}

fn cpus() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

impl Args {
    /// Worker threads: `--workers`, else one per logical CPU.
    fn worker_count(&self) -> usize {
        self.workers.map_or_else(cpus, |n| n as usize)
    }

    /// Packets a worker takes per call: `--batch`, else [`BATCH_ALONE`] where each port
    /// has one worker and [`BATCH_SHARED`] where workers share a port.
    fn batch_size(&self) -> u32 {
        let alone = self.worker_count() == self.ports as usize;
        self.batch.unwrap_or(if alone { BATCH_ALONE } else { BATCH_SHARED })
    }

    /// Checks across flags: every port needs a worker and a connection slot.
    pub fn check(&self) -> Result<(), String> {
        let workers = self.worker_count();
        if self.ports as usize > workers {
            return Err(format!(
                "--ports {} needs at least as many workers, but there are {workers} (--workers)",
                self.ports
            ));
        }
        if u64::from(self.ports) > self.max_connections {
            return Err(format!(
                "--ports {} needs --max-connections of at least {} (each port takes a share)",
                self.ports, self.ports
            ));
        }
        Ok(())
    }
}

/// Runs the server until SIGINT or SIGTERM.
pub fn run(args: Args) -> Result<ExitCode, String> {
    let cpus = cpus();
    let workers = args.worker_count();
    let ports = args.ports as usize;
    let max_connections = usize::try_from(args.max_connections).unwrap_or(usize::MAX);
    let concurrency = if args.concurrency == 0 { cpus } else { args.concurrency };
    let needed = args.max_connections + u64::from(args.accepts) * u64::from(args.ports) + limits::RESERVED;
    let nofile = limits::raise_nofile(needed);
    let eager_rounds = args.eager.then_some(args.eager_rounds);
    let batch = args.batch_size();
    let first = listen(&args.addr, args.backlog, args.reuse_port || ports > 1)?;
    let local = first.local_addr().map_err(|e| format!("cannot read the listening address: {e}"))?;
    let mut listeners = vec![first];
    for _ in 1..ports {
        // The others bind the address the first one got (its port, if 0 was asked).
        listeners.push(listen(&local.to_string(), args.backlog, true)?);
    }
    let signals =
        signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM])
            .map_err(|e| format!("cannot install signal handlers: {e}"))?;

    let stats = Arc::new(Stats::default());
    let started = Instant::now();
    let mut servers = Vec::with_capacity(ports);
    for (i, listener) in listeners.into_iter().enumerate() {
        let port = CompletionPort::new(share(concurrency, ports, i).max(1));
        port.defer_submissions(args.defer);
        let listener = port
            .associate(listener, LISTENER)
            .map_err(|e| format!("cannot associate the listener: {}", limits::explain(&e)))?;
        servers.push(Arc::new(Server {
            port,
            listener: Mutex::new(Some(listener)),
            max_connections: share(max_connections, ports, i),
            buffer_size: args.buffer_size as usize,
            eager: eager_rounds.map(|n| n as usize),
            zero_byte_receive: args.zero_byte_receive,
            batch: batch as usize,
            idle_timeout: args.idle_timeout,
            started,
            slots: Mutex::new(Slots::default()),
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            stats: Arc::clone(&stats),
        }));
    }
    let mut threads = Vec::with_capacity(workers);
    for (i, server) in servers.iter().enumerate() {
        for _ in 0..args.accepts {
            if lock(&server.slots).take_or_park(server.max_connections) {
                server.arm_accept();
            }
        }
        for _ in 0..share(workers, ports, i) {
            let server = Arc::clone(server);
            let n = threads.len();
            threads.push(
                thread::Builder::new()
                    .name(format!("cport-serve-{n}"))
                    .spawn(move || server.worker())
                    .map_err(|e| format!("cannot start a worker thread: {e}"))?,
            );
        }
    }
    let total_concurrency: usize = servers.iter().map(|s| s.port.concurrency()).sum();
    let backend = backend_name(&servers[0].port);
    let on_ports = if ports > 1 { format!(" on {ports} ports") } else { String::new() };
    let drain = eager_rounds
        .map_or_else(String::new, |n| format!(", eager: up to {n} messages of a connection in a row"));
    eprintln!(
        "cport serve: listening on {local} with {workers} workers{on_ports} (concurrency {total_concurrency}, backend {backend}{drain})"
    );
    if let Some(soft) = nofile.filter(|&n| n < needed) {
        tracing::warn!(
            "--max-connections {} needs about {needed} descriptors but the limit is {soft}: accepts will pause \
             there (raise it with `ulimit -n`)",
            args.max_connections
        );
    }

    // Until SIGINT/SIGTERM: retry accepts parked by a descriptor shortage, close idle
    // connections.
    let signal = watch(&servers, signals);
    tracing::info!(?signal, "shutting down");
    // Stop accepting, cancel, drain.
    for server in &servers {
        server.port.close(); // cancels every accept, receive and send in flight
    }
    for t in threads {
        if t.join().is_err() {
            tracing::error!("a worker panicked");
        }
    }
    let mut cancelled = 0;
    for server in &servers {
        let leftover = server.port.drain(); // their packets: contexts dropped here, sockets closed
        cancelled += leftover.len();
        drop(leftover);
        lock(&server.listener).take();
    }

    let s = &stats;
    let summary = Summary {
        addr: local.to_string(),
        workers,
        ports,
        concurrency: total_concurrency,
        backend,
        eager_rounds,
        batch,
        connections: s.connections.load(Ordering::Relaxed),
        messages: s.messages.load(Ordering::Relaxed),
        bytes: s.bytes.load(Ordering::Relaxed),
        errors: s.errors.load(Ordering::Relaxed),
        idle_closed: s.idle_closed.load(Ordering::Relaxed),
        cancelled_at_shutdown: cancelled,
        seconds: started.elapsed().as_secs_f64(),
        cpu_seconds: cpu_seconds(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&summary).map_err(|e| format!("cannot write JSON: {e}"))?);
    } else {
        eprintln!("{}", summary.text(args.idle_timeout.is_some()));
    }
    Ok(ExitCode::SUCCESS)
}

/// The main thread's loop until SIGINT or SIGTERM, which it returns: every [`TICK`],
/// retries one parked accept per port if descriptors ran out, and closes idle connections.
fn watch(servers: &[Arc<Server>], mut signals: signal_hook::iterator::Signals) -> Option<i32> {
    let idle_timeout = servers.first().and_then(|s| s.idle_timeout);
    let scan_every = idle_timeout.map(|t| (t / 4).clamp(TICK, Duration::from_secs(1)));
    let mut last_scan = Instant::now();
    loop {
        if let Some(signal) = signals.pending().next() {
            return Some(signal);
        }
        for server in servers {
            server.retry_starved_accept();
        }
        if let (Some(timeout), Some(every)) = (idle_timeout, scan_every) {
            if last_scan.elapsed() >= every {
                last_scan = Instant::now();
                for server in servers {
                    server.close_idle(timeout);
                }
            }
        }
        thread::sleep(TICK);
    }
}

impl Summary {
    fn text(&self, idle: bool) -> String {
        format!(
            "cport serve: {} connections, {} messages, {} bytes echoed, {} errors, {}{} operations cancelled at shutdown, {:.1}s, cpu {:.2}s{}",
            self.connections,
            self.messages,
            self.bytes,
            self.errors,
            if idle { format!("{} closed idle, ", self.idle_closed) } else { String::new() },
            self.cancelled_at_shutdown,
            self.seconds,
            self.cpu_seconds,
            if self.messages > 0 {
                format!(" ({:.2} us/msg)", self.cpu_seconds * 1e6 / self.messages as f64)
            } else {
                String::new()
            },
        )
    }
}

impl Server {
    /// Milliseconds since the server started.
    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// While descriptors are short, probes with one accept per [`TICK`] (none while one is
    /// in flight): bounded retries, whether or not a connection ever closes.
    fn retry_starved_accept(&self) {
        let arm = {
            let mut slots = lock(&self.slots);
            slots.starved && slots.armed == 0 && slots.unpark(self.max_connections)
        };
        if arm {
            self.arm_accept();
        }
    }

    /// Closes the connections that made no progress for `timeout`: cancels their
    /// operation in flight; its packet drops the connection.
    fn close_idle(&self, timeout: Duration) {
        let now = self.now_ms();
        let limit = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        // Upgraded under the lock, used and dropped after it: dropping the last reference
        // to a connection takes the lock again (`connection_closed`).
        let idle: Vec<Arc<Conn>> = lock(&self.conns)
            .values()
            .filter_map(Weak::upgrade)
            .filter(|c| now.saturating_sub(c.last_active.load(Ordering::Relaxed)) >= limit)
            .collect();
        for conn in idle {
            if !conn.closing.swap(true, Ordering::AcqRel) {
                self.stats.idle_closed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(conn = conn.id, "closing an idle connection");
                if let Err(e) = conn.handle.cancel_all() {
                    tracing::debug!(error = %e, "cannot cancel an idle connection's operation");
                }
            }
        }
    }

    fn worker(self: &Arc<Self>) {
        let mut batch = Vec::with_capacity(self.batch);
        loop {
            batch.clear();
            match self.port.get_many_into(&mut batch, self.batch, None) {
                Ok(_) => {
                    // The operations this batch starts go to the kernel in one system call,
                    // when the section ends (nothing in it waits for them).
                    self.port.batch(|| {
                        for packet in batch.drain(..) {
                            self.handle(packet);
                        }
                    });
                    self.flush_tally();
                }
                Err(GetError::Closed) => return,
                Err(e) => {
                    tracing::error!(error = %e, "get failed");
                    return;
                }
            }
        }
    }

    /// Adds this thread's messages and bytes since the last call to the totals.
    fn flush_tally(&self) {
        let (messages, bytes) = TALLY.take();
        if messages > 0 {
            self.stats.messages.fetch_add(messages, Ordering::Relaxed);
            self.stats.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    fn handle(self: &Arc<Self>, mut p: Completion<Op>) {
        match std::mem::replace(&mut p.context, Op::Accept) {
            Op::Accept => self.accepted(p),
            Op::Readable(conn) => self.readable(conn, p),
            Op::Recv(conn) => self.received(conn, p),
            Op::Send(conn) => self.sent(conn, p),
        }
    }

    /// Starts an accept for which a slot was taken ([`Slots::take_or_park`]).
    fn arm_accept(&self) {
        let refused = match lock(&self.listener).as_ref() {
            Some(listener) => listener.accept(Op::Accept).err().map(|e| e.error),
            None => None,
        };
        if let Some(e) = refused {
            // Closing (or a refused submission): give the slot back, park the accept.
            tracing::debug!(error = %e, "accept not armed");
            let mut slots = lock(&self.slots);
            slots.armed -= 1;
            slots.parked += 1;
        }
    }

    fn accepted(self: &Arc<Self>, mut p: Completion<Op>) {
        if p.is_cancelled() {
            return; // shutting down
        }
        let stream = p.take_stream();
        let rearm = {
            let mut slots = lock(&self.slots);
            slots.armed -= 1;
            match &p.result {
                Err(e) if short_of_resources(e) => {
                    // Retrying at once would fail again at once: park the accepts until a
                    // connection closes or a tick retries. One warning per episode, at most
                    // one per WARN_EVERY: an accept that completed just before the shortage
                    // can end the starved state between two failures of one episode.
                    let quiet = slots.warned.is_some_and(|t| t.elapsed() < WARN_EVERY);
                    slots.starved = true;
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    if !quiet {
                        slots.warned = Some(Instant::now());
                        tracing::warn!(
                            "accept failed: {}; accepts paused until a connection closes ({} open)",
                            limits::explain(e),
                            slots.open
                        );
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "accept failed");
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                }
                Ok(_) => {
                    slots.open += usize::from(stream.is_some());
                    if std::mem::take(&mut slots.starved) {
                        tracing::info!(open = slots.open, "accepting again");
                    }
                }
            }
            slots.take_or_park(self.max_connections)
        };
        if rearm {
            self.arm_accept();
        }
        let Some(stream) = stream else { return };
        let _ = stream.set_nodelay(true);
        self.stats.connections.fetch_add(1, Ordering::Relaxed);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) as usize;
        let handle = match self.port.associate(stream, id) {
            Ok(h) => h,
            Err(e) => {
                tracing::debug!(error = %e, "cannot associate a connection");
                self.connection_closed(id);
                return;
            }
        };
        let conn = Arc::new(Conn {
            id,
            handle,
            server: Arc::clone(self),
            last_active: AtomicU64::new(self.now_ms()),
            closing: AtomicBool::new(false),
        });
        if self.idle_timeout.is_some() {
            lock(&self.conns).insert(id, Arc::downgrade(&conn));
        }
        // A new client may stay silent: it holds no buffer until it sends (N6).
        self.wait_readable(conn);
    }

    /// Starts a zero-byte receive: completes when the connection is readable.
    fn wait_readable(&self, conn: Arc<Conn>) {
        if conn.closing.load(Ordering::Acquire) {
            return; // closed for idleness: dropping `conn` closes it
        }
        let c2 = Arc::clone(&conn);
        if let Err(e) = conn.handle.recv(Vec::new(), Op::Readable(c2)) {
            tracing::debug!(error = %e.error, "zero-byte receive refused");
        }
    }

    /// The connection is readable: take what is there at once (data, end of stream, an
    /// error), with a buffer allocated only now.
    fn readable(&self, conn: Arc<Conn>, p: Completion<Op>) {
        if let Err(e) = p.result() {
            return self.failed(e, p.is_cancelled() || conn.closing.load(Ordering::Acquire));
        }
        if conn.closing.load(Ordering::Acquire) {
            return;
        }
        let c2 = Arc::clone(&conn);
        match conn.handle.recv_eager(Vec::with_capacity(self.buffer_size), Op::Recv(c2)) {
            Ok(Started::Done(done)) => self.received(conn, done),
            Ok(Started::Pending(_)) => {} // the data went away meanwhile: a plain receive waits
            Err(e) => tracing::debug!(error = %e.error, "receive refused"),
        }
    }

    /// Waits for the next message: with a buffer, or with a zero-byte receive.
    fn next_message(&self, conn: Arc<Conn>, buf: Vec<u8>) {
        if self.zero_byte_receive {
            drop(buf);
            self.wait_readable(conn);
        } else {
            self.recv(conn, buf);
        }
    }

    fn recv(&self, conn: Arc<Conn>, mut buf: Vec<u8>) {
        if conn.closing.load(Ordering::Acquire) {
            return; // closed for idleness: dropping `conn` closes it
        }
        buf.clear();
        let c2 = Arc::clone(&conn);
        if let Err(e) = conn.handle.recv(buf, Op::Recv(c2)) {
            tracing::debug!(error = %e.error, "receive refused");
        }
    }

    fn received(&self, conn: Arc<Conn>, p: Completion<Op>) {
        let cancelled = p.is_cancelled();
        match p.result {
            Ok(0) => {} // the peer's FIN: everything was echoed; dropping `conn` closes
            Ok(n) => {
                conn.touch();
                count_message(n);
                let buf = p.buffer.unwrap_or_default();
                self.send(conn, buf);
            }
            Err(e) => self.failed(&e, cancelled),
        }
    }

    fn send(&self, conn: Arc<Conn>, buf: Vec<u8>) {
        if conn.closing.load(Ordering::Acquire) {
            return;
        }
        if let Some(rounds) = self.eager {
            return self.echo_eagerly(conn, buf, rounds);
        }
        self.send_overlapped(conn, buf);
    }

    /// `--eager`: sends `buf` and, once the socket has taken it, receives the next
    /// message at once, for as long as each step completes immediately, at most
    /// `--eager-rounds` messages in a row. This is the loop of a readiness server that
    /// drains a socket until it would block: a client that answers at once (one on the
    /// same host, which the send woke on this CPU) is served again without a packet or a
    /// trip through the port. Each step is a `try_send` or `try_recv`: one non-blocking
    /// call on this buffer, with no operation, context or packet made for it. The first
    /// step that would block becomes an overlapped operation, as does the echo after the
    /// last round, so that one busy connection holds a worker for that many rounds at
    /// most.
    fn echo_eagerly(&self, conn: Arc<Conn>, mut buf: Vec<u8>, rounds: usize) {
        for _ in 0..rounds {
            let mut sent = 0;
            while sent < buf.len() {
                match conn.handle.try_send(&buf[sent..]) {
                    Ok(n) => {
                        conn.touch();
                        sent += n;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        buf.drain(..sent); // the rest goes the overlapped way
                        return self.send_overlapped(conn, buf);
                    }
                    Err(e) => return self.failed(&e, conn.closing.load(Ordering::Acquire)),
                }
            }
            if self.zero_byte_receive || conn.closing.load(Ordering::Acquire) {
                return self.next_message(conn, buf);
            }
            match conn.handle.try_recv(&mut buf) {
                Ok(0) => return, // the peer's FIN: everything was echoed; dropping `conn` closes
                Ok(n) => {
                    conn.touch();
                    count_message(n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return self.recv(conn, buf),
                Err(e) => return self.failed(&e, conn.closing.load(Ordering::Acquire)),
            }
        }
        // Enough rounds in a row: the echo of the last message goes through the port.
        self.send_overlapped(conn, buf);
    }

    fn send_overlapped(&self, conn: Arc<Conn>, buf: Vec<u8>) {
        let c2 = Arc::clone(&conn);
        if let Err(e) = conn.handle.send(buf, Op::Send(c2)) {
            tracing::debug!(error = %e.error, "send refused");
        }
    }

    fn sent(&self, conn: Arc<Conn>, p: Completion<Op>) {
        let cancelled = p.is_cancelled();
        let mut buf = p.buffer.unwrap_or_default();
        match p.result {
            Ok(n) if n < buf.len() => {
                conn.touch();
                buf.drain(..n); // a partial send: send the rest first
                self.send(conn, buf);
            }
            Ok(_) => {
                conn.touch();
                self.next_message(conn, buf);
            }
            Err(e) => self.failed(&e, cancelled),
        }
    }

    fn failed(&self, e: &std::io::Error, cancelled: bool) {
        if !cancelled {
            tracing::debug!(error = %e, "connection error");
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Connection `id` closed: its slot is free. A parked accept gets it (descriptors
    /// may be free again, too).
    fn connection_closed(&self, id: usize) {
        if self.idle_timeout.is_some() {
            lock(&self.conns).remove(&id);
        }
        let rearm = {
            let mut slots = lock(&self.slots);
            slots.open = slots.open.saturating_sub(1);
            slots.unpark(self.max_connections)
        };
        if rearm {
            self.arm_accept();
        }
    }
}

/// Whether a failed accept says the process ran short of descriptors or memory, which
/// retrying at once cannot fix.
fn short_of_resources(e: &std::io::Error) -> bool {
    limits::out_of_descriptors(e) || matches!(e.raw_os_error(), Some(libc::ENOBUFS | libc::ENOMEM))
}

/// CPU time (user + system) this process has used so far, in seconds, from
/// `/proc/self/stat`; 0 where it cannot be read.
pub fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { return 0.0 };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after ')'.
    let ticks: u64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<u64>().ok()).sum();
    ticks as f64 / rustix::param::clock_ticks_per_second() as f64
}
