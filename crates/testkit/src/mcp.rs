//! Calling a tool over MCP as an agent would: one call, its text parts joined, and whether the
//! tool reported an error. The bench and the tests both drive `orchestra mcp` this way.

use rmcp::model::CallToolRequestParams;
use rmcp::service::{Peer, RoleClient, ServiceError};
use serde_json::{Map, Value};

/// A tool's answer: its text content joined by newlines, and whether it is a tool error.
#[derive(Debug, Clone)]
pub struct ToolReply {
    pub is_error: bool,
    pub text: String,
}

/// Calls `tool` with `arguments` on `peer` (a `RunningService` derefs to one).
pub async fn call_tool(
    peer: &Peer<RoleClient>,
    tool: &str,
    arguments: Map<String, Value>,
) -> Result<ToolReply, ServiceError> {
    let result = peer
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
        .await?;
    let text = result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n");
    Ok(ToolReply {
        is_error: result.is_error.unwrap_or(false),
        text,
    })
}
