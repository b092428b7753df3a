//! Cancellation, handle close, descriptor reuse, thread exit and port shutdown with I/O in
//! flight: docs/semantics.md H2, H4–H8, P4, P10, S2.

use crate::common::{wait_until, DropCounter, PROMPT};
use crate::net::pair;
use completion_port::{Backend, CompletionPort, GetError, WorkerPool};
use std::io::{ErrorKind, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

// Rule H5: cancel one operation: it yields exactly one cancelled packet; cancelling it
// again (nothing pending) reports not found.
#[test]
fn h5_cancel_one_operation() {
    let port = CompletionPort::<&str>::new(1);
    let (ours, _peer) = pair(&port, 1);
    let a = ours.recv(Vec::with_capacity(8), "a").unwrap();
    let _b = ours.recv(Vec::with_capacity(8), "b").unwrap();
    ours.cancel(&a).unwrap();
    let p = port.get(Some(PROMPT)).unwrap();
    assert_eq!(p.context, "a");
    assert!(p.is_cancelled());
    assert!(a.is_done());
    assert_eq!(ours.cancel(&a).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(ours.pending(), 1, "the other receive is untouched");
    assert!(port.get(Some(Duration::from_millis(30))).is_err());
}

// Rule H5: cancel_all cancels every pending operation of a handle, one packet each;
// with nothing pending it reports not found.
#[test]
fn h5_cancel_all_and_not_found() {
    let port = CompletionPort::<u32>::new(1);
    let (ours, _peer) = pair(&port, 1);
    assert_eq!(ours.cancel_all().unwrap_err().kind(), ErrorKind::NotFound);
    for i in 0..5 {
        ours.recv(Vec::with_capacity(8), i).unwrap();
    }
    ours.cancel_all().unwrap();
    let mut seen = [0; 5];
    for _ in 0..5 {
        let p = port.get(Some(PROMPT)).unwrap();
        assert!(p.is_cancelled());
        seen[p.context as usize] += 1;
    }
    assert_eq!(seen, [1; 5]);
    assert_eq!(ours.cancel_all().unwrap_err().kind(), ErrorKind::NotFound);
    assert!(port.get(Some(Duration::from_millis(30))).is_err());
}

// Rule H5: an operation that completed before its cancel keeps its real result.
#[test]
fn h5_cancel_after_completion_keeps_the_real_result() {
    let port = CompletionPort::<u8>::new(1);
    let (ours, mut peer) = pair(&port, 1);
    peer.write_all(b"x").unwrap();
    let op = ours.recv(Vec::with_capacity(8), 0).unwrap();
    thread::sleep(Duration::from_millis(20));
    let _ = ours.cancel(&op); // may be Ok (kernel says not found) or NotFound
    let p = port.get(Some(PROMPT)).unwrap();
    assert_eq!(p.bytes().unwrap(), 1);
}

// Rule H6, H7: close a socket with a receive pending; its number is not reused until
// its cancelled packet exists, and when a new socket reuses it, no old packet is ever
// attributed to the new socket.
#[test]
fn h6_h7_descriptor_reuse_never_sees_old_packets() {
    let port = CompletionPort::<&str>::new(1);
    // Made first: made after the number is freed, it could take the number itself.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (old, _old_peer) = pair(&port, 100);
    let number = old.as_raw_fd();
    old.recv(Vec::with_capacity(8), "old").unwrap();
    drop(old);
    let p = if port.backend() == Some(Backend::Epoll) {
        // epoll cancels a queued operation at once: its packet exists when `drop` returns,
        // and only then is the number released. The packet is there without waiting.
        port.get(Some(Duration::ZERO)).expect("the cancelled packet exists once the handle is dropped")
    } else {
        // io_uring's cancellation completes in the kernel: until its packet is reaped
        // here, the operation holds the descriptor, so the number must still be taken.
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        assert_ne!(probe.as_raw_fd(), number, "the number was released before its packet");
        drop(probe);
        port.get(Some(PROMPT)).unwrap()
    };
    assert_eq!((p.key, p.context), (100, "old"));
    assert!(p.is_cancelled());
    // Now open sockets until one reuses the number (others may run in parallel).
    // Tests run in parallel in this process and take numbers too, so keep trying (holding
    // the sockets we get, to move past them) until one of ours lands on the number.
    let deadline = std::time::Instant::now() + PROMPT;
    let mut held = Vec::new();
    let (new, mut new_peer) = loop {
        // Either end of a fresh connection may land on the number: use whichever does.
        let ours = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (peer, _) = listener.accept().unwrap();
        if ours.as_raw_fd() == number {
            break (port.associate(ours, 200).unwrap(), peer);
        }
        if peer.as_raw_fd() == number {
            break (port.associate(peer, 200).unwrap(), ours);
        }
        if ours.as_raw_fd().min(peer.as_raw_fd()) > number + 64 {
            // Someone else holds the number for now: let go and try again shortly.
            held.clear();
            assert!(std::time::Instant::now() < deadline, "the number was never reused");
            thread::sleep(Duration::from_millis(5));
            continue;
        }
        held.push((ours, peer));
    };
    new.recv(Vec::with_capacity(8), "new").unwrap();
    new_peer.write_all(b"fresh").unwrap();
    let p = port.get(Some(PROMPT)).unwrap();
    assert_eq!((p.key, p.context, p.buffer.as_deref()), (200, "new", Some(&b"fresh"[..])));
    assert!(port.get(Some(Duration::from_millis(30))).is_err(), "no stray old packet");
}

// Rule H4: a short-lived thread submits a receive and exits; the data arrives later;
// the packet is still delivered.
#[test]
fn h4_operations_outlive_their_thread() {
    let port = CompletionPort::<&str>::new(1);
    let (ours, mut peer) = pair(&port, 4);
    let ours = Arc::new(ours);
    let o = Arc::clone(&ours);
    thread::spawn(move || {
        o.recv(Vec::with_capacity(16), "from a dead thread").unwrap();
    })
    .join()
    .unwrap();
    thread::sleep(Duration::from_millis(50));
    peer.write_all(b"later").unwrap();
    let p = port.get(Some(PROMPT)).unwrap();
    assert!(p.result.is_ok(), "{:?}", p.result);
    assert_eq!((p.context, p.buffer.as_deref()), ("from a dead thread", Some(&b"later"[..])));
}

// Rule H8: a packet may be delivered on another thread before the submitting call
// returns; everything it carries was set before submission.
#[test]
fn h8_packet_may_arrive_before_submit_returns() {
    let port = CompletionPort::<u64>::new(4);
    let (ours, mut peer) = pair(&port, 8);
    peer.write_all(&[7u8; 4096]).unwrap();
    thread::sleep(Duration::from_millis(20));
    let p2 = port.clone();
    let getter = thread::spawn(move || p2.get(Some(PROMPT)).unwrap());
    wait_until(PROMPT, "the getter waits", || port.waiting() == 1);
    let op = ours.recv(Vec::with_capacity(4096), 0xC0FFEE).unwrap();
    let p = getter.join().unwrap();
    assert_eq!((p.key, p.context, p.bytes().unwrap()), (8, 0xC0FFEE, 4096));
    assert!(op.is_done());
}

// Rule P4: a batch mixes successes and failures; each entry carries its own result.
#[test]
fn p4_get_many_mixes_successes_and_failures() {
    let port = CompletionPort::<u8>::new(1);
    let (ours, mut peer) = pair(&port, 1);
    peer.write_all(b"data").unwrap();
    thread::sleep(Duration::from_millis(20));
    ours.recv(Vec::with_capacity(8), 0).unwrap();
    let doomed = ours.recv(Vec::with_capacity(8), 1).unwrap();
    ours.cancel(&doomed).unwrap();
    port.post(9, 0, 2).unwrap();
    let mut all = Vec::new();
    while all.len() < 3 {
        all.extend(port.get_many(8, Some(PROMPT)).unwrap());
    }
    all.sort_by_key(|p| p.context);
    assert_eq!(all[0].bytes().unwrap(), 4);
    assert!(all[1].is_cancelled());
    assert_eq!((all[2].key, all[2].bytes().unwrap()), (9, 0));
}

/// Sets up `n` pending receives spread over socket pairs, each with a counted context.
fn pending_receives(
    port: &CompletionPort<DropCounter>,
    n: usize,
    drops: &Arc<AtomicUsize>,
) -> Vec<(completion_port::Handle<DropCounter>, TcpStream)> {
    let per_socket = 100;
    let mut socks = Vec::new();
    let mut id = 0;
    while id < n as u64 {
        let (h, peer) = pair(port, socks.len());
        port.batch(|| {
            for _ in 0..per_socket.min(n - id as usize) {
                h.recv(Vec::with_capacity(64), DropCounter::new(id, drops)).unwrap();
                id += 1;
            }
        });
        socks.push((h, peer));
    }
    socks
}

// Rule P10, H2: a port with 10 000 pending receives is closed; drain gives every
// context back exactly once, each as a cancelled packet. `ci/valgrind.sh` runs this test
// under valgrind to show nothing leaks.
#[test]
fn p10_close_with_10000_pending_receives_drains_everything() {
    let drops = Arc::new(AtomicUsize::new(0));
    let port = CompletionPort::new(2);
    let socks = pending_receives(&port, 10_000, &drops);
    assert_eq!(socks.iter().map(|(h, _)| h.pending()).sum::<usize>(), 10_000);
    port.close();
    let drained = port.drain();
    assert_eq!(drained.len(), 10_000);
    let mut ids: Vec<u64> = drained.iter().map(|p| p.context.id).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..10_000).collect::<Vec<_>>(), "every context exactly once");
    assert!(drained.iter().all(|p| p.is_cancelled()));
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(drained);
    assert_eq!(drops.load(Ordering::SeqCst), 10_000);
    // Submitting on a closed port is refused with the context back, and no packet.
    let (h, _) = &socks[0];
    let err = h.recv(Vec::new(), DropCounter::new(u64::MAX, &drops)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe);
    assert_eq!(err.context.id, u64::MAX);
    drop(err);
    drop(socks);
    assert_eq!(drops.load(Ordering::SeqCst), 10_001);
    assert!(port.drain().is_empty());
}

