//! Workflow definitions: built-ins, config and `.opencode/workflows/*.json` files, with
//! errors that name the file, the step and the field; limits refused before anything runs.
#![allow(clippy::unwrap_used)]

use orchestra_core::config::{self, Config, LoadOptions};
use orchestra_core::workflows::{Catalog, limits};
use serde_json::json;

fn project_with(files: &[(&str, serde_json::Value)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join(".opencode/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    for (name, body) in files {
        std::fs::write(workflows.join(name), body.to_string()).unwrap();
    }
    dir
}

fn step(id: &str, worker: &str) -> serde_json::Value {
    json!({"id": id, "title": id, "workerId": worker})
}

#[test]
fn builtins_config_and_files_are_listed_with_parallel_groups() {
    let dir = project_with(&[(
        "review.json",
        json!({"id": "review-search", "name": "Review and search", "steps": [
            {"id": "both", "title": "Both", "parallel": [step("review", "architect"), step("search", "explorer")]},
            {"id": "sum", "title": "Sum", "workerId": "docs", "prompt": "{steps.review} {steps.both}"}
        ]}),
    )]);
    let catalog = Catalog::load(&Config::builtin(), dir.path());
    assert!(catalog.problems.is_empty(), "{:?}", catalog.problems);
    let ids: Vec<&str> = catalog
        .entries
        .iter()
        .map(|e| e.definition.id.as_str())
        .collect();
    assert_eq!(
        ids,
        ["roocode-boomerang", "vision", "memory", "review-search"]
    );
    let boomerang = &catalog.find("roocode-boomerang").unwrap().definition;
    let workers: Vec<&str> = boomerang
        .steps
        .iter()
        .map(|s| s.worker_id.as_str())
        .collect();
    assert_eq!(workers, ["architect", "coder", "architect", "coder"]);
    let file = &catalog.find("review-search").unwrap().definition;
    assert_eq!(file.steps[0].parallel.len(), 2);
    assert_eq!(file.leaves().len(), 3);
    let unknown = catalog.find("roocode-boomrang").unwrap_err().to_string();
    assert!(
        unknown.contains("did you mean `roocode-boomerang`"),
        "{unknown}"
    );
}

#[test]
fn file_errors_name_the_file_the_step_and_the_field() {
    let cases = [
        (
            json!({"id": "a", "name": "A", "steps": [step("one", "coder"), {"id": "two", "title": "Two", "timeoutMs": "soon"}]}),
            "steps[1].timeoutMs",
            "step `two`",
        ),
        (
            json!({"id": "a", "name": "A", "steps": [step("one", "codr")]}),
            "steps[0].workerId",
            "did you mean `coder`",
        ),
        (
            json!({"id": "a", "name": "A", "steps": [{"id": "one", "title": "One", "prompt": "{steps.two}"}, step("two", "coder")]}),
            "steps[0].prompt",
            "step `one` uses `{steps.two}`",
        ),
        (
            json!({"id": "a", "name": "A", "steps": [{"id": "g", "title": "G", "workerId": "coder", "parallel": [step("x", "coder"), step("y", "docs")]}]}),
            "steps[0].workerId",
            "group `g`",
        ),
        (
            json!({"id": "a", "name": "A", "steps": [step("one", "coder"), step("one", "docs")]}),
            "steps[1].id",
            "step `one` appears twice",
        ),
    ];
    for (body, key, words) in cases {
        let dir = project_with(&[("bad.json", body)]);
        let catalog = Catalog::load(&Config::builtin(), dir.path());
        assert_eq!(catalog.problems.len(), 1, "{key}");
        let message = catalog.problems[0].to_string();
        assert!(message.contains("bad.json"), "{message}");
        assert!(message.contains(key), "{message}");
        assert!(message.contains(words), "{message}");
    }
}

#[test]
fn config_definitions_are_checked_at_load_with_their_key_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("orchestrator.json"),
        json!({"workflows": {"definitions": [{"id": "a", "name": "A", "steps": [
            {"id": "g", "title": "G", "parallel": [step("x", "coder"), {"id": "y", "title": "Y", "workerId": "nobody"}]}
        ]}]}})
        .to_string(),
    )
    .unwrap();
    let error = config::load(&LoadOptions {
        project_dir: dir.path().to_owned(),
        global_dir: Some(dir.path().join("none")),
        extra_file: None,
    })
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("workflows.definitions[0].steps[0].parallel[1].workerId"),
        "{error}"
    );
}

#[test]
fn each_limit_refuses_an_over_limit_run_before_it_starts() {
    let mut config = Config::builtin();
    config.security.workflows.max_steps = 3;
    config.security.workflows.max_task_chars = 20;
    let dir = project_with(&[
        (
            "big.json",
            json!({"id": "big", "name": "Big", "steps": [
                {"id": "g", "title": "G", "parallel": [step("a", "coder"), step("b", "docs")]},
                step("c", "coder"), step("d", "coder")]}),
        ),
        (
            "greedy.json",
            json!({"id": "greedy", "name": "Greedy", "steps": [step("a", "coder")],
                   "limits": {"maxCarryChars": 999_999}}),
        ),
        (
            "slow.json",
            json!({"id": "slow", "name": "Slow", "steps": [{"id": "a", "title": "A", "timeoutMs": 999_999}]}),
        ),
    ]);
    let catalog = Catalog::load(&config, dir.path());
    let check = |id: &str, task: &str| {
        let definition = &catalog.find(id).unwrap().definition;
        limits::effective(&config, definition)
            .and_then(|l| limits::check_run(definition, &l, task))
            .map_err(|e| e.to_string())
    };
    let steps = check("big", "ok").unwrap_err();
    assert!(
        steps.contains("4 worker steps") && steps.contains("maxSteps = 3"),
        "{steps}"
    );
    let boomerang = check("roocode-boomerang", "ok").unwrap_err();
    assert!(boomerang.contains("maxSteps = 3"), "{boomerang}");
    let task = check("slow", &"x".repeat(21)).unwrap_err();
    assert!(
        task.contains("21 characters") && task.contains("maxTaskChars = 20"),
        "{task}"
    );
    let carry = check("greedy", "ok").unwrap_err();
    assert!(carry.contains("limits.maxCarryChars = 999999"), "{carry}");
    let timeout = check("slow", "ok").unwrap_err();
    assert!(
        timeout.contains("step `a`") && timeout.contains("perStepTimeoutMs = 120000"),
        "{timeout}"
    );
    check("vision", "ok").unwrap();
}
