//! Sockets on 127.0.0.1: docs/semantics.md N1–N6, H2.

use crate::common::PROMPT;
use completion_port::{Completion, CompletionPort, Handle};
use socket2::{Domain, SockRef, Socket, Type};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

/// A connected pair: `ours` associated with `port` under `key`, `peer` a plain socket.
pub fn pair<C: Send + 'static>(port: &CompletionPort<C>, key: usize) -> (Handle<C>, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (ours, _) = listener.accept().unwrap();
    (port.associate(ours, key).unwrap(), peer)
}

fn get<C: Send + 'static>(port: &CompletionPort<C>) -> Completion<C> {
    port.get(Some(PROMPT)).expect("a packet within the bound")
}

// Rule N1: the accept packet carries the listener's key, a working (unassociated)
// socket and the peer's address.
#[test]
fn n1_accept_carries_listener_key_and_a_working_socket() {
    let port = CompletionPort::<&str>::new(2);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = port.associate(listener, 77).unwrap();
    listener.accept("accept-1").unwrap();
    let mut client = TcpStream::connect(addr).unwrap();
    let mut p = get(&port);
    assert_eq!((p.key, p.context, p.bytes().unwrap()), (77, "accept-1", 0));
    assert_eq!(p.addr, Some(client.local_addr().unwrap()));
    let mut server_side = p.take_stream().expect("accept yields a socket");
    server_side.write_all(b"hi").unwrap();
    let mut buf = [0u8; 2];
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hi");
    // Not associated until the caller does so: associating it now works.
    let h = port.associate(server_side, 78).unwrap();
    assert_eq!(h.key(), 78);
}

// Rule N2: a send/recv round trip through the port, and connect on a fresh socket.
#[test]
fn n2_connect_send_recv_round_trip() {
    let port = CompletionPort::<u32>::new(2);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let sock = port.associate(Socket::new(Domain::IPV4, Type::STREAM, None).unwrap(), 1).unwrap();
    sock.connect(addr, 10).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    let p = get(&port);
    assert_eq!((p.key, p.context), (1, 10));
    p.result.unwrap();

    sock.send(b"ping".to_vec(), 11).unwrap();
    let p = get(&port);
    assert_eq!((p.context, p.bytes().unwrap()), (11, 4));
    let mut buf = [0u8; 4];
    server.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");

    sock.recv(Vec::with_capacity(64), 12).unwrap();
    server.write_all(b"pong!").unwrap();
    let p = get(&port);
    assert_eq!((p.context, p.bytes().unwrap()), (12, 5));
    assert_eq!(p.buffer.as_deref(), Some(&b"pong!"[..]));

    // shutdown(Write) reaches the peer as end of stream.
    sock.shutdown(Shutdown::Write, 13).unwrap();
    assert_eq!(get(&port).context, 13);
    assert_eq!(server.read(&mut buf).unwrap(), 0);
}

// Rule N3: the peer closing gracefully completes a pending receive with Ok(0): a
// success that means end of stream.
#[test]
fn n3_peer_graceful_close_is_ok_zero() {
    let port = CompletionPort::<()>::new(1);
    let (ours, peer) = pair(&port, 3);
    ours.recv(Vec::with_capacity(128), ()).unwrap();
    std::thread::sleep(Duration::from_millis(20)); // let the receive be pending
    drop(peer);
    let p = get(&port);
    assert_eq!(p.key, 3);
    assert_eq!(p.bytes().unwrap(), 0);
    assert!(!p.is_cancelled());
}

// Rule N4: the peer resetting the connection completes a pending receive with
// connection-reset.
#[test]
fn n4_peer_reset_is_connection_reset() {
    let port = CompletionPort::<()>::new(1);
    let (ours, peer) = pair(&port, 4);
    ours.recv(Vec::with_capacity(128), ()).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    SockRef::from(&peer).set_linger(Some(Duration::ZERO)).unwrap();
    drop(peer); // RST
    let p = get(&port);
    assert_eq!(p.result.unwrap_err().kind(), std::io::ErrorKind::ConnectionReset);
}

