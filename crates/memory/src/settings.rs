//! What the engine takes from the `memory.*` config keys. The engine knows nothing about config
//! files; the hub maps its resolved config onto this (see the README's memory section for the
//! key-by-key table).

use orchestra_protocol::memory::MemoryScope;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemorySettings {
    /// `memory.scope`: the scope of a put that names none.
    pub default_scope: MemoryScope,
    /// `memory.maxChars`: the most characters a record's body may have; a longer put is
    /// refused with an error naming this key (never silently cut).
    pub max_body_chars: usize,
    /// `memory.inject.maxChars` / 4: the context block's default token budget.
    pub inject_budget_tokens: u32,
    /// `memory.inject.maxEntries`: task-relevant project records in the block.
    pub inject_max_entries: usize,
    /// `memory.inject.includeGlobal`: global records in the block at all.
    pub inject_include_global: bool,
    /// `memory.inject.maxGlobalEntries`: task-relevant global records in the block.
    pub inject_max_global_entries: usize,
    /// `memory.inject.includeProjectSummary`: the active record keyed `summary:project` opens
    /// the block.
    pub inject_project_summary: bool,
}

/// The key of the project summary record (the original's key convention).
pub const PROJECT_SUMMARY_KEY: &str = "summary:project";

impl Default for MemorySettings {
    fn default() -> Self {
        MemorySettings {
            default_scope: MemoryScope::Project,
            max_body_chars: 2_000,
            inject_budget_tokens: 800,
            inject_max_entries: 8,
            inject_include_global: true,
            inject_max_global_entries: 3,
            inject_project_summary: true,
        }
    }
}
