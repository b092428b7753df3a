//! A TCP client on the port: connect, send, receive, a receive that is cancelled, then a
//! shutdown and the peer's end of stream. Each step is an overlapped operation whose packet
//! the main thread takes from the port; the context names the step.
//!
//! The peer is a plain blocking echo thread in this process, on 127.0.0.1.
//!
//! ```sh
//! cargo run -p completion-port --example client
//! ```

use completion_port::{Completion, CompletionPort};
use socket2::{Domain, Socket, Type};
use std::net::{Shutdown, TcpListener};
use std::time::Duration;

/// The next packet; every step here completes within seconds, or something is wrong.
fn next(port: &CompletionPort<&'static str>) -> std::io::Result<Completion<&'static str>> {
    Ok(port.get(Some(Duration::from_secs(10)))?)
}

fn main() -> std::io::Result<()> {
    // The peer: echoes what it reads until end of stream, then closes.
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let peer = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut s, _) = listener.accept()?;
        let mut w = s.try_clone()?;
        std::io::copy(&mut s, &mut w)
    });

    let port: CompletionPort<&'static str> = CompletionPort::new(1);
    // An unconnected socket, associated first, connected through the port (rule N2).
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    let conn = port.associate(socket, 1)?;

    conn.connect(addr, "connect").map_err(|e| e.error)?;
    let p = next(&port)?;
    p.result().map_err(|e| std::io::Error::new(e.kind(), e.to_string()))?;
    println!("{}: connected to {addr}", p.context);

    conn.send(b"ping".to_vec(), "send").map_err(|e| e.error)?;
    let p = next(&port)?;
    println!("{}: {} bytes sent", p.context, p.result().unwrap_or(0));

    conn.recv(Vec::with_capacity(64), "recv").map_err(|e| e.error)?;
    let p = next(&port)?;
    println!("{}: {:?} received", p.context, String::from_utf8_lossy(p.data()));

    // The peer sends nothing more, so this receive stays in flight until cancelled (H5).
    let op = conn.recv(Vec::with_capacity(64), "recv to cancel").map_err(|e| e.error)?;
    conn.cancel(&op)?;
    let p = next(&port)?;
    match p.error() {
        Some(e) if p.is_cancelled() => println!(
            "{}: cancelled ({e}); its context and its buffer (capacity {}) came back",
            p.context,
            p.buffer.as_ref().map_or(0, Vec::capacity)
        ),
        _ => println!("{}: not cancelled: {:?}", p.context, p.result),
    }
    // Its packet is produced, so cancelling again finds nothing (H5).
    println!("cancel again: {}", conn.cancel(&op).map_or_else(|e| e.kind().to_string(), |()| "ok".into()));

    // Shut our side down: the peer sees end of stream, closes, and we see ours (N3).
    conn.shutdown(Shutdown::Write, "shutdown").map_err(|e| e.error)?;
    println!("{}: done", next(&port)?.context);
    conn.recv(Vec::with_capacity(64), "recv after shutdown").map_err(|e| e.error)?;
    let p = next(&port)?;
    match p.result() {
        Ok(0) => println!("{}: end of stream (0 bytes, a success)", p.context),
        other => println!("{}: unexpected {other:?}", p.context),
    }
    let echoed = peer.join().expect("the peer thread panicked")?;
    println!("the peer echoed {echoed} bytes and closed");
    Ok(())
}
