//! `cport copy SRC DST`: copies a file's contents with `--depth` blocks in flight, each
//! one a read followed by a write of the same buffer at the same offset ([`engine`]).
//!
//! * **DST is never damaged by a failed copy.** A regular DST (or a new one) is written to
//!   a temporary file in its directory, renamed over DST only once everything is copied;
//!   on any failure the temporary file is removed and DST is as it was. A DST that is a
//!   symbolic link stays one: the file it points to is replaced. The replacement keeps
//!   DST's permission bits (and its owner, where the user may set it); a new DST gets mode
//!   0644 less the umask. Other hard links to DST keep the old contents, as with any
//!   replace-by-rename.
//! * **Other destinations** (a pipe, a FIFO, a terminal, a device, anything named under
//!   `/dev/` or `/proc/` such as `/dev/stdout`) are written directly.
//! * **Order.** Blocks in flight complete in any order; positional writes make that
//!   harmless on a file. A pipe, FIFO, socket or terminal has no offsets (and a file
//!   opened for appending ignores them), so when SRC or DST is one of these the copy is
//!   sequential: one block at a time, read then written, in order ([`stream`]).
//! * **Holes.** Only the data regions of SRC (`SEEK_DATA`/`SEEK_HOLE`) are read and
//!   written, and the copy's length is set at the end, so a sparse file stays sparse.
//! * Output: the data goes to DST; the one-line summary and the progress bar go to
//!   stderr, so `cport copy F /dev/stdout | sha256sum` sees only the data.

mod engine;
mod stream;

use crate::units::{parse_size_at_most, show_size};
use indicatif::{ProgressBar, ProgressStyle};
use rustix::fs::{seek, SeekFrom};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Largest block size accepted.
const MAX_BLOCK: u64 = 1 << 30;
/// Most buffer memory: `depth` buffers of `block_size` bytes.
const MAX_BUFFERS: u64 = 4 << 30;

/// Options of `cport copy`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The file to copy (a pipe or FIFO works too: it is read in order).
    src: PathBuf,
    /// Where to copy it: a file replaced only once the copy succeeded (created with mode
    /// 0644 if new), or a pipe, FIFO or device written directly (e.g. /dev/stdout).
    dst: PathBuf,
    /// Blocks in flight at once (each one a read, then a write).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    depth: u32,
    /// Bytes per block (suffixes K, M, G, powers of 1024; at most 1G).
    #[arg(long, default_value = "1M", value_parser = parse_block_size)]
    block_size: u64,
}

/// A block size of at most [`MAX_BLOCK`].
fn parse_block_size(text: &str) -> Result<u64, String> {
    parse_size_at_most(text, MAX_BLOCK, "block size")
}

impl Args {
    /// Checks across flags: the buffers must fit [`MAX_BUFFERS`].
    pub fn check(&self) -> Result<(), String> {
        let buffers = self.block_size.saturating_mul(u64::from(self.depth));
        if buffers > MAX_BUFFERS {
            return Err(format!(
                "--depth {} × --block-size {} = {} of buffers, more than the limit of {}",
                self.depth,
                show_size(self.block_size),
                show_size(buffers),
                show_size(MAX_BUFFERS)
            ));
        }
        Ok(())
    }
}

