//! [`MemoryService`]: one project's view of memory — its project records and the user's global
//! records — with checked writes and bounded, paged reads.

use std::path::Path;
use std::sync::Arc;

use orchestra_protocol::memory::{
    DEFAULT_KIND, DEFAULT_RELATION, ForgetMode, MemoryDetail, MemoryHit, MemoryLink, MemoryPage,
    MemoryPut, MemoryPutResult, MemoryRecord, MemoryScope, MemorySearchParams, MemoryStatus,
    SkippedRecord,
};
use orchestra_store::{MemoryRow, Store};

use crate::bank::{ForgetResult, MemoryBank, Owner};
use crate::block_cache::{BlockCache, PinnedCache, TermCache};
use crate::index::{IndexHit, IndexQuery, owner_term};
use crate::limits::{RecordText, cap_chars};
use crate::settings::MemorySettings;
use crate::tokenize::{estimate_tokens, query_terms};
use crate::{MemoryError, cursor};

/// Most query terms of each analysis a search uses (a long task text stays a bounded query).
pub(crate) const MAX_QUERY_TERMS: usize = 32;
const DEFAULT_LIMIT: u32 = 10;
const MAX_LIMIT: u32 = 100;
const DEFAULT_BUDGET_TOKENS: u32 = 2_000;
const SNIPPET_CHARS: usize = 240;

/// A window of ranked candidates with their scores, the rows that could not be read, and
/// whether more candidates follow the window.
pub(crate) type Ranked = (Vec<(MemoryRow, f32)>, Vec<SkippedRecord>, bool);

/// Whether a search first brings the index up to the store (read-your-writes), or reads it as
/// last indexed (no index work: the hub's task start, whose writes a background indexer
/// follows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Freshness {
    Synced,
    AsIndexed,
}

/// One project's memory: its records in the project store, global records in the user-level
/// store (or in the project store when no separate global store is given).
pub struct MemoryService {
    project_id: String,
    project: Arc<MemoryBank>,
    global: Option<Arc<MemoryBank>>,
    settings: MemorySettings,
    pub(crate) blocks: BlockCache,
    pub(crate) terms: TermCache,
    pub(crate) pinned_records: PinnedCache,
}

impl std::fmt::Debug for MemoryService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryService")
            .field("project_id", &self.project_id)
            .field("project", &self.project)
            .field("global", &self.global)
            .finish()
    }
}

/// A record with the links from and to it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemoryGetResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<MemoryRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<MemoryLink>,
    /// Set instead of `record` when the record is larger than the budget asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_budget_tokens: Option<u32>,
}

/// The path of the user-level store that holds global records.
pub fn global_store_path() -> std::path::PathBuf {
    orchestra_state_dir::global_state_dir().join("memory.db")
}

/// Opens (creating) the user-level global store.
pub fn open_global_store() -> Result<Arc<Store>, MemoryError> {
    Ok(Arc::new(Store::open(&global_store_path())?))
}

fn check_kind(kind: &str) -> Result<(), MemoryError> {
    let ok = !kind.is_empty()
        && kind.len() <= 32
        && kind
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(MemoryError::invalid(
            "kind",
            format!(
                "`{kind}` is not a kind; use lowercase letters, digits, `_` or `-` (known: {})",
                orchestra_protocol::memory::KNOWN_KINDS.join(", ")
            ),
        ))
    }
}

pub(crate) fn first_chars(text: &str, max: usize) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= max {
        return line;
    }
    let mut cut: String = line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

impl MemoryService {
    /// `project` holds this project's records; `global` the user's global records (`None`:
    /// keep them in `project`'s store too). Opening builds or repairs the search indexes.
    pub fn open(
        project_store: Arc<Store>,
        project_id: impl Into<String>,
        global_store: Option<Arc<Store>>,
        settings: MemorySettings,
    ) -> Result<MemoryService, MemoryError> {
        let project = Arc::new(MemoryBank::open(project_store)?);
        let global = global_store
            .map(MemoryBank::open)
            .transpose()?
            .map(Arc::new);
        Ok(MemoryService::with_banks(
            project_id, project, global, settings,
        ))
    }

