//! loom model tests of the port core: hand-off, LIFO release, concurrency accounting,
//! close and drain. Every test names the rule of `IOCP.md` it checks.
//!
//! Run through `ci/loom.sh`, which builds with `--cfg loom` (the crate's `sync` shim then
//! uses loom's `Mutex`, `Arc`, thread-locals and a `Mutex` + `Condvar` parker) and pins
//! the exploration bounds. Under loom a finite timeout is modelled as "may time out at
//! once": `get(Some(d))` with `d > 0` checks its slot once and gives up if nothing was
//! handed to it, which is the hardest case for the timeout/hand-off race.
//!
//! Models stay small (at most three threads besides main, at most three packets):
//! every extra thread or packet multiplies the interleavings to explore.

// Without `--cfg loom` this test crate is empty (and so has no docs to check).
#![cfg_attr(not(loom), allow(missing_docs))]
#![cfg(loom)]

use completion_port::{Completion, CompletionPort, GetError, PostError};
use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::sync::{Arc, Notify};
use loom::thread;
use std::time::Duration;

/// A finite timeout. Under loom the parker treats any finite deadline as "may time out at
/// once" (it checks its slot once and gives up if nothing was handed to it), so this plays
/// the part of `get(Some(1 ms))`. It is long in real time on purpose: `get` also compares
/// the deadline with the real clock, and a deadline that could really pass during a model
/// run would make executions depend on timing, which loom cannot replay.
const SHORT: Option<Duration> = Some(Duration::from_secs(3600));

/// A context that knows its identity and keeps one strong count of `live` while it
/// exists: at the end of a model, `Arc::strong_count(&live) == 1` proves that every
/// context was dropped (none leaked inside the port), and loom's own leak check fails the
/// model if one never is.
#[derive(Debug)]
struct Token {
    id: usize,
    _live: Arc<()>,
}

fn token(id: usize, live: &Arc<()>) -> Token {
    Token { id, _live: Arc::clone(live) }
}

fn ids(packets: impl IntoIterator<Item = Completion<Token>>) -> Vec<usize> {
    packets.into_iter().map(|p| p.context.id).collect()
}

/// Asserts that `seen` holds each of `1..=n` exactly once: no packet lost, none twice.
fn assert_exactly_once(mut seen: Vec<usize>, n: usize) {
    seen.sort_unstable();
    assert_eq!(seen, (1..=n).collect::<Vec<_>>(), "a packet was lost or delivered twice");
}

/// Spins (yielding to the other model threads) until `n` threads are parked in `get`.
fn until_waiting<C: Send + 'static>(port: &CompletionPort<C>, n: usize) {
    while port.waiting() < n {
        thread::yield_now();
    }
}

/// Waits until the threads that have exited gave their concurrency slots back.
///
/// A thread stops counting when its thread-local record is destroyed at exit. loom's
/// `join` returns as soon as the thread's closure has returned, *before* its thread-locals
/// are destroyed (std's `join` waits for that), so after a join the slot comes back
/// "soon", not "already": spin until it has.
fn until_running<C: Send + 'static>(port: &CompletionPort<C>, n: usize) {
    while port.running() > n {
        thread::yield_now();
    }
}

// IOCP.md P7, P2: a poster and a getter that waits forever. Whatever the interleaving, the
// getter receives the packet, unchanged, and nothing is left behind.
#[test]
fn hand_off_post_vs_get_forever() {
    loom::model(|| {
        let port: CompletionPort<Token> = CompletionPort::new(1);
        let live = Arc::new(());
        let poster = {
            let (port, t) = (port.clone(), token(1, &live));
            thread::spawn(move || port.post(7, 42, t).unwrap())
        };
        let getter = {
            let port = port.clone();
            thread::spawn(move || {
                let p = port.get(None).unwrap();
                (p.key, p.bytes().unwrap(), p.context.id)
            })
        };
        poster.join().unwrap();
        assert_eq!(getter.join().unwrap(), (7, 42, 1));
        assert!(port.drain().is_empty());
        drop(port);
        assert_eq!(Arc::strong_count(&live), 1);
    });
}

