//! One io_uring operation: its memory, its SQE, and the one round trip of its ownership
//! through the kernel's `user_data`.

use super::fixed::Slot;
use super::owner::Owner;
use crate::buffer::{Buffer, IoVecs};
use crate::completion::Completion;
use crate::op::Request;
use crate::sys::OpData;
use io_uring::{opcode, squeue, types};
use socket2::{SockAddr, SockAddrStorage};
use std::cell::UnsafeCell;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Weak};

/// An operation in flight. Lives in an `Arc` one strong reference of which is owned by the
/// kernel (through `user_data`) from `prepare` until `complete`.
pub(crate) struct Op<C> {
    /// Set by `Uring::cancel` before it queues the cancel SQE (read under the SQ lock).
    pub(crate) cancel_requested: AtomicBool,
    /// The handle's cancel epoch when the operation was submitted.
    pub(crate) epoch: u32,
    /// What the kernel works on. Touched only by the submitter before the SQE is pushed
    /// and by the reaper after the CQE arrived: never by two threads at once, never while
    /// the kernel owns it. Cancellers touch only the fields above.
    body: UnsafeCell<Option<Body<C>>>,
}

struct Body<C> {
    data: OpData<C>,
    /// The thread that last handed this operation to the kernel (H10).
    owner: Owner,
    /// How many times the reaper restarted it after its owner exited (H10).
    restarts: u32,
    /// Memory the kernel reads or writes besides the buffer: a socket address and the
    /// `msghdr`/`iovec` of `recvmsg`/`sendmsg`. It sits inside the `Arc` allocation, so
    /// its address is stable for the operation's life.
    /// Only accept, recv_from and send_to need it, so the common operations (reads,
    /// writes, receives, sends) do not pay for its size or its zeroing.
    scratch: Option<Box<Scratch>>,
}

// SAFETY: `body` is accessed by one thread at a time (see its invariant), and `C: Send`
// lets it move between threads; the other fields are atomics or immutable.
unsafe impl<C: Send> Sync for Op<C> {}
// SAFETY: as above.
unsafe impl<C: Send> Send for Op<C> {}

impl Scratch {
    fn new() -> Box<Self> {
        Box::new(Scratch {
            addr: SockAddrStorage::zeroed(),
            addr_len: 0,
            iov: IoVecs::Many(Vec::new()),
            // SAFETY: `msghdr` is a plain C struct for which all-zero is valid.
            msg: unsafe { mem::zeroed() },
        })
    }
}

struct Scratch {
    addr: SockAddrStorage,
    addr_len: libc::socklen_t,
    /// The buffer's segments as the kernel reads them (`msg` or a readv/writev SQE points
    /// here): inline for one, on the heap for several; either way at a stable address.
    iov: IoVecs,
    msg: libc::msghdr,
}

// SAFETY: the raw pointers in `iov` and `msg` point only into the same `Op` allocation
// (its buffer and `addr`) or into the buffer's memory, which the operation owns (a raw
// buffer's owner promised it to the operation: `Buffer::from_raw_parts_mut`); the whole
// moves between threads as one; nothing else aliases them.
unsafe impl Send for Scratch {}
// SAFETY: as above; shared references to `Scratch` are never used to reach the pointees.
unsafe impl Sync for Scratch {}

/// A cancellation handle: weak, so it keeps the allocation (and therefore the `user_data`
/// value) from being reused while it exists, but never the buffer or context.
pub(crate) struct OpRef<C>(Weak<Op<C>>);

impl<C> OpRef<C> {
    /// The operation, if its completion has not been produced yet.
    pub(crate) fn upgrade(&self) -> Option<Arc<Op<C>>> {
        self.0.upgrade()
    }

    pub(crate) fn is_done(&self) -> bool {
        self.0.strong_count() == 0
    }
}

impl<C> Op<C> {
    /// The `user_data` this operation travels under.
    pub(crate) fn user_data(self: &Arc<Self>) -> u64 {
        Arc::as_ptr(self) as u64
    }
}

