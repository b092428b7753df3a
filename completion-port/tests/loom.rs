//! loom model tests of the port core: hand-off, LIFO release, concurrency accounting,
//! close and drain; and of the poller protocol with I/O attached (one thread waits in the
//! kernel, the others park), against the model kernel of `src/sys/fake.rs`. Every test
//! names the rule of `docs/semantics.md` it checks.
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
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
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

/// The end of a model: every thread that took a packet gave its slot back (a livelock here
/// if an exited thread kept counting), and dropping the port leaves no context alive.
fn assert_all_released(port: CompletionPort<Token>, live: &Arc<()>) {
    until_running(&port, 0);
    drop(port);
    assert_eq!(Arc::strong_count(live), 1);
}

// Rule P7, P2: a poster and a getter that waits forever. Whatever the interleaving, the
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

// Rule P7, P3 (c): a getter with a finite timeout races a post. Either it gets the
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

// Rule P3 (c), P7: a poll (`Some(Duration::ZERO)`) races a post: it takes the packet
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

// Rule P4, P7: `get_many` races two posts. The getter takes one packet or both (a thread
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

// Rule P7: two getters (one waiting forever, one with a finite timeout) and two posts.
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

// Rule P6: with B waiting, then A waiting, three posts give A the first, B the second,
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

// Rule P9: concurrency 1, two getters, two posts racing them. A thread counts from the
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
        assert_all_released(port, &live); // an exited thread stops counting
    });
}

// Rule P9: calling `get` again ends a thread's running period. Concurrency 1, three
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
        assert_all_released(port, &live);
    });
}

// Rule P9: a running thread that blocks on something else inside `blocking` stops
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
        assert_all_released(port, &live);
    });
}

// Rule P8: two threads blocked in `get(None)`; a third closes the port. Both return
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

// Rule P8: as above, but `close` races the calls to `get` (closed before the call or
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

/// What a closed port does afterwards (docs/semantics.md P8, P2).
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

// Rule P10, P8, P2: with one packet already queued, posts race a close-and-drain while
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

// Rule P10: dropping the last reference to a port with packets still queued (one of
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

// ---------------------------------------------------------------------------------------
// The lock-free paths (docs/design.md, "The port"): `post` pushes to the lock-free queue
// and takes the lock only when `parked` shows a waiting thread; `get` pops without the
// lock when it finds a packet and a free slot. Each model targets one race of the
// `parked` protocol (announce, fence, re-check against push or free, fence, read
// `parked`); a thread left parked beside a packet it may take shows up as a loom
// deadlock.
// ---------------------------------------------------------------------------------------

// Rule P7, P9: two posters and two getters, concurrency 2, all racing. A post's fast
// path (push, fence, read `parked`) races each getter's parking (announce in `parked`,
// fence, re-check the queue): whatever the interleaving, either the poster sees the
// waiter and hands the packet over under the lock, or the waiter sees the packet and does
// not park. Both getters receive one packet each; none is lost or delivered twice.
#[test]
fn post_fast_path_vs_getters_parking() {
    loom::model(|| {
        let port: CompletionPort<Token> = CompletionPort::new(2);
        let live = Arc::new(());
        let getter = || {
            let port = port.clone();
            thread::spawn(move || port.get(None).unwrap().context.id)
        };
        let (g1, g2) = (getter(), getter());
        let poster = {
            let (port, t) = (port.clone(), token(1, &live));
            thread::spawn(move || port.post(0, 0, t).unwrap())
        };
        port.post(0, 0, token(2, &live)).unwrap();
        poster.join().unwrap();
        assert_exactly_once(vec![g1.join().unwrap(), g2.join().unwrap()], 2);
        assert!(port.drain().is_empty());
        assert_all_released(port, &live);
    });
}

// Rule P7, P9, P6: concurrency 1. B is parked; a post hands its packet to B under the
// lock (after winning the only running slot) while a new thread A polls without the lock
// (`get(Some(0))`: take the slot, pop). Exactly one of them gets the packet, never both
// and never neither; the two never run at once (the slot is won by one CAS); and if A won,
// B stays parked (the queue is empty) until `close`.
#[test]
fn fast_get_vs_release_at_concurrency_one() {
    loom::model(|| {
        let port: CompletionPort<Token> = CompletionPort::new(1);
        let live = Arc::new(());
        let inside = Arc::new(AtomicUsize::new(0));
        let b = {
            let (port, inside) = (port.clone(), Arc::clone(&inside));
            thread::spawn(move || {
                let p = port.get(None).ok()?;
                assert_eq!(inside.fetch_add(1, SeqCst), 0, "two threads ran at once");
                assert_eq!(port.running(), 1);
                inside.fetch_sub(1, SeqCst);
                Some(p.context.id)
            })
        };
        until_waiting(&port, 1); // B is parked
        let a = {
            let (port, inside) = (port.clone(), Arc::clone(&inside));
            thread::spawn(move || match port.get(Some(Duration::ZERO)) {
                Ok(p) => {
                    assert_eq!(inside.fetch_add(1, SeqCst), 0, "two threads ran at once");
                    inside.fetch_sub(1, SeqCst);
                    Some(p.context.id)
                }
                Err(e) => {
                    assert_eq!(e, GetError::TimedOut);
                    None
                }
            })
        };
        port.post(0, 0, token(1, &live)).unwrap();
        let got_a = a.join().unwrap();
        if got_a.is_some() {
            // A took the packet and exits; B must still be waiting, with nothing to take.
            until_running(&port, 0);
            port.close();
        }
        let got_b = b.join().unwrap();
        assert_exactly_once(got_a.into_iter().chain(got_b).collect(), 1);
        assert!(port.drain().is_empty());
        assert_all_released(port, &live);
    });
}

