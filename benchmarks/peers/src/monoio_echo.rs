//! The monoio peer: a thread per worker, each with its own io_uring runtime and its own
//! `SO_REUSEPORT` listener, a task per connection.

use crate::{accept_error_is_transient, fatal, listen, ServerArgs, BUF_SIZE};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::{TcpListener, TcpStream};
use std::io;
use std::net::SocketAddr;

/// Binds the listeners and starts one runtime thread per listener; returns the address.
pub fn start(args: &ServerArgs) -> io::Result<SocketAddr> {
    let (listeners, addr) = listen::reuse_port_listeners(args.port, args.threads)?;
    for (i, std_listener) in listeners.into_iter().enumerate() {
        std::thread::Builder::new().name(format!("monoio-{i}")).spawn(move || {
            let mut runtime = match monoio::RuntimeBuilder::<monoio::IoUringDriver>::new().build() {
                Ok(r) => r,
                Err(e) => fatal("monoio runtime", e),
            };
            runtime.block_on(async move {
                let listener =
                    TcpListener::from_std(std_listener).unwrap_or_else(|e| fatal("monoio listener", e));
                loop {
                    match listener.accept().await {
                        Ok((stream, _)) => {
                            monoio::spawn(echo(stream));
                        }
                        Err(e) if accept_error_is_transient(&e) => {}
                        Err(e) => fatal("monoio accept", e),
                    }
                }
            });
        })?;
    }
    Ok(addr)
}

async fn echo(mut stream: TcpStream) {
    if stream.set_nodelay(true).is_err() {
        return;
    }
    // Owned buffers: a read fills the vector from its start and sets its length; the
    // write sends exactly that length.
    let mut buf = Vec::with_capacity(BUF_SIZE);
    loop {
        let (res, b) = stream.read(buf).await;
        buf = b;
        match res {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let (res, b) = stream.write_all(buf).await;
        buf = b;
        if res.is_err() {
            return;
        }
    }
}
