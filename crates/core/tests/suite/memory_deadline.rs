//! Issue 24 §4: no unbounded wait on the memory index. Another process holding the index lock
//! (a long rebuild, a stuck CLI) neither keeps the hub from starting nor a task from running:
//! the task goes without its memory block and its record says why; once the lock is free,
//! memory opens in the background and the next task gets its block again.
#![allow(clippy::unwrap_used)]

use std::fs::File;

use orchestra_testkit::fake_llm::FakeLlm;
use orchestra_testkit::opencode::IsolatedHome;
use serde_json::json;

use super::common::{World, bounded};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_memory_index_blocks_neither_the_hub_nor_a_task_start() {
    bounded(async {
        let home = IsolatedHome::new().unwrap();
        // The lock of the index beside the world's store (`state/orchestra.db`), held as
        // another process would hold it during a rebuild.
        let state = home.root.join("state");
        std::fs::create_dir_all(&state).unwrap();
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(state.join("memory-index.lock"))
            .unwrap();
        lock.lock().unwrap();

        // Before, the hub waited here for the lock, for ever.
        let fake = FakeLlm::start_scripted().await.unwrap();
        // A generous OpenCode start: this test is about memory, not a busy machine.
        let config = json!({"startupTimeout": 100_000});
        let world = World::start_in(fake, home, config, Vec::new()).await;
        let id = world
            .start_task("coder", "describe the parser module")
            .await;
        // The start did not wait for the block (it waits up to 200 ms for a locked index): the
        // block is built while the session opens, and the note comes with it.
        let started = world
            .engine()
            .peek(&orchestra_protocol::TaskPeekParams {
                task_id: Some(id.clone()),
                ..Default::default()
            })
            .unwrap();
        let started = started.lookups()[0].record().unwrap().clone();
        assert_eq!(started.memory_note, None, "{started:?}");
        let record = world.finish(&id).await;
        assert_eq!(
            record.status,
            orchestra_protocol::JobStatus::Succeeded,
            "{record:?}"
        );
        let note = record.memory_note.clone().unwrap_or_default();
        assert!(
            note.contains("memory block left out") && note.contains("not ready"),
            "the record should say the block was left out: {record:?}"
        );
        // A memory call says memory is still opening, rather than hanging.
        let memory = world.engine().memory().unwrap();
        let err = memory.service().await.unwrap_err();
        assert_eq!(
            err.kind(),
            orchestra_protocol::ErrorKind::Unavailable,
            "{err}"
        );

        drop(lock);
        // Memory opens in the background now; a put waits for it (bounded by the hub).
        let put = memory
            .put(
                orchestra_protocol::memory::MemoryPut {
                    kind: Some("convention".into()),
                    body: "The parser module keeps its grammar in grammar.pest".into(),
                    pinned: Some(true),
                    ..Default::default()
                },
                None,
            )
            .await
            .unwrap();
        let record = world.run("coder", "describe the parser module again").await;
        assert_eq!(record.memory_note, None, "{record:?}");
        let request = world
            .fake
            .requests()
            .into_iter()
            .find(|r| {
                r.last_user_text
                    .contains("describe the parser module again")
            })
            .unwrap();
        assert!(
            request.system_prompt.contains(&put.record.id),
            "the block should be back once memory is open: {}",
            request.system_prompt
        );
        world.shutdown().await;
    })
    .await;
}
