//! Just enough of RFC 6455 to talk to Chromium's DevTools endpoint on 127.0.0.1: the opening
//! handshake, masked text frames out, text frames (possibly fragmented) in, pings answered.

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::BrowserError;

const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;
const CONTINUATION: u8 = 0x0;
/// Largest message accepted (a full-page screenshot is a few MB of base64).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

pub struct Reader {
    stream: BufReader<OwnedReadHalf>,
}

pub struct Writer {
    stream: OwnedWriteHalf,
}

/// Connects to `ws://127.0.0.1:{port}{path}`.
pub async fn connect(port: u16, path: &str) -> Result<(Reader, Writer), BrowserError> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| {
        BrowserError::Protocol(format!("connecting to DevTools on port {port}: {e}"))
    })?;
    stream.set_nodelay(true).ok();
    let (read, mut write) = stream.into_split();
    let key = base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().as_bytes());
    // No Origin header: Chromium refuses websocket clients that send one it was not told about.
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    write.write_all(request.as_bytes()).await.map_err(io)?;
    let mut reader = BufReader::new(read);
    let mut status = String::new();
    reader.read_line(&mut status).await.map_err(io)?;
    if !status.starts_with("HTTP/1.1 101") {
        return Err(BrowserError::Protocol(format!(
            "DevTools refused the websocket: {}",
            status.trim()
        )));
    }
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.map_err(io)? == 0 {
            return Err(BrowserError::Protocol(
                "DevTools closed during the handshake".into(),
            ));
        }
        if line == "\r\n" {
            break;
        }
    }
    Ok((Reader { stream: reader }, Writer { stream: write }))
}

fn io(err: std::io::Error) -> BrowserError {
    BrowserError::Protocol(format!("DevTools connection: {err}"))
}

impl Writer {
    pub async fn send_text(&mut self, text: &str) -> Result<(), BrowserError> {
        self.frame(TEXT, text.as_bytes()).await
    }

    async fn frame(&mut self, opcode: u8, payload: &[u8]) -> Result<(), BrowserError> {
        let mut frame = Vec::with_capacity(payload.len() + 14);
        frame.push(0x80 | opcode);
        let len = payload.len();
        if len < 126 {
            frame.push(0x80 | u8::try_from(len).unwrap_or(0));
        } else if let Ok(short) = u16::try_from(len) {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&short.to_be_bytes());
        } else {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
        // Clients must mask what they send.
        let mask = *uuid::Uuid::new_v4().as_bytes();
        let mask = [mask[0], mask[1], mask[2], mask[3]];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).await.map_err(io)
    }
}

impl Reader {
    /// The next text message; `None` when the browser closed the connection. Pings are
    /// answered through `writer` (held by the caller's lock).
    pub async fn next_text(&mut self) -> Result<Option<(String, Vec<Vec<u8>>)>, BrowserError> {
        let mut message = Vec::new();
        let mut pongs = Vec::new();
        loop {
            let mut head = [0u8; 2];
            if self.stream.read_exact(&mut head).await.is_err() {
                return Ok(None);
            }
            let fin = head[0] & 0x80 != 0;
            let opcode = head[0] & 0x0F;
            let masked = head[1] & 0x80 != 0;
            let len = match head[1] & 0x7F {
                126 => {
                    let mut b = [0u8; 2];
                    self.stream.read_exact(&mut b).await.map_err(io)?;
                    usize::from(u16::from_be_bytes(b))
                }
                127 => {
                    let mut b = [0u8; 8];
                    self.stream.read_exact(&mut b).await.map_err(io)?;
                    usize::try_from(u64::from_be_bytes(b)).unwrap_or(usize::MAX)
                }
                n => usize::from(n),
            };
            if len > MAX_MESSAGE || message.len() + len > MAX_MESSAGE {
                return Err(BrowserError::Protocol(format!(
                    "a DevTools message of {len} bytes is too large"
                )));
            }
            let mut mask = [0u8; 4];
            if masked {
                self.stream.read_exact(&mut mask).await.map_err(io)?;
            }
            let mut payload = vec![0u8; len];
            self.stream.read_exact(&mut payload).await.map_err(io)?;
            if masked {
                for (i, b) in payload.iter_mut().enumerate() {
                    *b ^= mask[i % 4];
                }
            }
            match opcode {
                TEXT | CONTINUATION => {
                    message.extend_from_slice(&payload);
                    if fin {
                        let text = String::from_utf8(message).map_err(|_| {
                            BrowserError::Protocol("DevTools sent text that is not UTF-8".into())
                        })?;
                        return Ok(Some((text, pongs)));
                    }
                }
                PING => pongs.push(payload),
                CLOSE => return Ok(None),
                PONG => {}
                other => {
                    return Err(BrowserError::Protocol(format!(
                        "DevTools sent a websocket frame of kind {other}"
                    )));
                }
            }
        }
    }
}

impl Writer {
    pub async fn pong(&mut self, payload: &[u8]) -> Result<(), BrowserError> {
        self.frame(PONG, payload).await
    }
}
