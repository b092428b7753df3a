//! The port itself: docs/semantics.md P1–P10.

use crate::common::{wait_until, DropCounter, PROMPT};
use completion_port::{CompletionPort, GetError, PostError};
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

const SHORT: Duration = Duration::from_millis(100);

// Rule P1: 0 means the number of logical CPUs; any other value is kept as given.
#[test]
fn p1_concurrency_zero_means_logical_cpus() {
    let cpus = thread::available_parallelism().unwrap().get();
    assert_eq!(CompletionPort::<()>::new(0).concurrency(), cpus);
    assert_eq!(CompletionPort::<()>::new(3).concurrency(), 3);
    assert_eq!(CompletionPort::<()>::new(1).clone().concurrency(), 1);
}

// Rule P2: a posted packet comes back with exactly the key, bytes and context given.
#[test]
fn p2_post_then_get_returns_the_values_unchanged() {
    let port = CompletionPort::new(1);
    port.post(usize::MAX, 123_456, String::from("ctx")).unwrap();
    let p = port.get(Some(Duration::ZERO)).unwrap();
    assert_eq!(p.key, usize::MAX);
    assert_eq!(p.bytes().unwrap(), 123_456);
    assert_eq!(p.context, "ctx");
    assert!(p.buffer.is_none(), "a posted packet carries no buffer");
}

// Rule P2, P8: posting to a closed port is an error that gives the context back.
#[test]
fn p2_post_to_closed_port_returns_the_context() {
    let port = CompletionPort::new(1);
    port.close();
    let err = port.post(1, 2, vec![1u8, 2, 3]).unwrap_err();
    assert!(matches!(err, PostError::Closed(_)));
    assert_eq!(err.into_inner(), vec![1, 2, 3]);
    let io: io::Error = port.post(1, 2, vec![]).unwrap_err().into();
    assert_eq!(io.kind(), io::ErrorKind::BrokenPipe);
}

// Rule P3 (c): a 0 ms poll on an empty port returns TimedOut at once.
#[test]
fn p3_zero_timeout_polls_without_blocking() {
    let port = CompletionPort::<u8>::new(1);
    let start = Instant::now();
    assert_eq!(port.get(Some(Duration::ZERO)).unwrap_err(), GetError::TimedOut);
    assert!(start.elapsed() < PROMPT);
    assert_eq!(port.waiting(), 0, "a poll must not leave a waiter behind");
    let io: io::Error = GetError::TimedOut.into();
    assert_eq!(io.kind(), io::ErrorKind::TimedOut);
}

// Rule P3 (c): a 50 ms timeout never returns early, and consumes nothing.
#[test]
fn p3_timeout_never_returns_early() {
    let port = CompletionPort::<u8>::new(1);
    for _ in 0..5 {
        let start = Instant::now();
        assert_eq!(port.get(Some(Duration::from_millis(50))).unwrap_err(), GetError::TimedOut);
        assert!(start.elapsed() >= Duration::from_millis(50), "returned after {:?}", start.elapsed());
    }
    let start = Instant::now();
    assert_eq!(port.get_many(4, Some(Duration::from_millis(50))).unwrap_err(), GetError::TimedOut);
    assert!(start.elapsed() >= Duration::from_millis(50));
    assert_eq!(port.waiting(), 0);
    port.post(0, 0, 9).unwrap();
    assert_eq!(port.get(Some(Duration::ZERO)).unwrap().context, 9);
}

// Rule P3 (c): `None` waits until a packet arrives.
#[test]
fn p3_none_waits_for_a_packet() {
    let port = CompletionPort::new(1);
    let p2 = port.clone();
    let poster = thread::spawn(move || {
        thread::sleep(SHORT);
        p2.post(5, 6, 7u32).unwrap();
    });
    let start = Instant::now();
    let p = port.get(None).unwrap();
    assert!(start.elapsed() >= SHORT);
    assert_eq!((p.key, p.context), (5, 7));
    poster.join().unwrap();
}

