//! The media task's library: what it takes to hold a call's audio.
//!
//! - [`g711`]: μ-law and A-law, the telephone network's 8 kHz companding.
//! - [`audio`]: audio formats; [`resample`]: between the carriers' and vendors' rates.
//! - [`vad`]: voice activity detection on the caller's audio.
//! - [`twilio_stream`] and [`exotel_stream`]: the carriers' WebSocket stream messages,
//!   read strictly (anything malformed is an error naming what, never a panic) and
//!   written as the carriers expect.
//! - [`stt`], [`llm`], [`tts`]: the speech and language vendors, each behind a trait
//!   and a configurable base URL ([`vendor`]).
//! - [`choice`]: the vendors an agent chooses for itself, with its tenant's keys.
//! - [`recording`]: both sides of a call as a stereo WAV, streamed to the blob store.
//! - [`relay_stream`] and [`relay`]: Twilio ConversationRelay (Twilio speaks; text only).
//! - [`probe`]: the container's health check against a running task.
//! - [`server`]: the WebSocket routes; each stream is one call's session, admitted
//!   only with a valid stream token for that call.

pub mod audio;
pub mod brain;
pub mod call;
pub mod choice;
pub mod conversation;
pub mod exotel_stream;
pub mod g711;
pub mod guard;
pub mod guided;
pub mod llm;
pub mod metrics;
pub mod probe;
pub mod recording;
pub mod relay;
pub mod relay_stream;
pub mod resample;
pub mod script;
pub mod server;
pub mod session;
pub mod stt;
pub mod tools;
pub mod tts;
pub mod twilio_stream;
pub mod vad;
pub mod vendor;
pub mod voices;
pub mod wrapup;
