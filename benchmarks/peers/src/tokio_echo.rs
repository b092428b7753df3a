//! The tokio peer: one multi-thread runtime, one listener, a task per connection.

use crate::{accept_error_is_transient, fatal, listen, ServerArgs, BUF_SIZE};
use std::io;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Starts the runtime's workers and the accept loop; returns the bound address.
pub fn start(args: &ServerArgs) -> io::Result<SocketAddr> {
    let std_listener = listen::listener(args.port, false)?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(args.threads))
        .thread_name("tokio-echo")
        .enable_io()
        .build()?;
    let listener = {
        let _entered = runtime.enter();
        TcpListener::from_std(std_listener)?
    };
    runtime.spawn(accept_loop(listener));
    // The runtime lives until the process ends (main waits for a signal, then exits).
    std::mem::forget(runtime);
    Ok(addr)
}

async fn accept_loop(listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(echo(stream));
            }
            Err(e) if accept_error_is_transient(&e) => {}
            Err(e) => fatal("tokio accept", e),
        }
    }
}

async fn echo(mut stream: TcpStream) {
    if stream.set_nodelay(true).is_err() {
        return;
    }
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}
