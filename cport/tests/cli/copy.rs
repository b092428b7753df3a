//! `cport copy SRC DST`: contents copied exactly; clear one-line errors otherwise.

use crate::common::{pseudo_random, run_cport, skip, texts};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Copies `src` to `dst` with extra `args`, expecting success; returns stdout.
fn copy_ok(src: &Path, dst: &Path, args: &[&str]) -> String {
    let (s, d) = (src.to_str().expect("utf-8 path"), dst.to_str().expect("utf-8 path"));
    let mut all = vec!["copy", s, d];
    all.extend_from_slice(args);
    let out = run_cport(&all);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{all:?}: stderr: {stderr}");
    stdout
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
    assert_eq!(x.len(), y.len(), "lengths differ");
    if let Some(i) = x.iter().zip(&y).position(|(p, q)| p != q) {
        panic!("contents differ first at byte {i}");
    }
}

// A 64 MiB file with the default depth and block size arrives byte for byte, and the
// summary line reports its size.
#[test]
fn copy_64_mib_file_is_identical() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    std::fs::write(&src, pseudo_random(64 << 20, 1)).expect("write source");
    let stdout = copy_ok(&src, &dst, &[]);
    assert_same_contents(&src, &dst);
    assert!(stdout.starts_with("copied 67108864 bytes in "), "summary: {stdout}");
    assert!(stdout.contains("MiB/s"), "summary: {stdout}");
    assert_eq!(stdout.lines().count(), 1);
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
