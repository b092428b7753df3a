//! Smoke test: every peer server starts on an ephemeral port of 127.0.0.1, echoes bytes
//! correctly (first a raw exchange of our own, then a short run of the ping-pong client,
//! which checks every echoed byte), and exits with status 0 on SIGTERM. Bounded: every
//! socket operation has a timeout, and a server that does not print its address or does
//! not stop within a few seconds fails the test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_peers");
const LIMIT: Duration = Duration::from_secs(10);

/// A running server, killed if the test fails before it is stopped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(kind: &str) -> Server {
    let mut child = Command::new(BIN)
        .args([kind, "--port", "0", "--threads", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the peers binary starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = match rx.recv_timeout(LIMIT) {
        Ok(line) => line,
        Err(_) => {
            let _ = child.kill();
            panic!("{kind}: no address printed within {LIMIT:?}");
        }
    };
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{kind}: unexpected first line {line:?}"))
        .parse()
        .unwrap_or_else(|e| panic!("{kind}: bad address in {line:?}: {e}"));
    Server { child, addr }
}

/// Sends `data` in one write and reads the same number of bytes back.
fn exchange(stream: &mut TcpStream, data: &[u8]) -> Vec<u8> {
    stream.write_all(data).expect("send");
    let mut back = vec![0u8; data.len()];
    stream.read_exact(&mut back).expect("echo");
    back
}

fn stop(mut server: Server, kind: &str) {
    let pid = server.child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
    assert!(status.success(), "{kind}: kill -TERM {pid} failed");
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            assert!(status.success(), "{kind}: exit status {status} after SIGTERM");
            return;
        }
        assert!(Instant::now() < deadline, "{kind}: still running {LIMIT:?} after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn check(kind: &str) {
    let server = start(kind);
    // Two connections at once, small and larger-than-a-buffer messages.
    let mut a = TcpStream::connect_timeout(&server.addr, LIMIT).expect("connect");
    let mut b = TcpStream::connect_timeout(&server.addr, LIMIT).expect("connect");
    for s in [&a, &b] {
        s.set_read_timeout(Some(LIMIT)).unwrap();
        s.set_write_timeout(Some(LIMIT)).unwrap();
    }
    assert_eq!(exchange(&mut a, b"hello"), b"hello", "{kind}");
    let big: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(exchange(&mut b, &big), big, "{kind}");
    assert_eq!(exchange(&mut a, b"again"), b"again", "{kind}");
    drop((a, b));

    let out = Command::new(BIN)
        .args(["client", "--addr", &server.addr.to_string(), "--conns", "3", "--size", "100"])
        .args(["--seconds", "0.2", "--warmup", "0", "--json", "--server-pid", &server.child.id().to_string()])
        .output()
        .expect("the client runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{kind}: client failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("the client prints JSON");
    assert_eq!(report["errors"], 0, "{kind}: {report}");
    assert!(report["msgs"].as_u64().unwrap() > 0, "{kind}: {report}");
    assert!(report["server_cpu_s"].as_f64().unwrap() >= 0.0, "{kind}: {report}");
    stop(server, kind);
}

#[test]
fn tokio_echoes() {
    check("tokio");
}

#[test]
fn monoio_echoes() {
    check("monoio");
}

#[test]
fn compio_echoes() {
    check("compio");
}

#[test]
fn mio_echoes() {
    check("mio");
}

#[test]
fn threads_echoes() {
    check("threads");
}

#[test]
fn bad_flags_are_usage_errors() {
    let out = Command::new(BIN).args(["mio", "--threads", "0"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(BIN).args(["client", "--seconds", "0"]).output().expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--seconds"));
}
