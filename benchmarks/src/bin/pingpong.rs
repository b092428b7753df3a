//! A 64-byte TCP ping-pong over one connection on 127.0.0.1: a `CompletionPort` on each
//! side, against a minimal loop written directly on the `io-uring` crate, in the same run.
//!
//! Both implementations follow one protocol, so they make the same requests:
//!
//! * the client submits a receive and a send of `--size` bytes together and waits for
//!   both completions (topping up a short receive), which is one round trip;
//! * the echo side receives, then submits the echo (send) and the next receive together
//!   and waits for both; a receive of 0 bytes (the client closed) ends it.
//!
//! Each side is one thread. Variants, run in turn (A B A B ...) for `--rounds` rounds:
//!
//! * `port`: one port per side (concurrency 1); each pair is submitted inside
//!   `port.batch`, completions are reaped with `get_many_into`;
//! * `port-nobatch`: the same without `batch`: a thread running on its port defers its
//!   submissions to its next `get`, which submits and waits in one system call;
//! * `raw`: one ring per side (default setup flags, as the port's ring), `push` both SQEs,
//!   `submit_and_wait(1)`, reap the CQ, until both completions are in;
//! * `raw-dt`: the same ring set up with `SINGLE_ISSUER | DEFER_TASKRUN | COOP_TASKRUN`,
//!   to show what those flags are worth on this machine;
//! * `raw-ms`: the client of `raw`; the echo side arms one multishot receive
//!   (`RecvMulti`) on a ring of provided buffers (`register_buf_ring`) and sends each
//!   message from the buffer it arrived in, giving the buffer back when the send
//!   completes: no receive SQE and no new poll per message, to show what a multishot
//!   receive would save the port's receives.
//!
//! Prints round trips per second for every round, the medians and the ratios port/raw.

// The raw io_uring baselines need `unsafe` for `SubmissionQueue::push` and, in `raw-ms`,
// for the provided-buffer ring the kernel shares; allowed on those blocks only.
#![deny(unsafe_code)]

use benchmarks::{connected_pair, cpu_table, ratio, table, thread_cpu_ns, Series};
use clap::Parser;
use completion_port::{Completion, CompletionPort, Handle};
use io_uring::{opcode, squeue, types, IoUring};
use std::io::{self, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::thread;
use std::time::{Duration, Instant};

/// Command-line flags.
#[derive(Parser, Debug)]
#[command(about = "64-byte TCP ping-pong on 127.0.0.1: completion-port vs raw io_uring")]
struct Args {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Rounds per variant (medians are taken over these).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Message size in bytes.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Variants to run, in this order within each round.
    #[arg(long, value_delimiter = ',', default_value = "port,port-nobatch,raw,raw-dt")]
    variants: Vec<Variant>,
}

/// What one measurement runs.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    /// A port per side, pairs submitted in `port.batch`.
    Port,
    /// A port per side, submissions deferred to the next `get`.
    PortNobatch,
    /// A plain io_uring per side.
    Raw,
    /// An io_uring per side with SINGLE_ISSUER | DEFER_TASKRUN | COOP_TASKRUN.
    RawDt,
    /// The raw client; an echo side with one multishot receive on provided buffers.
    RawMs,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Port => "port",
            Variant::PortNobatch => "port-nobatch",
            Variant::Raw => "raw",
            Variant::RawDt => "raw-dt",
            Variant::RawMs => "raw-ms",
        }
    }
}

