//! The mio peer: a thread per worker, each with its own `Poll` and its own `SO_REUSEPORT`
//! listener; edge-triggered readiness, connections kept in a slab.

use crate::{accept_error_is_transient, fatal, listen, ServerArgs, BUF_SIZE};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use std::io::{self, Read, Write};
use std::net::SocketAddr;

/// The listener's token; a connection's token is its slab key + 1.
const LISTENER: Token = Token(0);

/// Binds the listeners and starts one polling thread per listener; returns the address.
pub fn start(args: &ServerArgs) -> io::Result<SocketAddr> {
    let (listeners, addr) = listen::reuse_port_listeners(args.port, args.threads)?;
    for (i, std_listener) in listeners.into_iter().enumerate() {
        std_listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(std_listener);
        std::thread::Builder::new()
            .name(format!("mio-{i}"))
            .spawn(move || run(listener).unwrap_or_else(|e| fatal("mio poll", e)))?;
    }
    Ok(addr)
}

/// One connection: its socket and the bytes read and not yet echoed (`buf[start..end]`).
struct Conn {
    stream: TcpStream,
    buf: Box<[u8; BUF_SIZE]>,
    start: usize,
    end: usize,
}

impl Conn {
    /// Echoes until the socket has nothing more to read or cannot take more bytes (both
    /// interests are registered edge-triggered, so the next event resumes here). Returns
    /// false when the connection is over (end of stream or an error).
    fn drive(&mut self) -> bool {
        loop {
            if self.start < self.end {
                match self.stream.write(&self.buf[self.start..self.end]) {
                    Ok(n) => self.start += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return false,
                }
                continue;
            }
            match self.stream.read(&mut self.buf[..]) {
                Ok(0) => return false,
                Ok(n) => (self.start, self.end) = (0, n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }
}

fn run(mut listener: TcpListener) -> io::Result<()> {
    let mut poll = Poll::new()?;
    poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(1024);
    let mut conns: Slab<Conn> = Slab::new();
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for event in &events {
            if event.token() == LISTENER {
                accept_all(&listener, &poll, &mut conns)?;
                continue;
            }
            let key = event.token().0 - 1;
            let Some(conn) = conns.get_mut(key) else { continue };
            if !conn.drive() {
                let mut conn = conns.remove(key);
                // Dropping the stream closes it; deregistering first is what mio asks.
                let _ = poll.registry().deregister(&mut conn.stream);
            }
        }
    }
}

/// Accepts every pending connection and registers it.
fn accept_all(listener: &TcpListener, poll: &Poll, conns: &mut Slab<Conn>) -> io::Result<()> {
    loop {
        let mut stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if accept_error_is_transient(&e) => continue,
            Err(e) => return Err(e),
        };
        if stream.set_nodelay(true).is_err() {
            continue;
        }
        let entry = conns.vacant_entry();
        let token = Token(entry.key() + 1);
        poll.registry().register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
        // epoll reports a socket that is already readable when it is added: bytes that
        // came before the registration still raise an event.
        entry.insert(Conn { stream, buf: Box::new([0; BUF_SIZE]), start: 0, end: 0 });
    }
}
