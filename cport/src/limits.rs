//! The descriptor limit (`RLIMIT_NOFILE`): raised at start when a command needs more
//! descriptors than its soft limit allows, and named in the hints of "Too many open files".

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use std::io;

/// Descriptors a command uses besides its connections: stdio, the ring, the listener,
/// signal handling, the allocator's and the runtime's own, with room to spare.
pub const RESERVED: u64 = 64;

/// Makes sure the soft descriptor limit allows `needed` descriptors: if it is lower, raises
/// it to the hard limit (what any process may do). Returns the soft limit now in force
/// (`None`: unlimited).
pub fn raise_nofile(needed: u64) -> Option<u64> {
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    let soft = current?;
    if soft >= needed {
        return Some(soft);
    }
    // An unlimited hard limit is still capped by the kernel (fs.nr_open): ask for what is
    // needed then.
    let target = maximum.unwrap_or(needed);
    if target <= soft {
        return Some(soft);
    }
    match setrlimit(Resource::Nofile, Rlimit { current: Some(target), maximum }) {
        Ok(()) => {
            tracing::debug!(from = soft, to = target, "raised the soft descriptor limit");
            Some(target)
        }
        Err(e) => {
            tracing::debug!(error = %e, soft, target, "cannot raise the soft descriptor limit");
            Some(soft)
        }
    }
}

/// Whether `e` says the process (or the system) ran out of descriptors.
pub fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// What to do about running out of descriptors, for error messages.
pub fn hint() -> String {
    let limit = match getrlimit(Resource::Nofile).current {
        Some(n) => n.to_string(),
        None => "unlimited".into(),
    };
    format!("the descriptor limit is {limit}: raise it with `ulimit -n` (up to `ulimit -Hn`)")
}

/// `e` as text, followed by [`hint`] when it is "Too many open files".
pub fn explain(e: &io::Error) -> String {
    if out_of_descriptors(e) {
        format!("{e}; {}", hint())
    } else {
        e.to_string()
    }
}
