//! `cport load` against echo servers that are not ours.

use crate::common::{closed_port, run, run_cport, skip, texts, EchoServer};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `cport load --json` with `args` against `addr`; returns the exit code, the parsed
/// report and stderr.
fn load_json(addr: &str, args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let mut all = vec!["load", "--addr", addr, "--json"];
    all.extend_from_slice(args);
    let out = run_cport(&all);
    let (stdout, stderr) = texts(&out);
    let report = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}):\n{stdout}\nstderr:\n{stderr}"));
    (out.status.code(), report, stderr)
}

fn u(report: &serde_json::Value, field: &str) -> u64 {
    report[field].as_u64().unwrap_or_else(|| panic!("no integer '{field}' in {report}"))
}

// Closed loop for about a second: every echoed byte is compared with what was sent, and a
// faithful echo server yields messages and no errors; the JSON report has every field.
#[test]
fn load_closed_loop_against_a_std_echo_server_has_no_errors() {
    let server = EchoServer::start();
    let args = ["--duration", "1s", "--connections", "8", "--pipeline", "4", "--size", "1000"];
    let (code, r, stderr) = load_json(&server.addr(), &args);
    assert_eq!(code, Some(0), "stderr: {stderr}\nreport: {r}");
    assert_eq!(r["mode"], "closed-loop");
    assert_eq!((u(&r, "connections"), u(&r, "size"), u(&r, "pipeline")), (8, 1000, 4));
    assert!(u(&r, "messages") > 0, "{r}");
    for field in ["errors", "mismatches", "connection_errors", "unanswered", "unsent"] {
        assert_eq!(u(&r, field), 0, "{field} in {r}");
    }
    assert!(r["msgs_per_sec"].as_f64().is_some_and(|x| x > 0.0), "{r}");
    assert!(r["mib_per_sec"].as_f64().is_some_and(|x| x > 0.0), "{r}");
    let lat = &r["latency_us"];
    let (p50, p99, max) = (u(lat, "p50"), u(lat, "p99"), u(lat, "max"));
    assert!(p50 <= p99 && p99 <= max && u(lat, "p90") <= u(lat, "p99_9"), "{lat}");
    assert!(r["first_error"].is_null(), "{r}");
}

// Issue 9: `--ports 3` spreads the connections over three ports, each with its own
// worker; every message of every connection still comes back checked, in closed and in
// open loop (the pacer posts each connection's packets to that connection's port).
#[test]
fn load_on_three_ports_checks_every_echo() {
    let server = EchoServer::start();
    for extra in [&[][..], &["--rate", "2000"][..]] {
        let mut args = vec!["--duration", "1s", "--connections", "7", "--ports", "3", "--workers", "3"];
        args.extend_from_slice(extra);
        let (code, r, stderr) = load_json(&server.addr(), &args);
        assert_eq!(code, Some(0), "{extra:?}: stderr: {stderr}\nreport: {r}");
        assert_eq!((u(&r, "ports"), u(&r, "connections")), (3, 7), "{r}");
        assert!(u(&r, "messages") > 0, "{extra:?}: {r}");
        for field in ["errors", "mismatches", "connection_errors", "unanswered"] {
            assert_eq!(u(&r, field), 0, "{extra:?}: {field} in {r}");
        }
        if extra.is_empty() {
            assert_eq!(u(&r, "unsent"), 0, "closed loop sends each echo's successor: {r}");
        } else {
            // Open loop: about 2000 come due in the second; on a loaded machine a few may
            // still be due at the end (measured, not an error: the server fell behind).
            assert!(u(&r, "messages") + u(&r, "unsent") >= 1000, "{r}");
        }
    }
}

