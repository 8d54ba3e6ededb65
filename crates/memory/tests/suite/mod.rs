//! The memory engine's tests, one binary with a module per area.
#![allow(clippy::unwrap_used)]

mod common;
mod concurrency;
mod context;
mod index;
mod jsonl;
mod neo4j;
mod quoting;
mod scope;
mod search;
mod upkeep;
mod writes;
