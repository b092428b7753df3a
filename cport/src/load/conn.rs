//! One connection of the load generator: what it has sent, what it expects back, and what
//! each packet from the port does to it.
//!
//! Per connection at most one send and one receive are in flight. Messages are queued
//! whole into `out`; when no send is in flight, `out` is swapped with the spare buffer and
//! sent. The echo is a byte stream in any chunking: `recv_seq`/`recv_off` say which byte of
//! which message comes next, and every byte is compared with [`pattern`].

use super::pattern;
use completion_port::{Completion, CompletionPort, Handle, Started, SubmitError};
use hdrhistogram::Histogram;
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// Most echoes of one connection taken in a row without the port (see `Shared::on_recv`).
const EAGER_ROUNDS: usize = 16;
/// `--affine`: echoes after which a connection first looks where its replies arrive.
const AFFINE_FIRST: u64 = 1000;
/// `--affine`: echoes between later looks (a server thread may move).
const AFFINE_EVERY: u64 = 4096;

/// What a packet is for. Operation packets carry the connection index as their key (the
/// handle's key); pacing packets are posted with the same key.
#[derive(Debug)]
pub enum Ctx {
    /// A send of queued messages completed.
    Send,
    /// A receive of echoed bytes completed.
    Recv,
    /// Open loop: one message of this connection became due at this instant.
    Pace(Instant),
    /// `--affine`: the connection moved to this port; its worker sends and receives next.
    Resume,
}

/// Locks a mutex, ignoring poisoning: a panicked worker is reported at join; the counters
/// it left are still the best information there is.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One client connection.
pub struct Conn {
    /// Index of the connection; seeds its message bytes and is its handles' key.
    index: u64,
    /// The connection's handle on each port, by port (`None`: not associated there).
    /// Without `--affine` only its home port has one.
    handles: Vec<Option<Handle<Ctx>>>,
    state: Mutex<State>,
}

/// `--affine`: the ports, and the CPU each one's worker is pinned to.
pub struct Affinity {
    pub ports: Vec<CompletionPort<Ctx>>,
    pub cpus: Vec<usize>,
}

/// The state of a connection. Guarded by `Conn::state`; every packet of the connection
/// takes the lock for the whole of its handling.
struct State {
    /// Whole messages queued and not yet handed to a send.
    out: Vec<u8>,
    /// The send buffer while no send is in flight. Invariant: `None` exactly while one
    /// send (which owns that buffer) is in flight.
    spare: Option<Vec<u8>>,
    /// Sequence number of the next message to queue.
    next_seq: u64,
    /// Start times of messages queued or sent and not yet fully echoed, oldest first:
    /// when it was queued (closed loop) or when it was due (open loop).
    in_flight: VecDeque<Instant>,
    /// Open loop: due times of messages held back because `pipeline` were in flight.
    backlog: VecDeque<Instant>,
    /// Sequence number and offset of the next byte expected from the server.
    recv_seq: u64,
    recv_off: usize,
    /// The bytes of message `recv_seq`, generated when its first byte arrives.
    expected: Vec<u8>,
    /// The connection failed (mismatch, error, end of stream): it sends and receives no more.
    failed: bool,
    /// The port whose handle its operations use.
    home: usize,
    /// `--affine`: the message count at which it next looks where its replies arrive.
    next_look: u64,
}

/// Errors seen by all connections.
#[derive(Debug, Default)]
pub struct Errors {
    /// Connections whose echo differed from what was sent.
    pub mismatches: u64,
    /// Connections that failed otherwise (reset, closed by the server, send error).
    pub connection: u64,
    /// The first error, for the final message.
    pub first: Option<String>,
}

/// What every worker shares: the connections, the plan and the counters.
pub struct Shared {
    /// The connections; index = key.
    pub conns: Vec<Conn>,
    /// Message size in bytes.
    pub size: usize,
    /// Most messages in flight per connection.
    pub pipeline: usize,
    /// Open loop: messages are queued by pacing packets, not by echoes.
    pub open_loop: bool,
    /// Capacity of each receive buffer.
    pub recv_capacity: usize,
    /// The run is over: no more messages are queued.
    pub stopping: AtomicBool,
    /// The port is being closed: cancelled operations and refused submissions are expected.
    pub closing: AtomicBool,
    /// Messages echoed completely and correctly (for the progress bar).
    pub messages: AtomicU64,
    /// Connections that have failed (the run ends early when all have).
    pub failed: AtomicUsize,
    /// Errors so far.
    pub errors: Mutex<Errors>,
    /// `--affine`: where connections may move.
    pub affinity: Option<Affinity>,
    /// `--affine`: moves made.
    pub moved: AtomicU64,
}