fn main() -> io::Result<()> {
    let args = Args::parse();
    if args.rounds == 0 || args.seconds <= 0.0 || args.size == 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "rounds, seconds, size must be > 0"));
    }
    let dur = Duration::from_secs_f64(args.seconds);
    println!(
        "pingpong: 127.0.0.1 TCP (NODELAY), size={} bytes, seconds={}, rounds={}",
        args.size, args.seconds, args.rounds
    );
    let mut series: Vec<Series> = args.variants.iter().map(|v| Series::new(v.name())).collect();
    for round in 1..=args.rounds {
        for (i, &v) in args.variants.iter().enumerate() {
            let m = run(v, args.size, dur)?;
            println!(
                "  round={round} {:<13} {:>8.0} round trips/s ({} round trips, {:.0} ns CPU/round trip)",
                v.name(),
                m.rate,
                m.trips,
                m.cpu_ns_per_trip
            );
            io::stdout().flush()?;
            series[i].values.push(m.rate);
            series[i].cpu.push(m.cpu_ns_per_trip);
        }
    }
    println!();
    print!("{}", table("pingpong", "RT/s", &series));
    print!("{}", cpu_table("pingpong", &series));
    let find = |name: &str| series.iter().find(|s| s.name == name);
    println!("summary (ratios of medians; round trips/s, then round trips per CPU-second):");
    if let (Some(m), Some(b)) = (find("raw-ms"), find("raw")) {
        let r = ratio(m.median(), b.median());
        let c = ratio(b.cpu_median(), m.cpu_median());
        println!("  {:<26} {r:.3}  {c:.3}", "raw-ms/raw");
    }
    for port in ["port", "port-nobatch"] {
        for base in ["raw", "raw-dt"] {
            if let (Some(p), Some(b)) = (find(port), find(base)) {
                let r = ratio(p.median(), b.median());
                let c = ratio(b.cpu_median(), p.cpu_median());
                println!("  {:<26} {r:.3}  {c:.3}", format!("{port}/{base}"));
            }
        }
    }
    Ok(())
}

/// What one measurement found.
struct Measured {
    /// Round trips per second.
    rate: f64,
    /// Round trips completed.
    trips: u64,
    /// CPU time of both threads (user + system) per round trip.
    cpu_ns_per_trip: f64,
}

/// One measurement: the echo side on its own thread, the client on this one, each
/// measuring its own CPU time.
fn run(v: Variant, size: usize, dur: Duration) -> io::Result<Measured> {
    let (client, server) = connected_pair()?;
    let echo = thread::spawn(move || -> io::Result<(u64, u64)> {
        let cpu0 = thread_cpu_ns()?;
        let echoed = match v {
            Variant::Port | Variant::PortNobatch => port_echo(server, size, v == Variant::Port),
            Variant::Raw | Variant::RawDt => raw_echo(server, size, v == Variant::RawDt),
            Variant::RawMs => raw_ms_echo(server, size),
        }?;
        Ok((echoed, thread_cpu_ns()?.saturating_sub(cpu0)))
    });
    let cpu0 = thread_cpu_ns()?;
    let client_result = match v {
        Variant::Port | Variant::PortNobatch => port_client(client, size, dur, v == Variant::Port),
        Variant::Raw | Variant::RawDt | Variant::RawMs => raw_client(client, size, dur, v == Variant::RawDt),
    };
    let client_cpu = thread_cpu_ns()?.saturating_sub(cpu0);
    // The client has closed its socket (on success or error): the echo side sees 0 bytes.
    let (echoed, echo_cpu) = echo.join().map_err(|_| io::Error::other("echo thread panicked"))??;
    let (trips, elapsed) = client_result?;
    if echoed < trips {
        return Err(io::Error::other(format!("echo side saw {echoed} messages for {trips} round trips")));
    }
    Ok(Measured {
        rate: trips as f64 / elapsed.as_secs_f64(),
        trips,
        cpu_ns_per_trip: (client_cpu + echo_cpu) as f64 / trips as f64,
    })
}

// ---------------------------------------------------------------------------------------
// Through the port.

/// Which operation a packet completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Recv,
    Send,
}

/// The results of one wait: the receive's and the send's packets, if they came.
#[derive(Default)]
struct Reaped {
    recv: Option<Completion<Op>>,
    send: Option<Completion<Op>>,
}

/// Gets packets from `port` until `pending` have come; sorts them by operation.
fn reap_port(
    port: &CompletionPort<Op>,
    out: &mut Vec<Completion<Op>>,
    mut pending: usize,
) -> io::Result<Reaped> {
    let mut r = Reaped::default();
    while pending > 0 {
        out.clear();
        pending -= port.get_many_into(out, pending, None)?;
        for c in out.drain(..) {
            match c.context {
                Op::Recv => r.recv = Some(c),
                Op::Send => r.send = Some(c),
            }
        }
    }
    Ok(r)
}

/// Takes a packet's byte count and buffer, or its error.
fn take(c: Option<Completion<Op>>) -> io::Result<(usize, Vec<u8>)> {
    let c = c.ok_or_else(|| io::Error::other("a packet is missing"))?;
    let (_, result, _, buffer) = c.into_parts();
    Ok((result?, buffer.unwrap_or_default()))
}

