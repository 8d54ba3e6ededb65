//! The hub's memory API (`/api/v1/memory/*`, see `orchestra-http`'s `memory_api.rs`) as typed
//! calls: what `orchestra memory` uses. Export and import stream JSONL, so a store of any size
//! goes through in bounded memory.

use std::path::Path;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use orchestra_protocol::memory::{
    ForgetOutcome, ForgetRequest, ImportOutcome, MemoryContext, MemoryHit, MemoryPage, MemoryPut,
    MemoryPutResult, MemoryRecordDetail, MemoryScope, MemorySearchParams,
};
use tokio::io::AsyncReadExt;

use crate::{ClientError, HubClient};

/// An import of a large store takes its time; the hub answers once it is indexed.
const IMPORT_TIMEOUT: Duration = Duration::from_secs(3600);
const CHUNK: usize = 64 * 1024;

/// Percent-encodes a record id or key for a path segment.
fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

impl HubClient {
    pub async fn memory_search(
        &self,
        params: &MemorySearchParams,
    ) -> Result<MemoryPage<MemoryHit>, ClientError> {
        self.post("/api/v1/memory/search", params).await
    }

    /// A record by id or key, with its links and the task that wrote it.
    pub async fn memory_show(
        &self,
        reference: &str,
        scope: Option<MemoryScope>,
    ) -> Result<MemoryRecordDetail, ClientError> {
        let query = scope.map_or_else(String::new, |s| format!("?scope={}", s.as_str()));
        self.get(&format!(
            "/api/v1/memory/records/{}{query}",
            segment(reference)
        ))
        .await
    }

    pub async fn memory_put(&self, put: &MemoryPut) -> Result<MemoryPutResult, ClientError> {
        self.post("/api/v1/memory/records", put).await
    }

    /// A new record that replaces `reference` (an id or key).
    pub async fn memory_supersede(
        &self,
        reference: &str,
        put: &MemoryPut,
    ) -> Result<MemoryPutResult, ClientError> {
        self.post(
            &format!("/api/v1/memory/records/{}/supersede", segment(reference)),
            put,
        )
        .await
    }

    pub async fn memory_forget(
        &self,
        reference: &str,
        request: &ForgetRequest,
    ) -> Result<ForgetOutcome, ClientError> {
        self.post(
            &format!("/api/v1/memory/records/{}/forget", segment(reference)),
            request,
        )
        .await
    }

    /// The block a worker would get for `task`.
    pub async fn memory_context(
        &self,
        task: &str,
        budget_tokens: Option<u32>,
    ) -> Result<MemoryContext, ClientError> {
        let budget = budget_tokens.map_or_else(String::new, |b| format!("&budgetTokens={b}"));
        self.get(&format!(
            "/api/v1/memory/context?task={}{budget}",
            segment(task)
        ))
        .await
    }

    /// The export as it streams from the hub: JSONL chunks.
    pub async fn memory_export(
        &self,
    ) -> Result<impl Stream<Item = Result<Vec<u8>, ClientError>> + use<>, ClientError> {
        let response = self.raw_get("/api/v1/memory/export").await?;
        Ok(response.bytes_stream().map(|chunk| {
            chunk
                .map(|bytes| bytes.to_vec())
                .map_err(|err| ClientError::Http {
                    what: "reading the memory export".into(),
                    message: err.to_string(),
                })
        }))
    }

    /// Streams a JSONL file (as exported) to the hub.
    pub async fn memory_import(&self, file: &Path) -> Result<ImportOutcome, ClientError> {
        let opened = tokio::fs::File::open(file)
            .await
            .map_err(|source| ClientError::Files {
                path: file.to_path_buf(),
                source,
            })?;
        let chunks = futures_util::stream::unfold(Some(opened), |state| async move {
            let mut file = state?;
            let mut buffer = vec![0u8; CHUNK];
            match file.read(&mut buffer).await {
                Ok(0) => None,
                Ok(read) => {
                    buffer.truncate(read);
                    Some((Ok::<_, std::io::Error>(buffer), Some(file)))
                }
                Err(err) => Some((Err(err), None)),
            }
        });
        self.post_body(
            "/api/v1/memory/import",
            reqwest::Body::wrap_stream(chunks),
            IMPORT_TIMEOUT,
        )
        .await
    }
}
