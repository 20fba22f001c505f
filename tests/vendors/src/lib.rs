//! Local servers that speak the vendors' documented wire protocols, so the media
//! task's real clients can be exercised end to end with no network and no keys.
//! Each listens on a loopback port of its own and records what it was asked, for
//! tests to check.
pub mod cartesia;
pub mod deepgram;
pub mod elevenlabs;
mod loopback;
pub mod openai_chat;
pub mod openai_speech;
pub mod relay_caller;
pub mod speech;
pub mod twilio_caller;
