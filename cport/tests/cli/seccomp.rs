//! `cport serve` and `cport copy` where io_uring is really refused (issue 10): the real
//! binary runs under a seccomp filter that answers `EPERM` to `io_uring_setup`, as Docker's
//! default profile does, and must fall back to epoll, say so, and work.
//!
//! The filter is installed by a child process of this test binary, which then `exec`s
//! `cport`: a seccomp filter survives `exec`, so `cport` runs under it from its first
//! instruction. Each test runs twice: as itself (the parent, which checks `cport`'s
//! output and effects) and, re-run by the parent with [`CHILD_ARGS`] set, as the
//! re-exec helper that becomes `cport`. `COMPLETION_PORT_BACKEND` is removed for `cport`
//! (even under `ci/epoll.sh`): these tests are about `Auto`'s own choice.

use crate::common::{bin, pseudo_random, LIMIT};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// In the re-exec helper: `cport`'s arguments, one per line.
const CHILD_ARGS: &str = "CPORT_SECCOMP_EXEC_ARGS";

/// From here on, this thread (and whatever it `exec`s) gets `EPERM` from
/// `io_uring_setup`; every other system call is allowed.
fn refuse_io_uring() {
    use seccompiler::{BpfProgram, SeccompAction, SeccompFilter};
    let rules = BTreeMap::from([(libc::SYS_io_uring_setup, Vec::new())]);
    let arch = std::env::consts::ARCH.try_into().expect("a seccomp target architecture");
    let filter =
        SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(libc::EPERM as u32), arch)
            .expect("a valid filter");
    let program: BpfProgram = filter.try_into().expect("the filter compiles");
    seccompiler::apply_filter(&program).expect("the filter is installed");
}

/// In the re-exec helper (the test `test` re-run with [`CHILD_ARGS`] set): installs the
/// filter and becomes `cport` with those arguments; never returns. Elsewhere does nothing.
fn become_cport_if_child() {
    let Some(args) = std::env::var_os(CHILD_ARGS) else { return };
    let args = args.into_string().expect("UTF-8 arguments");
    refuse_io_uring();
    let e = Command::new(bin()).args(args.lines()).env_remove(CHILD_ARGS).exec();
    panic!("cannot exec {}: {e}", bin().display());
}

/// A command that runs `cport args...` under the filter, through the re-exec helper
/// `test` (the full name of the calling test). Logging is left at `cport`'s default
/// (warnings), and the backend to `Auto`.
fn cport_under_seccomp(test: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary"));
    cmd.args(["--exact", test, "--test-threads=1", "--quiet"])
        .env(CHILD_ARGS, args.join("\n"))
        .env_remove("CPORT_LOG")
        .env_remove("COMPLETION_PORT_BACKEND")
        .stdin(Stdio::null());
    cmd
}

/// Asserts that `cport`'s stderr reports the fallback, with its reason.
fn assert_fallback_logged(stderr: &str) {
    assert!(stderr.contains("falling back to epoll"), "the fallback is logged:\n{stderr}");
    assert!(stderr.contains("Operation not permitted"), "the log says why:\n{stderr}");
}

/// Kills the child if the test fails before it has finished with it.
struct Killed(Option<Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// Issue 10 (fallback), N1, N2: `cport serve` under a filter refusing io_uring_setup logs
// the fallback and its reason, names the epoll backend in its first line, and echoes what a
// client sends; SIGTERM then stops it cleanly.
#[test]
fn serve_falls_back_to_epoll_where_seccomp_refuses_io_uring() {
    become_cport_if_child();
    let test = "seccomp::serve_falls_back_to_epoll_where_seccomp_refuses_io_uring";
    let mut child = cport_under_seccomp(test, &["serve", "--addr", "127.0.0.1:0", "--workers", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the test binary starts again");
    let mut err = BufReader::new(child.stderr.take().expect("piped stderr"));
    let mut child = Killed(Some(child));
    // The fallback warning comes first (the listener's association creates the backend),
    // then the server's own first line.
    let mut before = String::new();
    let listening = loop {
        let mut line = String::new();
        let n = err.read_line(&mut line).expect("read the server's stderr");
        assert!(n > 0, "the server ended before it listened:\n{before}");
        if line.starts_with("cport serve: listening on") {
            break line;
        }
        before.push_str(&line);
    };
    assert_fallback_logged(&before);
    assert!(listening.contains("backend epoll"), "first line: {listening}");
    let addr: SocketAddr = listening
        .split_whitespace()
        .find_map(|w| w.trim_end_matches(',').parse().ok())
        .unwrap_or_else(|| panic!("no address in {listening:?}"));
    thread::spawn(move || {
        // Keep draining stderr so the server never blocks on it.
        let mut rest = String::new();
        let _ = err.read_to_string(&mut rest);
    });

    let mut s = TcpStream::connect(addr).expect("connect to the server");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let msg = pseudo_random(100_000, 7);
    let reader = {
        let mut s = s.try_clone().unwrap();
        let n = msg.len();
        thread::spawn(move || {
            let mut back = vec![0u8; n];
            s.read_exact(&mut back).map(|()| back)
        })
    };
    s.write_all(&msg).unwrap();
    let back = reader.join().unwrap().expect("the echo comes back");
    assert!(back == msg, "the echo differs from what was sent");
    drop(s);

    let c = child.0.take().unwrap();
    let ok = Command::new("kill").args(["-TERM", &c.id().to_string()]).status().unwrap();
    assert!(ok.success());
    let status = finish(c);
    assert_eq!(status.status.code(), Some(0), "serve exits 0 on SIGTERM");
}

/// Waits for a child within [`LIMIT`] (killing it after), and returns its output.
fn finish(child: Child) -> Output {
    let mut child = Killed(Some(child));
    let start = Instant::now();
    loop {
        let c = child.0.as_mut().unwrap();
        if c.try_wait().expect("wait for the child").is_some() {
            return child.0.take().unwrap().wait_with_output().expect("the child's output");
        }
        assert!(start.elapsed() < LIMIT, "the child ran longer than {LIMIT:?}");
        thread::sleep(Duration::from_millis(10));
    }
}

// Issue 10 (fallback), F1: `cport copy` under a filter refusing io_uring_setup logs the
// fallback and its reason and copies a file byte for byte (its reads and writes on the
// epoll backend's file pool), sizes not a multiple of the block size included.
#[test]
fn copy_falls_back_to_epoll_where_seccomp_refuses_io_uring() {
    become_cport_if_child();
    let test = "seccomp::copy_falls_back_to_epoll_where_seccomp_refuses_io_uring";
    let dir = tempfile::tempdir().expect("temp dir");
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    let data = pseudo_random((3 << 20) + 12_345, 11);
    std::fs::write(&src, &data).expect("write the source");
    let args = ["copy", src.to_str().unwrap(), dst.to_str().unwrap(), "--block-size", "64K"];
    let child = cport_under_seccomp(test, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the test binary starts again");
    let out = finish(child);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "copy under seccomp: {stderr}");
    assert_fallback_logged(&stderr);
    assert!(stderr.contains(&format!("copied {} bytes", data.len())), "summary: {stderr}");
    let copied = std::fs::read(&dst).expect("read the destination");
    assert_eq!(copied.len(), data.len(), "lengths differ");
    assert!(copied == data, "the copy differs from the source");
}
