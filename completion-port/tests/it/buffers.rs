//! Buffers of every form (docs/semantics.md H11): `Box<[u8]>`, raw caller-owned memory and
//! scatter/gather lists, on files and sockets, on whichever backend the suite runs on.

use crate::common::PROMPT;
use completion_port::{Buffer, Completion, CompletionPort, MAX_SEGMENTS};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};

fn get<C: Send + 'static>(port: &CompletionPort<C>) -> Completion<C> {
    port.get(Some(PROMPT)).expect("a packet within the bound")
}

fn temp_file(tag: &str) -> (std::path::PathBuf, std::fs::File) {
    let path = std::env::temp_dir().join(format!("cp-h11-{tag}-{}", std::process::id()));
    let f =
        std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
    (path, f)
}

/// A connected pair: `ours` associated with `port`, `peer` a plain socket.
fn pair<C: Send + 'static>(port: &CompletionPort<C>) -> (completion_port::Handle<C>, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (ours, _) = listener.accept().unwrap();
    (port.associate(ours, 1).unwrap(), peer)
}

// Rule H11: a Box<[u8]> is written whole and read into up to its length, and comes back in
// `memory`; raw caller-owned memory is read into in place.
#[test]
fn h11_file_box_and_raw_buffers() {
    let port = CompletionPort::<u8>::new(1);
    let (path, f) = temp_file("box");
    let file = port.associate(f, 3).unwrap();
    file.write_at(b"boxed bytes".to_vec().into_boxed_slice(), 0, 1).unwrap();
    let mut p = get(&port);
    assert_eq!((p.context, p.result().unwrap()), (1, 11));
    assert!(p.buffer.is_none(), "only a Vec comes back as a Vec");
    assert_eq!(p.take_buffer().unwrap().as_slice(), Some(&b"boxed bytes"[..]));

    file.read_at(vec![0u8; 32].into_boxed_slice(), 6, 2).unwrap();
    let p = get(&port);
    assert_eq!((p.context, p.result().unwrap()), (2, 5));
    assert_eq!(&p.data()[..5], b"bytes", "a read fills the box from its start");
    assert_eq!(p.data().len(), 32, "a box keeps its length");

    let mut mine = [0u8; 16];
    // SAFETY: `mine` outlives the operation: the packet (and the Buffer in it) is dropped
    // below, before `mine` is read or goes out of scope.
    let raw = unsafe { Buffer::from_raw_parts_mut(mine.as_mut_ptr(), mine.len()) };
    file.read_at(raw, 0, 3).unwrap();
    let p = get(&port);
    assert_eq!((p.context, p.result().unwrap()), (3, 11));
    drop(p);
    assert_eq!(&mine[..11], b"boxed bytes");

    let text = *b"raw!";
    // SAFETY: `text` is alive and unwritten until the packet is dropped below.
    let raw = unsafe { Buffer::from_raw_parts(text.as_ptr(), text.len()) };
    file.write_at(raw, 11, 4).unwrap();
    assert_eq!(get(&port).result().unwrap(), 4);
    assert_eq!(std::fs::read(&path).unwrap(), b"boxed bytesraw!");
    std::fs::remove_file(&path).unwrap();
}

// Rule H11: a scatter/gather write sends its segments in order (writev); a scatter/gather
// read fills them in order (readv), a Vec segment up to its capacity with its length set.
#[test]
fn h11_file_vectored_write_then_read() {
    let port = CompletionPort::<()>::new(1);
    let (path, f) = temp_file("vec");
    let file = port.associate(f, 3).unwrap();
    let tail = *b"-three";
    // SAFETY: `tail` is alive and unwritten until the write's packet is taken below.
    let raw = unsafe { Buffer::from_raw_parts(tail.as_ptr(), tail.len()) };
    let parts = Buffer::vectored([
        Buffer::from(b"one".to_vec()),
        Buffer::from(b"-two".to_vec().into_boxed_slice()),
        raw,
    ]);
    assert_eq!((parts.len(), parts.segments().len()), (13, 3));
    file.write_at(parts, 0, ()).unwrap();
    let mut p = get(&port);
    assert_eq!(p.result().unwrap(), 13);
    assert!(p.take_buffer().unwrap().is_vectored());
    drop(p);
    assert_eq!(std::fs::read(&path).unwrap(), b"one-two-three");

    let parts = Buffer::vectored([
        Buffer::from(Vec::with_capacity(4)),
        Buffer::from(vec![0u8; 20].into_boxed_slice()),
    ]);
    file.read_at(parts, 0, ()).unwrap();
    let mut p = get(&port);
    assert_eq!(p.result().unwrap(), 13);
    assert!(p.data().is_empty(), "a scatter/gather list is not one slice");
    let segs = p.take_buffer().unwrap().into_segments();
    assert_eq!(segs.len(), 2);
    assert_eq!(segs[0].as_slice(), Some(&b"one-"[..]), "the Vec segment holds what it received");
    assert_eq!(&segs[1].as_slice().unwrap()[..9], b"two-three");
    let first = segs.into_iter().next().unwrap().into_vec().unwrap();
    assert_eq!((first.len(), first.capacity()), (4, 4));
    std::fs::remove_file(&path).unwrap();
}

