//! The completion port: the rules of docs/semantics.md P1–P10 in one place.

use crate::assoc::{self, Account};
use crate::backend::Backend;
use crate::completion::Completion;
use crate::error::{GetError, PostError};
use crate::registry::Registry;
use crate::sync::{
    arc_addr, downgrade, fence, load_latest, lock, spin_yield, Arc, AtomicBool, AtomicUsize, Mutex,
    MutexGuard, Ordering::SeqCst, Parker, Queue, Wake, Weak,
};
use crate::sys::Driver;
use crossbeam_utils::CachePadded;
use std::fmt;
use std::io;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// An I/O completion port: a queue of completion packets that any number of threads wait
/// on, post to and take from.
///
/// `C` is the per-operation context, the safe form of Windows' `OVERLAPPED_PLUS`: each
/// packet carries one `C` from the moment it is posted (or its operation submitted) to the
/// moment a thread receives it.
///
/// # Examples
///
/// ```
/// use completion_port::{CompletionPort, GetError};
/// use std::time::Duration;
///
/// let port: CompletionPort<&'static str> = CompletionPort::new(0);
/// port.post(7, 42, "hello").unwrap();
/// let packet = port.get(Some(Duration::from_secs(1))).unwrap();
/// assert_eq!((packet.key, packet.bytes().unwrap(), packet.context), (7, 42, "hello"));
/// assert_eq!(port.get(Some(Duration::ZERO)).unwrap_err(), GetError::TimedOut);
/// ```
///
/// # Threading
///
/// `CompletionPort` is a reference-counted handle: clone it into every thread that uses it.
/// Threads that call [`get`](Self::get) wait on the port themselves; there is no helper
/// thread between a packet and the thread that receives it.
///
/// * Packets are handed out in FIFO order (P5).
/// * Waiting threads are released LIFO: a new packet goes to the thread that started
///   waiting most recently, whose cache is warmest (P6).
/// * A packet handed to a waiter is its alone; nothing is lost or delivered twice (P7).
/// * At most `concurrency` threads run at once (P9): a thread counts as running from the
///   moment `get` hands it a packet until it calls `get` again (on any port) or exits.
///   While the limit is reached, `get` blocks even if packets are queued. A thread that
///   is about to block on something else says so with [`blocking`](Self::blocking).
///
/// # Dropping
///
/// Dropping the last clone frees every packet still queued, dropping each context exactly
/// once (P10). [`close`](Self::close) followed by [`drain`](Self::drain) hands them back
/// instead, so the application can release what they own.
///
/// # Errors
///
/// `get` returns [`GetError::TimedOut`] or [`GetError::Closed`] when it has no packet; a
/// packet whose operation failed is an `Ok(Completion)` whose `result` is the OS error
/// (P3). `post` on a closed port returns [`PostError::Closed`] with the context.
///
/// # Implementation notes
///
/// The queue of packets is a lock-free FIFO and the running count an atomic: `post` and a
/// `get` that finds a packet queued (and a free slot) take no lock. A mutex guards only the
/// stack of waiting threads and the poller flags; `post` takes it only when some thread is
/// waiting. A waiting thread parks on its own futex word; the thread that releases it
/// (usually `post`) takes a running slot and a packet, pops the most recent waiter, puts
/// the packet in that waiter's slot and sets its word under the lock (the hand-off is one
/// step), then wakes it with one `FUTEX_WAKE` after unlocking.
///
/// Once a handle is associated, the port has a kernel backend (io_uring). Then one of the
/// waiting threads, the *poller*, waits in the kernel for I/O completions instead of on its
/// futex; the others park as before. The poller moves what the kernel completed into the
/// queue, takes the first packet itself if the concurrency limit allows (no extra thread
/// hop), hands the rest to parked threads LIFO, and passes the poller role to the most
/// recent parked thread when it leaves. `post` hands a packet to a parked thread directly,
/// or wakes the poller out of the kernel if no thread is parked. See `docs/design.md`.
pub struct CompletionPort<C> {
    inner: Arc<Inner<C>>,
}

struct Inner<C> {
    /// The most threads that may run at once (P1); fixed for the port's life.
    concurrency: usize,
    /// Threads waiting of any kind: `state.waiters.len()`, plus `state.pollers`.
    /// Changed only under the `state` lock (always together with what it mirrors), read
    /// anywhere.
    ///
    /// The no-stranding protocol (replaces "release under the lock on every post"): a
    /// thread must never stay parked while a packet is queued and a running slot is free.
    /// * Whoever makes `queue` non-empty (`post`, the poller) or frees a running slot
    ///   (`give_slot`) does so, then `fence(SeqCst)`, then reads `parked`; if it is not 0,
    ///   it runs [`Inner::release`] under the lock.
    /// * A thread about to park (or to wait in the kernel as the poller) increments
    ///   `parked` under the lock, then `fence(SeqCst)`, then re-checks `queue` and
    ///   `running` itself and does not park if it could take a packet.
    ///
    /// This is the store-buffering (Dekker) pattern with a `SeqCst` fence on both sides: at
    /// least one of the two reads sees the other side's write, so either the poster sees
    /// the waiter (and releases it under the lock) or the waiter sees the packet.
    parked: AtomicUsize,
    /// Mirror of `state.closed` for the paths that take no lock (`get`'s fast path). Set
    /// under the lock by `close`, never cleared.
    closed: AtomicBool,
    /// Threads counted as running (P9). Raised below the limit only by [`Inner::try_slot`]
    /// (a CAS `r < concurrency -> r + 1`), so it never exceeds `concurrency` except after
    /// a `blocking` section ends (which adds 1 unconditionally). Every decrement outside the
    /// lock goes through [`Inner::give_slot`] (see `parked`).
    running: CachePadded<AtomicUsize>,
    /// The post gate, for `drain` (P10): each stripe counts the `post`s, of the threads
    /// mapped to it, that are between their entry (an increment, then a check of `closed`)
    /// and the end of their push. All three are `SeqCst`, as is `close`'s store to
    /// `closed`, so a post that finds `closed` false entered before `close`, and `drain`,
    /// which waits for every stripe to reach 0 after `close`, finds its packet in the
    /// queue: it is drained exactly once. A post that finds `closed` set leaves and fails.
    /// Striped by thread so that posting threads do not contend on one counter.
    posting: [CachePadded<AtomicUsize>; POST_STRIPES],
    /// Packets not yet given to any thread, oldest first (P5). Lock-free: pushed by `post`
    /// and the poller, popped by `get`, `release` and `drain`. A packet is removed exactly
    /// once (the queue is linearizable), by whichever pop gets it (P7).
    queue: Queue<Packet<C>>,
    state: CachePadded<Mutex<State<C>>>,
    /// The kernel backend, created by the first `associate`.
    driver: OnceLock<Driver<C>>,
    /// The backend asked for; `None`: whatever `COMPLETION_PORT_BACKEND` says (default auto).
    backend: Option<Backend>,
    /// Descriptors associated with this port.
    registry: std::sync::Arc<Registry>,
    /// Deferred submission is on (docs/semantics.md H9). A setting, not part of any
    /// protocol: a `std` atomic even under loom, so that it adds no step to the models.
    deferring: std::sync::atomic::AtomicBool,
}

