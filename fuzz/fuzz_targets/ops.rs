//! libFuzzer over random programs of port operations. The interpreter (the grammar, the
//! checks, the watchdog) is the suite's own, included by path, so the proptest run in
//! `cargo test` and this target test exactly the same promises.
#![no_main]

#[path = "../../completion-port/tests/it/fuzz_interp.rs"]
mod fuzz_interp;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

libfuzzer_sys::fuzz_target!(
    init: {
        // libFuzzer's C `main` leaves SIGPIPE fatal, where a Rust `main` (and so the test
        // suite) ignores it: `write_at` on a socket whose peer is gone is `write(2)`,
        // which raises it. Catch it, as a Rust program would ignore it, so that the
        // operation fails with EPIPE instead of killing the run.
        signal_hook::flag::register(signal_hook::consts::SIGPIPE, Arc::new(AtomicBool::new(false)))
            .expect("catch SIGPIPE");
    },
    |data: &[u8]| {
        fuzz_interp::run_bytes(data);
    }
);