// IOCP.md P7, P3 (c): a getter with a finite timeout races a post. Either it gets the
// packet, or it times out having consumed nothing and the packet is still queued for
// drain: never lost, never twice.
#[test]
fn hand_off_post_vs_get_with_timeout() {
    loom::model(|| {
        let port: CompletionPort<Token> = CompletionPort::new(1);
        let live = Arc::new(());
        let poster = {
            let (port, t) = (port.clone(), token(1, &live));
            thread::spawn(move || port.post(0, 0, t).unwrap())
        };
        let getter = {
            let port = port.clone();
            thread::spawn(move || match port.get(SHORT) {
                Ok(p) => vec![p.context.id],
                Err(e) => {
                    assert_eq!(e, GetError::TimedOut);
                    vec![]
                }
            })
        };
        poster.join().unwrap();
        let mut seen = getter.join().unwrap();
        assert_eq!(port.waiting(), 0, "a timed-out getter stayed on the waiter stack");
        seen.extend(ids(port.drain()));
        assert_exactly_once(seen, 1);
        drop(port);
        assert_eq!(Arc::strong_count(&live), 1);
    });
}

// IOCP.md P3 (c), P7: a poll (`Some(Duration::ZERO)`) races a post: it takes the packet
// or reports a timeout without consuming anything.
#[test]
fn hand_off_post_vs_poll() {
    loom::model(|| {
        let port: CompletionPort<Token> = CompletionPort::new(1);
        let live = Arc::new(());
        let poller = {
            let port = port.clone();
            thread::spawn(move || match port.get(Some(Duration::ZERO)) {
                Ok(p) => vec![p.context.id],
                Err(e) => {
                    assert_eq!(e, GetError::TimedOut);
                    vec![]
                }
            })
        };
        port.post(0, 0, token(1, &live)).unwrap();
        let mut seen = poller.join().unwrap();
        seen.extend(ids(port.drain()));
        assert_exactly_once(seen, 1);
        drop(port);
        assert_eq!(Arc::strong_count(&live), 1);
    });
}

// IOCP.md P4, P7: `get_many` races two posts. The getter takes one packet or both (a thread
// handed one packet may take what else is queued without another slot); the rest stays
// queued for drain. Each packet turns up exactly once, the getter's in FIFO order (P5).
#[test]
fn hand_off_get_many_two_posts() {
    loom::model(|| {
        let port: CompletionPort<Token> = CompletionPort::new(1);
        let live = Arc::new(());
        let getter = {
            let port = port.clone();
            thread::spawn(move || ids(port.get_many(2, None).unwrap()))
        };
        port.post(0, 0, token(1, &live)).unwrap();
        port.post(0, 0, token(2, &live)).unwrap();
        let got = getter.join().unwrap();
        assert!(got == [1] || got == [1, 2], "get_many returned {got:?}");
        let mut seen = got;
        seen.extend(ids(port.drain()));
        assert_exactly_once(seen, 2);
        drop(port);
        assert_eq!(Arc::strong_count(&live), 1);
    });
}

// IOCP.md P7: two getters (one waiting forever, one with a finite timeout) and two posts.
// The patient getter always gets one packet; the other gets one or times out; drain
// returns whatever is left. Each packet turns up exactly once.
#[test]
fn hand_off_two_getters_two_posts() {
    loom::model(|| {
        let port: CompletionPort<Token> = CompletionPort::new(2);
        let live = Arc::new(());
        let patient = {
            let port = port.clone();
            thread::spawn(move || port.get(None).unwrap().context.id)
        };
        let hasty = {
            let port = port.clone();
            thread::spawn(move || port.get(SHORT).ok().map(|p| p.context.id))
        };
        port.post(0, 0, token(1, &live)).unwrap();
        port.post(0, 0, token(2, &live)).unwrap();
        let mut seen = vec![patient.join().unwrap()];
        seen.extend(hasty.join().unwrap());
        seen.extend(ids(port.drain()));
        assert_exactly_once(seen, 2);
        drop(port);
        assert_eq!(Arc::strong_count(&live), 1);
    });
}

// IOCP.md P6: with B waiting, then A waiting, three posts give A the first, B the second,
// and a thread that calls `get` afterwards the third.
#[test]
fn lifo_release() {
    loom::model(|| {
        let port: CompletionPort<Token> = CompletionPort::new(2);
        let live = Arc::new(());
        let getter = |port: &CompletionPort<Token>| {
            let port = port.clone();
            thread::spawn(move || port.get(None).unwrap().context.id)
        };
        let b = getter(&port);
        until_waiting(&port, 1);
        let a = getter(&port);
        until_waiting(&port, 2);
        for id in 1..=3 {
            port.post(0, 0, token(id, &live)).unwrap();
        }
        assert_eq!(a.join().unwrap(), 1, "the most recent waiter gets the first packet");
        assert_eq!(b.join().unwrap(), 2);
        // A and B have exited, which gives their concurrency slots back.
        until_running(&port, 0);
        assert_eq!(port.get(Some(Duration::ZERO)).unwrap().context.id, 3);
        drop(port);
        assert_eq!(Arc::strong_count(&live), 1);
    });
}

