//! Microbenchmarks of the port core (`post`, `get`, `get_many`) against the two channels
//! every Rust programmer knows, measured in the same run and at equal thread counts.
//!
//! # Method
//!
//! Three groups; every row of a group runs the same workload, so ratios between rows of
//! one group are meaningful. Results and ratios are recorded in `docs/benchmarks.md`.
//!
//! 1. **`round_trip`**: one thread sends one message and receives it back at once, on an
//!    empty queue. `port` is `post` then `get(None)` on a port of concurrency 1;
//!    `crossbeam` is `send` then `recv` on `crossbeam_channel::unbounded`; `mpsc` is
//!    `send` then `recv` on `std::sync::mpsc::channel`. Nobody ever blocks. The extra
//!    row `port_get_many_into` takes the packet with `get_many_into` into a reused vector,
//!    isolating what `get`'s per-call `Vec` costs.
//! 2. **`mpmc/PxG`**: `P` poster threads and `G` getter threads move `BATCH` messages per
//!    iteration (`iter_custom`, `Throughput::Elements`), for 1x1, 2x2 and 4x4. Threads are
//!    spawned before the clock starts and released together by a barrier; after the
//!    posters finish, the timing thread sends one stop message per getter (FIFO puts them
//!    after every data message); the clock stops at the latest getter's end. Every run
//!    checks that exactly `iters * BATCH` messages arrived (a `get_many` getter that takes
//!    several stop messages in one batch posts the extras back). `port` uses a port of
//!    concurrency `G` and `get(None)`; `port_get_many` the same with `get_many_into(64)`
//!    into a reused vector (a batch API the channels lack, so it is an extra row);
//!    `crossbeam` clones one unbounded channel's ends; `mpsc` is single-consumer, so for
//!    `G > 1` its `Receiver` is shared in a `Mutex` (a getter holds the lock while it
//!    blocks in `recv`, so its getters are serialized by construction).
//! 3. **`ping_pong`**: two threads, two queues. A sends to queue 1 and blocks receiving on
//!    queue 2; B receives on queue 1 and sends on queue 2. Time per round trip, measured
//!    on A. `port` uses two ports of concurrency 1 and `get(None)`; `crossbeam` two
//!    unbounded channels; `futex` is the floor: two `AtomicU32` words, where the sender
//!    stores 1 and always calls `FUTEX_WAKE`, and the receiver calls `FUTEX_WAIT` while
//!    the word is 0 (no spinning), through rustix's safe `futex::{wait, wake}`.
//!    Both threads are fresh for each sample and the group runs three times: `ping_pong`
//!    leaves them where the scheduler puts them (the case asked about, and the noisiest:
//!    the scheduler may put both threads on one CPU or not, sample by sample);
//!    `ping_pong_same_cpu` pins both to CPU 0, so a wake-up is a context switch;
//!    `ping_pong_cross_cpu` pins A to CPU 0 and B to CPU 1, so a wake-up crosses CPUs.
//!    The pinned groups are skipped, with a message, where CPUs 0 and 1 cannot be pinned.
//!    Before the group runs, each variant's voluntary context switches per round trip on
//!    thread B are read from `/proc/thread-self/status` and printed, which shows whether
//!    the receiver really slept (crossbeam spins and yields before it parks; the port and
//!    the raw futex do not spin).
//!
//! Criterion reports the median of `SAMPLES` samples; measurement times are kept short so
//! the whole bench finishes in a few minutes on a 2-core machine.

#![forbid(unsafe_code)]

use completion_port::CompletionPort;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rustix::thread::{futex, sched_setaffinity, CpuSet};
use std::hint::black_box;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Samples per benchmark.
const SAMPLES: usize = 20;
/// Messages moved per `mpmc` iteration; divisible by every poster count used.
const BATCH: u64 = 10_000;
/// The message that tells a getter to stop.
const STOP: u64 = u64::MAX;
/// `(posters, getters)` configurations for the `mpmc` group.
const SHAPES: [(usize, usize); 3] = [(1, 1), (2, 2), (4, 4)];