// Rule P10: dropping the last reference with operations in flight frees every context
// exactly once, after the kernel is done with them.
#[test]
fn p10_dropping_a_port_with_io_in_flight_frees_everything_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let port = CompletionPort::new(2);
    let socks = pending_receives(&port, 1000, &drops);
    port.post(0, 0, DropCounter::new(5000, &drops)).unwrap();
    // Handles hold the port; dropping them cancels their receives (H6), dropping the port
    // reaps and frees what is left.
    drop(socks);
    drop(port);
    assert_eq!(drops.load(Ordering::SeqCst), 1001);
}

// Rule S2: a worker pool over a port with I/O: shutdown joins every worker and drains
// the cancelled operations, losing nothing.
#[test]
fn s2_pool_shutdown_with_io_in_flight() {
    let drops = Arc::new(AtomicUsize::new(0));
    let handled = Arc::new(AtomicUsize::new(0));
    let port = CompletionPort::new(2);
    let h = Arc::clone(&handled);
    let pool = WorkerPool::spawn(&port, 3, move |_| {
        h.fetch_add(1, Ordering::SeqCst);
    })
    .unwrap();
    let socks = pending_receives(&port, 500, &drops);
    let leftover = pool.shutdown();
    let handled = handled.load(Ordering::SeqCst);
    assert_eq!(handled + leftover.len(), 500);
    drop(leftover);
    drop(socks);
    assert_eq!(drops.load(Ordering::SeqCst), 500);
    assert_eq!(port.get(None).unwrap_err(), GetError::Closed);
}