// Rule N5, H6: closing our socket with a receive pending gives exactly one cancelled
// packet, with the context and buffer.
#[test]
fn n5_closing_our_socket_cancels_its_receive() {
    let port = CompletionPort::<&str>::new(1);
    let (ours, _peer) = pair(&port, 5);
    ours.recv(Vec::with_capacity(32), "pending").unwrap();
    ours.close();
    let p = get(&port);
    assert_eq!((p.key, p.context), (5, "pending"));
    assert!(p.is_cancelled(), "{:?}", p.result);
    assert_eq!(p.buffer.map(|b| b.capacity()), Some(32));
    assert!(port.get(Some(Duration::from_millis(50))).is_err(), "exactly one packet");
}

// Rule N6: a zero-length receive completes when data is readable and leaves the data
// in the socket.
#[test]
fn n6_zero_length_receive_waits_for_data_and_consumes_none() {
    let port = CompletionPort::<u8>::new(1);
    let (ours, mut peer) = pair(&port, 6);
    ours.recv(Vec::new(), 0).unwrap();
    assert!(port.get(Some(Duration::from_millis(50))).is_err(), "no data yet: no packet");
    peer.write_all(b"abc").unwrap();
    let p = get(&port);
    assert_eq!((p.context, p.bytes().unwrap()), (0, 0));
    ours.recv(Vec::with_capacity(8), 1).unwrap();
    let p = get(&port);
    assert_eq!(p.buffer.as_deref(), Some(&b"abc"[..]), "the data was left in the socket");
}

// Rule H2: a receive when data is already there still yields its packet.
#[test]
fn h2_receive_with_data_already_there_yields_a_packet() {
    let port = CompletionPort::<u8>::new(1);
    let (ours, mut peer) = pair(&port, 2);
    peer.write_all(b"early").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    ours.recv(Vec::with_capacity(16), 9).unwrap();
    let p = get(&port);
    assert_eq!((p.context, p.buffer.as_deref()), (9, Some(&b"early"[..])));
}

// Rule N2: UDP send_to / recv_from round trip, with the sender's address.
#[test]
fn n2_udp_round_trip() {
    let port = CompletionPort::<&str>::new(1);
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    let a = port.associate(a, 1).unwrap();
    let b = port.associate(b, 2).unwrap();
    b.recv_from(Vec::with_capacity(64), "b-recv").unwrap();
    a.send_to(b"datagram".to_vec(), b_addr, "a-send").unwrap();
    let mut got = std::collections::HashMap::new();
    for _ in 0..2 {
        let p = get(&port);
        got.insert(p.context, p);
    }
    assert_eq!(got["a-send"].bytes().unwrap(), 8);
    let r = &got["b-recv"];
    assert_eq!((r.key, r.buffer.as_deref(), r.addr), (2, Some(&b"datagram"[..]), Some(a_addr)));
}

