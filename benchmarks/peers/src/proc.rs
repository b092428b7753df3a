//! CPU time of processes and of the machine, from `/proc` (through the procfs crate).

use procfs::prelude::*;
use procfs::{CpuTime, KernelStats};
use serde_json::json;
use std::io;
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn proc_error(e: procfs::ProcError) -> io::Error {
    io::Error::other(e.to_string())
}

/// User + system CPU time of process `pid` so far, in seconds (`/proc/PID/stat`).
pub fn process_cpu(pid: i32) -> io::Result<f64> {
    process_times(pid).map(|(user, system)| user + system)
}

/// User and system CPU time of process `pid` so far, in seconds (`/proc/PID/stat`).
pub fn process_times(pid: i32) -> io::Result<(f64, f64)> {
    let stat = procfs::process::Process::new(pid).and_then(|p| p.stat()).map_err(proc_error)?;
    let tick = procfs::ticks_per_second() as f64;
    Ok((stat.utime as f64 / tick, stat.stime as f64 / tick))
}

/// Busy and total CPU ticks so far of the CPUs in `cpus` (all of them when empty), from
/// `/proc/stat`. Busy is everything but idle and iowait.
#[derive(Debug, Clone, Copy)]
pub struct Machine {
    busy: u64,
    total: u64,
    cpus: usize,
}

impl Machine {
    /// The counters now.
    pub fn now(cpus: &[usize]) -> io::Result<Self> {
        let stats = KernelStats::current().map_err(proc_error)?;
        let mut m = Machine { busy: 0, total: 0, cpus: 0 };
        let mut add = |t: &CpuTime| {
            let idle = t.idle + t.iowait.unwrap_or(0);
            // guest time is already counted in user time.
            let total = t.user
                + t.nice
                + t.system
                + idle
                + t.irq.unwrap_or(0)
                + t.softirq.unwrap_or(0)
                + t.steal.unwrap_or(0);
            m.busy += total - idle;
            m.total += total;
            m.cpus += 1;
        };
        if cpus.is_empty() {
            add(&stats.total);
        } else {
            for &c in cpus {
                let t = stats.cpu_time.get(c).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, format!("no CPU {c} in /proc/stat"))
                })?;
                add(t);
            }
        }
        Ok(m)
    }

    /// How many CPUs are counted.
    pub fn cpus(&self) -> usize {
        self.cpus
    }

    /// Fraction of the time between `earlier` and `self` that the CPUs were busy.
    pub fn busy_since(&self, earlier: &Machine) -> f64 {
        let total = self.total.saturating_sub(earlier.total);
        if total == 0 {
            return 0.0;
        }
        self.busy.saturating_sub(earlier.busy) as f64 / total as f64
    }
}

/// Options of `peers sample`.
#[derive(clap::Args, Debug)]
pub struct SampleArgs {
    /// Process to measure (repeat the flag for more).
    #[arg(long = "pid", required = true)]
    pids: Vec<i32>,
    /// Seconds to wait before the window opens.
    #[arg(long, default_value_t = 0.0)]
    delay: f64,
    /// Length of the window in seconds.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// CPUs whose busy fraction is reported (comma-separated; default: all).
    #[arg(long, value_delimiter = ',')]
    cpus: Vec<usize>,
}

/// Prints, as one JSON object, the CPU seconds each process used within the window, the
/// busy fraction of the CPUs and how many CPUs that fraction counts.
pub fn sample(args: &SampleArgs) -> io::Result<ExitCode> {
    if !(args.delay >= 0.0 && args.delay < 3600.0 && args.seconds > 0.0 && args.seconds < 3600.0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--delay and --seconds must be in [0, 3600)",
        ));
    }
    std::thread::sleep(Duration::from_secs_f64(args.delay));
    let cpu0: Vec<f64> = args.pids.iter().map(|&p| process_cpu(p)).collect::<io::Result<_>>()?;
    let m0 = Machine::now(&args.cpus)?;
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(args.seconds));
    let cpu1: Vec<f64> = args.pids.iter().map(|&p| process_cpu(p)).collect::<io::Result<_>>()?;
    let m1 = Machine::now(&args.cpus)?;
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu: serde_json::Map<String, serde_json::Value> = args
        .pids
        .iter()
        .zip(cpu0.iter().zip(&cpu1))
        .map(|(p, (a, b))| (p.to_string(), json!(b - a)))
        .collect();
    println!(
        "{}",
        json!({ "seconds": elapsed, "cpu_s": cpu, "busy": m1.busy_since(&m0), "busy_cpus": m1.cpus() })
    );
    Ok(ExitCode::SUCCESS)
}