impl State {
    /// A fresh connection's state: nothing sent, nothing received.
    fn new(home: usize) -> Self {
        State {
            home,
            next_look: AFFINE_FIRST,
            out: Vec::new(),
            spare: Some(Vec::new()),
            next_seq: 0,
            in_flight: VecDeque::new(),
            backlog: VecDeque::new(),
            recv_seq: 0,
            recv_off: 0,
            expected: Vec::new(),
            failed: false,
        }
    }
}

impl Conn {
    /// A connection whose packets carry key `index`.
    pub fn new(index: usize, handles: Vec<Option<Handle<Ctx>>>, home: usize) -> Self {
        Self { index: index as u64, handles, state: Mutex::new(State::new(home)) }
    }

    /// The handle of the connection's current port.
    fn handle(&self, st: &State) -> &Handle<Ctx> {
        match self.handles.get(st.home) {
            Some(Some(h)) => h,
            _ => unreachable!("a connection's home port always has its handle"),
        }
    }

    /// Messages sent (or queued) and not yet echoed; 0 once the connection failed.
    pub fn outstanding(&self) -> usize {
        lock(&self.state).in_flight.len()
    }

    /// Open loop: messages due but not yet sent.
    pub fn backlog(&self) -> usize {
        lock(&self.state).backlog.len()
    }
}

impl State {
    /// Appends the next message to `out`.
    fn queue(&mut self, conn: u64, size: usize, start: Instant) {
        pattern::append(conn, self.next_seq, size, &mut self.out);
        self.next_seq += 1;
        self.in_flight.push_back(start);
    }

    /// Checks `data` against the messages expected next; records the latency of each
    /// message it completes. Returns how many it completed, or what differed.
    fn check(
        &mut self,
        conn: u64,
        size: usize,
        mut data: &[u8],
        hist: &mut Histogram<u64>,
    ) -> Result<u64, String> {
        let now = Instant::now();
        let mut completed = 0;
        while !data.is_empty() {
            let Some(&start) = self.in_flight.front() else {
                return Err(format!("{} unexpected bytes after message {}", data.len(), self.recv_seq));
            };
            if self.recv_off == 0 {
                self.expected.clear();
                pattern::append(conn, self.recv_seq, size, &mut self.expected);
            }
            let k = (size - self.recv_off).min(data.len());
            let want = &self.expected[self.recv_off..self.recv_off + k];
            if let Some(i) = want.iter().zip(data).position(|(a, b)| a != b) {
                return Err(format!(
                    "message {} byte {}: expected {:#04x}, got {:#04x}",
                    self.recv_seq,
                    self.recv_off + i,
                    want[i],
                    data[i]
                ));
            }
            self.recv_off += k;
            data = &data[k..];
            if self.recv_off == size {
                self.recv_off = 0;
                self.recv_seq += 1;
                self.in_flight.pop_front();
                let micros = now.saturating_duration_since(start).as_micros();
                hist.saturating_record(u64::try_from(micros).unwrap_or(u64::MAX));
                completed += 1;
            }
        }
        Ok(completed)
    }
}

impl Shared {
    /// Queues the first messages of `conn` (closed loop) and starts its receive.
    pub fn start(&self, conn: &Conn) {
        let mut st = lock(&conn.state);
        self.refill(conn, &mut st);
        self.kick_send(conn, &mut st);
        let buf = Vec::with_capacity(self.recv_capacity);
        if let Err(e) = conn.handle(&st).recv(buf, Ctx::Recv) {
            self.refused(conn, &mut st, "recv", e);
        }
    }

    /// Runs one packet from the port.
    pub fn handle(&self, packet: Completion<Ctx>, hist: &mut Histogram<u64>) {
        let (key, result, ctx, buffer) = packet.into_parts();
        let Some(conn) = self.conns.get(key) else {
            tracing::warn!(key, "a packet for no connection");
            return;
        };
        let mut st = lock(&conn.state);
        match ctx {
            Ctx::Pace(due) => self.on_pace(conn, &mut st, due),
            Ctx::Resume => self.on_resume(conn, &mut st),
            Ctx::Send => self.on_send(conn, &mut st, result, buffer.unwrap_or_default()),
            Ctx::Recv => self.on_recv(conn, &mut st, result, buffer.unwrap_or_default(), hist),
        }
    }