// Rule H2, H4, H9: a worker's submissions reach the kernel whatever the worker does
// next: it parks, takes a queued packet, blocks, or exits; no operation is ever stranded
// in user space.
#[test]
fn h2_deferred_submissions_are_never_stranded() {
    let port = CompletionPort::<&str>::new(4);
    let (ours, mut peer) = pair(&port, 1);
    let ours = Arc::new(ours);
    // 1. A worker submits while holding a packet, then exits without calling get again.
    port.post(0, 0, "work").unwrap();
    let (p2, o2) = (port.clone(), Arc::clone(&ours));
    thread::spawn(move || {
        let _ = p2.get(Some(Duration::ZERO)).unwrap();
        o2.recv(Vec::with_capacity(8), "from exiting worker").unwrap();
    })
    .join()
    .unwrap();
    peer.write_all(b"one").unwrap();
    let p = port.get(Some(crate::common::PROMPT)).unwrap();
    assert_eq!((p.context, p.buffer.as_deref()), ("from exiting worker", Some(&b"one"[..])));

    // 2. A worker submits, then enters a blocking section that waits for the result.
    port.post(0, 0, "work").unwrap();
    let _ = port.get(Some(Duration::ZERO)).unwrap(); // this thread is now a worker
    ours.recv(Vec::with_capacity(8), "before blocking").unwrap();
    let p3 = port.clone();
    let waiter = thread::spawn(move || p3.get(Some(crate::common::PROMPT)).unwrap().context);
    port.blocking(|| {
        peer.write_all(b"two").unwrap();
        assert_eq!(waiter.join().unwrap(), "before blocking");
    });
    // 3. A worker submits, then takes an already queued packet without entering the kernel.
    ours.recv(Vec::with_capacity(8), "before queued get").unwrap();
    port.post(0, 0, "queued").unwrap();
    assert_eq!(port.get(Some(Duration::ZERO)).unwrap().context, "queued");
    let p4 = port.clone();
    let waiter = thread::spawn(move || p4.get(Some(crate::common::PROMPT)).unwrap().context);
    peer.write_all(b"three").unwrap();
    assert_eq!(waiter.join().unwrap(), "before queued get");
}

