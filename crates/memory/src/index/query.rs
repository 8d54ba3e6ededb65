//! Turning a search into a tantivy query and running it.

use orchestra_protocol::memory::MemoryStatus;
use tantivy::collector::TopDocs;
use tantivy::query::{AllQuery, BooleanQuery, ConstScoreQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocAddress, Order, Score, Searcher, SegmentReader, Term};

use super::fields::Fields;

/// What to look for in one index.
#[derive(Debug, Clone, Default)]
pub(crate) struct IndexQuery {
    /// Query words (see `tokenize::query_terms`).
    pub words: Vec<String>,
    /// Query identifiers.
    pub idents: Vec<String>,
    /// `owner` terms allowed (any one of them); never empty in practice.
    pub owners: Vec<String>,
    pub statuses: Vec<MemoryStatus>,
    pub kinds: Vec<String>,
    /// Every one of these must be present.
    pub tags: Vec<String>,
    pub offset: usize,
    pub limit: usize,
    /// Leave out query terms most of the index holds (see [`rare_terms`]): the memory block's
    /// candidate search, where such a term barely moves a score but costs a posting list as
    /// long as the project's history.
    pub rare_terms_only: bool,
}

/// A ranked hit: the store's `doc`, the BM25 score (0 when listing newest first), and what
/// tantivy ranked it by — `order` (the score, lowered by a band per non-active status) then
/// `address` ascending — so a caller merging pages ranks exactly as the index did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct IndexHit {
    pub doc: i64,
    pub score: f32,
    pub order: f32,
    pub address: (u32, u32),
}

/// Separates the status bands when non-active records are included: any BM25 score is far
/// below this, so every active hit ranks above every superseded one, and so on.
const STATUS_BAND: f32 = 10_000.0;

fn term(field: Field, text: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, text),
        IndexRecordOption::WithFreqs,
    ))
}

/// A filter clause that does not change the score.
fn filter(field: Field, values: &[String]) -> Box<dyn Query> {
    let clauses: Vec<(Occur, Box<dyn Query>)> = values
        .iter()
        .map(|value| {
            let query: Box<dyn Query> = Box::new(TermQuery::new(
                Term::from_field_text(field, value),
                IndexRecordOption::Basic,
            ));
            (Occur::Should, query)
        })
        .collect();
    let inner: Box<dyn Query> = if clauses.len() == 1 {
        let mut clauses = clauses;
        match clauses.pop() {
            Some((_, query)) => query,
            None => Box::new(AllQuery),
        }
    } else {
        Box::new(BooleanQuery::new(clauses))
    };
    Box::new(ConstScoreQuery::new(inner, 0.0))
}

/// Terms held by more than this share of the index's documents are left out of a
/// `rare_terms_only` query: their BM25 weight is under ln 2 (about a tenth of a rare term's),
/// while scoring them walks a posting list that grows with every record.
const COMMON_SHARE_PERCENT: u64 = 50;
/// A query whose terms are all common keeps this many of the rarest, so it still finds the
/// records that share the most with the task.
const KEEP_WHEN_ALL_COMMON: usize = 3;
/// Below this many documents every posting list is short: nothing is left out.
const PRUNE_FROM_DOCS: u64 = 256;

/// The words and identifiers of `query` to search for: all of them, or with
/// `rare_terms_only` the ones at most half the documents hold (else the few rarest that any
/// document holds), once the index is large enough for that to matter. A word
/// counts by the field (title or body) where it is more frequent. Ties keep the query's order,
/// so the choice is a function of the index's contents.
fn rare_terms(
    searcher: &Searcher,
    fields: &Fields,
    query: &IndexQuery,
) -> tantivy::Result<(Vec<String>, Vec<String>)> {
    if !query.rare_terms_only {
        return Ok((query.words.clone(), query.idents.clone()));
    }
    let all: u64 = searcher
        .segment_readers()
        .iter()
        .map(|segment| u64::from(segment.max_doc()))
        .sum();
    if all < PRUNE_FROM_DOCS {
        return Ok((query.words.clone(), query.idents.clone()));
    }
    // (document frequency, is an identifier, position in the query)
    let mut terms: Vec<(u64, bool, usize)> = Vec::new();
    for (at, word) in query.words.iter().enumerate() {
        let title = searcher.doc_freq(&Term::from_field_text(fields.title, word))?;
        let body = searcher.doc_freq(&Term::from_field_text(fields.body, word))?;
        terms.push((title.max(body), false, at));
    }
    for (at, ident) in query.idents.iter().enumerate() {
        let freq = searcher.doc_freq(&Term::from_field_text(fields.ident, ident))?;
        terms.push((freq, true, at));
    }
    let rare = |freq: u64| freq.saturating_mul(100) <= all.saturating_mul(COMMON_SHARE_PERCENT);
    let mut kept: Vec<(u64, bool, usize)> =
        terms.iter().copied().filter(|(f, _, _)| rare(*f)).collect();
    if kept.is_empty() {
        // A term no document holds finds nothing: the rarest of the others.
        terms.retain(|(freq, _, _)| *freq > 0);
        terms.sort_by_key(|(freq, ident, at)| (*freq, *ident, *at));
        kept = terms.into_iter().take(KEEP_WHEN_ALL_COMMON).collect();
    }
    kept.sort_by_key(|(_, ident, at)| (*ident, *at));
    let words = kept
        .iter()
        .filter(|(_, ident, _)| !ident)
        .filter_map(|(_, _, at)| query.words.get(*at).cloned())
        .collect();
    let idents = kept
        .iter()
        .filter(|(_, ident, _)| *ident)
        .filter_map(|(_, _, at)| query.idents.get(*at).cloned())
        .collect();
    Ok((words, idents))
}