/// Builds the operation's memory and SQE. The returned `user_data` owns one strong
/// reference to the operation; exactly one of [`complete`] (after its CQE) or
/// [`reclaim`] (if the SQE never reached the kernel) takes it back.
pub(crate) fn prepare<C>(data: OpData<C>, epoch: u32) -> (squeue::Entry, OpRef<C>, u64) {
    let mut op = Arc::new(Op {
        cancel_requested: AtomicBool::new(false),
        epoch,
        body: UnsafeCell::new(Some(Body { data, owner: Owner::current(), restarts: 0, scratch: None })),
    });
    let entry = {
        let op = Arc::get_mut(&mut op).expect("a fresh Arc is unique");
        match op.body.get_mut() {
            Some(body) => build_entry(body),
            None => unreachable!("a fresh operation has its body"),
        }
    };
    let op_ref = OpRef(Arc::downgrade(&op));
    let user_data = Arc::into_raw(op) as u64;
    (entry.user_data(user_data), op_ref, user_data)
}

/// Takes back the kernel's reference to an operation whose CQE arrived.
///
/// # Safety
///
/// `user_data` must come from [`prepare`] (or [`after_kernel_cancel`]'s caller re-leaking it)
/// with the same `C`, and be passed here exactly once per leak, once the kernel no longer
/// uses the operation's memory.
pub(crate) unsafe fn from_user_data<C>(user_data: u64) -> Arc<Op<C>> {
    // SAFETY: per this function's contract, the pointer came from `Arc::into_raw` and this
    // strong reference has not been taken back yet.
    unsafe { Arc::from_raw(user_data as *const Op<C>) }
}

/// The most times one operation is restarted after its owner exited. Each restart needs a
/// new owner's exit, so a real program stays far below it; it is a backstop against a
/// kernel that keeps cancelling (docs/semantics.md H10).
pub(crate) const MAX_RESTARTS: u32 = 64;

/// What to do with an operation the kernel cancelled without being asked to.
pub(crate) enum KernelCancel {
    /// Its owner exited: push this entry again (the owner is now the calling thread).
    Restart(squeue::Entry),
    /// Complete it with this result (a negated errno, or a count).
    Complete(i32),
}

/// Decides, for an operation the kernel cancelled on its own, whether its owner's exit is
/// the reason (then it is restarted from the calling thread, which becomes its owner) or
/// something else is (then the kernel could not run it: `EAGAIN`).
///
/// A zero-length receive whose owner exited is not restarted: the kernel fails such a
/// poll only when its readiness fires, so it completes, as it would have had the thread
/// lived; a restart could find the data already taken by another receive and wait forever.
pub(crate) fn after_kernel_cancel<C>(op: &Arc<Op<C>>) -> KernelCancel {
    // SAFETY: called by the reaper after the operation's CQE arrived and before it is
    // pushed again or completed: the kernel no longer uses the body and no other thread
    // touches it.
    let body = unsafe { &mut *op.body.get() };
    let Some(body) = body.as_mut() else { unreachable!("an operation in flight has its body") };
    if body.owner.is_alive() || body.restarts >= MAX_RESTARTS {
        return KernelCancel::Complete(-libc::EAGAIN);
    }
    let zero_length = body.data.buffer.as_ref().is_some_and(|b| b.room() == 0);
    if matches!(body.data.request, Request::Recv) && zero_length {
        return KernelCancel::Complete(0);
    }
    body.owner = Owner::current();
    body.restarts += 1;
    KernelCancel::Restart(build_entry(body).user_data(op.user_data()))
}

/// The handle an operation runs on.
pub(crate) fn handle_epoch<C>(op: &Arc<Op<C>>) -> u32 {
    // SAFETY: as in `after_kernel_cancel`: only the reaper, between CQE and re-push, calls this.
    let body = unsafe { &*op.body.get() };
    body.as_ref().map_or(0, |b| b.data.handle.cancel_epoch())
}