// Rule P9: concurrency 1, two packets queued, two threads. The first to get a packet
// holds the only slot; the other finds the limit reached and parks, while the holder
// exits, which gives its slot back outside any lock (the thread-local record's
// destructor: fetch_sub, fence, read `parked`). That give-back races the parking
// (announce, fence, re-check `running`): either the exiting thread sees the waiter and
// releases it, or the waiter sees the free slot and does not park. Both threads get one
// packet, in FIFO order of taking.
#[test]
fn slot_give_back_vs_parking_waiter() {
    loom::model(|| {
        let port: CompletionPort<Token> = CompletionPort::new(1);
        let live = Arc::new(());
        port.post(0, 0, token(1, &live)).unwrap();
        port.post(0, 0, token(2, &live)).unwrap();
        let getter = || {
            let port = port.clone();
            thread::spawn(move || port.get(None).unwrap().context.id)
        };
        let (g1, g2) = (getter(), getter());
        assert_exactly_once(vec![g1.join().unwrap(), g2.join().unwrap()], 2);
        until_running(&port, 0);
        assert!(port.drain().is_empty());
        drop(port);
        assert_eq!(Arc::strong_count(&live), 1);
    });
}

// Rule P9 (`blocking`): as above, but the holder gives its slot back by entering
// `blocking`, and stays blocked until the other thread has its packet (without the
// release the model deadlocks). The give-back races the other thread's parking.
#[test]
fn blocking_give_back_vs_parking_waiter() {
    loom::model(|| {
        let port: CompletionPort<Token> = CompletionPort::new(1);
        let live = Arc::new(());
        port.post(0, 0, token(1, &live)).unwrap();
        port.post(0, 0, token(2, &live)).unwrap();
        let first = port.get(None).unwrap().context.id; // main holds the only slot
        let other = {
            let port = port.clone();
            thread::spawn(move || port.get(None).unwrap().context.id)
        };
        let second = port.blocking(|| other.join().unwrap());
        assert_eq!((first, second), (1, 2));
        assert!(port.drain().is_empty());
        drop(port);
        assert_eq!(Arc::strong_count(&live), 1);
    });
}

// Rule P8, P10, P2: a post races `close` (not `drain`), with a getter waiting. The
// post either fails, giving its context back, or lands in the queue (possibly after the
// close: it passed its closed check first), where the getter may take it if it got there
// before the close reached it; a later `drain` returns it otherwise. Exactly once, and
// the getter returns the packet or `Closed`.
#[test]
fn post_races_close_then_drain() {
    loom::model(|| {
        let port: CompletionPort<Token> = CompletionPort::new(1);
        let live = Arc::new(());
        let getter = {
            let port = port.clone();
            thread::spawn(move || match port.get(None) {
                Ok(p) => Some(p.context.id),
                Err(e) => {
                    assert_eq!(e, GetError::Closed);
                    None
                }
            })
        };
        let poster = {
            let (port, t) = (port.clone(), token(1, &live));
            thread::spawn(move || port.post(0, 0, t).err().map(|e| e.into_inner().id))
        };
        port.close();
        let refused = poster.join().unwrap();
        let got = getter.join().unwrap();
        let mut seen: Vec<usize> = refused.into_iter().chain(got).collect();
        seen.extend(ids(port.drain()));
        assert_exactly_once(seen, 1);
        assert_closed_after(&port, &live);
    });
}

// Rule P7 (poller), P2: with a backend, a thread in `get(None)` becomes the poller and
// waits in the kernel, announcing itself in `parked` first and re-checking the queue. A
// post's fast path races that: either the poster sees the poller and wakes it out of the
// kernel, or the poller sees the packet and takes it instead of waiting. The getter
// receives the packet (a poller left in the kernel beside it is a loom deadlock).
#[test]
fn post_fast_path_vs_poller_entering_the_kernel() {
    loom::model(|| {
        let port = io_port(1);
        let live = Arc::new(());
        let getter = io_getter(&port);
        port.post(1, 101, token(1, &live)).unwrap();
        assert_eq!(getter.join().unwrap(), Some(1));
        assert!(port.drain().is_empty());
        drop(port);
        assert_eq!(Arc::strong_count(&live), 1);
    });
}

