//! Login files: how `orchestra panel` hands a one-time login link to a browser without putting
//! it on a command line, where any local user reads it in `/proc/*/cmdline` (a browser started
//! fresh keeps its URL argument for its whole life). The hub writes a small HTML page, readable
//! by the user only, into the project's state folder (itself private); the browser is given
//! that file's path, and the page sends it on to the link. The file is removed as soon as its
//! link is used, when the link expires, or when the hub stops — the approach Jupyter takes.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::secrets::{LOGIN_LINK_TTL, secret};

/// Login files are named `panel-login-<random>.html`.
const PREFIX: &str = "panel-login-";
const SUFFIX: &str = ".html";

/// Writes a login file for `url` in `dir` (created by the hub's announcement, so it exists and
/// is private); its path.
pub fn write(dir: &Path, url: &str) -> std::io::Result<PathBuf> {
    sweep(dir);
    let path = dir.join(format!("{PREFIX}{}{SUFFIX}", &secret()[..16]));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    file.write_all(page(url).as_bytes())?;
    Ok(path)
}

/// Removes a login file; one already gone is fine.
pub fn remove(path: &Path) {
    if let Err(err) = std::fs::remove_file(path)
        && err.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %err, "could not remove a login file");
    }
}

/// Removes login files older than a link lives: left by a hub that was killed before it could.
fn sweep(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !(name.starts_with(PREFIX) && name.ends_with(SUFFIX)) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|at| SystemTime::now().duration_since(at).ok())
            .is_some_and(|age| age >= LOGIN_LINK_TTL);
        if old {
            remove(&entry.path());
        }
    }
}

/// The page: opens the link at once (a refresh works with scripts off and needs no script the
/// browser may refuse from a file), with the link to click should it not.
fn page(url: &str) -> String {
    let url = escape(url);
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <meta http-equiv=\"refresh\" content=\"0;url={url}\">\n\
         <title>Open Orchestra</title></head>\n\
         <body><p>Opening the Open Orchestra panel… If nothing happens, <a href=\"{url}\">open it here</a> \
         (this link works once, for two minutes).</p></body></html>\n"
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_login_file_is_private_and_points_at_its_link() {
        let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("{err}"));
        let url = "http://127.0.0.1:4000/login?code=abc&x=\"y\"";
        let path = write(dir.path(), url).unwrap_or_else(|err| panic!("{err}"));
        let meta = std::fs::metadata(&path).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            text.contains("url=http://127.0.0.1:4000/login?code=abc&amp;x=&quot;y&quot;"),
            "{text}"
        );
        remove(&path);
        remove(&path);
        assert!(!path.exists());
    }
}
