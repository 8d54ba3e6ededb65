//! Numbered migrations, tracked with `PRAGMA user_version`.
//!
//! `MIGRATIONS[n]` takes the schema from version `n` to `n + 1`. Append new
//! entries; never edit one that has shipped, because stores in the wild
//! already ran it.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::StoreError;

pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: hubs, jobs, the output log.
    r"
    CREATE TABLE hubs (
        id           TEXT PRIMARY KEY,
        pid          INTEGER NOT NULL,
        started_at   INTEGER NOT NULL,
        heartbeat_at INTEGER NOT NULL,
        project_dir  TEXT NOT NULL
    );

    -- `record` (the full JobRecord as JSON) is the source of truth; the other
    -- columns copy fields out of it so they can be queried and indexed.
    CREATE TABLE jobs (
        id          TEXT PRIMARY KEY,
        hub_id      TEXT NOT NULL,
        worker_id   TEXT NOT NULL,
        kind        TEXT NOT NULL,
        status      TEXT NOT NULL,
        started_at  INTEGER NOT NULL,
        finished_at INTEGER,
        record      TEXT NOT NULL
    );
    CREATE INDEX jobs_status ON jobs(status);
    CREATE INDEX jobs_started_at ON jobs(started_at);
    CREATE INDEX jobs_worker_id ON jobs(worker_id);

    CREATE TABLE job_events (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id  TEXT,
        at      INTEGER NOT NULL,
        level   TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX job_events_at ON job_events(at);
    ",
    // 2: workflow runs, so paused and interrupted runs survive a hub restart.
    r"
    -- `state` (the full WorkflowRun as JSON) is the source of truth; the other
    -- columns copy fields out of it so they can be queried and indexed.
    CREATE TABLE workflow_runs (
        id          TEXT PRIMARY KEY,
        workflow_id TEXT NOT NULL,
        hub_id      TEXT NOT NULL,
        job_id      TEXT NOT NULL,
        status      TEXT NOT NULL,
        started_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        finished_at INTEGER,
        state       TEXT NOT NULL
    );
    CREATE INDEX workflow_runs_status ON workflow_runs(status);
    CREATE INDEX workflow_runs_started_at ON workflow_runs(started_at);
    ",
    // 3: the worker snapshots each live hub publishes, for other processes to show.
    r"
    CREATE TABLE worker_snapshots (
        hub_id     TEXT NOT NULL,
        worker_id  TEXT NOT NULL,
        snapshot   TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (hub_id, worker_id)
    );
    ",
    // 4: the hub's event stream, kept for replay to clients that reconnect. Worker snapshots
    // are no longer published through the store: one hub per project serves them live.
    r"
    CREATE TABLE events (
        id     INTEGER PRIMARY KEY,
        type   TEXT NOT NULL,
        at     INTEGER NOT NULL,
        job_id TEXT,
        body   TEXT NOT NULL
    );
    CREATE INDEX events_job_id ON events(job_id);
    DROP TABLE worker_snapshots;
    ",
    // 5: memory records, links, the append-only change log, sync cursors. Full-text search is
    // a tantivy index kept beside the store (orchestra-memory), rebuilt from these tables.
    r"
    -- `record` (the full MemoryRecord as JSON) is the source of truth; the other columns copy
    -- fields out of it for lookups. `doc` is the search index's handle on the row.
    -- AUTOINCREMENT: a `doc` is never reused, so a record created after an index snapshot always
    -- has a larger `doc` than every record in it.
    CREATE TABLE memory_records (
        doc         INTEGER PRIMARY KEY AUTOINCREMENT,
        id          TEXT NOT NULL UNIQUE,
        scope       TEXT NOT NULL,
        project_id  TEXT NOT NULL,
        kind        TEXT NOT NULL,
        key         TEXT,
        status      TEXT NOT NULL,
        pinned      INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        record      TEXT NOT NULL
    );
    -- A put with the same scope and key updates the one active record.
    CREATE UNIQUE INDEX memory_records_active_key
        ON memory_records(scope, project_id, key) WHERE key IS NOT NULL AND status = 'active';
    CREATE INDEX memory_records_listing ON memory_records(project_id, scope, status, updated_at);
    CREATE INDEX memory_records_pinned ON memory_records(project_id, scope) WHERE pinned = 1;
    CREATE INDEX memory_records_key ON memory_records(project_id, key) WHERE key IS NOT NULL;

    CREATE TABLE memory_links (
        from_id    TEXT NOT NULL,
        to_id      TEXT NOT NULL,
        relation   TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (from_id, to_id, relation)
    );
    CREATE INDEX memory_links_to ON memory_links(to_id);

    -- Append-only: every put, update, supersede, link, retract and delete. `payload` is the
    -- record or link after the change; a delete sets it to NULL in every row of that record.
    CREATE TABLE memory_changes (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        at         INTEGER NOT NULL,
        action     TEXT NOT NULL,
        record_id  TEXT NOT NULL,
        project_id TEXT NOT NULL,
        payload    TEXT
    );
    CREATE INDEX memory_changes_record ON memory_changes(record_id);

    -- How far a consumer of the change log (the Neo4j sync) has got.
    CREATE TABLE memory_cursors (
        name       TEXT PRIMARY KEY,
        seq        INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    ",
    // 6: the process groups of the worker servers each hub process started, and the groups
    // their descendants moved into, so the next hub can kill what a crashed one left behind.
    r"
    CREATE TABLE process_groups (
        owner_pid    INTEGER NOT NULL,
        owner_start  INTEGER NOT NULL,
        pgid         INTEGER NOT NULL,
        leader_pid   INTEGER NOT NULL,
        leader_start INTEGER NOT NULL,
        boot_id      TEXT NOT NULL,
        hub_id       TEXT NOT NULL,
        server_pgid  INTEGER NOT NULL,
        label        TEXT NOT NULL,
        recorded_at  INTEGER NOT NULL,
        PRIMARY KEY (owner_pid, owner_start, pgid)
    );
    ",
    // 7: a run's attachments, stored once when the run is first saved instead of inside its
    // state (which is rewritten at every step boundary), and dropped once the run is final.
    r"
    CREATE TABLE workflow_run_attachments (
        run_id      TEXT PRIMARY KEY,
        attachments TEXT NOT NULL
    );
    ",
    // 8: a job names the workflow run it belongs to (`JobRecord.runId`), in the record and as a
    // column. Earlier jobs said it only indirectly; the run is recovered here from those old
    // encodings, once: a workflow job from the runs that list it (else from the `runId` in the
    // JSON its report's `details` held), a step from its `requestedBy` of
    // `workflow:<workflowId>/<runId>` (the text after the last `/`). Rows whose record is not
    // valid JSON are left alone (they are reported as unreadable). CASE, unlike AND, is
    // guaranteed to stop at the first true branch, so no JSON function sees invalid JSON.
    r"
    ALTER TABLE jobs ADD COLUMN run_id TEXT;
    UPDATE jobs SET run_id = CASE
        WHEN NOT json_valid(record) THEN NULL
        WHEN kind = 'workflow' THEN COALESCE(
            (SELECT r.id FROM workflow_runs r WHERE r.job_id = jobs.id),
            (SELECT r.id FROM workflow_runs r,
                 json_each(CASE WHEN json_valid(r.state) THEN r.state ELSE '{}' END, '$.jobIds') j
             WHERE j.value = jobs.id),
            CASE WHEN json_valid(json_extract(record, '$.report.details'))
                 THEN json_extract(json_extract(record, '$.report.details'), '$.runId') END)
        WHEN json_extract(record, '$.requestedBy') LIKE 'workflow:%/%' THEN NULLIF(replace(
            json_extract(record, '$.requestedBy'),
            rtrim(json_extract(record, '$.requestedBy'),
                  replace(json_extract(record, '$.requestedBy'), '/', '')),
            ''), '')
    END;
    UPDATE jobs SET record = json_set(record, '$.runId', run_id) WHERE run_id IS NOT NULL;
    CREATE INDEX jobs_run_id ON jobs(run_id) WHERE run_id IS NOT NULL;
    ",
    // 9: the processes seen in each recorded group (pid and start time), so a reaper signals
    // only processes that were seen as ours and never a group whose id was reused.
    r"
    CREATE TABLE process_group_members (
        owner_pid   INTEGER NOT NULL,
        owner_start INTEGER NOT NULL,
        pgid        INTEGER NOT NULL,
        pid         INTEGER NOT NULL,
        start       INTEGER NOT NULL,
        PRIMARY KEY (owner_pid, owner_start, pgid, pid, start)
    );
    ",
    // 10: passthrough mode: the OpenCode chat sessions whose every message goes to one worker,
    // so the mode outlives a hub restart.
    r"
    CREATE TABLE passthrough (
        session_id TEXT PRIMARY KEY,
        worker_id  TEXT NOT NULL,
        enabled_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    ",
    // 11: the state of a task's git worktree (`record.worktree.state`), copied out so a
    // starting hub finds the worktrees records own, and pruning keeps jobs with open ones.
    r"
    ALTER TABLE jobs ADD COLUMN worktree_state TEXT;
    UPDATE jobs SET worktree_state = json_extract(record, '$.worktree.state')
     WHERE json_valid(record) AND json_extract(record, '$.worktree.state') IS NOT NULL;
    CREATE INDEX jobs_worktree_state ON jobs (worktree_state) WHERE worktree_state IS NOT NULL;
    ",
    // 12 (notify): each event sent to each of the user's `notify` targets, so failed
    // deliveries can be shown and pending webhook retries survive a hub restart.
    r"
    CREATE TABLE notify_deliveries (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        target          TEXT NOT NULL,
        event_id        INTEGER NOT NULL,
        event_type      TEXT NOT NULL,
        envelope        TEXT NOT NULL,
        status          TEXT NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        last_error      TEXT,
        created_at      INTEGER NOT NULL,
        next_attempt_at INTEGER,
        delivered_at    INTEGER,
        UNIQUE (target, event_id)
    );
    CREATE INDEX notify_deliveries_pending ON notify_deliveries(status) WHERE status = 'pending';
    ",
    // 13: the age-out of automatic memory records finds them by producer through this index
    // instead of parsing every record of the project, so its cost follows the automatic
    // records kept, not the project's history. The expression must stay identical to the one
    // in `memory_upkeep`'s `AGED_OUT` for the planner to use it; `json_valid` keeps a
    // malformed row from failing the index (it is skipped as unreadable elsewhere).
    r"
    CREATE INDEX memory_records_producer ON memory_records(
        project_id,
        (CASE WHEN json_valid(record) THEN json_extract(record, '$.provenance.producer') END),
        doc
    ) WHERE scope = 'project' AND pinned = 0;
    ",
    // 14: the age-out reads only this index: producer, the `auto` tag and the columns it
    // returns are all in it, so a pass parses no record's JSON (step 13's index still left
    // the tag to a `json_each` over every automatic record, on every pass: a cost that grew
    // with the records kept). The expressions must stay identical to `AGED_OUT`'s; `scope` and
    // `pinned` repeat the index's own condition as columns so that it covers the query.
    r#"
    DROP INDEX memory_records_producer;
    CREATE INDEX memory_records_automatic ON memory_records(
        project_id,
        (CASE WHEN json_valid(record) THEN json_extract(record, '$.provenance.producer') END),
        (CASE WHEN json_valid(record) THEN instr(json_extract(record, '$.tags'), '"auto"') > 0 END),
        doc,
        updated_at,
        id,
        scope,
        pinned
    ) WHERE scope = 'project' AND pinned = 0;
    "#,
];

/// The schema version this build writes.
pub(crate) fn known_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// Brings the database up to [`known_version`], one transaction per step.
/// Each step re-reads the version inside its write lock, so two hubs
/// opening a fresh file at once apply every migration exactly once.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let known = known_version();
    let newer = |found: i64| StoreError::NewerSchema {
        path: path.to_owned(),
        found,
        known,
    };
    let found = user_version(conn)?;
    if found > known {
        return Err(newer(found));
    }
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current = user_version(&tx)?;
        if current > known {
            return Err(newer(current));
        }
        let Ok(index) = usize::try_from(current) else {
            return Err(newer(current));
        };
        let Some(sql) = MIGRATIONS.get(index) else {
            return Ok(());
        };
        let version = index + 1;
        let step = |source| StoreError::Migration {
            path: path.to_owned(),
            version,
            source,
        };
        tx.execute_batch(sql).map_err(step)?;
        tx.pragma_update(None, "user_version", current + 1)
            .map_err(step)?;
        tx.commit().map_err(step)?;
        tracing::info!(path = %path.display(), version, "store schema upgraded");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use orchestra_protocol::{JobRecord, JobReport, TaskKind};

    use super::*;

    #[test]
    fn migrates_fresh_database_to_known_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, Path::new(":memory:")).unwrap();
        assert_eq!(user_version(&conn).unwrap(), known_version());
        // A second run is a no-op.
        migrate(&mut conn, Path::new(":memory:")).unwrap();
        assert_eq!(user_version(&conn).unwrap(), known_version());
    }

    #[test]
    fn refuses_newer_schema() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", known_version() + 1)
            .unwrap();
        let error = migrate(&mut conn, Path::new("/x/orchestra.db")).unwrap_err();
        assert!(matches!(error, StoreError::NewerSchema { .. }), "{error}");
    }

    /// A version-7 job row: the record as the build of then wrote it.
    fn old_job(conn: &Connection, id: &str, kind: TaskKind, edit: impl Fn(&mut JobRecord)) {
        let mut job = JobRecord::start(id.into(), "w".into(), "t".into(), kind, "h");
        edit(&mut job);
        let record = serde_json::to_string(&job).unwrap();
        assert!(
            !record.contains("runId\":"),
            "an old row has no runId: {record}"
        );
        conn.execute(
            "INSERT INTO jobs (id, hub_id, worker_id, kind, status, started_at, record)
             VALUES (?1, 'h', 'w', ?2, 'succeeded', 0, ?3)",
            [id, kind.as_str(), &record],
        )
        .unwrap();
    }

    #[test]
    fn jobs_of_an_older_store_get_their_run_from_the_old_encodings() {
        let mut conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..7] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 7).unwrap();
        conn.execute(
            "INSERT INTO workflow_runs
                 (id, workflow_id, hub_id, job_id, status, started_at, updated_at, state)
             VALUES ('run-a', 'boomerang', 'h', 'wf-current', 'success', 0, 0,
                     '{\"jobIds\": [\"wf-old\", \"wf-current\"]}')",
            [],
        )
        .unwrap();
        old_job(&conn, "wf-current", TaskKind::Workflow, |_| {});
        old_job(&conn, "wf-old", TaskKind::Workflow, |_| {});
        // Its run was pruned; the report's JSON still names it.
        old_job(&conn, "wf-pruned", TaskKind::Workflow, |job| {
            job.report = Some(JobReport {
                details: Some(r#"{"runId": "run-b", "status": "success"}"#.into()),
                ..JobReport::default()
            });
        });
        old_job(&conn, "wf-prose", TaskKind::Workflow, |job| {
            job.report = Some(JobReport {
                details: Some("not JSON at all".into()),
                ..JobReport::default()
            });
        });
        old_job(&conn, "step", TaskKind::Worker, |job| {
            job.requested_by = Some("workflow:boomerang/run-a".into());
        });
        old_job(&conn, "task", TaskKind::Auto, |job| {
            job.requested_by = Some("opencode".into());
        });
        conn.execute(
            "INSERT INTO jobs (id, hub_id, worker_id, kind, status, started_at, record)
             VALUES ('damaged', 'h', 'w', 'worker', 'running', 0, '{')",
            [],
        )
        .unwrap();

        migrate(&mut conn, Path::new(":memory:")).unwrap();

        let run_of = |id: &str| -> (Option<String>, String) {
            conn.query_row(
                "SELECT run_id, record FROM jobs WHERE id = ?1",
                [id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap()
        };
        for (id, expected) in [
            ("wf-current", Some("run-a")),
            ("wf-old", Some("run-a")),
            ("wf-pruned", Some("run-b")),
            ("wf-prose", None),
            ("step", Some("run-a")),
            ("task", None),
        ] {
            let (column, record) = run_of(id);
            assert_eq!(column.as_deref(), expected, "{id}");
            let job: JobRecord = serde_json::from_str(&record).unwrap();
            assert_eq!(job.run_id.as_deref(), expected, "{id}: {record}");
        }
        assert_eq!(run_of("damaged"), (None, "{".to_owned()));
    }

    #[test]
    fn fts5_is_available_for_later_migrations() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE VIRTUAL TABLE t USING fts5(body);")
            .unwrap();
    }
}
