//! What the hub knows about the OpenCode sessions its plugin reports on: which plugin instance
//! owns each, whether it is idle, the tasks it started that still run, finished results it has
//! not seen yet, and its first message (the memory block's query). Pure state, no I/O; the
//! hooks in `mod.rs` decide when to act on it.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Instant;

use orchestra_protocol::JobRecord;

/// Sessions kept at most; the longest untouched one without running tasks goes first.
const MAX_SESSIONS: usize = 1000;
/// Finished results waiting for delivery per session; older ones are dropped (their records
/// stay in the store for `task_peek`).
const MAX_PENDING: usize = 50;
/// Task ids remembered per session as already seen (returned by `task_await`, used by the
/// vision trigger).
const MAX_SEEN: usize = 200;
/// The first message is kept this long at most, in characters.
const MAX_FIRST_TEXT_CHARS: usize = 2000;

/// A task a session started that still runs.
#[derive(Debug, Clone, PartialEq)]
pub struct RunningTask {
    pub id: String,
    /// The worker, or `workflow:<id>`.
    pub worker_id: String,
    pub started_at: i64,
}

#[derive(Debug)]
struct Session {
    /// The plugin instance (one OpenCode process) that last reported on the session.
    instance: Option<String>,
    /// Between turns. Unknown sessions count as idle: a session is seen busy when it starts a
    /// task (a tool call runs inside a turn) or when OpenCode says so.
    idle: bool,
    first_text: Option<String>,
    running: BTreeMap<String, RunningTask>,
    pending: Vec<JobRecord>,
    /// Tasks that finished while the session was busy; the idle notification names them once
    /// the session is idle.
    unannounced: Vec<String>,
    seen: HashSet<String>,
    seen_order: VecDeque<String>,
    touched: Instant,
}

impl Session {
    fn new() -> Session {
        Session {
            instance: None,
            idle: true,
            first_text: None,
            running: BTreeMap::new(),
            pending: Vec::new(),
            unannounced: Vec::new(),
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
            touched: Instant::now(),
        }
    }

    fn remember_seen(&mut self, id: &str) {
        if self.seen.insert(id.to_owned()) {
            self.seen_order.push_back(id.to_owned());
            if self.seen_order.len() > MAX_SEEN
                && let Some(oldest) = self.seen_order.pop_front()
            {
                self.seen.remove(&oldest);
            }
        }
    }
}

/// What a finished task means for the session that started it.
#[derive(Debug, PartialEq, Eq)]
pub struct Finished {
    pub session_id: String,
    /// The session is between turns.
    pub idle: bool,
    /// The session has not seen the result yet.
    pub news: bool,
}

/// Finished results ready to go into a session, and the instance that should add them.
#[derive(Debug)]
pub struct Deliverable {
    pub session_id: String,
    pub instance: String,
    pub records: Vec<JobRecord>,
}

#[derive(Debug, Default)]
pub struct Sessions {
    map: HashMap<String, Session>,
    /// Which session started each running task, to find the session of a task's question.
    owners: HashMap<String, String>,
}

impl Sessions {
    fn entry(&mut self, session_id: &str) -> &mut Session {
        if !self.map.contains_key(session_id) && self.map.len() >= MAX_SESSIONS {
            self.evict_one();
        }
        let session = self
            .map
            .entry(session_id.to_owned())
            .or_insert_with(Session::new);
        session.touched = Instant::now();
        session
    }

    fn evict_one(&mut self) {
        let oldest = self
            .map
            .iter()
            .filter(|(_, s)| s.running.is_empty())
            .min_by_key(|(_, s)| s.touched)
            .map(|(id, _)| id.clone());
        if let Some(id) = oldest {
            self.map.remove(&id);
        }
    }

    /// The instance reports on the session, so deliveries for it go there.
    pub fn claim(&mut self, session_id: &str, instance: Option<&str>) {
        if let Some(instance) = instance {
            self.entry(session_id).instance = Some(instance.to_owned());
        }
    }

    pub fn set_idle(&mut self, session_id: &str, idle: bool) {
        self.entry(session_id).idle = idle;
    }

    pub fn is_idle(&self, session_id: &str) -> bool {
        self.map.get(session_id).is_none_or(|s| s.idle)
    }

