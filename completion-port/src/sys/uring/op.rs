//! One io_uring operation: its memory, its SQE, and the one round trip of its ownership
//! through the kernel's `user_data`.

use crate::completion::Completion;
use crate::op::Request;
use crate::sys::OpData;
use io_uring::{opcode, squeue, types};
use socket2::{SockAddr, SockAddrStorage};
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Weak};

/// An operation in flight. Lives in an `Arc` whose one strong reference is owned by the
/// kernel (through `user_data`) from `prepare` until `complete`.
pub(crate) struct Op<C> {
    data: OpData<C>,
    /// Memory the kernel reads or writes besides the buffer: a socket address and the
    /// `msghdr`/`iovec` of `recvmsg`/`sendmsg`. It sits inside the `Arc` allocation, so
    /// its address is stable for the operation's life.
    scratch: Scratch,
}

struct Scratch {
    addr: SockAddrStorage,
    addr_len: libc::socklen_t,
    iov: libc::iovec,
    msg: libc::msghdr,
}

// SAFETY: the raw pointers in `iov` and `msg` point only into the same `Op` allocation
// (its buffer and `addr`), which moves between threads as a whole; nothing else aliases
// them.
unsafe impl Send for Scratch {}
// SAFETY: as above; shared references to `Scratch` are never used to reach the pointees.
unsafe impl Sync for Scratch {}

/// A cancellation handle: weak, so it keeps the allocation (and therefore the `user_data`
/// value) from being reused while it exists, but never the buffer or context.
pub(crate) struct OpRef<C>(Weak<Op<C>>);

impl<C> OpRef<C> {
    /// The operation's `user_data`, or `None` if its completion was already produced.
    pub(crate) fn user_data_if_pending(&self) -> Option<u64> {
        (self.0.strong_count() > 0).then(|| self.0.as_ptr() as u64)
    }

    pub(crate) fn is_done(&self) -> bool {
        self.0.strong_count() == 0
    }
}

/// Builds the operation's memory and SQE. The returned `user_data` owns one strong
/// reference to the operation; exactly one of [`complete`] (after its CQE) or
/// [`reclaim`] (if the SQE never reached the kernel) takes it back.
pub(crate) fn prepare<C>(data: OpData<C>) -> (squeue::Entry, OpRef<C>, u64) {
    let mut op = Arc::new(Op {
        data,
        scratch: Scratch {
            addr: SockAddrStorage::zeroed(),
            addr_len: 0,
            // SAFETY: `iovec` and `msghdr` are plain C structs for which all-zero is valid.
            iov: unsafe { mem::zeroed() },
            // SAFETY: as above.
            msg: unsafe { mem::zeroed() },
        },
    });
    let entry = {
        let op = Arc::get_mut(&mut op).expect("a fresh Arc is unique");
        build_entry(op)
    };
    let op_ref = OpRef(Arc::downgrade(&op));
    let user_data = Arc::into_raw(op) as u64;
    (entry.user_data(user_data), op_ref, user_data)
}

/// The SQE for `op`, pointing into `op`'s own allocation and buffer.
fn build_entry<C>(op: &mut Op<C>) -> squeue::Entry {
    let fd = types::Fd(op.data.handle.fd.as_raw_fd());
    let s = &mut op.scratch;
    let (buf_ptr, buf_len, cap) = match op.data.buffer.as_mut() {
        Some(b) => (b.as_mut_ptr(), b.len() as u32, b.capacity() as u32),
        None => (std::ptr::null_mut(), 0, 0),
    };
    match &op.data.request {
        Request::ReadAt { offset } => opcode::Read::new(fd, buf_ptr, cap).offset(*offset).build(),
        Request::WriteAt { offset } => opcode::Write::new(fd, buf_ptr, buf_len).offset(*offset).build(),
        Request::Sync { data_only } => {
            let flags = if *data_only { types::FsyncFlags::DATASYNC } else { types::FsyncFlags::empty() };
            opcode::Fsync::new(fd).flags(flags).build()
        }
        Request::Accept => {
            s.addr_len = s.addr.size_of();
            let addr = (&mut s.addr as *mut SockAddrStorage).cast::<libc::sockaddr>();
            opcode::Accept::new(fd, addr, &mut s.addr_len).flags(libc::SOCK_CLOEXEC).build()
        }
        Request::Connect { addr } => {
            opcode::Connect::new(fd, addr.as_ptr().cast::<libc::sockaddr>(), addr.len()).build()
        }
        // IOCP.md N6: a zero-length receive waits for readability and consumes nothing.
        Request::Recv if cap == 0 => opcode::PollAdd::new(fd, libc::POLLIN as u32).build(),
        Request::Recv => opcode::Recv::new(fd, buf_ptr, cap).build(),
        Request::Send => opcode::Send::new(fd, buf_ptr, buf_len).flags(libc::MSG_NOSIGNAL).build(),
        Request::Shutdown { how } => {
            let how = match how {
                std::net::Shutdown::Read => libc::SHUT_RD,
                std::net::Shutdown::Write => libc::SHUT_WR,
                std::net::Shutdown::Both => libc::SHUT_RDWR,
            };
            opcode::Shutdown::new(fd, how).build()
        }
        Request::RecvFrom => {
            s.iov = libc::iovec { iov_base: buf_ptr.cast(), iov_len: cap as usize };
            s.msg.msg_name = (&mut s.addr as *mut SockAddrStorage).cast();
            s.msg.msg_namelen = s.addr.size_of();
            s.msg.msg_iov = &mut s.iov;
            s.msg.msg_iovlen = 1;
            opcode::RecvMsg::new(fd, &mut s.msg).build()
        }
        Request::SendTo { addr } => {
            s.iov = libc::iovec { iov_base: buf_ptr.cast(), iov_len: buf_len as usize };
            // `addr` lives in the same allocation (inside `data.request`).
            s.msg.msg_name = addr.as_ptr() as *mut libc::c_void;
            s.msg.msg_namelen = addr.len();
            s.msg.msg_iov = &mut s.iov;
            s.msg.msg_iovlen = 1;
            opcode::SendMsg::new(fd, &s.msg).flags(libc::MSG_NOSIGNAL as u32).build()
        }
    }
}

