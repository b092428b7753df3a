//! 4 KiB random reads from a page-cached file through a `CompletionPort`, against fio's
//! io_uring engine with the same parameters, in the same run.
//!
//! One thread keeps `depth` reads in flight: it reaps with `get_many_into`, then re-issues
//! one read per completion at a random 4 KiB-aligned offset (xorshift), reusing the
//! completed buffer. Variants, run in turn (A B A B ...) for `--rounds` rounds per depth:
//!
//! * `port`: refills are submitted inside `port.batch` (one `io_uring_enter` at its end);
//! * `port-nobatch`: refills are plain calls; a thread running on the port defers them to
//!   its next `get`, whose kernel entry submits them and waits in one system call;
//! * `fio`: `fio --ioengine=io_uring` with fio's default submission (one enter per I/O);
//! * `fio-batch`: the same with `--iodepth_batch_submit=<depth>
//!   --iodepth_batch_complete_min=1`. fio 3.33 still enters the kernel once per read with
//!   these (it reaps one completion, queues one read, and the queue is full again);
//! * `fio-batchmax`: `fio-batch` plus `--iodepth_batch_complete_max=<depth>`: fio reaps
//!   every ready completion (at least one), then submits the refills together. This is
//!   what the port loop does, so it is the closest baseline.
//!
//! At depth 1 the fio batch variants are fio itself and are skipped.
//!
//! `--fio-engine psync` compares against fio's synchronous engine instead (issue 10, the
//! epoll backend's file pool): `--numjobs=<depth> --iodepth=1`, as psync keeps one read
//! in flight per job. `--bs` sets the block size (default 4 KiB). The port's backend is
//! whatever `COMPLETION_PORT_BACKEND` says (`benchmarks/run-fio.sh` runs each in turn).
//!
//! Prints every round's IOPS, the medians and the ratios port/fio.

#![forbid(unsafe_code)]

use benchmarks::{cpu_table, process_cpu_ns, ratio, table, thread_cpu_ns, Series, XorShift};
use clap::Parser;
use completion_port::{CompletionPort, Handle};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

/// The unit of the test file's data pattern (and the default block size).
const BS: u64 = 4096;

/// Command-line flags.
#[derive(Parser, Debug)]
#[command(about = "4 KiB random reads, page-cached: completion-port vs fio (io_uring)")]
struct Args {
    /// The file to read; created (filled with non-zero data) if missing or of another size.
    #[arg(long, default_value = "/tmp/cport-bench-1g")]
    file: PathBuf,
    /// File size in MiB.
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Rounds per variant and depth (medians are taken over these).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Queue depths to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    depths: Vec<usize>,
    /// Variants to run, in this order within each round.
    #[arg(long, value_delimiter = ',', default_value = "port,port-nobatch,fio,fio-batch,fio-batchmax")]
    variants: Vec<Variant>,
    /// The fio binary.
    #[arg(long, default_value = "fio")]
    fio: PathBuf,
    /// Block size of every read, in bytes (a multiple of 4096).
    #[arg(long, default_value_t = BS)]
    bs: u64,
    /// fio's engine: `io_uring` (depth = `--iodepth`) or `psync` (depth = `--numjobs`).
    #[arg(long, default_value = "io_uring")]
    fio_engine: FioEngine,
    /// Worker threads on the port (its concurrency value), sharing the `depth` reads in
    /// flight: each keeps its share going and refills whatever completion it takes, as
    /// fio's psync engine spreads `depth` over jobs. 1: one thread does everything.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    port_threads: u64,
    /// Ports side by side, each with one thread and its own open of the file (its own
    /// open file description), sharing the `depth` reads in flight: the layout of fio's
    /// psync jobs, each of which opens the file itself; at most `depth` of them run. 1: one
    /// port (see `--port-threads`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    ports: u64,
}

/// The fio engine to compare against.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum FioEngine {
    /// `--ioengine=io_uring`, one job keeping `depth` reads in flight.
    #[value(name = "io_uring")]
    IoUring,
    /// `--ioengine=psync`, `depth` jobs with one read in flight each.
    Psync,
}