// ---------------------------------------------------------------------------------------
// The poller protocol (docs/design.md, "I/O: the poller"), against the model kernel of
// `completion-port/src/sys/fake.rs`: with a backend, one thread in `get` waits in the
// kernel (the poller) and the others park. `fake_complete` is an I/O completion arriving
// from the kernel: it reaches the port only through the poller (or `drain`), never through
// `post`. A stall (a thread left waiting with its packet somewhere else) shows up as a
// loom deadlock; the models must terminate.
// ---------------------------------------------------------------------------------------

/// A port with the model kernel as its backend, as after a first `associate`.
fn io_port(concurrency: usize) -> CompletionPort<Token> {
    CompletionPort::with_fake_backend(concurrency)
}

/// Operation `id` completes in the kernel: key `id`, `100 + id` bytes, context `id`.
fn kernel_complete(port: &CompletionPort<Token>, id: usize, live: &Arc<()>) {
    port.fake_complete(id, 100 + id, token(id, live));
}

/// Spins until `n` threads hold a packet (count as running).
fn until_holding<C: Send + 'static>(port: &CompletionPort<C>, n: usize) {
    while port.running() < n {
        thread::yield_now();
    }
}

/// A thread that calls `get(None)` once and returns the context id, or `None` if closed.
fn io_getter(port: &CompletionPort<Token>) -> thread::JoinHandle<Option<usize>> {
    let port = port.clone();
    thread::spawn(move || match port.get(None) {
        Ok(p) => {
            assert_eq!((p.key, p.bytes().unwrap()), (p.context.id, 100 + p.context.id));
            Some(p.context.id)
        }
        Err(e) => {
            assert_eq!(e, GetError::Closed);
            None
        }
    })
}

// Rule P7 (poller), P2: one thread in `get(None)` (it becomes the poller) and one
// kernel completion racing its call: the completion is delivered to it exactly once, with
// its key, byte count and context unchanged, and nothing is left behind.
#[test]
fn poller_delivers_a_kernel_completion() {
    loom::model(|| {
        let port = io_port(1);
        let live = Arc::new(());
        let getter = {
            let port = port.clone();
            thread::spawn(move || {
                let p = port.get(None).unwrap();
                (p.key, p.bytes().unwrap(), p.context.id)
            })
        };
        kernel_complete(&port, 1, &live);
        assert_eq!(getter.join().unwrap(), (1, 101, 1));
        assert!(port.drain().is_empty(), "a kernel completion was delivered and also left queued");
        drop(port);
        assert_eq!(Arc::strong_count(&live), 1);
    });
}

// Rule P7 (poller), P6: two threads in `get(None)` (one polls the kernel, the other
// parks) and two kernel completions racing them. Both are delivered, each exactly once,
// and nobody is left waiting: the poller takes the first and either hands the second to
// the parked thread or makes it the next poller.
#[test]
fn poller_and_parked_thread_two_kernel_completions() {
    loom::model(|| two_getters_two_kernel_completions(io_port(2)));
}

/// Two threads in `get(None)` on `port` and two kernel completions racing them: each is
/// delivered exactly once and neither thread is left waiting.
fn two_getters_two_kernel_completions(port: CompletionPort<Token>) {
    let live = Arc::new(());
    let (a, b) = (io_getter(&port), io_getter(&port));
    kernel_complete(&port, 1, &live);
    kernel_complete(&port, 2, &live);
    let seen: Vec<usize> = [a.join().unwrap(), b.join().unwrap()].into_iter().flatten().collect();
    assert_exactly_once(seen, 2);
    assert!(port.drain().is_empty());
    drop(port);
    assert_eq!(Arc::strong_count(&live), 1);
}

// Rule P7 (poller), P2: a `post` races a kernel completion, with two threads in
// `get(None)`. The post goes to a parked thread, or to the queue with the poller woken out
// of the kernel; the kernel completion goes through the poller. Each packet is delivered
// exactly once and neither thread is left waiting.
#[test]
fn post_races_kernel_completion() {
    loom::model(|| post_and_kernel_completion_race(io_port(2), false));
}

