//! orchestra-store's integration tests: one module per table or concern, compiled into one binary.

// Stores in temp dirs and rows to put in them.
mod fixtures;

// Opening, migrating and sharing one file.
mod concurrency;
mod open;

// The tables: hubs, jobs, the output log, workflow runs.
mod hubs;
mod jobs;
mod logs;
mod spend;
mod workflow_runs;

// Rows that do not decode.
mod unreadable_rows;
