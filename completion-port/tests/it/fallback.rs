//! The backend choice when io_uring is really unavailable (issue 10): a child process of
//! this test binary runs under a seccomp filter that answers `EPERM` to `io_uring_setup`,
//! as Docker's default profile does.

use crate::common::PROMPT;
use completion_port::{Backend, CompletionPort};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};

const CHILD: &str = "CP_SECCOMP_CHILD";

/// Runs this binary's test `name` in a child process whose environment has `CHILD` set
/// and no `COMPLETION_PORT_BACKEND` (the child chooses for itself), and returns its output.
fn run_child(name: &str) -> String {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", name, "--test-threads=1", "--nocapture"])
        .env(CHILD, "1")
        .env_remove(completion_port::BACKEND_ENV)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    crate::common::finish_child(cmd.spawn().expect("the test binary starts again"))
}

/// From here on, this thread (and every thread it starts) gets `EPERM` from
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

// docs/semantics.md, Backends: with io_uring refused by seccomp, `Backend::Auto` falls back
// to epoll, logs why (a warning naming the error), and a TCP echo round trip works (N1, N2);
// forcing io_uring fails with a clear error that names the reason.
#[test]
fn auto_falls_back_to_epoll_where_seccomp_refuses_io_uring() {
    const NAME: &str = "fallback::auto_falls_back_to_epoll_where_seccomp_refuses_io_uring";
    if std::env::var_os(CHILD).is_none() {
        let text = run_child(NAME);
        assert!(text.contains("falling back to epoll"), "the fallback is logged:\n{text}");
        assert!(text.contains("Operation not permitted"), "the log says why:\n{text}");
        assert!(text.contains("backend: epoll"), "the child reports its backend:\n{text}");
        return;
    }
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_max_level(tracing::Level::WARN).init();
    refuse_io_uring();

    let forced: CompletionPort<()> = CompletionPort::with_backend(1, Backend::Uring);
    let e = forced.associate(TcpListener::bind("127.0.0.1:0").unwrap(), 0).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
    assert!(e.to_string().contains("io_uring is unavailable"), "{e}");
    assert!(e.to_string().contains("io_uring_disabled"), "{e}");
    assert_eq!(forced.backend(), None, "no backend was created");

    let port: CompletionPort<&str> = CompletionPort::with_backend(2, Backend::Auto);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = port.associate(listener, 1).unwrap();
    assert_eq!(port.backend(), Some(Backend::Epoll));
    println!("backend: {}", port.backend().map_or("none", Backend::name));

    listener.accept("accept").unwrap();
    let mut client = TcpStream::connect(addr).unwrap();
    let mut p = port.get(Some(PROMPT)).unwrap();
    assert_eq!(p.context, "accept");
    let conn = port.associate(p.take_stream().expect("an accepted socket"), 2).unwrap();
    conn.recv(Vec::with_capacity(64), "recv").unwrap();
    client.write_all(b"ping").unwrap();
    let p = port.get(Some(PROMPT)).unwrap();
    assert_eq!((p.context, p.data()), ("recv", &b"ping"[..]));
    conn.send(p.buffer.unwrap(), "send").unwrap();
    let p = port.get(Some(PROMPT)).unwrap();
    assert_eq!((p.context, p.bytes().ok()), ("send", Some(4)));
    let mut back = [0u8; 4];
    client.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"ping");
}