/// The SQE for `op`, pointing into `op`'s own allocation and buffer.
///
/// A contiguous buffer goes to the plain opcodes (`Read`, `Write`, `Recv`, `Send`); a
/// scatter/gather list to `Readv`/`Writev`/`RecvMsg`/`SendMsg`, with its `iovec`s in the
/// operation's scratch memory.
fn build_entry<C>(op: &mut Body<C>) -> squeue::Entry {
    let fills = op.data.request.fills_buffer();
    let vectored = op.data.buffer.as_ref().is_some_and(Buffer::is_vectored);
    let room = op.data.buffer.as_ref().map_or(0, Buffer::room);
    let (buf_ptr, len) = match op.data.buffer.as_mut() {
        Some(b) if !vectored => {
            let region = if fills { b.read_region() } else { b.write_region() };
            region.map_or((std::ptr::null_mut(), 0), |(p, n)| (p, n as u32))
        }
        _ => (std::ptr::null_mut(), 0),
    };
    // The segments in scratch memory, for the requests that pass an iovec array.
    let needs_iov = vectored || matches!(op.data.request, Request::RecvFrom | Request::SendTo { .. });
    if needs_iov {
        let s = op.scratch.get_or_insert_with(Scratch::new);
        s.iov = match op.data.buffer.as_mut() {
            Some(b) if fills => b.read_iovecs(),
            Some(b) => b.write_iovecs(),
            None => IoVecs::Many(Vec::new()),
        };
        s.msg.msg_iov = s.iov.as_slice().as_ptr().cast_mut();
        s.msg.msg_iovlen = s.iov.as_slice().len();
        s.msg.msg_name = std::ptr::null_mut();
        s.msg.msg_namelen = 0;
    }
    // The descriptor by its registered slot (`fixed.rs`) where it has one, else by number:
    // the same entry either way, built for the type the kernel is to look up.
    let slot = op.data.handle.state.as_ref().and_then(|s| s.downcast_ref::<Slot>()).map(|s| s.index);
    let raw = op.data.handle.fd.as_raw_fd();
    macro_rules! entry {
        ($fd:expr) => {{
            let fd = $fd;
            match &op.data.request {
                Request::ReadAt { offset } if vectored => {
                    let iov = op.scratch.as_ref().map_or(&[][..], |s| s.iov.as_slice());
                    opcode::Readv::new(fd, iov.as_ptr(), iov.len() as u32).offset(*offset).build()
                }
                Request::WriteAt { offset } if vectored => {
                    let iov = op.scratch.as_ref().map_or(&[][..], |s| s.iov.as_slice());
                    opcode::Writev::new(fd, iov.as_ptr(), iov.len() as u32).offset(*offset).build()
                }
                Request::ReadAt { offset } => opcode::Read::new(fd, buf_ptr, len).offset(*offset).build(),
                Request::WriteAt { offset } => opcode::Write::new(fd, buf_ptr, len).offset(*offset).build(),
                Request::Sync { data_only } => {
                    let flags =
                        if *data_only { types::FsyncFlags::DATASYNC } else { types::FsyncFlags::empty() };
                    opcode::Fsync::new(fd).flags(flags).build()
                }
                Request::Accept => {
                    let s = op.scratch.get_or_insert_with(Scratch::new);
                    s.addr_len = s.addr.size_of();
                    let addr = (&mut s.addr as *mut SockAddrStorage).cast::<libc::sockaddr>();
                    opcode::Accept::new(fd, addr, &mut s.addr_len).flags(libc::SOCK_CLOEXEC).build()
                }
                Request::Connect { addr } => {
                    opcode::Connect::new(fd, addr.as_ptr().cast::<libc::sockaddr>(), addr.len()).build()
                }
                // docs/semantics.md N6: a zero-length receive waits for readability and consumes nothing.
                Request::Recv if room == 0 => opcode::PollAdd::new(fd, libc::POLLIN as u32).build(),
                Request::Recv if vectored => {
                    let s = op.scratch.get_or_insert_with(Scratch::new);
                    opcode::RecvMsg::new(fd, &mut s.msg).build()
                }
                Request::Send if vectored => {
                    let s = op.scratch.get_or_insert_with(Scratch::new);
                    opcode::SendMsg::new(fd, &s.msg).flags(libc::MSG_NOSIGNAL as u32).build()
                }
                Request::Recv => opcode::Recv::new(fd, buf_ptr, len).build(),
                Request::Send => opcode::Send::new(fd, buf_ptr, len).flags(libc::MSG_NOSIGNAL).build(),
                Request::Shutdown { how } => {
                    let how = match how {
                        std::net::Shutdown::Read => libc::SHUT_RD,
                        std::net::Shutdown::Write => libc::SHUT_WR,
                        std::net::Shutdown::Both => libc::SHUT_RDWR,
                    };
                    opcode::Shutdown::new(fd, how).build()
                }
                Request::RecvFrom => {
                    let s = op.scratch.get_or_insert_with(Scratch::new);
                    s.msg.msg_name = (&mut s.addr as *mut SockAddrStorage).cast();
                    s.msg.msg_namelen = s.addr.size_of();
                    opcode::RecvMsg::new(fd, &mut s.msg).build()
                }
                Request::SendTo { addr } => {
                    let s = op.scratch.get_or_insert_with(Scratch::new);
                    // `addr` lives in the same allocation (inside `data.request`).
                    s.msg.msg_name = addr.as_ptr() as *mut libc::c_void;
                    s.msg.msg_namelen = addr.len();
                    opcode::SendMsg::new(fd, &s.msg).flags(libc::MSG_NOSIGNAL as u32).build()
                }
            }
        }};
    }
    match slot {
        Some(index) => entry!(types::Fixed(index)),
        None => entry!(types::Fd(raw)),
    }
}

