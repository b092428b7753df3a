//! Builds the C test suite (`tests/c/*.c`) against `include/iocp.h` and `libiocp.a`, as C11
//! and as C++17, and runs each program: the return-value and `GetLastError` matrix of
//! ports, files and sockets, checked from C. Skips visibly if no C compiler is installed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// This crate's static library as cargo built it for this test run: `cargo test` leaves
/// it in `target/<profile>/deps/` (only `cargo build` copies it up to
/// `target/<profile>/`, where it may be stale).
fn static_lib() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps directory");
    let fresh = deps.join("libiocp.a");
    if fresh.exists() {
        return fresh;
    }
    deps.parent().expect("target directory").join("libiocp.a")
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// Compiles `src` with `compiler` (`cc` or `c++`), linking `libiocp.a`.
fn build(compiler: &str, src: &Path, out: &Path) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = static_lib();
    assert!(lib.exists(), "{} is missing: cargo builds it with the library", lib.display());
    let mut cmd = Command::new(compiler);
    if compiler == "cc" {
        cmd.args(["-std=c11"]);
    } else {
        cmd.args(["-x", "c++", "-std=c++17"]);
    }
    cmd.args(["-Wall", "-Wextra", "-Werror", "-g", "-I"]).arg(dir.join("include")).arg(src);
    if compiler != "cc" {
        cmd.args(["-x", "none"]);
    }
    cmd.arg(&lib).args(["-lpthread", "-ldl", "-lm", "-o"]).arg(out);
    let status = cmd.status().expect("run the C compiler");
    assert!(status.success(), "{compiler} failed on {}", src.display());
}

/// Runs a test program (60 s at most) and returns its standard output.
fn run(exe: &Path) -> String {
    let mut child = Command::new(exe).stdout(Stdio::piped()).spawn().expect("run the C test");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().expect("wait for the C test") {
            let mut out = String::new();
            std::io::Read::read_to_string(&mut child.stdout.take().expect("stdout"), &mut out).expect("read");
            assert!(status.success(), "{} failed ({status}); output:\n{out}", exe.display());
            return out;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{} did not finish within 60 s", exe.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn suite(name: &str) {
    if !have("cc") {
        eprintln!("SKIPPED c::{name}: no C compiler (cc) on this machine");
        return;
    }
    let tmp = tempfile::tempdir().expect("temporary directory");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c").join(format!("{name}.c"));
    let mut compilers = vec!["cc"];
    if have("c++") {
        compilers.push("c++");
    } else {
        eprintln!("SKIPPED c::{name} as C++: no c++ on this machine");
    }
    for compiler in compilers {
        let exe = tmp.path().join(format!("{name}-{compiler}"));
        build(compiler, &src, &exe);
        let out = run(&exe);
        assert!(out.contains(&format!("{name}: ok")) || name == "symbols", "unexpected output: {out}");
        if name == "symbols" {
            assert!(out.contains("functions declared and linked"), "unexpected output: {out}");
        }
    }
}

/// Every exported function is declared by the header and defined by the library.
#[test]
fn symbols() {
    suite("symbols");
}

/// Ports: empty poll, post/get, GQCSEx batches and count 0, close while waiting, LIFO
/// release, concurrency with a sleeping worker, events, bad handles.
#[test]
fn port() {
    suite("port");
}

/// Files: dispositions, offsets, end of file, size, flush, GetOverlappedResult, cancel.
#[test]
fn file() {
    suite("file");
}

/// Sockets: AcceptEx, WSARecv/WSASend, graceful close, reset, cancel, local close.
#[test]
fn net() {
    suite("net");
}
