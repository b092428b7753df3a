//! Files: docs/semantics.md F1–F3, P3 (b), H3.

use crate::common::PROMPT;
use completion_port::CompletionPort;
use std::fs::{File, OpenOptions};
use std::io::Write;

fn block(i: usize) -> Vec<u8> {
    (0..4096).map(|j| (i * 31 + j * 7) as u8).collect()
}

// Rule F1, H3: 256 writes of 4 KiB at scattered offsets in flight together, completing
// in any order, then read back (256 reads in flight) and compared.
#[test]
fn f1_many_scattered_writes_and_reads_in_flight() {
    let tmp = tempfile::tempfile().unwrap();
    let port = CompletionPort::<usize>::new(0);
    let file = port.associate(tmp, 3).unwrap();
    // A scattered order: block i goes to slot (i * 97) % 256.
    let slot = |i: usize| (i * 97) % 256;
    port.batch(|| {
        for i in 0..256 {
            file.write_at(block(i), (slot(i) * 4096) as u64, i).unwrap();
        }
    });
    let mut done = vec![false; 256];
    for _ in 0..256 {
        let p = port.get(Some(PROMPT)).unwrap();
        assert_eq!(p.key, 3);
        assert_eq!(p.bytes().unwrap(), 4096, "write {} was short", p.context);
        assert_eq!(p.buffer.as_deref(), Some(&block(p.context)[..]), "the buffer comes back (H3)");
        assert!(!std::mem::replace(&mut done[p.context], true), "two packets for one write");
    }
    assert_eq!(file.pending(), 0);
    for i in 0..256 {
        file.read_at(Vec::with_capacity(4096), (slot(i) * 4096) as u64, i).unwrap();
    }
    for _ in 0..256 {
        let p = port.get(Some(PROMPT)).unwrap();
        assert_eq!(p.bytes().unwrap(), 4096);
        assert_eq!(p.buffer.as_deref(), Some(&block(p.context)[..]), "block {} differs", p.context);
    }
}

// Rule F1: a read at end of file completes with 0 bytes (a success).
#[test]
fn f1_read_at_end_of_file_is_zero_bytes() {
    let mut tmp = tempfile::tempfile().unwrap();
    tmp.write_all(b"0123456789").unwrap();
    let port = CompletionPort::<&str>::new(1);
    let file = port.associate(tmp, 0).unwrap();
    file.read_at(vec![0xAA; 100], 4, "tail").unwrap();
    file.read_at(Vec::with_capacity(16), 10, "eof").unwrap();
    file.read_at(Vec::with_capacity(16), 1 << 40, "far").unwrap();
    let mut got = std::collections::HashMap::new();
    for _ in 0..3 {
        let p = port.get(Some(PROMPT)).unwrap();
        got.insert(p.context, (p.bytes().unwrap(), p.buffer.unwrap()));
    }
    assert_eq!(got["tail"], (6, b"456789".to_vec()), "length is set to the bytes read");
    assert_eq!(got["eof"], (0, vec![]));
    assert_eq!(got["far"], (0, vec![]));
}

// Rule F2: sync_all and sync_data complete as operations.
#[test]
fn f2_sync_all_and_sync_data_complete() {
    let dir = tempfile::tempdir().unwrap();
    let f = File::create(dir.path().join("synced")).unwrap();
    let port = CompletionPort::<u8>::new(1);
    let file = port.associate(f, 9).unwrap();
    file.write_at(b"durable".to_vec(), 0, 0).unwrap();
    assert_eq!(port.get(Some(PROMPT)).unwrap().bytes().unwrap(), 7);
    file.sync_all(1).unwrap();
    file.sync_data(2).unwrap();
    let mut seen = [false; 3];
    for _ in 0..2 {
        let p = port.get(Some(PROMPT)).unwrap();
        assert_eq!((p.key, p.bytes().unwrap()), (9, 0));
        assert!(p.buffer.is_none());
        seen[p.context as usize] = true;
    }
    assert!(seen[1] && seen[2]);
    assert_eq!(std::fs::read(dir.path().join("synced")).unwrap(), b"durable");
}

// Rule P3 (b), H2: writing to a file opened read-only completes with a packet carrying
// the OS error, and still delivers the context and the buffer.
#[test]
fn p3b_failed_write_is_a_packet_with_the_os_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro");
    std::fs::write(&path, b"x").unwrap();
    let port = CompletionPort::<String>::new(1);
    let file = port.associate(OpenOptions::new().read(true).open(&path).unwrap(), 5).unwrap();
    file.write_at(b"nope".to_vec(), 0, "ctx".into()).unwrap();
    let p = port.get(Some(PROMPT)).expect("a failed operation is a packet, not a get error");
    assert_eq!(p.key, 5);
    assert_eq!(p.context, "ctx");
    assert_eq!(p.buffer.as_deref(), Some(&b"nope"[..]));
    let err = p.result.unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EBADF), "{err}");
}
