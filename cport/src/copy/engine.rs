//! The copy loop: `depth` blocks in flight on one completion port.
//!
//! Each block goes read → write (same buffer, same offset) → next block. A short write is
//! resubmitted from where it stopped; a short read is written, then the rest of the block
//! is read again. A read of 0 bytes is end of file: no block at or past it is started.
//!
//! The size SRC reported is only a hint: blocks before it are started `depth` at a time,
//! and past it one at a time (a probe) until a read returns 0, so a file that grew, or a
//! file that reports size 0 (such as those in /proc), is still copied whole.
//!
//! Before the size hint, only SRC's data regions ([`Plan::data`]) are copied: a block
//! ends where its region ends, and holes are skipped, so they stay holes in DST (whose
//! length the caller sets to [`Outcome::end`]).

use completion_port::{Completion, CompletionPort, GetError, Handle, SubmitError};
use std::fs::File;
use std::io;

/// Keys of the two handles.
const SRC: usize = 0;
const DST: usize = 1;

/// What to copy and how.
pub struct Plan<'a> {
    /// Bytes per block.
    pub block: usize,
    /// Blocks in flight at once.
    pub depth: usize,
    /// The size SRC reported.
    pub size_hint: u64,
    /// SRC's data regions `[start, end)` below `size_hint`, in order; the rest below
    /// `size_hint` is holes, not copied.
    pub data: Vec<(u64, u64)>,
    /// Names for error messages.
    pub src_name: &'a str,
    /// Names for error messages.
    pub dst_name: &'a str,
}

/// The context of an operation: which block slot it belongs to.
type Ctx = usize;

/// What a successful copy did.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Bytes written to DST.
    pub written: u64,
    /// SRC's end of file: the length DST must have.
    pub end: u64,
}

/// A block in flight: the byte range `[offset, offset + len)` of the file.
#[derive(Debug, Clone, Copy)]
struct Slot {
    offset: u64,
    /// Bytes in the block: `block`, or less at the end of a data region.
    len: u64,
    /// Bytes of the block already written to DST.
    done: u64,
}

struct Copier<'a> {
    plan: &'a Plan<'a>,
    src: Handle<Ctx>,
    dst: Handle<Ctx>,
    /// Blocks in flight, by slot index; `None` is a free slot.
    slots: Vec<Option<Slot>>,
    /// Buffers of `block` bytes capacity not in use.
    spare: Vec<Vec<u8>>,
    /// Offset of the next block to start: no block starts before it.
    next: u64,
    /// Index in `plan.data` of the first region that ends after `next`.
    region: usize,
    /// End of file, once a read has returned 0 there.
    eof: Option<u64>,
    /// Blocks in flight (`slots` that are `Some`).
    active: usize,
    /// Blocks in flight that start at or past `size_hint` (probes for end of file).
    probes: usize,
    /// Bytes written to DST.
    written: u64,
    /// The first error; once set, nothing new is started.
    error: Option<String>,
}

/// Copies `src` to `dst` as `plan` says; calls `progress` with the bytes written so far
/// after each batch of completions.
pub fn copy(src: File, dst: File, plan: &Plan<'_>, mut progress: impl FnMut(u64)) -> Result<Outcome, String> {
    let port = CompletionPort::<Ctx>::new(1);
    let use_port = |e: io::Error| format!("cannot use the completion port: {e}");
    let src = port.associate(src, SRC).map_err(use_port)?;
    let dst = port.associate(dst, DST).map_err(use_port)?;
    let mut c = Copier {
        plan,
        src,
        dst,
        slots: vec![None; plan.depth],
        spare: Vec::new(),
        next: 0,
        region: 0,
        eof: None,
        active: 0,
        probes: 0,
        written: 0,
        error: None,
    };
    let mut batch = Vec::with_capacity(plan.depth);
    port.batch(|| c.start_blocks());
    while c.active > 0 {
        match port.get_many_into(&mut batch, plan.depth, None) {
            Ok(_) => {}
            Err(GetError::Closed) => break,
            Err(e) => {
                c.error.get_or_insert_with(|| format!("waiting for I/O: {e}"));
                break;
            }
        }
        port.batch(|| {
            for p in batch.drain(..) {
                c.complete(p);
            }
            c.start_blocks();
        });
        progress(c.written);
    }
    // Nothing is in flight unless the wait failed; drain waits for any such operation.
    drop(port.drain());
    match c.error {
        Some(e) => Err(e),
        None => Ok(Outcome { written: c.written, end: c.eof.unwrap_or(c.next) }),
    }
}