/// Stripes of `Inner::posting` (a power of two). One under loom: the protocol is the
/// same for every stripe, and one keeps the models small.
#[cfg(not(loom))]
const POST_STRIPES: usize = 8;
#[cfg(loom)]
const POST_STRIPES: usize = 1;

/// The calling thread's stripe of `Inner::posting`: threads take stripes in turn.
#[cfg(not(loom))]
fn post_stripe() -> usize {
    use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering::Relaxed};
    static NEXT: StdAtomicUsize = StdAtomicUsize::new(0);
    std::thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Relaxed) % POST_STRIPES;
    }
    STRIPE.try_with(|s| *s).unwrap_or(0)
}

#[cfg(loom)]
fn post_stripe() -> usize {
    0
}

struct State<C> {
    /// Threads parked in `get`, the most recent last (P6 pops from the end).
    ///
    /// Invariant (with the `parked` protocol of [`Inner`]): once every thread has finished
    /// the step it is in, if this is non-empty then `queue` is empty or
    /// `running >= concurrency`; every mutation that could break it ends with
    /// [`Inner::release`] (under this lock) or the parking thread's own re-check.
    /// `Inner::parked` counts these, and the poller.
    waiters: Vec<Arc<Waiter<C>>>,
    /// Set once by `close` (P8); never cleared. The authoritative flag: a thread checks it
    /// under the lock before it parks, so no thread parks after `close`.
    closed: bool,
    /// Whether `driver` exists (read under the lock with the rest of the state).
    has_driver: bool,
    /// Threads that are pollers: they wait in the kernel for completions (or read them).
    /// Counted in `parked`. At most `max_pollers`. Invariant: while `has_driver`,
    /// `running < concurrency` and `queue` is empty, a non-empty `waiters` implies
    /// `pollers > 0` (else [`Inner::release`] promotes one).
    pollers: usize,
    /// How many threads may poll at once: 1 where the backend's completion queue has one
    /// consumer (io_uring), up to the concurrency value where the kernel itself wakes one
    /// waiter per event (epoll). Set with `has_driver`.
    max_pollers: usize,
    /// A wake-up of a poller is already on its way; cleared when a thread starts polling
    /// and when a poller comes back from the kernel (it may have consumed the wake-up).
    wake_pending: bool,
    /// Emptied vectors that pollers reaped into, kept with their capacity for the next
    /// poll (at most one per poller), so that a poll does not grow a new one each time.
    spare: Vec<Vec<Completion<C>>>,
}

/// A packet as the queue holds it. A `Completion` is 96 bytes (for an 8-byte context),
/// most of them for I/O results (buffer, accepted socket, address); the queue moves every
/// packet between threads, so a posted packet travels as its three words and an I/O
/// completion in a box (one allocation beside the operation's own, for I/O only).
enum Packet<C> {
    /// A packet with no buffer, socket or address and a byte count: what `post` queues.
    Plain { key: usize, bytes: usize, context: C },
    /// Anything else (I/O completions with a buffer, an error, a socket, an address).
    Boxed(Box<Completion<C>>),
}

impl<C> Packet<C> {
    fn new(c: Completion<C>) -> Self {
        match c {
            Completion {
                key,
                result: Ok(bytes),
                context,
                buffer: None,
                memory: None,
                accepted: None,
                addr: None,
            } => Packet::Plain { key, bytes, context },
            c => Packet::Boxed(Box::new(c)),
        }
    }

    fn into_completion(self) -> Completion<C> {
        match self {
            Packet::Plain { key, bytes, context } => Completion::posted(key, bytes, context),
            Packet::Boxed(c) => *c,
        }
    }
}

/// A thread parked in `get`.
struct Waiter<C> {
    /// `WAITING` while on the `waiters` stack; set to `HANDED` or `CLOSED` under the port
    /// lock by the thread that removes it from the stack.
    parker: Parker,
    /// The packet handed over; written under the port lock just before `HANDED`.
    slot: Mutex<Option<Completion<C>>>,
}

/// The waiter's slot holds its packet.
const HANDED: u32 = 1;
/// The port closed while the thread waited.
const CLOSED: u32 = 2;
/// The thread was chosen to become the poller; it is no longer on the stack.
const POLL: u32 = 3;

impl<C> Waiter<C> {
    fn new() -> Self {
        Self { parker: Parker::new(), slot: Mutex::new(None) }
    }

    /// Gives the waiter its packet. Called under the port lock, after popping the waiter.
    fn hand(&self, packet: Completion<C>) {
        *lock(&self.slot) = Some(packet);
        self.parker.set(HANDED);
    }
}

/// Where a wait puts the packets it takes: the caller's vector (`get_many`), or a single
/// slot (`get`, which then allocates nothing).
trait Sink<C> {
    fn put(&mut self, packet: Completion<C>);

