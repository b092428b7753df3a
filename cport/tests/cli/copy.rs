//! `cport copy SRC DST`: contents copied exactly; clear one-line errors otherwise.

use crate::common::{pseudo_random, run, run_cport, skip, texts};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Copies `src` to `dst` with extra `args`, expecting success and nothing on stdout (the
/// summary is a report: it goes to stderr); returns stderr.
fn copy_ok(src: &Path, dst: &Path, args: &[&str]) -> String {
    let (s, d) = (src.to_str().expect("utf-8 path"), dst.to_str().expect("utf-8 path"));
    let mut all = vec!["copy", s, d];
    all.extend_from_slice(args);
    let out = run_cport(&all);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{all:?}: stderr: {stderr}");
    assert_eq!(stdout, "", "{all:?}: nothing but data on stdout");
    stderr
}

/// Runs `cport copy src dst`, expecting failure; returns stderr, checked to be one line.
fn copy_err(src: &str, dst: &str) -> String {
    let out = run_cport(&["copy", src, dst]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "copy {src} {dst}: stdout: {stdout} stderr: {stderr}");
    assert_eq!(stdout, "");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    stderr.trim_end().to_string()
}

/// Asserts two files hold the same bytes, naming the first difference if not.
fn assert_same_contents(a: &Path, b: &Path) {
    let (x, y) = (std::fs::read(a).expect("read a"), std::fs::read(b).expect("read b"));
    assert_same_bytes(&x, &y);
}

/// Asserts two byte strings are equal, naming the first difference if not.
fn assert_same_bytes(x: &[u8], y: &[u8]) {
    if let Some(i) = x.iter().zip(y).position(|(p, q)| p != q) {
        panic!("contents differ first at byte {i}");
    }
    assert_eq!(x.len(), y.len(), "lengths differ");
}

// A 64 MiB file with the default depth and block size arrives byte for byte, and the
// summary line reports its size.
#[test]
fn copy_64_mib_file_is_identical() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    std::fs::write(&src, pseudo_random(64 << 20, 1)).expect("write source");
    let summary = copy_ok(&src, &dst, &[]);
    assert_same_contents(&src, &dst);
    assert!(summary.starts_with("copied 67108864 bytes in "), "summary: {summary}");
    assert!(summary.contains("MiB/s"), "summary: {summary}");
    assert_eq!(summary.lines().count(), 1);
}

// Sizes that are not multiples of the block size (and empty files), with a small block
// size and an odd depth, so the tail and many blocks in flight are both exercised.
#[test]
fn copy_odd_sizes_with_small_blocks_are_identical() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (i, len) in [0usize, 1, 4095, 4096, 4097, 1_000_003].into_iter().enumerate() {
        let (src, dst) = (dir.path().join(format!("src{i}")), dir.path().join(format!("dst{i}")));
        std::fs::write(&src, pseudo_random(len, i as u64 + 7)).expect("write source");
        copy_ok(&src, &dst, &["--block-size", "4K", "--depth", "7"]);
        assert_same_contents(&src, &dst);
    }
}

// An existing, longer destination is truncated to the source's length; a new one gets no
// permission bits beyond 0644.
#[test]
fn copy_truncates_an_existing_destination_and_creates_0644() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (src, dst, new) = (dir.path().join("src"), dir.path().join("dst"), dir.path().join("new"));
    std::fs::write(&src, b"short").expect("write source");
    std::fs::write(&dst, vec![b'x'; 100_000]).expect("write destination");
    copy_ok(&src, &dst, &["--block-size", "64K"]);
    assert_eq!(std::fs::read(&dst).expect("read"), b"short");
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    copy_ok(&src, &new, &[]);
    let mode = std::fs::metadata(&new).expect("stat").permissions().mode() & 0o7777;
    assert_eq!(mode & !0o644, 0, "mode {mode:o} has bits beyond 0644 (the source's are not copied)");
}

// A missing source: the exact message, exit 1, and no destination created.
#[test]
fn copy_missing_source_fails_with_the_path_and_os_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (src, dst) = (dir.path().join("missing"), dir.path().join("dst"));
    let (s, d) = (src.to_str().expect("utf-8"), dst.to_str().expect("utf-8"));
    let err = copy_err(s, d);
    assert_eq!(err, format!("cport: cannot open SRC '{s}': No such file or directory (os error 2)"));
    assert!(!dst.exists(), "no destination on failure to open the source");
}

