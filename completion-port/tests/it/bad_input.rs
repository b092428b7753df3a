//! Bad input gets a clear error at submission, the context and buffer back, and no
//! packet: docs/semantics.md H1, H2, P4.

use crate::net::pair;
use completion_port::{CompletionPort, MAX_BUFFER};
use std::io::ErrorKind;
use std::net::{Shutdown, TcpListener, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

fn assert_no_packet<C: Send + 'static>(port: &CompletionPort<C>) {
    assert!(port.get(Some(Duration::from_millis(30))).is_err(), "a refused operation produced a packet");
}

// Rule H1: a descriptor that is not open is refused with InvalidInput, without a panic
// (and without closing whatever may later have that number).
#[test]
fn h1_associating_a_closed_descriptor_is_invalid() {
    let port = CompletionPort::<()>::new(1);
    // SAFETY: no descriptor this large is open in this process, so this OwnedFd owns
    // nothing; `associate` must notice and not close it.
    let bogus = unsafe { OwnedFd::from_raw_fd(i32::MAX - 7) };
    let err = port.associate(bogus, 1).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

// Rule H1: associating a raw descriptor that is already associated is invalid.
#[test]
fn h1_associating_twice_is_invalid() {
    let port = CompletionPort::<()>::new(1);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let raw = sock.as_raw_fd();
    let h = port.associate(sock, 1).unwrap();
    // SAFETY: a second claim on the same number; `associate` refuses it and must
    // not close it (the first handle still owns it).
    let again = unsafe { OwnedFd::from_raw_fd(raw) };
    assert_eq!(port.associate(again, 2).unwrap_err().kind(), ErrorKind::InvalidInput);
    // The first handle still works.
    h.send_to(b"x".to_vec(), h_addr(&h), ()).unwrap();
    assert!(port.get(Some(crate::common::PROMPT)).unwrap().result.is_ok());
}

fn h_addr(h: &completion_port::Handle<()>) -> std::net::SocketAddr {
    socket2::SockRef::from(h).local_addr().unwrap().as_socket().unwrap()
}

// Rule H2: socket operations on a regular file are refused at submission.
#[test]
fn h2_socket_operation_on_a_file_is_refused() {
    let port = CompletionPort::<&str>::new(1);
    let file = port.associate(tempfile::tempfile().unwrap(), 1).unwrap();
    let err = file.recv(vec![1, 2, 3], "ctx").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(!err.is_closed());
    assert_eq!(err.context, "ctx");
    assert_eq!(err.buffer.as_deref(), Some(&[1u8, 2, 3][..]));
    assert!(file.send(vec![], "s").is_err());
    assert!(file.accept("a").is_err());
    assert!(file.shutdown(Shutdown::Both, "sh").is_err());
    assert_eq!(file.pending(), 0);
    assert_no_packet(&port);
}

// Rule H2: a receive on a listener, an accept on a connected socket, and datagram
// calls on a stream socket are refused at submission.
#[test]
fn h2_wrong_operation_for_the_socket_kind_is_refused() {
    let port = CompletionPort::<u8>::new(1);
    let listener = port.associate(TcpListener::bind("127.0.0.1:0").unwrap(), 1).unwrap();
    let err = listener.recv(Vec::with_capacity(8), 7).unwrap_err();
    assert_eq!((err.kind(), err.context), (ErrorKind::InvalidInput, 7));
    assert!(err.to_string().contains("listening"), "{err}");
    assert!(listener.connect("127.0.0.1:9".parse().unwrap(), 0).is_err());
    let (stream, _peer) = pair(&port, 2);
    assert_eq!(stream.accept(1).unwrap_err().kind(), ErrorKind::InvalidInput);
    let e = stream.send_to(vec![1], "127.0.0.1:9".parse().unwrap(), 2).unwrap_err();
    assert_eq!(e.buffer, Some(vec![1]));
    assert_no_packet(&port);
}

// Rule H2: a buffer longer than the kernel accepts is refused, buffer handed back.
#[test]
fn h2_oversized_buffer_is_refused() {
    let port = CompletionPort::<u8>::new(1);
    let file = port.associate(tempfile::tempfile().unwrap(), 1).unwrap();
    // Reserved, never touched: costs address space, not memory.
    let huge: Vec<u8> = Vec::with_capacity(MAX_BUFFER + 1);
    let err = file.read_at(huge, 0, 3).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.buffer.as_ref().is_some_and(|b| b.capacity() > MAX_BUFFER));
    assert_eq!(file.pending(), 0);
    assert_no_packet(&port);
}

// Rule H2, P8: operations on a closed port are refused with the context back.
#[test]
fn h2_submission_after_close_is_refused() {
    let port = CompletionPort::<String>::new(1);
    let file = port.associate(tempfile::tempfile().unwrap(), 1).unwrap();
    port.close();
    let err = file.write_at(b"late".to_vec(), 0, "ctx".into()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe);
    assert!(err.is_closed());
    let (e, ctx, buf) = err.into_parts();
    assert!(e.to_string().contains("closed"));
    assert_eq!((ctx.as_str(), buf.as_deref()), ("ctx", Some(&b"late"[..])));
    assert_eq!(port.associate(tempfile::tempfile().unwrap(), 2).unwrap_err().kind(), ErrorKind::BrokenPipe);
    assert!(port.drain().is_empty());
}

// Rule F1: zero-length reads and writes are allowed and complete with 0 bytes.
#[test]
fn f1_zero_length_file_operations_complete() {
    let port = CompletionPort::<u8>::new(1);
    let file = port.associate(tempfile::tempfile().unwrap(), 1).unwrap();
    file.write_at(Vec::new(), 0, 1).unwrap();
    file.read_at(Vec::new(), 0, 2).unwrap();
    for _ in 0..2 {
        assert_eq!(port.get(Some(crate::common::PROMPT)).unwrap().bytes().unwrap(), 0);
    }
}
