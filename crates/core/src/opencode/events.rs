//! OpenCode's SSE events (`GET /event`).
//!
//! Wire format: `data: {"id":"evt_…","type":"session.idle","properties":{…}}`. Only the types the
//! hub acts on are decoded; the other ~80 types become [`OpenCodeEvent::Other`].

use std::borrow::Cow;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;

use super::error::OpenCodeError;
use super::types::{MessageInfo, Part, PermissionRequest, SessionStatus};

/// The live event stream of one server (scoped to the client's directory). Malformed events
/// are skipped; when the server closes the stream the last item is
/// `Err(OpenCodeError::EventStreamClosed)`.
pub type EventStream = BoxStream<'static, Result<OpenCodeEvent, OpenCodeError>>;

#[derive(Debug, Clone, PartialEq)]
pub enum OpenCodeEvent {
    /// First event on every subscription.
    ServerConnected,
    /// Sent about every 10 s.
    Heartbeat,
    /// The session's agent loop finished (success, error or abort).
    SessionIdle {
        session_id: String,
    },
    SessionStatus {
        session_id: String,
        status: SessionStatus,
    },
    /// `error` is `{"name":"MessageAbortedError"|"APIError"|…,"data":{"message":…}}`.
    SessionError {
        session_id: Option<String>,
        error: Option<Value>,
    },
    MessageUpdated {
        info: MessageInfo,
    },
    MessagePartUpdated {
        part: Part,
    },
    /// Streaming text: append `delta` to `field` (usually `text`) of the part.
    MessagePartDelta {
        session_id: String,
        message_id: String,
        part_id: String,
        field: String,
        delta: String,
    },
    PermissionAsked(PermissionRequest),
    PermissionReplied {
        session_id: String,
        request_id: String,
        /// `once`, `always` or `reject`.
        reply: String,
    },
    Other {
        kind: String,
    },
}

impl OpenCodeEvent {
    /// The session this event belongs to, when it names one.
    pub fn session_id(&self) -> Option<&str> {
        match self {
            Self::SessionIdle { session_id }
            | Self::SessionStatus { session_id, .. }
            | Self::MessagePartDelta { session_id, .. }
            | Self::PermissionReplied { session_id, .. } => Some(session_id),
            Self::SessionError { session_id, .. } => session_id.as_deref(),
            Self::MessageUpdated { info } => Some(&info.session_id),
            Self::MessagePartUpdated { part } => match part {
                Part::Text { session_id, .. }
                | Part::Tool { session_id, .. }
                | Part::StepFinish { session_id, .. } => Some(session_id),
                Part::Other => None,
            },
            Self::PermissionAsked(request) => Some(&request.session_id),
            Self::ServerConnected | Self::Heartbeat | Self::Other { .. } => None,
        }
    }

    /// Decodes one SSE `data` payload. The envelope borrows `properties` unparsed, so an event
    /// the hub does not act on (most of them, some carrying whole tool outputs) costs one scan
    /// and its type's name, and one it acts on is decoded once, straight into its type.
    pub fn parse(data: &str) -> Result<Self, serde_json::Error> {
        let envelope: Envelope<'_> = serde_json::from_str(data)?;
        let properties = envelope.properties.map_or("null", RawValue::get);
        Ok(match envelope.kind.as_ref() {
            "server.connected" => Self::ServerConnected,
            "server.heartbeat" => Self::Heartbeat,
            "session.idle" => {
                let p: SessionOnly = from_properties(properties)?;
                Self::SessionIdle {
                    session_id: p.session_id,
                }
            }
            "session.status" => {
                let p: StatusProperties = from_properties(properties)?;
                Self::SessionStatus {
                    session_id: p.session_id,
                    status: p.status,
                }
            }
            "session.error" => {
                let p: ErrorProperties = from_properties(properties)?;
                Self::SessionError {
                    session_id: p.session_id,
                    error: p.error,
                }
            }
            "message.updated" => {
                let p: InfoProperties = from_properties(properties)?;
                Self::MessageUpdated { info: p.info }
            }
            "message.part.updated" => {
                let p: PartProperties = from_properties(properties)?;
                Self::MessagePartUpdated { part: p.part }
            }
            "message.part.delta" => {
                let p: DeltaProperties = from_properties(properties)?;
                Self::MessagePartDelta {
                    session_id: p.session_id,
                    message_id: p.message_id,
                    part_id: p.part_id,
                    field: p.field,
                    delta: p.delta,
                }
            }
            "permission.asked" => Self::PermissionAsked(from_properties(properties)?),
            "permission.replied" => {
                let p: RepliedProperties = from_properties(properties)?;
                Self::PermissionReplied {
                    session_id: p.session_id,
                    request_id: p.request_id,
                    reply: p.reply,
                }
            }
            other => Self::Other {
                kind: other.to_owned(),
            },
        })
    }
}

/// Turns an SSE byte stream into [`EventStream`]. Generic so it can be unit-tested on bytes.
pub(crate) fn decode_sse<S, B>(bytes: S, route: String) -> EventStream
where
    S: futures_util::Stream<Item = Result<B, OpenCodeError>> + Send + 'static,
    B: AsRef<[u8]> + Send + 'static,
{
    use eventsource_stream::{EventStreamError, Eventsource};

    // Shared, not copied per event: the stream carries every event of the server.
    let route: std::sync::Arc<str> = route.into();
    let events = bytes.eventsource().filter_map(move |item| {
        let route = route.clone();
        async move {
            match item {
                Ok(sse) if sse.data.trim().is_empty() => None,
                Ok(sse) => match OpenCodeEvent::parse(&sse.data) {
                    Ok(event) => Some(Ok(event)),
                    Err(error) => {
                        tracing::debug!(%route, %error, data = %sse.data, "skipping malformed OpenCode event");
                        None
                    }
                },
                Err(EventStreamError::Transport(error)) => Some(Err(error)),
                Err(EventStreamError::Utf8(error)) => {
                    tracing::debug!(%route, %error, "skipping non-UTF-8 OpenCode event");
                    None
                }
                Err(EventStreamError::Parser(error)) => {
                    tracing::debug!(%route, %error, "skipping unparsable SSE frame");
                    None
                }
            }
        }
    });
    let closed = futures_util::stream::once(async { Err(OpenCodeError::EventStreamClosed) });
    events.chain(closed).boxed()
}

fn from_properties<T: DeserializeOwned>(properties: &str) -> Result<T, serde_json::Error> {
    serde_json::from_str(properties)
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    properties: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct SessionOnly {
    #[serde(rename = "sessionID")]
    session_id: String,
}

#[derive(Deserialize)]
struct StatusProperties {
    #[serde(rename = "sessionID")]
    session_id: String,
    status: SessionStatus,
}

#[derive(Deserialize)]
struct ErrorProperties {
    #[serde(default, rename = "sessionID")]
    session_id: Option<String>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct InfoProperties {
    info: MessageInfo,
}

#[derive(Deserialize)]
struct PartProperties {
    part: Part,
}

#[derive(Deserialize)]
struct DeltaProperties {
    #[serde(rename = "sessionID")]
    session_id: String,
    #[serde(rename = "messageID")]
    message_id: String,
    #[serde(rename = "partID")]
    part_id: String,
    #[serde(default)]
    field: String,
    #[serde(default)]
    delta: String,
}

#[derive(Deserialize)]
struct RepliedProperties {
    #[serde(rename = "sessionID")]
    session_id: String,
    #[serde(rename = "requestID")]
    request_id: String,
    #[serde(default)]
    reply: String,
}
