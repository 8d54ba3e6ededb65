//! Errors and warnings of config loading.

use std::fmt;
use std::path::PathBuf;

/// Why a configuration could not be loaded. Every variant names the file and, where there is
/// one, the key, so the user can go straight to the problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{}:{line}{}: not valid JSON with comments: {message}",
        path.display(),
        column.map(|c| format!(":{c}")).unwrap_or_default()
    )]
    Parse {
        path: PathBuf,
        line: usize,
        column: Option<usize>,
        message: String,
    },
    #[error("{}: `{key_path}`: {message}{}", path.display(), hint_suffix(hint.as_deref()))]
    Invalid {
        path: PathBuf,
        /// Dotted path of the offending key, e.g. `ui.defaultListFormat` or `profiles[1].model`.
        key_path: String,
        message: String,
        hint: Option<String>,
    },
    #[error(
        "unknown worker profile `{id}`; known profiles: {}{}",
        known.join(", "),
        did_you_mean(suggestion.as_deref())
    )]
    UnknownProfile {
        id: String,
        known: Vec<String>,
        suggestion: Option<String>,
    },
}

impl ConfigError {
    pub fn kind(&self) -> orchestra_protocol::ErrorKind {
        use orchestra_protocol::ErrorKind;
        match self {
            ConfigError::UnknownProfile { .. } => ErrorKind::NotFound,
            ConfigError::Io { .. } | ConfigError::Parse { .. } | ConfigError::Invalid { .. } => {
                ErrorKind::BadRequest
            }
        }
    }
}

fn hint_suffix(hint: Option<&str>) -> String {
    hint.map(|h| format!("; hint: {h}")).unwrap_or_default()
}

fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default()
}

/// A key that was accepted but does nothing in Orchestra. Callers show these to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    pub path: PathBuf,
    pub key_path: String,
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: `{}`: {}",
            self.path.display(),
            self.key_path,
            self.message
        )
    }
}

/// The candidate closest to `input`, when it is close enough to be a plausible typo.
pub(crate) fn closest_match<'a, I>(input: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let normalized_input = normalize(input);
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        let normalized = normalize(candidate);
        let distance = if normalized == normalized_input {
            0
        } else {
            edit_distance(&normalized_input, &normalized)
        };
        let limit = (candidate.chars().count() / 3).max(2);
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

// `auto_spawn`, `AutoSpawn` and `auto-spawn` are all the same mistake for `autoSpawn`.
fn normalize(s: &str) -> Vec<char> {
    s.chars()
        .filter(|c| !matches!(c, '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect()
}

fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::closest_match;

    #[test]
    fn suggests_close_names_only() {
        let known = ["coder", "docs", "architect"];
        assert_eq!(closest_match("codr", known), Some("coder"));
        assert_eq!(closest_match("archtect", known), Some("architect"));
        assert_eq!(closest_match("zzzzzzzz", known), None);
        assert_eq!(
            closest_match("auto_spawn", ["autoSpawn", "ui"]),
            Some("autoSpawn")
        );
    }
}
