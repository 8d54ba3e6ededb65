//! A task's worktree on its panel page, in the real headless Chromium: a coder task in a git
//! project finishes on its own branch, its page shows the diff (files and hunks, the worker's
//! text as text, never as markup), Merge lands the change in the user's checkout; a task whose
//! Merge conflicts shows the files and changes nothing, and its Discard removes its worktree and
//! branch. The hub is a real one with the pinned OpenCode on the fake LLM; every effect is
//! checked with git.
#![allow(clippy::unwrap_used)]

use super::common;
use super::panel::panel_steps::{go, log_in, login_link, wait, worker_task};
use super::worktrees::{git, task_branches, worktree_count, write_call};

use std::time::Duration;

use common::World;
use orchestra_browser::Browser;
use orchestra_core::worktree::Worktrees;
use serde_json::json;

/// File content that would run script if the page ever inserted it as markup.
const MARKUP: &str = "<img src=x id=injected onerror=\"document.title='owned'\">\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_panel_shows_a_worktree_diff_and_merges_and_discards_it() {
    tokio::time::timeout(Duration::from_secs(300), scenario())
        .await
        .expect("the worktree panel scenario took longer than 300 s");
}

async fn scenario() {
    let world = World::new(json!({})).await;
    let dir = world.project.dir.clone();
    let client = world.connect().await;
    let browser = Browser::launch(1280, 800).await.unwrap();
    let page = browser.new_page().await.unwrap();
    log_in(&page, &login_link(&world)).await;

    // A coder task writes a file in its own worktree; the checkout does not change.
    let content = format!("from the panel\n{MARKUP}");
    let merged = worker_task(&client, &write_call("merged.txt", &content)).await;
    let record = client.finish(&merged).await;
    assert_eq!(record["status"], "succeeded", "{record}");
    assert_eq!(record["worktree"]["state"], "open", "{record}");
    assert!(!dir.join("merged.txt").exists(), "the checkout changed");
    let branch = record["worktree"]["branch"].as_str().unwrap().to_owned();

    // Its page: branch, base and counts from the record; the diff from `worktree.diff`.
    go(&page, &format!("#/tasks/{merged}")).await;
    wait(
        &page,
        "document.querySelector('pre.diff')?.textContent.includes('+from the panel')",
    )
    .await;
    let facts = page
        .eval("document.querySelector('.wt-facts').innerText")
        .await
        .unwrap();
    let facts = facts.as_str().unwrap();
    assert!(facts.contains(&branch), "{facts}");
    assert!(facts.contains("main @"), "{facts}");
    assert!(facts.contains("1 file(s), +2 −0"), "{facts}");
    assert!(facts.contains("open"), "{facts}");
    let shown = page
        .eval(
            "({files: [...document.querySelectorAll('table.wt-files tbody tr')].map(r => r.dataset.path), \
               hunks: document.querySelectorAll('pre.diff .d-hunk').length, \
               added: [...document.querySelectorAll('pre.diff .d-add')].map(s => s.textContent), \
               injected: document.getElementById('injected') !== null || document.querySelector('pre.diff img') !== null, \
               title: document.title})",
        )
        .await
        .unwrap();
    assert_eq!(shown["files"], json!(["merged.txt"]), "{shown}");
    assert_eq!(shown["hunks"], 1, "{shown}");
    assert_eq!(
        shown["added"],
        json!(["+from the panel\n", format!("+{MARKUP}")]),
        "{shown}"
    );
    assert_eq!(
        shown["injected"], false,
        "the diff was inserted as markup: {shown}"
    );
    assert_ne!(shown["title"], "owned", "{shown}");

    // Merge: the change lands in the user's checkout, on main; the branch is gone.
    page.click(".worktree button.wt-merge").await.unwrap();
    let outcome = wait(
        &page,
        "document.querySelector('.wt-outcome p.ok')?.textContent",
    )
    .await;
    assert!(outcome.as_str().unwrap().contains("checkout"), "{outcome}");
    wait(
        &page,
        "document.querySelector('.worktree')?.dataset.state === 'merged' && \
         document.querySelector('.worktree button.wt-merge').hidden",
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(dir.join("merged.txt")).unwrap(),
        content
    );
    assert_eq!(git(&dir, &["show", "main:merged.txt"]), content);
    assert_eq!(
        git(&dir, &["status", "--porcelain", "--", "merged.txt"]),
        ""
    );
    assert!(task_branches(&dir).is_empty(), "{:?}", task_branches(&dir));

    // Two tasks write the same file from the same base; the first is merged (by a client),
    // the second's Merge on the page reports the conflict and changes nothing; its Discard
    // (asked twice) removes its worktree and branch.
    let landed = worker_task(&client, &write_call("both.txt", "landed\n")).await;
    let thrown = worker_task(&client, &write_call("both.txt", "not wanted\n")).await;
    for id in [&landed, &thrown] {
        let record = client.finish(id).await;
        assert_eq!(record["status"], "succeeded", "{record}");
    }
    assert_eq!(task_branches(&dir).len(), 2);
    let op = client
        .call_json(
            "task_start",
            json!({"kind": "op", "op": "worktree.merge", "worktree": {"taskId": landed}}),
        )
        .await;
    let done = client.finish(op["taskId"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        std::fs::read_to_string(dir.join("both.txt")).unwrap(),
        "landed\n"
    );
    go(&page, &format!("#/tasks/{thrown}")).await;
    wait(
        &page,
        "document.querySelector('pre.diff')?.textContent.includes('+not wanted')",
    )
    .await;
    page.click(".worktree button.wt-merge").await.unwrap();
    let refused = wait(
        &page,
        "document.querySelector('.wt-outcome p.error-text')?.textContent",
    )
    .await;
    assert!(
        refused.as_str().unwrap().contains("not merged")
            && refused.as_str().unwrap().contains("both.txt"),
        "{refused}"
    );
    let facts = wait(
        &page,
        "document.querySelector('.worktree')?.dataset.state === 'conflict' && \
         document.querySelector('.wt-facts').innerText",
    )
    .await;
    assert!(facts.as_str().unwrap().contains("Conflicts"), "{facts}");
    assert_eq!(
        std::fs::read_to_string(dir.join("both.txt")).unwrap(),
        "landed\n"
    );
    assert_eq!(git(&dir, &["status", "--porcelain", "--", "both.txt"]), "");
    assert!(
        !dir.join(".git/MERGE_HEAD").exists(),
        "a merge was left in progress"
    );
    let branch = Worktrees::branch_of(&thrown);
    assert_eq!(task_branches(&dir), std::slice::from_ref(&branch));
    assert_eq!(worktree_count(&dir), 2);
    go(&page, &format!("#/tasks/{thrown}")).await;
    wait(
        &page,
        "document.querySelector('pre.diff')?.textContent.includes('+not wanted')",
    )
    .await;
    page.click(".worktree button.wt-discard").await.unwrap();
    wait(
        &page,
        "document.querySelector('.worktree button.wt-discard')?.textContent === 'Really discard?'",
    )
    .await;
    page.click(".worktree button.wt-discard").await.unwrap();
    wait(
        &page,
        "document.querySelector('.worktree')?.dataset.state === 'discarded'",
    )
    .await;
    assert!(task_branches(&dir).is_empty(), "{:?}", task_branches(&dir));
    assert_eq!(worktree_count(&dir), 1);
    assert_eq!(
        std::fs::read_to_string(dir.join("both.txt")).unwrap(),
        "landed\n"
    );
    let hub_record = client
        .call_json("task_peek", json!({"taskId": thrown}))
        .await;
    assert_eq!(hub_record["worktree"]["state"], "discarded", "{hub_record}");

    drop(browser);
    client.close().await;
}
