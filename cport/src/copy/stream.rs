//! The sequential copy, for a SRC or DST without offsets (a pipe, FIFO, socket or
//! terminal, or a file opened for appending): one block at a time, read then written, in
//! order. Blocks in flight would land in completion order there, so none are; the
//! completion port has nothing to overlap and is not used.

use std::fs::File;
use std::io::{self, Read, Write};

/// Copies `src` to `dst` in blocks of `block` bytes until end of file; calls `progress`
/// with the bytes written so far after each block. Returns the bytes copied.
pub fn copy(
    mut src: &File,
    mut dst: &File,
    block: usize,
    (src_name, dst_name): (&str, &str),
    mut progress: impl FnMut(u64),
) -> Result<u64, String> {
    let mut buf = vec![0u8; block];
    let mut written = 0u64;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => return Ok(written),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("cannot read SRC '{src_name}': {e}")),
        };
        dst.write_all(&buf[..n]).map_err(|e| format!("cannot write DST '{dst_name}': {e}"))?;
        written += n as u64;
        progress(written);
    }
}