// IOCP.md P9: concurrency 1, two getters, two posts racing them. A thread counts from the
// moment `get` hands it a packet until it calls `get` again or exits, so the second getter
// is not released while the first still runs, even though a packet is queued. Checked
// inside the getters (never two at once, `running` is exactly 1) and by the posting thread
// (`running <= 1` at every observation).
#[test]
fn concurrency_one_runs_one_at_a_time() {
    loom::model(|| {
        let port: CompletionPort<Token> = CompletionPort::new(1);
        let live = Arc::new(());
        let inside = Arc::new(AtomicUsize::new(0));
        let getter = || {
            let (port, inside) = (port.clone(), Arc::clone(&inside));
            thread::spawn(move || {
                let p = port.get(None).unwrap();
                assert_eq!(inside.fetch_add(1, SeqCst), 0, "two threads ran at once");
                assert_eq!(port.running(), 1);
                inside.fetch_sub(1, SeqCst);
                p.context.id // exiting ends this thread's running period
            })
        };
        let (g1, g2) = (getter(), getter());
        port.post(0, 0, token(1, &live)).unwrap();
        assert!(port.running() <= 1);
        port.post(0, 0, token(2, &live)).unwrap();
        assert!(port.running() <= 1);
        assert_exactly_once(vec![g1.join().unwrap(), g2.join().unwrap()], 2);
        until_running(&port, 0); // an exited thread stops counting (a livelock here if not)
        drop(port);
        assert_eq!(Arc::strong_count(&live), 1);
    });
}

// IOCP.md P9: calling `get` again ends a thread's running period. Concurrency 1, three
// packets queued, one thread getting twice and one getting once: the second `get` of the
// first thread must not wait for its own slot (else the model deadlocks), and no two
// threads ever hold a packet at once.
#[test]
fn get_again_ends_running_period() {
    loom::model(|| {
        let port: CompletionPort<Token> = CompletionPort::new(1);
        let live = Arc::new(());
        for id in 1..=3 {
            port.post(0, 0, token(id, &live)).unwrap();
        }
        let inside = Arc::new(AtomicUsize::new(0));
        let getter = |gets: usize| {
            let (port, inside) = (port.clone(), Arc::clone(&inside));
            thread::spawn(move || {
                let mut got = Vec::new();
                for _ in 0..gets {
                    let p = port.get(None).unwrap();
                    assert_eq!(inside.fetch_add(1, SeqCst), 0, "two threads ran at once");
                    got.push(p.context.id);
                    inside.fetch_sub(1, SeqCst); // the next `get` (or exit) ends the period
                }
                got
            })
        };
        let (twice, once) = (getter(2), getter(1));
        let twice = twice.join().unwrap();
        assert!(twice[0] < twice[1], "one thread's packets out of FIFO order: {twice:?}");
        let mut seen = twice;
        seen.extend(once.join().unwrap());
        assert_exactly_once(seen, 3);
        until_running(&port, 0);
        drop(port);
        assert_eq!(Arc::strong_count(&live), 1);
    });
}

// IOCP.md P9: a running thread that blocks on something else inside `blocking` stops
// counting, so the other waiter is released although the limit (1) was reached. Here the
// first thread blocks until the second has its packet: without the hint the model would
// deadlock, which loom reports.
#[test]
fn blocking_releases_a_waiter() {
    loom::model(|| {
        let port: CompletionPort<Token> = CompletionPort::new(1);
        let live = Arc::new(());
        port.post(0, 0, token(1, &live)).unwrap();
        port.post(0, 0, token(2, &live)).unwrap();
        let go = Arc::new(Notify::new());
        let blocker = {
            let (port, go) = (port.clone(), Arc::clone(&go));
            thread::spawn(move || {
                let p = port.get(None).unwrap();
                port.blocking(|| go.wait());
                // Counting again, possibly over the limit for a while.
                assert!(port.running() >= 1);
                p.context.id
            })
        };
        let other = {
            let (port, go) = (port.clone(), Arc::clone(&go));
            thread::spawn(move || {
                let p = port.get(None).unwrap();
                go.notify();
                p.context.id
            })
        };
        assert_exactly_once(vec![blocker.join().unwrap(), other.join().unwrap()], 2);
        until_running(&port, 0);
        drop(port);
        assert_eq!(Arc::strong_count(&live), 1);
    });
}

