//! Which line of OpenCode a config is for: 1.x (`opencode-ai`) and 2.x (`@opencode/cli`) read
//! different keys for plugins.

/// Which generation of OpenCode a binary is: they read different config keys and plugin shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OpenCodeLine {
    /// `opencode-ai` 1.x: config key `plugin`, V1 HTTP API.
    V1,
    /// `@opencode/cli` 2.x: config key `plugins`, `/api/*` HTTP API.
    V2,
}

impl OpenCodeLine {
    /// From `opencode --version` output: `1.18.33` (1.x) or `opencode v2.1.2` (2.x prints its
    /// name first), so the version is the last word.
    pub fn of_version(version: &str) -> Option<OpenCodeLine> {
        let major: u32 = version
            .split_whitespace()
            .next_back()?
            .trim_start_matches('v')
            .split('.')
            .next()?
            .parse()
            .ok()?;
        match major {
            0 | 1 => Some(OpenCodeLine::V1),
            _ => Some(OpenCodeLine::V2),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_map_to_lines() {
        assert_eq!(OpenCodeLine::of_version("1.18.33"), Some(OpenCodeLine::V1));
        assert_eq!(OpenCodeLine::of_version("2.0.4\n"), Some(OpenCodeLine::V2));
        assert_eq!(OpenCodeLine::of_version("v2.1.0"), Some(OpenCodeLine::V2));
        assert_eq!(
            OpenCodeLine::of_version("opencode v2.1.2\n"),
            Some(OpenCodeLine::V2)
        );
        assert_eq!(OpenCodeLine::of_version("local"), None);
        assert_eq!(OpenCodeLine::of_version("  "), None);
    }
}
