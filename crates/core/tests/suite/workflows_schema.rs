//! The committed `schema/workflow.schema.json` (of `.opencode/workflows/*.json`) must match
//! what the code generates.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use orchestra_core::config::{WORKFLOW_SCHEMA_PATH, workflow_json_schema};

#[test]
fn committed_workflow_schema_is_up_to_date() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(WORKFLOW_SCHEMA_PATH);
    let generated = format!(
        "{}\n",
        serde_json::to_string_pretty(&workflow_json_schema()).unwrap()
    );
    if orchestra_testkit::fixtures::update_requested("UPDATE_SCHEMA") {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "schema/workflow.schema.json is stale; regenerate with \
         `UPDATE_SCHEMA=1 cargo test -p orchestra-core --test workflows_schema`"
    );
}
