//! What the HTTP speech vendors share: one request whose response body is the audio,
//! streamed into a [`Speech`] as it arrives.
//!
//! - The first audio byte must come within [`FIRST_BYTE_WITHIN`] of sending; after that
//!   the body may pause for at most [`IDLE_WITHIN`] between chunks.
//! - A failure worth retrying ([`VendorError::is_retryable`]) before the first audio
//!   byte is retried once. After it, never: the caller may already be hearing the
//!   audio, and a second voice would start from the beginning.
//! - A refusal becomes [`VendorError::Status`] with a short excerpt of the vendor's
//!   answer, the key scrubbed from it in case the vendor echoed it.
//! - Chunks hold whole samples: a chunk boundary that falls inside a sample carries
//!   the sample's first bytes over to the next chunk.
//! - Dropping the receiver ends the task reading the body, which drops the response
//!   and with it the connection, so the vendor stops too.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use parley_shared::secrets::SecretString;
use tokio::sync::mpsc;

use super::Speech;
use crate::vendor::{FIRST_BYTE_WITHIN, VendorError};

/// The longest pause allowed between two chunks once the audio has started.
pub(crate) const IDLE_WITHIN: Duration = Duration::from_secs(10);

/// The pause before the one retry: long enough for a blip to pass, short enough that
/// the caller barely notices.
const RETRY_AFTER: Duration = Duration::from_millis(150);

/// Chunks buffered ahead of the reader. Vendors synthesise faster than real time, so
/// this is what lets the body be read ahead of playback; when it is full, reading
/// pauses and TCP pushes back on the vendor.
const CHANNEL_CHUNKS: usize = 64;

/// How much of an error body is kept.
const EXCERPT_CHARS: usize = 200;

/// How much of an error body is read at most.
const ERROR_BODY_LIMIT: usize = 4096;

/// The client every HTTP speech vendor uses: no overall timeout (a long sentence may
/// stream for a while; the first-byte and idle limits guard it instead), no Nagle
/// delay, and a bounded connect.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(FIRST_BYTE_WITHIN)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        .build()
        // Building fails only if the TLS backend cannot start; the default client
        // would fail the same way, loudly, at start-up.
        .unwrap_or_default()
}

/// True when there is nothing to say: the vendor is not called.
pub(crate) fn is_blank(text: &str) -> bool {
    text.trim().is_empty()
}

/// An environment variable, or `default` when it is unset or blank.
pub(crate) fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// A [`Speech`] with no audio.
pub(crate) fn silence() -> Speech {
    mpsc::channel(1).1
}

/// A header value holding a key, marked sensitive so it is never logged by the HTTP
/// stack.
pub(crate) fn key_header(
    vendor: &'static str,
    value: &str,
) -> Result<reqwest::header::HeaderValue, VendorError> {
    let mut value =
        reqwest::header::HeaderValue::from_str(value).map_err(|_| VendorError::Protocol {
            vendor,
            detail: "the API key holds characters an HTTP header cannot carry".to_owned(),
        })?;
    value.set_sensitive(true);
    Ok(value)
}

