//! Deepgram's live transcription (`/v1/listen` over a WebSocket): the caller's PCM goes
//! up as binary frames, `Results`, `SpeechStarted` and `UtteranceEnd` messages come back
//! and become [`SttEvent`]s.
//!
//! One task per stream owns the socket. It forwards audio as it is queued, sends
//! `KeepAlive` when the caller has been silent long enough that Deepgram would otherwise
//! hang up (it closes after about 10 s without data), and, when the audio sender is
//! dropped, sends `CloseStream` and keeps reading until Deepgram closes, so the last
//! results still arrive.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest, http};

use super::{SpeechToText, SttConfig, SttEvent, SttStream};
use crate::vendor::{Account, Endpoint, FIRST_BYTE_WITHIN, VendorError};

const VENDOR: &str = "deepgram";

/// Audio chunks (20 ms each, as the session sends them) that may wait for the socket:
/// two seconds. The session queues with `try_send`, so when Deepgram stops reading and
/// this fills, the newest chunks are dropped rather than holding up the call; the
/// recogniser then misses that audio, which only happens when the link is already
/// failing.
pub const AUDIO_QUEUE: usize = 100;

/// Events waiting for the session; the session reads them promptly, so this only
/// absorbs bursts (a final, an utterance end and a speech start back to back).
const EVENT_QUEUE: usize = 32;

/// Deepgram closes a stream that has had no data for about 10 s; half that is safe.
const KEEP_ALIVE_AFTER: Duration = Duration::from_secs(5);

/// How long Deepgram may take to flush its last results and close after `CloseStream`.
const CLOSE_WITHIN: Duration = Duration::from_secs(10);

/// Longest excerpt of a refusal's body kept in the error.
const DETAIL_CHARS: usize = 200;

/// A Deepgram live-transcription account. Cheap to clone; each [`SpeechToText::open`]
/// is one WebSocket.
#[derive(Clone, Debug)]
pub struct DeepgramStt {
    endpoint: Endpoint,
    model: String,
    keep_alive_after: Duration,
}

impl DeepgramStt {
    pub const DEFAULT_BASE_URL: &'static str = "wss://api.deepgram.com";
    pub const DEFAULT_MODEL: &'static str = "nova-3";

    /// With the default model. The base URL may be `ws(s)://` or `http(s)://`.
    pub fn new(endpoint: Endpoint) -> DeepgramStt {
        DeepgramStt {
            endpoint,
            model: Self::DEFAULT_MODEL.to_owned(),
            keep_alive_after: KEEP_ALIVE_AFTER,
        }
    }

    pub fn with_model(mut self, model: impl Into<String>) -> DeepgramStt {
        self.model = model.into();
        self
    }

    /// How long without audio before a `KeepAlive` is sent (5 s by default).
    pub fn with_keep_alive_after(mut self, after: Duration) -> DeepgramStt {
        self.keep_alive_after = after;
        self
    }

    /// `DEEPGRAM_BASE_URL` (default [`Self::DEFAULT_BASE_URL`]), `DEEPGRAM_API_KEY` and
    /// optionally `DEEPGRAM_MODEL`; `None` when there is no key.
    pub fn from_env() -> Option<DeepgramStt> {
        let account = Account::from_env("DEEPGRAM", Self::DEFAULT_BASE_URL);
        let stt = DeepgramStt::new(account.endpoint()?);
        Some(match account.model {
            Some(model) => stt.with_model(model),
            None => stt,
        })
    }

    /// `{base}/v1/listen?…` with the base's scheme turned into a WebSocket one.
    fn listen_url(&self, config: &SttConfig) -> Result<String, VendorError> {
        let base = &self.endpoint.base_url;
        let base = if let Some(rest) = base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else if let Some(rest) = base.strip_prefix("http://") {
            format!("ws://{rest}")
        } else {
            base.clone()
        };
        let mut url = reqwest::Url::parse(&format!("{base}/v1/listen")).map_err(|e| {
            VendorError::Connect {
                vendor: VENDOR,
                detail: format!("bad base URL: {e}"),
            }
        })?;
        url.query_pairs_mut()
            .append_pair("model", &self.model)
            .append_pair("encoding", "linear16")
            .append_pair("sample_rate", &config.sample_rate.to_string())
            .append_pair("channels", "1")
            .append_pair("language", &config.language)
            .append_pair("interim_results", "true")
            .append_pair("endpointing", &config.endpointing_ms.to_string())
            .append_pair("utterance_end_ms", "1000")
            .append_pair("vad_events", "true")
            .append_pair("smart_format", "true");
        Ok(url.into())
    }
}

