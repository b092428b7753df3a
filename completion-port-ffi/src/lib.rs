//! # completion-port-ffi
//!
//! The Win32 completion-port API for C and C++ on Linux, over the `completion-port` crate:
//! `libiocp.so`/`libiocp.a` and `include/iocp.h` (with `include/compat/windows.h`,
//! `winsock2.h`, `mswsock.h`), so that an IOCP program written for Windows compiles and
//! runs here. See `docs/porting.md` for what compiles unchanged and what differs.
//!
//! Every exported function catches panics at the boundary and reports
//! `ERROR_INTERNAL_ERROR` instead of unwinding into C. Handles are values in a table,
//! never pointers: a stale, closed or made-up handle is `ERROR_INVALID_HANDLE` (or
//! `WSAENOTSOCK` for socket calls).

#![allow(non_snake_case, clippy::missing_safety_doc, clippy::too_many_arguments)]

mod error;
mod file;
mod net;
mod port;
mod regions;
mod sync;
mod table;
pub mod types;

pub use file::*;
pub use net::*;
pub use port::*;
pub use sync::*;