/// Two threads in `get(None)` on `port` (with `settled`, both already waiting) while a
/// post races a kernel completion: each packet is delivered exactly once and neither
/// thread is left waiting.
fn post_and_kernel_completion_race(port: CompletionPort<Token>, settled: bool) {
    let live = Arc::new(());
    let (a, b) = (io_getter(&port), io_getter(&port));
    if settled {
        until_waiting(&port, 2);
    }
    let poster = {
        let (port, t) = (port.clone(), token(1, &live));
        thread::spawn(move || port.post(1, 101, t).unwrap())
    };
    kernel_complete(&port, 2, &live);
    poster.join().unwrap();
    let seen: Vec<usize> = [a.join().unwrap(), b.join().unwrap()].into_iter().flatten().collect();
    assert_exactly_once(seen, 2);
    assert!(port.drain().is_empty());
    drop(port);
    assert_eq!(Arc::strong_count(&live), 1);
}

// Rule P7 (poller), P6, P9: A polls, B is parked. A kernel completion comes; A (the
// poller, awake and hot) takes it and leaves (then exits, which ends its running period).
// A second completion comes later: B must have been promoted to poller and receive it,
// else it waits forever beside a completion nobody reaps (a loom deadlock). With
// concurrency 2, A's own `get` promotes B; with concurrency 1, only A's exit can.
#[test]
fn parked_thread_is_promoted_when_the_poller_leaves() {
    for concurrency in [1, 2] {
        loom::model(move || {
            let port = io_port(concurrency);
            let live = Arc::new(());
            let a = io_getter(&port);
            until_waiting(&port, 1); // A is the poller
            let b = io_getter(&port);
            until_waiting(&port, 2); // B is parked
            kernel_complete(&port, 1, &live);
            assert_eq!(a.join().unwrap(), Some(1), "the poller takes the first completion (P6)");
            kernel_complete(&port, 2, &live);
            assert_eq!(b.join().unwrap(), Some(2));
            assert!(port.drain().is_empty());
            drop(port);
            assert_eq!(Arc::strong_count(&live), 1);
        });
    }
}

// Rule P8, P10 (poller): one operation is in flight; A polls, B is parked; `close` races
// a kernel completion. Both threads return `Closed` (A may instead take the completion if
// it arrived first); the operation still in flight is cancelled, and `drain` returns its
// packet (with `ECANCELED`) and the completion if no thread took it, each exactly once.
#[test]
fn close_with_a_poller_and_a_parked_thread() {
    loom::model(|| {
        let port = io_port(2);
        let live = Arc::new(());
        port.fake_submit(1, token(1, &live));
        let a = io_getter(&port);
        until_waiting(&port, 1); // A is the poller
        let b = io_getter(&port);
        until_waiting(&port, 2); // B is parked
        let kernel = {
            let (port, live) = (port.clone(), Arc::clone(&live));
            thread::spawn(move || kernel_complete(&port, 2, &live))
        };
        port.close();
        let (ra, rb) = (a.join().unwrap(), b.join().unwrap());
        kernel.join().unwrap();
        assert!(matches!(ra, None | Some(2)), "A returned {ra:?}");
        assert_eq!(rb, None, "B must return Closed");
        let drained = port.drain();
        for p in &drained {
            assert_eq!(p.is_cancelled(), p.context.id == 1, "only the in-flight operation is cancelled");
        }
        let mut seen = ids(drained);
        seen.extend(ra);
        assert_exactly_once(seen, 2);
        assert_closed_after(&port, &live);
    });
}

// Rule P8, P10 (poller): as above, but the application calls `drain` (which closes the
// port, waits for the cancelled operation and takes the queue) while one thread polls and
// the other is parked. Both threads must still return `Closed`: `drain` reaps the kernel's
// completions itself, and must not leave the poller waiting for a wake-up it consumed.
//
// A regression model: loom found a stall here before the fix. The poller has set `polling`
// and dropped the port lock but not yet entered the kernel; `close` sees `polling` and
// sends its wake-up; `drain` then reaps everything, the wake-up included; the poller enters
// the kernel and waits forever. The fix: at the end of `drain`, if it reaped and a thread
// still polls, wake it again.
#[test]
fn drain_with_a_poller_and_a_parked_thread() {
    // One polls, the other is parked.
    loom::model(|| drain_with_two_waiting(io_port(2)));
}

/// One operation in flight on `port`, two threads waiting in `get(None)`; `drain` closes,
/// reaps the cancelled operation itself and returns it; both threads return `Closed`.
fn drain_with_two_waiting(port: CompletionPort<Token>) {
    let live = Arc::new(());
    port.fake_submit(1, token(1, &live));
    let (a, b) = (io_getter(&port), io_getter(&port));
    until_waiting(&port, 2);
    let drained = port.drain();
    assert_eq!(a.join().unwrap(), None, "A must return Closed");
    assert_eq!(b.join().unwrap(), None, "B must return Closed");
    assert_eq!(drained.len(), 1);
    assert!(drained[0].is_cancelled());
    assert_eq!(ids(drained), [1]);
    assert_closed_after(&port, &live);
}

