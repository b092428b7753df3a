//! Reads a file with many reads in flight at once, each carrying its own context (which
//! block, where it goes), reassembles the blocks in order as they complete in any order
//! (rule F1), and checks the result against a plain `std::fs::read`.
//!
//! ```sh
//! cargo run -p completion-port --example read_file                 # a generated 8 MiB file
//! cargo run -p completion-port --example read_file -- PATH [DEPTH]  # any regular file
//! ```

use completion_port::CompletionPort;
use std::io::Write;
use std::time::Duration;

const BLOCK: usize = 64 * 1024;

/// The per-read context: where this read's bytes go.
struct Read {
    offset: u64,
    len: usize, // bytes still wanted from `offset`
}

/// FNV-1a, 64 bits: a checksum small enough to write out, good enough to compare copies.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let generated; // keeps a generated file alive (deleted on drop)
    let path = match args.next() {
        Some(path) => path.into(),
        None => {
            let mut f = tempfile::NamedTempFile::new()?;
            for i in 0..(8 << 20) / 4 {
                f.write_all(&(i as u32).wrapping_mul(2_654_435_761).to_le_bytes())?;
            }
            generated = f.into_temp_path();
            generated.to_path_buf()
        }
    };
    let depth: usize = args.next().map_or(Ok(32), |d| d.parse()).map_err(std::io::Error::other)?;
    if depth == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "DEPTH must be at least 1"));
    }

    let file = std::fs::File::open(&path)?;
    let size = usize::try_from(file.metadata()?.len()).map_err(std::io::Error::other)?;
    let port: CompletionPort<Read> = CompletionPort::new(1);
    let handle = port.associate(file, 1)?;

    let mut data = vec![0u8; size];
    let mut next = 0u64; // next offset not yet asked for
    let (mut in_flight, mut most_in_flight, mut reads) = (0usize, 0usize, 0usize);
    let submit = |read: Read, in_flight: &mut usize| -> std::io::Result<()> {
        handle.read_at(Vec::with_capacity(read.len), read.offset, read).map_err(|e| e.error)?;
        *in_flight += 1;
        Ok(())
    };
    loop {
        // Keep `depth` reads in flight until every block has been asked for.
        while in_flight < depth && (next as usize) < size {
            let len = BLOCK.min(size - next as usize);
            submit(Read { offset: next, len }, &mut in_flight)?;
            next += len as u64;
        }
        most_in_flight = most_in_flight.max(in_flight);
        if in_flight == 0 {
            break;
        }
        let p = port.get(Some(Duration::from_secs(30)))?;
        in_flight -= 1;
        reads += 1;
        let n = p.result().map_err(|e| std::io::Error::new(e.kind(), e.to_string()))?;
        let Read { offset, len } = p.context;
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the file shrank"));
        }
        data[offset as usize..][..n].copy_from_slice(&p.buffer.unwrap_or_default());
        if n < len {
            // A short read: ask for the rest of this block.
            submit(Read { offset: offset + n as u64, len: len - n }, &mut in_flight)?;
        }
    }

    let expected = fnv1a(&std::fs::read(&path)?);
    let got = fnv1a(&data);
    println!("read {size} bytes in {reads} reads of up to {BLOCK} bytes, {most_in_flight} in flight at most");
    println!(
        "fnv1a64 {got:016x}, std::fs::read gives {expected:016x}: {}",
        if got == expected { "match" } else { "MISMATCH" }
    );
    if got != expected {
        std::process::exit(1);
    }
    Ok(())
}
