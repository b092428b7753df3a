//! The standard library peer: a blocking thread per connection.

use crate::{accept_error_is_transient, fatal, listen, ServerArgs, BUF_SIZE};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;

/// Stack of a connection's thread: its buffer and a few frames.
const STACK: usize = 64 * 1024;

/// Binds the listener and starts `--threads` accept threads; returns the address.
pub fn start(args: &ServerArgs) -> io::Result<SocketAddr> {
    let listener = listen::listener(args.port, false)?;
    let addr = listener.local_addr()?;
    for i in 0..args.threads {
        let listener = listener.try_clone()?;
        thread::Builder::new().name(format!("accept-{i}")).spawn(move || accept_loop(&listener))?;
    }
    Ok(addr)
}

fn accept_loop(listener: &TcpListener) {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(e) = thread::Builder::new().stack_size(STACK).spawn(move || echo(stream)) {
                    fatal("spawn a connection thread", e);
                }
            }
            Err(e) if accept_error_is_transient(&e) => {}
            Err(e) => fatal("accept", e),
        }
    }
}

fn echo(mut stream: TcpStream) {
    if stream.set_nodelay(true).is_err() {
        return;
    }
    let mut buf = [0u8; BUF_SIZE];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}