/// What one measurement runs.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    /// The port, refills inside `port.batch`.
    Port,
    /// The port, refills deferred to the next `get` (no `batch`).
    PortNobatch,
    /// fio, default submission.
    Fio,
    /// fio, batched submission.
    FioBatch,
    /// fio, batched submission and batched reaping.
    FioBatchmax,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Port => "port",
            Variant::PortNobatch => "port-nobatch",
            Variant::Fio => "fio",
            Variant::FioBatch => "fio-batch",
            Variant::FioBatchmax => "fio-batchmax",
        }
    }

    fn is_fio(self) -> bool {
        matches!(self, Variant::Fio | Variant::FioBatch | Variant::FioBatchmax)
    }
}

fn main() -> io::Result<()> {
    let args = Args::parse();
    let size = args.size_mib * 1024 * 1024;
    if size < BS {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "--size-mib must be at least 1"));
    }
    if args.bs == 0 || args.bs % BS != 0 || args.bs > size {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--bs must be a multiple of 4096 within the file",
        ));
    }
    if args.depths.contains(&0) || args.rounds == 0 || args.seconds <= 0.0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "depths, rounds, seconds must be > 0"));
    }
    let dur = Duration::from_secs_f64(args.seconds);
    prepare_file(&args.file, size)?;
    let warm = Instant::now();
    let read = warm_cache(&args.file)?;
    println!(
        "randread: file={} size={} MiB bs={} seconds={} rounds={} backend={} (page cache warmed: {} MiB in {:.2} s)",
        args.file.display(),
        args.size_mib,
        args.bs,
        args.seconds,
        args.rounds,
        std::env::var(completion_port::BACKEND_ENV).unwrap_or_else(|_| "auto".into()),
        read >> 20,
        warm.elapsed().as_secs_f64()
    );
    let blocks = size / args.bs;
    let mut seed = 0x5EED_0001_u64;
    let mut summary = Vec::new();
    for &depth in &args.depths {
        // At depth 1 fio's batch options change nothing: run plain fio only.
        let variants: Vec<Variant> = args
            .variants
            .iter()
            .copied()
            .filter(|&v| {
                (depth > 1 && args.fio_engine == FioEngine::IoUring)
                    || !matches!(v, Variant::FioBatch | Variant::FioBatchmax)
            })
            .collect();
        for v in &variants {
            if v.is_fio() {
                println!("  {}: {} {}", v.name(), args.fio.display(), fio_args(&args, depth, *v).join(" "));
            }
        }
        let mut series: Vec<Series> = variants.iter().map(|v| Series::new(v.name())).collect();
        for round in 1..=args.rounds {
            for (i, &v) in variants.iter().enumerate() {
                seed = seed.wrapping_add(0x9E37_79B9);
                let job = Job { path: &args.file, blocks, bs: args.bs, depth, dur };
                let m = match v {
                    Variant::Port if args.ports > 1 => run_ports(job, args.ports as usize, seed)?,
                    Variant::Port if args.port_threads > 1 => {
                        run_port_threads(job, args.port_threads as usize, seed)?
                    }
                    Variant::Port => run_port(job, true, seed)?,
                    Variant::PortNobatch => run_port(job, false, seed)?,
                    Variant::Fio | Variant::FioBatch | Variant::FioBatchmax => run_fio(&args, depth, v)?,
                };
                println!(
                    "  depth={depth:<3} round={round} {:<13} {:>10.0} IOPS ({} reads, {:.0} ns CPU/read)",
                    v.name(),
                    m.iops,
                    m.reads,
                    m.cpu_ns_per_read
                );
                io::stdout().flush()?;
                series[i].values.push(m.iops);
                series[i].cpu.push(m.cpu_ns_per_read);
            }
        }
        println!();
        print!("{}", table(&format!("depth={depth}"), "IOPS", &series));
        print!("{}", cpu_table(&format!("depth={depth}"), &series));
        let find = |name: &str| series.iter().find(|s| s.name == name);
        for port in ["port", "port-nobatch"] {
            for base in ["fio", "fio-batch", "fio-batchmax"] {
                if let (Some(p), Some(b)) = (find(port), find(base)) {
                    let r = ratio(p.median(), b.median());
                    // Reads per CPU-second, port over baseline: > 1 means the port is cheaper.
                    let c = ratio(b.cpu_median(), p.cpu_median());
                    println!(
                        "{:<12} {port}/{base}: IOPS ratio {r:.3}, reads per CPU-second ratio {c:.3}",
                        ""
                    );
                    summary.push((depth, format!("{port}/{base}"), r, c));
                }
            }
        }
        println!();
    }
    println!("summary (ratios of medians; IOPS, then reads per CPU-second):");
    for (depth, what, r, c) in summary {
        println!("  depth={depth:<3} {what:<26} {r:.3}  {c:.3}");
    }
    Ok(())
}

