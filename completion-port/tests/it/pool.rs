//! The shutdown pattern and the worker pool: docs/semantics.md S1, S2.

use crate::common::{wait_until, DropCounter, PROMPT};
use completion_port::{CompletionPort, GetError, WorkerPool};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

const SHUTDOWN: usize = usize::MAX;

// Rule S1: one shutdown packet per worker stops every worker, on plain threads.
#[test]
fn s1_one_shutdown_packet_per_worker_stops_them_all() {
    let port = CompletionPort::<u64>::new(0);
    let handled = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let (port, handled) = (port.clone(), Arc::clone(&handled));
            thread::spawn(move || loop {
                let p = port.get(None).unwrap();
                if p.key == SHUTDOWN {
                    return; // never call get again after the shutdown key (S1)
                }
                handled.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    for i in 0..500 {
        port.post(1, 0, i).unwrap();
    }
    for _ in 0..workers.len() {
        port.post(SHUTDOWN, 0, 0).unwrap();
    }
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(handled.load(Ordering::SeqCst), 500);
    assert_eq!(port.queued(), 0);
}

// Rule S1: the pool's handler stops its worker by returning Break; join collects them.
#[test]
fn s1_pool_workers_stop_on_their_shutdown_packet() {
    let port = CompletionPort::<u64>::new(2);
    let sum = Arc::new(AtomicUsize::new(0));
    let s = Arc::clone(&sum);
    let pool = WorkerPool::spawn_with(&port, 4, move |p| {
        if p.key == SHUTDOWN {
            return ControlFlow::Break(());
        }
        s.fetch_add(p.context as usize, Ordering::SeqCst);
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(pool.len(), 4);
    for i in 1..=1000 {
        port.post(0, 0, i).unwrap();
    }
    for _ in 0..4 {
        port.post(SHUTDOWN, 0, 0).unwrap();
    }
    assert!(pool.join().is_empty());
    assert_eq!(sum.load(Ordering::SeqCst), 500_500);
    assert!(port.is_closed(), "join closes and drains the port");
}

// Rule S2: shutdown with work still queued joins every thread and drains the port:
// every context is handled or handed back, exactly once.
#[test]
fn s2_pool_shutdown_loses_and_leaks_nothing() {
    let drops = Arc::new(AtomicUsize::new(0));
    let handled = Arc::new(AtomicUsize::new(0));
    let port = CompletionPort::new(2);
    let (gate_tx, gate_rx) = mpsc::sync_channel::<()>(0);
    let gate_rx = Arc::new(std::sync::Mutex::new(gate_rx));
    let h = Arc::clone(&handled);
    let pool = WorkerPool::spawn(&port, 2, move |_p: completion_port::Completion<DropCounter>| {
        // Hold each worker on the gate so packets pile up in the queue.
        let _ = gate_rx.lock().unwrap().recv();
        h.fetch_add(1, Ordering::SeqCst);
    })
    .unwrap();
    for i in 0..100 {
        port.post(0, 0, DropCounter::new(i, &drops)).unwrap();
    }
    wait_until(PROMPT, "both workers hold a packet", || port.running() == 2);
    gate_tx.send(()).unwrap();
    drop(gate_tx); // the other worker's recv fails at once
    let leftover = pool.shutdown();
    let n_handled = handled.load(Ordering::SeqCst);
    assert!(n_handled >= 1);
    assert_eq!(n_handled + leftover.len(), 100, "every packet handled or drained");
    drop(leftover);
    assert_eq!(drops.load(Ordering::SeqCst), 100, "every context dropped exactly once");
    assert_eq!(port.get(None).unwrap_err(), GetError::Closed);
}

// Rule S2: dropping a pool stops it without hanging.
#[test]
fn s2_dropping_a_pool_joins_its_workers() {
    let port = CompletionPort::<u8>::new(1);
    let pool = WorkerPool::spawn(&port, 3, |_| {}).unwrap();
    wait_until(PROMPT, "workers wait", || port.waiting() == 3);
    drop(pool);
    assert_eq!(port.waiting(), 0);
    assert!(port.is_closed());
}

// Rule S2, bad input: a pool of zero workers is refused with a clear error.
#[test]
fn s2_pool_of_zero_workers_is_invalid() {
    let port = CompletionPort::<u8>::new(1);
    let err = WorkerPool::spawn(&port, 0, |_| {}).err().unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(!port.is_closed());
    let _ = port.get(Some(Duration::ZERO));
}