#[async_trait]
impl SpeechToText for DeepgramStt {
    async fn open(&self, config: &SttConfig) -> Result<SttStream, VendorError> {
        let url = self.listen_url(config)?;
        let mut request = url
            .into_client_request()
            .map_err(|e| VendorError::Connect {
                vendor: VENDOR,
                detail: format!("bad listen URL: {e}"),
            })?;
        let mut auth =
            http::HeaderValue::from_str(&format!("Token {}", self.endpoint.api_key.expose()))
                .map_err(|_| VendorError::Connect {
                    vendor: VENDOR,
                    detail: "the API key is not a valid header value".to_owned(),
                })?;
        auth.set_sensitive(true);
        request
            .headers_mut()
            .insert(http::header::AUTHORIZATION, auth);

        // A small read buffer, as on the carrier's socket (see `server::READ_BUFFER_BYTES`).
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(crate::server::READ_BUFFER_BYTES);
        let connecting = tokio_tungstenite::connect_async_with_config(request, Some(config), true);
        let (socket, _) = match tokio::time::timeout(FIRST_BYTE_WITHIN, connecting).await {
            Err(_) => return Err(VendorError::Timeout { vendor: VENDOR }),
            Ok(Err(e)) => return Err(handshake_error(e, self.endpoint.api_key.expose())),
            Ok(Ok(connected)) => connected,
        };

        let (audio_tx, audio_rx) = mpsc::channel(AUDIO_QUEUE);
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        tokio::spawn(run(socket, audio_rx, events_tx, self.keep_alive_after));
        Ok(SttStream {
            audio: audio_tx,
            events: events_rx,
        })
    }
}

/// A refused upgrade carries Deepgram's HTTP status (401 bad key, 429, 5xx); anything
/// else means the socket never opened.
fn handshake_error(error: tungstenite::Error, key: &str) -> VendorError {
    match error {
        tungstenite::Error::Http(response) => {
            let body = response
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            VendorError::Status {
                vendor: VENDOR,
                status: response.status().as_u16(),
                detail: excerpt(&body, key),
            }
        }
        other => VendorError::Connect {
            vendor: VENDOR,
            detail: other.to_string(),
        },
    }
}