// The check is real: a server that flips one byte of each connection's echo is caught,
// reported with the byte that differed, and the run exits 1.
#[test]
fn load_detects_a_corrupted_echo_byte() {
    let server = EchoServer::start_with(Some(100));
    let args = ["--duration", "500ms", "--connections", "3", "--size", "64"];
    let (code, r, stderr) = load_json(&server.addr(), &args);
    assert_eq!(code, Some(1), "stderr: {stderr}\nreport: {r}");
    assert_eq!(u(&r, "mismatches"), 3, "one per connection: {r}");
    // Byte 100 of the stream is byte 36 of message 1.
    assert!(stderr.contains("message 1 byte 36: expected"), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
}

// Open loop: messages are sent at the requested total rate (not faster), and each is
// echoed and checked.
#[test]
fn load_open_loop_paces_at_the_requested_rate() {
    let server = EchoServer::start();
    let args = ["--duration", "1s", "--connections", "4", "--pipeline", "8", "--rate", "2000"];
    let (code, r, stderr) = load_json(&server.addr(), &args);
    assert_eq!(code, Some(0), "stderr: {stderr}\nreport: {r}");
    assert_eq!(r["mode"], "open-loop");
    assert_eq!(r["target_rate"].as_f64(), Some(2000.0));
    let (messages, unsent) = (u(&r, "messages"), u(&r, "unsent"));
    // About 2000 come due in one second; a loaded machine may leave a few unsent, but
    // pacing never sends more than were due.
    assert!(messages + unsent >= 1000, "{r}");
    assert!(messages <= 2500, "sent faster than the rate: {r}");
    assert_eq!(u(&r, "errors"), 0, "{r}");
}

// Nothing listening: one clear line on stderr, nothing on stdout, exit status 1.
#[test]
fn load_against_a_closed_port_fails_with_one_line() {
    let addr = closed_port().to_string();
    let out = run_cport(&["load", "--addr", &addr, "--duration", "1s"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stdout, "");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    let want = format!("cport: cannot connect to {addr}: Connection refused (os error 111)");
    assert_eq!(stderr.trim_end(), want);
}

/// `socat` echoing through `cat`, killed on drop.
struct Socat(Child);

impl Drop for Socat {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// Against socat (`TCP-LISTEN:port,fork,reuseaddr EXEC:cat`), an echo server that shares no
// code with ours. Skipped, visibly, where socat is not installed.
#[test]
fn load_against_socat_echo_has_no_errors() {
    let available = Command::new("socat").arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status();
    if !available.is_ok_and(|s| s.success()) {
        return skip("load_against_socat_echo_has_no_errors", "socat is not installed");
    }
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("address").port()
    };
    let listen = format!("TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr,backlog=64");
    let child = Command::new("socat")
        .args([listen.as_str(), "EXEC:cat"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("socat starts");
    let _socat = Socat(child);
    let addr = format!("127.0.0.1:{port}");
    let start = Instant::now();
    while TcpStream::connect(&addr).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "socat did not start listening");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut cmd = crate::common::cport(&["load", "--addr", &addr, "--json", "--duration", "1s"]);
    let out = run(cmd.args(["--connections", "4", "--pipeline", "2", "--size", "300"]));
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
    let r: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert!(u(&r, "messages") > 0, "{r}");
    assert_eq!(u(&r, "errors"), 0, "{r}");
}

// Issue 12: with --json, a failed connection still yields one JSON report on stdout, with
// an `error` field, the connect failure's cause, and no latency figures; exit status 1.
#[test]
fn load_json_report_when_the_connection_fails() {
    let addr = closed_port().to_string();
    let (code, r, stderr) = load_json(&addr, &["--duration", "1s", "--connections", "3"]);
    assert_eq!(code, Some(1), "stderr: {stderr}");
    let why = "Connection refused (os error 111)";
    assert_eq!(r["error"], format!("cannot connect to {addr}: {why}"), "{r}");
    assert_eq!(stderr.trim_end(), format!("cport: cannot connect to {addr}: {why}"));
    assert_eq!(u(&r, "messages"), 0, "{r}");
    assert_eq!(u(&r["connect"], "attempted"), 1, "it stops at the first failure: {r}");
    assert_eq!(u(&r["connect"], "connected"), 0, "{r}");
    assert_eq!(r["connect"]["failures"][why], 1, "{r}");
    assert!(r["latency_us"]["p50"].is_null(), "{r}");
}

/// A server that accepts connections and never reads or writes, until dropped.
struct Silent {
    addr: String,
    _listener: TcpListener,
}

impl Silent {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        Self { addr: listener.local_addr().expect("address").to_string(), _listener: listener }
    }
}

// Issue 12: a run in which no message comes back reports its percentiles as null, not 0,
// and says why it failed.
#[test]
fn load_empty_run_reports_null_percentiles() {
    let server = Silent::start();
    let (code, r, stderr) = load_json(&server.addr, &["--duration", "200ms", "--connections", "2"]);
    assert_eq!(code, Some(1), "stderr: {stderr}");
    assert_eq!(u(&r, "messages"), 0, "{r}");
    assert_eq!(u(&r, "unanswered"), 2, "{r}");
    for field in ["min", "mean", "stdev", "p50", "p90", "p99", "p99_9", "p99_99", "max"] {
        assert!(r["latency_us"][field].is_null(), "{field} in {r}");
    }
    assert!(r["error"].is_null(), "the run itself ran: {r}");
    assert!(stderr.contains("2 messages unanswered"), "{stderr}");
}

// Issue 12: the report has connect times, min/mean/stdev and p99.99, in order; the text
// report (without --json) goes to stderr and stdout stays empty.
#[test]
fn load_reports_connect_times_and_full_latency_statistics() {
    let server = EchoServer::start();
    let (code, r, stderr) = load_json(&server.addr(), &["--duration", "500ms", "--connections", "4"]);
    assert_eq!(code, Some(0), "stderr: {stderr}\nreport: {r}");
    let c = &r["connect"];
    assert_eq!((u(c, "attempted"), u(c, "connected")), (4, 4), "{r}");
    assert_eq!(c["failures"], serde_json::json!({}), "{r}");
    let t = &c["time_us"];
    assert!(u(t, "min") <= u(t, "max") && u(t, "p50") <= u(t, "max"), "{t}");
    assert!(t["mean"].as_f64().is_some(), "{t}");
    let l = &r["latency_us"];
    let order = ["min", "p50", "p90", "p99", "p99_9", "p99_99", "max"].map(|f| u(l, f));
    assert!(order.windows(2).all(|w| w[0] <= w[1]), "{l}");
    let (mean, stdev) = (l["mean"].as_f64().unwrap(), l["stdev"].as_f64().unwrap());
    assert!(mean >= order[0] as f64 && mean <= order[6] as f64 && stdev >= 0.0, "{l}");

    let out = run_cport(&["load", "--addr", &server.addr(), "--duration", "300ms", "--connections", "2"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout, "", "the text report is on stderr");
    for line in ["connect (us)  min ", "latency (us)  min ", " p99.99 "] {
        assert!(stderr.contains(line), "'{line}' not in:\n{stderr}");
    }
}

// Issue 12: durations are humantime durations ("1h30m"); the run then fails only because
// nothing listens (exit 1, not a usage error).
#[test]
fn load_takes_compound_durations() {
    let addr = closed_port().to_string();
    let out = run_cport(&["load", "--addr", &addr, "--duration", "1h30m"]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("cport: cannot connect"), "{stderr}");
}

// Issue 12: running out of descriptors says what to do about it.
#[test]
fn load_too_many_open_files_hints_at_ulimit() {
    let server = EchoServer::start();
    let mut cmd = Command::new("bash");
    cmd.args(["-c", "ulimit -n 32 && exec \"$0\" \"$@\""])
        .arg(crate::common::bin())
        .args(["load", "--addr", &server.addr(), "--connections", "100", "--duration", "200ms"])
        .env_remove("CPORT_LOG")
        .stdin(Stdio::null());
    let out = run(&mut cmd);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stdout, "");
    assert!(stderr.contains("Too many open files (os error 24)"), "{stderr}");
    assert!(stderr.contains("ulimit -n"), "{stderr}");
}

// Issue 10: the report names the port's backend, in JSON and in the text; forcing one
// through COMPLETION_PORT_BACKEND is what the report says.
#[test]
fn load_reports_its_backend() {
    let server = EchoServer::start();
    let (code, r, stderr) = load_json(&server.addr(), &["--duration", "200ms", "--connections", "2"]);
    assert_eq!(code, Some(0), "stderr: {stderr}\nreport: {r}");
    let default = r["backend"].as_str().unwrap_or_else(|| panic!("no backend in {r}")).to_owned();
    assert!(["io_uring", "epoll"].contains(&default.as_str()), "{r}");
    let out = run(crate::common::cport(&[
        "load",
        "--addr",
        &server.addr(),
        "--duration",
        "200ms",
        "--connections",
        "2",
    ])
    .env("COMPLETION_PORT_BACKEND", "epoll"));
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("backend epoll"), "{stderr}");
}

// Issue 9: `--pin` pins worker i to the i-th CPU of the process's affinity mask
// (round-robin), reports the CPUs worker by worker, and every echo is still checked.
#[test]
fn load_pins_its_workers_to_the_allowed_cpus() {
    let allowed: Vec<usize> = {
        let set = rustix::thread::sched_getaffinity(None).expect("affinity");
        (0..rustix::thread::CpuSet::MAX_CPU).filter(|&c| set.is_set(c)).collect()
    };
    let server = EchoServer::start();
    let args = ["--duration", "500ms", "--connections", "6", "--workers", "3", "--pin"];
    let (code, r, stderr) = load_json(&server.addr(), &args);
    assert_eq!(code, Some(0), "stderr: {stderr}\nreport: {r}");
    let pinned: Vec<usize> = r["pinned_cpus"]
        .as_array()
        .unwrap_or_else(|| panic!("no pinned_cpus in {r}"))
        .iter()
        .map(|c| c.as_u64().expect("a CPU number") as usize)
        .collect();
    let expected: Vec<usize> = (0..3).map(|i| allowed[i % allowed.len()]).collect();
    assert_eq!(pinned, expected, "{r}");
    assert!(u(&r, "messages") > 0, "{r}");
    for field in ["errors", "mismatches", "connection_errors", "unanswered"] {
        assert_eq!(u(&r, field), 0, "{field} in {r}");
    }
    // Without --pin the list is empty.
    let (code, r, _) = load_json(&server.addr(), &["--duration", "200ms", "--connections", "2"]);
    assert_eq!(code, Some(0));
    assert_eq!(r["pinned_cpus"], serde_json::json!([]), "{r}");
}

// `--affine`: a port and a pinned worker per worker, every connection associated with
// each port; connections move to the port of the CPU their echoes arrive on, and every
// byte is still checked.
#[test]
fn load_affine_moves_connections_and_checks_every_byte() {
    let server = EchoServer::start();
    let args = ["--duration", "1s", "--connections", "4", "--workers", "2", "--affine"];
    let (code, r, stderr) = load_json(&server.addr(), &args);
    assert_eq!(code, Some(0), "stderr: {stderr}\nreport: {r}");
    assert_eq!(u(&r, "ports"), 2, "{r}");
    assert_eq!(r["pinned_cpus"].as_array().map(Vec::len), Some(2), "{r}");
    assert!(u(&r, "messages") > 0, "{r}");
    assert!(r["moved"].as_u64().is_some(), "{r}");
    for field in ["errors", "mismatches", "connection_errors", "unanswered"] {
        assert_eq!(u(&r, field), 0, "{field} in {r}");
    }
    // More workers than connections cannot give each worker's port a connection.
    let addr = server.addr();
    let out = run_cport(&["load", "--addr", &addr, "--connections", "1", "--workers", "2", "--affine"]);
    let (_, stderr) = texts(&out);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr.contains("--affine"), "{stderr}");
}