    /// The caller's vector, if the sink is one: a poller reaps straight into it, so that
    /// the packets it keeps are not moved a second time (a `Completion` is over 100 bytes).
    fn as_vec(&mut self) -> Option<&mut Vec<Completion<C>>> {
        None
    }
}

impl<C> Sink<C> for Vec<Completion<C>> {
    fn put(&mut self, packet: Completion<C>) {
        self.push(packet);
    }

    fn as_vec(&mut self) -> Option<&mut Vec<Completion<C>>> {
        Some(self)
    }
}

impl<C> Sink<C> for Option<Completion<C>> {
    fn put(&mut self, packet: Completion<C>) {
        debug_assert!(self.is_none(), "a single get took two packets");
        *self = Some(packet);
    }
}

/// Threads to wake once the port lock is released: waking under the lock would make the
/// woken thread contend for it at once.
#[must_use = "the chosen threads must be woken after unlocking"]
struct Wakeups<C> {
    /// Parked waiters whose state was set (handed a packet, or made the poller).
    woken: Vec<Arc<Waiter<C>>>,
    /// The poller must be brought out of the kernel: packets are queued that it may take.
    poller: bool,
}

impl<C> Wakeups<C> {
    fn none() -> Self {
        Self { woken: Vec::new(), poller: false }
    }
}

/// Moves up to `max` queued packets into `out`, oldest first.
fn pop_into<C>(queue: &Queue<Packet<C>>, out: &mut impl Sink<C>, max: usize) -> usize {
    let mut n = 0;
    while n < max {
        let Some(packet) = queue.pop() else { break };
        out.put(packet.into_completion());
        n += 1;
    }
    n
}

impl<C: Send + 'static> Inner<C> {
    /// Takes a running slot if the concurrency limit allows (P9).
    #[inline]
    fn try_slot(&self) -> bool {
        let mut r = self.running.load(SeqCst);
        while r < self.concurrency {
            match self.running.compare_exchange_weak(r, r + 1, SeqCst, SeqCst) {
                Ok(_) => return true,
                Err(now) => r = now,
            }
        }
        false
    }

    /// Gives back a slot that only this thread could have made anyone wait for: one taken
    /// a moment ago by [`try_slot`](Self::try_slot) under the lock, or this thread's own
    /// slot in `get`'s slow path (under the lock; the thread re-checks the queue itself
    /// before it could park). Everywhere else use [`give_slot`](Self::give_slot).
    fn undo_slot(&self) {
        let prev = self.running.fetch_sub(1, SeqCst);
        debug_assert!(prev > 0, "a slot was given back with running == 0");
    }

    /// Gives back a running slot from outside the lock (`blocking`, thread exit, `get` on
    /// another port), then releases waiters if any thread waits (the `parked` protocol).
    fn give_slot(&self) {
        let given = self.running.fetch_update(SeqCst, SeqCst, |r| r.checked_sub(1)).is_ok();
        debug_assert!(given, "a slot was given back with running == 0");
        fence(SeqCst);
        if self.parked.load(SeqCst) > 0 {
            self.release_locked();
        }
    }

    /// A packet was queued or a slot freed while threads wait: hand packets to them (or
    /// wake the poller) under the lock.
    #[cold]
    #[inline(never)]
    fn release_locked(&self) {
        let wake = {
            let mut st = lock(&self.state);
            self.release(&mut st)
        };
        self.wake(wake);
    }

    /// Leaves `get`'s locked path: restores the invariants on `waiters` ([`release`]),
    /// unlocks, wakes the threads chosen, and hands the kernel anything left queued after
    /// a transient submit failure.
    ///
    /// [`release`]: Self::release
    fn leave(&self, mut st: MutexGuard<'_, State<C>>) {
        let wake = self.release(&mut st);
        drop(st);
        self.wake(wake);
        self.flush();
    }

    /// Restores the invariants on `waiters`: hands queued packets to the most recent
    /// waiters while the concurrency limit allows; then, if I/O may complete and nobody is
    /// polling, makes the most recent waiter the poller; and if packets are still queued
    /// with a slot free while a poller sits in the kernel, asks for it to be woken.
    ///
    /// A packet goes to a waiter only after this thread has won a running slot for it
    /// (`try_slot`) and popped it from the queue: the slot, the packet and the waiter's
    /// state change together under the lock (P7). If the pop finds the queue empty (a
    /// lock-free `get` took the packet), the slot is given back.
    fn release(&self, st: &mut State<C>) -> Wakeups<C> {
        let mut wake = Wakeups::none();
        // Every change of `parked` is made under this lock, so this load sees the latest.
        debug_assert_eq!(
            self.parked.load(SeqCst),
            st.waiters.len() + st.pollers,
            "`parked` no longer mirrors the waiters and the pollers"
        );
        if st.waiters.is_empty() && st.pollers == 0 {
            return wake; // the common case on a busy port: nothing to hand, promote or wake
        }
        while !st.waiters.is_empty() && self.try_slot() {
            let Some(packet) = self.queue.pop() else {
                // Only a lock-free `get` can have failed `try_slot` meanwhile, and it goes
                // on to the locked path, which re-checks after this lock is released.
                self.undo_slot();
                break;
            };
            let Some(w) = st.waiters.pop() else { unreachable!("checked non-empty above") };
            self.parked.fetch_sub(1, SeqCst);
            w.hand(packet.into_completion());
            wake.woken.push(w);
        }
        let slot_free = self.running.load(SeqCst) < self.concurrency;
        if st.has_driver && st.pollers == 0 && slot_free && self.queue.is_empty() {
            if let Some(w) = st.waiters.pop() {
                // It counts in `parked` again once it sets `polling` (and then re-checks).
                self.parked.fetch_sub(1, SeqCst);
                w.parker.set(POLL);
                wake.woken.push(w);
            }
        }
        if st.pollers > 0 && !st.wake_pending && ((slot_free && !self.queue.is_empty()) || st.closed) {
            // Packets a poller may take sit in the queue and nobody parked can take them,
            // or the port is closed: bring one out of the kernel (one wake-up on its way at
            // a time; each poller that comes back clears the flag, so after `close` they
            // leave one by one).
            st.wake_pending = true;
            wake.poller = true;
        }
        wake
    }

    /// The backend now exists (`driver` is set): records it under the lock, with how many
    /// threads may poll it at once, and gives threads already parked a poller among them.
    fn driver_installed(&self) {
        let wake = {
            let mut st = lock(&self.state);
            st.has_driver = true;
            st.max_pollers = self.driver.get().map_or(1, Driver::max_pollers).clamp(1, self.concurrency);
            self.release(&mut st)
        };
        self.wake(wake);
    }

    /// Wakes what [`release`](Self::release) chose; call after unlocking.
    fn wake(&self, wake: Wakeups<C>) {
        for w in wake.woken {
            w.parker.wake();
        }
        if wake.poller {
            if let Some(d) = self.driver.get() {
                d.wake();
            }
        }
    }
}