/// The text part: any of the words (in title or body) or identifiers, ranked by BM25.
fn text_query(fields: &Fields, words: &[String], idents: &[String]) -> Option<Box<dyn Query>> {
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for word in words {
        clauses.push((Occur::Should, term(fields.title, word)));
        clauses.push((Occur::Should, term(fields.body, word)));
    }
    for ident in idents {
        clauses.push((Occur::Should, term(fields.ident, ident)));
    }
    (!clauses.is_empty()).then(|| Box::new(BooleanQuery::new(clauses)) as Box<dyn Query>)
}

/// True when every document of the index (deleted ones included) holds `value` in `field`: a
/// filter on it changes nothing, and leaving it out keeps the query a plain union of terms,
/// which tantivy ranks with block-max WAND instead of scoring every match.
fn matches_everything(searcher: &Searcher, field: Field, value: &str) -> tantivy::Result<bool> {
    let all: u64 = searcher
        .segment_readers()
        .iter()
        .map(|segment| u64::from(segment.max_doc()))
        .sum();
    Ok(searcher.doc_freq(&Term::from_field_text(field, value))? == all)
}

fn filters(
    searcher: &Searcher,
    fields: &Fields,
    query: &IndexQuery,
) -> tantivy::Result<Vec<(Occur, Box<dyn Query>)>> {
    let mut clauses = Vec::new();
    let mut filter_on = |field: Field, values: &[String]| -> tantivy::Result<()> {
        if let [only] = values
            && matches_everything(searcher, field, only)?
        {
            return Ok(());
        }
        clauses.push((Occur::Must, filter(field, values)));
        Ok(())
    };
    filter_on(fields.owner, &query.owners)?;
    let statuses: Vec<String> = query
        .statuses
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    filter_on(fields.status, &statuses)?;
    if !query.kinds.is_empty() {
        filter_on(fields.kind, &query.kinds)?;
    }
    for tag in &query.tags {
        filter_on(fields.tag, std::slice::from_ref(tag))?;
    }
    Ok(clauses)
}

fn doc_of(searcher: &Searcher, address: DocAddress) -> tantivy::Result<Option<i64>> {
    let reader: &SegmentReader = searcher.segment_reader(address.segment_ord);
    let column = reader.fast_fields().u64("doc")?;
    Ok(column
        .first(address.doc_id)
        .and_then(|doc| i64::try_from(doc).ok()))
}

/// Runs `query`: BM25 order for text (non-active bands after active ones), newest first when
/// there is no text.
pub(crate) fn run(
    searcher: &Searcher,
    fields: &Fields,
    query: &IndexQuery,
) -> tantivy::Result<Vec<IndexHit>> {
    if query.limit == 0 || query.owners.is_empty() || query.statuses.is_empty() {
        return Ok(Vec::new());
    }
    let mut clauses = filters(searcher, fields, query)?;
    let (words, idents) = rare_terms(searcher, fields, query)?;
    let text = text_query(fields, &words, &idents);
    let has_text = text.is_some();
    let boolean: Box<dyn Query> = match text {
        // No filter left: the text query alone, so block-max WAND applies.
        Some(text) if clauses.is_empty() => text,
        Some(text) => {
            clauses.push((Occur::Must, text));
            Box::new(BooleanQuery::new(clauses))
        }
        None if clauses.is_empty() => Box::new(AllQuery),
        None => Box::new(BooleanQuery::new(clauses)),
    };
    let window = TopDocs::with_limit(query.limit).and_offset(query.offset);
    let mut hits = Vec::new();
    if !has_text {
        let found = searcher.search(&*boolean, &window.order_by_u64_field("doc", Order::Desc))?;
        for (_, address) in found {
            if let Some(doc) = doc_of(searcher, address)? {
                hits.push(IndexHit {
                    doc,
                    score: 0.0,
                    // Newest first: a larger doc ranks first.
                    order: 0.0,
                    address: (0, u32::MAX - u32::try_from(doc).unwrap_or(u32::MAX)),
                });
            }
        }
        return Ok(hits);
    }
    let only_active = query.statuses == [MemoryStatus::Active];
    let found: Vec<(Score, DocAddress)> = if only_active {
        searcher.search(&*boolean, &window.order_by_score())?
    } else {
        let banded = window.tweak_score(|segment: &SegmentReader| {
            let ranks = segment
                .fast_fields()
                .u64("status_rank")
                .ok()
                .map(|c| c.first_or_default_col(0));
            move |doc: tantivy::DocId, score: Score| {
                let rank = ranks.as_ref().map_or(0, |c| c.get_val(doc));
                score - STATUS_BAND * rank as f32
            }
        });
        searcher.search(&*boolean, &banded)?.into_iter().collect()
    };
    for (order, address) in found {
        if let Some(doc) = doc_of(searcher, address)? {
            hits.push(IndexHit {
                doc,
                score: order.rem_euclid(STATUS_BAND),
                order,
                address: (address.segment_ord, address.doc_id),
            });
        }
    }
    Ok(hits)
}
