//! Exotel's wire protocols, shared by the API and webhook Lambdas, the local stack and
//! the tests:
//!
//! - [`rest`]: the REST client that places calls (`Calls/connect.json`), with a base URL
//!   that tests and the local stack point at a server of their own.
//! - Pure helpers here: Exotel's call statuses as Parley's [`CallStatus`], the
//!   `CustomField` that carries Parley's call id through Exotel, Exotel's timestamps and
//!   number formats, and the per-tenant webhook secret.
//!
//! Exotel does not sign its webhooks (Twilio's `X-Twilio-Signature` has no counterpart),
//! so every Exotel webhook URL Parley hands out carries a per-tenant secret in its path:
//! `<public>/webhooks/exotel/<tenant>/<secret>/status` and `…/stream`. The secret is 32
//! random bytes in hex, kept in the secret store under [`webhook_secret_name`], shown only
//! in the API's answer when the tenant stores its Exotel credentials, and compared in
//! constant time ([`webhook_secret_matches`]).

pub mod rest;

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};

use crate::domain::call::CallStatus;
use crate::domain::{CallId, PhoneNumber, TenantId};
use crate::secrets::SecretString;

/// The carrier name in [`CallId::for_carrier_call`] and in idempotency keys.
pub const CARRIER: &str = "exotel";

/// The secret store item (under `tenant/<id>/`) holding a tenant's webhook secret.
pub const WEBHOOK_SECRET_ITEM: &str = "exotel-webhook-secret";

/// How many random bytes a webhook secret has (it is written as twice as many hex digits).
pub const WEBHOOK_SECRET_BYTES: usize = 32;

/// The key of Parley's call id inside the `CustomField` of a call Parley places.
pub const CUSTOM_FIELD_CALL_ID: &str = "call_id";

/// The longest `CustomField` Exotel accepts, in characters.
pub const MAX_CUSTOM_FIELD_CHARS: usize = 128;

/// Exotel's call statuses as Parley's. Exotel documents `queued`, `ringing`,
/// `in-progress`, `completed`, `failed`, `busy`, `no-answer` and `canceled`; its status
/// callbacks carry a final one (or `in-progress` for the `answered` event). Case and
/// surrounding space are ignored; anything else is `None`.
pub fn call_status(raw: &str) -> Option<CallStatus> {
    Some(match raw.trim().to_ascii_lowercase().as_str() {
        "queued" => CallStatus::Queued,
        "ringing" => CallStatus::Ringing,
        // `answered` is the event name of the same moment.
        "in-progress" | "answered" => CallStatus::InProgress,
        "completed" => CallStatus::Completed,
        "busy" => CallStatus::Busy,
        "no-answer" => CallStatus::NoAnswer,
        "failed" => CallStatus::Failed,
        "canceled" | "cancelled" => CallStatus::Canceled,
        _ => return None,
    })
}

/// The `CustomField` Parley sends with a call it places: `call_id=<uuid>`, which Exotel
/// hands back in status callbacks and to applets.
pub fn custom_field(call_id: &CallId) -> String {
    format!("{CUSTOM_FIELD_CALL_ID}={call_id}")
}

/// Parley's call id from a `CustomField`, if it carries one (`call_id=<uuid>`, possibly
/// among other `&`-separated pairs, possibly quoted as some applets send values).
/// Anything else, including a malformed id, is `None`.
pub fn call_id_from_custom_field(raw: &str) -> Option<CallId> {
    let raw = raw.trim().trim_matches('"');
    raw.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key.trim() == CUSTOM_FIELD_CALL_ID)
            .then(|| CallId::parse(value.trim()).ok())
            .flatten()
    })
}

