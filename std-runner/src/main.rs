//! `staticgrad`: the std runner. Everything lives in the `staticgrad_runner` library
//! (data, training loop, reports, checkpoints, command line); this is only the entry point.

fn main() {
    std::process::exit(staticgrad_runner::cli::main());
}
