//! The control panel: one page (`/`) and its assets (`/assets/…`), plain HTML, CSS and
//! JavaScript modules embedded in the binary at build time — no build step, nothing fetched from
//! anywhere but this hub. The page reads everything from the JSON API and the event stream and
//! holds no logic the API does not (see `assets/js/`).
//!
//! Like every route, these pass the auth guard: a browser that has not logged in through
//! `orchestra panel` gets the "not logged in" page, not the panel.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiFailure;

/// One embedded file.
pub struct Asset {
    /// Under `/assets/` (the page itself is `index.html`, served at `/`).
    pub path: &'static str,
    pub mime: &'static str,
    pub body: &'static str,
    /// FNV-1a 64 of `body`, computed at build time: the `ETag`.
    hash: u64,
}

const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

macro_rules! assets {
    ($($path:literal => $mime:expr),* $(,)?) => {
        &[$(Asset {
            path: $path,
            mime: $mime,
            body: include_str!(concat!("../assets/", $path)),
            hash: fnv1a(include_str!(concat!("../assets/", $path)).as_bytes()),
        }),*]
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every file of the page. Adding a module means adding it here.
pub static ASSETS: &[Asset] = assets! {
    "index.html" => "text/html; charset=utf-8",
    "panel.css" => CSS,
    "views.css" => CSS,
    "js/app.js" => JS,
    "js/login.js" => JS,
    "js/api.js" => JS,
    "js/dom.js" => JS,
    "js/budget.js" => JS,
    "js/state.js" => JS,
    "js/keys.js" => JS,
    "js/views/workers.js" => JS,
    "js/views/tasks.js" => JS,
    "js/views/task.js" => JS,
    "js/views/worktree.js" => JS,
    "js/views/runs.js" => JS,
    "js/views/run.js" => JS,
    "js/views/inbox.js" => JS,
    "js/views/budget_inbox.js" => JS,
    "js/views/deliveries.js" => JS,
    "js/views/memory.js" => JS,
    "js/views/logs.js" => JS,
    "js/views/config.js" => JS,
};

/// The page's scripts and styles come from this hub only, and nothing on it may load or send
/// anything elsewhere; text from workers is always inserted as text, never as markup.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `GET /`: the panel.
pub async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// `GET /assets/{path}`.
pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    if path == "index.html" {
        return missing(&path);
    }
    serve(&path, &headers)
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.path == path) else {
        return missing(path);
    };
    let etag = format!("\"{:016x}\"", asset.hash);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    let status = if fresh {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    };
    let mut response = if fresh {
        status.into_response()
    } else {
        (status, asset.body).into_response()
    };
    let out = response.headers_mut();
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.mime));
    // Always revalidated (cheap: an ETag), so a new binary's page is never mixed with old parts.
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        out.insert(header::ETAG, value);
    }
    out.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    out.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn missing(path: &str) -> Response {
    ApiFailure::not_found(format!(
        "no panel file `{path}`; the panel is at / (open it with `orchestra panel`)"
    ))
    .into_response()
}

/// The panel's total size in bytes (what a first visit downloads).
pub fn total_bytes() -> usize {
    ASSETS.iter().map(|a| a.body.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_small_and_self_contained() {
        assert!(total_bytes() <= 200 * 1024, "{} bytes", total_bytes());
        for asset in ASSETS {
            // Nothing is fetched from the internet.
            for marker in ["http://", "https://", "//cdn", "@import"] {
                assert!(
                    !asset.body.contains(marker),
                    "{} contains `{marker}`",
                    asset.path
                );
            }
        }
        // Every module the page imports is embedded.
        for asset in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            for line in asset.body.lines().filter(|l| l.starts_with("import ")) {
                let Some(spec) = line.split('"').nth(1) else {
                    continue;
                };
                let base = asset.path.rsplit_once('/').map_or("", |(dir, _)| dir);
                let resolved = resolve(base, spec);
                assert!(
                    ASSETS.iter().any(|a| a.path == resolved),
                    "{} imports {spec} ({resolved}), which is not embedded",
                    asset.path
                );
            }
        }
    }

    /// `./x.js` and `../x.js` relative to `base` (a folder under `/assets/`).
    fn resolve(base: &str, spec: &str) -> String {
        let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
        for piece in spec.split('/') {
            match piece {
                "." => {}
                ".." => {
                    parts.pop();
                }
                other => parts.push(other),
            }
        }
        parts.join("/")
    }
}
