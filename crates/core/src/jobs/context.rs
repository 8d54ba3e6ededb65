//! The text a job adds to its prompt's `system` field after the profile's own (the memory
//! block). A task's block is built while its worker's session opens, so `task_start` answers
//! without waiting for memory; the runner awaits the block only when it sends the first prompt.

use std::future::Future;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};

/// The block's text, and why it was left out when it was (the record's `memoryNote`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextBlock {
    pub text: Option<String>,
    pub note: Option<String>,
}

/// A job's context block: known when the job starts, or still being built.
#[derive(Clone)]
pub enum JobContext {
    Ready(ContextBlock),
    /// Running on its own task since the job started; every await shares its one result.
    Building(Shared<BoxFuture<'static, ContextBlock>>),
}

impl JobContext {
    /// A block known now; `None` for no block.
    pub fn text(text: Option<String>) -> JobContext {
        JobContext::Ready(ContextBlock { text, note: None })
    }

    /// Starts building the block at once, on a task of its own, so it is ready (or nearly) by
    /// the time the worker's session exists.
    pub fn building(block: impl Future<Output = ContextBlock> + Send + 'static) -> JobContext {
        let built = tokio::spawn(block);
        JobContext::Building(
            async move {
                built.await.unwrap_or_else(|err| ContextBlock {
                    text: None,
                    note: Some(format!("memory block left out: building it failed ({err})")),
                })
            }
            .boxed()
            .shared(),
        )
    }

    /// The block, waiting for it if it is still being built.
    pub async fn block(&self) -> ContextBlock {
        match self {
            JobContext::Ready(block) => block.clone(),
            JobContext::Building(building) => building.clone().await,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_block_being_built_is_awaited_once_and_shared() {
        let (send, receive) = tokio::sync::oneshot::channel::<()>();
        let context = JobContext::building(async move {
            receive.await.unwrap();
            ContextBlock {
                text: Some("remembered".into()),
                note: None,
            }
        });
        let early = context.clone();
        let waiting = tokio::spawn(async move { early.block().await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "the block is not built yet");
        send.send(()).unwrap();
        let first = waiting.await.unwrap();
        assert_eq!(first.text.as_deref(), Some("remembered"));
        assert_eq!(context.block().await, first);
    }

    #[tokio::test]
    async fn a_block_that_panics_leaves_the_job_without_it_and_says_why() {
        let context = JobContext::building(async { panic!("the index broke") });
        let block = context.block().await;
        assert_eq!(block.text, None);
        assert!(
            block.note.unwrap().starts_with("memory block left out"),
            "the note names the left-out block"
        );
    }
}
