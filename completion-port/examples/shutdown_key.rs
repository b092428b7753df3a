//! Seeds 001/002: worker threads wait on the port; the main thread posts work, then one
//! packet with a shutdown key per worker (rule S1). Each worker exits when it sees its
//! shutdown packet and never calls `get` again (release is LIFO, so a worker that kept
//! looping could take another worker's shutdown packet).
//!
//! Run with `cargo run -p completion-port --example shutdown_key`.

use completion_port::CompletionPort;
use std::thread;

/// The key `PostQueuedCompletionStatus` uses to say "stop".
const COMPLETION_KEY_SHUTDOWN: usize = 0;
/// The key of ordinary work packets.
const COMPLETION_KEY_WORK: usize = 1;

/// The per-packet context: the safe `OVERLAPPED_PLUS`.
#[derive(Debug)]
struct Job {
    id: u32,
    text: String,
}

fn main() {
    // Two threads may run at once, as in the seed's CreateIoCompletionPort(..., 2).
    let port: CompletionPort<Option<Job>> = CompletionPort::new(2);
    let workers: Vec<_> = (0..4)
        .map(|n| {
            let port = port.clone();
            thread::spawn(move || {
                let mut done = 0;
                loop {
                    let packet = port.get(None).expect("the port stays open until every worker exits");
                    if packet.key == COMPLETION_KEY_SHUTDOWN {
                        println!("worker {n}: shutdown packet, exiting after {done} jobs");
                        return done;
                    }
                    let bytes = packet.result().unwrap_or(0); // posted packets never fail
                    let job = packet.context.expect("work packets carry a job");
                    println!("worker {n}: job {} ({bytes} bytes): {}", job.id, job.text);
                    done += 1;
                }
            })
        })
        .collect();

    for id in 0..10 {
        let text = format!("hello from job {id}");
        port.post(COMPLETION_KEY_WORK, text.len(), Some(Job { id, text })).expect("port is open");
    }
    for _ in 0..workers.len() {
        port.post(COMPLETION_KEY_SHUTDOWN, 0, None).expect("port is open");
    }
    let total: u32 = workers.into_iter().map(|w| w.join().expect("worker panicked")).sum();
    println!("all workers stopped; {total} jobs done");
    // Nothing is left; close and drain anyway, as a program that owns buffers would.
    assert!(port.drain().is_empty());
}