    /// `--affine`: the connection arrived on this port (between two echoes, nothing in
    /// flight): it sends what is due and receives, from here on.
    fn on_resume(&self, conn: &Conn, st: &mut State) {
        if st.failed || self.closing.load(Ordering::Acquire) {
            return;
        }
        self.kick_send(conn, st);
        let buf = Vec::with_capacity(self.recv_capacity);
        if let Err(e) = conn.handle(st).recv(buf, Ctx::Recv) {
            self.refused(conn, st, "recv", e);
        }
    }

    /// `--affine`: between two echoes, with nothing in flight, moves the connection to
    /// the port whose worker runs on the CPU its replies arrive on, if that is another.
    /// Returns whether it moved (its new port's worker then carries on).
    fn moved(&self, conn: &Conn, st: &mut State) -> bool {
        let Some(a) = &self.affinity else { return false };
        if st.recv_seq < st.next_look || st.spare.is_none() || st.recv_off != 0 {
            return false;
        }
        st.next_look = st.recv_seq + AFFINE_EVERY;
        let Ok(cpu) = rustix::net::sockopt::socket_incoming_cpu(conn.handle(st)) else { return false };
        let Some(q) = a.cpus.iter().position(|&c| c == cpu as usize) else { return false };
        if q == st.home {
            return false;
        }
        // Its new worker takes the packet only once this thread lets go of the state.
        if a.ports[q].post(conn.index as usize, 0, Ctx::Resume).is_err() {
            // Closing: the connection stays where it was.
            return false;
        }
        st.home = q;
        self.moved.fetch_add(1, Ordering::Relaxed);
        true
    }

    fn on_pace(&self, conn: &Conn, st: &mut State, due: Instant) {
        if st.failed {
            return;
        }
        st.backlog.push_back(due);
        self.refill(conn, st);
        self.kick_send(conn, st);
    }

    fn on_send(&self, conn: &Conn, st: &mut State, result: io::Result<usize>, mut buf: Vec<u8>) {
        match result {
            Ok(n) if n > 0 && n < buf.len() => {
                // A partial send: the rest goes in the same buffer, still one send in flight.
                buf.drain(..n);
                if let Err(e) = conn.handle(st).send(buf, Ctx::Send) {
                    self.refused(conn, st, "send", e);
                }
            }
            Ok(n) if n > 0 && n == buf.len() => {
                buf.clear();
                st.spare = Some(buf);
                self.kick_send(conn, st);
            }
            Ok(n) => self.fail(conn, st, false, format!("send of {} bytes completed with {n}", buf.len())),
            Err(e) => {
                if !self.closing.load(Ordering::Acquire) {
                    self.fail(conn, st, false, format!("send: {e}"));
                }
            }
        }
    }

    /// An echo arrived: checks it, sends what is due, and receives again. While the
    /// next echo is already there (a server on the same host that the send woke on this
    /// CPU answers at once), it is taken at once, without a packet (skip-on-success), at
    /// most [`EAGER_ROUNDS`] in a row before the port takes over again.
    fn on_recv(
        &self,
        conn: &Conn,
        st: &mut State,
        mut result: io::Result<usize>,
        mut buf: Vec<u8>,
        hist: &mut Histogram<u64>,
    ) {
        for round in 1.. {
            if st.failed || self.closing.load(Ordering::Acquire) {
                return;
            }
            let n = match result {
                Err(e) => return self.fail(conn, st, false, format!("recv: {e}")),
                Ok(0) if self.stopping.load(Ordering::Acquire) && st.in_flight.is_empty() => return,
                Ok(0) => return self.fail(conn, st, false, "the server closed the connection".into()),
                Ok(n) => n,
            };
            match st.check(conn.index, self.size, &buf[..n.min(buf.len())], hist) {
                Ok(done) => {
                    self.messages.fetch_add(done, Ordering::Relaxed);
                }
                Err(msg) => return self.fail(conn, st, true, msg),
            }
            self.refill(conn, st);
            if self.moved(conn, st) {
                return;
            }
            self.kick_send(conn, st);
            buf.clear();
            if round == EAGER_ROUNDS {
                if let Err(e) = conn.handle(st).recv(buf, Ctx::Recv) {
                    self.refused(conn, st, "recv", e);
                }
                return;
            }
            match conn.handle(st).recv_eager(buf, Ctx::Recv) {
                Ok(Started::Done(done)) => {
                    let (_, r, _, b) = done.into_parts();
                    (result, buf) = (r, b.unwrap_or_default());
                }
                Ok(Started::Pending(_)) => return,
                Err(e) => return self.refused(conn, st, "recv", e),
            }
        }
    }

