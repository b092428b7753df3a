//! CLI tests: each runs the real `cport` binary (built by cargo for this test run) on
//! 127.0.0.1 and checks its exit status and output. One test binary, one module per
//! subcommand under `cli/`; shared helpers (locating the binary, bounded runs, echo
//! servers, test data) live in `cli/common.rs`. A new subcommand's tests go in
//! `cli/<command>.rs`, declared here.

#[path = "cli/common.rs"]
mod common;

#[path = "cli/copy.rs"]
mod copy;
#[path = "cli/load.rs"]
mod load;
#[path = "cli/logs.rs"]
mod logs;
#[path = "cli/seccomp.rs"]
mod seccomp;
#[path = "cli/serve.rs"]
mod serve;
#[path = "cli/usage.rs"]
mod usage;