impl Copier<'_> {
    /// The next block to start, `(offset, len)`: the rest of the current data region (at
    /// most a block), or past the data regions a whole block from `size_hint` on.
    fn peek(&self) -> (u64, u64) {
        let block = self.plan.block as u64;
        for &(start, end) in &self.plan.data[self.region..] {
            if end > self.next {
                let at = start.max(self.next);
                return (at, (end - at).min(block));
            }
        }
        (self.next.max(self.plan.size_hint), block)
    }

    /// Whether another block may start now.
    fn may_start(&self) -> bool {
        let (at, _) = self.peek();
        self.error.is_none()
            && self.active < self.plan.depth
            && self.eof.is_none_or(|e| at < e)
            && (at < self.plan.size_hint || self.probes == 0)
    }

    /// Starts blocks while allowed.
    fn start_blocks(&mut self) {
        while self.may_start() {
            let Some(i) = self.slots.iter().position(Option::is_none) else { return };
            let (offset, len) = self.peek();
            let slot = Slot { offset, len, done: 0 };
            self.next = offset.saturating_add(len);
            while self.plan.data.get(self.region).is_some_and(|&(_, end)| end <= self.next) {
                self.region += 1;
            }
            self.slots[i] = Some(slot);
            self.active += 1;
            if slot.offset >= self.plan.size_hint {
                self.probes += 1;
            }
            // A read fills its buffer's whole capacity: a short block gets a buffer of its size.
            let buf = if len == self.plan.block as u64 {
                self.spare.pop().unwrap_or_else(|| Vec::with_capacity(self.plan.block))
            } else {
                Vec::with_capacity(len as usize)
            };
            let r = self.src.read_at(buf, slot.offset, i);
            self.submitted(i, "read", r);
        }
    }

    /// Handles one completion.
    fn complete(&mut self, p: Completion<Ctx>) {
        let (key, result, i, buf) = p.into_parts();
        let buf = buf.unwrap_or_default();
        let Some(Some(mut slot)) = self.slots.get(i).copied() else { return };
        match (key, result) {
            (_, Err(e)) => {
                let which = if key == SRC {
                    ("read SRC", self.plan.src_name)
                } else {
                    ("write DST", self.plan.dst_name)
                };
                self.fail(format!("cannot {} '{}': {e}", which.0, which.1));
                self.finish(i, buf);
            }
            _ if self.error.is_some() => self.finish(i, buf),
            (SRC, Ok(0)) => {
                let at = slot.offset + slot.done;
                self.eof = Some(self.eof.map_or(at, |e| e.min(at)));
                self.finish(i, buf);
            }
            (SRC, Ok(_)) => {
                let r = self.dst.write_at(buf, slot.offset + slot.done, i);
                self.submitted(i, "write", r);
            }
            (_, Ok(n)) => self.wrote(i, &mut slot, n, buf),
        }
    }

    /// A write of `buf` for slot `i` completed with `n` bytes.
    fn wrote(&mut self, i: usize, slot: &mut Slot, n: usize, mut buf: Vec<u8>) {
        if n == 0 || n > buf.len() {
            self.fail(format!("cannot write DST '{}': the write made no progress", self.plan.dst_name));
            return self.finish(i, buf);
        }
        self.written += n as u64;
        slot.done += n as u64;
        self.slots[i] = Some(*slot);
        let at = slot.offset + slot.done;
        if n < buf.len() {
            // A short write: the rest, from where it stopped.
            buf.drain(..n);
            let r = self.dst.write_at(buf, at, i);
            return self.submitted(i, "write", r);
        }
        let rest = slot.len.saturating_sub(slot.done);
        if rest == 0 || self.eof.is_some_and(|e| at >= e) {
            return self.finish(i, buf);
        }
        // The read was short: read the rest of the block (0 bytes there is end of file).
        // A read fills the buffer's whole capacity, so the buffer must not be larger.
        let buf = if buf.capacity() as u64 <= rest {
            buf.clear();
            buf
        } else {
            self.keep(buf);
            Vec::with_capacity(rest as usize)
        };
        let r = self.src.read_at(buf, at, i);
        self.submitted(i, "read", r);
    }

    /// Records a refused submission as the error and frees its slot.
    fn submitted<T>(&mut self, i: usize, what: &str, r: Result<T, SubmitError<Ctx>>) {
        if let Err(e) = r {
            let (error, _, buf) = e.into_parts();
            self.fail(format!("cannot start a {what}: {error}"));
            self.finish(i, buf.unwrap_or_default());
        }
    }

    /// Slot `i` is done; its buffer goes back to the spares.
    fn finish(&mut self, i: usize, buf: Vec<u8>) {
        if let Some(slot) = self.slots.get_mut(i).and_then(Option::take) {
            self.active -= 1;
            if slot.offset >= self.plan.size_hint {
                self.probes -= 1;
            }
        }
        self.keep(buf);
    }

    /// Keeps a buffer of exactly `block` bytes' capacity for reuse.
    fn keep(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() == self.plan.block {
            buf.clear();
            self.spare.push(buf);
        }
    }

    fn fail(&mut self, msg: String) {
        self.error.get_or_insert(msg);
    }
}