// Rule P3 (d): a port closed before the call reports Closed, even with packets queued
// (those are for drain), and the three outcomes stay distinct types.
#[test]
fn p3_closed_is_distinct_from_timeout() {
    let port = CompletionPort::new(1);
    port.post(1, 1, 1u8).unwrap();
    port.close();
    assert_eq!(port.get(Some(Duration::ZERO)).unwrap_err(), GetError::Closed);
    assert_eq!(port.get(None).unwrap_err(), GetError::Closed);
    assert_ne!(GetError::Closed, GetError::TimedOut);
    assert_eq!(port.drain().len(), 1);
}

// Rule P3, bad input: absurd timeouts mean "forever" without overflow or panic.
#[test]
fn p3_huge_timeouts_mean_forever() {
    for timeout in
        [Duration::MAX, Duration::from_secs(u64::MAX / 2), Duration::new(i64::MAX as u64, 999_999_999)]
    {
        let port = CompletionPort::<u8>::new(1);
        let p2 = port.clone();
        let closer = thread::spawn(move || {
            thread::sleep(Duration::from_millis(30));
            p2.close();
        });
        assert_eq!(port.get(Some(timeout)).unwrap_err(), GetError::Closed);
        closer.join().unwrap();
        let port = CompletionPort::new(1);
        port.post(0, 0, 1u8).unwrap();
        assert_eq!(port.get_many(8, Some(timeout)).unwrap().len(), 1);
    }
}

// Rule P4: get_many removes up to max packets, FIFO, in one call.
#[test]
fn p4_get_many_takes_a_fifo_batch() {
    let port = CompletionPort::new(1);
    for i in 0..10u32 {
        port.post(i as usize, 0, i).unwrap();
    }
    let batch = port.get_many(4, Some(Duration::ZERO)).unwrap();
    assert_eq!(batch.iter().map(|p| p.context).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    let mut out = Vec::new();
    assert_eq!(port.get_many_into(&mut out, 100, None).unwrap(), 6);
    assert_eq!(out.iter().map(|p| p.context).collect::<Vec<_>>(), vec![4, 5, 6, 7, 8, 9]);
    assert_eq!(port.get_many(3, Some(Duration::ZERO)).unwrap_err(), GetError::TimedOut);
}

// Rule P4: get_many_into appends at most `max` I/O packets after what the vector held,
// however many completions the thread reaped from the kernel while it waited; the rest
// stay queued for later calls, each delivered once.
#[test]
fn p4_get_many_into_appends_at_most_max_of_a_larger_reap() {
    let port = CompletionPort::<usize>::new(1);
    let file = port.associate(tempfile::tempfile().unwrap(), 7).unwrap();
    for i in 0..10 {
        file.read_at(Vec::with_capacity(8), 0, i).unwrap();
    }
    // Let the reads finish in the kernel, so that one wait can reap all of them.
    thread::sleep(Duration::from_millis(20));
    port.post(0, 0, 100).unwrap();
    let mut out = vec![port.get(Some(PROMPT)).unwrap()];
    let n = port.get_many_into(&mut out, 3, Some(PROMPT)).unwrap();
    assert!((1..=3).contains(&n), "appended {n} packets with max 3");
    assert_eq!(out.len(), 1 + n);
    assert_eq!(out[0].context, 100, "what the vector held is kept, in front");
    let mut seen: Vec<usize> = out[1..].iter().map(|p| p.context).collect();
    while seen.len() < 10 {
        let more = port.get_many(3, Some(PROMPT)).unwrap();
        assert!((1..=3).contains(&more.len()));
        seen.extend(more.iter().map(|p| p.context));
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..10).collect::<Vec<_>>(), "every read's packet, once");
    assert_eq!(port.get(Some(Duration::ZERO)).unwrap_err(), GetError::TimedOut);
}