/// Sends the request `build` makes (twice at most) and streams the audio of the
/// first attempt that starts. `sample_bytes` is the size of one sample in the body.
pub(crate) async fn speak(
    vendor: &'static str,
    key: &SecretString,
    sample_bytes: usize,
    build: impl Fn() -> reqwest::RequestBuilder,
) -> Result<Speech, VendorError> {
    let mut retried = false;
    loop {
        match start(vendor, key, build()).await {
            Ok((response, first)) => return Ok(pump(vendor, response, first, sample_bytes)),
            Err(error) if !retried && error.is_retryable() => {
                tracing::warn!(vendor, %error, "speech failed before any audio; retrying once");
                retried = true;
                tokio::time::sleep(RETRY_AFTER).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Sends the request and waits for the first audio bytes (`None`: the body was empty).
async fn start(
    vendor: &'static str,
    key: &SecretString,
    request: reqwest::RequestBuilder,
) -> Result<(reqwest::Response, Option<Bytes>), VendorError> {
    let attempt = async {
        let mut response = request.send().await.map_err(|e| send_error(vendor, &e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(VendorError::Status {
                vendor,
                status: status.as_u16(),
                detail: error_excerpt(&mut response, key).await,
            });
        }
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) if chunk.is_empty() => continue,
                Ok(Some(chunk)) => return Ok((response, Some(chunk))),
                Ok(None) => return Ok((response, None)),
                Err(_) => return Err(VendorError::Closed { vendor }),
            }
        }
    };
    tokio::time::timeout(FIRST_BYTE_WITHIN, attempt)
        .await
        .unwrap_or(Err(VendorError::Timeout { vendor }))
}

/// Streams the rest of the body into a channel from a task of its own.
fn pump(
    vendor: &'static str,
    mut response: reqwest::Response,
    first: Option<Bytes>,
    sample_bytes: usize,
) -> Speech {
    let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
    let Some(first) = first else {
        return rx;
    };
    tokio::spawn(async move {
        let mut samples = WholeSamples::new(sample_bytes);
        let mut next = Some(first);
        loop {
            if let Some(chunk) = next.take().and_then(|c| samples.push(c))
                && tx.send(Ok(chunk)).await.is_err()
            {
                return;
            }
            let read = tokio::select! {
                biased;
                () = tx.closed() => return,
                read = tokio::time::timeout(IDLE_WITHIN, response.chunk()) => read,
            };
            match read {
                Ok(Ok(Some(chunk))) => next = Some(chunk),
                Ok(Ok(None)) => {
                    if samples.pending() > 0 {
                        tracing::debug!(
                            vendor,
                            bytes = samples.pending(),
                            "dropped a partial sample at the end of the audio"
                        );
                    }
                    return;
                }
                Ok(Err(_)) => {
                    let _ = tx.send(Err(VendorError::Closed { vendor })).await;
                    return;
                }
                Err(_) => {
                    let _ = tx.send(Err(VendorError::Timeout { vendor })).await;
                    return;
                }
            }
        }
    });
    rx
}

/// Cuts a byte stream into chunks of whole samples.
pub(crate) struct WholeSamples {
    sample_bytes: usize,
    /// The first bytes of a sample whose rest is in the next chunk.
    carry: BytesMut,
}

impl WholeSamples {
    pub(crate) fn new(sample_bytes: usize) -> WholeSamples {
        WholeSamples {
            sample_bytes: sample_bytes.max(1),
            carry: BytesMut::new(),
        }
    }

    /// The whole samples `chunk` completes, if any. Aligned chunks pass through
    /// without a copy; a chunk that follows a split sample is copied once.
    pub(crate) fn push(&mut self, chunk: Bytes) -> Option<Bytes> {
        let mut chunk = if self.carry.is_empty() {
            chunk
        } else {
            self.carry.extend_from_slice(&chunk);
            self.carry.split().freeze()
        };
        let whole = chunk.len() - chunk.len() % self.sample_bytes;
        if whole < chunk.len() {
            self.carry.extend_from_slice(&chunk[whole..]);
            chunk.truncate(whole);
        }
        (!chunk.is_empty()).then_some(chunk)
    }

    /// Bytes held back waiting for the rest of their sample.
    pub(crate) fn pending(&self) -> usize {
        self.carry.len()
    }
}

/// A failure to send (or to get the response head) as a vendor error.
fn send_error(vendor: &'static str, error: &reqwest::Error) -> VendorError {
    if error.is_timeout() {
        return VendorError::Timeout { vendor };
    }
    // The chain names the cause (refused, reset, DNS); the URL holds no key.
    let mut detail = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    VendorError::Connect { vendor, detail }
}

/// The start of an error body, on one line, without the key.
async fn error_excerpt(response: &mut reqwest::Response, key: &SecretString) -> String {
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_LIMIT {
        match tokio::time::timeout(IDLE_WITHIN, response.chunk()).await {
            Ok(Ok(Some(chunk))) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    excerpt(&String::from_utf8_lossy(&body), key.expose())
}

fn excerpt(body: &str, key: &str) -> String {
    let scrubbed;
    let body = if !key.is_empty() && body.contains(key) {
        scrubbed = body.replace(key, "***");
        scrubbed.as_str()
    } else {
        body
    };
    let line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_samples_carry_a_split_sample_to_the_next_chunk() {
        let mut samples = WholeSamples::new(2);
        let bytes: Vec<u8> = (0..20).collect();
        let mut out = Vec::new();
        for piece in [&bytes[..3], &bytes[3..4], &bytes[4..9], &bytes[9..20]] {
            if let Some(chunk) = samples.push(Bytes::copy_from_slice(piece)) {
                assert_eq!(chunk.len() % 2, 0);
                out.extend_from_slice(&chunk);
            }
        }
        assert_eq!(out, bytes);
        assert_eq!(samples.pending(), 0);
    }

    #[test]
    fn whole_samples_pass_single_bytes_through() {
        let mut samples = WholeSamples::new(1);
        assert_eq!(
            samples.push(Bytes::from_static(b"abc")).as_deref(),
            Some(&b"abc"[..])
        );
        assert_eq!(samples.push(Bytes::new()), None);
    }

    #[test]
    fn excerpts_are_short_single_line_and_keyless() {
        let body = format!(
            "{{\"error\": \"bad key sk-secret\",\n \"more\": \"{}\"}}",
            "x ".repeat(500)
        );
        let short = excerpt(&body, "sk-secret");
        assert!(!short.contains("sk-secret"));
        assert!(short.contains("bad key ***"));
        assert!(!short.contains('\n'));
        assert!(short.chars().count() <= EXCERPT_CHARS + 3);
    }
}
