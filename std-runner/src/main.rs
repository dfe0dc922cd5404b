//! `staticgrad`: the std runner. Data, training loop and reports live here; all maths is in the core.

use clap::Parser;

/// Train neural networks in static memory: the host-side runner of the staticgrad core.
#[derive(Parser, Debug)]
#[command(name = "staticgrad", version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    println!("staticgrad runner: subcommands arrive with the runner issue");
}