// Rule P4: a blocked get_many returns the packet that woke it plus whatever else is queued.
#[test]
fn p4_blocked_get_many_returns_at_least_one() {
    let port = CompletionPort::new(4);
    let p2 = port.clone();
    let getter = thread::spawn(move || p2.get_many(16, None).unwrap().len());
    wait_until(PROMPT, "the getter waits", || port.waiting() == 1);
    port.post(0, 0, 1u8).unwrap();
    assert!(getter.join().unwrap() >= 1);
}

// Rule P4, bad input: max == 0 is an invalid-argument error and consumes nothing.
#[test]
fn p4_get_many_with_max_zero_is_invalid() {
    let port = CompletionPort::new(1);
    port.post(0, 0, ()).unwrap();
    let err = port.get_many(0, None).unwrap_err();
    assert!(matches!(err, GetError::InvalidArgument(_)));
    assert_eq!(io::Error::from(err).kind(), io::ErrorKind::InvalidInput);
    assert!(port.get_many_into(&mut Vec::new(), 0, Some(Duration::ZERO)).is_err());
    assert_eq!(port.queued(), 1, "a refused call consumes nothing");
}

// Rule P5: packets come out in the order they were posted.
#[test]
fn p5_packets_are_fifo() {
    let port = CompletionPort::new(1);
    for i in 0..1000u32 {
        port.post(0, i as usize, i).unwrap();
    }
    for i in 0..1000u32 {
        let p = port.get(Some(Duration::ZERO)).unwrap();
        assert_eq!((p.context, p.bytes().unwrap()), (i, i as usize));
    }
}

// Rule P6: B waits, then A waits; three posts give A the first, B the second, and the
// poster's own get the third.
#[test]
fn p6_waiters_are_released_lifo() {
    let port = CompletionPort::new(8);
    let spawn_waiter = |name: &'static str| {
        let p = port.clone();
        thread::spawn(move || (name, p.get(None).unwrap().context))
    };
    let b = spawn_waiter("B");
    wait_until(PROMPT, "B waits", || port.waiting() == 1);
    let a = spawn_waiter("A");
    wait_until(PROMPT, "A waits", || port.waiting() == 2);
    for i in 1..=3u32 {
        port.post(0, 0, i).unwrap();
    }
    assert_eq!(a.join().unwrap(), ("A", 1));
    assert_eq!(b.join().unwrap(), ("B", 2));
    assert_eq!(port.get(Some(Duration::ZERO)).unwrap().context, 3);
}

// Rule P7: a packet given to a waiter is never taken by another thread, lost, or
// delivered twice, even when waiters time out while packets are handed to them.
#[test]
fn p7_hand_off_is_exactly_once_under_timeout_races() {
    const PACKETS: usize = 20_000;
    let port = CompletionPort::<usize>::new(4);
    let seen: Arc<Vec<AtomicUsize>> = Arc::new((0..PACKETS).map(|_| AtomicUsize::new(0)).collect());
    let done = Arc::new(AtomicUsize::new(0));
    let getters: Vec<_> = (0..4)
        .map(|_| {
            let (port, seen, done) = (port.clone(), Arc::clone(&seen), Arc::clone(&done));
            thread::spawn(move || {
                // Tiny timeouts make waiters leave the stack while posts hand them packets.
                while done.load(Ordering::SeqCst) < PACKETS {
                    match port.get(Some(Duration::from_micros(50))) {
                        Ok(p) => {
                            seen[p.context].fetch_add(1, Ordering::SeqCst);
                            done.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(GetError::TimedOut) => {}
                        Err(e) => panic!("unexpected {e}"),
                    }
                }
            })
        })
        .collect();
    for i in 0..PACKETS {
        port.post(0, 0, i).unwrap();
        if i % 64 == 0 {
            thread::yield_now();
        }
    }
    for g in getters {
        g.join().unwrap();
    }
    assert!(seen.iter().all(|c| c.load(Ordering::SeqCst) == 1), "a packet was lost or duplicated");
    assert!(port.drain().is_empty());
}

// Rule P8: close wakes 8 blocked waiters promptly; later calls return Closed at once;
// post fails; closing twice is harmless.
#[test]
fn p8_close_wakes_every_waiter() {
    let port = CompletionPort::<u8>::new(2);
    let start = Arc::new(Barrier::new(9));
    let waiters: Vec<_> = (0..8)
        .map(|i| {
            let (port, start) = (port.clone(), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                // Half wait forever, half with a long timeout: both must see Closed.
                let timeout = if i % 2 == 0 { None } else { Some(Duration::from_secs(3600)) };
                let r = if i % 4 < 2 {
                    port.get(timeout).map(|_| ())
                } else {
                    port.get_many(4, timeout).map(|_| ())
                };
                (r, Instant::now())
            })
        })
        .collect();
    start.wait();
    close_wakes_them_promptly(&port, waiters);
    let t = Instant::now();
    assert_eq!(port.get(None).unwrap_err(), GetError::Closed);
    assert_eq!(port.get_many(4, None).unwrap_err(), GetError::Closed);
    assert!(t.elapsed() < PROMPT);
    port.close();
    assert!(port.is_closed());
    assert!(port.post(0, 0, 1).is_err());
}