/// Takes back the reference leaked by [`prepare`].
///
/// # Safety
///
/// `user_data` must come from [`prepare`] with the same `C`, and be passed here (or to
/// [`reclaim`]) exactly once, when the kernel no longer uses the operation's memory.
unsafe fn take<C>(user_data: u64) -> Op<C> {
    // SAFETY: per this function's contract, the pointer came from `Arc::into_raw` and its
    // strong reference has not been taken back yet.
    let op = unsafe { Arc::from_raw(user_data as *const Op<C>) };
    // Cancellation handles are weak, so this is the only strong reference.
    match Arc::try_unwrap(op) {
        Ok(op) => op,
        Err(_) => unreachable!("an io_uring operation had a second strong reference"),
    }
}

/// Gives back the context and buffer of an operation whose SQE never reached the kernel.
pub(crate) fn reclaim<C>(user_data: u64) -> (C, Option<Vec<u8>>) {
    // SAFETY: called by `Uring::submit` only when the push failed, so the kernel never saw
    // `user_data`, and no CQE will hand it back a second time.
    let op = unsafe { take::<C>(user_data) };
    (op.data.context, op.data.buffer)
}

/// Turns a CQE into the operation's one packet (IOCP.md H2, H3).
pub(crate) fn complete<C>(user_data: u64, res: i32) -> Completion<C> {
    // SAFETY: `user_data` is neither WAKE nor CANCEL, so it came from `prepare` with this
    // port's `C`; its CQE arrives exactly once (no multishot requests) and, arriving, means
    // the kernel is done with the operation's memory.
    let op = unsafe { take::<C>(user_data) };
    let Op { data, scratch } = op;
    let OpData { handle, key, request, mut buffer, context } = data;
    let mut completion = Completion::io(key, context);
    completion.result = if res < 0 {
        Err(io::Error::from_raw_os_error(-res))
    } else {
        let n = res as usize;
        let zero_length = buffer.as_ref().is_some_and(|b| b.capacity() == 0);
        match request {
            // A zero-length receive is a poll: `res` is the ready mask; nothing moved.
            Request::Recv if zero_length => Ok(0),
            Request::ReadAt { .. } | Request::Recv | Request::RecvFrom => {
                if let Some(b) = buffer.as_mut() {
                    // SAFETY: the kernel wrote `n <= capacity` bytes at the start of the
                    // buffer, so they are initialised.
                    unsafe { b.set_len(n.min(b.capacity())) };
                }
                if matches!(request, Request::RecvFrom) {
                    completion.addr = sockaddr(scratch.addr, scratch.msg.msg_namelen);
                }
                Ok(n)
            }
            Request::Accept => {
                // SAFETY: a successful accept returns a new descriptor that nothing else owns.
                completion.accepted = Some(unsafe { OwnedFd::from_raw_fd(res) });
                completion.addr = sockaddr(scratch.addr, scratch.addr_len);
                Ok(0)
            }
            _ => Ok(n),
        }
    };
    completion.buffer = buffer;
    // The handle's last in-flight reference may go here, closing the descriptor only now
    // that its packet exists (IOCP.md H6).
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