/// What one measurement found.
struct Measured {
    /// Reads per second over the measured window.
    iops: f64,
    /// Reads completed in the window.
    reads: u64,
    /// CPU time (user + system, all threads) per read.
    cpu_ns_per_read: f64,
}

/// The byte every position of the file holds: never zero, varies by block and offset.
fn pattern(pos: u64) -> u8 {
    ((pos / BS).wrapping_mul(31).wrapping_add(pos % BS) % 255) as u8 + 1
}

/// Creates `path` with `size` bytes of non-zero data unless it already has that size.
fn prepare_file(path: &Path, size: u64) -> io::Result<()> {
    if std::fs::metadata(path).is_ok_and(|m| m.len() == size) {
        return Ok(());
    }
    let t = Instant::now();
    let mut f = File::create(path)?;
    let mut chunk = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    while pos < size {
        let n = chunk.len().min((size - pos) as usize);
        for (i, b) in chunk[..n].iter_mut().enumerate() {
            *b = pattern(pos + i as u64);
        }
        f.write_all(&chunk[..n])?;
        pos += n as u64;
    }
    f.sync_all()?;
    eprintln!("created {} ({} MiB) in {:.1} s", path.display(), size >> 20, t.elapsed().as_secs_f64());
    Ok(())
}

/// Reads the whole file once so that every block is in the page cache.
fn warm_cache(path: &Path) -> io::Result<u64> {
    let mut f = File::open(path)?;
    let mut chunk = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut chunk)?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
    }
}

/// What one measurement through the port reads: random blocks of `bs` bytes among the
/// first `blocks` of `path`, `depth` reads in flight, for `dur`.
#[derive(Clone, Copy)]
struct Job<'a> {
    path: &'a Path,
    blocks: u64,
    bs: u64,
    depth: usize,
    dur: Duration,
}

/// One measurement through the port.
fn run_port(job: Job<'_>, batch: bool, seed: u64) -> io::Result<Measured> {
    let port: CompletionPort<()> = CompletionPort::new(1);
    let file = port.associate(File::open(job.path)?, 0)?;
    let cpu0 = process_cpu_ns()?;
    let r = keep_reading(&port, &file, job, batch, seed)?;
    let cpu = process_cpu_ns()?.saturating_sub(cpu0);
    Ok(Measured {
        iops: r.counted as f64 / r.window.as_secs_f64(),
        reads: r.counted,
        cpu_ns_per_read: cpu as f64 / r.done as f64,
    })
}

/// What [`keep_reading`] did.
struct Reads {
    /// Reads reaped up to and including the batch in which the window was seen to end.
    counted: u64,
    /// From the first read to that moment.
    window: Duration,
    /// Every read reaped, those still in flight at the end included.
    done: u64,
}

