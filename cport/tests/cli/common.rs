//! Helpers shared by the CLI tests.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest any one `cport` run may take before the test fails (instead of hanging).
pub const LIMIT: Duration = Duration::from_secs(60);

/// The `cport` binary under test: the one cargo built for these tests, or the one named by
/// `CPORT_TEST_BIN` (to check that a new test fails against an older build).
pub fn bin() -> std::path::PathBuf {
    std::env::var_os("CPORT_TEST_BIN").map_or_else(|| env!("CARGO_BIN_EXE_cport").into(), Into::into)
}

/// A command for the `cport` binary under test ([`bin`]), with logging left at its default
/// so stderr holds only what the command itself prints.
pub fn cport(args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args).env_remove("CPORT_LOG").stdin(Stdio::null());
    cmd
}

/// Runs `cmd` to completion within [`LIMIT`], capturing its output; kills it and fails
/// the test if it takes longer.
pub fn run(cmd: &mut Command) -> Output {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("cport starts");
    // Read both pipes on threads so a chatty child never blocks on a full pipe.
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for cport") {
            break status;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("cport {:?} ran longer than {LIMIT:?}", cmd.get_args().collect::<Vec<_>>());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output { status, stdout: out.join().expect("stdout reader"), stderr: err.join().expect("stderr reader") }
}

/// Runs `cport args...` (see [`run`]).
pub fn run_cport(args: &[&str]) -> Output {
    run(&mut cport(args))
}

/// The output's stdout and stderr as text, for assertions and failure messages.
pub fn texts(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// Says, visibly, that a test could not run its check on this machine. It writes to the
/// process's stderr directly: the test harness captures `eprintln!`, so a skip printed that
/// way would pass unseen.
pub fn skip(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// An address on 127.0.0.1 with nothing listening (a port just released by the kernel).
pub fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local address")
}

/// A thread-per-connection TCP echo server on 127.0.0.1, written with std only, so the
/// load generator is checked against something other than our own server.
pub struct EchoServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl EchoServer {
    /// Starts an echo server that echoes every byte faithfully.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// Starts an echo server that, on each connection, flips the bits of the byte at
    /// stream offset `corrupt_at` (if given) and echoes everything else faithfully.
    pub fn start_with(corrupt_at: Option<u64>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let acceptor = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(conn) = conn {
                    std::thread::spawn(move || echo(conn, corrupt_at));
                }
            }
        });
        Self { addr, stop, acceptor: Some(acceptor) }
    }

    /// The address to connect to, as `cport` takes it.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }
}

/// Echoes until end of stream or an error.
fn echo(mut conn: TcpStream, corrupt_at: Option<u64>) {
    let mut buf = vec![0u8; 64 << 10];
    let mut offset = 0u64;
    loop {
        let n = match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if let Some(at) = corrupt_at {
            if (offset..offset + n as u64).contains(&at) {
                buf[(at - offset) as usize] ^= 0xFF;
            }
        }
        offset += n as u64;
        if conn.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor out of `accept` so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

/// Deterministic pseudo-random bytes (xorshift64*), for test files.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        v.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    v.truncate(len);
    v
}
