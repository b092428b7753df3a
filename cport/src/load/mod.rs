//! `cport load`: a load generator on a completion port that checks every echoed byte.
//!
//! Each connection sends messages whose bytes are a function of (connection, sequence
//! number) and compares the echo byte for byte ([`conn`]). A few worker threads run every
//! packet of the port; with `--ports N`, connection `i` belongs to port `i mod N` and each
//! port has its own share of the workers, so that a thread only ever runs the packets of
//! its own connections (the layout of `cport serve --ports`). In closed loop each connection keeps `--pipeline` messages in
//! flight; in open loop (`--rate`) a pacing thread posts one packet per message when it
//! is due, and latency is measured from that instant, not from the (possibly late) send,
//! so a slow server cannot hide its stalls (coordinated omission).
//!
//! Shutdown order: stop queueing messages, wait up to [`GRACE`] for outstanding echoes,
//! close the ports (cancelling the receives still pending), join the workers, drain the
//! ports, then close the connections.

mod conn;
mod pattern;
mod report;

use crate::limits;
use crate::split::share;
use crate::units;
use completion_port::{CompletionPort, GetError};
use conn::{lock, Affinity, Conn, Ctx, Shared};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use report::{Connect, Latency, Report};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long to wait for outstanding echoes after the run.
const GRACE: Duration = Duration::from_secs(1);
/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Packets a worker takes from the port at once.
const BATCH: usize = 64;
/// Largest latency the histogram tracks exactly, in microseconds (one hour); longer ones
/// are recorded as this.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Options of `cport load`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address of the echo server.
    #[arg(long, default_value = "127.0.0.1:7000")]
    addr: String,
    /// Connections to open.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    connections: u32,
    /// Message size in bytes (suffixes K, M, powers of 1024; at most 64M).
    #[arg(long, default_value = "64", value_parser = parse_message_size)]
    size: u64,
    /// How long to run: 5s, 500ms, 2m, 1h30m, or plain seconds.
    #[arg(long, default_value = "5s", value_parser = units::parse_duration)]
    duration: Duration,
    /// Messages in flight per connection.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pipeline: u32,
    /// Open loop: send this many messages per second in total, spread over the
    /// connections, and measure latency from when each was due.
    #[arg(long, value_parser = units::parse_rate)]
    rate: Option<f64>,
    /// Worker threads on the completion port.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=1024))]
    workers: u32,
    /// Completion ports to run side by side (at most --workers and --connections):
    /// connection i goes to port i mod N, and each port gets an equal share of the
    /// workers, which run only its packets. 1: one port shared by every worker.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    ports: u32,
    /// Pin worker i to the i-th CPU this process may run on (round-robin over the CPUs of
    /// its affinity mask, as `taskset` sets it). A pinned worker stays where the kernel
    /// wakes its connections' server threads, as one blocking thread per connection does.
    #[arg(long)]
    pin: bool,
    /// Keep each connection on the CPU where its echoes arrive: every worker gets its own
    /// port and CPU (as with `--pin`, and `--ports` equal to `--workers`), each connection
    /// is associated with every port, and after its first 1000 echoes (then every 4096)
    /// it moves to the port whose worker runs on the CPU its replies come from
    /// (`SO_INCOMING_CPU`: on the same host, the CPU the server thread sent from). Each
    /// request and its reply then stay on one CPU, as a blocking client's thread that the
    /// scheduler placed beside its server thread does.
    #[arg(long, conflicts_with = "ports")]
    affine: bool,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Largest message size accepted.
const MAX_SIZE: u64 = 64 << 20;
/// Most message bytes in flight over all connections (each is buffered to be sent, and
/// its expected echo generated, so this bounds the memory a run takes).
const MAX_IN_FLIGHT: u64 = 4 << 30;

/// A message size of at most [`MAX_SIZE`].
fn parse_message_size(text: &str) -> Result<u64, String> {
    units::parse_size_at_most(text, MAX_SIZE, "message size")
}

impl Args {
    /// Completion ports to open: one per worker with `--affine`.
    fn n_ports(&self) -> usize {
        if self.affine {
            self.workers as usize
        } else {
            self.ports as usize
        }
    }