    pub fn forget(&mut self, session_id: &str) {
        if let Some(session) = self.map.remove(session_id) {
            for id in session.running.keys() {
                self.owners.remove(id);
            }
        }
    }

    /// Keeps the session's first message as the query of its memory block, so the block stays
    /// the same for the whole session (and the provider's prompt cache keeps working).
    pub fn note_text(&mut self, session_id: &str, text: &str) {
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        let session = self.entry(session_id);
        if session.first_text.is_none() {
            session.first_text = Some(text.chars().take(MAX_FIRST_TEXT_CHARS).collect());
        }
    }

    pub fn first_text(&self, session_id: &str) -> Option<String> {
        self.map.get(session_id)?.first_text.clone()
    }

    pub fn started(&mut self, session_id: &str, task: RunningTask) {
        self.owners.insert(task.id.clone(), session_id.to_owned());
        self.entry(session_id).running.insert(task.id.clone(), task);
    }

    /// A task finished: it stops being listed, and its result waits for delivery unless the
    /// session has it already. Returns what the hooks act on (`None`: no session started it).
    pub fn finished(&mut self, record: &JobRecord) -> Option<Finished> {
        let session_id = record.caller_session_id.clone()?;
        self.owners.remove(&record.id);
        let session = self.entry(&session_id);
        session.running.remove(&record.id);
        // Seen already (a `task_await` answer, a description put into the message): neither
        // delivered nor announced.
        let news = !session.seen.contains(&record.id);
        if news && !session.pending.iter().any(|r| r.id == record.id) {
            session.pending.push(record.clone());
            if session.pending.len() > MAX_PENDING {
                session.pending.remove(0);
            }
        }
        // A busy session's notification waits until it is idle: [`Sessions::take_unannounced`].
        if news && !session.idle && session.unannounced.len() < MAX_PENDING {
            session.unannounced.push(record.id.clone());
        }
        Some(Finished {
            idle: session.idle,
            news,
            session_id,
        })
    }

    /// The session no longer has this result (the vision trigger stopped waiting for it): it is
    /// delivered when it finishes.
    pub fn unsee(&mut self, session_id: &str, task_id: &str) {
        if let Some(session) = self.map.get_mut(session_id)
            && session.seen.remove(task_id)
        {
            session.seen_order.retain(|id| id != task_id);
        }
    }

    /// Tasks that finished while the session was busy, once.
    pub fn take_unannounced(&mut self, session_id: &str) -> Vec<String> {
        self.map
            .get_mut(session_id)
            .map(|s| std::mem::take(&mut s.unannounced))
            .unwrap_or_default()
    }

    /// The session already has these results (a `task_await` answer, the vision trigger): they
    /// are not delivered again.
    pub fn mark_seen(&mut self, session_id: &str, task_ids: &[String]) {
        let session = self.entry(session_id);
        for id in task_ids {
            session.remember_seen(id);
        }
        session.pending.retain(|r| !task_ids.contains(&r.id));
    }

    pub fn owner_of(&self, task_id: &str) -> Option<&str> {
        self.owners.get(task_id).map(String::as_str)
    }

    pub fn running(&self, session_id: &str) -> Vec<RunningTask> {
        self.map
            .get(session_id)
            .map(|s| s.running.values().cloned().collect())
            .unwrap_or_default()
    }

    #[cfg(test)]
    pub fn has_pending(&self, session_id: &str) -> bool {
        self.map
            .get(session_id)
            .is_some_and(|s| !s.pending.is_empty())
    }

    /// The session's finished results, taken out, if it is idle and an instance owns it.
    pub fn take_deliverable(&mut self, session_id: &str) -> Option<Deliverable> {
        let session = self.map.get_mut(session_id)?;
        if !session.idle || session.pending.is_empty() {
            return None;
        }
        let instance = session.instance.clone()?;
        let records = std::mem::take(&mut session.pending);
        for record in &records {
            session.remember_seen(&record.id);
        }
        Some(Deliverable {
            session_id: session_id.to_owned(),
            instance,
            records,
        })
    }

