//! The integration suite: one binary, organised by area. Every test names the rule of
//! `docs/semantics.md` it checks (`// Rule H2: ...`), and `rules.rs` checks that every rule
//! id cited in the repository is defined there.

mod bad_input;
mod buffers;
mod chaos;
mod common;
mod fallback;
mod file;
mod fuzz;
mod fuzz_interp;
mod lifecycle;
mod net;
mod pool;
mod port;
mod regress;
mod rules;
mod stress;