// Rule P9 (poller): concurrency 1. A takes a kernel completion and holds the only slot;
// B waits. A second completion arriving meanwhile is delivered to nobody (it waits: no
// thread even polls for it) until A calls `get` again; then A, the most recent waiter
// (P6), receives it, and B never gets a packet: it returns `Closed` at the end.
#[test]
fn concurrency_one_kernel_completion_waits_for_the_holder() {
    loom::model(|| {
        let port = io_port(1);
        let live = Arc::new(());
        // A flag, not a `Notify`: loom's `Notify::wait` may return spuriously.
        let go = Arc::new(AtomicBool::new(false));
        let a = {
            let (port, go) = (port.clone(), Arc::clone(&go));
            thread::spawn(move || {
                let first = port.get(None).unwrap().context.id;
                while !go.load(SeqCst) {
                    thread::yield_now(); // holds its slot until the main thread has checked
                }
                let second = port.get(None).unwrap().context.id;
                (first, second)
            })
        };
        until_waiting(&port, 1); // A is the poller
        let b = io_getter(&port);
        until_waiting(&port, 2); // B is parked
        kernel_complete(&port, 1, &live);
        until_holding(&port, 1); // A holds packet 1
        kernel_complete(&port, 2, &live);

        assert_eq!(port.running(), 1, "a second thread runs beside the holder");
        assert_eq!(port.waiting(), 1, "B must stay parked, and nobody polls while the limit is reached");
        assert_eq!(port.queued(), 0, "nobody reaps the kernel while the limit is reached");
        go.store(true, SeqCst);
        assert_eq!(a.join().unwrap(), (1, 2));
        port.close();
        assert_eq!(b.join().unwrap(), None, "B must not have received a packet");
        assert_closed_after(&port, &live);
    });
}

// Rule P7 (poller), H1: a thread parked in `get(None)` before the port had a backend
// (no handle associated yet). The first association installs the backend and must make a
// waiting thread the poller (`driver()` calls `release` for this): a kernel completion
// then reaches the thread. A thread left parked beside an unreaped completion is a stall.
//
// A regression model: loom found a stall here before the fix. `wait_into` copied
// `existing_driver()` once, when the call began (`None` here), so the thread that
// `driver()`'s `release` promoted to poller went back to parking with `polling` false, and
// nobody reaped the kernel. The fix: look the driver up inside the loop, under the lock.
#[test]
fn backend_installed_while_a_thread_waits() {
    loom::model(|| {
        let port: CompletionPort<Token> = CompletionPort::new(1);
        let live = Arc::new(());
        let a = io_getter(&port);
        until_waiting(&port, 1); // parked, with no backend to poll
        port.install_fake_backend(); // the first `associate`
        kernel_complete(&port, 1, &live);
        assert_eq!(a.join().unwrap(), Some(1));
        assert!(port.drain().is_empty());
        drop(port);
        assert_eq!(Arc::strong_count(&live), 1);
    });
}

// Rule P7 (poller), H1: as above, but the first association races the thread's call
// to `get`: whichever comes first, the thread must end up polling and get the completion.
// A regression model, for the same stall as the test above.
#[test]
fn backend_installed_while_a_thread_calls_get() {
    loom::model(|| {
        let port: CompletionPort<Token> = CompletionPort::new(1);
        let live = Arc::new(());
        let a = io_getter(&port);
        // The backend lives in a `OnceLock`, which loom does not see: without this
        // scheduling point, loom would never run the getter before the installation.
        thread::yield_now();
        port.install_fake_backend(); // the first `associate`
        kernel_complete(&port, 1, &live);
        assert_eq!(a.join().unwrap(), Some(1));
        assert!(port.drain().is_empty());
        drop(port);
        assert_eq!(Arc::strong_count(&live), 1);
    });
}

// ---------------------------------------------------------------------------------------
// Several pollers at once (the epoll backend): every thread in `get` may wait in the
// kernel, which wakes one of them per event (docs/design.md, "Several pollers"). The
// model kernel wakes exactly one waiter per entry, so a protocol that relies on a wake-up
// reaching every poller deadlocks here.
// ---------------------------------------------------------------------------------------

/// A port whose model kernel lets two threads wait at once (epoll's behaviour).
fn epoll_port(concurrency: usize) -> CompletionPort<Token> {
    CompletionPort::with_fake_backend_pollers(concurrency, 2)
}

// Rule P7 (several pollers), P2: two threads wait in the kernel at once and two kernel
// completions race them. Each completion is delivered exactly once and neither thread is
// left waiting: one woken poller takes both or leaves one for the other, and wakes it.
#[test]
fn two_pollers_two_kernel_completions() {
    loom::model(|| two_getters_two_kernel_completions(epoll_port(2)));
}