/// Keeps `job.depth` random reads of `job.bs` bytes in flight on `file` (the job's file,
/// associated with `port`) from this thread, refilling each completion (inside
/// `port.batch` if `batch`), until `job.dur` has passed; then reaps the reads still in
/// flight without counting them.
fn keep_reading(
    port: &CompletionPort<()>,
    file: &Handle<()>,
    job: Job<'_>,
    batch: bool,
    seed: u64,
) -> io::Result<Reads> {
    let Job { blocks, bs, depth, dur, .. } = job;
    let mut rng = XorShift::new(seed);
    // The first `depth` reads: this thread is not yet running on the port, so without a
    // batch each would be its own system call.
    port.batch(|| -> io::Result<()> {
        for _ in 0..depth {
            file.read_at(Vec::with_capacity(bs as usize), rng.below(blocks) * bs, ())?;
        }
        Ok(())
    })?;
    let mut in_flight = depth;
    let mut out = Vec::with_capacity(depth);
    let mut done = 0u64;
    let start = Instant::now();
    let end = start + dur;
    let mut measured: Option<(u64, Duration)> = None;
    while in_flight > 0 {
        out.clear();
        let n = port.get_many_into(&mut out, depth, None)?;
        in_flight -= n;
        done += n as u64;
        check_full_reads(&out, bs)?;
        if measured.is_none() {
            let now = Instant::now();
            if now >= end {
                // Stop issuing; the reads still in flight are reaped but not counted.
                measured = Some((done, now - start));
                continue;
            }
            let mut refill = || -> io::Result<()> {
                for c in out.drain(..) {
                    let buf = c.buffer.unwrap_or_else(|| Vec::with_capacity(bs as usize));
                    file.read_at(buf, rng.below(blocks) * bs, ())?;
                    in_flight += 1;
                }
                Ok(())
            };
            if batch {
                port.batch(refill)?;
            } else {
                refill()?;
            }
        }
    }
    let (counted, window) = measured.unwrap_or((done, start.elapsed()));
    Ok(Reads { counted, window, done })
}

/// One measurement through the port with `threads` workers sharing `depth` reads in
/// flight (refills inside `port.batch`). Each worker issues its share, then refills every
/// completion it takes until the window ends; then the reads still in flight are reaped
/// and not counted.
fn run_port_threads(job: Job<'_>, threads: usize, seed: u64) -> io::Result<Measured> {
    let Job { path, blocks, bs, depth, dur } = job;
    let port: CompletionPort<()> = CompletionPort::new(threads);
    let file = port.associate(File::open(path)?, 0)?;
    let start = Instant::now();
    let shared = Workers {
        port: &port,
        file: &file,
        blocks,
        bs,
        depth,
        end: start + dur,
        in_flight: AtomicUsize::new(0),
        counted: AtomicU64::new(0),
        cpu_ns: AtomicU64::new(0),
    };
    let cpu0 = process_cpu_ns()?;
    let errors: Vec<io::Error> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (shared, share) = (&shared, depth / threads + usize::from(t < depth % threads));
                scope.spawn(move || shared.run(share, seed.wrapping_add(t as u64 * 0x9E37_79B9)))
            })
            .collect();
        workers
            .into_iter()
            .filter_map(|w| w.join().unwrap_or_else(|_| Err(io::Error::other("a worker panicked"))).err())
            .collect()
    });
    if let Some(e) = errors.into_iter().next() {
        return Err(e);
    }
    let ops = shared.counted.load(SeqCst);
    let elapsed = dur.min(start.elapsed());
    // The workers have exited: their CPU time is in `cpu_ns`, not in the live threads'.
    let cpu = process_cpu_ns()?.saturating_sub(cpu0) + shared.cpu_ns.load(SeqCst);
    Ok(Measured {
        iops: ops as f64 / elapsed.as_secs_f64(),
        reads: ops,
        cpu_ns_per_read: cpu as f64 / ops.max(1) as f64,
    })
}