/// One side's port (concurrency 1) and its handle on `stream`. Without `batch`, deferred
/// submission is on: the next `get` submits and waits in one call.
fn side(stream: TcpStream, batch: bool) -> io::Result<(CompletionPort<Op>, Handle<Op>)> {
    let port: CompletionPort<Op> = CompletionPort::new(1);
    port.defer_submissions(!batch);
    let h = port.associate(stream, 0)?;
    Ok((port, h))
}

/// The client through a port: returns (round trips, elapsed).
fn port_client(stream: TcpStream, size: usize, dur: Duration, batch: bool) -> io::Result<(u64, Duration)> {
    let (port, h) = side(stream, batch)?;
    let mut out = Vec::with_capacity(2);
    let message = vec![0xA5u8; size];
    let mut sbuf = message.clone();
    let mut rbuf = Vec::with_capacity(size);
    let mut trips = 0u64;
    let start = Instant::now();
    let end = start + dur;
    loop {
        let submit = || -> io::Result<()> {
            h.recv(rbuf, Op::Recv)?;
            h.send(sbuf, Op::Send)?;
            Ok(())
        };
        if batch {
            port.batch(submit)?;
        } else {
            submit()?;
        }
        let r = reap_port(&port, &mut out, 2)?;
        let (sent, s) = take(r.send)?;
        let (mut got, mut received) = take(r.recv)?;
        if sent != size {
            return Err(io::Error::other(format!("short send: {sent} of {size}")));
        }
        if got == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the echo side closed"));
        }
        while got < size {
            // A short receive: top it up (rare on loopback).
            h.recv(Vec::with_capacity(size - got), Op::Recv)?;
            let (n, more) = take(reap_port(&port, &mut out, 1)?.recv)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the echo side closed"));
            }
            received.extend_from_slice(&more[..n]);
            got += n;
        }
        if received != message {
            return Err(io::Error::other("the echo differs from the message"));
        }
        (sbuf, rbuf) = (s, received);
        trips += 1;
        if Instant::now() >= end {
            return Ok((trips, start.elapsed()));
        }
    }
}

/// The echo side through a port: returns how many messages it echoed.
fn port_echo(stream: TcpStream, size: usize, batch: bool) -> io::Result<u64> {
    let (port, h) = side(stream, batch)?;
    let mut out = Vec::with_capacity(2);
    let mut spare = Vec::with_capacity(size);
    h.recv(Vec::with_capacity(size), Op::Recv)?;
    let mut pending = 1;
    let mut echoed = 0u64;
    loop {
        let r = reap_port(&port, &mut out, pending)?;
        if r.send.is_some() {
            let (sent, buf) = take(r.send)?;
            if sent != buf.len() {
                return Err(io::Error::other(format!("short send: {sent} of {}", buf.len())));
            }
            spare = buf;
        }
        let (n, data) = take(r.recv)?;
        if n == 0 {
            return Ok(echoed);
        }
        echoed += 1;
        // The received buffer goes back out as is; the spare takes the next receive.
        let next = std::mem::take(&mut spare);
        let submit = || -> io::Result<()> {
            h.send(data, Op::Send)?;
            h.recv(next, Op::Recv)?;
            Ok(())
        };
        if batch {
            port.batch(submit)?;
        } else {
            submit()?;
        }
        pending = 2;
    }
}

// ---------------------------------------------------------------------------------------
// The raw io_uring baseline.

/// `user_data` of a receive.
const RECV: u64 = 1;
/// `user_data` of a send.
const SEND: u64 = 2;

/// One socket on its own ring, with the two buffers its operations use.
///
/// Soundness: a buffer is `busy` from the push of an SQE that points into it until that
/// SQE's CQE is reaped; a busy buffer is never read, written, resized or freed here, and
/// `Drop` leaks the buffers if any is still busy (an error path), so the kernel never
/// touches freed memory.
struct RawConn {
    ring: IoUring,
    stream: TcpStream,
    bufs: [Vec<u8>; 2],
    /// `busy[i]`: an operation in flight points into `bufs[i]`.
    busy: [Option<u64>; 2],
    /// Completions reaped by the last `wait`: (user_data, result).
    done: Vec<(u64, i32)>,
}

