//! JSONL export and import: one `{"type": "record", …}` or `{"type": "link", …}` object a line.
//!
//! An export holds this project's records and the global ones, with their ids, statuses and
//! times, then the links between them. An import keeps ids (a record already present is left
//! alone), re-homes project records into the importing project, checks every field's cap and
//! redacts every field again (`limits`); a bad line is reported with its number and the rest still imports.

use std::collections::HashMap;
use std::io::{BufRead, Write};

use orchestra_protocol::memory::{MemoryLink, MemoryRecord, MemoryScope};
use serde::{Deserialize, Serialize};

use crate::MemoryError;
use crate::limits::RecordText;
use crate::service::MemoryService;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Line {
    Record(Box<MemoryRecord>),
    Link(MemoryLink),
}

/// Records read from the store per step.
const BATCH: u32 = 5_000;
/// Records written per transaction on import.
const IMPORT_BATCH: usize = 5_000;
/// Rejected lines listed in a report (the count is always complete).
const MAX_LISTED: usize = 100;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportReport {
    pub records: u64,
    pub links: u64,
    /// Rows that could not be read and were left out.
    pub skipped: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    pub records: u64,
    /// Records whose id was already in the store.
    pub existing: u64,
    pub links: u64,
    pub rejected_count: u64,
    /// `line N: problem`, the first hundred.
    pub rejected: Vec<String>,
}

impl ImportReport {
    fn reject(&mut self, line: usize, problem: impl std::fmt::Display) {
        self.rejected_count += 1;
        if self.rejected.len() < MAX_LISTED {
            self.rejected.push(format!("line {line}: {problem}"));
        }
    }
}

fn write_line(out: &mut dyn Write, line: &Line) -> Result<(), MemoryError> {
    let io = |source| MemoryError::Io {
        what: "the export output".to_owned(),
        source,
    };
    serde_json::to_writer(&mut *out, line).map_err(|e| io(std::io::Error::other(e)))?;
    out.write_all(b"\n").map_err(io)
}

impl MemoryService {
    /// Writes this project's and the global records (every status), then their links.
    pub fn export_jsonl(&self, out: &mut dyn Write) -> Result<ExportReport, MemoryError> {
        let mut report = ExportReport::default();
        let mut exported: HashMap<String, MemoryScope> = HashMap::new();
        let mut scopes = vec![MemoryScope::Project, MemoryScope::Global];
        if self.global_bank().is_none() {
            // One store holds both: one pass, filtered by owner.
            scopes.truncate(1);
        }
        for scope in &scopes {
            let store = self.bank(*scope).store().clone();
            let project = self.owner(MemoryScope::Project);
            let global = self.owner(MemoryScope::Global);
            let mut after = 0;
            loop {
                let (rows, last) = store.memory_scan(after, BATCH)?;
                let Some(last) = last else { break };
                report.skipped.extend(
                    rows.skipped
                        .into_iter()
                        .map(|s| format!("{}: {}", s.id, s.reason)),
                );
                for row in rows.rows {
                    if !(project.owns(&row.record) || global.owns(&row.record)) {
                        continue;
                    }
                    exported.insert(row.record.id.clone(), row.record.scope);
                    write_line(out, &Line::Record(Box::new(row.record)))?;
                    report.records += 1;
                }
                after = last;
            }
        }
        for scope in &scopes {
            for link in self.bank(*scope).store().memory_all_links()? {
                if exported.contains_key(&link.from) && exported.contains_key(&link.to) {
                    write_line(out, &Line::Link(link))?;
                    report.links += 1;
                }
            }
        }
        out.flush().map_err(|source| MemoryError::Io {
            what: "the export output".to_owned(),
            source,
        })?;
        Ok(report)
    }

    /// Reads an export (see the module header). Indexes once at the end.
    pub fn import_jsonl(&self, input: &mut dyn BufRead) -> Result<ImportReport, MemoryError> {
        let mut report = ImportReport::default();
        let mut pending: HashMap<MemoryScope, Vec<MemoryRecord>> = HashMap::new();
        let mut scope_of: HashMap<String, MemoryScope> = HashMap::new();
        let mut links = Vec::new();
        let max_body = self.settings().max_body_chars;
        let started = std::time::Instant::now();
        for (number, line) in input.lines().enumerate() {
            let number = number + 1;
            let line = line.map_err(|source| MemoryError::Io {
                what: format!("line {number} of the import"),
                source,
            })?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Line>(&line) {
                Err(error) => report.reject(number, error),
                Ok(Line::Link(link)) => links.push(link),
                Ok(Line::Record(record)) => {
                    let mut record = *record;
                    let checked = RecordText {
                        body: &mut record.body,
                        title: Some(&mut record.title),
                        key: record.key.as_mut(),
                        tags: &mut record.tags,
                        entities: &mut record.entities,
                        provenance: &mut record.provenance,
                    }
                    .check_and_redact(max_body);
                    match checked {
                        Ok(count) => record.redactions = record.redactions.saturating_add(count),
                        Err(problem) => {
                            report.reject(number, problem);
                            continue;
                        }
                    }
                    record.project_id = match record.scope {
                        MemoryScope::Project => Some(self.project_id().to_owned()),
                        MemoryScope::Global => None,
                    };
                    scope_of.insert(record.id.clone(), record.scope);
                    let batch = pending.entry(record.scope).or_default();
                    batch.push(record);
                    if batch.len() >= IMPORT_BATCH {
                        let scope = batch[0].scope;
                        let records = std::mem::take(batch);
                        self.import_batch(scope, &records, &[], &mut report)?;
                    }
                }
            }
        }
        for (scope, records) in pending {
            self.import_batch(scope, &records, &[], &mut report)?;
        }
        let mut by_scope: HashMap<MemoryScope, Vec<MemoryLink>> = HashMap::new();
        for link in links {
            let scope = match scope_of.get(&link.from) {
                Some(scope) => *scope,
                None => match self.get(&link.from, None)? {
                    Some(record) => record.scope,
                    None => {
                        report.reject(0, format!("link from unknown record `{}`", link.from));
                        continue;
                    }
                },
            };
            by_scope.entry(scope).or_default().push(link);
        }
        for (scope, links) in by_scope {
            self.import_batch(scope, &[], &links, &mut report)?;
        }
        let stored = started.elapsed();
        self.project_bank().sync()?;
        if let Some(global) = self.global_bank() {
            global.sync()?;
        }
        tracing::debug!(
            records = report.records,
            stored_ms = stored.as_millis(),
            indexed_ms = (started.elapsed() - stored).as_millis(),
            "memory import"
        );
        Ok(report)
    }

    fn import_batch(
        &self,
        scope: MemoryScope,
        records: &[MemoryRecord],
        links: &[MemoryLink],
        report: &mut ImportReport,
    ) -> Result<(), MemoryError> {
        let counts = self.bank(scope).store().memory_import(records, links)?;
        report.records += counts.records;
        report.existing += counts.existing;
        report.links += counts.links;
        Ok(())
    }
}