    /// Checks across flags: every port needs a worker and a connection, and the bytes
    /// in flight must fit [`MAX_IN_FLIGHT`].
    pub fn check(&self) -> Result<(), String> {
        if self.affine && self.workers > self.connections {
            return Err(format!(
                "--affine gives each of the {} workers a port, which needs as many connections, but there are {} (--connections)",
                self.workers, self.connections
            ));
        }
        if self.ports > self.workers {
            return Err(format!(
                "--ports {} needs at least as many workers, but there are {} (--workers)",
                self.ports, self.workers
            ));
        }
        if self.ports > self.connections {
            return Err(format!(
                "--ports {} needs at least as many connections, but there are {} (--connections)",
                self.ports, self.connections
            ));
        }
        let in_flight =
            self.size.saturating_mul(u64::from(self.pipeline)).saturating_mul(u64::from(self.connections));
        if in_flight > MAX_IN_FLIGHT {
            return Err(format!(
                "--size {} × --pipeline {} × --connections {} = {} in flight, more than the limit of {}",
                units::show_size(self.size),
                self.pipeline,
                self.connections,
                units::show_size(in_flight),
                units::show_size(MAX_IN_FLIGHT)
            ));
        }
        Ok(())
    }
}

/// Runs the load generator. Prints the report (on stdout with `--json`, else on stderr);
/// returns an error (exit status 1) if the connections cannot be opened (with `--json`, a
/// report with an `error` field is printed first), or after the report if any echo was
/// wrong, any connection failed, or any message was left unanswered.
pub fn run(args: Args) -> Result<ExitCode, String> {
    let mut report = Report {
        error: None,
        addr: args.addr.clone(),
        mode: if args.rate.is_some() { "open-loop" } else { "closed-loop" },
        backend: None,
        target_rate: args.rate,
        connections: args.connections as usize,
        ports: args.n_ports(),
        moved: 0,
        pinned_cpus: Vec::new(),
        connect: Default::default(),
        size: args.size as usize,
        pipeline: args.pipeline as usize,
        seconds: 0.0,
        messages: 0,
        msgs_per_sec: 0.0,
        mib_per_sec: 0.0,
        latency_us: Default::default(),
        errors: 0,
        mismatches: 0,
        connection_errors: 0,
        unanswered: 0,
        unsent: 0,
        first_error: None,
        interrupted: false,
    };
    if let Err(e) = measure(&args, &mut report) {
        if args.json {
            report.error = Some(e.clone());
            print_report(&report, true)?;
        }
        return Err(e);
    }
    print_report(&report, args.json)?;
    match &report.first_error {
        Some(first) if report.errors > 0 => Err(format!("{} errors; first: {first}", report.errors)),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// Prints the report: one JSON object on stdout, or text on stderr.
fn print_report(report: &Report, json: bool) -> Result<(), String> {
    if json {
        println!("{}", serde_json::to_string(report).map_err(|e| format!("cannot write JSON: {e}"))?);
    } else {
        eprintln!("{}", report.text());
    }
    Ok(())
}

/// Connects, runs the load and fills in `report`. An error means the run could not take
/// place; `report` then holds what was measured before it (the connect figures).
fn measure(args: &Args, report: &mut Report) -> Result<(), String> {
    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The first signal ends the run early (with a report); a second one exits at once.
        signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(&interrupted))
            .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&interrupted)))
            .map_err(|e| format!("cannot install a signal handler: {e}"))?;
    }
    // With --affine each connection holds a descriptor per port.
    let per_connection = if args.affine { args.n_ports() as u64 } else { 1 };
    limits::raise_nofile(u64::from(args.connections) * per_connection + limits::RESERVED);
    let streams = connect_all(&args.addr, args.connections as usize, &mut report.connect)?;
    let use_port = |e: std::io::Error| format!("cannot use the completion port: {}", limits::explain(&e));
    // Each port's concurrency value is its number of workers, as with one port.
    let (workers, n_ports) = (args.workers as usize, args.n_ports());
    let ports: Vec<CompletionPort<Ctx>> =
        (0..n_ports).map(|p| CompletionPort::new(share(workers, n_ports, p))).collect();
    let cpus = if args.pin || args.affine { Some(allowed_cpus()?) } else { None };
    let mut conns = Vec::with_capacity(streams.len());
    for (i, s) in streams.into_iter().enumerate() {
        let home = i % n_ports;
        // With --affine, a handle on every port, so that the connection can move to any of
        // them: the other ports get duplicates of the socket, its home port the socket.
        let mut handles: Vec<Option<_>> = std::iter::repeat_with(|| None).take(n_ports).collect();
        if args.affine {
            for q in (0..n_ports).filter(|&q| q != home) {
                let fd = s.try_clone().map_err(|e| format!("cannot duplicate a socket: {e}"))?;
                handles[q] = Some(ports[q].associate(fd, i).map_err(use_port)?);
            }
        }
        handles[home] = Some(ports[home].associate(s, i).map_err(use_port)?);
        report.backend = ports[home].backend().map(|b| b.name());
        conns.push(Conn::new(i, handles, home));
    }
    // Port q's worker is worker q: pinned to the q-th allowed CPU.
    let affinity = match (&cpus, args.affine) {
        (Some(cpus), true) if !cpus.is_empty() => Some(Affinity {
            ports: ports.clone(),
            cpus: (0..n_ports).map(|q| cpus[q % cpus.len()]).collect(),
        }),
        _ => None,
    };
    let (size, pipeline) = (args.size as usize, args.pipeline as usize);
    let shared = Arc::new(Shared {
        conns,
        size,
        pipeline,
        open_loop: args.rate.is_some(),
        recv_capacity: (size.saturating_mul(pipeline)).clamp(4096, 256 << 10),
        stopping: AtomicBool::new(false),
        closing: AtomicBool::new(false),
        messages: AtomicU64::new(0),
        failed: AtomicUsize::new(0),
        errors: Mutex::new(Default::default()),
        affinity,
        moved: AtomicU64::new(0),
    });
    let hist = new_histogram()?;
    let pinned = Arc::new(Mutex::new(Vec::new()));
    let workers = spawn_workers(&ports, &shared, workers, &hist, cpus.as_deref(), &pinned)?;

    let t0 = Instant::now();
    for (p, port) in ports.iter().enumerate() {
        // A port's first operations go to the kernel in one system call.
        port.batch(|| shared.conns.iter().skip(p).step_by(n_ports).for_each(|c| shared.start(c)));
    }
    let pacer = match args.rate {
        None => None,
        Some(rate) => {
            let (p, s) = (ports.clone(), Arc::clone(&shared));
            let spawned =
                std::thread::Builder::new().name("load-pacer".into()).spawn(move || pace(&p, &s, rate, t0));
            match spawned {
                Ok(h) => Some(h),
                Err(e) => {
                    drop(shut_down(&ports, shared, workers, hist));
                    return Err(format!("cannot start the pacing thread: {e}"));
                }
            }
        }
    };

    let (t_stop, was_interrupted) = show_progress(&shared, t0, args.duration, &interrupted);
    shared.stopping.store(true, Ordering::Release);
    if let Some(p) = pacer {
        let _ = p.join();
    }
    // Outstanding echoes get a grace period; the clock stops at the last one.
    let grace_end = Instant::now() + GRACE;
    let mut t_end = t_stop;
    loop {
        if outstanding(&shared) == 0 && ports.iter().all(|p| p.queued() == 0) {
            t_end = Instant::now();
            break;
        }
        if Instant::now() >= grace_end || (interrupted.load(Ordering::Relaxed) && !was_interrupted) {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let unanswered = outstanding(&shared) as u64;
    let unsent = shared.conns.iter().map(Conn::backlog).sum::<usize>() as u64;
    report.moved = shared.moved.load(Ordering::Relaxed);
    let (hist, errors) = shut_down(&ports, shared, workers, hist)?;
    // Every worker has been joined: the CPUs they pinned themselves to, worker by worker.
    let mut pinned = std::mem::take(&mut *lock(&pinned));
    pinned.sort_unstable();
    report.pinned_cpus = pinned.into_iter().map(|(_, cpu)| cpu).collect();

    let seconds = t_end.saturating_duration_since(t0).as_secs_f64().max(1e-9);
    let messages = hist.len();
    let r = report;
    r.seconds = seconds;
    r.messages = messages;
    r.msgs_per_sec = messages as f64 / seconds;
    r.mib_per_sec = (messages as f64 * size as f64) / seconds / (1024.0 * 1024.0);
    r.latency_us = Latency::from_histogram(&hist);
    r.errors = errors.mismatches + errors.connection + unanswered;
    r.mismatches = errors.mismatches;
    r.connection_errors = errors.connection;
    r.unanswered = unanswered;
    r.unsent = unsent;
    r.first_error = errors.first.or_else(|| {
        (unanswered > 0).then(|| format!("{unanswered} messages unanswered {GRACE:?} after the run"))
    });
    r.interrupted = was_interrupted;
    Ok(())
}

/// The end of a run: closing the ports cancels every operation still pending (the
/// receives, and sends a stalled server never took) and stops the workers; once they are
/// joined, `drain` collects the cancelled packets with their buffers; only then are the
/// sockets closed, after their last packet. Returns the merged latencies and the errors.
fn shut_down(
    ports: &[CompletionPort<Ctx>],
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<Histogram<u64>>>,
    mut hist: Histogram<u64>,
) -> Result<(Histogram<u64>, conn::Errors), String> {
    shared.closing.store(true, Ordering::Release);
    ports.iter().for_each(CompletionPort::close);
    let mut panicked = false;
    for w in workers {
        match w.join() {
            Ok(h) => {
                // Same bounds on both sides: adding cannot fail.
                let _ = hist.add(&h);
            }
            Err(_) => panicked = true,
        }
    }
    ports.iter().for_each(|p| drop(p.drain()));
    let Ok(shared) = Arc::try_unwrap(shared) else {
        return Err("internal error: a thread still holds the connections".into());
    };
    let errors = std::mem::take(&mut *lock(&shared.errors));
    drop(shared.conns);
    if panicked {
        return Err("a worker thread panicked".into());
    }
    Ok((hist, errors))
}

/// Opens `n` connections to `addr`, with `TCP_NODELAY`, recording in `stats` how long
/// each took and why any failed. Stops at the first failure.
fn connect_all(addr: &str, n: usize, stats: &mut Connect) -> Result<Vec<TcpStream>, String> {
    let targets: Vec<SocketAddr> =
        addr.to_socket_addrs().map_err(|e| format!("cannot resolve '{addr}': {e}"))?.collect();
    let mut times = new_histogram()?;
    let mut streams = Vec::with_capacity(n);
    let result = loop {
        if streams.len() == n {
            break Ok(());
        }
        stats.attempted += 1;
        let start = Instant::now();
        let mut last = None;
        let stream = targets
            .iter()
            .find_map(|t| TcpStream::connect_timeout(t, CONNECT_TIMEOUT).map_err(|e| last = Some(e)).ok());
        let Some(stream) = stream else {
            let why = last.as_ref().map_or_else(|| "no address".to_string(), |e| e.to_string());
            *stats.failures.entry(why.clone()).or_default() += 1;
            let why = last.as_ref().map_or(why, limits::explain);
            break Err(format!("cannot connect to {addr}: {why}"));
        };
        let micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        times.saturating_record(micros.max(1));
        stats.connected += 1;
        if let Err(e) = stream.set_nodelay(true) {
            break Err(format!("cannot set TCP_NODELAY: {e}"));
        }
        streams.push(stream);
    };
    stats.time_us = Latency::from_histogram(&times);
    result.map(|()| streams)
}

/// An empty histogram of latencies in microseconds, 3 significant digits.
fn new_histogram() -> Result<Histogram<u64>, String> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).map_err(|e| format!("cannot create a histogram: {e}"))
}

