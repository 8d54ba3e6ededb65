//! [`OpenCodeError`]: how a call to OpenCode failed. A leaf, so the client and the event
//! stream can both return it without using each other.

#[derive(Debug, thiserror::Error)]
pub enum OpenCodeError {
    /// OpenCode answered with a non-success status; `message` is OpenCode's own message.
    #[error("OpenCode {route} failed with HTTP {status}: {message}")]
    Http {
        status: u16,
        route: String,
        message: String,
    },
    #[error("could not reach OpenCode for {route}: {source}{}; is the server running?", root_cause(.source))]
    Transport {
        route: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("OpenCode {route} did not answer within {after_ms} ms")]
    Timeout { route: String, after_ms: u64 },
    #[error("unexpected response from OpenCode {route}: {message}")]
    Decode { route: String, message: String },
    #[error("{0}")]
    InvalidUrl(String),
    #[error("OpenCode closed the event stream (server stopped or restarted); subscribe again")]
    EventStreamClosed,
}

/// ` (<innermost cause>)`, or nothing: reqwest's own message ("error sending request for url")
/// does not say what went wrong on the wire.
fn root_cause(error: &reqwest::Error) -> String {
    let mut innermost: Option<&(dyn std::error::Error + 'static)> = None;
    let mut cause = std::error::Error::source(error);
    while let Some(error) = cause {
        innermost = Some(error);
        cause = error.source();
    }
    innermost.map_or_else(String::new, |cause| format!(" ({cause})"))
}

impl OpenCodeError {
    /// True when nothing listens at the address (server not started yet, or gone).
    pub fn is_connection_refused(&self) -> bool {
        let Self::Transport { source, .. } = self else {
            return false;
        };
        if !source.is_connect() {
            return false;
        }
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(source);
        while let Some(error) = cause {
            if let Some(io) = error.downcast_ref::<std::io::Error>() {
                return io.kind() == std::io::ErrorKind::ConnectionRefused;
            }
            cause = error.source();
        }
        false
    }

    /// The HTTP status when OpenCode answered with an error status.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Http { status, .. } => Some(*status),
            Self::Transport { .. }
            | Self::Timeout { .. }
            | Self::Decode { .. }
            | Self::InvalidUrl(_)
            | Self::EventStreamClosed => None,
        }
    }
}