fn config() -> Criterion {
    Criterion::default()
        .sample_size(SAMPLES)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

// ---------------------------------------------------------------------------------------
// 1. Single-thread round trip.

fn round_trip(c: &mut Criterion) {
    let mut g = c.benchmark_group("round_trip");
    g.throughput(Throughput::Elements(1));

    let port: CompletionPort<u64> = CompletionPort::new(1);
    g.bench_function("port", |b| {
        b.iter(|| {
            port.post(0, 0, black_box(1)).unwrap();
            black_box(port.get(None).unwrap().context)
        })
    });

    let mut out = Vec::with_capacity(1);
    g.bench_function("port_get_many_into", |b| {
        b.iter(|| {
            port.post(0, 0, black_box(1)).unwrap();
            port.get_many_into(&mut out, 1, None).unwrap();
            black_box(out.pop().unwrap().context)
        })
    });

    let (s, r) = crossbeam_channel::unbounded::<u64>();
    g.bench_function("crossbeam", |b| {
        b.iter(|| {
            s.send(black_box(1)).unwrap();
            black_box(r.recv().unwrap())
        })
    });

    let (s, r) = mpsc::channel::<u64>();
    g.bench_function("mpsc", |b| {
        b.iter(|| {
            s.send(black_box(1)).unwrap();
            black_box(r.recv().unwrap())
        })
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------
// 2. MPMC throughput.

/// Runs `iters * BATCH` messages from `senders.len()` posters to `receivers.len()`
/// getters and returns the time from the common start to the last getter's end.
fn mpmc_run<S, R>(iters: u64, mut senders: Vec<S>, receivers: Vec<R>) -> Duration
where
    S: FnMut(u64) + Send,
    R: FnMut(&mut dyn FnMut(u64) -> bool) + Send,
{
    let posters = senders.len() - 1; // the last sender is the timing thread's, for STOP
    let getters = receivers.len();
    let total = iters * BATCH;
    let per_poster = total / posters as u64;
    let start_line = Barrier::new(posters + getters + 1);
    let mut stop_sender = senders.pop().expect("one sender for the stop messages");
    thread::scope(|scope| {
        let posting: Vec<_> = senders
            .into_iter()
            .map(|mut send| {
                let start_line = &start_line;
                scope.spawn(move || {
                    start_line.wait();
                    for i in 0..per_poster {
                        send(i);
                    }
                })
            })
            .collect();
        let getting: Vec<_> = receivers
            .into_iter()
            .map(|mut recv| {
                let start_line = &start_line;
                scope.spawn(move || {
                    start_line.wait();
                    let (mut n, mut sum) = (0u64, 0u64);
                    recv(&mut |v| {
                        if v == STOP {
                            return false;
                        }
                        n += 1;
                        sum = sum.wrapping_add(v);
                        true
                    });
                    black_box(sum);
                    (n, Instant::now())
                })
            })
            .collect();
        start_line.wait();
        let start = Instant::now();
        for p in posting {
            p.join().unwrap();
        }
        for _ in 0..getters {
            stop_sender(STOP);
        }
        let mut received = 0;
        let mut end = start;
        for g in getting {
            let (n, t) = g.join().unwrap();
            received += n;
            end = end.max(t);
        }
        assert_eq!(received, per_poster * posters as u64, "messages lost or duplicated");
        end - start
    })
}

fn mpmc_port(iters: u64, posters: usize, getters: usize, batch: Option<usize>) -> Duration {
    let port: CompletionPort<u64> = CompletionPort::new(getters);
    let senders: Vec<_> = (0..=posters)
        .map(|_| {
            let port = port.clone();
            move |v: u64| port.post(0, 0, v).unwrap()
        })
        .collect();
    let receivers: Vec<_> = (0..getters)
        .map(|_| {
            let port = port.clone();
            move |each: &mut dyn FnMut(u64) -> bool| match batch {
                None => while each(port.get(None).unwrap().context) {},
                Some(max) => {
                    let mut out = Vec::with_capacity(max);
                    loop {
                        port.get_many_into(&mut out, max, None).unwrap();
                        // STOPs come after every data message (FIFO), but one batch may
                        // hold several: keep one, give the others back to the port.
                        let mut stops = 0;
                        for p in out.drain(..) {
                            if !each(p.context) {
                                stops += 1;
                            }
                        }
                        if stops > 0 {
                            for _ in 1..stops {
                                port.post(0, 0, STOP).unwrap();
                            }
                            break;
                        }
                    }
                }
            }
        })
        .collect();
    mpmc_run(iters, senders, receivers)
}

fn mpmc_crossbeam(iters: u64, posters: usize, getters: usize) -> Duration {
    let (s, r) = crossbeam_channel::unbounded::<u64>();
    let senders: Vec<_> = (0..=posters)
        .map(|_| {
            let s = s.clone();
            move |v: u64| s.send(v).unwrap()
        })
        .collect();
    let receivers: Vec<_> = (0..getters)
        .map(|_| {
            let r = r.clone();
            move |each: &mut dyn FnMut(u64) -> bool| while each(r.recv().unwrap()) {}
        })
        .collect();
    mpmc_run(iters, senders, receivers)
}

fn mpmc_mpsc(iters: u64, posters: usize, getters: usize) -> Duration {
    let (s, r) = mpsc::channel::<u64>();
    let senders: Vec<_> = (0..=posters)
        .map(|_| {
            let s = s.clone();
            move |v: u64| s.send(v).unwrap()
        })
        .collect();
    if getters == 1 {
        let receivers = vec![move |each: &mut dyn FnMut(u64) -> bool| {
            while each(r.recv().unwrap()) {}
        }];
        return mpmc_run(iters, senders, receivers);
    }
    // Single consumer: the getters share the Receiver through a Mutex.
    let shared = Mutex::new(r);
    let shared = &shared;
    let receivers: Vec<_> = (0..getters)
        .map(|_| {
            move |each: &mut dyn FnMut(u64) -> bool| {
                while each(shared.lock().unwrap().recv().unwrap()) {}
            }
        })
        .collect();
    mpmc_run(iters, senders, receivers)
}

fn mpmc(c: &mut Criterion) {
    for (p, gt) in SHAPES {
        let mut g = c.benchmark_group(format!("mpmc/{p}x{gt}"));
        g.throughput(Throughput::Elements(BATCH));
        g.bench_function("port", |b| b.iter_custom(|it| mpmc_port(it, p, gt, None)));
        g.bench_function("port_get_many", |b| b.iter_custom(|it| mpmc_port(it, p, gt, Some(64))));
        g.bench_function("crossbeam", |b| b.iter_custom(|it| mpmc_crossbeam(it, p, gt)));
        g.bench_function("mpsc", |b| b.iter_custom(|it| mpmc_mpsc(it, p, gt)));
        g.finish();
    }
}

// ---------------------------------------------------------------------------------------
// 3. Ping-pong: the latency of waking a blocked receiver.

/// One side of a ping-pong: a way to send to the peer and a way to wait for the peer.
trait Side: Send {
    fn send(&mut self);
    fn recv(&mut self);
}

struct PortSide {
    to: CompletionPort<u64>,
    from: CompletionPort<u64>,
}

impl Side for PortSide {
    fn send(&mut self) {
        self.to.post(0, 0, 1).unwrap();
    }
    fn recv(&mut self) {
        black_box(self.from.get(None).unwrap().context);
    }
}

struct ChannelSide {
    to: crossbeam_channel::Sender<u64>,
    from: crossbeam_channel::Receiver<u64>,
}

impl Side for ChannelSide {
    fn send(&mut self) {
        self.to.send(1).unwrap();
    }
    fn recv(&mut self) {
        black_box(self.from.recv().unwrap());
    }
}

/// The floor: one futex word per direction; 1 means "your turn".
struct FutexSide<'a> {
    to: &'a AtomicU32,
    from: &'a AtomicU32,
}

impl Side for FutexSide<'_> {
    fn send(&mut self) {
        self.to.store(1, Ordering::Release);
        let _ = futex::wake(self.to, futex::Flags::PRIVATE, 1);
    }
    fn recv(&mut self) {
        while self.from.load(Ordering::Acquire) == 0 {
            // EAGAIN (already 1), EINTR and spurious wake-ups loop back to the check.
            let _ = futex::wait(self.from, futex::Flags::PRIVATE, 0, None);
        }
        // Strict alternation: the peer sets this word again only after we send.
        self.from.store(0, Ordering::Relaxed);
    }
}

/// Voluntary context switches of the calling thread so far.
fn voluntary_switches() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/thread-self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Where the two ping-pong threads run.
#[derive(Clone, Copy, PartialEq)]
enum Placement {
    /// Wherever the scheduler puts them.
    Any,
    /// Both on CPU 0: a wake-up is a context switch on one CPU.
    Same,
    /// A on CPU 0, B on CPU 1: a wake-up crosses CPUs (an IPI to an idle vCPU on a VM).
    Cross,
}

impl Placement {
    fn group(self) -> &'static str {
        match self {
            Placement::Any => "ping_pong",
            Placement::Same => "ping_pong_same_cpu",
            Placement::Cross => "ping_pong_cross_cpu",
        }
    }

    /// The CPUs for A and B, or `None` to leave them unpinned.
    fn cpus(self) -> Option<(usize, usize)> {
        match self {
            Placement::Any => None,
            Placement::Same => Some((0, 0)),
            Placement::Cross => Some((0, 1)),
        }
    }
}

/// Pins the calling thread to `cpu`; panics if the machine refuses (checked up front by
/// [`placement_available`]).
fn pin(cpu: Option<usize>) {
    if let Some(cpu) = cpu {
        let mut set = CpuSet::new();
        set.set(cpu);
        sched_setaffinity(None, &set).expect("sched_setaffinity");
    }
}

/// Whether this machine can run `placement` (it needs CPUs 0 and 1 and affinity rights).
fn placement_available(placement: Placement) -> bool {
    let Some((a, b)) = placement.cpus() else { return true };
    thread::scope(|s| {
        s.spawn(|| {
            [a, b].iter().all(|&cpu| {
                let mut set = CpuSet::new();
                set.set(cpu);
                sched_setaffinity(None, &set).is_ok()
            })
        })
        .join()
        .unwrap_or(false)
    })
}

/// Runs `iters` timed round trips (after one untimed one) on two fresh threads placed as
/// asked, and returns the time measured on A and B's voluntary context switches during
/// the timed part.
fn ping_pong_run(
    iters: u64,
    placement: Placement,
    mut a: impl Side,
    mut b: impl Side,
) -> (Duration, Option<u64>) {
    let cpus = placement.cpus();
    thread::scope(|scope| {
        let peer = scope.spawn(move || {
            pin(cpus.map(|c| c.1));
            b.recv();
            b.send();
            let before = voluntary_switches();
            for _ in 0..iters {
                b.recv();
                b.send();
            }
            Some(voluntary_switches()? - before?)
        });
        let timed = scope.spawn(move || {
            pin(cpus.map(|c| c.0));
            a.send();
            a.recv(); // both threads are running: start the clock
            let start = Instant::now();
            for _ in 0..iters {
                a.send();
                a.recv();
            }
            start.elapsed()
        });
        (timed.join().unwrap(), peer.join().unwrap())
    })
}

fn ping_pong_port(iters: u64, placement: Placement) -> (Duration, Option<u64>) {
    let (p1, p2) = (CompletionPort::new(1), CompletionPort::new(1));
    let a = PortSide { to: p1.clone(), from: p2.clone() };
    let b = PortSide { to: p2, from: p1 };
    ping_pong_run(iters, placement, a, b)
}

fn ping_pong_crossbeam(iters: u64, placement: Placement) -> (Duration, Option<u64>) {
    let (s1, r1) = crossbeam_channel::unbounded();
    let (s2, r2) = crossbeam_channel::unbounded();
    let (a, b) = (ChannelSide { to: s1, from: r2 }, ChannelSide { to: s2, from: r1 });
    ping_pong_run(iters, placement, a, b)
}

fn ping_pong_futex(iters: u64, placement: Placement) -> (Duration, Option<u64>) {
    let (w1, w2) = (AtomicU32::new(0), AtomicU32::new(0));
    let (a, b) = (FutexSide { to: &w1, from: &w2 }, FutexSide { to: &w2, from: &w1 });
    ping_pong_run(iters, placement, a, b)
}

type PingPong = fn(u64, Placement) -> (Duration, Option<u64>);

const PING_PONGS: [(&str, PingPong); 3] =
    [("port", ping_pong_port), ("crossbeam", ping_pong_crossbeam), ("futex", ping_pong_futex)];

fn ping_pong_group(c: &mut Criterion, placement: Placement) {
    let group = placement.group();
    if !placement_available(placement) {
        println!("{group}: skipped, this machine cannot pin threads to CPUs 0 and 1");
        return;
    }
    // Not timed by criterion: does the receiver really sleep? (see the module docs)
    const PROBE: u64 = 5_000;
    for (name, run) in PING_PONGS {
        match run(PROBE, placement) {
            (t, Some(sw)) => println!(
                "{group}/{name}: {:.2} voluntary context switches per round trip on B \
                 ({:.0} ns per round trip over {PROBE})",
                sw as f64 / PROBE as f64,
                t.as_nanos() as f64 / PROBE as f64
            ),
            (_, None) => println!("{group}/{name}: /proc/thread-self/status unreadable"),
        }
    }
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(1));
    for (name, run) in PING_PONGS {
        g.bench_function(name, |b| b.iter_custom(|it| run(it, placement).0));
    }
    g.finish();
}

fn ping_pong(c: &mut Criterion) {
    for placement in [Placement::Any, Placement::Same, Placement::Cross] {
        ping_pong_group(c, placement);
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = round_trip, mpmc, ping_pong
}
criterion_main!(benches);
