//! A pool of worker threads that run a handler on each packet (docs/semantics.md S1, S2).

use crate::completion::Completion;
use crate::error::GetError;
use crate::port::CompletionPort;
use std::io;
use std::ops::ControlFlow;
use std::thread::JoinHandle;

/// N worker threads, each looping on [`CompletionPort::get`] and running a handler on
/// every packet: the thread pool every IOCP server starts with.
///
/// A worker stops when its handler returns [`ControlFlow::Break`] (the seeds' shutdown
/// key: post one shutdown packet per worker, docs/semantics.md S1) or when the port is closed.
///
/// Because waiting threads are released LIFO, a worker that kept calling `get` after
/// seeing its shutdown packet could take another worker's; returning `Break` is how a
/// handler stops its worker, and the pool never calls `get` again on that thread.
///
/// # Dropping
///
/// Dropping the pool (or calling [`shutdown`](Self::shutdown)) closes the port, joins
/// every worker and drains what is left, so a program that stops with work queued loses
/// nothing and leaks nothing (S2).
///
/// # Examples
///
/// ```
/// use completion_port::{CompletionPort, WorkerPool};
/// use std::ops::ControlFlow;
///
/// const SHUTDOWN: usize = usize::MAX;
/// let port: CompletionPort<String> = CompletionPort::new(2);
/// let pool = WorkerPool::spawn_with(&port, 2, |packet| {
///     if packet.key == SHUTDOWN {
///         return ControlFlow::Break(());
///     }
///     ControlFlow::Continue(())
/// })
/// .unwrap();
/// port.post(1, 5, "hello".to_string()).unwrap();
/// for _ in 0..2 {
///     port.post(SHUTDOWN, 0, String::new()).unwrap();
/// }
/// let leftover = pool.join();
/// assert!(leftover.is_empty());
/// ```
pub struct WorkerPool<C: Send + 'static> {
    port: CompletionPort<C>,
    workers: Vec<JoinHandle<()>>,
}

impl<C: Send + 'static> WorkerPool<C> {
    /// Spawns `n` workers that run `handler` on every packet until the port is closed.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `n == 0`; the OS error if a thread cannot be spawned (the workers
    /// already started are then stopped and joined).
    pub fn spawn<F>(port: &CompletionPort<C>, n: usize, handler: F) -> io::Result<Self>
    where
        F: Fn(Completion<C>) + Send + Sync + 'static,
    {
        Self::spawn_with(port, n, move |p| {
            handler(p);
            ControlFlow::Continue(())
        })
    }

    /// Spawns `n` workers; a worker stops when `handler` returns `ControlFlow::Break` or
    /// the port is closed.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Self::spawn).
    pub fn spawn_with<F>(port: &CompletionPort<C>, n: usize, handler: F) -> io::Result<Self>
    where
        F: Fn(Completion<C>) -> ControlFlow<()> + Send + Sync + 'static,
    {
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a worker pool needs n >= 1"));
        }
        let handler = std::sync::Arc::new(handler);
        let mut pool = Self { port: port.clone(), workers: Vec::with_capacity(n) };
        for i in 0..n {
            let port = port.clone();
            let handler = std::sync::Arc::clone(&handler);
            let spawned = std::thread::Builder::new()
                .name(format!("cport-worker-{i}"))
                .spawn(move || worker_loop(&port, &*handler));
            match spawned {
                Ok(h) => pool.workers.push(h),
                Err(e) => {
                    pool.stop();
                    return Err(e);
                }
            }
        }
        Ok(pool)
    }

    /// Number of worker threads.
    pub fn len(&self) -> usize {
        self.workers.len()
    }

    /// Always false: a pool has at least one worker.
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// The port the workers serve.
    pub fn port(&self) -> &CompletionPort<C> {
        &self.port
    }

    /// Waits for every worker to stop by itself (each handler returned `Break`, S1), then
    /// closes and drains the port, returning the packets nobody handled (S2).
    ///
    /// # Panics
    ///
    /// If a handler panicked, the panic is resumed here after every worker is joined and
    /// the port drained.
    pub fn join(mut self) -> Vec<Completion<C>> {
        self.join_inner()
    }

    /// Closes the port now: each worker finishes the packet in hand and stops. Joins every
    /// worker and returns the packets still queued (S2). Operations in flight are drained
    /// by [`CompletionPort::drain`].
    ///
    /// # Panics
    ///
    /// As [`join`](Self::join).
    pub fn shutdown(mut self) -> Vec<Completion<C>> {
        self.port.close();
        self.join_inner()
    }

    fn join_inner(&mut self) -> Vec<Completion<C>> {
        let mut panic = None;
        for h in self.workers.drain(..) {
            if let Err(p) = h.join() {
                tracing::error!("a completion-port worker panicked");
                panic.get_or_insert(p);
            }
        }
        let leftover = self.port.drain();
        if let Some(p) = panic {
            drop(leftover);
            std::panic::resume_unwind(p);
        }
        leftover
    }

    fn stop(&mut self) {
        self.port.close();
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
    }
}

fn worker_loop<C: Send + 'static>(
    port: &CompletionPort<C>,
    handler: &dyn Fn(Completion<C>) -> ControlFlow<()>,
) {
    loop {
        match port.get(None) {
            Ok(packet) => {
                if handler(packet).is_break() {
                    return;
                }
            }
            Err(GetError::Closed) => return,
            Err(e) => {
                // `None` never times out; anything else would be a bug in the port.
                tracing::error!(error = %e, "unexpected error in a worker's get");
                return;
            }
        }
    }
}

impl<C: Send + 'static> Drop for WorkerPool<C> {
    fn drop(&mut self) {
        if !self.workers.is_empty() {
            self.stop();
            drop(self.port.drain());
        }
    }
}
