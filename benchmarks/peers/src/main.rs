//! Echo servers on other Rust I/O stacks, and a blocking ping-pong client, to measure
//! `cport serve` against its peers (issue 9). Not published, and not a dependency of
//! anything: the peers' crates stay out of the library's dependency graph.
//!
//! Every server listens on `127.0.0.1:--port` (0: an ephemeral port) with a listen backlog
//! of 1024, sets `TCP_NODELAY` on each connection, echoes through 4 KiB buffers, prints
//! `listening on ADDR` once it accepts, and exits with status 0 on SIGTERM or SIGINT:
//!
//! * `tokio`: one multi-thread runtime with `--threads` workers, one listener, a task per
//!   connection;
//! * `monoio`, `compio`: `--threads` threads, each with its own io_uring runtime and its own
//!   `SO_REUSEPORT` listener on the same port, a task per connection;
//! * `mio`: `--threads` threads, each with its own `Poll` and `SO_REUSEPORT` listener,
//!   edge-triggered readiness, connections in a slab;
//! * `threads`: a blocking thread per connection (`--threads` accept threads share the
//!   listener).
//!
//! `client` is the blocking ping-pong client (one thread per connection, strict write-N /
//! read-N, clock started after every connection is up); `sample` measures the CPU time of
//! running processes over a window. See `benchmarks/run-peers.sh` and `docs/benchmarks.md`.

#![forbid(unsafe_code)]

mod client;
mod compio_echo;
mod listen;
mod mio_echo;
mod monoio_echo;
mod proc;
mod threads_echo;
mod tokio_echo;

use clap::{Parser, Subcommand};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::ExitCode;

/// Size of every server's read buffer: one read takes at most this many bytes.
pub const BUF_SIZE: usize = 4096;

/// Command line.
#[derive(Parser, Debug)]
#[command(
    about = "Peer echo servers (tokio, monoio, compio, mio, std threads) and a blocking ping-pong client"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// What to run.
#[derive(Subcommand, Debug)]
enum Cmd {
    /// Echo server on a tokio multi-thread runtime.
    Tokio(ServerArgs),
    /// Echo server on monoio (io_uring), a runtime and a SO_REUSEPORT listener per thread.
    Monoio(ServerArgs),
    /// Echo server on compio (io_uring), a runtime and a SO_REUSEPORT listener per thread.
    Compio(ServerArgs),
    /// Echo server on mio, a Poll and a SO_REUSEPORT listener per thread.
    Mio(ServerArgs),
    /// Echo server with a blocking thread per connection.
    Threads(ServerArgs),
    /// Blocking ping-pong client: a thread per connection, write N bytes, read N back.
    Client(client::Args),
    /// CPU time of running processes (and busy fraction of CPUs) over a window.
    Sample(proc::SampleArgs),
}

/// Options shared by the servers.
#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// Port on 127.0.0.1 to listen on (0: any free port; the address is printed).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Worker threads (for `threads`: accept threads; each connection has its own thread).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: u16,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Tokio(a) => serve(&a, tokio_echo::start),
        Cmd::Monoio(a) => serve(&a, monoio_echo::start),
        Cmd::Compio(a) => serve(&a, compio_echo::start),
        Cmd::Mio(a) => serve(&a, mio_echo::start),
        Cmd::Threads(a) => serve(&a, threads_echo::start),
        Cmd::Client(a) => client::run(&a),
        Cmd::Sample(a) => proc::sample(&a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("peers: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Starts a server with `start` (which binds, spawns its threads and returns the bound
/// address), prints the address, and waits for SIGINT or SIGTERM.
fn serve(args: &ServerArgs, start: fn(&ServerArgs) -> io::Result<SocketAddr>) -> io::Result<ExitCode> {
    // The handlers are registered before the server starts: a signal that comes early
    // still stops it.
    let mut signals =
        signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM])?;
    let addr = start(args)?;
    println!("listening on {addr}");
    io::stdout().flush()?;
    if let Some(sig) = signals.forever().next() {
        // On stderr, and ignoring failure: whoever read the address may be gone.
        let _ = writeln!(io::stderr(), "signal {sig}: stopping");
    }
    // The worker threads hold nothing that must be flushed: leaving main ends them.
    Ok(ExitCode::SUCCESS)
}

/// Reports an error of a server thread on stderr and ends the process: a peer that has
/// lost a worker would measure something else.
pub fn fatal(what: &str, e: io::Error) -> ! {
    eprintln!("peers: {what}: {e}");
    std::process::exit(1)
}

/// Whether an accept error concerns only the connection being accepted (the listener is
/// still good): the client reset it before it was taken, or similar.
pub fn accept_error_is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted
    )
}