    /// Puts results back whose delivery failed (the instance's stream was gone).
    pub fn put_back(&mut self, deliverable: Deliverable) {
        let session = self.entry(&deliverable.session_id);
        for record in deliverable.records.into_iter().rev() {
            session.seen.remove(&record.id);
            session.pending.insert(0, record);
        }
    }

    /// Sessions owned by `instance`.
    pub fn owned_by(&self, instance: &str) -> Vec<String> {
        self.map
            .iter()
            .filter(|(_, s)| s.instance.as_deref() == Some(instance))
            .map(|(id, _)| id.clone())
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use orchestra_protocol::JobStatus;

    fn record(id: &str, session: &str) -> JobRecord {
        let mut record = JobRecord::start(
            id.into(),
            "coder".into(),
            "t".into(),
            orchestra_protocol::TaskKind::Worker,
            "hub",
        );
        record.caller_session_id = Some(session.into());
        record.finish(JobStatus::Succeeded, record.started_at + 5);
        record
    }

    fn task(id: &str) -> RunningTask {
        RunningTask {
            id: id.into(),
            worker_id: "coder".into(),
            started_at: 0,
        }
    }

    #[test]
    fn a_result_waits_for_the_idle_session_and_goes_to_its_instance_once() {
        let mut sessions = Sessions::default();
        sessions.claim("s", Some("i1"));
        sessions.set_idle("s", false);
        sessions.started("s", task("a"));
        assert_eq!(sessions.running("s").len(), 1);
        assert_eq!(
            sessions.finished(&record("a", "s")),
            Some(Finished {
                session_id: "s".into(),
                idle: false,
                news: true
            })
        );
        assert!(sessions.running("s").is_empty());
        assert!(sessions.take_deliverable("s").is_none(), "busy");
        sessions.set_idle("s", true);
        assert_eq!(sessions.take_unannounced("s"), vec!["a".to_owned()]);
        assert!(sessions.take_unannounced("s").is_empty());
        let ready = sessions.take_deliverable("s").unwrap();
        assert_eq!(ready.instance, "i1");
        assert_eq!(ready.records.len(), 1);
        assert!(sessions.take_deliverable("s").is_none(), "only once");
    }

    #[test]
    fn a_result_the_session_saw_is_not_delivered() {
        let mut sessions = Sessions::default();
        sessions.claim("s", Some("i1"));
        sessions.started("s", task("a"));
        sessions.started("s", task("b"));
        // Seen before the finish event arrives, and after.
        sessions.mark_seen("s", &["a".to_owned()]);
        sessions.set_idle("s", false);
        assert!(!sessions.finished(&record("a", "s")).unwrap().news);
        assert!(sessions.take_unannounced("s").is_empty(), "not announced");
        sessions.set_idle("s", true);
        sessions.finished(&record("b", "s"));
        sessions.mark_seen("s", &["b".to_owned()]);
        assert!(sessions.take_deliverable("s").is_none());
        assert!(!sessions.has_pending("s"));
    }

    #[test]
    fn a_result_no_longer_seen_is_delivered_once() {
        let mut sessions = Sessions::default();
        sessions.claim("s", Some("i1"));
        sessions.mark_seen("s", &["v".to_owned()]);
        sessions.unsee("s", "v");
        sessions.finished(&record("v", "s"));
        sessions.finished(&record("v", "s"));
        assert_eq!(sessions.take_deliverable("s").unwrap().records.len(), 1);
    }

    #[test]
    fn a_failed_delivery_is_kept_and_nothing_without_an_instance_is_taken() {
        let mut sessions = Sessions::default();
        sessions.finished(&record("a", "s"));
        assert!(sessions.take_deliverable("s").is_none(), "no instance yet");
        sessions.claim("s", Some("i2"));
        let ready = sessions.take_deliverable("s").unwrap();
        sessions.put_back(ready);
        assert_eq!(sessions.take_deliverable("s").unwrap().records[0].id, "a");
        assert_eq!(sessions.owned_by("i2"), vec!["s".to_owned()]);
    }

    #[test]
    fn the_first_message_is_the_one_kept() {
        let mut sessions = Sessions::default();
        sessions.note_text("s", "  ");
        sessions.note_text("s", "fix the parser");
        sessions.note_text("s", "and the tests");
        assert_eq!(sessions.first_text("s").as_deref(), Some("fix the parser"));
    }
}