// Rule H11: sends and receives on a stream socket with Box, raw and 3-segment buffers.
#[test]
fn h11_socket_vectored_send_and_recv() {
    let port = CompletionPort::<u8>::new(1);
    let (sock, mut peer) = pair(&port);
    let mut mid = *b" gather ";
    // SAFETY: `mid` stays alive and untouched until the packet is dropped below.
    let raw = unsafe { Buffer::from_raw_parts_mut(mid.as_mut_ptr(), mid.len()) };
    let parts = Buffer::vectored([
        Buffer::from(b"scatter".to_vec()),
        raw,
        Buffer::from(b"send".to_vec().into_boxed_slice()),
    ]);
    sock.send(parts, 1).unwrap();
    let p = get(&port);
    assert_eq!((p.context, p.result().unwrap()), (1, 19));
    drop(p);
    assert_eq!(mid[0], b' ', "the caller's memory is its own again");
    let mut got = [0u8; 19];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"scatter gather send");

    peer.write_all(b"0123456789").unwrap();
    let parts = Buffer::vectored([
        Buffer::from(vec![0u8; 3].into_boxed_slice()),
        Buffer::from(Vec::with_capacity(4)),
        Buffer::from(Vec::with_capacity(16)),
    ]);
    sock.recv(parts, 2).unwrap();
    let mut p = get(&port);
    // One receive takes what is there: all ten bytes, or a prefix of them.
    let n = p.result().unwrap();
    assert!((1..=10).contains(&n), "received {n}");
    let b = p.take_buffer().unwrap();
    assert_eq!(&b.to_vec()[..n.min(3)], &b"012"[..n.min(3)]);
    let segs = b.segments();
    assert_eq!(segs[1].len(), n.saturating_sub(3).min(4), "the Vec segment's length is what it got");
    assert_eq!(segs[2].len(), n.saturating_sub(7));

    peer.write_all(b"box").unwrap();
    let expect = [&b"0123456789"[n..], b"box"].concat();
    let mut got = Vec::new();
    while got.len() < expect.len() {
        let mut into = [0u8; 8];
        // SAFETY: `into` outlives the operation: its packet is dropped before `into` is read.
        sock.recv(unsafe { Buffer::from_raw_parts_mut(into.as_mut_ptr(), into.len()) }, 3).unwrap();
        let p = get(&port);
        let k = p.result().unwrap();
        assert!(k > 0, "the peer is still open");
        drop(p);
        got.extend_from_slice(&into[..k]);
    }
    assert_eq!(got, expect);
}

/// `bufs` with the first `skip` bytes left out, as Box segments.
fn remaining(bufs: &[Vec<u8>], mut skip: usize) -> Buffer {
    let mut segs = Vec::new();
    for b in bufs {
        if skip >= b.len() {
            skip -= b.len();
            continue;
        }
        segs.push(Buffer::from(b[skip..].to_vec().into_boxed_slice()));
        skip = 0;
    }
    Buffer::vectored(segs)
}

// Rule H11: a scatter/gather send may complete partially (the count says how far, across
// segments); sending the rest from there delivers the stream whole and in order.
#[test]
fn h11_partial_vectored_sends_resume_where_they_stopped() {
    let port = CompletionPort::<usize>::new(1);
    let (sock, mut peer) = pair(&port);
    socket2::SockRef::from(&sock).set_send_buffer_size(4096).unwrap();
    let bufs: Vec<Vec<u8>> =
        (0..3u8).map(|i| (0..400_000u32).map(|j| (j as u8) ^ (i * 77)).collect()).collect();
    let whole: Vec<u8> = bufs.concat();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        peer.read_to_end(&mut got).unwrap();
        got
    });
    let mut sent = 0;
    let mut sends = 0;
    while sent < whole.len() {
        sock.send(remaining(&bufs, sent), sent).unwrap();
        let p = get(&port);
        assert_eq!(p.context, sent);
        let n = p.result().unwrap();
        assert!(n > 0 && sent + n <= whole.len(), "sent {n} at {sent}");
        sent += n;
        sends += 1;
    }
    sock.shutdown(std::net::Shutdown::Write, usize::MAX).unwrap();
    get(&port).result().unwrap();
    let got = reader.join().unwrap();
    assert_eq!(got.len(), whole.len(), "after {sends} sends");
    assert!(got == whole, "the stream arrived in order");
}

