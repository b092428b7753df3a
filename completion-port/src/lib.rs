//! # completion-port
//!
//! The Windows I/O completion port (IOCP) programming model, done right in Rust and running
//! natively on Linux.
//!
//! A [`CompletionPort`] is a queue of completion packets that any number of worker threads
//! wait on ([`get`](CompletionPort::get), [`get_many`](CompletionPort::get_many)), post to
//! ([`post`](CompletionPort::post)) and [`close`](CompletionPort::close). Each packet carries
//! a completion key, a result (bytes or an OS error) and the caller's typed per-operation
//! context, the safe form of `OVERLAPPED_PLUS`. The port limits how many threads run at once
//! (its concurrency value), releases waiting threads LIFO and hands packets out FIFO, as
//! Windows does, and removes Windows' traps: closing loses nothing, and dropping frees
//! everything exactly once.
//!
//! ```
//! use completion_port::{CompletionPort, WorkerPool};
//! use std::ops::ControlFlow;
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::sync::Arc;
//!
//! const SHUTDOWN: usize = usize::MAX;
//! let port: CompletionPort<u64> = CompletionPort::new(0);
//! let sum = Arc::new(AtomicU64::new(0));
//! let s = Arc::clone(&sum);
//! let pool = WorkerPool::spawn_with(&port, 4, move |packet| {
//!     if packet.key == SHUTDOWN {
//!         return ControlFlow::Break(()); // one shutdown packet per worker (rule S1)
//!     }
//!     s.fetch_add(packet.context, Ordering::Relaxed);
//!     ControlFlow::Continue(())
//! })
//! .unwrap();
//! for i in 1..=100 {
//!     port.post(0, 0, i).unwrap();
//! }
//! for _ in 0..pool.len() {
//!     port.post(SHUTDOWN, 0, 0).unwrap();
//! }
//! let leftover = pool.join(); // joins, closes and drains (S2)
//! assert!(leftover.is_empty());
//! assert_eq!(sum.load(Ordering::Relaxed), 5050);
//! ```
//!
//! # The rules
//!
//! Every rule the library implements (the port: P1–P10; handles and operations: H1–H11;
//! files: F1–F5; sockets: N1–N7; the worker pattern: S1–S2) is stated, with what Windows
//! does, what this crate does and which test checks it, in `docs/semantics.md` in the
//! repository. The rustdoc of each item names the rules it keeps, and every test names the
//! rule it checks.
//!
//! # Examples in the repository
//!
//! `cargo run -p completion-port --example NAME`, with NAME one of `echo_server` (a TCP
//! echo server on a worker pool, stopped by shutdown packets), `read_file` (many reads in
//! flight, reassembled and checksummed), `client` (connect, send, receive, cancel),
//! `shutdown_key` and `interrupt_wait` (the seeds' worker loops).

#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod assoc;
mod backend;
mod buffer;
mod completion;
mod error;
mod handle;
mod op;
mod pool;
mod port;
mod registry;
mod sync;
mod sys;

pub use backend::{Backend, ParseBackendError, BACKEND_ENV};
pub use buffer::{Buffer, MAX_SEGMENTS};
pub use completion::{Completion, Parts};
pub use error::{Closed, GetError, PostError};
pub use handle::{Handle, OpId, Started};
pub use op::{SubmitError, MAX_BUFFER};
pub use pool::WorkerPool;
pub use port::{BlockingGuard, CompletionPort};

/// loom test hook: the epoll backend's wake protocol (`sys/epoll/wake.rs`), for the loom
/// models of `tests/loom.rs`. Exists only under `--cfg loom`.
#[cfg(loom)]
#[doc(hidden)]
pub use sys::epoll::wake as loom_wake;

/// loom test hook: deferred submission's sentry (`sys/sentry.rs`), for the loom models of
/// `tests/loom.rs`. Exists only under `--cfg loom`.
#[cfg(loom)]
#[doc(hidden)]
pub use sys::sentry as loom_sentry;

/// The crate README's example, compiled and run as a doctest so that it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctest;
