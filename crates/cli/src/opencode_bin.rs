//! Where the OpenCode binaries are, and which line (V1 `opencode-ai`, V2 `@opencode/cli`) one is.
//!
//! Two OpenCodes matter. The *worker* OpenCode is the one the hub starts; it should be the
//! release we test against (`PINNED_VERSION`), which ships beside this binary: in the npm
//! package tree (`opencode-orchestra` depends on `opencode-ai`), or in the repository's
//! `tools/opencode` for a source build. The *main* OpenCode is the one the user chats in
//! (`opencode` on PATH); `orchestra install` writes the config that version reads.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// The OpenCode release the workers run and the tests pin (`tools/opencode/package.json`).
pub const PINNED_VERSION: &str = "1.18.33";

/// The repository root this binary was built from; only useful while that checkout exists
/// (a source build whose `CARGO_TARGET_DIR` is outside the repository).
const BUILT_FROM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

pub use crate::install::OpenCodeLine;

impl std::fmt::Display for OpenCodeLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OpenCodeLine::V1 => "V1",
            OpenCodeLine::V2 => "V2",
        })
    }
}

/// The pinned OpenCode installed beside this executable: the npm package tree first
/// (`…/node_modules/opencode-ai` of the pinned version, in any ancestor folder), then the
/// repository's `tools/opencode` (ancestors of the executable, then the checkout it was built
/// from). `None` when neither is there.
pub fn pinned_beside(exe: &Path) -> Option<PathBuf> {
    exe.ancestors()
        .skip(1)
        .find_map(in_package_tree)
        .or_else(|| {
            exe.ancestors()
                .skip(1)
                .chain(std::iter::once(Path::new(BUILT_FROM)))
                .map(|dir| dir.join("tools/opencode/node_modules/.bin/opencode"))
                .find(|candidate| candidate.is_file())
        })
}

/// `dir/node_modules/opencode-ai`, when it is the pinned release: its launcher binary.
fn in_package_tree(dir: &Path) -> Option<PathBuf> {
    let package = dir.join("node_modules/opencode-ai");
    let manifest = std::fs::read_to_string(package.join("package.json")).ok()?;
    let manifest: serde_json::Value = serde_json::from_str(&manifest).ok()?;
    if manifest["version"].as_str() != Some(PINNED_VERSION) {
        return None;
    }
    // The package's postinstall puts the platform binary at bin/opencode.exe (all platforms);
    // without it (scripts disabled) bin/opencode is its Node launcher.
    ["bin/opencode.exe", "bin/opencode"]
        .iter()
        .map(|name| package.join(name))
        .find(|candidate| candidate.is_file())
}

/// `opencode` on PATH: the OpenCode the user runs.
pub fn on_path() -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join("opencode"))
        .find(|candidate| candidate.is_file())
}

/// Runs an OpenCode command (`bin args…`, in `cwd` when given) for what it prints: no input,
/// stderr dropped, no auto-update, killed if it outlives `limit`. `None` when it does not run or
/// takes longer; the exit status is the caller's to judge.
pub async fn output_of(
    bin: &Path,
    args: &[&str],
    cwd: Option<&Path>,
    limit: Duration,
) -> Option<std::process::Output> {
    let mut command = tokio::process::Command::new(bin);
    command
        .args(args)
        .env("OPENCODE_DISABLE_AUTOUPDATE", "1")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    if let Some(dir) = cwd {
        command.current_dir(dir);
    }
    tokio::time::timeout(limit, command.output())
        .await
        .ok()?
        .ok()
}

/// `bin --version`: the version alone (`1.18.33`, `2.1.2`); `None` when it does not run or says nothing within 20 s.
pub async fn version_of(bin: &Path) -> Option<String> {
    let output = output_of(bin, &["--version"], None, Duration::from_secs(20)).await?;
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().map(str::trim).rfind(|line| !line.is_empty())?;
    // 1.x prints `1.18.33`, 2.x `opencode v2.1.2`: keep the version alone.
    let version = line.split_whitespace().next_back()?.trim_start_matches('v');
    (output.status.success() && OpenCodeLine::of_version(version).is_some())
        .then(|| version.to_owned())
}

/// The OpenCode line `orchestra install` writes for: `explicit` (`--opencode`), else the
/// version of `opencode` on PATH, else 1.x. Returns the line and one line for people saying why.
pub async fn line_for_install(explicit: Option<OpenCodeLine>) -> (OpenCodeLine, String) {
    if let Some(line) = explicit {
        return (line, format!("for OpenCode {} (--opencode)", line));
    }
    let Some(bin) = on_path() else {
        return (
            OpenCodeLine::V1,
            "for OpenCode V1: no `opencode` on PATH to ask (pass `--opencode v2` for OpenCode 2.x)"
                .to_owned(),
        );
    };
    match version_of(&bin).await {
        Some(version) => {
            let line = OpenCodeLine::of_version(&version).unwrap_or(OpenCodeLine::V1);
            (
                line,
                format!("for OpenCode {} ({} is {version})", line, bin.display()),
            )
        }
        None => (
            OpenCodeLine::V1,
            format!(
                "for OpenCode V1: {} did not tell its version (pass `--opencode v2` for OpenCode 2.x)",
                bin.display()
            ),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_pinned_version_is_the_one_the_repository_pins() {
        let manifest =
            std::fs::read_to_string(Path::new(BUILT_FROM).join("tools/opencode/package.json"))
                .unwrap();
        let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
        assert_eq!(manifest["dependencies"]["opencode-ai"], PINNED_VERSION);
    }

    #[test]
    fn a_package_tree_beside_the_binary_is_found_and_another_version_is_not() {
        let root = tempfile::tempdir().unwrap();
        let exe = root
            .path()
            .join("node_modules/opencode-orchestra-linux-x64/bin/orchestra");
        std::fs::create_dir_all(exe.parent().unwrap()).unwrap();
        let package = root.path().join("node_modules/opencode-ai");
        std::fs::create_dir_all(package.join("bin")).unwrap();
        std::fs::write(package.join("bin/opencode.exe"), "").unwrap();
        std::fs::write(
            package.join("package.json"),
            r#"{"name":"opencode-ai","version":"0.0.1"}"#,
        )
        .unwrap();
        assert_eq!(in_package_tree(root.path()), None);
        std::fs::write(
            package.join("package.json"),
            format!(r#"{{"name":"opencode-ai","version":"{PINNED_VERSION}"}}"#),
        )
        .unwrap();
        assert_eq!(pinned_beside(&exe), Some(package.join("bin/opencode.exe")));
    }
}
