//! What every write path (a put, an import) does to a record's text before it is stored: each
//! field is checked against its cap and then redacted ([`crate::redact()`]). One place, so a
//! path cannot skip a field.
//!
//! Caps, in characters: body `memory.maxChars` (default 2 000, never above
//! [`MAX_BODY_CHARS`]); title 200; key 200; 32 tags of at most 64; 64 files and symbols together,
//! each at most 512; each provenance field 200.

use orchestra_protocol::memory::{MemoryEntities, MemoryProvenance};

use crate::MemoryError;
use crate::redact::redact;

/// The ceiling of `memory.maxChars`: a config may lower the body cap, never lift it past this.
pub const MAX_BODY_CHARS: usize = 100_000;
pub(crate) const MAX_TITLE_CHARS: usize = 200;
pub(crate) const MAX_KEY_CHARS: usize = 200;
pub(crate) const MAX_TAGS: usize = 32;
pub(crate) const MAX_TAG_CHARS: usize = 64;
pub(crate) const MAX_ENTITIES: usize = 64;
pub(crate) const MAX_ENTITY_CHARS: usize = 512;
pub(crate) const MAX_PROVENANCE_CHARS: usize = 200;

/// The text fields of one record on its way in.
pub(crate) struct RecordText<'a> {
    pub body: &'a mut String,
    pub title: Option<&'a mut String>,
    pub key: Option<&'a mut String>,
    pub tags: &'a mut Vec<String>,
    pub entities: &'a mut MemoryEntities,
    pub provenance: &'a mut MemoryProvenance,
}

impl RecordText<'_> {
    /// Checks every field against its cap (`max_body` for the body), then redacts every field;
    /// returns how many secrets were replaced.
    pub(crate) fn check_and_redact(self, max_body: usize) -> Result<u32, MemoryError> {
        let max_body = max_body.min(MAX_BODY_CHARS);
        cap_chars("value", self.body, max_body).map_err(|e| match e {
            MemoryError::Invalid { field, problem } => MemoryError::Invalid {
                field,
                problem: format!("{problem} (the cap is `memory.maxChars`)"),
            },
            other => other,
        })?;
        if let Some(title) = &self.title {
            cap_chars("title", title, MAX_TITLE_CHARS)?;
        }
        if let Some(key) = &self.key {
            cap_chars("key", key, MAX_KEY_CHARS)?;
        }
        if self.tags.len() > MAX_TAGS {
            return Err(MemoryError::invalid(
                "tags",
                format!("at most {MAX_TAGS} tags"),
            ));
        }
        for tag in self.tags.iter() {
            cap_chars("tags", tag, MAX_TAG_CHARS)?;
        }
        let entities = self.entities.files.len() + self.entities.symbols.len();
        if entities > MAX_ENTITIES {
            return Err(MemoryError::invalid(
                "entities",
                format!("at most {MAX_ENTITIES} files and symbols together"),
            ));
        }
        for entity in self.entities.files.iter().chain(&self.entities.symbols) {
            cap_chars("entities", entity, MAX_ENTITY_CHARS)?;
        }
        for field in provenance_fields(self.provenance).into_iter().flatten() {
            cap_chars("provenance", field, MAX_PROVENANCE_CHARS)?;
        }
        let mut count = scrub(self.body);
        for text in self.title.into_iter().chain(self.key) {
            count += scrub(text);
        }
        for text in self
            .tags
            .iter_mut()
            .chain(self.entities.files.iter_mut())
            .chain(self.entities.symbols.iter_mut())
            .chain(provenance_fields(self.provenance).into_iter().flatten())
        {
            count += scrub(text);
        }
        Ok(count)
    }
}

fn provenance_fields(provenance: &mut MemoryProvenance) -> [Option<&mut String>; 7] {
    let MemoryProvenance {
        task_id,
        run_id,
        step,
        worker,
        model,
        file,
        producer,
    } = provenance;
    [
        task_id.as_mut(),
        run_id.as_mut(),
        step.as_mut(),
        worker.as_mut(),
        model.as_mut(),
        file.as_mut(),
        producer.as_mut(),
    ]
}

pub(crate) fn cap_chars(field: &'static str, text: &str, max: usize) -> Result<(), MemoryError> {
    let chars = text.chars().count();
    if chars > max {
        return Err(MemoryError::invalid(
            field,
            format!(
                "{chars} characters is more than the {max} allowed; shorten it or split it into several records"
            ),
        ));
    }
    Ok(())
}

/// Redacts a text field; returns how many secrets it held.
fn scrub(text: &mut String) -> u32 {
    let (clean, count) = redact(text);
    if count > 0 {
        *text = clean;
    }
    count
}
