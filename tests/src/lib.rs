//! Shared helpers for the cross-crate tests: golden-file access and heap-backed storage.