impl RawConn {
    fn new(stream: TcpStream, size: usize, defer_taskrun: bool) -> io::Result<Self> {
        let ring = if defer_taskrun {
            IoUring::builder().setup_single_issuer().setup_defer_taskrun().setup_coop_taskrun().build(8)?
        } else {
            IoUring::new(8)?
        };
        Ok(Self { ring, stream, bufs: [vec![0xA5; size], vec![0; size]], busy: [None; 2], done: Vec::new() })
    }

    /// Queues an SQE pointing into `bufs[i][off..off + len]` (`len` clamped to the buffer);
    /// `user_data` is `RECV` or `SEND`.
    fn push(&mut self, i: usize, off: usize, len: usize, user_data: u64) -> io::Result<()> {
        if self.busy[i].is_some() {
            return Err(io::Error::other("buffer already in use by an operation"));
        }
        let fd = types::Fd(self.stream.as_raw_fd());
        let buf = &mut self.bufs[i][off..];
        let len = len.min(buf.len()) as u32;
        let entry: squeue::Entry = if user_data == RECV {
            opcode::Recv::new(fd, buf.as_mut_ptr(), len).build()
        } else {
            opcode::Send::new(fd, buf.as_ptr(), len).flags(libc::MSG_NOSIGNAL).build()
        };
        let entry = entry.user_data(user_data);
        // SAFETY: the entry points into `self.bufs[i]`, which is marked busy below until
        // this entry's CQE is reaped in `wait`; a busy buffer is never touched, resized or
        // freed (`Drop` leaks it), so it outlives the operation. The descriptor belongs to
        // `self.stream`, which is dropped after `self.ring` (field order).
        #[allow(unsafe_code)]
        let pushed = unsafe { self.ring.submission().push(&entry) };
        pushed.map_err(|_| io::Error::other("submission queue full"))?;
        self.busy[i] = Some(user_data);
        Ok(())
    }

    /// Submits what is queued, waits for at least one CQE, reaps every ready CQE into
    /// `done` and frees their buffers.
    fn wait(&mut self) -> io::Result<()> {
        loop {
            match self.ring.submit_and_wait(1) {
                Ok(_) => break,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => return Err(e),
            }
        }
        self.done.clear();
        for cqe in self.ring.completion() {
            self.done.push((cqe.user_data(), cqe.result()));
        }
        for &(ud, _) in &self.done {
            if let Some(slot) = self.busy.iter_mut().find(|b| **b == Some(ud)) {
                *slot = None;
            }
        }
        Ok(())
    }

    /// Waits until no operation is in flight; returns the receive's and the send's
    /// results, if they came.
    fn wait_all(&mut self) -> io::Result<(Option<i32>, Option<i32>)> {
        let (mut recv, mut send) = (None, None);
        while self.busy.iter().any(Option::is_some) {
            self.wait()?;
            for &(ud, res) in &self.done {
                match ud {
                    RECV => recv = Some(res),
                    _ => send = Some(res),
                }
            }
        }
        Ok((recv, send))
    }
}

impl Drop for RawConn {
    fn drop(&mut self) {
        if self.busy.iter().any(Option::is_some) {
            // An error path left an operation in flight: the kernel may still write into
            // its buffer, so it must never be freed.
            for b in &mut self.bufs {
                std::mem::forget(std::mem::take(b));
            }
        }
    }
}

/// A CQE result as bytes, or its error.
fn res_bytes(r: Option<i32>) -> io::Result<usize> {
    match r {
        None => Err(io::Error::other("a completion is missing")),
        Some(r) if r < 0 => Err(io::Error::from_raw_os_error(-r)),
        Some(r) => Ok(r as usize),
    }
}