/// One measurement through `ports` ports side by side, each with one thread that opens
/// the file itself and keeps its share of the `depth` reads in flight until the window
/// ends (the reads still in flight then are reaped and not counted). Nothing is shared
/// between the threads but the page cache.
fn run_ports(job: Job<'_>, ports: usize, seed: u64) -> io::Result<Measured> {
    let Job { depth, dur, .. } = job;
    // No more ports than reads in flight: each keeps at least one going.
    let ports = ports.min(depth).max(1);
    let start = Instant::now();
    let cpu0 = process_cpu_ns()?;
    let results: Vec<io::Result<PortRun>> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..ports)
            .map(|t| {
                let share = depth / ports + usize::from(t < depth % ports);
                let seed = seed.wrapping_add(t as u64 * 0x9E37_79B9);
                scope.spawn(move || one_port(Job { depth: share, ..job }, seed))
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|_| Err(io::Error::other("a port thread panicked"))))
            .collect()
    });
    let mut runs = Vec::with_capacity(ports);
    for r in results {
        runs.push(r?);
    }
    // The port threads have exited (their CPU time is in their runs); the ports, still
    // alive, keep any file-pool threads they started, counted here.
    let cpu = process_cpu_ns()?.saturating_sub(cpu0) + runs.iter().map(|r| r.cpu_ns).sum::<u64>();
    let ops = runs.iter().map(|r| r.counted).sum::<u64>();
    drop(runs);
    let elapsed = dur.min(start.elapsed());
    Ok(Measured {
        iops: ops as f64 / elapsed.as_secs_f64(),
        reads: ops,
        cpu_ns_per_read: cpu as f64 / ops.max(1) as f64,
    })
}

/// What one port of [`run_ports`] did; the port and its file stay open until the caller
/// has read the process's CPU time.
struct PortRun {
    counted: u64,
    cpu_ns: u64,
    _file: Handle<()>,
    _port: CompletionPort<()>,
}

/// One port of [`run_ports`]: its reads (as [`keep_reading`] counts them) and the
/// thread's CPU time.
fn one_port(job: Job<'_>, seed: u64) -> io::Result<PortRun> {
    let cpu0 = thread_cpu_ns()?;
    let port: CompletionPort<()> = CompletionPort::new(1);
    let file = port.associate(File::open(job.path)?, 0)?;
    let counted = keep_reading(&port, &file, job, true, seed)?.counted;
    Ok(PortRun { counted, cpu_ns: thread_cpu_ns()?.saturating_sub(cpu0), _file: file, _port: port })
}

/// What the workers of [`run_port_threads`] share.
struct Workers<'a> {
    port: &'a CompletionPort<()>,
    file: &'a Handle<()>,
    blocks: u64,
    bs: u64,
    depth: usize,
    /// When the window ends: reads completed later are not counted, and none are issued.
    end: Instant,
    in_flight: AtomicUsize,
    /// Reads completed within the window.
    counted: AtomicU64,
    /// CPU time of the workers, each adding its own at exit.
    cpu_ns: AtomicU64,
}

impl Workers<'_> {
    /// One worker: issues `share` reads, then takes completions and refills them until
    /// the window ends and nothing is in flight; adds its CPU time to `cpu_ns`.
    fn run(&self, share: usize, seed: u64) -> io::Result<()> {
        let cpu_start = thread_cpu_ns()?;
        let r = self.read_until_the_end(share, seed);
        self.cpu_ns.fetch_add(thread_cpu_ns()?.saturating_sub(cpu_start), SeqCst);
        r
    }

    fn read_until_the_end(&self, share: usize, seed: u64) -> io::Result<()> {
        let mut rng = XorShift::new(seed);
        // Counted before the reads start (another worker may take their packets), once
        // per batch rather than once per read.
        self.in_flight.fetch_add(share, SeqCst);
        self.port.batch(|| -> io::Result<()> {
            for _ in 0..share {
                self.read(Vec::with_capacity(self.bs as usize), &mut rng)?;
            }
            Ok(())
        })?;
        let mut out = Vec::with_capacity(self.depth);
        loop {
            out.clear();
            match self.port.get_many_into(&mut out, self.depth, Some(Duration::from_millis(10))) {
                Ok(_) => check_full_reads(&out, self.bs)?,
                Err(completion_port::GetError::TimedOut) => {}
                Err(e) => return Err(io::Error::other(e.to_string())),
            }
            let live = Instant::now() < self.end;
            if live {
                self.counted.fetch_add(out.len() as u64, SeqCst);
            }
            let left = self.in_flight.fetch_sub(out.len(), SeqCst) - out.len();
            if !live {
                if left == 0 {
                    return Ok(());
                }
                continue;
            }
            self.in_flight.fetch_add(out.len(), SeqCst);
            self.port.batch(|| -> io::Result<()> {
                for c in out.drain(..) {
                    self.read(c.buffer.unwrap_or_else(|| Vec::with_capacity(self.bs as usize)), &mut rng)?;
                }
                Ok(())
            })?;
        }
    }

    /// Starts one read of a random block into `buf` (already counted in `in_flight`).
    fn read(&self, buf: Vec<u8>, rng: &mut XorShift) -> io::Result<()> {
        self.file.read_at(buf, rng.below(self.blocks) * self.bs, ())?;
        Ok(())
    }
}

