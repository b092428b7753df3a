//! A TCP echo server: one port, a pool of worker threads, one accept always in flight, and
//! the shutdown key to stop (the seeds' `NetworkSystem`, redone on this API).
//!
//! Every connection is a chain of operations: receive, then send back what came, then
//! receive again, until the peer closes (a receive of 0 bytes, rule N3). Each operation
//! carries its connection in its context, so a worker needs no lookup table; the
//! connection (and its socket) is freed when its last operation's packet is handled.
//!
//! ```sh
//! cargo run -p completion-port --example echo_server                      # 127.0.0.1:7000, forever
//! cargo run -p completion-port --example echo_server -- 127.0.0.1:0 3    # stop after 3 connections
//! ```
//!
//! Any client works: `socat - TCP:127.0.0.1:7000`, `nc 127.0.0.1 7000`.

use completion_port::{Completion, CompletionPort, Handle, Parts, WorkerPool};
use std::net::{TcpListener, TcpStream};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

const WORKERS: usize = 4;
const LISTENER: usize = 0; // the listener's key; connections get 1, 2, 3...
const SHUTDOWN: usize = usize::MAX; // posted once per worker to stop the pool (rule S1)

/// One connection; it lives as long as an operation of it is in flight.
struct Conn {
    handle: Handle<Op>,
    echoed: AtomicU64,
}

/// The per-operation context (the seeds' `OVERLAPPED_PLUS`): what the operation was for.
enum Op {
    Accept,
    Recv(Arc<Conn>),
    Send(Arc<Conn>),
    Shutdown,
}

struct Server {
    port: CompletionPort<Op>,
    listener: Handle<Op>,
    next_key: AtomicUsize,
    closed: AtomicUsize,
    stop_after: usize, // connections to serve before stopping (0: never stop)
}

impl Server {
    /// Runs on a worker for every packet; `Break` stops that worker.
    fn handle(&self, p: Completion<Op>) -> ControlFlow<()> {
        if p.key == SHUTDOWN {
            return ControlFlow::Break(()); // and the pool never calls `get` on it again
        }
        let Parts { result, context, buffer, accepted, .. } = p.into_all_parts();
        match (context, result) {
            (Op::Accept, result) => self.accepted(result, accepted.map(TcpStream::from)),
            (Op::Recv(conn), Ok(0)) => self.closed(&conn, "closed by the peer"), // rule N3
            (Op::Recv(conn), Ok(_)) => self.send(&conn, buffer.unwrap_or_default()),
            (Op::Send(conn), Ok(n)) => {
                conn.echoed.fetch_add(n as u64, Ordering::Relaxed);
                let mut buf = buffer.unwrap_or_default();
                if n < buf.len() {
                    buf.drain(..n); // a partial send (rule N2): send the rest
                    self.send(&conn, buf);
                } else {
                    self.recv(&conn, buf);
                }
            }
            (Op::Recv(conn) | Op::Send(conn), Err(e)) => self.closed(&conn, &e.to_string()),
            (Op::Shutdown, _) => unreachable!("shutdown packets carry the SHUTDOWN key"),
        }
        ControlFlow::Continue(())
    }

    fn accepted(&self, result: std::io::Result<usize>, stream: Option<TcpStream>) {
        if let Err(e) = self.listener.accept(Op::Accept) {
            eprintln!("cannot re-arm accept: {}", e.error);
        }
        let Some(stream) = stream.filter(|_| result.is_ok()) else {
            return eprintln!("accept failed: {result:?}");
        };
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        match self.port.associate(stream, key) {
            // The new socket is not under the port until we put it there (rule N1).
            Ok(handle) => self.recv(&Arc::new(Conn { handle, echoed: AtomicU64::new(0) }), Vec::new()),
            Err(e) => eprintln!("cannot associate connection {key}: {e}"),
        }
    }

    fn recv(&self, conn: &Arc<Conn>, mut buf: Vec<u8>) {
        buf.clear();
        buf.reserve(16 * 1024); // a receive fills up to the capacity
        if let Err(e) = conn.handle.recv(buf, Op::Recv(Arc::clone(conn))) {
            eprintln!("receive refused: {}", e.error);
        }
    }

    fn send(&self, conn: &Arc<Conn>, buf: Vec<u8>) {
        if let Err(e) = conn.handle.send(buf, Op::Send(Arc::clone(conn))) {
            eprintln!("send refused: {}", e.error);
        }
    }

    /// The connection's chain ends here; its socket closes when the packet's context drops.
    fn closed(&self, conn: &Conn, why: &str) {
        let bytes = conn.echoed.load(Ordering::Relaxed);
        println!("connection {}: {bytes} bytes echoed, {why}", conn.handle.key());
        let served = self.closed.fetch_add(1, Ordering::Relaxed) + 1;
        if served == self.stop_after {
            for _ in 0..WORKERS {
                let _ = self.port.post(SHUTDOWN, 0, Op::Shutdown); // one per worker (rule S1)
            }
        }
    }
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7000".into());
    let stop_after = match args.next().map(|n| n.parse::<usize>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(e)) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)),
    };
    let port: CompletionPort<Op> = CompletionPort::new(0);
    let listener = TcpListener::bind(&addr)?;
    let local = listener.local_addr()?;
    let listener = port.associate(listener, LISTENER)?;
    listener.accept(Op::Accept).map_err(|e| e.error)?;
    let server = Arc::new(Server {
        port: port.clone(),
        listener,
        next_key: AtomicUsize::new(LISTENER + 1),
        closed: AtomicUsize::new(0),
        stop_after,
    });
    let s = Arc::clone(&server);
    let pool = WorkerPool::spawn_with(&port, WORKERS, move |p| s.handle(p))?;
    println!("listening on {local} with {WORKERS} workers");
    // Every worker has seen its shutdown packet: close the port, drain what is in flight.
    let leftover = pool.join();
    println!(
        "served {} connections; {} packets drained at shutdown",
        server.closed.load(Ordering::Relaxed),
        leftover.len()
    );
    Ok(())
}