// docs/semantics.md H9, deferred submission: with it on, a worker's submissions go to the
// kernel with its next wait. The echo loop of the C API's workers: take a packet, start
// the next operation, come back; every operation completes, in order, on both backends
// (on epoll deferral changes nothing).
#[test]
fn h9_deferred_submissions_go_with_the_next_wait() {
    let port = CompletionPort::<u32>::new(1);
    port.defer_submissions(true);
    assert!(port.defers_submissions());
    let (ours, mut peer) = pair(&port, 1);
    port.post(0, 0, 0).unwrap();
    let mut got = Vec::new();
    for i in 1..=20u32 {
        let p = port.get(Some(PROMPT)).unwrap();
        assert_eq!(p.context, i - 1);
        if i > 1 {
            got.extend_from_slice(p.buffer.as_deref().unwrap());
        }
        // Started inside the deferred section: handed over by the next `get`.
        ours.recv(Vec::with_capacity(1), i).unwrap();
        peer.write_all(&[i as u8]).unwrap();
    }
    let p = port.get(Some(PROMPT)).unwrap();
    assert_eq!(p.context, 20);
    got.extend_from_slice(p.buffer.as_deref().unwrap());
    assert_eq!(got, (1..=20u8).collect::<Vec<_>>());
    port.defer_submissions(false);
    assert!(!port.defers_submissions());
}

// docs/semantics.md H9, deferred submission's bound: a worker that submits inside its
// deferred section and then blocks somewhere else (never coming back to the port) does
// not strand the operation: the backend's sentry hands it to the kernel (within ten
// milliseconds on io_uring; the test only bounds it by PROMPT), and another thread,
// waiting in the kernel as the poller, receives its packet. Then the same from a worker
// thread that exits right after submitting.
#[test]
fn h9_a_deferred_submission_reaches_the_kernel_while_its_thread_waits_elsewhere() {
    let port = CompletionPort::<&str>::new(4);
    port.defer_submissions(true);
    let (ours, mut peer) = pair(&port, 1);
    let ours = Arc::new(ours);
    peer.write_all(b"ping").unwrap();
    port.post(0, 0, "work").unwrap();
    assert_eq!(port.get(Some(Duration::ZERO)).unwrap().context, "work");
    let (tx, rx) = std::sync::mpsc::channel();
    let p2 = port.clone();
    let poller = thread::spawn(move || {
        let p = p2.get(Some(PROMPT)).unwrap();
        tx.send((p.context, p.buffer)).unwrap();
    });
    wait_until(PROMPT, "the other thread waits", || port.waiting() == 1);
    ours.recv(Vec::with_capacity(8), "recv").unwrap();
    // This thread now blocks on the channel, not on the port.
    let (ctx, buf) = rx.recv_timeout(PROMPT).expect("the deferred receive reached the kernel");
    assert_eq!((ctx, buf.as_deref()), ("recv", Some(&b"ping"[..])));
    poller.join().unwrap();

    port.post(0, 0, "work").unwrap();
    let (p3, o3) = (port.clone(), Arc::clone(&ours));
    thread::spawn(move || {
        assert_eq!(p3.get(Some(PROMPT)).unwrap().context, "work");
        o3.recv(Vec::with_capacity(8), "from an exited worker").unwrap();
    })
    .join()
    .unwrap();
    peer.write_all(b"pong").unwrap();
    let p = port.get(Some(PROMPT)).expect("the exited worker's receive completes");
    assert_eq!((p.context, p.buffer.as_deref()), ("from an exited worker", Some(&b"pong"[..])));
}

