//! Usage errors: clap's exit status 2, a message naming the problem, nothing on stdout.

use crate::common::{run_cport, texts};

/// Runs `cport args...`, expecting a usage error whose stderr mentions `mentions`; returns
/// stderr.
fn usage_error(args: &[&str], mentions: &str) -> String {
    let out = run_cport(args);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: stderr: {stderr}");
    assert_eq!(stdout, "", "{args:?}");
    assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    assert!(stderr.contains(mentions), "{args:?}: '{mentions}' not in: {stderr}");
    stderr
}

// An unknown flag, an unknown command or a missing argument prints the usage line.
#[test]
fn unknown_flag_exits_2_with_usage() {
    for (args, mentions) in [
        (&["load", "--no-such-flag"][..], "--no-such-flag"),
        (&["copy", "a", "b", "--no-such-flag"][..], "--no-such-flag"),
        (&["no-such-command"][..], "no-such-command"),
        (&["copy", "only-one"][..], "<DST>"),
    ] {
        let stderr = usage_error(args, mentions);
        assert!(stderr.contains("Usage: cport"), "{args:?}: no usage in: {stderr}");
    }
}

// A bad value is a usage error that names the flag and says what is wrong.
#[test]
fn bad_values_exit_2_naming_the_flag() {
    usage_error(&["load", "--duration", "soon"], "'soon' is not a duration");
    usage_error(&["load", "--size", "0"], "--size");
    usage_error(&["load", "--size", "65M"], "largest message size");
    usage_error(&["load", "--connections", "0"], "--connections");
    usage_error(&["load", "--rate=-5"], "not a positive rate");
    usage_error(&["load", "--rate", "0"], "not a positive rate");
    usage_error(&["copy", "a", "b", "--block-size", "1X"], "not a size");
    usage_error(&["copy", "a", "b", "--block-size", "1T"], "largest block size, 1 GiB");
    usage_error(&["copy", "a", "b", "--block-size", "2G"], "largest block size");
    usage_error(&["copy", "a", "b", "--depth", "0"], "--depth");
}

// Issue 12: serve's zero values are usage errors (exit 2) naming the flag: no worker
// threads, and no connections at all (0 used to become 1 silently).
#[test]
fn serve_zero_workers_or_connections_is_a_usage_error() {
    usage_error(&["serve", "--workers", "0"], "--workers");
    usage_error(&["serve", "--max-connections", "0"], "--max-connections");
    usage_error(&["serve", "--buffer-size", "4X"], "--buffer-size");
    usage_error(&["serve", "--idle-timeout", "soon"], "--idle-timeout");
    usage_error(&["serve", "--eager", "--eager-rounds", "0"], "--eager-rounds");
    // The bound means nothing without the drain it bounds.
    usage_error(&["serve", "--eager-rounds", "8"], "--eager");
}

// Issue 9: every port of `serve --ports N` needs a worker and a connection slot.
#[test]
fn serve_ports_beyond_workers_or_connections_is_a_usage_error() {
    usage_error(&["serve", "--ports", "3", "--workers", "2"], "--ports 3");
    usage_error(&["serve", "--ports", "2", "--workers", "2", "--max-connections", "1"], "--max-connections");
}

// Issue 9: every port of `load --ports N` needs a worker and a connection.
#[test]
fn load_ports_beyond_workers_or_connections_is_a_usage_error() {
    usage_error(&["load", "--ports", "3", "--workers", "2"], "--ports 3");
    usage_error(&["load", "--ports", "2", "--connections", "1"], "--connections");
}
