//! mcrctl, the admin CLI: arguments → one command layer (`mcr::cli::commands`)
//! → a `Client` (REST by default, gRPC with `--grpc`).  Exit codes: 0 ok,
//! 1 other error, 2 usage, 3 unreachable, 4 TLS, 5 not authenticated,
//! 6 permission denied, 7 not found, 8 invalid argument, 9 conflict.

use clap::Parser;
use mcr::cli::commands::{run, Cli};
use std::process::ExitCode;

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mcrctl: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
