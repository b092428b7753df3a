//! The blocking ping-pong client: one thread per connection, each writing a message of
//! `--size` bytes and reading exactly as many back (`read_exact`) before the next, so one
//! message is in flight per connection. Every connection is open before the clock starts
//! (a barrier), then a warm-up, then a fixed window. Every echoed byte is checked: a
//! message carries its sequence number and a pattern of its connection.

use crate::proc::{process_cpu, process_times, Machine};
use crossbeam_utils::CachePadded;
use serde_json::json;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// How long one connection attempt, one write or one read may take before the run fails.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Stack of a connection thread.
const STACK: usize = 128 * 1024;

/// Options of `peers client`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address of the echo server.
    #[arg(long, default_value = "127.0.0.1:7000")]
    addr: SocketAddr,
    /// Connections, each with its own thread.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=20_000))]
    conns: u32,
    /// Message size in bytes.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=(16 << 20)))]
    size: u32,
    /// Seconds of the measured window.
    #[arg(long, default_value_t = 8.0)]
    seconds: f64,
    /// Seconds of ping-pong before the window opens.
    #[arg(long, default_value_t = 0.5)]
    warmup: f64,
    /// The server's process id: its CPU time over the window is reported.
    #[arg(long)]
    server_pid: Option<i32>,
    /// CPUs whose busy fraction over the window is reported (comma-separated; default: all).
    #[arg(long, value_delimiter = ',')]
    cpus: Vec<usize>,
    /// Pin each connection's thread, after its first 1000 echoes (keep `--warmup` long
    /// enough for them), to the CPU where its connection's replies arrive
    /// (`SO_INCOMING_CPU`: on loopback, the CPU the server sent from), so that each
    /// ping-pong stays on one CPU. Measures what CPU-local wake-ups are worth.
    #[arg(long)]
    affine: bool,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

/// What the process measured at one instant.
struct Snapshot {
    at: Instant,
    /// Each connection's count of messages echoed.
    per_conn: Vec<u64>,
    server_cpu: f64,
    /// The server's user-space share of `server_cpu`.
    server_user: f64,
    client_cpu: f64,
    machine: Machine,
}

fn snapshot(counters: &[CachePadded<AtomicU64>], args: &Args) -> io::Result<Snapshot> {
    let server = args.server_pid.map(process_times).transpose()?.unwrap_or((0.0, 0.0));
    Ok(Snapshot {
        at: Instant::now(),
        per_conn: counters.iter().map(|c| c.load(Ordering::Relaxed)).collect(),
        server_cpu: server.0 + server.1,
        server_user: server.0,
        client_cpu: process_cpu(std::process::id() as i32)?,
        machine: Machine::now(&args.cpus)?,
    })
}