// Rule P8, with I/O attached: eight threads wait on a port that has a backend (on epoll
// every one of them may wait in the kernel at once, and one wake-up reaches one of them
// only); close still brings all of them out promptly, and a post after the close fails.
// Then P7 with I/O attached: the threads of a fresh port each take one posted packet.
#[test]
fn p8_close_wakes_every_waiter_with_io_attached() {
    let port = CompletionPort::<u8>::new(8);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let _handle = port.associate(socket, 1).unwrap();
    let waiters: Vec<_> = (0..8)
        .map(|i| {
            let port = port.clone();
            thread::spawn(move || {
                let timeout = if i % 2 == 0 { None } else { Some(Duration::from_secs(3600)) };
                (port.get(timeout).map(|_| ()), Instant::now())
            })
        })
        .collect();
    close_wakes_them_promptly(&port, waiters);
    assert!(port.post(0, 0, 1).is_err());

    let port = CompletionPort::<u8>::new(8);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let _handle = port.associate(socket, 1).unwrap();
    let (tx, rx) = mpsc::channel();
    let takers: Vec<_> = (0..8)
        .map(|_| {
            let (port, tx) = (port.clone(), tx.clone());
            thread::spawn(move || {
                let p = port.get(Some(PROMPT)).unwrap();
                tx.send(p.context).unwrap();
                // Hold the packet (stay counted) until every thread has one.
            })
        })
        .collect();
    wait_until(PROMPT, "8 threads wait", || port.waiting() == 8);
    for i in 0..8u8 {
        port.post(2, 0, i).unwrap();
    }
    let mut got: Vec<u8> = (0..8).map(|_| rx.recv_timeout(PROMPT).unwrap()).collect();
    got.sort_unstable();
    assert_eq!(got, (0..8).collect::<Vec<_>>());
    for t in takers {
        t.join().unwrap();
    }
}

/// Once the 8 threads of `waiters` all wait on `port`, closes it: each must return
/// `Closed` within [`PROMPT`] of the close (P8).
fn close_wakes_them_promptly<C: Send + 'static>(
    port: &CompletionPort<C>,
    waiters: Vec<thread::JoinHandle<(Result<(), GetError>, Instant)>>,
) {
    wait_until(PROMPT, "8 threads wait", || port.waiting() == waiters.len());
    let closed_at = Instant::now();
    port.close();
    for w in waiters {
        let (r, at) = w.join().unwrap();
        assert_eq!(r.unwrap_err(), GetError::Closed);
        assert!(at.duration_since(closed_at) < PROMPT);
    }
}