// Rule P7 (several pollers), P2: with both threads in the kernel, a `post` can hand its
// packet to nobody directly; it wakes one poller, and a kernel completion races it. Each
// packet is delivered exactly once, to either thread, and nobody is left waiting.
#[test]
fn two_pollers_post_races_kernel_completion() {
    loom::model(|| post_and_kernel_completion_race(epoll_port(2), true));
}

// Rule P8 (several pollers): two threads wait in the kernel and nothing is in flight;
// `close` must bring both out, although its one wake-up reaches one poller only: each
// poller that leaves a closed port wakes the next. Both return `Closed`.
#[test]
fn close_brings_every_poller_out() {
    loom::model(|| {
        let port = epoll_port(2);
        let live = Arc::new(());
        let (a, b) = (io_getter(&port), io_getter(&port));
        until_waiting(&port, 2);
        port.close();
        assert_eq!(a.join().unwrap(), None, "A must return Closed");
        assert_eq!(b.join().unwrap(), None, "B must return Closed");
        assert!(port.drain().is_empty());
        assert_closed_after(&port, &live);
    });
}

// Rule P8, P10 (several pollers): `drain` (which closes, then reaps the kernel itself)
// while two threads wait in the kernel: it may consume the wake-ups meant for them, so it
// wakes one again when it is done, and that one wakes the other. Both return `Closed`.
#[test]
fn drain_with_two_pollers() {
    loom::model(|| drain_with_two_waiting(epoll_port(2)));
}

// The epoll backend's wake protocol (`src/sys/epoll/wake.rs`): completions produced
// outside the poller's wait (at submission, by a cancel, by a file pool thread) go to a
// `ready` list, and their producer wakes the poller through an eventfd, written only when
// the `notified` flag was clear. The models run the backend's own `Mailbox` (loom atomics
// and mutex under it) with a model eventfd, and a poller that does what `Epoll::wait` and
// `Epoll::poll` do around it: block in "epoll_wait" unless `has_ready`, then `collect`.
// A completion left in `ready` while the poller blocks is a loom deadlock.
// ---------------------------------------------------------------------------------------

use completion_port::loom_wake::{Mailbox, Signal};
use loom::sync::{Condvar, Mutex};

/// A model eventfd in a level-triggered epoll set: a counter that `raise` (a write of 1)
/// increments and `consume` (a non-blocking read) resets; `epoll_wait` reports it while
/// the counter is non-zero.
#[derive(Default)]
struct ModelEventFd {
    count: Mutex<u64>,
    raised: Condvar,
}

impl Signal for ModelEventFd {
    fn raise(&self) {
        *self.count.lock().unwrap() += 1;
        self.raised.notify_all();
    }

    fn consume(&self) {
        *self.count.lock().unwrap() = 0;
    }
}

impl ModelEventFd {
    /// `epoll_wait` with only the eventfd in the set: with `block`, waits until it is
    /// readable; without (timeout 0), looks once. Returns whether it reported the eventfd.
    fn epoll_wait(&self, block: bool) -> bool {
        let mut count = self.count.lock().unwrap();
        while block && *count == 0 {
            count = self.raised.wait(count).unwrap();
        }
        *count > 0
    }

    fn is_raised(&self) -> bool {
        *self.count.lock().unwrap() > 0
    }
}

/// The order in which the poller consumes the eventfd and clears `notified`.
#[derive(Clone, Copy)]
enum PollerOrder {
    /// The backend's: `Mailbox::collect` (consume, then clear).
    Backend,
    /// The order `Epoll::poll` warns against: clear, then consume.
    ClearFirst,
}

/// One round of the poller, as `Epoll::wait` runs it: no blocking if completions are
/// ready, else block until the eventfd is readable; then collect.
fn poll_round(mb: &Mailbox<usize, ModelEventFd>, order: PollerOrder, out: &mut Vec<usize>) {
    // Announces itself as a sleeper and looks at `ready`: a producer raises the eventfd
    // only while a poller sleeps.
    let block = mb.begin_sleep();
    let woken = mb.signal().epoll_wait(block);
    if block {
        mb.end_sleep();
    }
    match order {
        PollerOrder::Backend => mb.collect(woken, out),
        PollerOrder::ClearFirst => {
            if woken {
                mb.rearm();
                mb.signal().consume();
            }
            mb.take(out);
        }
    }
}

/// A poller thread that runs rounds until it has collected `n` completions.
fn wake_poller(
    mb: &Arc<Mailbox<usize, ModelEventFd>>,
    order: PollerOrder,
    n: usize,
) -> thread::JoinHandle<Vec<usize>> {
    let mb = Arc::clone(mb);
    thread::spawn(move || {
        let mut out = Vec::new();
        while out.len() < n {
            poll_round(&mb, order, &mut out);
        }
        out
    })
}

