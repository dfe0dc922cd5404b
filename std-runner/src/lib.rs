//! The std runner of staticgrad as a library: data, training loop, reports and the chapter's experiments.

pub mod experiments;