// Rule P9: with concurrency 1 and two workers, the second is not released while the
// first holds a packet, and is released when the first enters the blocking hint.
#[test]
fn p9_concurrency_limit_and_blocking_hint() {
    let port = CompletionPort::<u32>::new(1);
    let (to_first, first_rx) = mpsc::channel::<()>();
    let (got_tx, got) = mpsc::channel::<(&'static str, u32)>();

    let first = {
        let (port, got_tx) = (port.clone(), got_tx.clone());
        thread::spawn(move || {
            let p = port.get(None).unwrap();
            got_tx.send(("first", p.context)).unwrap();
            first_rx.recv().unwrap(); // hold the packet, counted as running
            port.blocking(|| first_rx.recv().unwrap()); // now blocked elsewhere
            let after = port.running();
            first_rx.recv().unwrap();
            after
        })
    };
    wait_until(PROMPT, "first waits", || port.waiting() == 1);
    port.post(0, 0, 1).unwrap();
    assert_eq!(got.recv_timeout(PROMPT).unwrap(), ("first", 1));
    assert_eq!(port.running(), 1);

    let second = {
        let (port, got_tx) = (port.clone(), got_tx.clone());
        thread::spawn(move || {
            let p = port.get(None).unwrap();
            got_tx.send(("second", p.context)).unwrap();
        })
    };
    wait_until(PROMPT, "second waits", || port.waiting() == 1);
    port.post(0, 0, 2).unwrap();
    // The packet waits although a thread is waiting: the limit is reached.
    thread::sleep(SHORT);
    assert!(got.try_recv().is_err(), "second was released while first was running");
    assert_eq!((port.queued(), port.waiting(), port.running()), (1, 1, 1));

    to_first.send(()).unwrap(); // first enters blocking()
    assert_eq!(got.recv_timeout(PROMPT).unwrap(), ("second", 2));
    second.join().unwrap();
    to_first.send(()).unwrap(); // first leaves blocking(): counts again
    to_first.send(()).unwrap();
    assert_eq!(first.join().unwrap(), 1, "first counts again after blocking()");
    // Both threads exited: their slots are back.
    wait_until(PROMPT, "slots are returned at thread exit", || port.running() == 0);
}

// Rule P9: calling get again ends the running period; a thread that exits returns its
// slot, releasing a waiter.
#[test]
fn p9_thread_exit_and_next_get_return_the_slot() {
    let port = CompletionPort::<u32>::new(1);
    port.post(0, 0, 1).unwrap();
    port.post(0, 0, 2).unwrap();
    // The same thread may take packet after packet: each get ends its previous period.
    assert_eq!(port.get(Some(Duration::ZERO)).unwrap().context, 1);
    assert_eq!(port.running(), 1);
    assert_eq!(port.get(Some(Duration::ZERO)).unwrap().context, 2);
    assert_eq!(port.running(), 1);
    assert!(port.get(Some(Duration::ZERO)).is_err());
    assert_eq!(port.running(), 0, "a get that returns nothing leaves the thread idle");

    // A holder on another thread exits without calling get again.
    port.post(0, 0, 3).unwrap();
    let (release, rx) = mpsc::channel::<()>();
    let holder = {
        let port = port.clone();
        thread::spawn(move || {
            let _ = port.get(None).unwrap();
            rx.recv().unwrap();
        })
    };
    wait_until(PROMPT, "holder runs", || port.running() == 1);
    port.post(0, 0, 4).unwrap();
    let waiter = {
        let port = port.clone();
        thread::spawn(move || port.get(None).unwrap().context)
    };
    wait_until(PROMPT, "waiter waits", || port.waiting() == 1);
    assert_eq!(port.queued(), 1);
    release.send(()).unwrap();
    holder.join().unwrap();
    assert_eq!(waiter.join().unwrap(), 4);
}

// Rule P9: waiting on another port ends the running period on the first one.
#[test]
fn p9_get_on_another_port_releases_the_first() {
    let a = CompletionPort::<u8>::new(1);
    let b = CompletionPort::<u8>::new(1);
    a.post(0, 0, 1).unwrap();
    let _ = a.get(Some(Duration::ZERO)).unwrap();
    assert_eq!(a.running(), 1);
    assert!(b.get(Some(Duration::ZERO)).is_err());
    assert_eq!(a.running(), 0);
}

// Rule P10: drain after close returns every queued context exactly once.
#[test]
fn p10_drain_returns_every_context_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let port = CompletionPort::new(2);
    for i in 0..1000 {
        port.post(i as usize, 0, DropCounter::new(i, &drops)).unwrap();
    }
    port.close();
    let drained = port.drain();
    assert_eq!(drained.iter().map(|p| p.context.id).collect::<Vec<_>>(), (0..1000).collect::<Vec<_>>());
    assert!(port.drain().is_empty(), "a second drain finds nothing");
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(drained);
    assert_eq!(drops.load(Ordering::SeqCst), 1000);
    drop(port);
    assert_eq!(drops.load(Ordering::SeqCst), 1000);
}

