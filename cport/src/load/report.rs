//! The final report of `cport load`: text for people, or one JSON object.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latency percentiles in microseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p99_9: u64,
    /// Largest latency seen.
    pub max: u64,
}

impl Latency {
    /// Reads the percentiles off a histogram of microseconds (all zero if it is empty).
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self { p50: 0, p90: 0, p99: 0, p99_9: 0, max: 0 };
        }
        Self {
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p99_9: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// Everything `cport load` reports.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Server address.
    pub addr: String,
    /// `"closed-loop"` or `"open-loop"`.
    pub mode: &'static str,
    /// Open loop: the target rate in messages per second.
    pub target_rate: Option<f64>,
    /// Connections opened.
    pub connections: usize,
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
            "target        {} ({mode}, {} B messages, pipeline {})\n\
             connections   {}\n\
             messages      {} in {:.3} s\n\
             rate          {:.0} msgs/s, {:.2} MiB/s\n\
             latency (us)  p50 {}  p90 {}  p99 {}  p99.9 {}  max {}\n\
             errors        {}",
            self.addr,
            self.size,
            self.pipeline,
            self.connections,
            self.messages,
            self.seconds,
            self.msgs_per_sec,
            self.mib_per_sec,
            l.p50,
            l.p90,
            l.p99,
            l.p99_9,
            l.max,
            self.errors,
        );
        if self.errors > 0 {
            s += &format!(
                " ({} mismatched, {} failed connections, {} unanswered)",
                self.mismatches, self.connection_errors, self.unanswered
            );
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