    /// The same, over banks already open (several projects' services may share one global bank
    /// in one process).
    pub fn with_banks(
        project_id: impl Into<String>,
        project: Arc<MemoryBank>,
        global: Option<Arc<MemoryBank>>,
        settings: MemorySettings,
    ) -> MemoryService {
        MemoryService {
            project_id: project_id.into(),
            project,
            global,
            settings,
            blocks: BlockCache::default(),
            terms: TermCache::default(),
            pinned_records: PinnedCache::default(),
        }
    }

    /// The service for the project at `project_dir` with the default locations: the project's
    /// store and the user-level global store.
    pub fn open_default(
        project_dir: &Path,
        store_path: Option<&Path>,
        settings: MemorySettings,
    ) -> Result<MemoryService, MemoryError> {
        let store_path = store_path.map_or_else(
            || orchestra_store::default_store_path(project_dir),
            Path::to_path_buf,
        );
        let store = Arc::new(Store::open(&store_path)?);
        let global = open_global_store()?;
        MemoryService::open(
            store,
            orchestra_state_dir::project_id(project_dir),
            Some(global),
            settings,
        )
    }

    pub fn project_id(&self) -> &str {
        &self.project_id
    }

    pub fn settings(&self) -> &MemorySettings {
        &self.settings
    }

    pub fn project_bank(&self) -> &Arc<MemoryBank> {
        &self.project
    }

    pub fn global_bank(&self) -> Option<&Arc<MemoryBank>> {
        self.global.as_ref()
    }

    pub(crate) fn owner(&self, scope: MemoryScope) -> Owner {
        Owner {
            scope,
            project: match scope {
                MemoryScope::Project => self.project_id.clone(),
                MemoryScope::Global => String::new(),
            },
        }
    }

    pub(crate) fn bank(&self, scope: MemoryScope) -> &MemoryBank {
        match (scope, &self.global) {
            (MemoryScope::Global, Some(global)) => global,
            (MemoryScope::Global, None) | (MemoryScope::Project, _) => &self.project,
        }
    }

