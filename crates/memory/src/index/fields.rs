//! The index schema and how a record becomes an index document.

use orchestra_protocol::memory::{MemoryRecord, MemoryScope, MemoryStatus};
use orchestra_store::MemoryRow;
use tantivy::schema::{
    FAST, Field, IndexRecordOption, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Index, TantivyDocument};

use crate::tokenize::{Analysis, TermsTokenizer};

/// Written into every commit; an index with another format is rebuilt from the store.
/// Bump it whenever the schema or the tokenizers change.
pub(crate) const INDEX_FORMAT: &str = "orchestra-memory-index-1";

const WORDS: &str = "orchestra_words";
const IDENTIFIERS: &str = "orchestra_identifiers";

#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields {
    /// The record id, for deleting a record's document.
    pub id: Field,
    /// The store's `doc`, read back from hits.
    pub doc: Field,
    /// `g` for global records, `p:<project id>` for project records.
    pub owner: Field,
    pub status: Field,
    /// 0 active, 1 superseded, 2 retracted: ranks non-active hits last when they are asked for.
    pub status_rank: Field,
    pub kind: Field,
    pub tag: Field,
    pub title: Field,
    pub body: Field,
    pub ident: Field,
}

pub(crate) fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let text = |tokenizer: &str| {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(tokenizer)
                .set_index_option(IndexRecordOption::WithFreqs),
        )
    };
    let fields = Fields {
        id: builder.add_text_field("id", STRING),
        doc: builder.add_u64_field("doc", FAST),
        owner: builder.add_text_field("owner", STRING),
        status: builder.add_text_field("status", STRING),
        status_rank: builder.add_u64_field("status_rank", FAST),
        kind: builder.add_text_field("kind", STRING),
        tag: builder.add_text_field("tag", STRING),
        title: builder.add_text_field("title", text(WORDS)),
        body: builder.add_text_field("body", text(WORDS)),
        ident: builder.add_text_field("ident", text(IDENTIFIERS)),
    };
    (builder.build(), fields)
}

/// Registers our tokenizers on an index (they are not stored in it).
pub(crate) fn register_tokenizers(index: &Index) {
    let manager = index.tokenizers();
    manager.register(
        WORDS,
        TextAnalyzer::from(TermsTokenizer {
            analysis: Analysis::Words,
        }),
    );
    manager.register(
        IDENTIFIERS,
        TextAnalyzer::from(TermsTokenizer {
            analysis: Analysis::Identifiers,
        }),
    );
}

/// The `owner` term of records in `scope` of `project_id`.
pub(crate) fn owner_term(scope: MemoryScope, project_id: &str) -> String {
    match scope {
        MemoryScope::Global => "g".to_owned(),
        MemoryScope::Project => format!("p:{project_id}"),
    }
}

pub(crate) fn status_rank(status: MemoryStatus) -> u64 {
    match status {
        MemoryStatus::Active => 0,
        MemoryStatus::Superseded => 1,
        MemoryStatus::Retracted => 2,
    }
}

pub(crate) fn document(fields: &Fields, row: &MemoryRow) -> TantivyDocument {
    let record: &MemoryRecord = &row.record;
    let mut doc = TantivyDocument::new();
    doc.add_text(fields.id, &record.id);
    doc.add_u64(fields.doc, u64::try_from(row.doc).unwrap_or(0));
    doc.add_text(
        fields.owner,
        owner_term(record.scope, orchestra_store::memory_project_column(record)),
    );
    doc.add_text(fields.status, record.status.as_str());
    doc.add_u64(fields.status_rank, status_rank(record.status));
    doc.add_text(fields.kind, &record.kind);
    for tag in &record.tags {
        doc.add_text(fields.tag, tag);
    }
    // The key reads like a title (`decision:db-engine`); entities and tags are body text.
    let mut title = record.title.clone();
    if let Some(key) = &record.key {
        title.push('\n');
        title.push_str(key);
    }
    doc.add_text(fields.title, &title);
    let mut body = record.body.clone();
    for extra in record
        .tags
        .iter()
        .chain(&record.entities.files)
        .chain(&record.entities.symbols)
    {
        body.push('\n');
        body.push_str(extra);
    }
    doc.add_text(fields.body, &body);
    doc.add_text(fields.ident, format!("{title}\n{body}"));
    doc
}
