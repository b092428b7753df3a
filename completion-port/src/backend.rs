//! Which kernel mechanism a port's I/O runs on, chosen at run time.

use std::fmt;
use std::io;
use std::str::FromStr;

/// The environment variable that chooses the backend of ports made with
/// [`CompletionPort::new`](crate::CompletionPort::new): `uring`, `epoll` or `auto`.
pub const BACKEND_ENV: &str = "COMPLETION_PORT_BACKEND";

/// The kernel mechanism behind a port's I/O.
///
/// A port creates its backend when the first handle is associated. Both backends keep
/// every rule of `docs/semantics.md`; where a detail differs, the rule says so.
///
/// * [`Uring`](Backend::Uring): io_uring (Linux 5.19 or later). Operations are handed to the
///   kernel, which completes them; files go through the kernel's asynchronous path.
/// * [`Epoll`](Backend::Epoll): readiness (epoll), for where io_uring is refused (default
///   container seccomp profiles, `kernel.io_uring_disabled`). The thread that learns a
///   descriptor is ready performs the system call and queues the packet; regular-file
///   operations run on a small pool of blocking threads owned by the backend.
/// * [`Auto`](Backend::Auto): io_uring if it can be set up, else epoll, logging why once (a
///   `tracing` warning).
///
/// # Examples
///
/// ```
/// use completion_port::{Backend, CompletionPort};
///
/// let port: CompletionPort<()> = CompletionPort::with_backend(1, Backend::Epoll);
/// assert_eq!(port.backend(), None); // created at the first associate
/// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// port.associate(listener, 1).unwrap();
/// assert_eq!(port.backend(), Some(Backend::Epoll));
/// assert_eq!("epoll".parse::<Backend>().unwrap(), Backend::Epoll);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Backend {
    /// io_uring where it can be set up, else epoll.
    #[default]
    Auto,
    /// io_uring only: associating fails if it cannot be set up.
    Uring,
    /// epoll (readiness), with a blocking-thread pool for regular files.
    Epoll,
}

impl Backend {
    /// The name `COMPLETION_PORT_BACKEND` accepts and reports use: `auto`, `io_uring` or
    /// `epoll`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Uring => "io_uring",
            Backend::Epoll => "epoll",
        }
    }

    /// The backend `COMPLETION_PORT_BACKEND` asks for: [`Auto`](Backend::Auto) if it is unset
    /// or empty.
    ///
    /// # Errors
    ///
    /// `InvalidInput`, naming the variable and the values it accepts, if it holds anything
    /// else (or is not valid Unicode).
    pub fn from_env() -> io::Result<Backend> {
        match std::env::var(BACKEND_ENV) {
            Err(std::env::VarError::NotPresent) => Ok(Backend::Auto),
            Err(std::env::VarError::NotUnicode(v)) => Err(bad_value(&v.to_string_lossy())),
            Ok(v) if v.trim().is_empty() => Ok(Backend::Auto),
            Ok(v) => v.parse().map_err(|_| bad_value(&v)),
        }
    }
}

fn bad_value(v: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{BACKEND_ENV}={v:?} is not a backend: expected uring, epoll or auto"),
    )
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The value is not `auto`, `uring` (or `io_uring`) or `epoll`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a backend: expected uring, epoll or auto")]
pub struct ParseBackendError(String);

impl FromStr for Backend {
    type Err = ParseBackendError;

    /// Case-insensitive: `auto`, `uring` or `io_uring`, `epoll`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Backend::Auto),
            "uring" | "io_uring" | "io-uring" => Ok(Backend::Uring),
            "epoll" => Ok(Backend::Epoll),
            _ => Err(ParseBackendError(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Backend;

    #[test]
    fn names_parse_back() {
        for b in [Backend::Auto, Backend::Uring, Backend::Epoll] {
            assert_eq!(b.name().parse::<Backend>().unwrap(), b);
        }
        assert_eq!(" URING ".parse::<Backend>().unwrap(), Backend::Uring);
        let e = "kqueue".parse::<Backend>().unwrap_err();
        assert!(e.to_string().contains("expected uring, epoll or auto"), "{e}");
    }
}