// Rule H2 (skip-on-success): an eager call that completes at once returns its result
// directly and queues no packet; one that would block becomes an ordinary operation with
// exactly one packet.
#[test]
fn h2_eager_send_and_recv_skip_the_port_on_success() {
    use completion_port::Started;
    let port = CompletionPort::<&str>::new(1);
    let (ours, mut peer) = pair(&port, 7);
    match ours.send_eager(b"now".to_vec(), "send").unwrap() {
        Started::Done(c) => {
            assert_eq!((c.key, c.context, c.bytes().unwrap()), (7, "send", 3));
            assert_eq!(c.buffer.as_deref(), Some(&b"now"[..]));
        }
        Started::Pending(_) => panic!("an empty socket buffer takes 3 bytes at once"),
    }
    let mut buf = [0u8; 3];
    peer.read_exact(&mut buf).unwrap();
    // Nothing to read yet: the receive goes to the kernel, and its packet comes later.
    let Started::Pending(op) = ours.recv_eager(Vec::with_capacity(16), "later").unwrap() else {
        panic!("no data was there");
    };
    peer.write_all(b"data").unwrap();
    let p = get(&port);
    assert_eq!((p.context, p.buffer.as_deref()), ("later", Some(&b"data"[..])));
    assert!(op.is_done());
    // Data already there: done at once, no packet.
    peer.write_all(b"more").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let Started::Done(c) = ours.recv_eager(vec![0; 16], "now").unwrap() else { panic!("data was there") };
    assert_eq!(c.buffer.as_deref(), Some(&b"more"[..]));
    drop(peer);
    std::thread::sleep(Duration::from_millis(20));
    let Started::Done(c) = ours.recv_eager(Vec::with_capacity(16), "eof").unwrap() else { panic!() };
    assert_eq!(c.bytes().unwrap(), 0, "end of stream is an immediate Ok(0) (N3)");
    assert!(port.get(Some(Duration::from_millis(30))).is_err(), "no packet for eager successes");
}

// Rule N8: `try_send` and `try_recv` are one non-blocking call each on the caller's
// memory. They return the result or `WouldBlock`, and never produce a packet.
#[test]
fn n8_try_send_and_try_recv_queue_no_packet() {
    let port = CompletionPort::<&str>::new(1);
    let (ours, mut peer) = pair(&port, 3);
    assert_eq!(ours.try_send(b"hello").unwrap(), 5, "an empty socket buffer takes 5 bytes at once");
    let mut got = [0u8; 5];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hello");
    let mut buf = Vec::with_capacity(16);
    let e = ours.try_recv(&mut buf).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "nothing was sent yet: {e}");
    peer.write_all(b"reply").unwrap();
    let n = try_recv_until_ready(&ours, &mut buf);
    assert_eq!((n, &buf[..]), (5, &b"reply"[..]), "the buffer is filled from its start");
    // The end of the stream is Ok(0) (N3), an empty buffer.
    drop(peer);
    assert_eq!(try_recv_until_ready(&ours, &mut buf), 0, "end of stream after the peer closed");
    assert!(buf.is_empty());
    assert!(port.get(Some(Duration::from_millis(30))).is_err(), "no packet for a try_ call");
}

/// Retries `try_recv` until it answers something other than `WouldBlock` (within
/// `PROMPT`), and returns the byte count.
fn try_recv_until_ready<C: Send + 'static>(h: &Handle<C>, buf: &mut Vec<u8>) -> usize {
    let mut n = None;
    crate::common::wait_until(PROMPT, "try_recv has an answer", || match h.try_recv(buf) {
        Ok(k) => {
            n = Some(k);
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
        Err(e) => panic!("try_recv failed: {e}"),
    });
    n.unwrap_or_default()
}

// Rule N8: a `try_recv` never takes data ahead of an overlapped receive of the same
// handle on epoll (it answers `WouldBlock` while one waits); on either backend every byte
// arrives once, in order, between the two.
#[test]
fn n8_try_recv_does_not_overtake_a_waiting_receive() {
    use completion_port::Backend;
    let port = CompletionPort::<&str>::new(1);
    let (ours, mut peer) = pair(&port, 4);
    ours.recv(Vec::with_capacity(16), "waiting").unwrap();
    peer.write_all(b"first").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let mut buf = Vec::with_capacity(16);
    let taken = match ours.try_recv(&mut buf) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
        Err(e) => panic!("try_recv failed: {e}"),
    };
    if port.backend() == Some(Backend::Epoll) {
        assert_eq!(taken, 0, "the waiting receive comes first");
    }
    if taken == 0 {
        let p = get(&port);
        assert_eq!((p.context, p.buffer.as_deref()), ("waiting", Some(&b"first"[..])));
    } else {
        // io_uring: the kernel had not yet given the data to the waiting receive; it
        // still gets exactly one packet, with what comes next.
        assert_eq!(&buf[..], b"first");
        peer.write_all(b"second").unwrap();
        let p = get(&port);
        assert_eq!((p.context, p.buffer.as_deref()), ("waiting", Some(&b"second"[..])));
    }
    assert!(port.get(Some(Duration::from_millis(30))).is_err(), "exactly one packet");
}

