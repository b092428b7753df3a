//! `cport copy SRC DST`: copies a file's contents with `--depth` blocks in flight, each
//! one a read followed by a write of the same buffer at the same offset ([`engine`]).
//!
//! Only the contents are copied: DST is created with mode 0644 (less the umask) or
//! truncated, and keeps its own owner, mode and times.

mod engine;

use crate::load::units::parse_size;
use indicatif::{ProgressBar, ProgressStyle};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Largest block size accepted.
const MAX_BLOCK: u64 = 1 << 30;
/// Most buffer memory: `depth` buffers of `block_size` bytes.
const MAX_BUFFERS: u64 = 4 << 30;

/// Options of `cport copy`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The file to copy.
    src: PathBuf,
    /// Where to copy it: created (mode 0644) or truncated.
    dst: PathBuf,
    /// Blocks in flight at once (each one a read, then a write).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    depth: u32,
    /// Bytes per block (suffixes K, M, G allowed; at most 1G).
    #[arg(long, default_value = "1M", value_parser = parse_block_size)]
    block_size: u64,
}

/// A block size: a size (see [`parse_size`]) of at most [`MAX_BLOCK`].
fn parse_block_size(text: &str) -> Result<u64, String> {
    match parse_size(text)? {
        n if n > MAX_BLOCK => Err(format!("'{text}' is larger than the largest block size, 1G")),
        n => Ok(n),
    }
}

/// Runs the copier.
pub fn run(args: Args) -> Result<ExitCode, String> {
    let buffers = args.block_size * u64::from(args.depth);
    if buffers > MAX_BUFFERS {
        return Err(format!(
            "--depth x --block-size is {buffers} bytes of buffers; the limit is {MAX_BUFFERS}"
        ));
    }
    let (src_name, dst_name) = (args.src.display().to_string(), args.dst.display().to_string());
    let src = File::open(&args.src).map_err(|e| format!("cannot open SRC '{src_name}': {e}"))?;
    let meta = src.metadata().map_err(|e| format!("cannot open SRC '{src_name}': {e}"))?;
    if meta.is_dir() {
        let e = io::Error::from_raw_os_error(libc::EISDIR);
        return Err(format!("cannot copy SRC '{src_name}': {e}"));
    }
    // Truncating DST must never destroy SRC.
    if let Ok(d) = std::fs::metadata(&args.dst) {
        if (d.dev(), d.ino()) == (meta.dev(), meta.ino()) {
            return Err(format!("SRC '{src_name}' and DST '{dst_name}' are the same file"));
        }
    }
    let dst = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&args.dst)
        .map_err(|e| format!("cannot create DST '{dst_name}': {e}"))?;

    let size_hint = meta.len();
    let bar = ProgressBar::new(size_hint);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    let plan = engine::Plan {
        block: args.block_size as usize,
        depth: args.depth as usize,
        size_hint,
        src_name: &src_name,
        dst_name: &dst_name,
    };
    let start = Instant::now();
    let result = engine::copy(src, dst, &plan, |written| {
        if written > bar.length().unwrap_or(0) {
            bar.set_length(written);
        }
        bar.set_position(written);
    });
    bar.finish_and_clear();
    let written = result?;
    let secs = start.elapsed().as_secs_f64();
    let mibs = written as f64 / (1024.0 * 1024.0) / secs.max(1e-9);
    println!("copied {written} bytes in {secs:.3} s ({mibs:.1} MiB/s)");
    Ok(ExitCode::SUCCESS)
}