// docs/semantics.md H9 and P10: operations deferred and never handed over by their thread
// are still the port's: `flush` hands them over at once, and a port drained right after a
// deferral cancels them and returns each packet exactly once (nothing leaks, nothing
// hangs), contexts dropped exactly once.
#[test]
fn h9_deferred_operations_are_flushed_cancelled_and_drained() {
    let port = CompletionPort::<DropCounter>::new(2);
    port.defer_submissions(true);
    let (ours, mut peer) = pair(&port, 1);
    let drops = Arc::new(AtomicUsize::new(0));
    port.post(0, 0, DropCounter::new(0, &drops)).unwrap();
    drop(port.get(Some(PROMPT)).unwrap());
    ours.recv(Vec::with_capacity(8), DropCounter::new(1, &drops)).unwrap();
    port.flush();
    peer.write_all(b"now").unwrap();
    let p = port.get(Some(PROMPT)).unwrap();
    assert_eq!(p.buffer.as_deref(), Some(&b"now"[..]));
    drop(p);
    // Deferred again (the `get` above opened a new section), then the port is drained.
    for id in 2..5 {
        ours.recv(Vec::with_capacity(8), DropCounter::new(id, &drops)).unwrap();
    }
    let drained = port.drain();
    assert_eq!(drained.len(), 3, "each deferred receive comes back once, cancelled");
    assert!(drained.iter().all(|p| p.is_cancelled()));
    drop(drained);
    drop(ours);
    assert_eq!(drops.load(Ordering::SeqCst), 5);
}

// Rule P7 (regression, found by the loom poller models): a thread already waiting in
// `get` when the first handle is associated becomes the poller and receives I/O packets.
#[test]
fn p7_waiter_from_before_the_first_associate_receives_io() {
    let port = CompletionPort::<&str>::new(2);
    let p2 = port.clone();
    let getter = thread::spawn(move || p2.get(Some(crate::common::PROMPT)).map(|p| p.context));
    wait_until(crate::common::PROMPT, "the getter waits", || port.waiting() == 1);
    let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let a_addr = a.local_addr().unwrap();
    let a = port.associate(a, 1).unwrap();
    a.recv_from(Vec::with_capacity(16), "datagram").unwrap();
    b.send_to(b"x", a_addr).unwrap();
    assert_eq!(getter.join().unwrap(), Ok("datagram"));
}

// Rule P8, P10 (regression, found by the loom poller models): `drain` while another
// thread polls the kernel must not swallow the wake-up that `close` sent it.
#[test]
fn p10_drain_while_a_thread_polls_wakes_it() {
    for _ in 0..200 {
        let port = CompletionPort::<u8>::new(2);
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let h = port.associate(s, 1).unwrap();
        h.recv_from(Vec::with_capacity(8), 1).unwrap();
        let p2 = port.clone();
        let poller = thread::spawn(move || p2.get(None));
        wait_until(crate::common::PROMPT, "the getter polls", || port.waiting() == 1);
        let drained = port.drain();
        assert_eq!(drained.len(), 1);
        assert!(drained[0].is_cancelled());
        assert_eq!(poller.join().unwrap().unwrap_err(), GetError::Closed);
    }
}

// Rule H6: clones of a handle share it; dropping one clone cancels nothing, dropping the
// last one cancels what is pending, and the descriptor closes after the last packet.
#[test]
fn h6_a_handle_closes_when_its_last_clone_drops() {
    let port = CompletionPort::<&str>::new(1);
    let (ours, mut peer) = pair(&port, 1);
    let other = ours.clone();
    ours.recv(Vec::with_capacity(8), "first").unwrap();
    drop(ours);
    assert!(port.get(Some(Duration::from_millis(50))).is_err(), "one clone's drop cancels nothing");
    peer.write_all(b"hi").unwrap();
    let p = port.get(Some(crate::common::PROMPT)).unwrap();
    assert_eq!((p.context, p.buffer.as_deref()), ("first", Some(&b"hi"[..])));
    other.recv(Vec::with_capacity(8), "second").unwrap();
    assert_eq!(other.pending(), 1);
    drop(other);
    let p = port.get(Some(crate::common::PROMPT)).unwrap();
    assert!(p.is_cancelled(), "the last clone's drop cancels: {:?}", p.result);
    // The descriptor is closed now: the peer sees end of stream.
    let mut buf = [0u8; 1];
    use std::io::Read;
    assert_eq!(peer.read(&mut buf).unwrap(), 0);
}
