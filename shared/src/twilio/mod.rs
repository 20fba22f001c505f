//! Twilio's wire protocols, shared by the webhook and API Lambdas, the local stack and
//! the tests:
//!
//! - [`signature`]: checking that a webhook really came from Twilio (`X-Twilio-Signature`),
//!   and rebuilding the URL Twilio signed when a gateway stands in between. Pure.
//! - [`twiml`]: writing the TwiML documents our webhooks answer with, escaped so that
//!   caller- or lead-supplied text can never change the document's structure. Pure.
//! - [`rest`]: the REST client that places and updates calls, with a base URL that tests
//!   and the local stack point at a server of their own.

pub mod rest;
pub mod signature;
pub mod twiml;

/// A call status as Twilio writes it (`no-answer`), in Parley's terms; `None` for one
/// this build does not know.
pub fn call_status(raw: &str) -> Option<crate::domain::call::CallStatus> {
    use crate::domain::call::CallStatus;
    Some(match raw {
        "queued" => CallStatus::Queued,
        "initiated" => CallStatus::Initiated,
        "ringing" => CallStatus::Ringing,
        "in-progress" | "answered" => CallStatus::InProgress,
        "completed" => CallStatus::Completed,
        "busy" => CallStatus::Busy,
        "no-answer" => CallStatus::NoAnswer,
        "failed" => CallStatus::Failed,
        "canceled" => CallStatus::Canceled,
        _ => return None,
    })
}
