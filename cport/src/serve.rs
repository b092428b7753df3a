//! `cport serve`: the seeds' NetworkSystem, an echo server on one completion port.
//!
//! One port, one pool of worker threads, never a thread per connection. A connection has
//! at most one operation in flight at any moment, so its state travels in the operation's
//! context and needs no lock:
//!
//! ```text
//! accept ──► recv ──Ok(n)──► send (rest, if partial) ──all sent──► recv ...
//!              └─Ok(0) (peer's FIN) / error ──► close
//! ```
//!
//! Because the next receive is issued only once the echo is fully sent, a client that
//! never reads stops its own connection: memory per connection is one buffer. A graceful
//! close is honoured after everything received has been echoed. SIGINT/SIGTERM stop the
//! server: stop accepting, cancel, drain, print a summary, exit 0.

use completion_port::{Completion, CompletionPort, GetError, Handle, Started};
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

/// Options of `cport serve`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7000")]
    addr: SocketAddr,
    /// Worker threads waiting on the port (default: logical CPUs).
    #[arg(long)]
    workers: Option<usize>,
    /// Most workers running at once, the port's concurrency value (0: logical CPUs).
    #[arg(long, default_value_t = 0)]
    concurrency: usize,
    /// Most connections open at once; further clients wait in the listen backlog.
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    /// Receive buffer per connection, in bytes.
    #[arg(long, default_value_t = 16 * 1024, value_parser = clap::value_parser!(u32).range(1..=(64 << 20)))]
    buffer_size: u32,
    /// Accepts kept in flight on the listener.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=4096))]
    accepts: u16,
    /// Send each echo eagerly: directly, when the socket can take it at once, without a
    /// packet (skip-on-success). Off by default: measured on this machine, it helps one
    /// connection at a time but costs a system call per message that the port otherwise
    /// batches into its wait call when many connections are busy (docs/benchmarks.md).
    #[arg(long)]
    eager: bool,
}

/// The completion key of the listener; connections use their id (from 1).
const LISTENER: usize = 0;

/// The per-operation context: the safe `OVERLAPPED_PLUS`.
enum Op {
    Accept,
    Recv(Arc<Conn>),
    Send(Arc<Conn>),
}

/// One client connection. Dropped (and its socket closed) when its last operation's
/// context is dropped.
struct Conn {
    handle: Handle<Op>,
    server: Arc<Server>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.server.connection_closed();
    }
}

/// State shared by the workers.
struct Server {
    port: CompletionPort<Op>,
    listener: Mutex<Option<Handle<Op>>>,
    max_connections: usize,
    buffer_size: usize,
    eager: bool,
    /// Open connections, and accepts not re-armed because `max_connections` was reached.
    slots: Mutex<Slots>,
    next_id: AtomicU64,
    stats: Stats,
}

#[derive(Default)]
struct Slots {
    open: usize,
    parked_accepts: usize,
}

#[derive(Default)]
struct Stats {
    connections: AtomicU64,
    messages: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
}

/// Runs the server until SIGINT or SIGTERM.
pub fn run(args: Args) -> Result<ExitCode, String> {
    let workers = args.workers.unwrap_or_else(|| thread::available_parallelism().map_or(1, |n| n.get()));
    if workers == 0 {
        return Err("--workers must be at least 1".into());
    }
    let listener =
        TcpListener::bind(args.addr).map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
    let local = listener.local_addr().map_err(|e| format!("cannot read the listening address: {e}"))?;
    let mut signals =
        signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM])
            .map_err(|e| format!("cannot install signal handlers: {e}"))?;

    let port = CompletionPort::new(args.concurrency);
    let listener =
        port.associate(listener, LISTENER).map_err(|e| format!("cannot associate the listener: {e}"))?;
    let server = Arc::new(Server {
        port: port.clone(),
        listener: Mutex::new(Some(listener)),
        max_connections: args.max_connections.max(1),
        buffer_size: args.buffer_size as usize,
        eager: args.eager,
        slots: Mutex::new(Slots::default()),
        next_id: AtomicU64::new(1),
        stats: Stats::default(),
    });
    for _ in 0..args.accepts {
        server.arm_accept();
    }
    let threads: Vec<_> = (0..workers)
        .map(|i| {
            let server = Arc::clone(&server);
            thread::Builder::new()
                .name(format!("cport-serve-{i}"))
                .spawn(move || server.worker())
                .map_err(|e| format!("cannot start a worker thread: {e}"))
        })
        .collect::<Result<_, _>>()?;
    eprintln!(
        "cport serve: listening on {local} with {workers} workers (concurrency {})",
        port.concurrency()
    );
    let started = Instant::now();

    // Wait for SIGINT/SIGTERM, then: stop accepting, cancel, drain.
    let signal = signals.forever().next();
    tracing::info!(?signal, "shutting down");
    port.close(); // cancels every accept, receive and send in flight
    for t in threads {
        if t.join().is_err() {
            tracing::error!("a worker panicked");
        }
    }
    let leftover = port.drain(); // their packets: contexts dropped here, sockets closed
    let cancelled = leftover.len();
    drop(leftover);
    server.listener.lock().map(|mut l| l.take()).ok();

    let s = &server.stats;
    let cpu = cpu_seconds();
    let messages = s.messages.load(Ordering::Relaxed);
    println!(
        "cport serve: {} connections, {} messages, {} bytes echoed, {} errors, {} operations cancelled at shutdown, {:.1}s, cpu {:.2}s{}",
        s.connections.load(Ordering::Relaxed),
        messages,
        s.bytes.load(Ordering::Relaxed),
        s.errors.load(Ordering::Relaxed),
        cancelled,
        started.elapsed().as_secs_f64(),
        cpu,
        if messages > 0 { format!(" ({:.2} us/msg)", cpu * 1e6 / messages as f64) } else { String::new() },
    );
    Ok(ExitCode::SUCCESS)
}