/// The start of a vendor's message, on one line, with the key taken out should the
/// vendor have echoed it.
fn excerpt(text: &str, key: &str) -> String {
    let mut short: String = text
        .chars()
        .take(DETAIL_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if !key.is_empty() && short.contains(key) {
        short = short.replace(key, "***");
    }
    short.trim().to_owned()
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Owns one stream's socket until Deepgram closes it, it fails, or nobody listens.
async fn run(
    mut socket: Socket,
    mut audio: mpsc::Receiver<Bytes>,
    events: mpsc::Sender<SttEvent>,
    keep_alive_after: Duration,
) {
    // Set when the session dropped its audio sender and `CloseStream` went out.
    let mut closing = false;
    let mut last_sent = Instant::now();
    // One timer for keep-alives, moved only when it fires, so audio frames cost no
    // timer work; when it fires early (audio went since) it just re-arms.
    let keep_alive = tokio::time::sleep(keep_alive_after);
    tokio::pin!(keep_alive);
    let close_deadline = tokio::time::sleep(CLOSE_WITHIN);
    tokio::pin!(close_deadline);

    let failure = loop {
        tokio::select! {
            chunk = audio.recv(), if !closing => {
                let message = match chunk {
                    Some(pcm) => Message::Binary(pcm),
                    None => {
                        closing = true;
                        close_deadline.as_mut().reset(Instant::now() + CLOSE_WITHIN);
                        Message::text(r#"{"type":"CloseStream"}"#)
                    }
                };
                if socket.send(message).await.is_err() {
                    break Some(VendorError::Closed { vendor: VENDOR });
                }
                last_sent = Instant::now();
            }
            () = &mut keep_alive, if !closing => {
                let due = last_sent + keep_alive_after;
                if Instant::now() >= due {
                    if socket.send(Message::text(r#"{"type":"KeepAlive"}"#)).await.is_err() {
                        break Some(VendorError::Closed { vendor: VENDOR });
                    }
                    last_sent = Instant::now();
                }
                keep_alive.as_mut().reset(last_sent + keep_alive_after);
            }
            () = &mut close_deadline, if closing => {
                tracing::warn!(vendor = VENDOR, "no close after CloseStream; giving up");
                break Some(VendorError::Timeout { vendor: VENDOR });
            }
            // Nobody reads the transcript any more: hang up without waiting.
            () = events.closed() => break None,
            message = socket.next() => match message {
                Some(Ok(Message::Text(text))) => match parse(text.as_str()) {
                    Ok(Some(event)) => {
                        if events.send(event).await.is_err() {
                            break None;
                        }
                    }
                    Ok(None) => {}
                    Err(failure) => break Some(failure),
                },
                Some(Ok(Message::Close(frame))) => {
                    if closing {
                        break None;
                    }
                    if let Some(frame) = frame {
                        tracing::warn!(
                            vendor = VENDOR,
                            code = u16::from(frame.code),
                            reason = %frame.reason,
                            "closed by the vendor"
                        );
                    }
                    break Some(VendorError::Closed { vendor: VENDOR });
                }
                // Pings are answered by the library; Deepgram sends no binary.
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!(vendor = VENDOR, error = %e, "stream dropped");
                    break Some(VendorError::Closed { vendor: VENDOR });
                }
                None => break Some(VendorError::Closed { vendor: VENDOR }),
            },
        }
    };

    if let Some(failure) = failure {
        let _ = events.send(SttEvent::Failed(failure)).await;
    }
    // A proper goodbye where the socket still works, bounded: a stalled peer may not read.
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.close(None)).await;
}

/// The messages Deepgram sends, as far as a call needs them.
#[derive(Deserialize)]
#[serde(tag = "type")]
enum Incoming {
    Results {
        channel: ResultChannel,
        #[serde(default)]
        is_final: bool,
        #[serde(default)]
        speech_final: bool,
    },
    SpeechStarted,
    UtteranceEnd,
    Metadata,
    Error {
        #[serde(default)]
        description: String,
        #[serde(default)]
        message: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct ResultChannel {
    #[serde(default)]
    alternatives: Vec<Alternative>,
}

#[derive(Deserialize)]
struct Alternative {
    #[serde(default)]
    transcript: String,
}

/// One message as an event, `None` for what a call does not need (metadata, empty
/// transcripts, types added after this was written).
fn parse(text: &str) -> Result<Option<SttEvent>, VendorError> {
    let incoming: Incoming = serde_json::from_str(text).map_err(|e| VendorError::Protocol {
        vendor: VENDOR,
        detail: format!("unreadable message: {e}"),
    })?;
    Ok(match incoming {
        Incoming::Results {
            channel,
            is_final,
            speech_final,
        } => {
            let text = channel
                .alternatives
                .into_iter()
                .next()
                .map(|a| a.transcript)
                .unwrap_or_default();
            if text.trim().is_empty() {
                None
            } else if is_final {
                Some(SttEvent::Final {
                    text,
                    end_of_speech: speech_final,
                })
            } else {
                Some(SttEvent::Interim { text })
            }
        }
        Incoming::SpeechStarted => Some(SttEvent::SpeechStarted),
        Incoming::UtteranceEnd => Some(SttEvent::UtteranceEnd),
        Incoming::Metadata | Incoming::Other => None,
        Incoming::Error {
            description,
            message,
        } => {
            let said = if description.is_empty() {
                message
            } else {
                description
            };
            return Err(VendorError::Protocol {
                vendor: VENDOR,
                detail: format!("error from the vendor: {}", excerpt(&said, "")),
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_become_interims_and_finals() {
        let interim = r#"{"type":"Results","channel_index":[0,1],"start":0.0,"duration":1.0,
            "is_final":false,"speech_final":false,
            "channel":{"alternatives":[{"transcript":"hello","confidence":0.9,"words":[]}]}}"#;
        assert_eq!(
            parse(interim).unwrap(),
            Some(SttEvent::Interim {
                text: "hello".into()
            })
        );
        let last = r#"{"type":"Results","is_final":true,"speech_final":true,
            "channel":{"alternatives":[{"transcript":"hello there"}]}}"#;
        assert_eq!(
            parse(last).unwrap(),
            Some(SttEvent::Final {
                text: "hello there".into(),
                end_of_speech: true
            })
        );
    }

    #[test]
    fn empty_transcripts_metadata_and_unknown_types_are_skipped() {
        let empty = r#"{"type":"Results","is_final":true,"speech_final":true,
            "channel":{"alternatives":[{"transcript":""}]}}"#;
        assert_eq!(parse(empty).unwrap(), None);
        let none = r#"{"type":"Results","is_final":true,"channel":{"alternatives":[]}}"#;
        assert_eq!(parse(none).unwrap(), None);
        let meta = r#"{"type":"Metadata","request_id":"x","duration":1.5,"channels":1}"#;
        assert_eq!(parse(meta).unwrap(), None);
        assert_eq!(parse(r#"{"type":"SomethingNew","x":1}"#).unwrap(), None);
    }

    #[test]
    fn vad_messages_and_failures() {
        let started = r#"{"type":"SpeechStarted","channel":[0,1],"timestamp":0.3}"#;
        assert_eq!(parse(started).unwrap(), Some(SttEvent::SpeechStarted));
        let ended = r#"{"type":"UtteranceEnd","channel":[0,1],"last_word_end":2.4}"#;
        assert_eq!(parse(ended).unwrap(), Some(SttEvent::UtteranceEnd));
        assert!(matches!(
            parse("{not json"),
            Err(VendorError::Protocol { .. })
        ));
        assert!(matches!(
            parse(r#"{"type":"Results"}"#),
            Err(VendorError::Protocol { .. })
        ));
        assert!(matches!(
            parse(r#"{"type":"Error","description":"bad audio"}"#),
            Err(VendorError::Protocol { detail, .. }) if detail.contains("bad audio")
        ));
    }

    #[test]
    fn the_base_url_becomes_a_websocket_url_with_the_options() {
        let stt = DeepgramStt::new(Endpoint::new(
            "https://dg.example.com/",
            parley_shared::secrets::SecretString::new("k".into()),
        ));
        let url = stt
            .listen_url(&SttConfig {
                sample_rate: 8000,
                language: "en-US".into(),
                endpointing_ms: 300,
            })
            .unwrap();
        assert!(url.starts_with("wss://dg.example.com/v1/listen?model=nova-3&"));
        assert!(url.contains("sample_rate=8000"));
        assert!(url.contains("endpointing=300"));
        assert!(url.contains("language=en-US"));
    }
}
