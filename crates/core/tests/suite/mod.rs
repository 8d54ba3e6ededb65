//! orchestra-core's integration tests: one module per area, compiled into one binary.

// Helpers the hub tests share: a world of the fake LLM, real OpenCode and a hub.
mod common;
// The provider configs whose catalogs are captured under `tests/fixtures/catalogs/`.
mod models_providers;

// Config and workflow files: the malformed-config corpus, definitions, committed schemas.
mod config_corpus;
mod config_schema;
mod workflows_definitions;
mod workflows_schema;

// Model resolution: catalogs captured from OpenCode, table-driven resolution, end to end.
mod models_catalog;
mod models_e2e;
mod models_resolve;

// OpenCode itself: the server process (readiness, stop, crashes) and the HTTP client.
mod opencode_client;
mod supervisor;
// The orphan reaper's records: only processes seen as ours are ever signalled.
mod reaper;

// The hub end to end on real OpenCode and the fake LLM.
mod attach_e2e;
mod budgets_e2e;
mod cancel_phases_e2e;
mod checks_e2e;
mod fallback_e2e;
mod jobs_e2e;
mod memory_deadline;
mod memory_e2e;
mod memory_upkeep;
mod reconnect_e2e;
mod run_budget_clock_e2e;
mod skills_preflight_e2e;
mod unreadable_store;
mod workers_e2e;
mod workflows_e2e;
mod worktree_instances_e2e;
mod worktree_spares;
mod worktrees_e2e;

// The Neo4j memory mirror (runs only with `--features neo4j` and NEO4J_URI).
mod memory_neo4j;

// No input makes the engine panic (proptest).
mod no_panic_properties;