impl Server {
    fn worker(self: &Arc<Self>) {
        let mut batch = Vec::with_capacity(64);
        loop {
            batch.clear();
            match self.port.get_many_into(&mut batch, 64, None) {
                Ok(_) => {
                    // The operations this batch starts go to the kernel in one system call,
                    // when the section ends (nothing in it waits for them).
                    self.port.batch(|| {
                        for packet in batch.drain(..) {
                            self.handle(packet);
                        }
                    });
                }
                Err(GetError::Closed) => return,
                Err(e) => {
                    tracing::error!(error = %e, "get failed");
                    return;
                }
            }
        }
    }

    fn handle(self: &Arc<Self>, mut p: Completion<Op>) {
        match std::mem::replace(&mut p.context, Op::Accept) {
            Op::Accept => self.accepted(p),
            Op::Recv(conn) => self.received(conn, p),
            Op::Send(conn) => self.sent(conn, p),
        }
    }

    fn arm_accept(&self) {
        if let Ok(guard) = self.listener.lock() {
            if let Some(listener) = guard.as_ref() {
                if let Err(e) = listener.accept(Op::Accept) {
                    tracing::debug!(error = %e.error, "accept not armed");
                }
            }
        }
    }

    fn accepted(self: &Arc<Self>, mut p: Completion<Op>) {
        if p.is_cancelled() {
            return; // shutting down
        }
        let stream = p.take_stream();
        if let Err(e) = &p.result {
            // EMFILE and friends: count it, keep accepting.
            tracing::warn!(error = %e, "accept failed");
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
        }
        // Keep the accept armed unless the connection limit is reached.
        let rearm = {
            let mut slots = self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            slots.open += usize::from(stream.is_some());
            let rearm = slots.open < self.max_connections;
            if !rearm {
                slots.parked_accepts += 1;
            }
            rearm
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
                self.connection_closed();
                return;
            }
        };
        let conn = Arc::new(Conn { handle, server: Arc::clone(self) });
        self.recv(conn, Vec::with_capacity(self.buffer_size));
    }

    fn recv(&self, conn: Arc<Conn>, mut buf: Vec<u8>) {
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
                self.stats.messages.fetch_add(1, Ordering::Relaxed);
                self.stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
                let buf = p.buffer.unwrap_or_default();
                self.send(conn, buf);
            }
            Err(e) => self.failed(&e, cancelled),
        }
    }

    fn send(&self, conn: Arc<Conn>, buf: Vec<u8>) {
        let c2 = Arc::clone(&conn);
        if !self.eager {
            if let Err(e) = conn.handle.send(buf, Op::Send(c2)) {
                tracing::debug!(error = %e.error, "send refused");
            }
            return;
        }
        // Usually the socket takes the echo at once: then no packet is queued, and the
        // completion is handled right here.
        match conn.handle.send_eager(buf, Op::Send(c2)) {
            Ok(Started::Done(done)) => self.handle_done(done),
            Ok(Started::Pending(_)) => {}
            Err(e) => tracing::debug!(error = %e.error, "send refused"),
        }
    }

    fn handle_done(&self, mut p: Completion<Op>) {
        if let Op::Send(conn) = std::mem::replace(&mut p.context, Op::Accept) {
            self.sent(conn, p);
        }
    }

    fn sent(&self, conn: Arc<Conn>, p: Completion<Op>) {
        let cancelled = p.is_cancelled();
        let mut buf = p.buffer.unwrap_or_default();
        match p.result {
            Ok(n) if n < buf.len() => {
                buf.drain(..n); // a partial send: send the rest first
                self.send(conn, buf);
            }
            Ok(_) => self.recv(conn, buf),
            Err(e) => self.failed(&e, cancelled),
        }
    }

    fn failed(&self, e: &std::io::Error, cancelled: bool) {
        if !cancelled {
            tracing::debug!(error = %e, "connection error");
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn connection_closed(&self) {
        // A connection slot is free: re-arm an accept parked at the limit.
        let rearm = {
            let mut slots = self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            slots.open = slots.open.saturating_sub(1);
            let rearm = slots.parked_accepts > 0;
            slots.parked_accepts -= usize::from(rearm);
            rearm
        };
        if rearm {
            self.arm_accept();
        }
    }
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
