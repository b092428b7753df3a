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
//! The rules implemented are those of `IOCP.md` (P1–P10, S1–S2); every test names the rule
//! it checks.
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
//!         return ControlFlow::Break(()); // one shutdown packet per worker (IOCP.md S1)
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

#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod assoc;
mod completion;
mod error;
mod handle;
mod op;
mod pool;
mod port;
mod sync;
mod sys;

pub use completion::Completion;
pub use error::{Closed, GetError, PostError};
pub use handle::{Handle, OpId, Started};
pub use op::{SubmitError, MAX_BUFFER};
pub use pool::WorkerPool;
pub use port::{BlockingGuard, CompletionPort};
