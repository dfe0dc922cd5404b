//! The std runner of staticgrad as a library: data loading, the training loop, reports,
//! checkpoints and the command line. `main.rs` only parses arguments and calls [`cli::run`];
//! other tools (benchmarks, the book's experiments) reuse these modules directly.

pub mod bench;
pub mod budget;
pub mod check;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod data;
pub mod error;
pub mod experiments;
pub mod interrupt;
pub mod memory;
pub mod model;
pub mod net;
pub mod quiet;
pub mod report;
pub mod runfolder;
pub mod safetensors;
pub mod threads;
pub mod train;
pub mod web;

pub use error::Error;