// Rule P10 (with P2): posts from many threads racing `close` and `drain`. Every post
// either succeeds and its packet is drained exactly once, or fails and hands its own
// context back; nothing is lost or duplicated, whichever stripe of the post gate each
// posting thread uses.
#[test]
fn p10_posts_racing_close_are_drained_or_refused() {
    const POSTERS: usize = 6;
    for round in 0..200 {
        let port: CompletionPort<(usize, u64)> = CompletionPort::new(1);
        let start = Arc::new(Barrier::new(POSTERS + 1));
        let posters: Vec<_> = (0..POSTERS)
            .map(|t| {
                let port = port.clone();
                let start = Arc::clone(&start);
                thread::spawn(move || {
                    start.wait();
                    let mut accepted = 0u64;
                    loop {
                        match port.post(t, 0, (t, accepted)) {
                            Ok(()) => accepted += 1,
                            Err(PostError::Closed(ctx)) => {
                                assert_eq!(ctx, (t, accepted), "the refused post's own context");
                                return accepted;
                            }
                            Err(e) => panic!("unexpected post error: {e}"),
                        }
                    }
                })
            })
            .collect();
        start.wait();
        // Let the posters run for a moment that varies from round to round.
        for _ in 0..(round % 7) * 50 {
            std::hint::spin_loop();
        }
        let drained = port.drain();
        let accepted: Vec<u64> = posters.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(port.drain().is_empty(), "every accepted post was in the first drain");
        let mut next = vec![0u64; POSTERS];
        for p in &drained {
            let (t, seq) = p.context;
            assert_eq!(p.key, t);
            assert_eq!(seq, next[t], "each poster's packets once, in order");
            next[t] += 1;
        }
        assert_eq!(next, accepted, "round {round}: drained exactly what was accepted");
    }
}

// Rule P10: dropping an undrained port drops every context exactly once.
#[test]
fn p10_dropping_an_undrained_port_drops_every_context_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let port = CompletionPort::new(2);
    let clone = port.clone();
    for i in 0..1000 {
        port.post(0, 0, DropCounter::new(i, &drops)).unwrap();
    }
    let p = port.get(Some(Duration::ZERO)).unwrap();
    drop(port);
    assert_eq!(drops.load(Ordering::SeqCst), 0, "a clone keeps the port alive");
    drop(clone);
    assert_eq!(drops.load(Ordering::SeqCst), 999);
    drop(p);
    assert_eq!(drops.load(Ordering::SeqCst), 1000);
}

// Rule P10: a thread still associated with a dropped port does not keep it alive or
// touch it when it exits.
#[test]
fn p10_thread_record_does_not_keep_the_port_alive() {
    let drops = Arc::new(AtomicUsize::new(0));
    let port = CompletionPort::new(1);
    port.post(0, 0, DropCounter::new(0, &drops)).unwrap();
    port.post(0, 0, DropCounter::new(1, &drops)).unwrap();
    let p = port.get(Some(Duration::ZERO)).unwrap(); // this thread now counts on `port`
    drop(port);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    drop(p);
    // The next get on a new port drops the stale record without touching the old port.
    let other = CompletionPort::<u8>::new(1);
    assert!(other.get(Some(Duration::ZERO)).is_err());
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}
