//! Typed calls to a running hub's HTTP API, and its event stream.

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::{Stream, StreamExt};
use orchestra_protocol::{
    ApiError, HubEvent, HubHealth, ListFormat, LoginLink, TaskListParams, ToolReply,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::ClientError;
use crate::discovery::HubInfo;

/// Bounds every call except the event stream and tool calls (`task_await` waits up to 45 s).
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// Tool calls wait for `task_await` (≤ 45 s, `tasks.awaitCapMs`) and `task_cancel` (≤ 10 s).
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A client of one hub. Cheap to clone.
#[derive(Clone)]
pub struct HubClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

/// A `task_list` view as the API returns it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ListingReply {
    pub json: Value,
    pub text: String,
}

impl HubClient {
    pub fn new(info: &HubInfo) -> Result<HubClient, ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            // The hub is on 127.0.0.1; a proxy from the environment must not see its token.
            .no_proxy()
            .build()
            .map_err(|err| ClientError::Http {
                what: "building the HTTP client".into(),
                message: err.to_string(),
            })?;
        Ok(HubClient {
            base: info.url.trim_end_matches('/').to_owned(),
            token: info.token.clone(),
            http,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub async fn health(&self) -> Result<HubHealth, ClientError> {
        self.get("/api/v1/health").await
    }

    /// One MCP tool call, answered exactly as the hub's MCP server answers it.
    pub async fn tool(
        &self,
        name: &str,
        args: &Value,
        client: Option<&str>,
    ) -> Result<ToolReply, ClientError> {
        let mut request = self
            .http
            .post(format!("{}/api/v1/tools/{name}", self.base))
            .bearer_auth(&self.token)
            .timeout(TOOL_TIMEOUT)
            .json(args);
        if let Some(client) = client {
            request = request.header("x-orchestra-client", client);
        }
        decode(request.send().await, "calling a tool").await
    }

    /// A `task_list` view.
    pub async fn list(&self, params: &TaskListParams) -> Result<ListingReply, ClientError> {
        let mut params = params.clone();
        params.format.get_or_insert(ListFormat::Markdown);
        self.post("/api/v1/list", &params).await
    }

    pub async fn login_link(&self) -> Result<LoginLink, ClientError> {
        self.post("/api/v1/login", &Value::Null).await
    }

    /// A one-time login link in a file only the user can read (see [`LoginFile`]).
    ///
    /// [`LoginFile`]: orchestra_protocol::api::LoginFile
    pub async fn login_file(&self) -> Result<orchestra_protocol::api::LoginFile, ClientError> {
        self.post("/api/v1/login/file", &Value::Null).await
    }

    /// Asks the hub to stop (its jobs are canceled and its workers stopped).
    pub async fn shutdown(&self) -> Result<(), ClientError> {
        let _: Value = self.post("/api/v1/shutdown", &Value::Null).await?;
        Ok(())
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let request = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .timeout(CALL_TIMEOUT);
        decode(request.send().await, path).await
    }

    pub async fn post<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .timeout(TOOL_TIMEOUT)
            .json(body);
        decode(request.send().await, path).await
    }

    /// A GET whose answer is read by the caller (a stream), after its status is checked.
    pub async fn raw_get(&self, path: &str) -> Result<reqwest::Response, ClientError> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|err| send_error(&err, path))?;
        check(response, path).await
    }

    /// A POST of a raw (streamed) body, answered with JSON.
    pub async fn post_body<T: DeserializeOwned>(
        &self,
        path: &str,
        body: reqwest::Body,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .timeout(timeout)
            .body(body);
        decode(request.send().await, path).await
    }

    /// The hub's events from now on, or — with `after` — every kept event with a higher id
    /// first. The stream ends when the hub closes it (it stopped).
    pub async fn events(
        &self,
        after: Option<u64>,
    ) -> Result<impl Stream<Item = Result<HubEvent, ClientError>> + use<>, ClientError> {
        self.events_of(after, None).await
    }

    /// Like [`HubClient::events`], only the events of one job.
    pub async fn events_of(
        &self,
        after: Option<u64>,
        job: Option<&str>,
    ) -> Result<impl Stream<Item = Result<HubEvent, ClientError>> + use<>, ClientError> {
        let query = job.map_or_else(String::new, |job| format!("?job={}", encode(job)));
        self.event_stream(&query, after).await
    }

    /// An event stream that carries no events: it only counts this client as present and ends
    /// (or fails) when the hub goes away. Cheap for both sides however busy the hub is.
    pub async fn presence(
        &self,
    ) -> Result<impl Stream<Item = Result<HubEvent, ClientError>> + use<>, ClientError> {
        self.event_stream("?presence=true", None).await
    }

    async fn event_stream(
        &self,
        query: &str,
        after: Option<u64>,
    ) -> Result<impl Stream<Item = Result<HubEvent, ClientError>> + use<>, ClientError> {
        let mut request = self
            .http
            .get(format!("{}/api/v1/events{query}", self.base))
            .bearer_auth(&self.token);
        if let Some(after) = after {
            request = request.header("Last-Event-ID", after.to_string());
        }
        let response = request
            .send()
            .await
            .map_err(|err| send_error(&err, "opening the hub's event stream"))?;
        let response = check(response, "opening the hub's event stream").await?;
        Ok(response
            .bytes_stream()
            .eventsource()
            .filter_map(|item| async move {
                match item {
                    Ok(event) if event.data.is_empty() => None,
                    Ok(event) => Some(serde_json::from_str::<HubEvent>(&event.data).map_err(
                        |err| ClientError::Http {
                            what: "reading an event".into(),
                            message: err.to_string(),
                        },
                    )),
                    Err(err) => Some(Err(ClientError::Http {
                        what: "reading the hub's event stream".into(),
                        message: err.to_string(),
                    })),
                }
            }))
    }
}

/// Percent-encodes everything but unreserved characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

async fn check(response: reqwest::Response, what: &str) -> Result<reqwest::Response, ClientError> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<ApiError>(&body).map_or(body, |e| e.error);
    Err(ClientError::Api {
        what: what.to_owned(),
        status,
        message,
    })
}

/// A failed send: `Unreachable` when nothing answered at all (the request never reached a
/// hub, so repeating it against a new hub is safe), else `Http`.
fn send_error(err: &reqwest::Error, what: &str) -> ClientError {
    if err.is_connect() {
        ClientError::Unreachable {
            url: err
                .url()
                .map(|u| u.origin().ascii_serialization())
                .unwrap_or_default(),
            message: err.to_string(),
        }
    } else {
        ClientError::Http {
            what: what.to_owned(),
            message: err.to_string(),
        }
    }
}

async fn decode<T: DeserializeOwned>(
    sent: Result<reqwest::Response, reqwest::Error>,
    what: &str,
) -> Result<T, ClientError> {
    let response = sent.map_err(|err| send_error(&err, what))?;
    let response = check(response, what).await?;
    response.json::<T>().await.map_err(|err| ClientError::Http {
        what: what.to_owned(),
        message: err.to_string(),
    })
}