// Rule H11: datagrams sent from and received into scatter/gather lists.
#[test]
fn h11_datagram_vectored() {
    let port = CompletionPort::<()>::new(1);
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    let a = port.associate(a, 1).unwrap();
    let b = port.associate(b, 2).unwrap();
    b.recv_from(
        Buffer::vectored([
            Buffer::from(Vec::with_capacity(5)),
            Buffer::from(vec![0u8; 10].into_boxed_slice()),
        ]),
        (),
    )
    .unwrap();
    a.send_to(Buffer::vectored([b"data".to_vec(), b"gram".to_vec()]), b_addr, ()).unwrap();
    let (mut r, mut s) = (get(&port), get(&port));
    if r.key == 1 {
        std::mem::swap(&mut r, &mut s);
    }
    assert_eq!((s.key, s.result().unwrap()), (1, 8));
    assert_eq!((r.key, r.result().unwrap(), r.addr), (2, 8, Some(a_addr)));
    let got = r.take_buffer().unwrap();
    assert_eq!(got.segments()[0].as_slice(), Some(&b"datag"[..]));
    assert_eq!(&got.segments()[1].as_slice().unwrap()[..3], b"ram");
}

// Rule H11 (and H2): a refused call hands back its buffer whatever its form, and produces
// no packet: a read into read-only raw memory, too many segments, the wrong kind of handle.
#[test]
fn h11_refused_buffers_come_back() {
    let port = CompletionPort::<u8>::new(1);
    let (path, f) = temp_file("refused");
    let file = port.associate(f, 3).unwrap();
    let text = *b"read-only";
    // SAFETY: `text` outlives the buffer, which the refused call hands back at once.
    let raw = unsafe { Buffer::from_raw_parts(text.as_ptr(), text.len()) };
    let mut e = file.read_at(raw, 0, 1).unwrap_err();
    assert_eq!((e.kind(), e.context), (std::io::ErrorKind::InvalidInput, 1));
    assert!(e.buffer.is_none());
    assert_eq!(e.take_buffer().unwrap().as_slice(), Some(&b"read-only"[..]));

    let many = Buffer::vectored((0..=MAX_SEGMENTS).map(|_| vec![0u8; 1]));
    let mut e = file.write_at(many, 0, 2).unwrap_err();
    assert_eq!((e.kind(), e.context), (std::io::ErrorKind::InvalidInput, 2));
    assert_eq!(e.take_buffer().unwrap().segments().len(), MAX_SEGMENTS + 1);

    let mut e = file.recv(vec![7u8; 4].into_boxed_slice(), 3).unwrap_err();
    assert_eq!((e.kind(), e.context), (std::io::ErrorKind::InvalidInput, 3));
    let m = e.memory.take().expect("a Box comes back in `memory`");
    assert_eq!(m.as_slice(), Some(&[7u8; 4][..]));

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let listener = port.associate(listener, 4).unwrap();
    let mut e = listener.send(Buffer::vectored([b"x".to_vec(), b"y".to_vec()]), 4).unwrap_err();
    assert_eq!(e.take_buffer().unwrap().to_vec(), b"xy");
    assert!(port.get(Some(std::time::Duration::ZERO)).is_err(), "no packet for a refused call");
    std::fs::remove_file(&path).unwrap();
}

// Rules H11, N6: a scatter/gather receive with no room is a zero-byte receive: it
// completes once data is there, taking none of it.
#[test]
fn h11_vectored_receive_without_room_waits_for_data() {
    let port = CompletionPort::<()>::new(1);
    let (sock, mut peer) = pair(&port);
    sock.recv(Buffer::vectored([Vec::new(), Vec::new()]), ()).unwrap();
    peer.write_all(b"abc").unwrap();
    assert_eq!(get(&port).result().unwrap(), 0);
    sock.recv(Vec::with_capacity(8), ()).unwrap();
    assert_eq!(get(&port).data(), b"abc", "the data was left in the socket");
}
