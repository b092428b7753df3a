//! `cport serve`, run as a real process on 127.0.0.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A running `cport serve`, killed if the test fails before stopping it.
struct Server {
    child: Option<Child>,
    addr: SocketAddr,
}

impl Server {
    /// Starts the server on a free port and waits until it listens.
    fn start(extra: &[&str]) -> Server {
        let mut child = Command::new(crate::common::bin())
            .args(["serve", "--addr", "127.0.0.1:0", "--workers", "2"])
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
            .find_map(|w| w.parse::<SocketAddr>().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        // Keep draining stderr so the server never blocks on it.
        thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
        Server { child: Some(child), addr }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
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

    /// Sends SIGTERM; returns (exit code, stdout, time to exit).
    fn terminate(mut self) -> (Option<i32>, String, Duration) {
        let child = self.child.take().unwrap();
        let start = Instant::now();
        let ok = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        assert!(ok.success());
        let out = child.wait_with_output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), start.elapsed())
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
    let (code, out, _) = server.terminate();
    assert_eq!(code, Some(0));
    assert!(out.contains("1 connections"), "{out}");
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
    let (code, out, _) = server.terminate();
    assert_eq!(code, Some(0), "{out}");
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
    let (code, out, took) = server.terminate();
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(out.starts_with("cport serve: 10 connections, 10 messages, 40 bytes echoed"), "{out}");
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
    let (code, out, _) = server.terminate();
    assert_eq!(code, Some(0));
    assert!(out.contains("0 errors"), "{out}");
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
    let (code, out, took) = server.terminate();
    assert_eq!(code, Some(0), "{out}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(out.starts_with("cport serve: 20 connections"), "{out}");
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
