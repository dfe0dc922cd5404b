//! See main.rs: this class of issue 14.

#[allow(unused_imports)]
use super::*;
