//! `cport serve`, run as a real process on 127.0.0.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A running `cport serve`, killed if the test fails before stopping it.
struct Server {
    child: Option<Child>,
    addr: SocketAddr,
    /// Everything the server wrote to stderr after its first line, so far.
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the server on a free port and waits until it listens.
    fn start(extra: &[&str]) -> Server {
        Self::start_in_shell("", extra)
    }

    /// Starts the server through `bash -c '<setup> exec cport serve ...'` (for `ulimit`), on
    /// a free port, and waits until it listens.
    fn start_in_shell(setup: &str, extra: &[&str]) -> Server {
        let script = format!("{setup} exec \"$0\" \"$@\"");
        let mut child = Command::new("bash")
            .args(["-c", &script])
            .arg(crate::common::bin())
            .arg("serve")
            .args(if extra.contains(&"--addr") { &[][..] } else { &["--addr", "127.0.0.1:0"][..] })
            .args(["--workers", "2"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cport runs");
        let mut line = String::new();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        err.read_line(&mut line).unwrap();
        let addr = line
            .split_whitespace()
            .find_map(|w| w.trim_end_matches(',').parse::<SocketAddr>().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        // Keep draining stderr so the server never blocks on it.
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut line = String::new();
            while err.read_line(&mut line).is_ok_and(|n| n > 0) {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        Server { child: Some(child), addr, stderr }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// `n` clients, each having sent one byte (`x`) that the server echoes once it serves it.
    fn clients_that_sent_a_byte(&self, n: usize) -> Vec<TcpStream> {
        (0..n)
            .map(|_| {
                let mut s = self.connect();
                s.write_all(b"x").unwrap();
                s
            })
            .collect()
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    /// Resident memory of the server, in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// What the server has written to stderr after its first line, so far.
    fn stderr_so_far(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends SIGTERM; returns the exit code, stdout, stderr after the first line, and the
    /// time it took to exit.
    fn terminate(mut self) -> Stopped {
        let child = self.child.take().unwrap();
        let start = Instant::now();
        let ok = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        assert!(ok.success());
        let out = child.wait_with_output().unwrap();
        let took = start.elapsed();
        // The reader thread sees end of file once the process is gone.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&self.stderr) > 1 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        Stopped {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: self.stderr_so_far(),
            took,
        }
    }
}

/// How a server ended.
struct Stopped {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Stopped {
    /// The `--json` summary: the server exited 0 and stdout is one JSON object.
    fn json_summary(&self) -> serde_json::Value {
        assert_eq!(self.code, Some(0), "{}", self.stderr);
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {}", self.stdout))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn echo_round_trip(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(msg).unwrap();
    let mut back = vec![0u8; msg.len()];
    s.read_exact(&mut back).unwrap();
    assert_eq!(back, msg);
}

/// Echo, pipelined data, then half-close: everything comes back, then end of stream.
#[test]
fn serve_echoes_pipelined_data_and_honours_half_close() {
    let server = Server::start(&[]);
    let mut s = server.connect();
    echo_round_trip(&mut s, b"hello");
    // 1000 pipelined messages written before reading any echo.
    let msgs: Vec<u8> = (0..1000u32).flat_map(|i| format!("message {i:04};").into_bytes()).collect();
    s.write_all(&msgs).unwrap();
    s.shutdown(Shutdown::Write).unwrap(); // FIN after the data
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap(); // the server closes after echoing everything
    assert_eq!(back, msgs);
    let end = server.terminate();
    assert_eq!(end.code, Some(0));
    assert!(end.stderr.contains("1 connections"), "{}", end.stderr);
}

/// Large writes that the server can only send back in pieces (partial sends), read
/// concurrently, arrive intact.
#[test]
fn serve_handles_partial_sends() {
    let server = Server::start(&["--buffer-size", "1048576"]);
    let mut s = server.connect();
    let data: Vec<u8> = (0..8u32 << 20).map(|i| (i % 251) as u8).collect();
    let mut r = s.try_clone().unwrap();
    let expect = data.clone();
    let reader = thread::spawn(move || {
        let mut back = vec![0u8; expect.len()];
        r.read_exact(&mut back).unwrap();
        back == expect
    });
    s.write_all(&data).unwrap();
    assert!(reader.join().unwrap(), "echoed bytes differ");
}

/// Ordinary clients: a Python socket, and `nc`/`socat` where installed (else said so).
#[test]
fn serve_works_with_ordinary_clients() {
    let server = Server::start(&[]);
    let port = server.addr.port().to_string();
    let py = Command::new("python3")
        .args([
            "-c",
            "import socket,sys; s=socket.create_connection(('127.0.0.1',int(sys.argv[1]))); \
             s.sendall(b'from python'); s.shutdown(socket.SHUT_WR); \
             d=b''\nwhile True:\n  c=s.recv(100)\n  if not c: break\n  d+=c\nprint(d.decode())",
            &port,
        ])
        .output();
    match py {
        Ok(out) => assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "from python"),
        Err(e) => eprintln!("SKIPPED python client: {e}"),
    }
    for (tool, args) in [
        ("nc", vec!["-N", "127.0.0.1", port.as_str()]),
        ("socat", vec!["-", &format!("TCP:127.0.0.1:{port}")]),
    ] {
        let child = Command::new(tool).args(&args).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn();
        let Ok(mut child) = child else {
            eprintln!("SKIPPED {tool} client: not installed");
            continue;
        };
        child.stdin.take().unwrap().write_all(b"hello from a tool\n").unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from a tool\n", "{tool}");
    }
}

/// Resets, thousands of connect/close cycles and a client that never reads: the server
/// survives, keeps serving, and its memory comes back near where it started.
#[test]
fn serve_survives_storms_with_bounded_memory() {
    let server = Server::start(&[]);
    // Warm up allocator arenas and the worker threads.
    for _ in 0..50 {
        let mut s = server.connect();
        echo_round_trip(&mut s, b"warm");
    }
    let before = server.rss_kib();

    // 1. A storm of resets: connect, send, abort with RST.
    for _ in 0..500 {
        let s = server.connect();
        let _ = (&s).write_all(b"reset me");
        socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO)).unwrap();
    }
    // 2. Thousands of connect/close cycles, some with a message.
    for i in 0..3000 {
        let mut s = server.connect();
        if i % 3 == 0 {
            echo_round_trip(&mut s, b"x");
        }
    }
    // 3. Clients that send without ever reading: the server stops reading from them once
    //    their echo cannot be sent, so they cost a bounded amount of memory.
    let hogs: Vec<TcpStream> = (0..10)
        .map(|_| {
            let s = server.connect();
            s.set_write_timeout(Some(Duration::from_millis(200))).unwrap();
            let chunk = vec![7u8; 64 * 1024];
            let mut w = &s;
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(3) && w.write_all(&chunk).is_ok() {}
            s
        })
        .collect();
    let during = server.rss_kib();
    // The server still serves others while the hogs are stuck.
    let mut s = server.connect();
    echo_round_trip(&mut s, b"still alive");
    drop(hogs);
    thread::sleep(Duration::from_millis(300));
    let after = server.rss_kib();
    eprintln!("server RSS: before {before} KiB, with 10 non-reading clients {during} KiB, after {after} KiB");
    assert!(during < before + 64 * 1024, "non-reading clients grew the server by {} KiB", during - before);
    assert!(after < before + 16 * 1024, "memory did not come back: {before} -> {after} KiB");
    let end = server.terminate();
    assert_eq!(end.code, Some(0), "{}", end.stderr);
}

/// SIGTERM shuts down gracefully with connections open: exit 0 within a second, with the
/// summary line.
#[test]
fn serve_sigterm_exits_zero_with_summary() {
    let server = Server::start(&[]);
    let mut open: Vec<TcpStream> = (0..10).map(|_| server.connect()).collect();
    for s in &mut open {
        echo_round_trip(s, b"ping");
    }
    let end = server.terminate();
    assert_eq!(end.code, Some(0));
    assert!(end.took < Duration::from_secs(1), "took {:?}", end.took);
    // The summary is a report: on stderr, with nothing on stdout.
    assert_eq!(end.stdout, "");
    let summary = end.stderr.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with("cport serve: 10 connections, 10 messages, 40 bytes echoed"),
        "{}",
        end.stderr
    );
    // Our side sees the server's close.
    let mut buf = [0u8; 1];
    assert!(matches!(open[0].read(&mut buf), Ok(0) | Err(_)));
}

/// A port already in use fails with one clear line and a non-zero status.
#[test]
fn serve_on_a_port_in_use_fails_clearly() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(crate::common::bin()).args(["serve", "--addr", &addr]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with(&format!("cport: cannot listen on {addr}: ")), "{err}");
    assert!(err.contains("in use"), "{err}");
}

/// A bad flag exits with status 2 and a usage message.
#[test]
fn serve_bad_flag_is_a_usage_error() {
    let out = Command::new(crate::common::bin()).args(["serve", "--no-such-flag"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage"));
    let out = Command::new(crate::common::bin()).args(["serve", "--buffer-size", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// --max-connections: a client beyond the limit waits in the backlog until a slot frees.
#[test]
fn serve_max_connections_holds_extra_clients() {
    let server = Server::start(&["--max-connections", "2", "--accepts", "1"]);
    let mut a = server.connect();
    echo_round_trip(&mut a, b"a");
    let mut b = server.connect();
    echo_round_trip(&mut b, b"b");
    let mut c = server.connect(); // connects (backlog), but is not accepted yet
    c.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    c.write_all(b"c").unwrap();
    let mut buf = [0u8; 1];
    assert!(c.read(&mut buf).is_err(), "the third client was served beyond the limit");
    drop(a);
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"c");
}

/// `cport load` against `cport serve` for two seconds: every echoed byte checked, no
/// errors, in closed loop with pipelining and with 4 KiB messages.
#[test]
fn serve_and_load_every_byte_checked() {
    let server = Server::start(&[]);
    let addr = server.addr.to_string();
    for args in [
        ["--connections", "20", "--size", "64", "--pipeline", "4"],
        ["--connections", "8", "--size", "4K", "--pipeline", "1"],
    ] {
        let out = Command::new(crate::common::bin())
            .args(["load", "--addr", &addr, "--duration", "1s", "--json"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["errors"], 0, "{report}");
        assert_eq!(report["mismatches"], 0, "{report}");
        assert!(report["messages"].as_u64().unwrap() > 100, "{report}");
    }
    let end = server.terminate();
    assert_eq!(end.code, Some(0));
    assert!(end.stderr.contains("0 errors"), "{}", end.stderr);
}

/// SIGTERM while `cport load` is hammering the server: exit 0 within a second, with the
/// summary line; the load generator sees the connections close and exits on its own.
#[test]
fn serve_sigterm_during_load() {
    let server = Server::start(&[]);
    let mut load = Command::new(crate::common::bin())
        .args(["load", "--addr", &server.addr.to_string(), "--duration", "20s", "--connections", "20"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    thread::sleep(Duration::from_millis(700));
    let end = server.terminate();
    assert_eq!(end.code, Some(0), "{}", end.stderr);
    assert!(end.took < Duration::from_secs(1), "took {:?}", end.took);
    assert!(end.stderr.contains("cport serve: 20 connections"), "{}", end.stderr);
    // The load generator notices (its connections are closed) and ends well before 20 s.
    let start = Instant::now();
    loop {
        if load.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(25) {
            let _ = load.kill();
            panic!("cport load did not notice the server going away");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Reads one echoed byte from each of `clients` (each sent one byte) for up to `within`,
/// or until `enough` were served; returns the indices of those served.
fn served(clients: &mut [TcpStream], within: Duration, enough: usize) -> Vec<usize> {
    let mut done = vec![false; clients.len()];
    let start = Instant::now();
    while start.elapsed() < within && done.iter().filter(|d| **d).count() < enough {
        for (c, d) in clients.iter_mut().zip(&mut done) {
            if !*d {
                c.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
                let mut b = [0u8; 1];
                *d = c.read(&mut b).is_ok_and(|n| n == 1);
            }
        }
    }
    (0..clients.len()).filter(|&i| done[i]).collect()
}

/// Issue 13: at the descriptor limit accept fails with EMFILE. The server used to re-arm it
/// at once and log every failure (a million lines, a full core); now it parks its accepts,
/// warns once per episode, and serves the waiting clients once descriptors are free again.
#[test]
fn serve_backs_off_at_the_descriptor_limit() {
    // Soft and hard limit 64: the server cannot raise it.
    let server = Server::start_in_shell("ulimit -n 64 &&", &["--accepts", "4"]);
    let mut clients: Vec<TcpStream> = (0..100)
        .map(|_| {
            let mut s = server.connect();
            s.write_all(b"x").unwrap();
            s
        })
        .collect();
    // Some are served (up to the limit), the rest wait; give a spinning server time to spin.
    let first = served(&mut clients, Duration::from_secs(2), 100).len();
    assert!(first > 0 && first < 100, "{first} of 100 served under a limit of 64 descriptors");
    thread::sleep(Duration::from_millis(500));
    let log = server.stderr_so_far();
    let warnings = log.lines().filter(|l| l.contains("Too many open files")).count();
    assert_eq!(
        warnings,
        1,
        "one warning per episode, got {warnings} lines; first lines:\n{}",
        &log[..log.len().min(2000)]
    );
    assert!(log.contains("ulimit -n"), "the warning says what to do: {log}");
    // Free the descriptors: the clients still waiting are served.
    clients.drain(..first.min(clients.len()));
    let mut fresh = server.connect();
    echo_round_trip(&mut fresh, b"after the episode");
    let end = server.terminate();
    assert_eq!(end.code, Some(0), "{}", end.stderr);
}

/// Issue 13: at start the server raises its soft descriptor limit to the hard limit when
/// `--max-connections` needs more descriptors than the soft limit allows.
#[test]
fn serve_raises_the_soft_descriptor_limit() {
    let server = Server::start_in_shell("ulimit -Sn 256 &&", &["--max-connections", "10000"]);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (soft, hard) = (fields[3], fields[4]);
    if hard == "256" {
        return crate::common::skip("serve_raises_the_soft_descriptor_limit", "the hard limit is 256 here");
    }
    assert_eq!(soft, hard, "{line}");
}

/// Issue 13: `--max-connections 3` with 16 accepts in flight let up to 18 clients in; now
/// exactly 3 are served, and a fourth once one of them leaves.
#[test]
fn serve_max_connections_is_never_exceeded() {
    let server = Server::start(&["--max-connections", "3", "--accepts", "16"]);
    let mut clients = server.clients_that_sent_a_byte(10);
    let first = served(&mut clients, Duration::from_secs(2), 10);
    assert_eq!(first.len(), 3, "served beyond --max-connections 3: {first:?}");
    // One leaves: one waiting client gets its slot, and only one.
    let mut waiting: Vec<TcpStream> = Vec::new();
    let mut kept = Vec::new();
    for (i, c) in clients.into_iter().enumerate() {
        match (first.contains(&i), i == first[0]) {
            (false, _) => waiting.push(c),
            (true, false) => kept.push(c),
            (true, true) => drop(c),
        }
    }
    let next = served(&mut waiting, Duration::from_secs(10), 1);
    assert_eq!(next.len(), 1, "a freed slot serves a waiting client");
    // (The one just served has nothing more to read.)
    let more = served(&mut waiting, Duration::from_millis(300), 1);
    assert!(more.is_empty(), "one freed slot served more than one client");
}

/// Issue 13: `--idle-timeout` closes a connection that sends nothing for that long, so idle
/// clients cannot hold every slot; the summary counts it.
#[test]
fn serve_closes_idle_connections() {
    let server = Server::start(&["--idle-timeout", "300ms", "--max-connections", "1"]);
    let mut idle = server.connect();
    echo_round_trip(&mut idle, b"then nothing");
    let mut b = [0u8; 1];
    assert_eq!(idle.read(&mut b).unwrap(), 0, "the idle connection is closed by the server");
    // Its slot is free again.
    let mut next = server.connect();
    echo_round_trip(&mut next, b"next");
    let end = server.terminate();
    assert_eq!(end.code, Some(0), "{}", end.stderr);
    assert!(end.stderr.contains("1 closed idle"), "{}", end.stderr);
}

/// Issue 12: `--addr` takes a host name (as `load` does) and `--buffer-size` takes a
/// suffix (as every other size flag does).
#[test]
fn serve_takes_a_host_name_and_a_size_suffix() {
    let server = Server::start(&["--addr", "localhost:0", "--buffer-size", "4K"]);
    assert!(server.addr.ip().is_loopback(), "{}", server.addr);
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // 10 KiB echoed through a 4 KiB buffer.
    let data: Vec<u8> = (0..10_240u32).map(|i| (i % 251) as u8).collect();
    echo_round_trip(&mut s, &data);
    let end = server.terminate();
    assert_eq!(end.code, Some(0), "{}", end.stderr);
}

/// Issue 12: reports go to stderr unless `--json`, which writes one JSON object on stdout.
#[test]
fn serve_json_summary_goes_to_stdout() {
    let server = Server::start(&["--json"]);
    let mut s = server.connect();
    echo_round_trip(&mut s, b"12345");
    drop(s);
    let end = server.terminate();
    let summary = end.json_summary();
    assert_eq!(summary["connections"], 1, "{summary}");
    assert_eq!(summary["messages"], 1, "{summary}");
    assert_eq!(summary["bytes"], 5, "{summary}");
    assert_eq!(summary["errors"], 0, "{summary}");
    assert!(!end.stderr.contains("connections"), "no text summary besides: {}", end.stderr);
}

/// --zero-byte-receive: every message is awaited with a zero-byte receive; echo, pipelined
/// data and half-close behave exactly as without it.
#[test]
fn serve_zero_byte_receive_mode_echoes_everything() {
    let server = Server::start(&["--zero-byte-receive", "--buffer-size", "4K"]);
    let mut s = server.connect();
    for i in 0..100u32 {
        echo_round_trip(&mut s, format!("ping {i}").as_bytes());
    }
    let msgs: Vec<u8> = (0..2000u32).flat_map(|i| format!("m{i:05};").into_bytes()).collect();
    s.write_all(&msgs).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap();
    assert_eq!(back, msgs);
    let end = server.terminate();
    assert_eq!(end.code, Some(0));
}

/// --backlog and --reuse-port: the listener takes both; with SO_REUSEPORT a second server
/// can listen on the same address, and a plain one (without it) is refused.
#[test]
fn serve_backlog_and_reuse_port() {
    let a = Server::start(&["--backlog", "2048", "--reuse-port"]);
    let addr = a.addr.to_string();
    let b = Server::start(&["--addr", &addr, "--reuse-port"]);
    assert_eq!(b.addr, a.addr);
    let mut s = b.connect();
    echo_round_trip(&mut s, b"shared address");
    drop(s);
    let out = Command::new(crate::common::bin()).args(["serve", "--addr", &addr]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "without --reuse-port the address is in use");
    for server in [a, b] {
        assert_eq!(server.terminate().code, Some(0));
    }
    let out = Command::new(crate::common::bin()).args(["serve", "--backlog", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "a zero backlog is a usage error");
}

/// Issue 9: `--ports 2` runs two completion ports side by side, each with its own
/// SO_REUSEPORT listener on the one address and one of the two workers; the kernel spreads
/// the connections over them. Every client is served, and the summary adds both up.
#[test]
fn serve_on_two_ports_serves_every_client() {
    let server = Server::start(&["--ports", "2", "--json"]);
    let mut clients: Vec<TcpStream> = (0..16).map(|_| server.connect()).collect();
    for round in 0..3 {
        for (i, c) in clients.iter_mut().enumerate() {
            echo_round_trip(c, format!("client {i} round {round}").as_bytes());
        }
    }
    drop(clients);
    let end = server.terminate();
    let summary = end.json_summary();
    assert_eq!(summary["ports"], 2, "{summary}");
    assert_eq!(summary["workers"], 2, "{summary}");
    assert_eq!(summary["eager_rounds"], serde_json::Value::Null, "no drain without --eager: {summary}");
    assert_eq!(summary["batch"], 1024, "one worker per port takes up to 1024 packets: {summary}");
    assert_eq!(summary["connections"], 16, "{summary}");
    assert_eq!(summary["messages"], 48, "{summary}");
    assert_eq!(summary["errors"], 0, "{summary}");
}

/// Starts `cport serve` with `flags` (plus `--buffer-size 1K --json`) and checks that every
/// byte comes back in order: 60 rounds of messages of 1 to 3000 bytes on four connections
/// (longer than the buffer: several receives each), then a client that writes a blob of
/// `blob_len` bytes before reading (sends the socket cannot take at once, partial ones
/// included); the JSON summary counts the bytes and the five connections.
fn echoes_every_byte(flags: &[&str], blob_len: usize) {
    let mut all = vec!["--buffer-size", "1K", "--json"];
    all.extend_from_slice(flags);
    let server = Server::start(&all);
    let mut sent = 0u64;
    let mut clients: Vec<TcpStream> = (0..4).map(|_| server.connect()).collect();
    for round in 0..60usize {
        for (i, c) in clients.iter_mut().enumerate() {
            let len = 1 + (round * 97 + i * 31) % 3000;
            let msg: Vec<u8> = (0..len).map(|k| (k * 7 + round + i) as u8).collect();
            echo_round_trip(c, &msg);
            sent += len as u64;
        }
    }
    let mut bulk = server.connect();
    let blob: Vec<u8> = (0..blob_len).map(|k| (k % 251) as u8).collect();
    let mut reader = bulk.try_clone().unwrap();
    let expected = blob.clone();
    let echo = thread::spawn(move || {
        let mut back = vec![0u8; expected.len()];
        reader.read_exact(&mut back).unwrap();
        back == expected
    });
    bulk.write_all(&blob).unwrap();
    assert!(echo.join().unwrap(), "{flags:?}: the bulk echo differs");
    sent += blob.len() as u64;
    drop((clients, bulk));
    let summary = server.terminate().json_summary();
    assert_eq!(summary["bytes"], sent, "{flags:?}: {summary}");
    assert_eq!(summary["connections"], 5, "{flags:?}: {summary}");
    let arg =
        |name: &str| flags.iter().position(|f| *f == name).map(|i| flags[i + 1].parse::<u64>().unwrap());
    // The summary records the drain's bound (1024 unless given), and null without one.
    let rounds = flags.contains(&"--eager").then(|| arg("--eager-rounds").unwrap_or(1024));
    assert_eq!(summary["eager_rounds"], serde_json::json!(rounds), "{flags:?}: {summary}");
    // The batch: as given, else 1024 with one worker per port (`--ports 2` of the two
    // workers), else 64 (two workers sharing one port).
    let batch = arg("--batch").unwrap_or(if arg("--ports") == Some(2) { 1024 } else { 64 });
    assert_eq!(summary["batch"], batch, "{flags:?}: {summary}");
    assert_eq!(summary["errors"], 0, "{flags:?}: {summary}");
}

/// Issue 9: `--eager` echoes without the port while a client answers at once (send, then
/// receive the next message directly, `--eager-rounds` in a row at most), and falls back
/// to the port for everything else (long messages, a 4 MiB blob written before reading).
/// Every byte comes back in order, in both layouts, and with a bound of one round (every
/// second echo of a busy connection through the port).
#[test]
fn serve_eager_echoes_every_byte() {
    echoes_every_byte(&["--eager"], 4 << 20);
    echoes_every_byte(&["--eager", "--ports", "2"], 4 << 20);
    echoes_every_byte(&["--eager", "--eager-rounds", "1"], 1 << 20);
}

/// docs/semantics.md H9: with deferred submission and one packet per call (how the C API
/// runs the seeds' echo server), every byte still comes back.
#[test]
fn serve_defer_batch_one_echoes_every_byte() {
    echoes_every_byte(&["--defer", "--batch", "1"], 1 << 20);
}

/// Issue 9: with `--ports 2 --max-connections 3` the ports take shares of 2 and 1, so the
/// server as a whole never holds more than 3 connections, however the kernel spreads them.
#[test]
fn serve_on_two_ports_never_exceeds_max_connections() {
    let server = Server::start(&["--ports", "2", "--max-connections", "3", "--accepts", "8"]);
    let mut clients = server.clients_that_sent_a_byte(10);
    let first = served(&mut clients, Duration::from_secs(2), 10);
    assert!(!first.is_empty(), "nobody was served");
    assert!(first.len() <= 3, "served beyond --max-connections 3 over two ports: {first:?}");
    let end = server.terminate();
    assert_eq!(end.code, Some(0), "{}", end.stderr);
}