/// The client on a raw ring: `bufs[0]` holds the message, `bufs[1]` receives the echo.
fn raw_client(stream: TcpStream, size: usize, dur: Duration, dt: bool) -> io::Result<(u64, Duration)> {
    let mut c = RawConn::new(stream, size, dt)?;
    let message = c.bufs[0].clone();
    let mut trips = 0u64;
    let start = Instant::now();
    let end = start + dur;
    loop {
        c.push(1, 0, size, RECV)?;
        c.push(0, 0, size, SEND)?;
        let (recv, send) = c.wait_all()?;
        let sent = res_bytes(send)?;
        let mut got = res_bytes(recv)?;
        if sent != size {
            return Err(io::Error::other(format!("short send: {sent} of {size}")));
        }
        if got == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the echo side closed"));
        }
        while got < size {
            c.push(1, got, size - got, RECV)?;
            let n = res_bytes(c.wait_all()?.0)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the echo side closed"));
            }
            got += n;
        }
        if c.bufs[1] != message {
            return Err(io::Error::other("the echo differs from the message"));
        }
        trips += 1;
        if Instant::now() >= end {
            return Ok((trips, start.elapsed()));
        }
    }
}

/// The echo side on a raw ring: receives into one buffer while the other is sent.
fn raw_echo(stream: TcpStream, size: usize, dt: bool) -> io::Result<u64> {
    let mut c = RawConn::new(stream, size, dt)?;
    let mut cur = 0;
    c.push(cur, 0, size, RECV)?;
    let mut echoed = 0u64;
    let mut sending = 0;
    loop {
        let (recv, send) = c.wait_all()?;
        if send.is_some() {
            let sent = res_bytes(send)?;
            if sent != sending {
                return Err(io::Error::other(format!("short send: {sent} of {sending}")));
            }
        }
        let n = res_bytes(recv)?;
        if n == 0 {
            return Ok(echoed);
        }
        echoed += 1;
        sending = n;
        c.push(cur, 0, n, SEND)?;
        c.push(1 - cur, 0, size, RECV)?;
        cur = 1 - cur;
    }
}

/// Buffers in the provided-buffer ring of `raw-ms` (a power of two), and its group id.
const MS_BUFFERS: u16 = 8;
const MS_GROUP: u16 = 7;
/// `raw-ms` send user data: this plus the buffer id.
const MS_SEND: u64 = 0x100;

/// The provided-buffer ring of `raw-ms`: one page the kernel reads buffer addresses from,
/// and the buffers. The page and the buffers are freed only after the ring is
/// unregistered, and leaked if unregistering fails.
struct BufRing {
    base: *mut types::BufRingEntry,
    bufs: Vec<Vec<u8>>,
    tail: u16,
}

const PAGE: usize = 4096;

impl BufRing {
    fn new(ring: &IoUring, size: usize) -> io::Result<Self> {
        let layout = std::alloc::Layout::from_size_align(PAGE, PAGE).map_err(io::Error::other)?;
        // SAFETY: a non-zero size; the page is freed in `release` with the same layout.
        #[allow(unsafe_code)]
        let base = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<types::BufRingEntry>();
        if base.is_null() {
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        }
        let mut r = Self { base, bufs: (0..MS_BUFFERS).map(|_| vec![0u8; size]).collect(), tail: 0 };
        // SAFETY: `base` is a zeroed, page-aligned page, room for `MS_BUFFERS` entries; it
        // stays allocated until the ring is unregistered (`release`).
        #[allow(unsafe_code)]
        let registered =
            unsafe { ring.submitter().register_buf_ring_with_flags(base as u64, MS_BUFFERS, MS_GROUP, 0) };
        if let Err(e) = registered {
            // Not registered: the kernel never saw the page.
            r.release(ring, false);
            return Err(io::Error::new(
                e.kind(),
                format!("raw-ms: provided-buffer rings are not supported by this kernel (5.19+): {e}"),
            ));
        }
        for bid in 0..MS_BUFFERS {
            r.give(bid);
        }
        Ok(r)
    }

    /// Hands buffer `bid` (free: no operation uses it) to the kernel.
    fn give(&mut self, bid: u16) {
        let slot = usize::from(self.tail & (MS_BUFFERS - 1));
        let buf = &mut self.bufs[usize::from(bid)];
        // SAFETY: `slot` is below `MS_BUFFERS`, inside the page; the kernel reads this slot
        // only after the tail below moves past it, and it is free again (the kernel took
        // the buffer it named before we could give one back into it: at most `MS_BUFFERS`
        // are ever given). The tail is the `resv` word of the first entry, written only
        // through the atomic below; the setters write the other fields. The buffer lives
        // in `bufs`, never resized, until `release`.
        #[allow(unsafe_code)]
        unsafe {
            let e = &mut *self.base.add(slot);
            e.set_addr(buf.as_mut_ptr() as u64);
            e.set_len(buf.len() as u32);
            e.set_bid(bid);
            let tail = &*types::BufRingEntry::tail(self.base).cast::<std::sync::atomic::AtomicU16>();
            self.tail = self.tail.wrapping_add(1);
            tail.store(self.tail, std::sync::atomic::Ordering::Release);
        }
    }