/// Runs the client; fails (after the report) if any connection failed or any echo differed.
pub fn run(args: &Args) -> io::Result<ExitCode> {
    let valid = |s: f64| s.is_finite() && (0.0..3600.0).contains(&s);
    if !(valid(args.seconds) && args.seconds > 0.0 && valid(args.warmup)) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--seconds and --warmup must be in [0, 3600), --seconds > 0",
        ));
    }
    let n = args.conns as usize;
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        let s = TcpStream::connect_timeout(&args.addr, IO_TIMEOUT)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot connect to {}: {e}", args.addr)))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        streams.push(s);
    }
    let counters: Arc<Vec<CachePadded<AtomicU64>>> =
        Arc::new((0..n).map(|_| CachePadded::new(AtomicU64::new(0))).collect());
    let barrier = Arc::new(Barrier::new(n + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::with_capacity(n);
    for (i, stream) in streams.into_iter().enumerate() {
        let (counters, barrier, stop) = (counters.clone(), barrier.clone(), stop.clone());
        let (size, affine) = (args.size as usize, args.affine);
        let t = thread::Builder::new()
            .stack_size(STACK)
            .spawn(move || ping_pong(i, stream, size, affine, &barrier, &stop, &counters[i]));
        match t {
            Ok(t) => threads.push(t),
            // The threads already started wait at the barrier; ending the process ends them.
            Err(e) => {
                return Err(io::Error::new(e.kind(), format!("cannot start connection thread {i}: {e}")))
            }
        }
    }
    barrier.wait();
    thread::sleep(Duration::from_secs_f64(args.warmup));
    let a = snapshot(&counters, args)?;
    thread::sleep(Duration::from_secs_f64(args.seconds));
    let b = snapshot(&counters, args)?;
    stop.store(true, Ordering::Relaxed);
    let mut errors = 0u64;
    let mut first_error = None;
    for t in threads {
        let outcome = t.join().unwrap_or_else(|_| Err("connection thread panicked".into()));
        if let Err(e) = outcome {
            errors += 1;
            first_error.get_or_insert(e);
        }
    }
    let seconds = b.at.duration_since(a.at).as_secs_f64();
    let msgs = b.per_conn.iter().sum::<u64>() - a.per_conn.iter().sum::<u64>();
    let per_msg_us = |cpu: f64| if msgs == 0 { f64::NAN } else { cpu * 1e6 / msgs as f64 };
    let rate = msgs as f64 / seconds;
    let busy = b.machine.busy_since(&a.machine);
    let server_us = args.server_pid.map(|_| per_msg_us(b.server_cpu - a.server_cpu));
    let server_user_us = args.server_pid.map(|_| per_msg_us(b.server_user - a.server_user));
    let client_us = per_msg_us(b.client_cpu - a.client_cpu);
    let (least, most) = spread(&a.per_conn, &b.per_conn);
    if args.json {
        let report = json!({
            "addr": args.addr.to_string(),
            "conns": n,
            "size": args.size,
            "seconds": seconds,
            "msgs": msgs,
            "msgs_per_sec": rate,
            "server_pid": args.server_pid,
            "server_cpu_s": args.server_pid.map(|_| b.server_cpu - a.server_cpu),
            "server_us_per_msg": server_us,
            "server_user_us_per_msg": server_user_us,
            "client_cpu_s": b.client_cpu - a.client_cpu,
            "client_us_per_msg": client_us,
            "busy": busy,
            "busy_cpus": b.machine.cpus(),
            "conn_least_share": least,
            "conn_most_share": most,
            "errors": errors,
            "first_error": first_error,
        });
        println!("{report}");
    } else {
        println!(
            "{} conns x {} B against {}: {msgs} msgs in {seconds:.2} s = {rate:.0} msgs/s",
            n, args.size, args.addr
        );
        if let (Some(us), Some(user)) = (server_us, server_user_us) {
            println!("server CPU {us:.2} us/msg, {user:.2} of it in user space");
        }
        println!("client CPU {client_us:.2} us/msg; CPUs busy {busy:.3}; errors {errors}");
        println!("messages per connection, against the mean: least {least:.2}, most {most:.2}");
        if let Some(e) = &first_error {
            println!("first error: {e}");
        }
    }
    if errors > 0 || msgs == 0 {
        eprintln!("peers client: {errors} connection(s) failed, {msgs} messages echoed");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// How evenly the server served the connections over the window: the least and the most
/// messages one connection had echoed, each against the mean (1.00 and 1.00 is even; a
/// server that drains one connection for long keeps the others waiting, and the least
/// share falls).
fn spread(a: &[u64], b: &[u64]) -> (f64, f64) {
    let counts: Vec<u64> = a.iter().zip(b).map(|(a, b)| b - a).collect();
    let mean = counts.iter().sum::<u64>() as f64 / counts.len().max(1) as f64;
    if mean == 0.0 {
        return (f64::NAN, f64::NAN);
    }
    let least = counts.iter().copied().min().unwrap_or(0) as f64;
    let most = counts.iter().copied().max().unwrap_or(0) as f64;
    (least / mean, most / mean)
}

/// `--affine`: echoes after which a connection's thread pins itself.
const AFFINE_AFTER: u64 = 1000;

/// One connection's loop, after the barrier, until `stop`: send, read the echo, check it.
/// `done` counts the messages echoed correctly.
fn ping_pong(
    id: usize,
    mut stream: TcpStream,
    size: usize,
    affine: bool,
    barrier: &Barrier,
    stop: &AtomicBool,
    done: &AtomicU64,
) -> Result<(), String> {
    let mut msg: Vec<u8> = (0..size).map(|i| (id.wrapping_mul(131) ^ i.wrapping_mul(7)) as u8).collect();
    let mut back = vec![0u8; size];
    let stamp = size.min(8);
    barrier.wait();
    let mut seq: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        msg[..stamp].copy_from_slice(&seq.to_le_bytes()[..stamp]);
        stream.write_all(&msg).map_err(|e| format!("connection {id}: send: {e}"))?;
        stream.read_exact(&mut back).map_err(|e| format!("connection {id}: receive: {e}"))?;
        if back != msg {
            return Err(format!("connection {id}: message {seq} came back different"));
        }
        seq += 1;
        if affine && seq == AFFINE_AFTER {
            // Best effort: a CPU outside the process's mask leaves the thread unpinned.
            if let Ok(cpu) = socket2::SockRef::from(&stream).cpu_affinity() {
                let mut set = rustix::thread::CpuSet::new();
                set.set(cpu);
                let _ = rustix::thread::sched_setaffinity(None, &set);
            }
        }
        // This thread is the counter's only writer.
        done.store(seq, Ordering::Relaxed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::spread;

    #[test]
    fn spread_is_even_when_every_connection_echoed_alike() {
        assert_eq!(spread(&[5, 5, 5], &[15, 15, 15]), (1.0, 1.0));
    }

    #[test]
    fn spread_shows_a_starved_connection() {
        // Deltas 0, 10, 20: mean 10, least 0, most 2.
        assert_eq!(spread(&[100, 0, 0], &[100, 10, 20]), (0.0, 2.0));
    }

    #[test]
    fn spread_of_nothing_echoed_is_not_a_number() {
        let (least, most) = spread(&[3, 3], &[3, 3]);
        assert!(least.is_nan() && most.is_nan());
        let (least, most) = spread(&[], &[]);
        assert!(least.is_nan() && most.is_nan());
    }
}
