//! Typed errors for port states. Each converts into `io::Error`; those that refuse a
//! value hand it back.

use std::fmt;
use std::io;

/// Why [`CompletionPort::get`] or [`CompletionPort::get_many`] returned no packet.
///
/// These are the outcomes (c) and (d) of rule P3 (docs/semantics.md in the repository), kept apart from packets whose
/// operation failed, which arrive as `Ok(Completion)` with an `Err` result.
///
/// [`CompletionPort::get`]: crate::CompletionPort::get
/// [`CompletionPort::get_many`]: crate::CompletionPort::get_many
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GetError {
    /// The timeout passed with no packet for this thread. Nothing was consumed.
    #[error("timed out waiting for a completion packet")]
    TimedOut,
    /// The port is closed (before or during the wait). Remaining packets are collected
    /// with [`CompletionPort::drain`](crate::CompletionPort::drain).
    #[error("the completion port is closed")]
    Closed,
    /// The arguments were invalid, such as `get_many` with `max == 0`.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
}

impl From<GetError> for io::Error {
    fn from(e: GetError) -> Self {
        let kind = match e {
            GetError::TimedOut => io::ErrorKind::TimedOut,
            GetError::Closed => io::ErrorKind::BrokenPipe,
            GetError::InvalidArgument(_) => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, e)
    }
}

/// [`CompletionPort::post`] refused the packet; the context comes back.
///
/// [`CompletionPort::post`]: crate::CompletionPort::post
#[derive(PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PostError<C> {
    /// The port is closed (rules P2, P8).
    #[error("the completion port is closed")]
    Closed(C),
}

impl<C> PostError<C> {
    /// The context that was not posted.
    pub fn into_inner(self) -> C {
        match self {
            PostError::Closed(c) => c,
        }
    }
}

impl<C> fmt::Debug for PostError<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PostError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<C> From<PostError<C>> for io::Error {
    /// Converts into `BrokenPipe`; the context is dropped (use [`PostError::into_inner`]
    /// first to keep it).
    fn from(_: PostError<C>) -> Self {
        io::Error::new(io::ErrorKind::BrokenPipe, "the completion port is closed")
    }
}

/// The port (or the handle's port) is closed: the source of the `BrokenPipe` errors that
/// refused submissions carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the completion port is closed")]
pub struct Closed;