/// Spawns `n` workers, each port taking its share: each runs its port's packets until
/// the port closes, and returns the latencies it recorded.
fn spawn_workers(
    ports: &[CompletionPort<Ctx>],
    shared: &Arc<Shared>,
    n: usize,
    empty: &Histogram<u64>,
    cpus: Option<&[usize]>,
    pinned: &Arc<Mutex<Vec<(usize, usize)>>>,
) -> Result<Vec<JoinHandle<Histogram<u64>>>, String> {
    let mut workers = Vec::with_capacity(n);
    let homes = (0..ports.len()).flat_map(|p| std::iter::repeat_n(p, share(n, ports.len(), p)));
    for (i, home) in homes.enumerate() {
        let (p, shared, mut hist) = (ports[home].clone(), Arc::clone(shared), empty.clone());
        let cpu = cpus.filter(|c| !c.is_empty()).map(|c| c[i % c.len()]);
        let pinned = Arc::clone(pinned);
        let spawned = std::thread::Builder::new().name(format!("load-worker-{i}")).spawn(move || {
            if let Some(cpu) = cpu.filter(|&c| pin_to(c)) {
                lock(&pinned).push((i, cpu));
            }
            let mut batch = Vec::with_capacity(BATCH);
            loop {
                match p.get_many_into(&mut batch, BATCH, None) {
                    // The operations a batch starts go to the kernel in one system call.
                    Ok(_) => p.batch(|| batch.drain(..).for_each(|p| shared.handle(p, &mut hist))),
                    Err(GetError::Closed) => return hist,
                    Err(e) => {
                        tracing::error!(error = %e, "worker get failed");
                        return hist;
                    }
                }
            }
        });
        match spawned {
            Ok(h) => workers.push(h),
            Err(e) => {
                ports.iter().for_each(CompletionPort::close);
                workers.into_iter().for_each(|w| drop(w.join()));
                return Err(format!("cannot start a worker thread: {e}"));
            }
        }
    }
    Ok(workers)
}