// A destination that cannot be created (under /proc, where no file can be made, even by
// root) fails with a one-line error naming it.
#[test]
fn copy_to_an_unwritable_destination_fails() {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path().join("src");
    std::fs::write(&src, b"data").expect("write source");
    let s = src.to_str().expect("utf-8");
    let err = copy_err(s, "/proc/cport-test-cannot-create-this");
    assert!(err.starts_with("cport: cannot create DST '/proc/cport-test-cannot-create-this': "), "{err}");
    // A read-only directory stops everyone but a privileged user.
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).expect("mkdir");
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    if std::fs::write(ro.join("probe"), b"").is_ok() {
        return skip("copy_to_an_unwritable_destination_fails (read-only dir part)", "running privileged");
    }
    let target = ro.join("dst");
    let err = copy_err(s, target.to_str().expect("utf-8"));
    assert!(err.ends_with("Permission denied (os error 13)"), "{err}");
}

// An unreadable source is a permission error. Skipped, visibly, when running privileged
// (root reads mode-000 files).
#[test]
fn copy_unreadable_source_fails_with_permission_denied() {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path().join("secret");
    std::fs::write(&src, b"data").expect("write source");
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    if std::fs::File::open(&src).is_ok() {
        return skip("copy_unreadable_source_fails_with_permission_denied", "running privileged");
    }
    let (s, d) = (src.to_str().expect("utf-8"), dir.path().join("dst"));
    let err = copy_err(s, d.to_str().expect("utf-8"));
    assert_eq!(err, format!("cport: cannot open SRC '{s}': Permission denied (os error 13)"));
}

// A write that fails in its completion packet (ENOSPC from /dev/full) stops the copy with
// the OS error.
#[test]
fn copy_write_error_from_a_full_device_is_reported() {
    if !Path::new("/dev/full").exists() {
        return skip("copy_write_error_from_a_full_device_is_reported", "no /dev/full");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path().join("src");
    std::fs::write(&src, pseudo_random(3 << 20, 3)).expect("write source");
    let err = copy_err(src.to_str().expect("utf-8"), "/dev/full");
    assert_eq!(err, "cport: cannot write DST '/dev/full': No space left on device (os error 28)");
}

// Copying a file onto itself is refused before the destination is truncated.
#[test]
fn copy_onto_itself_is_refused_and_the_file_survives() {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path().join("same");
    std::fs::write(&src, b"precious").expect("write source");
    let s = src.to_str().expect("utf-8");
    let err = copy_err(s, s);
    assert!(err.contains("are the same file"), "{err}");
    assert_eq!(std::fs::read(&src).expect("read"), b"precious");
}

// A directory is not a file to copy.
#[test]
fn copy_of_a_directory_fails() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().join("dst");
    let err = copy_err(dir.path().to_str().expect("utf-8"), d.to_str().expect("utf-8"));
    assert!(err.ends_with("Is a directory (os error 21)"), "{err}");
}

/// A child process, its stdout read on a thread (so it never blocks on a full pipe),
/// killed (if still running) when dropped.
struct Reaped(Child, Option<std::thread::JoinHandle<Vec<u8>>>);

impl Reaped {
    fn new(mut child: Child) -> Self {
        let reader = child.stdout.take().map(|mut s| {
            std::thread::spawn(move || {
                let mut out = Vec::new();
                let _ = std::io::Read::read_to_end(&mut s, &mut out);
                out
            })
        });
        Self(child, reader)
    }

    /// Waits up to 10 s for the child to exit, then kills it; returns its stdout.
    fn finish(mut self) -> Vec<u8> {
        let start = Instant::now();
        while self.0.try_wait().expect("wait").is_none() && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
        self.1.take().map(|r| r.join().expect("stdout reader")).unwrap_or_default()
    }
}

