//! mcrctl, the admin CLI.  The admin API it drives does not exist yet, so
//! for now it only knows its version.

use clap::Parser;

#[derive(Parser)]
#[command(name = "mcrctl", version, about = "Admin CLI for the mcr registry")]
struct Cli {}

fn main() {
    Cli::parse();
    eprintln!("mcrctl: no commands yet; the admin API arrives with a later release");
    std::process::exit(2);
}