/// The protocol's invariant once every thread has stopped: while `notified` is set, the
/// eventfd is readable (else every later wake-up would be suppressed).
fn assert_wake_invariant(mb: &Mailbox<usize, ModelEventFd>) {
    assert!(!mb.is_notified() || mb.signal().is_raised(), "`notified` is set with no wake-up pending");
}

// Issue 10 (epoll backend, wake protocol): a producer pushes three completions one at a
// time (each its own wake-up) while the poller runs rounds. Every completion reaches the
// poller, exactly once and in order, and none is stranded in `ready` while the poller
// blocks (a loom deadlock). Three pushes are what the wrong order needs to strand one
// (see the next model), so this runs the same schedule space with the backend's order.
#[test]
fn wake_protocol_never_strands_a_completion() {
    loom::model(|| {
        let mb = Arc::new(Mailbox::new(ModelEventFd::default()));
        let poller = wake_poller(&mb, PollerOrder::Backend, 3);
        for id in 1..=3 {
            mb.push(vec![id]);
        }
        assert_eq!(poller.join().unwrap(), [1, 2, 3]);
        assert_wake_invariant(&mb);
    });
}

// Issue 10 (epoll backend, wake protocol): two producers (a submitting thread and a file
// pool thread) push concurrently while the poller runs rounds; each push may find the
// other's wake-up on its way and not write the eventfd. Both completions reach the poller.
#[test]
fn wake_protocol_two_producers() {
    loom::model(|| {
        let mb = Arc::new(Mailbox::new(ModelEventFd::default()));
        let poller = wake_poller(&mb, PollerOrder::Backend, 2);
        let other = {
            let mb = Arc::clone(&mb);
            thread::spawn(move || mb.push(vec![2]))
        };
        mb.push(vec![1]);
        other.join().unwrap();
        let mut seen = poller.join().unwrap();
        seen.sort_unstable();
        assert_eq!(seen, [1, 2]);
        assert_wake_invariant(&mb);
    });
}

/// A producer pushes two completions one at a time while the poller, running rounds in
/// `order`, collects both and stops, and a second poller sleeps all along. Then, with every
/// thread stopped, the invariant must hold: a wake-up is on its way only if the eventfd is
/// readable. If it does not, the third completion is stranded: its push finds `notified`
/// set and does not write the eventfd, and the sleeping poller never wakes.
fn two_pushes_then_invariant(order: PollerOrder) {
    let mb = Arc::new(Mailbox::new(ModelEventFd::default()));
    // Another poller sleeps all along (the epoll backend lets several threads wait at
    // once), so every push raises the eventfd, even while this poller is between its
    // steps.
    assert!(mb.begin_sleep(), "nothing is ready yet");
    let poller = wake_poller(&mb, order, 2);
    mb.push(vec![1]);
    mb.push(vec![2]);
    assert_eq!(poller.join().unwrap(), [1, 2]);
    assert_wake_invariant(&mb);
    // A third completion comes for the sleeping poller: its push must raise the eventfd,
    // or the sleeper never wakes.
    mb.push(vec![3]);
    assert!(mb.signal().is_raised(), "the third completion is stranded: the eventfd is not readable");
    mb.end_sleep();
}

// Issue 10 (epoll backend, wake protocol): after any interleaving of two pushes with the
// poller's rounds, `notified` is set only while the eventfd is readable.
#[test]
fn wake_protocol_keeps_notified_honest() {
    loom::model(|| two_pushes_then_invariant(PollerOrder::Backend));
}

// The negative of the models above: the poller clears `notified` before it consumes the
// eventfd. loom finds the schedule that breaks the invariant (within two preemptions,
// pinned here so that the result does not depend on `LOOM_MAX_PREEMPTIONS`): the poller
// clears; the second push sets `notified` and writes; the poller's read eats that write;
// `notified` stays set with nothing to read, and the next push would not write. This
// shows the models can fail, and why `Mailbox::collect` consumes first. (The same change
// in `wake_protocol_never_strands_a_completion` makes loom report a deadlock, the poller
// blocked beside the third completion; loom aborts the process on a deadlock, so that
// form cannot be a `should_panic` test.)
#[test]
#[should_panic(expected = "no wake-up pending")]
fn wake_protocol_clearing_first_breaks_it() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(|| two_pushes_then_invariant(PollerOrder::ClearFirst));
}