// Rule N8, bad input: a buffer without capacity, a handle that is not a socket, and a
// closed port are refused with clear errors, before any system call on the socket.
#[test]
fn n8_try_calls_refuse_bad_input() {
    use std::io::ErrorKind;
    let port = CompletionPort::<&str>::new(1);
    let (ours, _peer) = pair(&port, 5);
    assert_eq!(ours.try_recv(&mut Vec::new()).unwrap_err().kind(), ErrorKind::InvalidInput);
    let file = tempfile::tempfile().unwrap();
    let f = port.associate(file, 6).unwrap();
    assert_eq!(f.try_send(b"x").unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(f.try_recv(&mut Vec::with_capacity(4)).unwrap_err().kind(), ErrorKind::InvalidInput);
    port.close();
    assert_eq!(ours.try_send(b"x").unwrap_err().kind(), ErrorKind::BrokenPipe);
    assert_eq!(ours.try_recv(&mut Vec::with_capacity(4)).unwrap_err().kind(), ErrorKind::BrokenPipe);
}

// Rule H2 (skip-on-success): an eager receive that cannot complete at once is an ordinary
// operation, however often that happens in a row: after a would-block (which the epoll
// backend remembers, and then skips the system call), a second eager receive still gets
// the data that comes later, in exactly one packet.
#[test]
fn h2_eager_recv_after_would_block_still_gets_its_packet() {
    use completion_port::Started;
    let port = CompletionPort::<&str>::new(1);
    let (ours, mut peer) = pair(&port, 9);
    let Started::Pending(first) = ours.recv_eager(Vec::with_capacity(16), "first").unwrap() else {
        panic!("no data was there");
    };
    ours.cancel(&first).unwrap();
    let p = get(&port);
    assert_eq!(p.context, "first");
    assert!(p.is_cancelled(), "{:?}", p.result);
    let Started::Pending(second) = ours.recv_eager(Vec::with_capacity(16), "second").unwrap() else {
        panic!("still no data");
    };
    peer.write_all(b"late").unwrap();
    let p = get(&port);
    assert_eq!((p.context, p.buffer.as_deref()), ("second", Some(&b"late"[..])));
    assert!(second.is_done());
    assert!(port.get(Some(Duration::from_millis(30))).is_err(), "exactly one packet");
}

// Rule P2: `post_completion` queues a whole packet: an eager receive's immediate result,
// posted to the port, comes out of `get` with its key, context, byte count and buffer; on
// a closed port the packet comes back.
#[test]
fn p2_an_eager_result_posted_again_comes_back_whole() {
    use completion_port::Started;
    let port = CompletionPort::<&str>::new(1);
    let (ours, mut peer) = pair(&port, 4);
    peer.write_all(b"hello").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let Started::Done(c) = ours.recv_eager(Vec::with_capacity(16), "now").unwrap() else {
        panic!("data was there");
    };
    port.post_completion(c).unwrap();
    let p = get(&port);
    assert_eq!((p.key, p.context, p.bytes().unwrap()), (4, "now", 5));
    assert_eq!(p.buffer.as_deref(), Some(&b"hello"[..]));
    peer.write_all(b"again").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let Started::Done(c) = ours.recv_eager(Vec::with_capacity(16), "closed").unwrap() else {
        panic!("data was there");
    };
    port.close();
    let back = port.post_completion(c).unwrap_err();
    assert_eq!((back.context, back.buffer.as_deref()), ("closed", Some(&b"again"[..])));
}