impl<C: Send + 'static> Account for PortRef<C> {
    fn uncount(&self) {
        if let Some(inner) = self.0.upgrade() {
            inner.uncount();
        }
    }
}

/// The thread-local record's reference to a port: weak, so it never keeps one alive.
struct PortRef<C>(Weak<Inner<C>>);

impl<C: Send + 'static> Inner<C> {
    fn uncount(&self) {
        // Submissions queued after a transient submit failure go to the kernel now.
        if let Some(d) = self.driver.get() {
            d.flush();
        }
        self.give_slot();
    }

    fn flush(&self) {
        if let Some(d) = self.driver.get() {
            d.flush();
        }
    }

    fn settle(&self) {
        if let Some(d) = self.driver.get() {
            d.settle();
        }
    }
}

/// The instant a wait gives up, or `None` to wait forever. Timeouts too large to
/// represent (such as `Duration::MAX`) mean forever, never an overflow.
fn deadline_after(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

impl<C: Send + 'static> CompletionPort<C> {
    /// Creates a port that lets at most `concurrency` threads run at once; `0` means the
    /// number of logical CPUs (docs/semantics.md P1).
    ///
    /// Its I/O backend, created at the first `associate`, is the one the environment
    /// variable `COMPLETION_PORT_BACKEND` names (`uring`, `epoll` or `auto`; unset means
    /// `auto`: io_uring where it can be set up, else epoll). See [`Backend`].
    pub fn new(concurrency: usize) -> Self {
        Self::build(concurrency, None)
    }

    /// Creates a port as [`new`](Self::new) does, with its I/O backend chosen here rather
    /// than by `COMPLETION_PORT_BACKEND`.
    pub fn with_backend(concurrency: usize, backend: Backend) -> Self {
        Self::build(concurrency, Some(backend))
    }

    /// The backend the port's I/O runs on, or `None` before the first `associate` creates it.
    pub fn backend(&self) -> Option<Backend> {
        self.inner.driver.get().and_then(Driver::kind)
    }

    fn build(concurrency: usize, backend: Option<Backend>) -> Self {
        let concurrency = if concurrency == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            concurrency
        };
        Self {
            inner: Arc::new(Inner {
                concurrency,
                parked: AtomicUsize::new(0),
                closed: AtomicBool::new(false),
                running: CachePadded::new(AtomicUsize::new(0)),
                posting: std::array::from_fn(|_| CachePadded::new(AtomicUsize::new(0))),
                queue: Queue::new(),
                state: CachePadded::new(Mutex::new(State {
                    waiters: Vec::new(),
                    closed: false,
                    has_driver: false,
                    pollers: 0,
                    max_pollers: 1,
                    wake_pending: false,
                    spare: Vec::new(),
                })),
                driver: OnceLock::new(),
                backend,
                registry: Default::default(),
                deferring: Default::default(),
            }),
        }
    }

    /// The port's kernel backend and descriptor registry, creating the backend on first
    /// use. A creation failure is logged and returned; the port keeps working for posts.
    pub(crate) fn driver(&self) -> io::Result<(&Driver<C>, &std::sync::Arc<Registry>)> {
        if let Some(d) = self.inner.driver.get() {
            return Ok((d, &self.inner.registry));
        }
        let choice = match self.inner.backend {
            Some(b) => b,
            None => Backend::from_env()?,
        };
        let new = Driver::open(choice).inspect_err(|e| {
            tracing::warn!(error = %e, backend = %choice, "no I/O backend; the port cannot do I/O");
        })?;
        // If another thread won the race, its driver stays and ours is dropped (unused).
        let _ = self.inner.driver.set(new);
        self.inner.driver_installed();
        let d = self.inner.driver.get().ok_or_else(|| io::Error::other("backend vanished"))?;
        tracing::debug!(backend = d.name(), "completion port backend ready");
        Ok((d, &self.inner.registry))
    }

    /// The port's kernel backend if one was created.
    pub(crate) fn existing_driver(&self) -> Option<&Driver<C>> {
        self.inner.driver.get()
    }

    /// loom test hook: a port whose backend is the model kernel of `sys/fake.rs`, as
    /// after a first `associate`, so that the poller protocol runs as with I/O attached.
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn with_fake_backend(concurrency: usize) -> Self {
        let port = Self::new(concurrency);
        port.install_fake_backend();
        port
    }

    /// loom test hook: like [`with_fake_backend`](Self::with_fake_backend), with a model
    /// kernel that lets up to `pollers` threads wait at once and wakes one per entry
    /// (epoll's behaviour), instead of one waiter (io_uring's).
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn with_fake_backend_pollers(concurrency: usize, pollers: usize) -> Self {
        let port = Self::new(concurrency);
        port.install_fake(pollers);
        port
    }

    /// loom test hook: gives this port the model kernel of `sys/fake.rs` as its backend,
    /// exactly as the first `associate` installs a real one in [`driver`](Self::driver),
    /// possibly while threads wait in `get`. Does nothing if the port has a backend.
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn install_fake_backend(&self) {
        self.install_fake(1);
    }

    #[cfg(loom)]
    fn install_fake(&self, pollers: usize) {
        if self.inner.driver.set(Driver::fake(pollers)).is_err() {
            return;
        }
        self.inner.driver_installed();
    }

    #[cfg(loom)]
    fn fake_kernel(&self) -> &crate::sys::fake::Fake<C> {
        match self.inner.driver.get().and_then(Driver::as_fake) {
            Some(f) => f,
            None => panic!("a loom test hook was called on a port made without with_fake_backend"),
        }
    }

    /// loom test hook: an I/O operation completes in the model kernel with `bytes`
    /// transferred. Its packet reaches the port only through the poller (or `drain`).
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn fake_complete(&self, key: usize, bytes: usize, context: C) {
        self.fake_kernel().complete(key, bytes, context);
    }

    /// loom test hook: an I/O operation enters the model kernel and stays in flight until
    /// `close` cancels it (its packet then carries `ECANCELED`).
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn fake_submit(&self, key: usize, context: C) {
        self.fake_kernel().submit_pending(key, context);
    }

    /// Runs `f`; operations this thread submits inside it are handed to the kernel with one
    /// system call when `f` returns, instead of one call each. Nested batches submit at the
    /// end of the outermost one. This is the only place where an operation may wait in
    /// user space after the call that started it returned (docs/semantics.md H9): do not
    /// wait inside `f` for an operation submitted inside it. Without a backend (no handle
    /// associated yet) this simply runs `f`.
    pub fn batch<R>(&self, f: impl FnOnce() -> R) -> R {
        match self.existing_driver() {
            Some(d) => d.batch(f),
            None => f(),
        }
    }

    /// Turns **deferred submission** on or off (docs/semantics.md H9; off by default).
    ///
    /// While it is on, operations that a thread starts after [`get`](Self::get) or
    /// [`get_many`](Self::get_many) handed it packets are not handed to the kernel one
    /// system call each: they go together, in the same system call, when that thread next
    /// waits on this port (or finds nothing queued), enters [`blocking`](Self::blocking),
    /// or calls [`flush`](Self::flush). Whatever the thread does instead (blocks
    /// elsewhere, computes, exits), a backend thread (the *sentry*) hands them to the kernel
    /// within ten milliseconds. This is what [`batch`](Self::batch) does for one closure,
    /// made implicit for a worker loop that takes a packet, starts the next operation and
    /// comes back; the C API turns it on for every port. Only operations on this port's
    /// handles are deferred, and turning it off takes effect at each thread's next wait.
    /// On the epoll backend it changes nothing (operations start in their call there).
    pub fn defer_submissions(&self, on: bool) {
        self.inner.deferring.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether deferred submission is on ([`defer_submissions`](Self::defer_submissions)).
    pub fn defers_submissions(&self) -> bool {
        self.inner.deferring.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Hands to the kernel, now, the operations this thread started and deferred
    /// ([`defer_submissions`](Self::defer_submissions), [`batch`](Self::batch) excepted:
    /// a batch still open submits when it ends).
    pub fn flush(&self) {
        self.inner.settle();
    }

    /// The concurrency limit the port was created with (after resolving `0`).
    pub fn concurrency(&self) -> usize {
        self.inner.concurrency
    }

    /// Queues a packet carrying exactly `key`, `bytes` and `context`
    /// (`PostQueuedCompletionStatus`, docs/semantics.md P2). Never blocks.
    ///
    /// If a thread is waiting and the concurrency limit allows, the packet goes straight to
    /// the most recent waiter (P6).
    ///
    /// # Errors
    ///
    /// [`PostError::Closed`], holding `context`, if the port is closed.
    pub fn post(&self, key: usize, bytes: usize, context: C) -> Result<(), PostError<C>> {
        match self.enqueue(Packet::Plain { key, bytes, context }) {
            Ok(()) => Ok(()),
            Err(Packet::Plain { context, .. }) => Err(PostError::Closed(context)),
            Err(Packet::Boxed(c)) => Err(PostError::Closed(c.context)),
        }
    }

    /// Queues a whole packet as it is: its key, result, context, buffer and the rest
    /// (docs/semantics.md P2). This is how an operation that an eager call
    /// ([`Handle::send_eager`](crate::Handle::send_eager), [`Handle::recv_eager`](crate::Handle::recv_eager))
    /// finished at once still gets its packet, as Windows queues one for an overlapped call
    /// that completes immediately unless skip-on-success is set; or how a packet taken
    /// from the port is handed on to another thread. Never blocks.
    ///
    /// # Errors
    ///
    /// The packet back if the port is closed.
    pub fn post_completion(&self, completion: Completion<C>) -> Result<(), Box<Completion<C>>> {
        self.enqueue(Packet::new(completion)).map_err(|p| Box::new(p.into_completion()))
    }

    /// Queues a finished packet, or gives it back if the port is closed.
    ///
    /// Takes no lock unless a thread waits: the packet goes into the lock-free queue, and
    /// only then, if `parked` shows a waiting thread, [`Inner::release`] runs under the lock
    /// to hand it over (to the most recent waiter, P6) or to wake the poller.
    fn enqueue(&self, packet: Packet<C>) -> Result<(), Packet<C>> {
        let inner = &*self.inner;
        // Enter the post gate; `drain` waits for everyone inside it (see `Inner::posting`).
        let gate = &inner.posting[post_stripe()];
        gate.fetch_add(1, SeqCst);
        if inner.closed.load(SeqCst) {
            gate.fetch_sub(1, SeqCst);
            return Err(packet);
        }
        inner.queue.push(packet);
        gate.fetch_sub(1, SeqCst);
        // The `parked` protocol: queue, fence, then look for waiters.
        fence(SeqCst);
        if inner.parked.load(SeqCst) > 0 {
            inner.release_locked();
        }
        Ok(())
    }

    /// Waits for one packet (`GetQueuedCompletionStatus`, docs/semantics.md P3).
    ///
    /// `timeout`: `None` waits forever, `Some(Duration::ZERO)` polls without blocking, and
    /// any other value waits at least that long (never less; values too large to represent
    /// mean forever).
    ///
    /// # Errors
    ///
    /// * [`GetError::TimedOut`]: the timeout passed; nothing was consumed.
    /// * [`GetError::Closed`]: the port was closed before or during the wait.
    ///
    /// A packet whose operation failed is **not** an error here: it is returned as
    /// `Ok(completion)` with `completion.result` holding the OS error.
    pub fn get(&self, timeout: Option<Duration>) -> Result<Completion<C>, GetError> {
        let mut out = None;
        self.wait_into(&mut out, 1, timeout)?;
        out.ok_or(GetError::TimedOut)
    }

    /// Removes up to `max` packets in FIFO order in one call
    /// (`GetQueuedCompletionStatusEx`, docs/semantics.md P4). Returns at least one packet, or an
    /// error as [`get`](Self::get) does. The calling thread counts once against the
    /// concurrency limit, however many packets it takes.
    ///
    /// # Errors
    ///
    /// [`GetError::InvalidArgument`] if `max == 0`; otherwise as [`get`](Self::get).
    pub fn get_many(&self, max: usize, timeout: Option<Duration>) -> Result<Vec<Completion<C>>, GetError> {
        let mut out = Vec::new();
        self.get_many_into(&mut out, max, timeout)?;
        Ok(out)
    }

    /// Like [`get_many`](Self::get_many), appending to a caller's vector so that a worker
    /// loop allocates nothing. Returns how many packets were appended (at least one).
    ///
    /// # Errors
    ///
    /// As [`get_many`](Self::get_many).
    pub fn get_many_into(
        &self,
        out: &mut Vec<Completion<C>>,
        max: usize,
        timeout: Option<Duration>,
    ) -> Result<usize, GetError> {
        if max == 0 {
            return Err(GetError::InvalidArgument("get_many needs max >= 1"));
        }
        self.wait_into(out, max, timeout)
    }

    fn id(&self) -> usize {
        arc_addr(&self.inner)
    }

    fn weak_ref(&self) -> Box<dyn Account> {
        Box::new(PortRef(downgrade(&self.inner)))
    }

    /// The thread now runs on this port (`running` already counts it).
    fn now_counted(&self) {
        if !assoc::set_counted(self.id(), || self.weak_ref()) {
            // The thread is exiting and cannot keep a record: give the slot back now.
            self.inner.uncount();
        }
    }

    fn wait_into(
        &self,
        out: &mut impl Sink<C>,
        max: usize,
        timeout: Option<Duration>,
    ) -> Result<usize, GetError> {
        let r = self.take_into(out, max, timeout);
        if self.defers_submissions() {
            if let Some(d) = self.existing_driver() {
                match r {
                    // The thread now works on its packets: what it submits waits until it
                    // comes back (H9, deferred submission).
                    Ok(_) => d.defer(),
                    // It leaves the port with nothing to work on: nothing waits for it.
                    Err(_) => d.settle(),
                }
            }
        }
        r
    }

    /// `wait_into` without deferred submission's bookkeeping.
    fn take_into(
        &self,
        out: &mut impl Sink<C>,
        max: usize,
        timeout: Option<Duration>,
    ) -> Result<usize, GetError> {
        let inner = &*self.inner;
        let id = self.id();
        // Calling `get` again ends this thread's running period (P9). On the lock-free path
        // the slot simply passes from the old period to the new one: `running` and the
        // thread's record do not change, and this thread, awake already, takes the oldest
        // packet ahead of any parked thread (as it would under the lock: no waiter could
        // take it meanwhile).
        if assoc::is_counted(id) && !inner.closed.load(SeqCst) {
            let n = match pop_into(&inner.queue, out, max) {
                0 => self.take_ready(out, max),
                n => n,
            };
            if n > 0 {
                // Anything left queued after a transient submit failure goes to the kernel.
                inner.flush();
                return Ok(n);
            }
        }
        let was_counted = assoc::begin_wait(id);
        let mut holds_slot = was_counted;
        if !was_counted && !inner.closed.load(SeqCst) && inner.try_slot() {
            holds_slot = true;
            let n = match pop_into(&inner.queue, out, max) {
                0 => self.take_ready(out, max),
                n => n,
            };
            if n > 0 {
                inner.flush();
                self.now_counted();
                return Ok(n);
            }
        }
        self.wait_locked(out, max, timeout, holds_slot)
    }

    /// The queue is empty and this thread holds a running slot: takes up to `max`
    /// completions the backend already holds without a system call (the epoll backend's
    /// page-cache reads, completed at submission), straight to `out`, as the poller would
    /// have queued them for this very thread to pop. Skips the port lock, becoming the
    /// poller, and the queue's boxing of each packet. The packets are the oldest the port
    /// knows of (the queue is empty). As on the queue's lock-free path, this thread,
    /// awake and running already, takes them ahead of any parked thread.
    fn take_ready(&self, out: &mut impl Sink<C>, max: usize) -> usize {
        let Some(drv) = self.existing_driver() else { return 0 };
        let n = drv.take_ready(max, |c| out.put(c));
        if n > 0 {
            // Delivered to the caller: `drain` no longer waits for them.
            drv.delivered(n);
        }
        n
    }

    /// `get`'s locked path: the queue was empty (or no slot was free, or the port closed).
    /// `holds_slot`: the thread holds a running slot it must give back first.
    #[inline(never)]
    fn wait_locked(
        &self,
        out: &mut impl Sink<C>,
        max: usize,
        timeout: Option<Duration>,
        holds_slot: bool,
    ) -> Result<usize, GetError> {
        let inner = &*self.inner;
        let deadline = deadline_after(timeout);
        let poll_only = timeout == Some(Duration::ZERO);
        let concurrency = inner.concurrency;
        let id = self.id();
        let mut polled_after_deadline = false;
        let mut st = lock(&inner.state);
        if holds_slot {
            // Nobody else needs to hear of this slot: this thread is about to use it (or
            // find the queue empty, in which case no waiter could use it either).
            inner.undo_slot();
        }
        loop {
            if st.closed {
                inner.leave(st);
                assoc::end_wait(id);
                return Err(GetError::Closed);
            }
            if inner.try_slot() {
                // The caller is awake already: it takes the oldest packets itself.
                let n = pop_into(&inner.queue, out, max);
                if n > 0 {
                    // If this thread was the poller, someone else must take over.
                    inner.leave(st);
                    self.now_counted();
                    return Ok(n);
                }
                inner.undo_slot();
            }
            let expired = poll_only || deadline.is_some_and(|d| Instant::now() >= d);
            // Looked up on every pass, under the lock: a copy taken when the call began
            // would miss a backend installed (first `associate`) while this thread waited.
            if let Some(drv) = self.existing_driver() {
                let slot_free = inner.running.load(SeqCst) < concurrency;
                if st.has_driver && st.pollers < st.max_pollers && slot_free && !polled_after_deadline {
                    // Become a poller: wait in the kernel (or just look, if out of time).
                    st.pollers += 1;
                    st.wake_pending = false;
                    // The `parked` protocol: announce, fence, re-check. A post that missed
                    // the announcement queued its packet before the fence: take it instead.
                    inner.parked.fetch_add(1, SeqCst);
                    fence(SeqCst);
                    if !inner.queue.is_empty() && inner.running.load(SeqCst) < concurrency {
                        st.pollers -= 1;
                        inner.parked.fetch_sub(1, SeqCst);
                        continue;
                    }
                    // Reaped into the caller's vector where it gave one (its packets from
                    // `base` on), else into a spare one.
                    let mut spare = None;
                    let reaped = match out.as_vec() {
                        Some(v) => v,
                        None => spare.insert(st.spare.pop().unwrap_or_default()),
                    };
                    let base = reaped.len();
                    drop(st);
                    let r = if expired { drv.peek(reaped) } else { drv.wait(deadline, reaped) };
                    polled_after_deadline = expired;
                    st = lock(&inner.state);
                    st.pollers -= 1;
                    st.wake_pending = false;
                    inner.parked.fetch_sub(1, SeqCst);
                    let n = reaped.len() - base;
                    // Nothing older is queued and a slot is free: the oldest of what was
                    // reaped goes straight to this thread, as the next pass would pop it,
                    // without boxing each packet into the queue and out again. The rest
                    // is queued for the others.
                    let direct =
                        if n > 0 && r.is_ok() && !st.closed && inner.queue.is_empty() && inner.try_slot() {
                            n.min(max)
                        } else {
                            0
                        };
                    for packet in reaped.drain(base + direct..) {
                        inner.queue.push(Packet::new(packet));
                    }
                    if let Some(mut reaped) = spare {
                        for packet in reaped.drain(..) {
                            out.put(packet);
                        }
                        if st.spare.len() < st.max_pollers {
                            st.spare.push(reaped);
                        }
                    }
                    // Counted as delivered only once handed out or queued, so `drain`
                    // never misses them.
                    drv.delivered(n);
                    if direct > 0 {
                        // As a pop on the next pass: someone else takes over polling, and
                        // any packets left queued go to waiters.
                        inner.leave(st);
                        self.now_counted();
                        return Ok(direct);
                    }
                    if let Err(e) = r {
                        // Not expected from a healthy ring. Stay a candidate poller (parking
                        // now would leave nobody reading the kernel), but back off briefly.
                        tracing::error!(error = %e, "waiting for I/O completions failed");
                        drop(st);
                        std::thread::sleep(Duration::from_millis(1));
                        st = lock(&inner.state);
                    }
                    // Under the lock: the next pass takes a packet or parks after the
                    // `parked` re-check; either way what was reaped is not stranded.
                    continue;
                }
            }
            if expired {
                inner.leave(st);
                assoc::end_wait(id);
                return Err(GetError::TimedOut);
            }
            // Park on our own futex word until handed a packet, closed, made the poller,
            // or out of time. Deferred submissions go to the kernel first.
            let me = Arc::new(Waiter::new());
            st.waiters.push(Arc::clone(&me));
            // The `parked` protocol: announce, fence, re-check. A post (or a freed slot)
            // whose thread missed the announcement is visible here: do not park beside it.
            inner.parked.fetch_add(1, SeqCst);
            fence(SeqCst);
            if inner.running.load(SeqCst) < concurrency
                && (!inner.queue.is_empty() || (st.has_driver && st.pollers == 0))
            {
                st.waiters.pop();
                inner.parked.fetch_sub(1, SeqCst);
                continue;
            }
            drop(st);
            inner.settle();
            let state = match me.parker.park(deadline) {
                Wake::Notified => me.parker.state(),
                Wake::TimedOut => {
                    let mut st = lock(&inner.state);
                    // Under the lock the parker's state tells whether we are still on the
                    // stack: a waker removes us and sets the state in one critical section.
                    let state = me.parker.state();
                    if state == Parker::WAITING {
                        if let Some(pos) = st.waiters.iter().rposition(|w| Arc::ptr_eq(w, &me)) {
                            st.waiters.remove(pos);
                            inner.parked.fetch_sub(1, SeqCst);
                        }
                        drop(st);
                        assoc::end_wait(id);
                        return Err(GetError::TimedOut);
                    }
                    state
                }
            };
            match state {
                HANDED => return Ok(self.handed(&me, out, max)),
                CLOSED => {
                    assoc::end_wait(id);
                    return Err(GetError::Closed);
                }
                _ => {
                    debug_assert_eq!(state, POLL);
                    st = lock(&inner.state);
                }
            }
        }
    }

    /// A parked thread was handed a packet (and counted as running by the hander).
    fn handed(&self, me: &Waiter<C>, out: &mut impl Sink<C>, max: usize) -> usize {
        let mut n = 0;
        if let Some(packet) = lock(&me.slot).take() {
            out.put(packet);
            n = 1;
        }
        if max > n && !self.inner.closed.load(SeqCst) {
            // A batch: this thread already counts as running, so it may take whatever
            // else is queued without another slot (GetQueuedCompletionStatusEx).
            n += pop_into(&self.inner.queue, out, max - n);
        }
        self.now_counted();
        n
    }

    /// Closes the port (docs/semantics.md P8): every thread blocked in `get` or `get_many` returns
    /// [`GetError::Closed`] promptly, later calls return it at once, and `post` fails.
    /// Closing twice is harmless. Packets still queued stay for [`drain`](Self::drain).
    ///
    /// With I/O attached, closing also refuses new operations and cancels every operation
    /// in flight (P10); their packets are collected by `drain`.
    pub fn close(&self) {
        let (woken, polling) = {
            let mut st = lock(&self.inner.state);
            if st.closed {
                return;
            }
            st.closed = true;
            // `SeqCst`, paired with the post gate (see `Inner::posting`).
            self.inner.closed.store(true, SeqCst);
            let woken = std::mem::take(&mut st.waiters);
            self.inner.parked.fetch_sub(woken.len(), SeqCst);
            for w in &woken {
                w.parker.set(CLOSED);
            }
            (woken, st.pollers > 0)
        };
        tracing::debug!(waiters = woken.len(), "completion port closed");
        for w in woken {
            w.parker.wake();
        }
        if let Some(d) = self.existing_driver() {
            d.close();
            if polling {
                d.wake();
            }
        }
    }

    /// Whether [`close`](Self::close) has been called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(SeqCst)
    }

    /// Closes the port if it is open, waits until every operation in flight has completed
    /// (close cancelled them), then removes and returns every packet still queued, in FIFO
    /// order, so the application can release their contexts and buffers (docs/semantics.md P10).
    /// Each packet is returned by exactly one `drain` call.
    ///
    /// An operation the kernel cannot cancel (a regular-file read already running) is
    /// waited for: its buffer cannot be freed before the kernel is done with it.
    pub fn drain(&self) -> Vec<Completion<C>> {
        self.close();
        // A `post` that passed its closed check before `close` may still be pushing its
        // packet: wait until it has (a few instructions; posts never block).
        for gate in &self.inner.posting {
            while load_latest(gate) != 0 {
                spin_yield();
            }
        }
        if let Some(drv) = self.existing_driver() {
            let mut reaped = Vec::new();
            let mut reaped_here = false;
            while drv.in_flight() > 0 {
                reaped_here = true;
                let slice = Instant::now() + Duration::from_millis(50);
                if let Err(e) = drv.wait(Some(slice), &mut reaped) {
                    tracing::warn!(error = %e, "waiting for cancelled operations");
                    std::thread::sleep(Duration::from_millis(1));
                }
                let n = reaped.len();
                for packet in reaped.drain(..) {
                    self.inner.queue.push(Packet::new(packet));
                }
                drv.delivered(n);
            }
            // Reaping here may have consumed the wake-up that `close` sent to the poller
            // before it entered the kernel; it would then wait there forever. The port is
            // closed, so nobody becomes the poller any more: if a thread still is one,
            // wake it again, now that this call reaps no more.
            if reaped_here && lock(&self.inner.state).pollers > 0 {
                drv.wake();
            }
        }
        // Under the lock, so that concurrent drains each return a FIFO run of packets.
        let _st = lock(&self.inner.state);
        let mut drained = Vec::with_capacity(self.inner.queue.len());
        pop_into(&self.inner.queue, &mut drained, usize::MAX);
        drained
    }

    /// Number of packets queued and not yet handed to any thread.
    pub fn queued(&self) -> usize {
        self.inner.queue.len()
    }

    /// Number of threads currently counted as running on this port (P9).
    pub fn running(&self) -> usize {
        load_latest(&self.inner.running)
    }

    /// Number of threads currently blocked in `get`/`get_many`: parked ones, plus the one
    /// waiting in the kernel for I/O completions, if any.
    pub fn waiting(&self) -> usize {
        let st = lock(&self.inner.state);
        st.waiters.len() + st.pollers
    }

    /// Runs `f`, which is about to block on something other than this port (a lock, a
    /// sleep, synchronous I/O), without counting the calling thread against the
    /// concurrency limit while it does (docs/semantics.md P9). A waiting thread may be released
    /// meanwhile. When `f` returns the thread counts again, even if that puts the port
    /// over its limit for a while.
    ///
    /// If the calling thread is not running on this port (it holds no packet from it),
    /// this simply runs `f`.
    pub fn blocking<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = self.blocking_guard();
        f()
    }

    /// The guard form of [`blocking`](Self::blocking): the thread stops counting until the
    /// guard is dropped. Drop it on the same thread.
    pub fn blocking_guard(&self) -> BlockingGuard<'_, C> {
        self.inner.settle();
        let uncounted = assoc::take_count(self.id());
        if uncounted {
            self.inner.uncount();
        }
        BlockingGuard { port: self, uncounted }
    }
}