/// The CPUs this process may run on (its affinity mask), in order.
fn allowed_cpus() -> Result<Vec<usize>, String> {
    let set = rustix::thread::sched_getaffinity(None)
        .map_err(|e| format!("cannot read the CPU affinity (--pin): {e}"))?;
    Ok((0..rustix::thread::CpuSet::MAX_CPU).filter(|&c| set.is_set(c)).collect())
}

/// Pins the calling thread to `cpu`; returns whether its affinity is now that CPU alone.
/// A failure (the CPU went offline, a container changed the mask) is logged and the
/// thread runs unpinned.
fn pin_to(cpu: usize) -> bool {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    if let Err(e) = rustix::thread::sched_setaffinity(None, &set) {
        tracing::warn!(cpu, error = %e, "cannot pin a load worker; it runs unpinned");
        return false;
    }
    rustix::thread::sched_getaffinity(None).is_ok_and(|now| now == set)
}

/// Open loop: posts one packet per message at the instant it is due, round-robin over
/// the connections (each to its connection's port), until the run stops.
fn pace(ports: &[CompletionPort<Ctx>], shared: &Shared, rate: f64, t0: Instant) {
    let n = shared.conns.len() as u64;
    let due_at = |k: u64| Duration::try_from_secs_f64(k as f64 / rate).ok().and_then(|d| t0.checked_add(d));
    let mut k = 0u64;
    while !shared.stopping.load(Ordering::Acquire) {
        // Post what is due, a bounded number at a time so that stopping is seen promptly.
        let now = Instant::now();
        for _ in 0..10_000 {
            match due_at(k) {
                Some(t) if t <= now => {
                    let conn = (k % n) as usize;
                    if ports[conn % ports.len()].post(conn, 0, Ctx::Pace(t)).is_err() {
                        return;
                    }
                    k += 1;
                }
                Some(_) => break,
                None => return,
            }
        }
        let Some(next) = due_at(k) else { return };
        let wait = next.saturating_duration_since(Instant::now()).min(Duration::from_millis(5));
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

/// Messages sent and not yet echoed, over all connections.
fn outstanding(shared: &Shared) -> usize {
    shared.conns.iter().map(Conn::outstanding).sum()
}

/// Shows msgs/s on stderr until the run's end, an interrupt, or every connection failed.
/// Returns when it stopped and whether it was interrupted.
fn show_progress(
    shared: &Shared,
    t0: Instant,
    duration: Duration,
    interrupted: &AtomicBool,
) -> (Instant, bool) {
    let end = t0.checked_add(duration);
    let bar = ProgressBar::new(duration.as_millis().try_into().unwrap_or(u64::MAX));
    if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed:>4} [{bar:30}] {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    let (mut last_t, mut last_n) = (t0, 0u64);
    let stopped = loop {
        std::thread::sleep(Duration::from_millis(50));
        let now = Instant::now();
        if interrupted.load(Ordering::Relaxed) {
            break (now, true);
        }
        if end.is_some_and(|e| now >= e) || shared.failed.load(Ordering::Relaxed) == shared.conns.len() {
            break (now, false);
        }
        if now.duration_since(last_t) >= Duration::from_millis(250) {
            let n = shared.messages.load(Ordering::Relaxed);
            let rate = (n - last_n) as f64 / now.duration_since(last_t).as_secs_f64();
            let errors = {
                let e = lock(&shared.errors);
                e.mismatches + e.connection
            };
            bar.set_message(format!("{rate:.0} msgs/s, {n} messages, {errors} errors"));
            (last_t, last_n) = (now, n);
        }
        bar.set_position(now.duration_since(t0).as_millis().try_into().unwrap_or(u64::MAX));
    };
    bar.finish_and_clear();
    stopped
}
