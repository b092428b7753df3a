//! Helpers shared by the comparative benchmarks in `src/bin/`.
//!
//! The binaries measure `completion-port` against an outside baseline in the same process
//! run, alternating the two (A B A B ...) so that slow drift of a shared machine hits both
//! alike, and report per-round figures, medians and the ratio. See `run-io.sh` and
//! `results/` for how they are run and what they printed.

#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::io;

/// A xorshift64* generator: tiny, fast and good enough to pick random offsets.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (a zero seed is replaced, since xorshift would stay at 0).
    pub fn new(seed: u64) -> Self {
        Self(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }

    /// The next pseudo-random value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n` (`n > 0`), by multiply-shift (no division, negligible bias).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// The median of `values` (the mean of the middle two for an even count); 0 if empty.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// One measured variant: its name and one figure per round.
#[derive(Debug, Clone)]
pub struct Series {
    /// The variant's name as printed (`port`, `fio`, `raw`, ...).
    pub name: String,
    /// One figure per round, in the order measured.
    pub values: Vec<f64>,
    /// CPU nanoseconds per operation, one per round.
    pub cpu: Vec<f64>,
}

impl Series {
    /// An empty series called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), values: Vec::new(), cpu: Vec::new() }
    }

    /// The median of the rounds.
    pub fn median(&self) -> f64 {
        median(&self.values)
    }

    /// The median CPU time per operation.
    pub fn cpu_median(&self) -> f64 {
        median(&self.cpu)
    }
}

/// Formats a table of series: one row each, every round, then the median, all in `unit`.
/// `label` heads the first column (for example `depth=32`).
pub fn table(label: &str, unit: &str, series: &[Series]) -> String {
    table_with(label, unit, series, |s| s.values.clone())
}

/// Like [`table`], for the CPU time per operation of each series (`Series::cpu`).
pub fn cpu_table(label: &str, series: &[Series]) -> String {
    table_with(label, "ns/op", series, |s| s.cpu.clone())
}

fn table_with(label: &str, unit: &str, series: &[Series], pick: impl Fn(&Series) -> Vec<f64>) -> String {
    let rounds = series.iter().map(|s| pick(s).len()).max().unwrap_or(0);
    let mut out = String::new();
    let _ = write!(out, "{label:<12} {:<12}", "variant");
    for r in 1..=rounds {
        let _ = write!(out, " {:>12}", format!("round{r}"));
    }
    let _ = writeln!(out, " {:>12}", format!("median {unit}"));
    for s in series {
        let values = pick(s);
        let _ = write!(out, "{:<12} {:<12}", "", s.name);
        for v in &values {
            let _ = write!(out, " {v:>12.0}");
        }
        let _ = writeln!(out, " {:>12.0}", median(&values));
    }
    out
}

/// CPU time the calling thread has run, in nanoseconds (`/proc/thread-self/schedstat`).
///
/// # Errors
///
/// If the file cannot be read or parsed (a kernel without schedstat support).
pub fn thread_cpu_ns() -> io::Result<u64> {
    schedstat_ns("/proc/thread-self/schedstat")
}

/// CPU time every live thread of this process has run, in nanoseconds (the sum of
/// `/proc/self/task/*/schedstat`; it includes io_uring's kernel worker threads while they
/// exist, but not threads that have exited).
///
/// # Errors
///
/// If the files cannot be read or parsed.
pub fn process_cpu_ns() -> io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir("/proc/self/task")? {
        // A thread may exit between the listing and the read: skip it.
        if let Ok(ns) = schedstat_ns(entry?.path().join("schedstat")) {
            total += ns;
        }
    }
    Ok(total)
}

fn schedstat_ns(path: impl AsRef<std::path::Path>) -> io::Result<u64> {
    let text = std::fs::read_to_string(path)?;
    text.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unexpected schedstat format"))
}

/// `a / b`, or NaN if `b` is zero.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        f64::NAN
    } else {
        a / b
    }
}

/// A connected TCP pair on 127.0.0.1 with Nagle off: (client, server).
pub fn connected_pair() -> io::Result<(std::net::TcpStream, std::net::TcpStream)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let client = std::net::TcpStream::connect(listener.local_addr()?)?;
    let (server, _) = listener.accept()?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    Ok((client, server))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn cpu_time_advances() {
        let a = thread_cpu_ns().unwrap();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_add(std::hint::black_box(i));
        }
        std::hint::black_box(x);
        assert!(thread_cpu_ns().unwrap() > a);
        assert!(process_cpu_ns().unwrap() >= thread_cpu_ns().unwrap());
    }

    #[test]
    fn below_stays_in_range() {
        let mut rng = XorShift::new(0);
        let mut seen = [false; 7];
        for _ in 0..10_000 {
            let v = rng.below(7);
            assert!(v < 7);
            seen[v as usize] = true;
        }
        assert!(seen.iter().all(|&s| s), "every value comes up");
    }
}