/// Fails unless every packet of `out` is a read of `bs` bytes.
fn check_full_reads(out: &[completion_port::Completion<()>], bs: u64) -> io::Result<()> {
    for c in out {
        match &c.result {
            Ok(n) if *n == bs as usize => {}
            Ok(n) => return Err(io::Error::other(format!("short read: {n} bytes"))),
            Err(e) => return Err(io::Error::new(e.kind(), e.to_string())),
        }
    }
    Ok(())
}

/// fio's arguments for one measurement.
fn fio_args(args: &Args, depth: usize, v: Variant) -> Vec<String> {
    let ms = (args.seconds * 1000.0).round() as u64;
    let mut a: Vec<String> = [
        "--name=rr".to_string(),
        format!("--filename={}", args.file.display()),
        format!("--size={}m", args.size_mib),
        "--rw=randread".into(),
        format!("--bs={}", args.bs),
        "--direct=0".into(),
        format!("--runtime={ms}ms"),
        "--time_based".into(),
        "--group_reporting".into(),
        // Keep the page cache fio would otherwise drop at start (we warmed it).
        "--invalidate=0".into(),
        // Uniform random offsets with replacement, as the port loop draws them.
        "--norandommap".into(),
        "--randrepeat=0".into(),
        "--output-format=json".into(),
    ]
    .into();
    match args.fio_engine {
        FioEngine::IoUring => a.extend([
            "--ioengine=io_uring".into(),
            format!("--iodepth={depth}"),
            "--numjobs=1".into(),
            "--fixedbufs=0".into(),
            "--registerfiles=0".into(),
            "--sqthread_poll=0".into(),
            "--hipri=0".into(),
        ]),
        FioEngine::Psync => {
            a.extend(["--ioengine=psync".into(), "--iodepth=1".into(), format!("--numjobs={depth}")]);
        }
    }
    if matches!(v, Variant::FioBatch | Variant::FioBatchmax) {
        a.push(format!("--iodepth_batch_submit={depth}"));
        a.push("--iodepth_batch_complete_min=1".into());
    }
    if v == Variant::FioBatchmax {
        a.push(format!("--iodepth_batch_complete_max={depth}"));
    }
    a
}

/// Runs fio once; its CPU time is its own `usr_cpu + sys_cpu` share of `job_runtime`.
fn run_fio(args: &Args, depth: usize, v: Variant) -> io::Result<Measured> {
    let out = Command::new(&args.fio).args(fio_args(args, depth, v)).output().map_err(|e| {
        io::Error::new(e.kind(), format!("cannot run {}: {e} (install fio)", args.fio.display()))
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "fio failed ({}): {}{}",
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    // fio may print notes before the JSON document.
    let json = stdout.find('{').map_or("", |i| &stdout[i..]);
    let v: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("fio JSON: {e}")))?;
    let job = &v["jobs"][0];
    let field = |v: &serde_json::Value, name: &str| {
        v.as_f64().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("fio JSON lacks {name}")))
    };
    let iops = field(&job["read"]["iops"], "read.iops")?;
    let reads = field(&job["read"]["total_ios"], "read.total_ios")?;
    let cpu_share = (field(&job["usr_cpu"], "usr_cpu")? + field(&job["sys_cpu"], "sys_cpu")?) / 100.0;
    let runtime_ns = field(&job["job_runtime"], "job_runtime")? * 1e6;
    Ok(Measured { iops, reads: reads as u64, cpu_ns_per_read: cpu_share * runtime_ns / reads })
}
