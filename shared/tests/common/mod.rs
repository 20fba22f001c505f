//! Shared by the integration tests: fresh, isolated instances of every adapter.
//! `embedded` opens them in a temporary directory; `moto` against a moto server.

#![allow(dead_code)] // each test binary uses part of it

pub mod embedded;
pub mod moto;

use chrono::{DateTime, SubsecRound, Utc};
use parley_shared::event::{Metadata, NewEvent};
use serde_json::json;

/// Now, at the microsecond precision every store keeps.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A test event of type `test_happened` carrying `n` and a free label.
pub fn event(tenant: &str, n: u64, label: &str) -> NewEvent {
    NewEvent {
        event_type: "test_happened".into(),
        schema_version: 1,
        meta: Metadata {
            tenant_id: tenant.into(),
            correlation_id: format!("corr-{label}"),
            occurred_at: now(),
        },
        data: json!({ "type": "test_happened", "n": n, "label": label }),
    }
}
