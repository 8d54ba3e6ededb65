//! Keys OpenCode 2.x holds that the workers cannot use. 2.x keeps what `opencode auth login`
//! stores in its own database (its `credential` table), not in the `auth.json` 1.x reads, and the
//! workers run 1.x: a provider a 2.x user set up only that way is not theirs. Doctor asks 2.x which
//! credentials it holds (`auth list --standalone --format json`: ids and names, never a secret; a
//! private server for the call, so no background service is left running) and names those whose
//! provider the workers do not offer.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::{Check, Status, check};
use crate::opencode_bin::{self, PINNED_VERSION};

/// One integration 2.x holds a stored credential for: (id, name).
type Stored = (String, String);

/// The ids and names of the integrations 2.x holds a credential for, from `auth list --format
/// json`; `None` when the answer is not that list.
fn stored_credentials(listing: &Value) -> Option<Vec<Stored>> {
    let stored = listing
        .as_array()?
        .iter()
        .filter(|entry| {
            entry["connections"]
                .as_array()
                .is_some_and(|all| all.iter().any(|c| c["type"] == "credential"))
        })
        .filter_map(|entry| {
            let id = entry["id"].as_str()?.to_owned();
            let name = entry["name"].as_str().unwrap_or(&id).to_owned();
            Some((id, name))
        })
        .collect();
    Some(stored)
}

/// The check, or `None` when 2.x holds no credential (or could not say: nothing to report).
pub(super) async fn v2_credentials(
    main: &Path,
    project_dir: &Path,
    offered: &[String],
) -> Option<Check> {
    let output = opencode_bin::output_of(
        main,
        &["auth", "list", "--standalone", "--format", "json"],
        Some(project_dir),
        Duration::from_secs(30),
    )
    .await?;
    if !output.status.success() {
        return None;
    }
    let listing: Value = serde_json::from_slice(&output.stdout).ok()?;
    let stored = stored_credentials(&listing)?;
    Some(judge(&stored, offered))
}

fn judge(stored: &[Stored], offered: &[String]) -> Check {
    let unseen: Vec<&Stored> = stored
        .iter()
        .filter(|(id, _)| !offered.iter().any(|o| o == id))
        .collect();
    let named = |list: &[&Stored]| {
        list.iter()
            .map(|(id, name)| format!("{name} (`{id}`)"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if unseen.is_empty() {
        let all: Vec<&Stored> = stored.iter().collect();
        return check(
            "v2-credentials",
            Status::Ok,
            format!(
                "OpenCode 2.x holds keys for {}; the workers are offered each of those providers too",
                named(&all)
            ),
        );
    }
    let first = &unseen[0].0;
    check(
        "v2-credentials",
        Status::Warn,
        format!(
            "OpenCode 2.x keeps the keys for {} in its own store, which the workers (OpenCode \
             1.x) cannot read, so tasks cannot use those providers",
            named(&unseen)
        ),
    )
    .fix(format!(
        "give 1.x the key too: the pinned OpenCode {PINNED_VERSION}'s `opencode auth login` \
         (run the binary the `opencode` line above names) stores it where the workers read it, \
         or set the provider's key variable where the hub starts, or put the provider in \
         opencode.json; `{first}` is the id to use"
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_stored_credentials_count_and_offered_ones_are_fine() {
        let listing = json!([
            {"id": "302ai", "name": "302.AI",
             "connections": [{"type": "credential", "id": "cred_1", "label": "302.AI", "method": "key"}]},
            {"id": "acme", "name": "Acme", "connections": [{"type": "environment"}]},
            {"id": "zen", "name": "Zen", "connections": []},
        ]);
        let stored = stored_credentials(&listing).unwrap();
        assert_eq!(stored, vec![("302ai".to_owned(), "302.AI".to_owned())]);
        let unseen = judge(&stored, &["fake".to_owned()]);
        assert_eq!(unseen.status, Status::Warn);
        assert!(
            unseen.summary.contains("302.AI (`302ai`)"),
            "{}",
            unseen.summary
        );
        let seen = judge(&stored, &["302ai".to_owned()]);
        assert_eq!(seen.status, Status::Ok);
        assert_eq!(stored_credentials(&json!({"not": "a list"})), None);
    }
}