    /// Until the run stops, queues messages while fewer than `pipeline` are in flight: new
    /// ones (closed loop) or ones already due (open loop, latency counted from when they
    /// were due).
    fn refill(&self, conn: &Conn, st: &mut State) {
        if st.failed || self.stopping.load(Ordering::Acquire) {
            return;
        }
        while st.in_flight.len() < self.pipeline {
            let start = if self.open_loop {
                match st.backlog.pop_front() {
                    Some(due) => due,
                    None => break,
                }
            } else {
                Instant::now()
            };
            st.queue(conn.index, self.size, start);
        }
    }

    /// Starts a send of everything queued, unless one is in flight.
    fn kick_send(&self, conn: &Conn, st: &mut State) {
        if st.failed || st.out.is_empty() {
            return;
        }
        let Some(mut buf) = st.spare.take() else { return };
        std::mem::swap(&mut buf, &mut st.out);
        // Usually the socket takes it at once: then it completes here, without a packet
        // (skip-on-success); else the port delivers its packet later.
        match conn.handle(st).send_eager(buf, Ctx::Send) {
            Ok(Started::Done(done)) => {
                let (_, result, _, buffer) = done.into_parts();
                self.on_send(conn, st, result, buffer.unwrap_or_default());
            }
            Ok(Started::Pending(_)) => {}
            Err(e) => self.refused(conn, st, "send", e),
        }
    }

    /// A submission was refused: expected while closing, a failure otherwise.
    fn refused(&self, conn: &Conn, st: &mut State, what: &str, e: SubmitError<Ctx>) {
        if !self.closing.load(Ordering::Acquire) {
            self.fail(conn, st, false, format!("{what}: {}", e.error));
        }
    }

    /// Marks the connection failed and records why.
    fn fail(&self, conn: &Conn, st: &mut State, mismatch: bool, msg: String) {
        if st.failed {
            return;
        }
        st.failed = true;
        self.failed.fetch_add(1, Ordering::Relaxed);
        st.in_flight.clear();
        st.backlog.clear();
        tracing::debug!(conn = conn.index, %msg, "connection failed");
        let mut errors = lock(&self.errors);
        if mismatch {
            errors.mismatches += 1;
        } else {
            errors.connection += 1;
        }
        errors.first.get_or_insert_with(|| format!("connection {}: {msg}", conn.index));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State::new(0)
    }

    fn histogram() -> Histogram<u64> {
        Histogram::new_with_bounds(1, 1_000_000, 3).unwrap()
    }

    // The echo is a stream: chunks that split and join messages anywhere are checked in
    // order, and each message completes once its last byte arrives.
    #[test]
    fn check_accepts_any_chunking() {
        let (mut st, mut hist) = (state(), histogram());
        for _ in 0..3 {
            st.queue(5, 10, Instant::now());
        }
        let sent = st.out.clone();
        assert_eq!(sent.len(), 30);
        let mut done = 0;
        for chunk in [&sent[..1], &sent[1..17], &sent[17..20], &sent[20..]] {
            done += st.check(5, 10, chunk, &mut hist).unwrap();
        }
        assert_eq!((done, hist.len(), st.in_flight.len()), (3, 3, 0));
    }

    // A changed byte is reported with its message and offset; bytes nobody sent are too.
    #[test]
    fn check_reports_the_first_wrong_byte_and_extra_bytes() {
        let (mut st, mut hist) = (state(), histogram());
        st.queue(1, 8, Instant::now());
        st.queue(1, 8, Instant::now());
        let mut echo = st.out.clone();
        echo[11] ^= 1;
        let err = st.check(1, 8, &echo, &mut hist).unwrap_err();
        assert!(err.starts_with("message 1 byte 3: expected"), "{err}");

        let (mut st, mut hist) = (state(), histogram());
        st.queue(1, 8, Instant::now());
        let mut echo = st.out.clone();
        echo.push(0);
        let err = st.check(1, 8, &echo, &mut hist).unwrap_err();
        assert_eq!(err, "1 unexpected bytes after message 1");
    }
}
