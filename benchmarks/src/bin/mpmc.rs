//! Long-running MPMC throughput of one build of the port, for A/B comparisons of two
//! builds (`benchmarks/ab-port.sh` builds this binary at two git revisions and alternates
//! them), with crossbeam-channel as the same-run reference.
//!
//! `--posters` threads post `--messages` packets in total to `--getters` threads, which
//! call `get(None)` on a port of concurrency `--getters` until each receives a stop
//! packet (sent after every poster has finished, so FIFO puts it after the data). The
//! clock runs from before the threads are spawned to the last getter's exit. Every run
//! checks that exactly `--messages` packets arrived.
//!
//! Implementations (`--imp`):
//! * `port`: `CompletionPort<u64>`, `post(0, 0, v)` and `get(None)`;
//! * `crossbeam`: an unbounded `crossbeam_channel` of `u64` (the criterion bench's peer);
//! * `crossbeam3`: the same channel carrying `(usize, usize, u64)`, the information a
//!   packet carries (key, byte count, context), to show whether payload size matters.
//!
//! Prints one line: `<imp> <P>x<G>: <million messages per second> Mmsg/s`.

use clap::{Parser, ValueEnum};
use completion_port::CompletionPort;
use std::thread;
use std::time::Instant;

/// Which queue to measure.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Imp {
    /// The completion port.
    Port,
    /// crossbeam-channel, `u64` messages.
    Crossbeam,
    /// crossbeam-channel, `(usize, usize, u64)` messages.
    Crossbeam3,
}

/// Command-line flags.
#[derive(Parser, Debug)]
#[command(about = "MPMC throughput of the completion port (one build) against crossbeam-channel")]
struct Args {
    /// Queue to measure.
    #[arg(long, value_enum, default_value = "port")]
    imp: Imp,
    /// Posting threads (at least 1).
    #[arg(long, default_value_t = 2, value_parser = at_least_one())]
    posters: usize,
    /// Getting threads (and the port's concurrency; at least 1).
    #[arg(long, default_value_t = 2, value_parser = at_least_one())]
    getters: usize,
    /// Messages in total (rounded down to a multiple of `--posters`).
    #[arg(long, default_value_t = 5_000_000)]
    messages: u64,
}

/// A thread count: 0 is a usage error (exit 2), not a panic.
fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..)
}

/// The stop message.
const STOP: u64 = u64::MAX;

/// Runs `posters` senders and `getters` receivers; `send` and `recv` are built per thread.
fn run<S, R>(args: &Args, send: impl Fn() -> S, recv: impl Fn() -> R, stop: impl Fn()) -> u64
where
    S: FnMut(u64) + Send,
    R: FnMut() -> u64 + Send,
{
    let per_poster = args.messages / args.posters as u64;
    thread::scope(|s| {
        let posting: Vec<_> = (0..args.posters)
            .map(|_| {
                let mut send = send();
                s.spawn(move || (0..per_poster).for_each(&mut send))
            })
            .collect();
        let getting: Vec<_> = (0..args.getters)
            .map(|_| {
                let mut recv = recv();
                s.spawn(move || {
                    let mut n = 0u64;
                    while recv() != STOP {
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        for p in posting {
            p.join().expect("poster panicked");
        }
        for _ in 0..args.getters {
            stop();
        }
        let got: u64 = getting.into_iter().map(|g| g.join().expect("getter panicked")).sum();
        assert_eq!(got, per_poster * args.posters as u64, "messages lost or duplicated");
        got
    })
}

fn main() {
    let args = Args::parse();
    let start = Instant::now();
    let moved = match args.imp {
        Imp::Port => {
            let port: CompletionPort<u64> = CompletionPort::new(args.getters);
            run(
                &args,
                || {
                    let port = port.clone();
                    move |v| port.post(0, 0, v).expect("port open")
                },
                || {
                    let port = port.clone();
                    move || port.get(None).expect("port open").context
                },
                || port.post(0, 0, STOP).expect("port open"),
            )
        }
        Imp::Crossbeam => {
            let (tx, rx) = crossbeam_channel::unbounded::<u64>();
            run(
                &args,
                || {
                    let tx = tx.clone();
                    move |v| tx.send(v).expect("channel open")
                },
                || {
                    let rx = rx.clone();
                    move || rx.recv().expect("channel open")
                },
                || tx.send(STOP).expect("channel open"),
            )
        }
        Imp::Crossbeam3 => {
            let (tx, rx) = crossbeam_channel::unbounded::<(usize, usize, u64)>();
            run(
                &args,
                || {
                    let tx = tx.clone();
                    move |v| tx.send((0, 0, v)).expect("channel open")
                },
                || {
                    let rx = rx.clone();
                    move || rx.recv().expect("channel open").2
                },
                || tx.send((0, 0, STOP)).expect("channel open"),
            )
        }
    };
    let secs = start.elapsed().as_secs_f64();
    println!("{:?} {}x{}: {:.2} Mmsg/s", args.imp, args.posters, args.getters, moved as f64 / secs / 1e6);
}
