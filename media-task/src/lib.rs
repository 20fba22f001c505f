//! The media task's library: what it takes to hold a call's audio.
//!
//! - [`g711`]: μ-law and A-law, the telephone network's 8 kHz companding.
//! - [`twilio_stream`] and [`exotel_stream`]: the carriers' WebSocket stream messages,
//!   read strictly (anything malformed is an error naming what, never a panic) and
//!   written as the carriers expect.
//! - [`server`]: the WebSocket routes; each stream is one call's session, admitted
//!   only with a valid stream token for that call.

pub mod exotel_stream;
pub mod g711;
pub mod server;
pub mod twilio_stream;