/// Moves the body out of an operation the kernel is done with (or never saw).
fn take_body<C>(op: Arc<Op<C>>) -> Body<C> {
    // SAFETY: callers own the kernel's reference after the CQE (or a failed push), so the
    // kernel no longer uses the body, and the body's invariant says no other thread
    // touches it; cancellers holding a strong reference read only the atomics.
    let body = unsafe { (*op.body.get()).take() };
    match body {
        Some(body) => body,
        None => unreachable!("an operation completed twice"),
    }
}

/// Gives back the context and buffer of an operation whose SQE never reached the kernel.
pub(crate) fn reclaim<C>(user_data: u64) -> (C, Option<Buffer>) {
    // SAFETY: called by `Uring::submit` only when the push failed, so the kernel never saw
    // `user_data`, and no CQE will hand it back a second time.
    let op = unsafe { from_user_data::<C>(user_data) };
    let body = take_body(op);
    (body.data.context, body.data.buffer)
}

/// Turns a CQE into the operation's one packet (docs/semantics.md H2, H3).
pub(crate) fn complete<C>(op: Arc<Op<C>>, res: i32) -> Completion<C> {
    let Body { data, scratch, restarts, .. } = take_body(op);
    let OpData { handle, key, request, mut buffer, context } = data;
    let mut completion = Completion::io(key, context);
    completion.result = if res == -libc::EISCONN && restarts > 0 && matches!(request, Request::Connect { .. })
    {
        // The first attempt connected before its owner's exit cancelled the wait for it;
        // the restart must not report that as a failure (H10).
        Ok(0)
    } else if res < 0 {
        Err(io::Error::from_raw_os_error(-res))
    } else {
        let n = res as usize;
        let zero_length = buffer.as_ref().is_some_and(|b| b.room() == 0);
        match request {
            // A zero-length receive is a poll: `res` is the ready mask; nothing moved.
            Request::Recv if zero_length => Ok(0),
            Request::ReadAt { .. } | Request::Recv | Request::RecvFrom => {
                if let Some(b) = buffer.as_mut() {
                    // SAFETY: the kernel wrote the first `n` bytes of the regions
                    // `build_entry` gave it (at most the buffer's room), and its CQE is
                    // here: nothing writes to the buffer any more.
                    unsafe { b.filled(n) };
                }
                if matches!(request, Request::RecvFrom) {
                    if let Some(s) = scratch {
                        completion.addr = sockaddr(s.addr, s.msg.msg_namelen);
                    }
                }
                Ok(n)
            }
            Request::Accept => {
                // SAFETY: a successful accept returns a new descriptor that nothing else owns.
                completion.accepted = Some(unsafe { OwnedFd::from_raw_fd(res) });
                if let Some(s) = scratch {
                    completion.addr = sockaddr(s.addr, s.addr_len);
                }
                Ok(0)
            }
            _ => Ok(n),
        }
    };
    completion.set_buffer(buffer);
    // The handle's last in-flight reference may go here, closing the descriptor only now
    // that its packet exists (docs/semantics.md H6).
    handle.op_finished();
    drop(handle);
    completion
}

fn sockaddr(storage: SockAddrStorage, len: libc::socklen_t) -> Option<std::net::SocketAddr> {
    if len == 0 {
        return None;
    }
    // SAFETY: the kernel filled `storage` and reported `len` bytes of it as the address.
    let addr = unsafe { SockAddr::new(storage, len) };
    addr.as_socket()
}
