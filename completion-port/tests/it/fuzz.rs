//! Random sequences of operations on the public API (the interpreter of `fuzz_interp.rs`):
//! exactly-once delivery, bounded completion and no hang for any sequence of associate,
//! submit (every operation kind, odd offsets and sizes), cancel, handle drop, post, get,
//! close, drain and port drop. docs/semantics.md H2, H4, H5, H6, P2, P4, P7, P8, P10.
//!
//! The same interpreter runs under libFuzzer in `fuzz/` (`ci/fuzz.sh`) for longer runs.
//! Here it runs a fixed number of cases from a fixed seed, so that the normal suite stays
//! deterministic in what it tries and bounded in time; `PROPTEST_CASES` and
//! `PROPTEST_RNG_SEED` explore further by hand.

use crate::fuzz_interp;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

fn config() -> Config {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let mut config = Config::with_cases(env("PROPTEST_CASES").map_or(256, |n| n as u32));
    config.rng_seed = RngSeed::Fixed(env("PROPTEST_RNG_SEED").unwrap_or(0x1E2C_F022));
    config.failure_persistence = None;
    // A failing program is shrunk, but each try runs real I/O and a hang-like failure takes
    // the interpreter's whole limit (10 s): keep shrinking bounded in tries and in time.
    config.max_shrink_iters = 512;
    config.max_shrink_time = 60_000;
    config
}

proptest! {
    #![proptest_config(config())]

    // H2, H5, H6, P7, P8, P10: any program keeps every promise of the interpreter.
    #[test]
    fn h2_p10_random_programs_deliver_every_packet_exactly_once(bytes in proptest::collection::vec(any::<u8>(), 0..1200)) {
        fuzz_interp::run_bytes(&bytes);
    }
}
