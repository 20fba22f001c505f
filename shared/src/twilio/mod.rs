//! Twilio's wire protocols, pure and I/O-free so the webhook Lambdas, the local stack and
//! the tests share one implementation:
//!
//! - [`signature`]: checking that a webhook really came from Twilio (`X-Twilio-Signature`),
//!   and rebuilding the URL Twilio signed when a gateway stands in between.
//! - [`twiml`]: writing the TwiML documents our webhooks answer with, escaped so that
//!   caller- or lead-supplied text can never change the document's structure.

pub mod signature;
pub mod twiml;
