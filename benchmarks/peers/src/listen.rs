//! Listening sockets, made the same way for every server.

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener};

/// Listen backlog of every server (the standard library's default is 128).
pub const BACKLOG: i32 = 1024;

/// A listener on `127.0.0.1:port` with `SO_REUSEADDR` and a backlog of [`BACKLOG`]; with
/// `reuse_port`, also `SO_REUSEPORT`, so that more listeners can bind the same port and the
/// kernel spreads new connections over them. Blocking; callers switch it as they need.
pub fn listener(port: u16, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// `n` listeners on one port with `SO_REUSEPORT` (the first picks the port when `port` is
/// 0), and the address they share.
pub fn reuse_port_listeners(port: u16, n: u16) -> io::Result<(Vec<TcpListener>, SocketAddr)> {
    let first = listener(port, true)?;
    let addr = first.local_addr()?;
    let mut all = vec![first];
    for _ in 1..n {
        all.push(listener(addr.port(), true)?);
    }
    Ok((all, addr))
}
