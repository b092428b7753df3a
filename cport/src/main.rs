//! `cport`: the seeds' "NetworkSystem" as a real tool, built on the completion port.
//!
//! * `cport serve`: an echo server, one pool of worker threads on one port.
//! * `cport load`: a load generator that checks every echoed byte.
//! * `cport copy`: a file copier with many reads and writes in flight.
//! * `cport completions SHELL`, `cport man`: shell completions and a man page.
//!
//! Output: data (and `--json` reports) on stdout; summaries, reports, progress and logs on
//! stderr. Exit status: 0 success, 1 failure, 2 usage error.

#![forbid(unsafe_code)]

mod copy;
mod limits;
mod load;
mod serve;
mod split;
mod units;

use clap::{CommandFactory, Parser, Subcommand};
use std::io::IsTerminal;
use std::process::ExitCode;

/// NetworkSystem on a completion port.
#[derive(Parser, Debug)]
#[command(
    name = "cport",
    version,
    about,
    after_help = "Logging: CPORT_LOG takes a tracing filter (e.g. debug, or cport=debug,completion_port=trace); \
                  the default logs warnings."
)]
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
    /// Print a shell completion script on stdout (e.g. `cport completions bash > /etc/bash_completion.d/cport`).
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout (e.g. `cport man | man -l -`).
    Man,
}

/// The environment variable holding the log filter.
const LOG_ENV: &str = "CPORT_LOG";

/// Logs to stderr, filtered by `CPORT_LOG` (default: warnings), coloured only when stderr
/// is a terminal. A filter that does not parse is reported and replaced by the default.
fn init_logging() {
    let default = || tracing_subscriber::EnvFilter::new("warn");
    let filter = match std::env::var(LOG_ENV) {
        Err(std::env::VarError::NotPresent) => default(),
        Err(e) => {
            eprintln!("cport: ignoring {LOG_ENV}: {e}; logging warnings only");
            default()
        }
        Ok(text) => tracing_subscriber::EnvFilter::builder().parse(&text).unwrap_or_else(|e| {
            eprintln!("cport: ignoring {LOG_ENV}='{text}': {e}; logging warnings only");
            default()
        }),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    // Checks across flags: usage errors (exit 2), reported as clap reports its own.
    let checked = match &cli.command {
        Command::Copy(args) => args.check(),
        Command::Load(args) => args.check(),
        Command::Serve(args) => args.check(),
        _ => Ok(()),
    };
    if let Err(msg) = checked {
        Cli::command().error(clap::error::ErrorKind::ValueValidation, msg).exit();
    }
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Load(args) => load::run(args),
        Command::Copy(args) => copy::run(args),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "cport", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => man(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cport: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes the man page of `cport` and its subcommands (one page) on stdout.
fn man() -> Result<ExitCode, String> {
    let mut out = std::io::stdout().lock();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .map_err(|e| format!("cannot write the man page: {e}"))?;
    Ok(ExitCode::SUCCESS)
}