    /// Unregisters the ring (if `registered`) and frees its memory, or leaks it if the
    /// kernel may still use it.
    fn release(&mut self, ring: &IoUring, registered: bool) {
        if registered && ring.submitter().unregister_buf_ring(MS_GROUP).is_err() {
            std::mem::forget(std::mem::take(&mut self.bufs));
            return;
        }
        let layout = std::alloc::Layout::from_size_align(PAGE, PAGE).expect("a valid layout");
        // SAFETY: allocated in `new` with this layout; the kernel no longer knows it.
        #[allow(unsafe_code)]
        unsafe {
            std::alloc::dealloc(self.base.cast(), layout);
        }
        self.base = std::ptr::null_mut();
    }
}

/// The echo side of `raw-ms`.
fn raw_ms_echo(stream: TcpStream, size: usize) -> io::Result<u64> {
    let mut ring = IoUring::new(16)?;
    let mut bufs = BufRing::new(&ring, size)?;
    let r = ms_loop(&mut ring, &mut bufs, &stream);
    // The multishot receive ended (end of stream) only on success; on an error path it
    // may still be armed, and the buffers must then outlive the process's use of them.
    bufs.release(&ring, true);
    if r.is_err() {
        std::mem::forget(std::mem::take(&mut bufs.bufs));
    }
    r
}

fn ms_loop(ring: &mut IoUring, bufs: &mut BufRing, stream: &TcpStream) -> io::Result<u64> {
    let fd = types::Fd(stream.as_raw_fd());
    let arm = opcode::RecvMulti::new(fd, MS_GROUP).build().user_data(RECV);
    let mut echoed = 0u64;
    let mut sends = 0usize;
    let mut eof = false;
    let mut done = Vec::new();
    let push = |ring: &mut IoUring, e: &squeue::Entry| -> io::Result<()> {
        // SAFETY: a receive names no memory (the kernel picks a provided buffer); a send
        // points into a buffer that is not given back to the kernel until its CQE.
        #[allow(unsafe_code)]
        let pushed = unsafe { ring.submission().push(e) };
        pushed.map_err(|_| io::Error::other("submission queue full"))
    };
    push(ring, &arm)?;
    loop {
        match ring.submit_and_wait(1) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) => return Err(e),
        }
        done.clear();
        done.extend(ring.completion().map(|c| (c.user_data(), c.result(), c.flags())));
        for &(ud, res, flags) in &done {
            if ud == RECV {
                if res == -libc::EINVAL && echoed == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::Unsupported,
                        "raw-ms: multishot receive is not supported by this kernel (6.0+)",
                    ));
                }
                if res < 0 {
                    return Err(io::Error::from_raw_os_error(-res));
                }
                let bid = io_uring::cqueue::buffer_select(flags);
                if res == 0 {
                    // End of stream: the final CQE (no more will come).
                    if let Some(bid) = bid {
                        bufs.give(bid);
                    }
                    eof = true;
                    continue;
                }
                let bid = bid.ok_or_else(|| io::Error::other("a receive without a buffer"))?;
                if !io_uring::cqueue::more(flags) {
                    push(ring, &arm)?;
                }
                let b = &bufs.bufs[usize::from(bid)];
                let send = opcode::Send::new(fd, b.as_ptr(), res as u32)
                    .flags(libc::MSG_NOSIGNAL)
                    .build()
                    .user_data(MS_SEND + u64::from(bid));
                push(ring, &send)?;
                sends += 1;
                echoed += 1;
            } else {
                let bid = u16::try_from(ud - MS_SEND).map_err(io::Error::other)?;
                if res < 0 {
                    return Err(io::Error::from_raw_os_error(-res));
                }
                sends -= 1;
                bufs.give(bid);
            }
        }
        if eof && sends == 0 {
            return Ok(echoed);
        }
    }
}
