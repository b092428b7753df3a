//! What an eager send and receive cost above the system calls they make: one thread, one
//! TCP connection on 127.0.0.1, a 64-byte message sent on one end and received on the
//! other, again and again. Every call completes at once (the data is there), so the
//! kernel's work is the same in both variants and the difference is the library's:
//!
//! * `std`: `write` then `read` on the two `TcpStream`s (`send` and `recv`, as mio's and
//!   the std thread-per-connection servers make them);
//! * `std-epoll`: the same with both ends registered in an epoll set (edge-triggered, in
//!   and out, as mio registers its sockets), whose callback then runs in the kernel for
//!   every message: the fair baseline for the epoll backend, which registers its sockets
//!   too;
//! * `port`: `Handle::send_eager` then `Handle::recv_eager` on the two ends associated
//!   with one port (`COMPLETION_PORT_BACKEND` chooses the backend), each returning
//!   `Started::Done` with its buffer;
//! * `try`: `Handle::try_send` then `Handle::try_recv` on the same two handles (rule N8:
//!   no operation, context or packet), the steps of `cport serve --eager`'s drain.
//!
//! Rounds alternate the variants (A B C A B C ...); prints ns per message of each round,
//! the medians, and the port's overhead over each baseline. This isolates the user-space cost per operation that the
//! echo benchmarks (docs/benchmarks.md) can only show as a share of a noisy total.

use benchmarks::{connected_pair, median};
use clap::Parser;
use completion_port::{CompletionPort, Handle, Started};
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// Command-line flags.
#[derive(Parser, Debug)]
#[command(about = "cost of an eager send + receive above the system calls, vs std")]
struct Args {
    /// Messages per round.
    #[arg(long, default_value_t = 200_000)]
    messages: usize,
    /// Rounds of each variant.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Message size in bytes.
    #[arg(long, default_value_t = 64)]
    size: usize,
}

fn run_std(args: &Args, epoll: bool) -> io::Result<f64> {
    let (mut a, mut b) = connected_pair()?;
    // With `epoll`, both ends are registered (edge-triggered, in and out) as mio registers
    // its sockets: each message then also runs the kernel's epoll callback.
    let ep = rustix::event::epoll::create(rustix::event::epoll::CreateFlags::CLOEXEC)?;
    if epoll {
        use rustix::event::epoll::{add, EventData, EventFlags};
        let flags = EventFlags::IN | EventFlags::OUT | EventFlags::ET | EventFlags::RDHUP;
        add(&ep, &a, EventData::new_u64(1), flags)?;
        add(&ep, &b, EventData::new_u64(2), flags)?;
    }
    let out = vec![7u8; args.size];
    let mut buf = vec![0u8; args.size];
    let t = Instant::now();
    for _ in 0..args.messages {
        a.write_all(&out)?;
        b.read_exact(&mut buf)?;
    }
    Ok(t.elapsed().as_nanos() as f64 / args.messages as f64)
}

/// The buffer back from an eager call: at once if it completed at once, else from its
/// packet (counted in `misses`: the kernel had not delivered the data yet, which a loaded
/// machine can cause; the figures then include a wait on the port).
fn done(
    port: &CompletionPort<()>,
    r: Result<Started<()>, completion_port::SubmitError<()>>,
    misses: &mut usize,
) -> io::Result<Vec<u8>> {
    let c = match r {
        Ok(Started::Done(c)) => c,
        Ok(Started::Pending(_)) => {
            *misses += 1;
            port.get(Some(Duration::from_secs(10))).map_err(|e| io::Error::other(e.to_string()))?
        }
        Err(e) => return Err(e.error),
    };
    c.result?;
    c.buffer.ok_or_else(|| io::Error::other("no buffer back"))
}

/// Two ends of one loopback connection, associated with `port`.
fn associated_pair(port: &CompletionPort<()>) -> io::Result<(Handle<()>, Handle<()>)> {
    let (a, b) = connected_pair()?;
    Ok((port.associate(a, 1)?, port.associate(b, 2)?))
}

fn run_port(port: &CompletionPort<()>, args: &Args, misses: &mut usize) -> io::Result<f64> {
    let (ha, hb) = associated_pair(port)?;
    let mut out = vec![7u8; args.size];
    let mut buf = Vec::with_capacity(args.size);
    let t = Instant::now();
    for _ in 0..args.messages {
        out = done(port, ha.send_eager(out, ()), misses)?;
        if out.len() != args.size {
            return Err(io::Error::other(format!("short send: {} bytes", out.len())));
        }
        buf.clear();
        buf = done(port, hb.recv_eager(buf, ()), misses)?;
        if buf.len() != args.size {
            return Err(io::Error::other(format!("short receive: {} bytes", buf.len())));
        }
    }
    Ok(t.elapsed().as_nanos() as f64 / args.messages as f64)
}

fn run_try(port: &CompletionPort<()>, args: &Args) -> io::Result<f64> {
    let (ha, hb) = associated_pair(port)?;
    let out = vec![7u8; args.size];
    let mut buf = Vec::with_capacity(args.size);
    let t = Instant::now();
    for _ in 0..args.messages {
        // Loopback delivers within the send, so each call completes at once; a
        // `WouldBlock` here is an error of the measurement, not a wait.
        let sent = ha.try_send(&out)?;
        let got = hb.try_recv(&mut buf)?;
        if sent != args.size || got != args.size {
            return Err(io::Error::other(format!("short: sent {sent}, received {got} bytes")));
        }
    }
    Ok(t.elapsed().as_nanos() as f64 / args.messages as f64)
}

fn main() -> io::Result<()> {
    let args = Args::parse();
    let port = CompletionPort::<()>::new(1);
    let (mut plain, mut in_epoll, mut ported, mut tried) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut misses = 0;
    for round in 0..args.rounds {
        plain.push(run_std(&args, false)?);
        in_epoll.push(run_std(&args, true)?);
        ported.push(run_port(&port, &args, &mut misses)?);
        tried.push(run_try(&port, &args)?);
        println!(
            "round {round}: std {:.0}, std-epoll {:.0}, port {:.0}, try {:.0} ns/msg",
            plain[round], in_epoll[round], ported[round], tried[round]
        );
    }
    let backend = port.backend().map_or_else(|| "none".to_string(), |b| format!("{b:?}"));
    let (s, e, p, t) = (median(&plain), median(&in_epoll), median(&ported), median(&tried));
    println!("medians, port on {backend}: std {s:.0}, std-epoll {e:.0}, port {p:.0}, try {t:.0} ns/msg");
    println!("eager calls that did not complete at once: {misses}");
    for (name, v) in [("port", p), ("try", t)] {
        println!(
            "{name} over std: {:+.0} ns/msg ({:.2}x); over std-epoll: {:+.0} ns/msg ({:.2}x)",
            v - s,
            v / s,
            v - e,
            v / e
        );
    }
    Ok(())
}
