//! `requiredSkills` on real OpenCode: a profile's or a workflow step's skills are checked on the
//! worker's own OpenCode before the first task runs. Missing, unreadable (bad frontmatter) and
//! denied (`permission.skill` in the project's opencode.json) skills fail with the skill and
//! the reason named and no model call; a present, allowed skill lets the task run.
#![allow(clippy::unwrap_used)]

use super::common;

use common::{World, bounded};
use orchestra_protocol::{JobStatus, TaskKind, TaskStartParams, WorkflowRunStatus};
use orchestra_testkit::fake_llm::FakeLlm;
use orchestra_testkit::opencode::fake_provider_config;
use serde_json::json;

fn skill(world: &World, name: &str, text: &str) {
    world
        .project
        .write(&format!(".opencode/skill/{name}/SKILL.md"), text)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_skills_are_checked_before_the_first_task() {
    bounded(async {
        let fake = FakeLlm::start_scripted().await.unwrap();
        let mut opencode = fake_provider_config(&fake.base_url());
        opencode["permission"] = json!({"skill": {"*": "allow", "secret": "deny"}});
        let orchestrator = json!({
            "profiles": [
                {"id": "coder", "requiredSkills": ["present"]},
                {"id": "docs", "requiredSkills": ["nowhere"]},
                {"id": "architect", "requiredSkills": ["broken"]},
            ],
            "workflows": {"definitions": [{
                "id": "guarded", "name": "Guarded", "steps": [
                    {"id": "first", "title": "First", "workerId": "coder", "prompt": "WF-FIRST {task}"},
                    {"id": "second", "title": "Second", "workerId": "coder", "prompt": "WF-SECOND {task}",
                     "requiredSkills": ["secret"]}
                ]}]}
        });
        let world = World::start_with_opencode_config(fake, opencode, orchestrator).await;
        // Written before any worker server starts, as a project's skills are.
        skill(&world, "present", "---\nname: present\ndescription: A skill that is there\n---\nUse it.\n");
        skill(&world, "secret", "---\nname: secret\ndescription: Denied by the project\n---\nNo.\n");
        skill(&world, "broken", "---\nname: [broken\ndescription: unclosed list\n---\nBody\n");

        // Present and allowed: the task runs.
        let ok = world.run("coder", "PRESENT-TASK hello").await;
        assert_eq!(ok.status, JobStatus::Succeeded, "{ok:?}");

        // Missing.
        let missing = world.run("docs", "MISSING-TASK").await;
        assert_eq!(missing.status, JobStatus::Failed);
        let error = missing.error.unwrap();
        assert!(
            error.contains("`nowhere`") && error.contains("(missing)") && error.contains(".opencode/skill/nowhere/SKILL.md"),
            "{error}"
        );

        // Bad frontmatter: the file is there, OpenCode does not load it.
        let broken = world.run("architect", "BROKEN-TASK").await;
        assert_eq!(broken.status, JobStatus::Failed);
        let error = broken.error.unwrap();
        assert!(
            error.contains("`broken`") && error.contains("(invalid_frontmatter)") && error.contains("broken/SKILL.md"),
            "{error}"
        );

        // Denied, on the second step of a workflow: the run fails before its first step.
        let started = world
            .engine()
            .start(
                TaskStartParams {
                    kind: TaskKind::Workflow,
                    task: "the job".into(),
                    workflow_id: Some("guarded".into()),
                    ..TaskStartParams::default()
                },
                None,
            )
            .await
            .unwrap();
        let record = world.finish(&started.task_id).await;
        assert_eq!(record.status, JobStatus::Failed, "{record:?}");
        let error = record.error.unwrap();
        assert!(
            error.contains("step `second`") && error.contains("`secret`") && error.contains("(denied)"),
            "{error}"
        );
        let run = world
            .engine()
            .workflows()
            .get_run(started.continue_run_id.as_deref().unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(run.status, WorkflowRunStatus::Error);

        let requests = world.fake.requests();
        for never in ["MISSING-TASK", "BROKEN-TASK", "WF-FIRST", "WF-SECOND"] {
            assert!(
                !requests.iter().any(|r| r.last_user_text.contains(never)),
                "`{never}` reached the model"
            );
        }
        assert!(requests.iter().any(|r| r.last_user_text.contains("PRESENT-TASK")));
        world.shutdown().await;
    })
    .await;
}