// IOCP.md P8: two threads blocked in `get(None)`; a third closes the port. Both return
// `Closed`; later calls return it at once, `post` gives its context back, and closing
// twice is harmless.
#[test]
fn close_wakes_all_waiters() {
    loom::model(|| {
        let port: CompletionPort<Token> = CompletionPort::new(1);
        let live = Arc::new(());
        let getter = || {
            let port = port.clone();
            thread::spawn(move || port.get(None).map(|p| p.context.id))
        };
        let (g1, g2) = (getter(), getter());
        until_waiting(&port, 2); // both are parked, not merely about to call `get`
        let closer = {
            let port = port.clone();
            thread::spawn(move || port.close())
        };
        assert_eq!(g1.join().unwrap(), Err(GetError::Closed));
        assert_eq!(g2.join().unwrap(), Err(GetError::Closed));
        closer.join().unwrap();
        assert_closed_after(&port, &live);
    });
}

// IOCP.md P8: as above, but `close` races the calls to `get` (closed before the call or
// during the wait): every getter returns `Closed` either way.
#[test]
fn close_races_get() {
    loom::model(|| {
        let port: CompletionPort<Token> = CompletionPort::new(1);
        let live = Arc::new(());
        let getter = |timeout| {
            let port = port.clone();
            thread::spawn(move || port.get(timeout).map(|p| p.context.id))
        };
        let (g1, g2) = (getter(None), getter(SHORT));
        port.close();
        assert_eq!(g1.join().unwrap(), Err(GetError::Closed));
        // A finite wait may also give up before the close reaches it.
        assert!(matches!(g2.join().unwrap(), Err(GetError::Closed | GetError::TimedOut)));
        assert_eq!(port.waiting(), 0);
        assert_closed_after(&port, &live);
    });
}

/// What a closed port does afterwards (IOCP.md P8, P2).
fn assert_closed_after(port: &CompletionPort<Token>, live: &Arc<()>) {
    assert!(port.is_closed());
    assert_eq!(port.get(None).unwrap_err(), GetError::Closed);
    let refused = port.post(3, 4, token(9, live)).expect_err("post succeeded on a closed port");
    assert!(matches!(refused, PostError::Closed(Token { id: 9, .. })), "post must give its context back");
    drop(refused);
    port.close(); // twice: harmless
    assert!(port.drain().is_empty());
    assert_eq!(Arc::strong_count(live), 1);
}

// IOCP.md P10, P8, P2: with one packet already queued, posts race a close-and-drain while
// a getter takes packets until the port closes. Every context comes back exactly once:
// delivered by `get`, refused by `post` (with the context), or returned by the `drain`.
#[test]
fn post_races_close_and_drain() {
    loom::model(|| {
        let port: CompletionPort<Token> = CompletionPort::new(1);
        let live = Arc::new(());
        port.post(0, 0, token(1, &live)).unwrap();
        let poster = {
            let port = port.clone();
            let tokens = [token(2, &live), token(3, &live)];
            thread::spawn(move || {
                let mut refused = Vec::new();
                for t in tokens {
                    if let Err(e) = port.post(0, 0, t) {
                        refused.push(e.into_inner().id);
                    }
                }
                refused
            })
        };
        let getter = {
            let port = port.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                loop {
                    match port.get(None) {
                        Ok(p) => got.push(p.context.id),
                        Err(e) => {
                            assert_eq!(e, GetError::Closed);
                            return got;
                        }
                    }
                }
            })
        };
        let mut seen = ids(port.drain()); // closes, then drains
        seen.extend(poster.join().unwrap());
        seen.extend(getter.join().unwrap());
        // The first drain closed the port before taking the queue, so nothing can have
        // been queued since: a second drain finds nothing.
        assert!(port.drain().is_empty(), "a packet was queued after drain closed the port");
        assert_exactly_once(seen, 3);
        drop(port);
        assert_eq!(Arc::strong_count(&live), 1);
    });
}

// IOCP.md P10: dropping the last reference to a port with packets still queued (one of
// them posted concurrently with the drop of another clone) frees every context exactly
// once.
#[test]
fn drop_frees_queued_contexts() {
    loom::model(|| {
        let port: CompletionPort<Token> = CompletionPort::new(1);
        let live = Arc::new(());
        port.post(0, 0, token(1, &live)).unwrap();
        let poster = {
            let (port, t) = (port.clone(), token(2, &live));
            thread::spawn(move || port.post(0, 0, t).unwrap())
        };
        drop(port);
        poster.join().unwrap();
        assert_eq!(Arc::strong_count(&live), 1);
    });
}
