//! A store with damaged rows (raw SQL, as a bad build or a hand edit would leave it): the hub
//! still starts, and list views show the good rows plus a warning line for each bad one.
#![allow(clippy::unwrap_used)]

use super::common;

use common::{World, bounded};
use orchestra_protocol::{JobRecord, ListFormat, ListView, TaskListParams};
use orchestra_testkit::fake_llm::FakeLlm;
use orchestra_testkit::opencode::IsolatedHome;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_running_job_does_not_stop_the_hub_or_the_views() {
    bounded(async {
        let home = IsolatedHome::new().unwrap();
        let path = home.root.join("state/orchestra.db");
        {
            let store = orchestra_store::Store::open(&path).unwrap();
            for id in ["fine", "damaged"] {
                let job = JobRecord::start(
                    id.into(),
                    "coder".into(),
                    "t".into(),
                    orchestra_protocol::TaskKind::Worker,
                    "gone-hub",
                );
                store.insert_job(&job).unwrap();
            }
        }
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute("UPDATE jobs SET record = '{' WHERE id = 'damaged'", [])
            .unwrap();
        drop(conn);

        let fake = FakeLlm::start_scripted().await.unwrap();
        let world = World::start_in(fake, home, json!({}), Vec::new()).await;
        assert_eq!(
            world.hub.interrupted_on_start(),
            1,
            "the readable one is recovered"
        );
        for view in [ListView::Tasks, ListView::Status, ListView::Output] {
            let listing = world
                .engine()
                .list(&TaskListParams {
                    view,
                    format: Some(ListFormat::Markdown),
                    ..TaskListParams::default()
                })
                .await
                .unwrap();
            assert!(listing.text.contains("fine"), "{view:?}: {}", listing.text);
            assert!(
                listing
                    .text
                    .contains("warning: skipped unreadable job `damaged`"),
                "{view:?}: {}",
                listing.text
            );
        }
        world.shutdown().await;
    })
    .await;
}
