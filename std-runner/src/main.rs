//! `staticgrad`: the std runner. Data, training loop and reports live here; all maths is in the core.

use clap::{Parser, Subcommand};

mod bench;

/// Train neural networks in static memory: the host-side runner of the staticgrad core.
#[derive(Parser, Debug)]
#[command(name = "staticgrad", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Time training steps of a peer-benchmark workload (tiny | book | twolayer).
    Bench(bench::BenchArgs),
    /// Reproduce an experiment of the book's chapter 6 (settings default to the book's).
    Experiment {
        /// Which experiment.
        #[command(subcommand)]
        which: staticgrad_runner::experiments::ExperimentCmd,
    },
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Bench(args)) => {
            if let Err(e) = bench::run(&args) {
                eprintln!("staticgrad bench: {e}");
                std::process::exit(2);
            }
        }
        Some(Command::Experiment { which }) => {
            if let Err(e) = which.run() {
                eprintln!("staticgrad experiment: {e}");
                std::process::exit(match e {
                    staticgrad_runner::experiments::ExpError::Input(_) => 2,
                    _ => 1,
                });
            }
        }
        None => println!("staticgrad runner: subcommands arrive with the runner issue"),
    }
}
