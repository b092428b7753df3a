//! Seed 000: a worker blocked in `GetQueuedCompletionStatus(INFINITE)` must be interrupted
//! for termination. The seed adds a manual-reset event and a flag; here `close()` does it:
//! every thread blocked in `get` returns `GetError::Closed` at once (rule P8), and whatever
//! is still queued is handed back by `drain` (P10).
//!
//! The worker first handles one real read of a file (4096 bytes), then blocks again with
//! nothing to do until the main thread closes the port.
//!
//! Run with `cargo run -p completion-port --example interrupt_wait`.

use completion_port::{CompletionPort, GetError};
use std::io::Write;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

fn main() -> std::io::Result<()> {
    let port: CompletionPort<String> = CompletionPort::new(1);
    let (handled, handled_rx) = mpsc::channel();

    let worker = {
        let port = port.clone();
        thread::spawn(move || loop {
            // INFINITE: no timeout, no polling loop.
            match port.get(None) {
                Ok(packet) => {
                    match packet.result() {
                        Ok(n) => println!("worker: {} completed, {n} bytes transferred", packet.context),
                        Err(e) => println!("worker: {} failed: {e}", packet.context),
                    }
                    let _ = handled.send(());
                }
                Err(GetError::Closed) => {
                    println!("worker: the port is closed, exiting");
                    return;
                }
                Err(e) => {
                    eprintln!("worker: unexpected: {e}");
                    return;
                }
            }
        })
    };

    // One real overlapped read, completing to the port the worker waits on.
    let mut file = tempfile::tempfile()?;
    file.write_all(&[7; 4096])?;
    let file = port.associate(file, 1)?;
    file.read_at(Vec::with_capacity(4096), 0, "read of 4096 bytes at offset 0".into())
        .map_err(|e| e.error)?;
    handled_rx.recv_timeout(Duration::from_secs(10)).map_err(std::io::Error::other)?;

    // The worker is back in `get(None)` with nothing queued: wait until it is blocked there.
    while port.waiting() == 0 {
        thread::sleep(Duration::from_millis(1));
    }
    println!("main: the worker is blocked in get(None); closing the port");
    let t = Instant::now();
    port.close();
    worker.join().expect("worker panicked");
    println!("main: worker joined {} ms after close", t.elapsed().as_millis());

    // A post after close is refused and hands the context back.
    let err = port.post(0, 0, "too late".into()).unwrap_err();
    let why = err.to_string();
    println!("main: post after close: {why} (context back: {:?})", err.into_inner());
    println!("main: left in the port: {} packets", port.drain().len());
    Ok(())
}