/// Runs the copier.
pub fn run(args: Args) -> Result<ExitCode, String> {
    args.check()?;
    let (src_name, dst_name) = (args.src.display().to_string(), args.dst.display().to_string());
    let src = File::open(&args.src).map_err(|e| format!("cannot open SRC '{src_name}': {e}"))?;
    let meta = src.metadata().map_err(|e| format!("cannot open SRC '{src_name}': {e}"))?;
    if meta.is_dir() {
        let e = io::Error::from_raw_os_error(libc::EISDIR);
        return Err(format!("cannot copy SRC '{src_name}': {e}"));
    }
    let existing = std::fs::metadata(&args.dst).ok();
    // Replacing DST must never destroy SRC.
    if let Some(d) = &existing {
        if (d.dev(), d.ino()) == (meta.dev(), meta.ino()) {
            return Err(format!("SRC '{src_name}' and DST '{dst_name}' are the same file"));
        }
    }
    let mut dst = Destination::open(&args.dst, existing.as_ref())
        .map_err(|e| format!("cannot create DST '{dst_name}': {e}"))?;
    tracing::debug!(src = %src_name, dst = %dst_name, depth = args.depth, block = args.block_size, "copying");

    let sequential = !in_any_order(&src) || !in_any_order(dst.file());
    let size_hint = meta.len();
    let bar = ProgressBar::with_draw_target(Some(size_hint), indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    let progress = |written: u64| {
        if written > bar.length().unwrap_or(0) {
            bar.set_length(written);
        }
        bar.set_position(written);
    };
    let start = Instant::now();
    let names = (src_name.as_str(), dst_name.as_str());
    let result = if sequential {
        tracing::debug!("SRC or DST has no offsets: copying in order, one block at a time");
        stream::copy(&src, dst.file(), args.block_size as usize, names, progress)
    } else {
        copy_at_offsets(src, &mut dst, &args, size_hint, names, progress)
    };
    bar.finish_and_clear();
    let written = result?;
    dst.finish().map_err(|e| format!("cannot replace DST '{dst_name}': {e}"))?;
    let secs = start.elapsed().as_secs_f64();
    let mibs = written as f64 / (1024.0 * 1024.0) / secs.max(1e-9);
    eprintln!("copied {written} bytes in {secs:.3} s ({mibs:.1} MiB/s)");
    Ok(ExitCode::SUCCESS)
}

/// The positional copy on the completion port: the data regions of SRC, then its length
/// set on DST (a trailing hole, or a file that shrank). Returns the bytes written.
fn copy_at_offsets(
    src: File,
    dst: &mut Destination,
    args: &Args,
    size_hint: u64,
    (src_name, dst_name): (&str, &str),
    progress: impl FnMut(u64),
) -> Result<u64, String> {
    let plan = engine::Plan {
        block: args.block_size as usize,
        depth: args.depth as usize,
        size_hint,
        data: data_regions(&src, size_hint),
        src_name,
        dst_name,
    };
    let keep = dst.file().try_clone().map_err(|e| format!("cannot use DST '{dst_name}': {e}"))?;
    let out = engine::copy(src, keep, &plan, progress)?;
    // Only a replaced (regular) file gets its length set: a device has none.
    if dst.is_replacement() {
        dst.file().set_len(out.end).map_err(|e| format!("cannot set the length of DST '{dst_name}': {e}"))?;
    }
    Ok(out.written)
}

/// Whether blocks of `f` may be transferred in any order, at their offsets: false for a
/// pipe, FIFO, socket or terminal (no offsets: `lseek` fails with `ESPIPE`) and for a file
/// opened for appending (every write goes to the end whatever its offset).
fn in_any_order(f: &File) -> bool {
    let appending = rustix::fs::fcntl_getfl(f).is_ok_and(|fl| fl.contains(rustix::fs::OFlags::APPEND));
    !appending && seek(f, SeekFrom::Current(0)).is_ok()
}

/// The data regions `[start, end)` of the first `size` bytes of `f`, in order. Where the
/// file system cannot tell (`SEEK_DATA` unsupported), all of it is data.
fn data_regions(f: &File, size: u64) -> Vec<(u64, u64)> {
    let mut regions = Vec::new();
    let mut pos = 0;
    while pos < size {
        let start = match seek(f, SeekFrom::Data(pos)) {
            Ok(s) => s,
            Err(rustix::io::Errno::NXIO) => break, // only a hole from `pos` on
            Err(_) => {
                regions.push((pos, size));
                break;
            }
        };
        if start >= size {
            break;
        }
        let end = seek(f, SeekFrom::Hole(start)).map_or(size, |e| e.min(size));
        if end <= start {
            regions.push((start, size));
            break;
        }
        regions.push((start, end));
        pos = end;
    }
    regions
}

/// Where the copy goes.
enum Destination {
    /// Written directly: a pipe, FIFO, device, or a path under /dev or /proc.
    Direct(File),
    /// A temporary file in DST's directory, renamed over `target` by [`Destination::finish`];
    /// removed if dropped before.
    Replace { file: File, temp: TempPath, target: PathBuf },
}

impl Destination {
    /// Opens the destination for `dst` (`existing`: its metadata, following links).
    fn open(dst: &Path, existing: Option<&std::fs::Metadata>) -> io::Result<Self> {
        let special = dst.starts_with("/dev") || dst.starts_with("/proc");
        if special || existing.is_some_and(|m| !m.is_file()) {
            let file = OpenOptions::new().write(true).create(true).truncate(true).mode(0o644).open(dst)?;
            return Ok(Self::Direct(file));
        }
        // A link is followed: the file it points to is replaced, the link stays.
        let target = match existing {
            Some(_) => std::fs::canonicalize(dst)?,
            None => dst.to_path_buf(),
        };
        let (file, temp) = TempPath::create(&target, existing)?;
        Ok(Self::Replace { file, temp, target })
    }

    fn file(&self) -> &File {
        match self {
            Self::Direct(f) | Self::Replace { file: f, .. } => f,
        }
    }

    fn is_replacement(&self) -> bool {
        matches!(self, Self::Replace { .. })
    }

    /// The copy succeeded: a temporary file takes DST's place.
    fn finish(self) -> io::Result<()> {
        match self {
            Self::Direct(_) => Ok(()),
            Self::Replace { file, temp, target } => {
                drop(file);
                std::fs::rename(&temp.0, &target)?;
                std::mem::forget(temp);
                Ok(())
            }
        }
    }
}

/// A temporary file's path, removed when dropped.
struct TempPath(PathBuf);

impl TempPath {
    /// Creates a new, empty file next to `target` (`.NAME.cport-PID-N`), with `existing`'s
    /// permission bits and owner where given, else mode 0644 less the umask.
    fn create(target: &Path, existing: Option<&std::fs::Metadata>) -> io::Result<(File, Self)> {
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = target.file_name().map_or_else(|| "dst".into(), |n| n.to_string_lossy());
        for n in 0..1000 {
            let path = dir.join(format!(".{name}.cport-{}-{n}", std::process::id()));
            match OpenOptions::new().write(true).create_new(true).mode(0o644).open(&path) {
                Ok(file) => {
                    let temp = Self(path);
                    if let Some(m) = existing {
                        let mine = file.metadata()?;
                        if (m.uid(), m.gid()) != (mine.uid(), mine.gid()) {
                            // Only a privileged user may give a file away; others keep it.
                            let _ = std::os::unix::fs::fchown(&file, Some(m.uid()), Some(m.gid()));
                        }
                        // After chown (which clears set-id bits); not subject to the umask.
                        file.set_permissions(std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
                    }
                    return Ok((file, temp));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(io::ErrorKind::AlreadyExists, "no free temporary file name"))
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
