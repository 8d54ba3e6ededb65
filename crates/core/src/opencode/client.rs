//! [`OpenCodeClient`]: one struct, every V1 route built in [`Route`], so a V2 (`/api/*`)
//! dialect can later be added as another route table behind the same methods.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::OpenCodeError;
use super::events::{EventStream, decode_sse};
use super::types::{
    AgentInfo, CreateSessionRequest, Health, MessageWithParts, PermissionReplyKind,
    PermissionRequest, PromptRequest, ProviderListResponse, ProvidersResponse, SessionInfo,
    SessionStatus, SkillInfo,
};

/// OpenCode's default basic-auth user name.
pub const DEFAULT_USERNAME: &str = "opencode";

/// Bound for every non-blocking route, so a request swallowed by a server that is still
/// booting (OpenCode accepts and never answers those) cannot hang the hub.
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DIRECTORY_HEADER: &str = "x-opencode-directory";
/// How much of a non-JSON body we quote in errors.
const BODY_EXCERPT_CHARS: usize = 300;

#[derive(Clone, PartialEq, Eq)]
pub struct BasicAuth {
    pub username: String,
    pub password: String,
}

impl BasicAuth {
    /// Auth for `opencode serve` started with `OPENCODE_SERVER_PASSWORD=password`.
    pub fn opencode(password: impl Into<String>) -> Self {
        Self {
            username: DEFAULT_USERNAME.to_owned(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The V1 route table: the only place that knows methods and paths.
#[derive(Debug, Clone, Copy)]
enum Route<'a> {
    Health,
    Config,
    Providers,
    ProviderList,
    Agents,
    Skills,
    CreateSession,
    DeleteSession(&'a str),
    PromptAsync(&'a str),
    Prompt(&'a str),
    Abort(&'a str),
    Messages(&'a str),
    SessionStatus,
    Permissions,
    ReplyPermission(&'a str),
    Events,
    DisposeInstance,
}

impl Route<'_> {
    /// Whether a request that never reached the server may go out once more: everything but
    /// a prompt, whose double would be a second turn.
    fn may_resend(self) -> bool {
        match self {
            Self::Prompt(_) | Self::PromptAsync(_) => false,
            Self::Health
            | Self::Config
            | Self::Providers
            | Self::ProviderList
            | Self::Agents
            | Self::Skills
            | Self::CreateSession
            | Self::DeleteSession(_)
            | Self::Abort(_)
            | Self::Messages(_)
            | Self::SessionStatus
            | Self::Permissions
            | Self::ReplyPermission(_)
            | Self::Events
            | Self::DisposeInstance => true,
        }
    }

    fn method(self) -> Method {
        match self {
            Self::Health
            | Self::Config
            | Self::Providers
            | Self::ProviderList
            | Self::Agents
            | Self::Skills
            | Self::Messages(_)
            | Self::SessionStatus
            | Self::Permissions
            | Self::Events => Method::GET,
            Self::CreateSession
            | Self::PromptAsync(_)
            | Self::Prompt(_)
            | Self::Abort(_)
            | Self::ReplyPermission(_)
            | Self::DisposeInstance => Method::POST,
            Self::DeleteSession(_) => Method::DELETE,
        }
    }

    fn path(self) -> String {
        match self {
            Self::Health => "/global/health".to_owned(),
            Self::Config => "/config".to_owned(),
            Self::Providers => "/config/providers".to_owned(),
            Self::ProviderList => "/provider".to_owned(),
            Self::Agents => "/agent".to_owned(),
            Self::Skills => "/skill".to_owned(),
            Self::CreateSession => "/session".to_owned(),
            Self::DeleteSession(id) => format!("/session/{}", encode_component(id)),
            Self::PromptAsync(id) => format!("/session/{}/prompt_async", encode_component(id)),
            Self::Prompt(id) | Self::Messages(id) => {
                format!("/session/{}/message", encode_component(id))
            }
            Self::Abort(id) => format!("/session/{}/abort", encode_component(id)),
            Self::SessionStatus => "/session/status".to_owned(),
            Self::Permissions => "/permission".to_owned(),
            Self::ReplyPermission(id) => format!("/permission/{}/reply", encode_component(id)),
            Self::Events => "/event".to_owned(),
            Self::DisposeInstance => "/instance/dispose".to_owned(),
        }
    }

    /// `POST /session/ses_…/abort`, used in errors and logs.
    fn label(self) -> String {
        format!("{} {}", self.method(), self.path())
    }
}

/// How long a request may take.
#[derive(Debug, Clone, Copy)]
enum Deadline {
    Default,
    Custom(Duration),
    /// Blocking prompts: the agent loop can legitimately run for a long time.
    None,
}

/// A typed client for one `opencode serve`, optionally scoped to one project directory.
#[derive(Debug, Clone)]
pub struct OpenCodeClient {
    http: reqwest::Client,
    base_url: String,
    request_timeout: Duration,
    /// Set by [`OpenCodeClient::in_directory`]: sent on every call instead of the default.
    directory: Option<HeaderValue>,
}

impl OpenCodeClient {
    /// `base_url` like `http://127.0.0.1:4096`. With `auth`, every call carries basic auth; with
    /// `directory`, every call carries `x-opencode-directory` so the server uses that project.
    pub fn new(
        base_url: &str,
        auth: Option<BasicAuth>,
        directory: Option<PathBuf>,
    ) -> Result<Self, OpenCodeError> {
        let parsed = reqwest::Url::parse(base_url).map_err(|error| {
            OpenCodeError::InvalidUrl(format!(
                "invalid OpenCode URL `{base_url}`: {error}; expected something like http://127.0.0.1:4096"
            ))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(OpenCodeError::InvalidUrl(format!(
                "invalid OpenCode URL `{base_url}`: expected http://host:port, for example http://127.0.0.1:4096"
            )));
        }

        let mut headers = HeaderMap::new();
        if let Some(auth) = &auth {
            let token = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", auth.username, auth.password));
            let mut value = HeaderValue::from_str(&format!("Basic {token}")).map_err(|_| {
                OpenCodeError::InvalidUrl(
                    "the OpenCode basic-auth credentials are not a valid header value".to_owned(),
                )
            })?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        if let Some(directory) = &directory {
            headers.insert(
                HeaderName::from_static(DIRECTORY_HEADER),
                directory_header(directory)?,
            );
        }

        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(CONNECT_TIMEOUT)
            // Workers listen on 127.0.0.1; a proxy from the environment must never sit in between.
            .no_proxy()
            .build()
            .map_err(|error| {
                OpenCodeError::InvalidUrl(format!("could not build the HTTP client: {error}"))
            })?;

        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            directory: None,
        })
    }

    /// The same server, addressed in another directory (one server serves many): every call
    /// carries `x-opencode-directory: directory`, so a session created through it lives there.
    pub fn in_directory(&self, directory: &std::path::Path) -> Result<Self, OpenCodeError> {
        let mut scoped = self.clone();
        scoped.directory = Some(directory_header(directory)?);
        Ok(scoped)
    }

    /// Replaces the 30 s bound used for every route except `prompt` and `events`.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `GET /global/health` with its own timeout: during the first ~1.5 s after start a request
    /// can be accepted and never answered, so callers poll with short timeouts.
    pub async fn health(&self, timeout: Duration) -> Result<Health, OpenCodeError> {
        self.call_json(Route::Health, None::<&()>, Deadline::Custom(timeout))
            .await
    }

    /// `GET /config`: the merged configuration.
    pub async fn config(&self) -> Result<serde_json::Value, OpenCodeError> {
        self.call_json(Route::Config, None::<&()>, Deadline::Default)
            .await
    }

    pub async fn providers(&self) -> Result<ProvidersResponse, OpenCodeError> {
        self.call_json(Route::Providers, None::<&()>, Deadline::Default)
            .await
    }

    /// `GET /provider`: every provider OpenCode knows (its bundled models.dev catalog plus config),
    /// with the ids of the connected ones.
    pub async fn provider_list(&self) -> Result<ProviderListResponse, OpenCodeError> {
        self.call_json(Route::ProviderList, None::<&()>, Deadline::Default)
            .await
    }

    pub async fn agents(&self) -> Result<Vec<AgentInfo>, OpenCodeError> {
        self.call_json(Route::Agents, None::<&()>, Deadline::Default)
            .await
    }

    /// `GET /skill`: the skills this server's agents can load (built-in ones, `SKILL.md` files
    /// with valid frontmatter). A skill whose file does not parse is left out silently.
    pub async fn skills(&self) -> Result<Vec<SkillInfo>, OpenCodeError> {
        self.call_json(Route::Skills, None::<&()>, Deadline::Default)
            .await
    }

    pub async fn create_session(
        &self,
        req: &CreateSessionRequest,
    ) -> Result<SessionInfo, OpenCodeError> {
        self.call_json(Route::CreateSession, Some(req), Deadline::Default)
            .await
    }

    /// Starts a turn and returns at once (HTTP 204); follow it with [`Self::events`].
    pub async fn prompt_async(
        &self,
        session_id: &str,
        body: &PromptRequest,
    ) -> Result<(), OpenCodeError> {
        self.call(
            Route::PromptAsync(session_id),
            Some(body),
            Deadline::Default,
        )
        .await
        .map(drop)
    }

    /// Runs a turn and returns the last assistant message. Not time-bounded: a provider that
    /// keeps failing with 5xx makes OpenCode retry forever, so wrap this in a timeout or abort.
    pub async fn prompt(
        &self,
        session_id: &str,
        body: &PromptRequest,
    ) -> Result<MessageWithParts, OpenCodeError> {
        self.call_json(Route::Prompt(session_id), Some(body), Deadline::None)
            .await
    }

    /// Returns OpenCode's answer (`true`; also for sessions that were not running).
    pub async fn abort(&self, session_id: &str) -> Result<bool, OpenCodeError> {
        self.call_json(Route::Abort(session_id), None::<&()>, Deadline::Default)
            .await
    }

    pub async fn messages(&self, session_id: &str) -> Result<Vec<MessageWithParts>, OpenCodeError> {
        self.call_json(Route::Messages(session_id), None::<&()>, Deadline::Default)
            .await
    }

    /// Busy and retrying sessions; idle ones are usually absent.
    pub async fn session_status(&self) -> Result<HashMap<String, SessionStatus>, OpenCodeError> {
        self.call_json(Route::SessionStatus, None::<&()>, Deadline::Default)
            .await
    }

    /// Permission questions waiting for an answer, on every session of the instance.
    pub async fn pending_permissions(&self) -> Result<Vec<PermissionRequest>, OpenCodeError> {
        self.call_json(Route::Permissions, None::<&()>, Deadline::Default)
            .await
    }

    pub async fn reply_permission(
        &self,
        request_id: &str,
        reply: PermissionReplyKind,
        message: Option<&str>,
    ) -> Result<(), OpenCodeError> {
        #[derive(Serialize)]
        struct Body<'a> {
            reply: PermissionReplyKind,
            #[serde(skip_serializing_if = "Option::is_none")]
            message: Option<&'a str>,
        }
        let body = Body { reply, message };
        self.call_json::<serde_json::Value, _>(
            Route::ReplyPermission(request_id),
            Some(&body),
            Deadline::Default,
        )
        .await
        .map(drop)
    }

    pub async fn delete_session(&self, session_id: &str) -> Result<(), OpenCodeError> {
        self.call_json::<serde_json::Value, _>(
            Route::DeleteSession(session_id),
            None::<&()>,
            Deadline::Default,
        )
        .await
        .map(drop)
    }

    /// Tells the server to drop its instance for this client's directory (watchers, LSP and
    /// MCP clients, caches). The next call addressed there boots a fresh one.
    pub async fn dispose_instance(&self) -> Result<(), OpenCodeError> {
        self.call_json::<serde_json::Value, _>(
            Route::DisposeInstance,
            None::<&()>,
            Deadline::Default,
        )
        .await
        .map(drop)
    }

    /// Subscribes to `GET /event`. Subscribe before prompting so no event is missed.
    pub async fn events(&self) -> Result<EventStream, OpenCodeError> {
        let route = Route::Events;
        let label = route.label();
        let send = || {
            let mut request = self
                .http
                .request(route.method(), self.url(route))
                .header(reqwest::header::ACCEPT, "text/event-stream");
            if let Some(directory) = &self.directory {
                request = request.header(DIRECTORY_HEADER, directory.clone());
            }
            request.send()
        };
        let subscribed = send_resending(route, &label, send);
        // Only the response head is bounded: the body is the endless stream.
        let response = match tokio::time::timeout(self.request_timeout, subscribed).await {
            Ok(result) => result.map_err(|error| transport_error(&label, error))?,
            Err(_) => return Err(timeout_error(&label, self.request_timeout)),
        };
        let response = check_status(response, &label).await?;
        let stream_label = label.clone();
        let bytes = response.bytes_stream().map(move |chunk| {
            chunk.map_err(|source| OpenCodeError::Transport {
                route: stream_label.clone(),
                source,
            })
        });
        Ok(decode_sse(bytes, label))
    }

    fn timeout_for(&self, deadline: Deadline) -> Option<Duration> {
        match deadline {
            Deadline::Default => Some(self.request_timeout),
            Deadline::Custom(timeout) => Some(timeout),
            Deadline::None => None,
        }
    }

    fn url(&self, route: Route<'_>) -> String {
        format!("{}{}", self.base_url, route.path())
    }

    async fn call<B: Serialize + ?Sized>(
        &self,
        route: Route<'_>,
        body: Option<&B>,
        deadline: Deadline,
    ) -> Result<(reqwest::Response, String), OpenCodeError> {
        let label = route.label();
        let timeout = self.timeout_for(deadline);
        let send = || {
            let mut request = self.http.request(route.method(), self.url(route));
            if let Some(directory) = &self.directory {
                request = request.header(DIRECTORY_HEADER, directory.clone());
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            if let Some(timeout) = timeout {
                request = request.timeout(timeout);
            }
            tracing::trace!(route = %label, "OpenCode request");
            request.send()
        };
        let sent = send_resending(route, &label, send).await;
        let response = sent.map_err(|error| match timeout {
            Some(timeout) if error.is_timeout() => timeout_error(&label, timeout),
            _ => transport_error(&label, error),
        })?;
        let response = check_status(response, &label).await?;
        Ok((response, label))
    }

    async fn call_json<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        route: Route<'_>,
        body: Option<&B>,
        deadline: Deadline,
    ) -> Result<T, OpenCodeError> {
        let timeout = self.timeout_for(deadline);
        let (response, label) = self.call(route, body, deadline).await?;
        let text = response.text().await.map_err(|error| match timeout {
            Some(timeout) if error.is_timeout() => timeout_error(&label, timeout),
            _ => transport_error(&label, error),
        })?;
        serde_json::from_str(&text).map_err(|error| OpenCodeError::Decode {
            route: label,
            message: format!("{error}; body: {}", excerpt(&text)),
        })
    }
}

/// The `x-opencode-directory` value: OpenCode decodes it with decodeURIComponent, like its
/// own SDK encodes it.
fn directory_header(directory: &std::path::Path) -> Result<HeaderValue, OpenCodeError> {
    HeaderValue::from_str(&encode_component(&directory.to_string_lossy())).map_err(|_| {
        OpenCodeError::InvalidUrl(format!(
            "directory `{}` cannot be sent to OpenCode as a header",
            directory.display()
        ))
    })
}

async fn check_status(
    response: reqwest::Response,
    label: &str,
) -> Result<reqwest::Response, OpenCodeError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    Err(OpenCodeError::Http {
        status: status.as_u16(),
        route: label.to_owned(),
        message: error_message(status, &body),
    })
}

/// OpenCode's own words: `{"name":"NotFoundError","data":{"message":…}}`,
/// `{"_tag":…,"message":…}`, or the plain body.
fn error_message(status: StatusCode, body: &str) -> String {
    let from_json = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|json| {
            json.pointer("/data/message")
                .or_else(|| json.get("message"))
                .or_else(|| json.pointer("/error/message"))
                .and_then(|message| message.as_str())
                .map(|message| message.trim().to_owned())
        });
    match from_json {
        Some(message) if !message.is_empty() => message,
        _ if !body.trim().is_empty() => excerpt(body.trim()),
        _ if status == StatusCode::UNAUTHORIZED => {
            "unauthorized: the server password does not match OPENCODE_SERVER_PASSWORD of that server"
                .to_owned()
        }
        _ => status
            .canonical_reason()
            .unwrap_or("no response body")
            .to_owned(),
    }
}

/// Sends the request `send` builds, and once more on a fresh connection when a kept-alive one
/// the server closed just as it went out ended it unanswered: the server never read it. Only
/// for routes that [`Route::may_resend`] (not prompts, where a second turn would be worse than
/// a failed one).
async fn send_resending<F, Sent>(
    route: Route<'_>,
    label: &str,
    send: F,
) -> Result<reqwest::Response, reqwest::Error>
where
    F: Fn() -> Sent,
    Sent: std::future::Future<Output = Result<reqwest::Response, reqwest::Error>>,
{
    match send().await {
        Err(error) if route.may_resend() && closed_before_an_answer(&error) => {
            tracing::debug!(route = %label, %error, "OpenCode closed the connection unanswered; sending once more");
            send().await
        }
        sent => sent,
    }
}

/// True when the connection ended (closed or reset by the peer) before any answer came, which
/// is how a server's closing an idle kept-alive connection meets a request sent on it. Neither
/// a refused connection (nothing listens) nor a timeout.
fn closed_before_an_answer(error: &reqwest::Error) -> bool {
    if error.is_timeout() || error.is_connect() {
        return false;
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = cause {
        if error
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_incomplete_message)
        {
            return true;
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::ConnectionAborted
            );
        }
        cause = error.source();
    }
    false
}

fn transport_error(label: &str, source: reqwest::Error) -> OpenCodeError {
    OpenCodeError::Transport {
        route: label.to_owned(),
        source,
    }
}

fn timeout_error(label: &str, timeout: Duration) -> OpenCodeError {
    OpenCodeError::Timeout {
        route: label.to_owned(),
        after_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
    }
}

fn excerpt(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(BODY_EXCERPT_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

/// JavaScript's `encodeURIComponent`, which is what OpenCode decodes ids and directories with.
fn encode_component(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_encode_uri_component() {
        assert_eq!(encode_component("/tmp/a b/ü"), "%2Ftmp%2Fa%20b%2F%C3%BC");
        assert_eq!(
            encode_component("ses_AZaz09-_.!~*'()"),
            "ses_AZaz09-_.!~*'()"
        );
    }

    #[test]
    fn error_message_prefers_opencode_words() {
        let not_found = r#"{"name":"NotFoundError","data":{"message":"Session not found: ses_x"}}"#;
        assert_eq!(
            error_message(StatusCode::NOT_FOUND, not_found),
            "Session not found: ses_x"
        );
        let tagged = r#"{"_tag":"PermissionNotFoundError","requestID":"per_x","message":"Permission request not found: per_x"}"#;
        assert_eq!(
            error_message(StatusCode::NOT_FOUND, tagged),
            "Permission request not found: per_x"
        );
        assert_eq!(
            error_message(StatusCode::BAD_GATEWAY, "  upstream down \n"),
            "upstream down"
        );
        assert!(error_message(StatusCode::UNAUTHORIZED, "").contains("password"));
        assert_eq!(
            error_message(StatusCode::SERVICE_UNAVAILABLE, ""),
            "Service Unavailable"
        );
    }

    #[test]
    fn routes_are_built_in_one_place() {
        assert_eq!(
            Route::PromptAsync("ses_1").label(),
            "POST /session/ses_1/prompt_async"
        );
        assert_eq!(
            Route::Messages("ses_1").label(),
            "GET /session/ses_1/message"
        );
        assert_eq!(
            Route::Prompt("ses_1").label(),
            "POST /session/ses_1/message"
        );
        assert_eq!(Route::DeleteSession("a/b").path(), "/session/a%2Fb");
        assert_eq!(
            Route::ReplyPermission("per_1").label(),
            "POST /permission/per_1/reply"
        );
    }

    #[test]
    fn rejects_bad_urls_with_a_hint() {
        let error = OpenCodeClient::new("127.0.0.1:4096", None, None).unwrap_err();
        assert!(
            error.to_string().contains("http://127.0.0.1:4096"),
            "{error}"
        );
        let client = OpenCodeClient::new("http://127.0.0.1:4096/", None, None).unwrap();
        assert_eq!(client.base_url(), "http://127.0.0.1:4096");
    }

    #[tokio::test]
    async fn connection_refused_is_recognised() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let client = OpenCodeClient::new(&format!("http://127.0.0.1:{port}"), None, None).unwrap();
        let error = client.health(Duration::from_millis(500)).await.unwrap_err();
        assert!(error.is_connection_refused(), "{error:?}");
    }
}
