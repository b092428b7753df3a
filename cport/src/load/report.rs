//! The final report of `cport load`: text for people, or one JSON object.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;

/// Statistics of a set of durations in microseconds. Every field is `None` (JSON `null`)
/// when nothing was measured: no figure is made up for an empty run.
#[derive(Debug, Default, Serialize)]
pub struct Latency {
    /// Smallest.
    pub min: Option<u64>,
    /// Mean.
    pub mean: Option<f64>,
    /// Standard deviation.
    pub stdev: Option<f64>,
    /// Median.
    pub p50: Option<u64>,
    /// 90th percentile.
    pub p90: Option<u64>,
    /// 99th percentile.
    pub p99: Option<u64>,
    /// 99.9th percentile.
    pub p99_9: Option<u64>,
    /// 99.99th percentile.
    pub p99_99: Option<u64>,
    /// Largest.
    pub max: Option<u64>,
}

impl Latency {
    /// Reads the statistics off a histogram of microseconds (all `None` if it is empty).
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            min: Some(h.min()),
            mean: Some(h.mean()),
            stdev: Some(h.stdev()),
            p50: Some(h.value_at_quantile(0.5)),
            p90: Some(h.value_at_quantile(0.9)),
            p99: Some(h.value_at_quantile(0.99)),
            p99_9: Some(h.value_at_quantile(0.999)),
            p99_99: Some(h.value_at_quantile(0.9999)),
            max: Some(h.max()),
        }
    }

    /// The figures as text: `min 12  mean 15.3  stdev 2.1  p50 14 ...`, `-` for none.
    fn text(&self, with_tail: bool) -> String {
        fn int(v: Option<u64>) -> String {
            v.map_or_else(|| "-".into(), |v| v.to_string())
        }
        fn real(v: Option<f64>) -> String {
            v.map_or_else(|| "-".into(), |v| format!("{v:.1}"))
        }
        let mut s = format!(
            "min {}  mean {}  stdev {}  p50 {}",
            int(self.min),
            real(self.mean),
            real(self.stdev),
            int(self.p50)
        );
        if with_tail {
            s += &format!(
                "  p90 {}  p99 {}  p99.9 {}  p99.99 {}",
                int(self.p90),
                int(self.p99),
                int(self.p99_9),
                int(self.p99_99)
            );
        } else {
            s += &format!("  p99 {}", int(self.p99));
        }
        s + &format!("  max {}", int(self.max))
    }
}

/// How the connections were opened.
#[derive(Debug, Default, Serialize)]
pub struct Connect {
    /// Connection attempts made (they stop at the first failure).
    pub attempted: u64,
    /// Connections opened.
    pub connected: u64,
    /// Failed attempts by cause (the OS error's text).
    pub failures: BTreeMap<String, u64>,
    /// Time each successful connect took.
    pub time_us: Latency,
}

/// Everything `cport load` reports.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Why the run could not take place (no connection, no port), if it could not; the
    /// other figures are then those reached before the failure.
    pub error: Option<String>,
    /// Server address.
    pub addr: String,
    /// `"closed-loop"` or `"open-loop"`.
    pub mode: &'static str,
    /// The completion port's I/O backend ("io_uring" or "epoll"); `None` if the run ended
    /// before the port had one.
    pub backend: Option<&'static str>,
    /// Open loop: the target rate in messages per second.
    pub target_rate: Option<f64>,
    /// Connections asked for.
    pub connections: usize,
    /// Completion ports the connections were spread over (`--ports`).
    pub ports: usize,
    /// With `--pin`: the CPU each worker pinned itself to, in worker order (a worker the
    /// kernel would not pin is left out, with a warning); empty without `--pin`.
    pub pinned_cpus: Vec<usize>,
    /// With `--affine`: how many times a connection moved to the port of the CPU its
    /// replies arrive on.
    pub moved: u64,
    /// How connecting went.
    pub connect: Connect,
    /// Message size in bytes.
    pub size: usize,
    /// Most messages in flight per connection.
    pub pipeline: usize,
    /// Seconds measured (from the first send until the last echo, or until the end of
    /// the run if echoes were still missing).
    pub seconds: f64,
    /// Messages echoed completely, every byte checked.
    pub messages: u64,
    /// `messages / seconds`.
    pub msgs_per_sec: f64,
    /// Echoed payload in MiB per second (one direction).
    pub mib_per_sec: f64,
    /// Latency of a message: from its send (closed loop) or the instant it was due (open
    /// loop) to the arrival of its last echoed byte.
    pub latency_us: Latency,
    /// `mismatches + connection_errors + unanswered`.
    pub errors: u64,
    /// Connections whose echo differed from what was sent.
    pub mismatches: u64,
    /// Connections that failed otherwise.
    pub connection_errors: u64,
    /// Messages sent but not echoed within the grace period after the run.
    pub unanswered: u64,
    /// Open loop: messages that came due but were never sent, held back because
    /// `pipeline` messages were in flight when the run ended (the server could not keep
    /// up). They are in no latency figure; `msgs_per_sec` below the target says the same.
    pub unsent: u64,
    /// The first error, if any.
    pub first_error: Option<String>,
    /// The run was cut short by SIGINT or SIGTERM.
    pub interrupted: bool,
}

impl Report {
    /// The report as text lines.
    pub fn text(&self) -> String {
        let l = &self.latency_us;
        let mode = match self.target_rate {
            Some(r) => format!("open loop at {r} msgs/s"),
            None => "closed loop".to_string(),
        };
        let mut s = format!(
            "target        {} ({mode}, {} B messages, pipeline {}, backend {})\n\
             connections   {} of {}{}\n\
             connect (us)  {}\n\
             messages      {} in {:.3} s\n\
             rate          {:.0} msgs/s, {:.2} MiB/s\n\
             latency (us)  {}\n\
             errors        {}",
            self.addr,
            self.size,
            self.pipeline,
            self.backend.unwrap_or("none"),
            self.connect.connected,
            self.connections,
            if self.ports > 1 { format!(" on {} ports", self.ports) } else { String::new() },
            self.connect.time_us.text(false),
            self.messages,
            self.seconds,
            self.msgs_per_sec,
            self.mib_per_sec,
            l.text(true),
            self.errors,
        );
        if self.errors > 0 {
            s += &format!(
                " ({} mismatched, {} failed connections, {} unanswered)",
                self.mismatches, self.connection_errors, self.unanswered
            );
        }
        if !self.pinned_cpus.is_empty() {
            let cpus: Vec<String> = self.pinned_cpus.iter().map(ToString::to_string).collect();
            s += &format!("\npinned        workers on CPUs {}", cpus.join(", "));
        }
        if self.moved > 0 {
            s += &format!("\nmoved         {} times to the CPU of their replies (--affine)", self.moved);
        }
        if self.unsent > 0 {
            s += &format!("\nunsent        {} (due but never sent: the server fell behind)", self.unsent);
        }
        if self.interrupted {
            s += "\ninterrupted   yes";
        }
        s
    }
}