// Issue 10 (epoll backend, the port's fast path for file reads): a running thread that
// finds the port's queue empty takes completions from `ready` itself (`take_up_to`, through
// `Epoll::take_ready`), one at a time here, while a producer pushes two and the poller
// runs rounds. Every completion is taken exactly once, by the taker or the poller, and
// none is stranded in `ready` while the poller blocks (a loom deadlock: the taker takes
// twice only, so what it leaves must reach the poller through the protocol); after, the
// invariant holds. The taker wakes the poller once both are taken, only to end the model
// (in the backend a poller with nothing to collect simply stays in `epoll_wait`).
#[test]
fn wake_protocol_with_a_taker() {
    loom::model(|| {
        let mb = Arc::new(Mailbox::new(ModelEventFd::default()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let poller = {
            let (mb, seen) = (Arc::clone(&mb), Arc::clone(&seen));
            thread::spawn(move || {
                let mut out = Vec::new();
                while seen.lock().unwrap().len() < 2 {
                    poll_round(&mb, PollerOrder::Backend, &mut out);
                    seen.lock().unwrap().append(&mut out);
                }
            })
        };
        let taker = {
            let (mb, seen) = (Arc::clone(&mb), Arc::clone(&seen));
            thread::spawn(move || {
                let mut mine = Vec::new();
                for _ in 0..2 {
                    mb.take_up_to(1, |c| mine.push(c));
                }
                let mut seen = seen.lock().unwrap();
                seen.append(&mut mine);
                if seen.len() == 2 {
                    drop(seen);
                    mb.wake();
                }
            })
        };
        mb.push_one(1);
        mb.push_one(2);
        taker.join().unwrap();
        poller.join().unwrap();
        let mut seen = std::mem::take(&mut *seen.lock().unwrap());
        seen.sort_unstable();
        assert_eq!(seen, [1, 2]);
        assert_wake_invariant(&mb);
    });
}

// ---------------------------------------------------------------------------------------
// Deferred submission's sentry (docs/semantics.md H9, `src/sys/sentry.rs`).

use completion_port::loom_sentry::Sentry;

/// What the model's "kernel" has been handed: the number of deferred submissions the
/// sentry submitted, and a condition variable for the deferring thread to wait on.
#[derive(Default)]
struct Submitted {
    count: loom::sync::Mutex<usize>,
    changed: loom::sync::Condvar,
}

/// Starts the sentry's loop on its own thread with a model tick (a yield) and one quiet
/// tick before it goes idle, so that the idle path is reached within the bounds.
fn sentry_thread(
    sentry: &Arc<Sentry>,
    deferred: &Arc<AtomicUsize>,
    submitted: &Arc<Submitted>,
) -> thread::JoinHandle<()> {
    let (sentry, deferred, submitted) = (Arc::clone(sentry), Arc::clone(deferred), Arc::clone(submitted));
    thread::spawn(move || {
        sentry.run(
            Duration::from_millis(1),
            1,
            || deferred.load(SeqCst),
            || {
                // The real submit zeroes the count and enters the kernel.
                let n = deferred.swap(0, SeqCst);
                *submitted.count.lock().unwrap() += n;
                submitted.changed.notify_all();
            },
        )
    })
}

/// A deferring thread's side: raise the count, then tell the sentry (the backend's order),
/// then block until the sentry has handed it over. If the sentry could sleep beside the
/// deferral, this wait never ends and loom reports the deadlock.
fn defer_and_wait(sentry: &Sentry, deferred: &AtomicUsize, submitted: &Submitted, expect: usize) {
    deferred.fetch_add(1, SeqCst);
    sentry.note_deferred();
    let mut count = submitted.count.lock().unwrap();
    while *count < expect {
        count = submitted.changed.wait(count).unwrap();
    }
}

// docs/semantics.md H9 (deferred submission): a thread defers a submission and then blocks
// elsewhere, twice, while the sentry ticks, goes idle and is woken, in every interleaving
// within the bounds: each deferral is handed to the kernel by the sentry (never left beside
// an idle sentry), and `stop` ends the sentry's loop from any state.
#[test]
fn sentry_never_sleeps_beside_a_deferral() {
    loom::model(|| {
        let sentry = Arc::new(Sentry::new());
        let deferred = Arc::new(AtomicUsize::new(0));
        let submitted = Arc::new(Submitted::default());
        let t = sentry_thread(&sentry, &deferred, &submitted);
        defer_and_wait(&sentry, &deferred, &submitted, 1);
        defer_and_wait(&sentry, &deferred, &submitted, 2);
        sentry.stop();
        t.join().unwrap();
        assert!(sentry.is_stopped());
        assert_eq!(deferred.load(SeqCst), 0);
    });
}

// docs/semantics.md H9 (deferred submission): the sentry, left alone, goes idle (it does not
// tick forever with nothing deferred), and a deferral then wakes it.
#[test]
fn sentry_goes_idle_and_a_deferral_wakes_it() {
    loom::model(|| {
        let sentry = Arc::new(Sentry::new());
        let deferred = Arc::new(AtomicUsize::new(0));
        let submitted = Arc::new(Submitted::default());
        let t = sentry_thread(&sentry, &deferred, &submitted);
        while !sentry.is_idle() {
            thread::yield_now();
        }
        defer_and_wait(&sentry, &deferred, &submitted, 1);
        sentry.stop();
        t.join().unwrap();
    });
}
