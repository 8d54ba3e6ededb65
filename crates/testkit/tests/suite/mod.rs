//! The test kit's integration tests, compiled into one binary.

// The real pinned OpenCode against the fake LLM, isolated and offline.
mod opencode_e2e;
// `scripts/test` and the suite's closing count, on a throwaway workspace.
mod test_script;
