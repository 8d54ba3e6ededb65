//! Which files a worker's turn changed, read from its session's tool calls when the turn ends
//! (`JobProgress.filesTouched`): the `filePath` of completed `edit`, `write` and `multiedit`
//! calls, and the files an `apply_patch`/`patch` call names. Paths inside the project are
//! given relative to it.

use std::path::Path;

use serde_json::Value;

use crate::opencode::{MessageWithParts, Part};

/// More than this many files is noise in a record; the rest are left out.
const MAX_FILES: usize = 200;
/// Paths longer than this are not file paths a person would read.
const MAX_PATH_CHARS: usize = 500;

/// The files the assistant's completed edit/write calls touched, first touch first, no repeats.
pub(super) fn files_touched(messages: &[MessageWithParts], project_dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = Vec::new();
    let parts = messages
        .iter()
        .filter(|m| m.info.role == "assistant")
        .flat_map(|m| m.parts.iter());
    for part in parts {
        let Part::Tool { tool, state, .. } = part else {
            continue;
        };
        if state.status != "completed" {
            continue;
        }
        let Some(input) = &state.input else { continue };
        for path in paths_of(tool, input) {
            let path = relative(&path, project_dir);
            if files.len() >= MAX_FILES {
                return files;
            }
            if !path.is_empty() && path.chars().count() <= MAX_PATH_CHARS && !files.contains(&path)
            {
                files.push(path);
            }
        }
    }
    files
}

fn paths_of(tool: &str, input: &Value) -> Vec<String> {
    match tool {
        "edit" | "write" | "multiedit" => input
            .get("filePath")
            .and_then(Value::as_str)
            .map(|p| vec![p.to_owned()])
            .unwrap_or_default(),
        "apply_patch" | "patch" => input
            .get("patchText")
            .or_else(|| input.get("patch"))
            .and_then(Value::as_str)
            .map(patch_paths)
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// `*** Add File: p`, `*** Update File: p`, `*** Delete File: p`, `*** Move to: p` lines.
fn patch_paths(patch: &str) -> Vec<String> {
    const MARKERS: [&str; 4] = [
        "*** Add File:",
        "*** Update File:",
        "*** Delete File:",
        "*** Move to:",
    ];
    patch
        .lines()
        .filter_map(|line| {
            MARKERS
                .iter()
                .find_map(|marker| line.trim_start().strip_prefix(marker))
        })
        .map(|path| path.trim().to_owned())
        .collect()
}

fn relative(path: &str, project_dir: &Path) -> String {
    Path::new(path)
        .strip_prefix(project_dir)
        .ok()
        .and_then(|rest| rest.to_str())
        .map_or_else(|| path.to_owned(), str::to_owned)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(parts: Value) -> MessageWithParts {
        serde_json::from_value(json!({
            "info": {"id": "m", "sessionID": "s", "role": "assistant", "time": {"created": 1}},
            "parts": parts
        }))
        .unwrap()
    }

    #[test]
    fn completed_edits_writes_and_patches_count_once_relative_to_the_project() {
        let tool = |tool: &str, status: &str, input: Value| json!({"type": "tool", "callID": "c", "tool": tool, "state": {"status": status, "input": input}});
        let messages = vec![message(json!([
            tool(
                "write",
                "completed",
                json!({"filePath": "/p/src/a.rs", "content": "x"})
            ),
            tool("edit", "completed", json!({"filePath": "/p/src/a.rs"})),
            tool("edit", "error", json!({"filePath": "/p/src/failed.rs"})),
            tool("read", "completed", json!({"filePath": "/p/src/read.rs"})),
            tool(
                "apply_patch",
                "completed",
                json!({"patchText":
                "*** Begin Patch\n*** Update File: src/b.rs\n@@\n-x\n+y\n*** Add File: /elsewhere/c.rs\n*** End Patch"})
            ),
        ]))];
        assert_eq!(
            files_touched(&messages, Path::new("/p")),
            ["src/a.rs", "src/b.rs", "/elsewhere/c.rs"]
        );
    }
}
