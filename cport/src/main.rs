//! `cport`: the seeds' "NetworkSystem" as a real tool, built on the completion port.
//!
//! * `cport serve`: an echo server, one pool of worker threads on one port.
//! * `cport load`: a load generator that checks every echoed byte.
//! * `cport copy`: a file copier with many reads and writes in flight.

#![forbid(unsafe_code)]

mod copy;
mod load;
mod serve;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// NetworkSystem on a completion port.
#[derive(Parser, Debug)]
#[command(name = "cport", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the echo server.
    Serve(serve::Args),
    /// Drive an echo server with load and check every byte it echoes.
    Load(load::Args),
    /// Copy a file with many reads and writes in flight.
    Copy(copy::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CPORT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Load(args) => load::run(args),
        Command::Copy(args) => copy::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cport: {e}");
            ExitCode::FAILURE
        }
    }
}