/// While alive, the thread that made it does not count against the port's concurrency
/// limit. See [`CompletionPort::blocking`].
#[must_use = "the thread counts again as soon as the guard is dropped"]
pub struct BlockingGuard<'a, C: Send + 'static> {
    port: &'a CompletionPort<C>,
    uncounted: bool,
}

impl<C: Send + 'static> Drop for BlockingGuard<'_, C> {
    fn drop(&mut self) {
        let id = self.port.id();
        // If the thread took a packet from this port inside the section, it counts already.
        if self.uncounted && !assoc::is_counted(id) {
            // Unconditionally, even over the limit (P9): this thread is running already.
            self.port.inner.running.fetch_add(1, SeqCst);
            self.port.now_counted();
        }
    }
}

impl<C> Clone for CompletionPort<C> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner) }
    }
}

impl<C> fmt::Debug for CompletionPort<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = lock(&self.inner.state);
        f.debug_struct("CompletionPort")
            .field("concurrency", &self.inner.concurrency)
            .field("queued", &self.inner.queue.len())
            .field("waiting", &st.waiters.len())
            .field("running", &self.inner.running.load(SeqCst))
            .field("closed", &st.closed)
            .finish()
    }
}

impl<C> Drop for Inner<C> {
    fn drop(&mut self) {
        // Waiters borrow a `CompletionPort`, which holds a strong reference.
        let st = lock(&self.state);
        debug_assert!(st.waiters.is_empty(), "a port was dropped with threads waiting on it");
        // The queue's packets (and their contexts) are dropped with `queue` (P10).
    }
}
