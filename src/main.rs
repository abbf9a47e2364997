//! The `kb` binary: parse the command line, run the chosen command (see [`kb::cli`]).

use clap::Parser;

fn main() -> anyhow::Result<()> {
    kb::cli::run(kb::cli::Cli::parse())
}
