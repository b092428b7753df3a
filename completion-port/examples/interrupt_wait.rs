//! Seed 000: a worker blocked in `GetQueuedCompletionStatus(INFINITE)` must be interrupted
//! for termination. The seed adds a manual-reset event and a flag; here `close()` does it:
//! every thread blocked in `get` returns `GetError::Closed` at once (IOCP.md P8), and any
//! packets still queued are handed back by `drain` (P10).
//!
//! Run with `cargo run -p completion-port --example interrupt_wait`.

use completion_port::{CompletionPort, GetError};
use std::thread;
use std::time::{Duration, Instant};

fn main() {
    let port: CompletionPort<String> = CompletionPort::new(1);

    let worker = {
        let port = port.clone();
        thread::spawn(move || loop {
            // INFINITE: no timeout, no polling loop.
            match port.get(None) {
                Ok(packet) => println!("IO completed, bytes transferred: {}", packet.result.unwrap_or(0)),
                Err(GetError::Closed) => {
                    println!("Worker thread exiting...");
                    return;
                }
                Err(e) => {
                    eprintln!("unexpected: {e}");
                    return;
                }
            }
        })
    };

    port.post(0, 4096, "first".into()).expect("open");
    thread::sleep(Duration::from_millis(500));

    // Stop the worker gracefully: the blocked get returns Closed.
    let t = Instant::now();
    port.close();
    worker.join().expect("worker panicked");
    println!("worker joined {:?} after close", t.elapsed());

    // A post after close is refused and hands the context back.
    let err = port.post(0, 0, "too late".into()).unwrap_err();
    let msg = err.to_string();
    println!("post after close: {msg} (context back: {:?})", err.into_inner());
    println!("left in the port: {} packets", port.drain().len());
}