    /// Writes a record. Checks sizes, redacts secrets, then: a put whose scope and key match an
    /// active record updates it (`unchanged` if nothing differs); with `supersedes` (an id or
    /// key) the named record — and the active record of the same key — become `superseded` and
    /// the new record takes their place. Durable when this returns.
    pub fn put(&self, mut put: MemoryPut) -> Result<MemoryPutResult, MemoryError> {
        let scope = put.scope.unwrap_or(self.settings.default_scope);
        let kind = put
            .kind
            .take()
            .map(|k| k.trim().to_lowercase())
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| DEFAULT_KIND.to_owned());
        check_kind(&kind)?;
        if put.body.trim().is_empty() {
            return Err(MemoryError::invalid(
                "value",
                "the record's body is empty; say what to remember",
            ));
        }
        if let Some(key) = &put.key
            && key.trim().is_empty()
        {
            return Err(MemoryError::invalid(
                "key",
                "the key is empty; leave it out or name it",
            ));
        }
        let redactions = RecordText {
            body: &mut put.body,
            title: put.title.as_mut(),
            key: put.key.as_mut(),
            tags: &mut put.tags,
            entities: &mut put.entities,
            provenance: &mut put.provenance,
        }
        .check_and_redact(self.settings.max_body_chars)?;
        if redactions > 0 {
            tracing::info!(redactions, "redacted secrets from a memory record");
        }
        put.tags.retain(|t| !t.trim().is_empty());
        put.tags.dedup();
        let owner = self.owner(scope);
        self.bank(scope).put(&owner, put, kind, redactions)
    }

    /// Finds a record by id or key: in `scope` if given, else the project first, then global.
    pub fn get(
        &self,
        reference: &str,
        scope: Option<MemoryScope>,
    ) -> Result<Option<MemoryRecord>, MemoryError> {
        Ok(self.locate(reference, scope)?.map(|(_, record)| record))
    }

    fn locate(
        &self,
        reference: &str,
        scope: Option<MemoryScope>,
    ) -> Result<Option<(MemoryScope, MemoryRecord)>, MemoryError> {
        let scopes = match scope {
            Some(scope) => vec![scope],
            None => vec![MemoryScope::Project, MemoryScope::Global],
        };
        for scope in scopes {
            if let Some(record) = self.bank(scope).get(&self.owner(scope), reference)? {
                return Ok(Some((scope, record)));
            }
        }
        Ok(None)
    }

    /// A record with its links, bounded by `budget_tokens`.
    pub fn get_with_links(
        &self,
        reference: &str,
        scope: Option<MemoryScope>,
        budget_tokens: Option<u32>,
    ) -> Result<MemoryGetResult, MemoryError> {
        let Some((scope, record)) = self.locate(reference, scope)? else {
            return Err(MemoryError::NotFound {
                reference: reference.to_owned(),
                scope: scope.map_or("project or global".to_owned(), |s| self.owner(s).label()),
            });
        };
        let links = self.bank(scope).links_of(&record.id)?;
        let mut result = MemoryGetResult {
            record: Some(record),
            links,
            needs_budget_tokens: None,
        };
        if let Some(budget) = budget_tokens {
            let tokens = estimate_tokens(&serde_json::to_string(&result).unwrap_or_default());
            if tokens > budget {
                result.record = None;
                result.links.clear();
                result.needs_budget_tokens = Some(tokens);
            }
        }
        Ok(result)
    }

    /// Links two records (ids or keys; the source is looked up in `scope` or project-then-global).
    pub fn link(
        &self,
        from: &str,
        to: &str,
        relation: Option<&str>,
        scope: Option<MemoryScope>,
    ) -> Result<MemoryLink, MemoryError> {
        let relation = relation
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .unwrap_or(DEFAULT_RELATION);
        cap_chars("relation", relation, 64)?;
        let not_found = |reference: &str| MemoryError::NotFound {
            reference: reference.to_owned(),
            scope: "project or global".to_owned(),
        };
        let (from_scope, _) = self.locate(from, scope)?.ok_or_else(|| not_found(from))?;
        let (_, to_record) = self.locate(to, None)?.ok_or_else(|| not_found(to))?;
        self.bank(from_scope)
            .link(&self.owner(from_scope), from, &to_record.id, relation)
    }

    /// Retracts (hidden from search, kept for the audit trail) or deletes (removed, and its
    /// content scrubbed from the change log) a record.
    pub fn forget(
        &self,
        reference: &str,
        scope: Option<MemoryScope>,
        mode: ForgetMode,
    ) -> Result<ForgetResult, MemoryError> {
        let Some((scope, record)) = self.locate(reference, scope)? else {
            return Err(MemoryError::NotFound {
                reference: reference.to_owned(),
                scope: scope.map_or("project or global".to_owned(), |s| self.owner(s).label()),
            });
        };
        self.bank(scope)
            .forget(&self.owner(scope), &record.id, mode)
    }

    fn scopes_of(params: &MemorySearchParams) -> Vec<MemoryScope> {
        let mut scopes = if params.scopes.is_empty() {
            vec![MemoryScope::Project, MemoryScope::Global]
        } else {
            params.scopes.clone()
        };
        scopes.sort();
        scopes.dedup();
        scopes
    }

    /// The banks a search over `scopes` reads, each with the owners it may return.
    fn targets(&self, scopes: &[MemoryScope]) -> Vec<(&MemoryBank, Vec<String>)> {
        let term = |scope: MemoryScope| owner_term(scope, &self.owner(scope).project);
        match &self.global {
            Some(_) => scopes
                .iter()
                .map(|&scope| (self.bank(scope), vec![term(scope)]))
                .collect(),
            None => vec![(
                self.project.as_ref(),
                scopes.iter().map(|&scope| term(scope)).collect(),
            )],
        }
    }

    /// Ranked candidates `offset..offset + count` across the banks, with their rows.
    pub(crate) fn ranked(
        &self,
        params: &MemorySearchParams,
        offset: usize,
        count: usize,
        freshness: Freshness,
        rare_terms_only: bool,
    ) -> Result<Ranked, MemoryError> {
        let (words, idents) = query_terms(&params.query, MAX_QUERY_TERMS);
        let mut statuses = vec![MemoryStatus::Active];
        if params.include_superseded {
            statuses.push(MemoryStatus::Superseded);
        }
        if params.include_retracted {
            statuses.push(MemoryStatus::Retracted);
        }
        let mut skipped = Vec::new();
        // (bank, hit): ranked as each index ranked them, banks merged by the same keys.
        let mut hits: Vec<(usize, IndexHit)> = Vec::new();
        let targets = self.targets(&Self::scopes_of(params));
        let wanted = offset + count + 1;
        for (at, (bank, owners)) in targets.iter().enumerate() {
            let query = IndexQuery {
                words: words.clone(),
                idents: idents.clone(),
                owners: owners.clone(),
                statuses: statuses.clone(),
                kinds: params.kinds.clone(),
                tags: params.tags.clone(),
                offset: 0,
                limit: wanted,
                rare_terms_only,
            };
            let found = match freshness {
                Freshness::Synced => bank.index().sync_and_search(bank.store(), &query)?,
                Freshness::AsIndexed => bank.index().search(&query)?,
            };
            hits.extend(found.into_iter().map(|h| (at, h)));
        }
        hits.sort_by(|(bank_a, a), (bank_b, b)| {
            b.order
                .total_cmp(&a.order)
                .then_with(|| bank_a.cmp(bank_b))
                .then_with(|| a.address.cmp(&b.address))
        });
        let more = hits.len() > offset + count;
        let window: Vec<(usize, IndexHit)> = hits.into_iter().skip(offset).take(count).collect();
        // One read per bank, not per hit; the window's order is kept.
        let mut rows_by_doc = std::collections::HashMap::new();
        for (at, (bank, _)) in targets.iter().enumerate() {
            let docs: Vec<i64> = window
                .iter()
                .filter(|(of, _)| *of == at)
                .map(|(_, hit)| hit.doc)
                .collect();
            if docs.is_empty() {
                continue;
            }
            let rows = bank.store().memory_by_docs(&docs)?;
            skipped.extend(rows.skipped);
            rows_by_doc.extend(rows.rows.into_iter().map(|row| ((at, row.doc), row)));
        }
        let candidates = window
            .into_iter()
            .filter_map(|(at, hit)| {
                rows_by_doc
                    .remove(&(at, hit.doc))
                    .map(|row| (row, hit.score))
            })
            .collect();
        Ok((candidates, skipped, more))
    }
    fn hit(record: MemoryRecord, score: f32, detail: MemoryDetail) -> MemoryHit {
        let title = if record.title.is_empty() {
            first_chars(&record.body, 80)
        } else {
            record.title.clone()
        };
        let mut hit = MemoryHit {
            id: record.id.clone(),
            scope: record.scope,
            kind: record.kind.clone(),
            key: record.key.clone(),
            title,
            status: record.status,
            pinned: record.pinned,
            score: (score * 1000.0).round() / 1000.0,
            tokens: 0,
            updated_at: record.updated_at,
            snippet: None,
            tags: Vec::new(),
            record: None,
        };
        match detail {
            MemoryDetail::Index => {}
            MemoryDetail::Summary => {
                hit.snippet = Some(first_chars(&record.body, SNIPPET_CHARS));
                hit.tags = record.tags;
            }
            MemoryDetail::Full => hit.record = Some(record),
        }
        hit.tokens = estimate_tokens(&serde_json::to_string(&hit).unwrap_or_default());
        hit
    }

    /// Ranked full-text search (see [`MemorySearchParams`]): at most `limit` hits and
    /// `budgetTokens` tokens per page; a hit is never cut to fit — it starts the next page.
    pub fn search(
        &self,
        params: &MemorySearchParams,
    ) -> Result<MemoryPage<MemoryHit>, MemoryError> {
        let limit = params.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT) as usize;
        let budget = params.budget_tokens.unwrap_or(DEFAULT_BUDGET_TOKENS);
        let signature = cursor::signature(params);
        let offset = match &params.cursor {
            Some(text) => cursor::decode(text, signature)?,
            None => 0,
        };
        let (window, skipped, more) =
            self.ranked(params, offset, limit, Freshness::Synced, false)?;
        let available = window.len();
        let mut page = MemoryPage {
            items: Vec::new(),
            next_cursor: None,
            tokens: 0,
            needs_budget_tokens: None,
            skipped,
        };
        for (row, score) in window {
            let hit = Self::hit(row.record, score, params.detail);
            if page.tokens.saturating_add(hit.tokens) > budget {
                if page.items.is_empty() {
                    page.needs_budget_tokens = Some(hit.tokens);
                }
                break;
            }
            page.tokens += hit.tokens;
            page.items.push(hit);
        }
        if page.items.len() < available || more {
            page.next_cursor = Some(cursor::encode(offset + page.items.len(), signature));
        }
        Ok(page)
    }
}
