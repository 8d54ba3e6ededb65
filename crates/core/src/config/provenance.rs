//! Where each setting came from: for every key a config file sets, the file that decides its
//! value (the last one that sets it). The panel's config view shows it next to the effective
//! values, so "why is this worker read-only?" has an answer with a file name.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use super::layer::{ConfigOrigin, Layer};

/// One key set in a file: `tasks.defaultTimeoutMs`, `profiles.coder.model`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySource {
    /// Dotted path; profile entries are addressed by their id (`profiles.coder.permission.bash`).
    pub key: String,
    pub file: PathBuf,
    pub origin: ConfigOrigin,
    /// The value that file sets.
    pub value: Value,
}

/// The files read (lowest priority first) and, per key, the file that decides it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provenance {
    pub files: Vec<(PathBuf, ConfigOrigin)>,
    pub keys: Vec<KeySource>,
}

impl ConfigOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigOrigin::Global => "global",
            ConfigOrigin::Project => "project",
            ConfigOrigin::CommandLine => "command-line",
        }
    }
}

/// Keys whose value is an array of profile entries, merged entry by entry by id.
const PROFILE_LISTS: [&str; 2] = ["profiles", "workers"];

pub(crate) fn of_layers(layers: &[Layer]) -> Provenance {
    let mut keys: BTreeMap<String, (PathBuf, ConfigOrigin, Value)> = BTreeMap::new();
    for layer in layers {
        let mut set = Vec::new();
        leaves(&layer.raw, String::new(), &mut set);
        for (key, value) in set {
            if value.is_null() {
                // `null` resets a key to its built-in default: no file decides it any more.
                keys.retain(|k, _| k != &key && !k.starts_with(&format!("{key}.")));
            } else {
                keys.insert(key, (layer.path.clone(), layer.origin, value));
            }
        }
    }
    Provenance {
        files: layers.iter().map(|l| (l.path.clone(), l.origin)).collect(),
        keys: keys
            .into_iter()
            .map(|(key, (file, origin, value))| KeySource {
                key,
                file,
                origin,
                value,
            })
            .collect(),
    }
}

/// Every leaf under `value` with its dotted path; arrays are leaves, except the profile lists,
/// whose object entries are addressed by id.
fn leaves(value: &Value, path: String, out: &mut Vec<(String, Value)>) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let child_path = join(key);
                match child {
                    Value::Array(entries)
                        if path.is_empty() && PROFILE_LISTS.contains(&key.as_str()) =>
                    {
                        // The list itself (which workers start) is a setting of its own; its
                        // value is the ids, not the whole profile objects.
                        let ids: Vec<Value> = entries
                            .iter()
                            .map(|e| e.get("id").cloned().unwrap_or_else(|| e.clone()))
                            .collect();
                        out.push((child_path.clone(), Value::Array(ids)));
                        for entry in entries {
                            if let Some(id) = entry.get("id").and_then(Value::as_str) {
                                leaves(entry, format!("profiles.{id}"), out);
                            }
                        }
                    }
                    _ => leaves(child, child_path, out),
                }
            }
        }
        other => out.push((path, other.clone())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn layer(path: &str, origin: ConfigOrigin, raw: Value) -> Layer {
        Layer {
            path: PathBuf::from(path),
            origin,
            file: serde_json::from_value(raw.clone()).unwrap(),
            raw,
        }
    }

    #[test]
    fn the_last_file_that_sets_a_key_decides_it() {
        let layers = [
            layer(
                "/g.json",
                ConfigOrigin::Global,
                json!({"tasks": {"defaultTimeoutMs": 5, "awaitCapMs": 10},
                       "profiles": [{"id": "coder", "temperature": 0.5}]}),
            ),
            layer(
                "/p.json",
                ConfigOrigin::Project,
                json!({"tasks": {"defaultTimeoutMs": 7, "awaitCapMs": null},
                       "profiles": [{"id": "coder", "onPermissionAsk": "ask"}]}),
            ),
        ];
        let found = of_layers(&layers);
        let by_key: BTreeMap<&str, &str> = found
            .keys
            .iter()
            .map(|k| (k.key.as_str(), k.file.to_str().unwrap()))
            .collect();
        assert_eq!(by_key.get("tasks.defaultTimeoutMs"), Some(&"/p.json"));
        assert_eq!(
            by_key.get("tasks.awaitCapMs"),
            None,
            "null resets to the default"
        );
        assert_eq!(by_key.get("profiles.coder.temperature"), Some(&"/g.json"));
        assert_eq!(
            by_key.get("profiles.coder.onPermissionAsk"),
            Some(&"/p.json")
        );
        assert_eq!(by_key.get("profiles"), Some(&"/p.json"));
        assert_eq!(found.files.len(), 2);
        assert_eq!(found.files[1].1.as_str(), "project");
    }
}