// Issue 13 (5): `copy F /dev/stdout` into a pipe. With several positional writes in flight
// the pipe took them in completion order (scrambled from byte 65,537, exit 0). Now the
// data arrives in order, and stdout holds only the data: the summary is on stderr.
#[test]
fn copy_to_stdout_pipe_keeps_order_and_summary_on_stderr() {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path().join("src");
    let data = pseudo_random(8 << 20, 13);
    std::fs::write(&src, &data).expect("write source");
    let s = src.to_str().expect("utf-8");
    let out = run_cport(&["copy", s, "/dev/stdout", "--block-size", "64K", "--depth", "32"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    assert_same_bytes(&data, &out.stdout);
    assert!(stderr.starts_with("copied 8388608 bytes in "), "stderr: {stderr}");
}

// Issue 13 (5): a FIFO as destination, then as source: the bytes come out in order.
#[test]
fn copy_into_and_out_of_a_fifo_keeps_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (src, fifo, dst) = (dir.path().join("src"), dir.path().join("fifo"), dir.path().join("dst"));
    let data = pseudo_random(4 << 20, 17);
    std::fs::write(&src, &data).expect("write source");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
    assert!(made.success(), "mkfifo failed");
    let (s, f, d) =
        (src.to_str().expect("utf-8"), fifo.to_str().expect("utf-8"), dst.to_str().expect("utf-8"));

    // Into the FIFO, `cat` reading the other end.
    let cat = Command::new("cat").arg(&fifo).stdout(Stdio::piped()).spawn().expect("cat runs");
    let cat = Reaped::new(cat);
    let out = run_cport(&["copy", s, f, "--block-size", "64K", "--depth", "16"]);
    let received = cat.finish();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", texts(&out).1);
    assert_same_bytes(&data, &received);

    // Out of the FIFO, `cat` writing the other end.
    let feed = Command::new("bash")
        .args(["-c", "cat \"$0\" > \"$1\"", s, f])
        .stdout(Stdio::null())
        .spawn()
        .expect("bash runs");
    let feed = Reaped::new(feed);
    let out = run_cport(&["copy", f, d, "--block-size", "64K", "--depth", "16"]);
    feed.finish();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", texts(&out).1);
    assert_same_contents(&src, &dst);
}

// Issue 13: holes stay holes. A 64 MiB file with 8 KiB of data (and a hole at its end)
// is copied to a file with the same contents and about the same allocated blocks, not
// 64 MiB on disk. Skipped, visibly, where the file system does not keep holes.
#[test]
fn copy_keeps_sparse_files_sparse() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (src, dst) = (dir.path().join("sparse"), dir.path().join("dst"));
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::create(&src).expect("create source");
        f.set_len(64 << 20).expect("set length");
        f.write_all_at(&pseudo_random(4096, 1), 0).expect("write");
        f.write_all_at(&pseudo_random(4096, 2), 40 << 20).expect("write");
    }
    let src_blocks = std::fs::metadata(&src).expect("stat").blocks();
    if src_blocks * 512 >= 1 << 20 {
        return skip("copy_keeps_sparse_files_sparse", "this file system does not keep holes");
    }
    let out = run_cport(&["copy", src.to_str().expect("utf-8"), dst.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", texts(&out).1);
    assert_same_contents(&src, &dst);
    let dst_blocks = std::fs::metadata(&dst).expect("stat").blocks();
    assert!(
        dst_blocks <= src_blocks + 64,
        "the copy uses {} KiB on disk, the source {} KiB",
        dst_blocks / 2,
        src_blocks / 2
    );
}

// Issue 10: a copy that fails after opening its source leaves an existing destination as
// it was (it was truncated before the first read), and leaves no temporary file behind.
// /proc/self/mem opens as a file of size 0 and fails its first read with EIO.
#[test]
fn copy_failure_leaves_the_destination_intact() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dst = dir.path().join("dst");
    std::fs::write(&dst, b"precious contents").expect("write destination");
    let d = dst.to_str().expect("utf-8");
    let err = copy_err("/proc/self/mem", d);
    assert_eq!(err, "cport: cannot read SRC '/proc/self/mem': Input/output error (os error 5)");
    assert_eq!(std::fs::read(&dst).expect("read"), b"precious contents");
    let names: Vec<_> =
        std::fs::read_dir(dir.path()).expect("list").map(|e| e.expect("entry").file_name()).collect();
    assert_eq!(names, ["dst"], "no temporary file left behind");
}

// The destination is replaced only when the copy succeeded, and keeps what is its own: its
// permission bits, and a symbolic link stays a link to the file that receives the data.
#[test]
fn copy_replaces_an_existing_destination_keeping_its_mode_and_link() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (src, real, link) = (dir.path().join("src"), dir.path().join("real"), dir.path().join("link"));
    std::fs::write(&src, pseudo_random(100_000, 5)).expect("write source");
    std::fs::write(&real, b"old").expect("write destination");
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    copy_ok(&src, &link, &["--block-size", "4K"]);
    assert_same_contents(&src, &real);
    assert!(std::fs::symlink_metadata(&link).expect("lstat").file_type().is_symlink());
    let mode = std::fs::metadata(&real).expect("stat").permissions().mode() & 0o7777;
    assert_eq!(mode, 0o600);
}

// Issue 12: the depth × block-size limit is a usage error (exit 2) in units a person reads.
#[test]
fn copy_buffer_limit_error_is_human_readable() {
    let out = run(crate::common::cport(&["copy", "a", "b", "--depth", "32", "--block-size", "1G"])
        .stderr(Stdio::piped()));
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.starts_with(
            "error: --depth 32 × --block-size 1 GiB = 32 GiB of buffers, more than the limit of 4 GiB"
        ),
        "{stderr}"
    );
}
