//! Our own thin typed client for OpenCode's HTTP API (the V1 routes that `opencode run` and
//! the SDK use) and its SSE event stream. Shapes were measured against OpenCode 1.18.33;
//! see `docs`/reference notes and the fixtures in `crates/core/tests/fixtures/opencode/`.

mod client;
mod error;
mod events;
mod types;

pub use client::{BasicAuth, DEFAULT_USERNAME, OpenCodeClient};
pub use error::OpenCodeError;
pub use events::{EventStream, OpenCodeEvent};
pub use types::{
    AgentInfo, CacheTokens, CreateSessionRequest, Health, MessageInfo, MessageWithParts,
    Modalities, ModelCapabilities, ModelCost, ModelInfo, ModelLimit, ModelRef, Part, PartInput,
    PermissionAction, PermissionReplyKind, PermissionRequest, PermissionRule, PromptRequest,
    ProviderInfo, ProviderListResponse, ProvidersResponse, SessionInfo, SessionStatus, SkillInfo,
    Times, Tokens, ToolState,
};

#[cfg(test)]
mod tests;