/// Exotel's timestamps (`YYYY-MM-DD HH:mm:ss`) as UTC. They carry no zone; Exotel keeps
/// them in India Standard Time (its docs give an unset end time as
/// `1970-01-01 05:30:00`, the Unix epoch in IST). An RFC 3339 time with its own offset
/// is read as such. Anything else is `None`.
pub fn carrier_time(raw: &str) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(raw) {
        return Some(time.with_timezone(&Utc));
    }
    let naive = NaiveDateTime::parse_from_str(raw, "%Y-%m-%d %H:%M:%S").ok()?;
    let ist = FixedOffset::east_opt(5 * 3600 + 30 * 60)?;
    ist.from_local_datetime(&naive)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// A number as Exotel writes it, in E.164. Exotel sends E.164 (`+918047491899`) in
/// some places and the Indian national form (`08047491899`, or `918047491899`) in
/// others, so those are read as Indian numbers. Anything else is `None`.
pub fn phone_number(raw: &str) -> Option<PhoneNumber> {
    let raw = raw.trim().trim_matches('"');
    if let Ok(number) = PhoneNumber::parse(raw) {
        return Some(number);
    }
    let digits: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
        .collect();
    if digits.starts_with('+') {
        return PhoneNumber::parse(&digits).ok();
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let e164 = match digits.len() {
        // 0 + a ten-digit Indian number (trunk prefix).
        11 if digits.starts_with('0') => format!("+91{}", &digits[1..]),
        12 if digits.starts_with("91") => format!("+{digits}"),
        _ => return None,
    };
    PhoneNumber::parse(&e164).ok()
}

/// The secret store name of `tenant`'s webhook secret.
pub fn webhook_secret_name(tenant: &TenantId) -> String {
    format!("tenant/{tenant}/{WEBHOOK_SECRET_ITEM}")
}

/// A new webhook secret: [`WEBHOOK_SECRET_BYTES`] random bytes as lowercase hex, safe in
/// a URL path.
pub fn new_webhook_secret() -> SecretString {
    let bytes: [u8; WEBHOOK_SECRET_BYTES] = rand::random();
    SecretString::new(hex::encode(bytes))
}

/// Whether `presented` (from a request's path) is the `stored` secret. Compared in
/// constant time, so the comparison's duration says nothing about how much matched.
pub fn webhook_secret_matches(stored: &SecretString, presented: &str) -> bool {
    use subtle::ConstantTimeEq;
    let stored = stored.expose().as_bytes();
    // Lengths are not secret (every secret is 64 hex digits); contents are.
    !stored.is_empty()
        && stored.len() == presented.len()
        && bool::from(stored.ct_eq(presented.as_bytes()))
}

/// Where Exotel posts `tenant`'s status callbacks (the `StatusCallback` parameter).
pub fn status_callback_url(public_url: &str, tenant: &TenantId, secret: &SecretString) -> String {
    webhook_url(public_url, tenant, secret, "status")
}

/// What `tenant`'s Voicebot applets are configured with: an HTTPS endpoint that answers
/// with the WebSocket URL for each call.
pub fn stream_endpoint_url(public_url: &str, tenant: &TenantId, secret: &SecretString) -> String {
    webhook_url(public_url, tenant, secret, "stream")
}

fn webhook_url(public_url: &str, tenant: &TenantId, secret: &SecretString, leaf: &str) -> String {
    format!(
        "{}/webhooks/exotel/{tenant}/{}/{leaf}",
        public_url.trim_end_matches('/'),
        secret.expose()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_onto_parleys() {
        for (raw, status) in [
            ("queued", CallStatus::Queued),
            ("ringing", CallStatus::Ringing),
            ("in-progress", CallStatus::InProgress),
            ("completed", CallStatus::Completed),
            ("busy", CallStatus::Busy),
            ("no-answer", CallStatus::NoAnswer),
            ("failed", CallStatus::Failed),
            ("canceled", CallStatus::Canceled),
            (" Completed ", CallStatus::Completed),
            ("NO-ANSWER", CallStatus::NoAnswer),
        ] {
            assert_eq!(call_status(raw), Some(status), "{raw}");
        }
        for final_status in ["completed", "busy", "no-answer", "failed", "canceled"] {
            assert!(call_status(final_status).unwrap().is_final());
        }
        for bad in ["", "teleported", "in progress", "complete", "null"] {
            assert_eq!(call_status(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_custom_field_carries_the_call_id() {
        let id = CallId::new();
        let field = custom_field(&id);
        assert!(field.len() <= MAX_CUSTOM_FIELD_CHARS);
        assert_eq!(call_id_from_custom_field(&field), Some(id.clone()));
        assert_eq!(
            call_id_from_custom_field(&format!("\"order=7&{field}\"")),
            Some(id.clone())
        );
        for other in [
            "",
            "order_12345",
            "call_id=",
            "call_id=nope",
            &id.to_string(),
            "xcall_id=1",
        ] {
            assert_eq!(call_id_from_custom_field(other), None, "{other}");
        }
    }

    #[test]
    fn times_are_read_in_ist() {
        let t = carrier_time("2024-01-15 14:30:45").unwrap();
        assert_eq!(t.to_rfc3339(), "2024-01-15T09:00:45+00:00");
        assert_eq!(carrier_time("1970-01-01 05:30:00").unwrap().timestamp(), 0);
        let with_offset = Utc.with_ymd_and_hms(2026, 1, 15, 10, 30, 0).unwrap()
            + chrono::Duration::milliseconds(529);
        assert_eq!(carrier_time("2026-01-15T10:30:00.529Z"), Some(with_offset));
        assert_eq!(
            carrier_time("2026-01-15T16:00:00.529+05:30"),
            Some(with_offset)
        );
        for bad in ["", "yesterday", "2024-13-01 00:00:00", "2024-01-15"] {
            assert_eq!(carrier_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn numbers_in_exotels_forms_become_e164() {
        for raw in [
            "+918047491899",
            "08047491899",
            "918047491899",
            " 080-4749 1899 ",
            "\"08047491899\"",
        ] {
            assert_eq!(
                phone_number(raw).map(|p| p.as_str().to_owned()),
                Some("+918047491899".into()),
                "{raw}"
            );
        }
        assert_eq!(
            phone_number("+14155550100").unwrap().as_str(),
            "+14155550100"
        );
        for bad in ["", "anonymous", "12345", "0804749189", "+0123", "０８０"] {
            assert_eq!(phone_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn webhook_secrets_are_random_hex_compared_exactly() {
        let a = new_webhook_secret();
        let b = new_webhook_secret();
        assert_eq!(a.expose().len(), 2 * WEBHOOK_SECRET_BYTES);
        assert!(a.expose().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.expose(), b.expose());
        assert!(webhook_secret_matches(&a, a.expose()));
        assert!(!webhook_secret_matches(&a, b.expose()));
        assert!(!webhook_secret_matches(&a, ""));
        assert!(!webhook_secret_matches(&a, &a.expose()[1..]));
        assert!(!webhook_secret_matches(&a, &format!("{}0", a.expose())));
        if a.expose().bytes().any(|c| c.is_ascii_alphabetic()) {
            assert!(!webhook_secret_matches(
                &a,
                &a.expose().to_ascii_uppercase()
            ));
        }
        assert!(!webhook_secret_matches(
            &SecretString::new(String::new()),
            ""
        ));
    }

    #[test]
    fn webhook_urls_carry_tenant_and_secret() {
        let tenant = TenantId::new();
        let secret = SecretString::new("ab".repeat(32));
        assert_eq!(
            status_callback_url("https://gw.example/prod/", &tenant, &secret),
            format!(
                "https://gw.example/prod/webhooks/exotel/{tenant}/{}/status",
                "ab".repeat(32)
            )
        );
        assert_eq!(
            stream_endpoint_url("http://127.0.0.1:8080", &tenant, &secret),
            format!(
                "http://127.0.0.1:8080/webhooks/exotel/{tenant}/{}/stream",
                "ab".repeat(32)
            )
        );
    }
}
