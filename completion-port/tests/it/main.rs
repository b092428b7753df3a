//! The integration suite: one binary, organised by area. Every test names the rule of
//! `IOCP.md` it checks.

mod bad_input;
mod chaos;
mod common;
mod file;
mod fuzz;
mod fuzz_interp;
mod lifecycle;
mod net;
mod pool;
mod port;
mod stress;
